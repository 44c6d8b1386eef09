// The cache as the daemon holds it: the store (cache/), the in-flight table for request
// collapsing, the committer thread (group commit: every finished body waiting is committed in
// one index transaction with one flush), a small pool of threads for the other disk work that
// must not block a worker (head refresh, invalidation), and the cache's counters for /metrics.
#pragma once

#include <array>
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "cache/commit_queue.hpp"
#include "cache/store.hpp"
#include "config/config.hpp"
#include "upstream/fill.hpp"
#include "upstream/orphan_policy.hpp"

namespace storecache::upstream {

namespace asio = boost::asio;

struct cache_counters {
  using counter = std::atomic<std::uint64_t>;
  counter collapsed{0};  // requests that joined another request's fetch
  counter revalidated_not_modified{0};
  counter revalidated_modified{0};  // a conditional request got a new response
  counter revalidation_failed{0};   // the origin failed; stale served or error returned
  counter stale_served{0};
  counter store_failures{0};  // insert I/O errors: the fill went on without storing
  // Fills that went on unstored after storing failed mid-body (their clients served from
  // memory), and clients of such fills cut because they fell behind (fill::window_limit).
  counter unstored_fills{0};
  counter unstored_readers_cut{0};
  counter cold_range_passthrough{0};
  counter background_fills{0};
  // Fills whose every client left: stopped, or finished for a reason (upstream::orphan_verdict
  // order), and [5]: paused, then resumed by a client coming back within the grace.
  std::array<counter, 6> orphan_fills{};
  std::atomic<std::int64_t> orphan_fills_paused{0};  // gauge: paused now, waiting for a reader
};

// The commit backlog's bound (cache::commit_queue). Over either figure, new misses pass
// through unstored (storing pauses) until the backlog is down to half of it.
using commit_limits = cache::commit_queue::limits;
using commit_backlog = cache::commit_queue::backlog;

class cache_service {
 public:
  // Opens (creating if needed) the store under settings.dir; throws std::runtime_error.
  // gate: closed by the server once its workers are gone (fills then post no wake-ups).
  cache_service(const config::cache_settings& settings, std::shared_ptr<const wake_gate> gate,
                commit_limits limits = {});
  ~cache_service();

  // Commits a finished body together with whatever else is waiting (store::commit_batch) on
  // the committer thread, and resumes the caller on its own executor with this object's
  // outcome (store_errc::size_mismatch, too_big, I/O errors).
  boost::asio::awaitable<cache::error_code> commit(cache::insert_handle insert,
                                                   cache::stored_head head);
  commit_backlog backlog() const;
  // At stop, after the workers' threads ended and while their io_contexts still exist (to
  // queue the completions): waits for the disk pool, commits what is queued, ends the
  // committer.
  void finish_disk_work();

  cache::store& store() { return store_; }
  inflight_table& inflight() { return inflight_; }
  boost::asio::thread_pool& disk() { return disk_; }
  cache_counters& counters() { return counters_; }

  // After an insert error (disk or index full, I/O error) storing is suspended: misses pass
  // through unstored for a while (1 s, doubling while it keeps failing, at most 64 s), hits
  // are served; then the next miss tries again. Logged once when it starts and once when a
  // store succeeds again. Storing also pauses while the commit backlog is over its bound
  // (commit_limits), until the committer has caught up.
  void storing_failed(const cache::error_code& ec);
  void storing_succeeded();
  bool storing_paused() const;
  bool storing_suspended() const { return suspended_.load(std::memory_order_relaxed); }

  // Prometheus text for the cache's own families.
  std::string render_metrics();

 private:
  cache::store store_;
  inflight_table inflight_;
  boost::asio::thread_pool disk_{2};
  cache_counters counters_;
  std::atomic<std::int64_t> paused_until_{0};  // steady_clock ticks
  std::atomic<bool> suspended_{false};         // since a store failed, until one succeeds
  std::mutex suspend_mu_;                      // the two below, and the log lines
  std::chrono::seconds backoff_{0};
  std::chrono::steady_clock::time_point suspended_since_{};
  cache::commit_queue committer_;  // after store_: stopped before the store goes
};

}  // namespace storecache::upstream
