#include "upstream/wan_budget.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <ctime>

#include "admin/exposition.hpp"
#include "config/values.hpp"
#include "log/log.hpp"

namespace storecache::upstream {

namespace asio = boost::asio;
using namespace std::chrono_literals;

std::string_view to_string(fetch_class c) {
  return c == fetch_class::device ? "device" : "background";
}

double token_bucket::capacity(std::uint64_t rate) {
  return std::max(static_cast<double>(rate) / 10.0, 16384.0);
}

void token_bucket::refill(duration elapsed, std::uint64_t rate) {
  if (elapsed.count() <= 0) return;
  level_ = std::min(capacity(rate), level_ + static_cast<double>(rate) *
                                                 std::chrono::duration<double>(elapsed).count());
}

token_bucket::duration token_bucket::wait(std::uint64_t rate, fetch_class c,
                                          int devices_waiting) const {
  if (rate == 0) return duration::zero();
  const bool behind_devices = c == fetch_class::background && devices_waiting > 0;
  if (level_ > 0 && !behind_devices) return duration::zero();
  // Until the debt is paid (and one byte more); background readers behind devices look again
  // after a short while, since they cannot know when the devices are served.
  const double debt = level_ > 0 ? 0.0 : 1.0 - level_;
  auto d = std::chrono::duration_cast<duration>(
      std::chrono::duration<double>(debt / static_cast<double>(rate)));
  if (behind_devices) d = std::max<duration>(d, 5ms);
  return std::max<duration>(d, 1ms);
}

namespace {

int local_minute_now() {
  const std::time_t t = std::time(nullptr);
  std::tm lt{};
  localtime_r(&t, &lt);
  return lt.tm_hour * 60 + lt.tm_min;
}

}  // namespace

void wan_budget::set(const config::wan_settings& s) {
  std::lock_guard lock(mu_);
  settings_ = s;
  rate_known_ = false;  // looked up again at the next read
  rate_checked_ = {};
}

std::uint64_t wan_budget::rate_locked(clock::time_point now) {
  if (rate_known_ && now - rate_checked_ < 1s) return rate_;
  const std::uint64_t r = settings_.rate_at(local_minute_now());
  if (!rate_known_ || r != rate_) {
    if (r == 0)
      log::notice("wan: no upstream rate cap in force");
    else
      log::notice("wan: upstream rate cap now {}", config::format_rate(r));
  }
  rate_ = r;
  rate_known_ = true;
  rate_checked_ = now;
  return r;
}

std::uint64_t wan_budget::rate_now() {
  std::lock_guard lock(mu_);
  return rate_locked(clock::now());
}

asio::awaitable<void> wan_budget::admit(fetch_class c) {
  // A device read waiting counts until it reads (or its frame goes: shutdown).
  struct device_mark {
    std::atomic<int>* n = nullptr;
    ~device_mark() {
      if (n) n->fetch_sub(1, std::memory_order_relaxed);
    }
  } mark;
  std::optional<asio::steady_timer> timer;
  auto& st = stats_[static_cast<std::size_t>(c)];
  bool counted = false;
  for (;;) {
    token_bucket::duration wait;
    {
      std::lock_guard lock(mu_);
      const auto now = clock::now();
      const std::uint64_t rate = rate_locked(now);
      bucket_.refill(now - refilled_, rate);
      refilled_ = now;
      wait = bucket_.wait(
          rate, c, devices_waiting_.load(std::memory_order_relaxed) - (mark.n != nullptr ? 1 : 0));
    }
    if (wait == token_bucket::duration::zero()) co_return;
    if (!counted) {
      st.waits.fetch_add(1, std::memory_order_relaxed);
      counted = true;
    }
    if (c == fetch_class::device && mark.n == nullptr) {
      devices_waiting_.fetch_add(1, std::memory_order_relaxed);
      mark.n = &devices_waiting_;
    }
    // At most a second at a time: the cap may change (a window opens, a reload).
    wait = std::min<token_bucket::duration>(wait, 1s);
    if (!timer) timer.emplace(co_await asio::this_coro::executor);
    timer->expires_after(wait);
    const auto before = clock::now();
    co_await timer->async_wait(asio::as_tuple(asio::use_awaitable));
    st.waited_ns.fetch_add(
        static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - before).count()),
        std::memory_order_relaxed);
  }
}

void wan_budget::charge(std::size_t n, fetch_class c) {
  stats_[static_cast<std::size_t>(c)].bytes.fetch_add(n, std::memory_order_relaxed);
  std::lock_guard lock(mu_);
  if (rate_known_ && rate_ > 0) bucket_.charge(n);
}

std::string wan_budget::render_metrics() {
  std::string out;
  admin::exposition x(out);
  x.family("storecache_wan_rate_limit_bytes_per_second", "gauge",
           "The upstream rate cap in force now ([wan] rate or a [[wan.window]]), bytes per "
           "second; 0: no cap.");
  x.sample("storecache_wan_rate_limit_bytes_per_second {}\n", rate_now());
  x.family("storecache_wan_bytes_total", "counter",
           "Upstream body bytes read under the WAN budget, by class: device (a device waits for "
           "them) or background (prefetch, background revalidation).");
  for (const fetch_class c : {fetch_class::device, fetch_class::background})
    x.sample("storecache_wan_bytes_total{{class=\"{}\"}} {}\n", to_string(c),
             stats_[static_cast<std::size_t>(c)].bytes.load(std::memory_order_relaxed));
  x.family("storecache_wan_throttled_total", "counter",
           "Upstream reads that waited for the rate cap, by class.");
  for (const fetch_class c : {fetch_class::device, fetch_class::background})
    x.sample("storecache_wan_throttled_total{{class=\"{}\"}} {}\n", to_string(c),
             stats_[static_cast<std::size_t>(c)].waits.load(std::memory_order_relaxed));
  x.family("storecache_wan_throttled_seconds_total", "counter",
           "Time upstream reads spent waiting for the rate cap, by class.");
  for (const fetch_class c : {fetch_class::device, fetch_class::background})
    x.sample("storecache_wan_throttled_seconds_total{{class=\"{}\"}} {:.6f}\n", to_string(c),
             static_cast<double>(
                 stats_[static_cast<std::size_t>(c)].waited_ns.load(std::memory_order_relaxed)) /
                 1e9);
  return out;
}

}  // namespace storecache::upstream
