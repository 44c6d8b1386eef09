// The usage history as the daemon holds it: the recorder workers write into, the LMDB history
// it is flushed to (every few seconds, on the control thread), and the summaries the status
// page reads. Opened with the cache (it lives in the cache's LMDB environment).
#pragma once

#include <atomic>
#include <cstdint>
#include <ctime>

#include "cache/store.hpp"
#include "usage/history.hpp"
#include "usage/recorder.hpp"

namespace storecache::account {

class usage_service {
 public:
  // Opens the "usage" database in the store's environment; throws std::runtime_error.
  explicit usage_service(cache::store& store);

  usage::recorder& recorder() { return recorder_; }

  // Adds what was recorded since the last flush to the history, with the prefetch readiness
  // when recorder().set_prefetch was called since (same write transaction); once an hour, drops
  // hours older than the retention. Errors are logged (the delta is then lost, never the daemon).
  void flush();
  // The last `hours` hours, the current one included, as stored (flush() first to include the
  // last seconds).
  usage::result<usage::usage_summary> last_hours(std::uint32_t hours, std::size_t top_n = 10);

  // Flushes (or prunes) that failed since start: their counts are lost. For /metrics.
  std::uint64_t errors() const { return errors_.load(std::memory_order_relaxed); }

 private:
  usage::recorder recorder_;
  usage::history history_;
  std::uint32_t pruned_hour_ = 0;
  std::atomic<std::uint64_t> errors_{0};
};

}  // namespace storecache::account
