// The committer: finished bodies wait here and one thread commits whatever is waiting as one
// batch (store::commit_batch: one index transaction, one flush), so commits keep up with a
// burst of small misses. No sockets and no Asio: a commit's completion is a callback, run on
// the committer thread (the daemon's cache_service posts it to the waiting coroutine).
//
// Bound: the backlog (queued + being committed) is counted in objects and in the memory the
// caller says each waiting commit holds. Over either limit the queue reports full() until it
// is down to half, and the caller stops starting new stores meanwhile.
//
// Life cycle: running --stop()--> stopping (what is queued is still committed) --> stopped;
// an enqueue after stop() commits on the caller's thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "cache/store.hpp"

namespace storecache::cache {

class commit_queue {
 public:
  struct limits {
    std::uint64_t objects = 8192;
    std::uint64_t memory = 256ull << 20;
  };
  struct backlog {
    std::uint64_t objects = 0;
    std::uint64_t bytes = 0;   // their bodies
    std::uint64_t memory = 0;  // what the callers said they hold
    bool full = false;
  };
  using done_fn = std::function<void(error_code)>;
  // Told when the queue goes full (true) or has caught up (false), on the thread that did it.
  using full_fn = std::function<void(bool full, const backlog& now)>;

  commit_queue(store& s, limits l, full_fn on_full = {});
  ~commit_queue();  // stop()
  commit_queue(const commit_queue&) = delete;
  commit_queue& operator=(const commit_queue&) = delete;

  // holds: the memory the waiting commit keeps alive (counted against limits::memory).
  void enqueue(pending_commit item, std::uint64_t holds, done_fn done);
  // Commits what is queued, then ends the thread. Idempotent.
  void stop();

  backlog snapshot() const;
  bool full() const { return full_.load(std::memory_order_relaxed); }
  std::uint64_t batches() const { return batches_.load(std::memory_order_relaxed); }

 private:
  struct queued {
    pending_commit item;
    std::uint64_t holds;
    done_fn done;
  };
  void run();

  store& store_;
  const limits limits_;
  const full_fn on_full_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<queued> queue_;
  backlog backlog_;
  bool stop_ = false;
  std::atomic<bool> full_{false};
  std::atomic<std::uint64_t> batches_{0};
  std::thread thread_;  // last: starts once everything above exists
};

}  // namespace storecache::cache
