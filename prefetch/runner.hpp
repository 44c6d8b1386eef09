// Prefetch: each [[site.prefetch]] source's listing is read inside its time windows, every
// interval, and every object it names is brought into the cache before a device asks for it.
//
// One thread of its own (an io_context the server starts and stops like a worker's), so
// prefetch never runs on a device's event loop. Per source, one loop:
//   outside its windows -> wait (checked every minute: the local clock may move; a reload
//                          wakes it at once)
//   due -> read the listing (conditional: an unchanged listing costs a 304) and the listings
//          it names, up to max_depth -> for each object, at most [prefetch] connections at once
//          over all sources:
//            stored and fresh           -> counted, not touched
//            a device's fetch in flight -> waited for, never fetched twice
//            missing or stale           -> a background fill through upstream::lead_fill, the
//                                          same fill a device's miss leads (same key, same RFC
//                                          9111 rules, validators sent), which devices join
//   -> readiness updated; the next run after `interval` (sooner after failures).
// Device misses go first: a prefetch fetch takes a slot of the upstream fetch limiter only if
// one is free now, never queueing; otherwise it waits and tries again. A window that closes
// stops the run between objects; the next run resumes where it stopped, since what is fresh
// is skipped (so does a restart).
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "cache/http_fields.hpp"
#include "config/config.hpp"
#include "prefetch/listing.hpp"
#include "prefetch/readiness.hpp"
#include "usage/history.hpp"

namespace storecache::upstream {
class cache_service;
class fetch_limiter;
class upstream_pool;
class wan_budget;
}  // namespace storecache::upstream
namespace storecache::account {
class metrics;
}
namespace storecache::usage {
class recorder;
}

namespace storecache::prefetch {

// By site name: the TLS context for the site's upstream (null: plain http).
using upstream_tls_map =
    std::map<std::string, std::shared_ptr<boost::asio::ssl::context>, std::less<>>;

// A source's readiness as the usage history keeps it (for `storecache report` and the status
// page).
usage::prefetch_state usage_state(const readiness& r);

// How a listing is read through the cache: checked with the upstream even while its stored
// copy is fresh (a listing is re-read every interval), a copy current but not fresh
// (no-cache) still counts, and a body over max_bytes or not whole by the deadline is given
// up (the fill goes on without the run, under the orphan rules).
struct object_bounds {
  bool revalidate = false;
  std::uint64_t max_bytes = std::numeric_limits<std::uint64_t>::max();
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
};

class runner {
 public:
  // The services outlive the runner's thread (the server stops it with its workers); usage may
  // be null.
  runner(upstream::cache_service& cache, upstream::fetch_limiter& limiter,
         upstream::wan_budget& budget, account::metrics& stats, usage::recorder* usage);
  ~runner();
  runner(const runner&) = delete;
  runner& operator=(const runner&) = delete;

  // Starts the thread with this configuration (sources of every site).
  void start(std::shared_ptr<const config::config> cfg, upstream_tls_map tls);
  // On reload: new sources start, removed ones stop, changed ones apply from their next run.
  void reconfigure(std::shared_ptr<const config::config> cfg, upstream_tls_map tls);
  // Stops the event loop and joins the thread; what runs is cut between two steps. The
  // io_context stays until destroy(): completions of disk work may still be queued to it.
  void stop();
  // After the server closed the wake gate: destroys the loop, and with it every frame.
  void destroy();

  // Its event loop, between start() and destroy() (the server's watchdog beats through it).
  boost::asio::io_context& loop() { return *io_; }

  std::vector<readiness> snapshot() const;
  std::string render_metrics() const {
    return prefetch::render_metrics(snapshot(), pin_ceiling_.load());
  }

  struct source_run;  // one source's loop state (runner.cpp)

 private:
  void spawn_missing_loops();  // on the runner's thread
  boost::asio::awaitable<void> source_loop(std::shared_ptr<source_run> s);
  boost::asio::awaitable<bool> run_once(source_run& s, std::shared_ptr<const config::config> cfg,
                                        const config::site& site,
                                        const config::prefetch_source& src);
  struct listing_read;
  boost::asio::awaitable<listing_read> read_listing(source_run& s, const config::site& site,
                                                    const std::string& path,
                                                    std::optional<source_kind> kind,
                                                    const config::prefetch_source& src,
                                                    std::shared_ptr<const config::config> cfg);
  bool parse_listing(source_run& s, const config::site& site, const std::string& path,
                     std::optional<source_kind> kind, const config::prefetch_source& src,
                     const config::prefetch_settings& limits, std::string_view body,
                     const cache::header_list& headers, listing_read& out);
  // A listing the cache may not keep: a conditional GET of its own (the memo's validators).
  boost::asio::awaitable<void> read_listing_direct(source_run& s, const config::site& site,
                                                   const std::string& path,
                                                   std::optional<source_kind> kind,
                                                   const config::prefetch_source& src,
                                                   const config::prefetch_settings& limits,
                                                   listing_read& out);
  struct object_result;
  boost::asio::awaitable<object_result> ensure_object(source_run& s, const config::site& site,
                                                      const config::prefetch_source& src,
                                                      std::shared_ptr<const config::config> cfg,
                                                      std::string_view path,
                                                      const object_bounds& bounds = {});
  std::shared_ptr<upstream::upstream_pool> pool_for(const config::site& site);
  // Applies f to the source's readiness, under the lock.
  template <typename F>
  void update(const source_run& s, F f);
  void log_once(source_run& s, const std::string& cause, const std::string& text);
  void clear_cause(source_run& s, const std::string& prefix);
  // Drops what the source remembers of listings this run did not reach.
  void forget_unlisted(source_run& s, const std::set<std::string>& visited);
  // Unpins what sources no longer pin (removed, or pin = false): at start and on reload.
  void retain_pins();
  // Hands every source's readiness to the usage history (for `storecache report`).
  void publish_usage();
  // What a run keeps pinned: objects in listing order while the ceiling allows.
  struct pin_tally;

  // Shared by every loop: at most [prefetch] connections objects in flight at once.
  class slots;

  upstream::cache_service& cache_;
  upstream::fetch_limiter& limiter_;
  upstream::wan_budget& budget_;  // every prefetch read is background under it
  account::metrics& stats_;
  usage::recorder* usage_;
  std::unique_ptr<boost::asio::io_context> io_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> pin_ceiling_{0};
  // Runner thread only:
  std::shared_ptr<const config::config> cfg_;
  upstream_tls_map tls_;
  std::map<std::string, std::shared_ptr<upstream::upstream_pool>, std::less<>> pools_;
  std::unique_ptr<slots> slots_;
  // Pinned body bytes per source ("site\nsource"), as its last run left them: the ceiling is
  // shared by every source.
  std::map<std::string, std::uint64_t> pinned_bytes_;
  std::map<std::string, std::shared_ptr<source_run>> runs_;  // "site\nsource"
  // The readiness of every source, read by /metrics from the control thread.
  mutable std::mutex mu_;
  std::map<std::string, readiness> status_;  // same keys as runs_
};

}  // namespace storecache::prefetch
