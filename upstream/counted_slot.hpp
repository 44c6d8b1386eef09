// One unit of a small shared count with a limit (e.g. the cold misses one client connection
// leads): taken if the count is under the limit, given back when the slot is destroyed, from
// whichever thread, even after the owner of the count is gone (the count is shared).
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <utility>

namespace storecache::upstream {

class counted_slot {
 public:
  using count = std::atomic<std::size_t>;

  counted_slot() = default;
  counted_slot(counted_slot&& o) noexcept : count_(std::move(o.count_)) {}
  counted_slot& operator=(counted_slot&& o) noexcept {
    if (this != &o) {
      reset();
      count_ = std::move(o.count_);
    }
    return *this;
  }
  counted_slot(const counted_slot&) = delete;
  counted_slot& operator=(const counted_slot&) = delete;
  ~counted_slot() { reset(); }

  // A slot, or an empty one when `c` already holds `limit`.
  static counted_slot try_take(const std::shared_ptr<count>& c, std::size_t limit) {
    std::size_t now = c->load(std::memory_order_relaxed);
    do {
      if (now >= limit) return {};
    } while (!c->compare_exchange_weak(now, now + 1, std::memory_order_relaxed));
    counted_slot s;
    s.count_ = c;
    return s;
  }

  explicit operator bool() const { return count_ != nullptr; }
  void reset() {
    if (count_) count_->fetch_sub(1, std::memory_order_relaxed);
    count_.reset();
  }

 private:
  std::shared_ptr<count> count_;
};

}  // namespace storecache::upstream
