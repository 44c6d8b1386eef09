#include "cache/commit_queue.hpp"

#include <vector>

namespace storecache::cache {

namespace {
// A transaction of this many small objects takes a few milliseconds; larger ones would only
// make the other index writers (head refreshes, recency flushes) wait longer.
constexpr std::size_t max_batch_objects = 1024;
}  // namespace

commit_queue::commit_queue(store& s, limits l, full_fn on_full)
    : store_(s), limits_(l), on_full_(std::move(on_full)), thread_([this] { run(); }) {}

commit_queue::~commit_queue() {
  stop();
}

void commit_queue::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void commit_queue::enqueue(pending_commit item, std::uint64_t holds, done_fn done) {
  const std::uint64_t size = item.insert.size();
  std::unique_lock lock(mu_);
  if (stop_) {  // stopping: nobody else will commit it
    lock.unlock();
    store_.commit_batch({&item, 1});
    done(item.result);
    return;
  }
  ++backlog_.objects;
  backlog_.bytes += size;
  backlog_.memory += holds;
  const bool now_full =
      !backlog_.full && (backlog_.objects >= limits_.objects || backlog_.memory >= limits_.memory);
  if (now_full) {
    backlog_.full = true;
    full_.store(true, std::memory_order_relaxed);
  }
  const backlog seen = backlog_;
  queue_.push_back({std::move(item), holds, std::move(done)});
  lock.unlock();
  cv_.notify_one();
  if (now_full && on_full_) on_full_(true, seen);
}

void commit_queue::run() {
  std::vector<pending_commit> items;
  std::vector<done_fn> dones;
  for (;;) {
    std::uint64_t memory = 0;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything is committed
      while (!queue_.empty() && items.size() < max_batch_objects) {
        items.push_back(std::move(queue_.front().item));
        dones.push_back(std::move(queue_.front().done));
        memory += queue_.front().holds;
        queue_.pop_front();
      }
    }
    store_.commit_batch(items);
    batches_.fetch_add(1, std::memory_order_relaxed);
    std::uint64_t bytes = 0;
    for (const auto& i : items)
      bytes += i.insert.size();
    bool caught_up = false;
    backlog seen;
    {
      std::lock_guard lock(mu_);
      backlog_.objects -= items.size();
      backlog_.bytes -= bytes;
      backlog_.memory -= memory;
      if (backlog_.full && backlog_.objects <= limits_.objects / 2 &&
          backlog_.memory <= limits_.memory / 2) {
        backlog_.full = false;
        full_.store(false, std::memory_order_relaxed);
        caught_up = true;
      }
      seen = backlog_;
    }
    if (caught_up && on_full_) on_full_(false, seen);
    for (std::size_t i = 0; i < items.size(); ++i)
      dones[i](items[i].result);
    items.clear();
    dones.clear();
  }
}

commit_queue::backlog commit_queue::snapshot() const {
  std::lock_guard lock(mu_);
  return backlog_;
}

}  // namespace storecache::cache
