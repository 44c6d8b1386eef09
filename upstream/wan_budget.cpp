#include "upstream/wan_budget.hpp"

#include <fmt/format.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <optional>
#include <utility>

#include "admin/exposition.hpp"
#include "config/time_window.hpp"
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

void wan_budget::set(const config::wan_settings& all) {
  std::lock_guard lock(mu_);
  all_.settings = all;
  all_.rate_known = false;  // looked up again at the next read
  sites_.clear();
  capped_ = all.rate > 0 || !all.windows.empty();
}

void wan_budget::set(const config::config& cfg) {
  std::lock_guard lock(mu_);
  all_.settings = cfg.wan;
  all_.rate_known = false;
  std::vector<cap> next;
  for (const auto& site : cfg.sites) {
    if (site.wan.rate == 0 && site.wan.windows.empty()) continue;
    cap c;
    c.name = site.name();
    if (cap* old = site_cap_locked(c.name)) c = std::move(*old);  // keeps its bucket
    c.settings = site.wan;
    c.rate_known = false;
    next.push_back(std::move(c));
  }
  sites_ = std::move(next);
  capped_ = cfg.wan.rate > 0 || !cfg.wan.windows.empty() || !sites_.empty();
}

wan_budget::cap* wan_budget::site_cap_locked(std::string_view site) {
  if (site.empty()) return nullptr;
  for (auto& c : sites_)
    if (c.name == site) return &c;
  return nullptr;
}

std::uint64_t wan_budget::rate_locked(cap& c, clock::time_point now) {
  if (c.rate_known && now - c.rate_checked < 1s) return c.rate;
  const std::uint64_t r =
      c.settings.rate_at(config::local_minute(std::chrono::system_clock::now()));
  if (!c.rate_known || r != c.rate) {
    const std::string who = c.name.empty() ? "upstream" : "site " + c.name + ":";
    if (r == 0)
      log::notice("wan: no {} rate cap in force", who);
    else
      log::notice("wan: {} rate cap now {}", who, config::format_rate(r));
  }
  c.rate = r;
  c.rate_known = true;
  c.rate_checked = now;
  return r;
}

token_bucket::duration wan_budget::wait_locked(cap& c, clock::time_point now, fetch_class k) {
  const std::uint64_t rate = rate_locked(c, now);
  c.bucket.refill(now - c.refilled, rate);
  c.refilled = now;
  return c.bucket.wait(rate, k, devices_waiting_.load(std::memory_order_relaxed));
}

std::uint64_t wan_budget::rate_now() {
  std::lock_guard lock(mu_);
  return rate_locked(all_, clock::now());
}

std::uint64_t wan_budget::site_rate_now(std::string_view site) {
  std::lock_guard lock(mu_);
  cap* c = site_cap_locked(site);
  return c ? rate_locked(*c, clock::now()) : 0;
}

asio::awaitable<void> wan_budget::admit(fetch_class c, std::string_view site) {
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
  const std::string site_name(site);  // the caller's view may not outlive a suspension
  for (;;) {
    token_bucket::duration wait;
    {
      std::lock_guard lock(mu_);
      const auto now = clock::now();
      // (a device's own mark does not hold it back: only background readers look at it)
      wait = wait_locked(all_, now, c);
      if (cap* sc = site_cap_locked(site_name)) wait = std::max(wait, wait_locked(*sc, now, c));
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

void wan_budget::charge(std::size_t n, fetch_class c, std::string_view site) {
  stats_[static_cast<std::size_t>(c)].bytes.fetch_add(n, std::memory_order_relaxed);
  if (!capped()) return;
  std::lock_guard lock(mu_);
  if (all_.rate_known && all_.rate > 0) all_.bucket.charge(n);
  if (cap* sc = site_cap_locked(site); sc && sc->rate_known && sc->rate > 0) sc->bucket.charge(n);
}

std::string wan_budget::render_metrics() {
  std::string out;
  admin::exposition x(out);
  x.family("storecache_wan_rate_limit_bytes_per_second", "gauge",
           "The upstream rate cap in force now ([wan] rate or a [[wan.window]]), bytes per "
           "second; 0: no cap.");
  x.sample("storecache_wan_rate_limit_bytes_per_second {}\n", rate_now());
  std::vector<std::pair<std::string, std::uint64_t>> sites;
  {
    std::lock_guard lock(mu_);
    for (auto& c : sites_)
      sites.emplace_back(c.name, rate_locked(c, clock::now()));
  }
  if (!sites.empty()) {
    x.family("storecache_wan_site_rate_limit_bytes_per_second", "gauge",
             "A site's own upstream rate cap in force now ([site.wan]), bytes per second; 0: "
             "none now.");
    for (const auto& [name, rate] : sites)
      x.sample("storecache_wan_site_rate_limit_bytes_per_second{{site=\"{}\"}} {}\n",
               admin::escape_label(name), rate);
  }
  // One sample per class of a per_class counter.
  auto by_class = [&](std::string_view name, std::string_view help, auto value) {
    x.family(name, "counter", help);
    for (const fetch_class c : {fetch_class::device, fetch_class::background})
      x.sample("{}{{class=\"{}\"}} {}\n", name, to_string(c),
               value(stats_[static_cast<std::size_t>(c)]));
  };
  by_class("storecache_wan_bytes_total",
           "Upstream body bytes read under the WAN budget, by class: device (a device waits for "
           "them) or background (prefetch, background revalidation).",
           [](const per_class& p) { return p.bytes.load(std::memory_order_relaxed); });
  by_class("storecache_wan_throttled_total",
           "Upstream reads that waited for the rate cap, by class.",
           [](const per_class& p) { return p.waits.load(std::memory_order_relaxed); });
  by_class("storecache_wan_throttled_seconds_total",
           "Time upstream reads spent waiting for the rate cap, by class.", [](const per_class& p) {
             return fmt::format(
                 "{:.6f}", static_cast<double>(p.waited_ns.load(std::memory_order_relaxed)) / 1e9);
           });
  return out;
}

}  // namespace storecache::upstream
