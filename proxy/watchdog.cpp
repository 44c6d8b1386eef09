#include "proxy/watchdog.hpp"

#include "admin/exposition.hpp"

#include <systemd/sd-daemon.h>

#include <fmt/format.h>
#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "log/log.hpp"

namespace storecache::proxy {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             loop_watchdog::clock::now().time_since_epoch())
      .count();
}

// "worker 1" in a log line; other loops by their own name ("prefetch").
std::string display(const std::string& name) {
  const bool number = !name.empty() && name.find_first_not_of("0123456789") == std::string::npos;
  return number ? "worker " + name : name;
}

}  // namespace

std::optional<std::chrono::microseconds> loop_watchdog::systemd_interval() {
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
  return std::chrono::microseconds(usec);
}

loop_watchdog::clock::duration loop_watchdog::beat_for(
    std::optional<std::chrono::microseconds> systemd) {
  clock::duration beat = 1s;
  if (systemd) beat = std::min<clock::duration>(beat, *systemd / 4);
  return std::max<clock::duration>(beat, 10ms);
}

loop_watchdog::loop_watchdog(std::vector<watched> loops, clock::duration beat, bool ping_systemd)
    : beat_(beat), ping_systemd_(ping_systemd) {
  for (auto& l : loops) {
    auto w = std::make_unique<worker_beat>();
    w->name = std::move(l.name);
    w->io = l.io;
    workers_.push_back(std::move(w));
  }
}

asio::awaitable<void> loop_watchdog::run() {
  asio::steady_timer tick(co_await asio::this_coro::executor);
  std::uint64_t sent = 0;
  post_beat(++sent);
  for (;;) {
    tick.expires_after(beat_);
    auto [ec] = co_await tick.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    check_and_ping(sent);
    post_beat(++sent);
  }
}

void loop_watchdog::post_beat(std::uint64_t seq) {
  const auto posted = now_ns();
  sent_.store(seq, std::memory_order_release);
  for (auto& wp : workers_) {
    worker_beat* w = wp.get();
    // A beat still waiting keeps its own posting time: the lag counts from the oldest one.
    if (w->answered.load(std::memory_order_acquire) + 1 >= seq)
      w->posted_ns.store(posted, std::memory_order_relaxed);
    asio::post(*w->io, [w, seq, posted] {
      if (w->answered.load(std::memory_order_relaxed) >= seq) return;
      w->lag_ns.store(now_ns() - posted, std::memory_order_relaxed);
      w->answered.store(seq, std::memory_order_release);
    });
  }
}

void loop_watchdog::check_and_ping(std::uint64_t sent) {
  bool all_turned = true;
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    auto& w = *workers_[i];
    const bool turned = w.answered.load(std::memory_order_acquire) >= sent;
    if (turned && w.reported_stuck.exchange(false)) {
      log::notice("watchdog: {} turns again", display(w.name));
    } else if (!turned) {
      all_turned = false;
      if (!w.reported_stuck.exchange(true)) {
        stalls_.fetch_add(1, std::memory_order_relaxed);
        const auto waited =
            std::chrono::nanoseconds(now_ns() - w.posted_ns.load(std::memory_order_relaxed));
        log::error("watchdog: {} has not run its event loop for {} ms{}", display(w.name),
                   std::chrono::duration_cast<std::chrono::milliseconds>(waited).count(),
                   ping_systemd_ ? "; not pinging systemd (it restarts the service after "
                                   "WatchdogSec)"
                                 : "");
      }
    }
  }
  if (all_turned && ping_systemd_) sd_notify(0, "WATCHDOG=1");
}

std::string loop_watchdog::render_metrics() const {
  std::string out;
  admin::exposition x(out);
  x.family("storecache_worker_loop_lag_seconds", "gauge",
           "How long the last liveness beat waited in the worker's event loop (a beat still "
           "waiting counts until now); worker=\"prefetch\": the prefetch runner's loop.");
  const auto now = now_ns();
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    const auto& w = *workers_[i];
    auto lag = w.lag_ns.load(std::memory_order_relaxed);
    if (w.answered.load(std::memory_order_acquire) < sent_.load(std::memory_order_acquire))
      lag = std::max(lag, now - w.posted_ns.load(std::memory_order_relaxed));
    x.sample("storecache_worker_loop_lag_seconds{{worker=\"{}\"}} {:.6f}\n", w.name,
             static_cast<double>(std::max<std::int64_t>(lag, 0)) / 1e9);
  }
  x.family("storecache_watchdog_stalls_total", "counter",
           "Times a worker's event loop missed a liveness beat (each stall counted once, however "
           "long).");
  x.sample("storecache_watchdog_stalls_total {}\n", stalls_.load(std::memory_order_relaxed));
  return out;
}

}  // namespace storecache::proxy
