// The WAN budget: what storecache may read from all upstreams together, in bytes per second,
// by local time ([wan] rate and [[wan.window]]s), and from one site's upstream ([site.wan]):
// a read waits for both. Every upstream body read asks admit() first
// and charges what it read: a token bucket that a read may overdraw (by at most one read),
// refilled at the rate in force, holding at most a tenth of a second's worth, so that an idle
// link does not save up a burst. While the bucket is empty, upstream sockets are not read, so
// TCP back-pressure slows the origin; bytes already in the cache go to devices at LAN speed.
//
// Priorities: a device-driven read (a miss a device waits for, a pass-through, a fill a
// device joined) goes first; background reads (prefetch, background revalidation) read only
// when no device read is waiting, so a device miss waits at most for the debt of reads already
// under way (one refill).
//
// Thread-safe: workers and the prefetch runner share one budget; each waiter sleeps on a timer
// of its own executor (nothing wakes another thread's timer).
#pragma once

#include <array>
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace storecache::upstream {

enum class fetch_class { device, background };
std::string_view to_string(fetch_class c);

// The arithmetic of the budget, without clocks or locks (unit-tested alone).
class token_bucket {
 public:
  using duration = std::chrono::nanoseconds;
  // Adds what `elapsed` at `rate` bytes/s earns, up to the capacity (a tenth of a second of
  // rate, at least 16 KiB).
  void refill(duration elapsed, std::uint64_t rate);
  // How long a reader of class c must wait before reading (zero: read now). A background
  // reader waits while devices_waiting > 0, however full the bucket.
  duration wait(std::uint64_t rate, fetch_class c, int devices_waiting) const;
  void charge(std::uint64_t bytes) { level_ -= static_cast<double>(bytes); }
  double level() const { return level_; }
  static double capacity(std::uint64_t rate);

 private:
  double level_ = 0;
};

class wan_budget {
 public:
  using clock = std::chrono::steady_clock;

  // On start and on reload: [wan] and every site's [site.wan]. Logs a cap in force when it
  // changes.
  void set(const config::config& cfg);
  void set(const config::wan_settings& all);  // without site caps (tests)
  // Returns when a reader of class c may read from the site's upstream; at once while no cap
  // is in force.
  boost::asio::awaitable<void> admit(fetch_class c, std::string_view site = {});
  // n body bytes were read by a reader of class c from the site's upstream.
  void charge(std::size_t n, fetch_class c, std::string_view site = {});
  // Whether any cap is configured at all (global or a site's): without one, readers need not
  // ask (no lock, no coroutine per read). A lock-free read.
  bool capped() const { return capped_.load(std::memory_order_relaxed); }
  // The cap in force now, bytes/s (0: none): all sites together, or one site's own.
  std::uint64_t rate_now();
  std::uint64_t site_rate_now(std::string_view site);

  // storecache_wan_* families.
  std::string render_metrics();

 private:
  // One cap: its schedule, its bucket, the rate in force.
  struct cap {
    std::string name;  // "" for all sites; else the site's
    config::wan_settings settings;
    token_bucket bucket;
    clock::time_point refilled{};
    clock::time_point rate_checked{};
    std::uint64_t rate = 0;
    bool rate_known = false;
  };
  // Under mu_: the rate for now (the local minute, looked up at most once a second).
  static std::uint64_t rate_locked(cap& c, clock::time_point now);
  // Under mu_: refills c and says how long a reader of class k waits for it.
  token_bucket::duration wait_locked(cap& c, clock::time_point now, fetch_class k);
  cap* site_cap_locked(std::string_view site);

  std::mutex mu_;
  cap all_;
  std::vector<cap> sites_;  // the sites with a [site.wan]
  std::atomic<int> devices_waiting_{0};
  std::atomic<bool> capped_{false};
  struct per_class {
    std::atomic<std::uint64_t> bytes{0};
    std::atomic<std::uint64_t> waits{0};
    std::atomic<std::uint64_t> waited_ns{0};
  };
  std::array<per_class, 2> stats_{};
};

}  // namespace storecache::upstream
