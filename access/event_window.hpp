// Events in the last `window`, counted in a fixed number of buckets: constant memory however
// many events arrive (a reset flood is thousands per second), exact to within one bucket.
//
// An event at time e is in the count from e until between 7/8 and 8/8 of a window later (it
// leaves with its bucket). The window is an argument rather than a member so that a reload
// that changes it needs no walk over every tracked client; after such a change the buckets
// already counted are read with the new width, which misplaces at most one window of history.
// Pure: the clock is an argument (STYLE rule 4).
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <limits>

namespace storecache::access {

class event_window {
 public:
  using clock = std::chrono::steady_clock;
  static constexpr std::int64_t bucket_count = 8;

  // Counts one event at `now`; returns the events in the window ending at `now`, this one
  // included (saturating, never wraps).
  std::uint32_t add(clock::time_point now, clock::duration window) {
    const std::int64_t slot = slot_of(now, window);
    advance(slot);
    auto& c = counts_[index(std::max(slot, newest_))];
    if (c != std::numeric_limits<std::uint32_t>::max()) ++c;
    return count(now, window);
  }

  // Events in the window ending at `now`.
  std::uint32_t count(clock::time_point now, clock::duration window) const {
    if (newest_ == never) return 0;
    const std::int64_t slot = std::max(slot_of(now, window), newest_);
    std::uint64_t sum = 0;
    // The ring holds slots newest_-7 .. newest_; those within (slot-8, slot] are in the window.
    for (std::int64_t s = slot - bucket_count + 1; s <= newest_; ++s)
      sum += counts_[index(s)];
    return static_cast<std::uint32_t>(
        std::min<std::uint64_t>(sum, std::numeric_limits<std::uint32_t>::max()));
  }

  void clear() {
    counts_.fill(0);
    newest_ = never;
  }

 private:
  static constexpr std::int64_t never = std::numeric_limits<std::int64_t>::min();

  static std::int64_t slot_of(clock::time_point now, clock::duration window) {
    const auto width = std::max<clock::rep>(window.count() / bucket_count, 1);
    return now.time_since_epoch().count() / width;
  }
  static std::size_t index(std::int64_t slot) {
    return static_cast<std::size_t>(((slot % bucket_count) + bucket_count) % bucket_count);
  }
  // Moves the newest bucket to `slot`, emptying the buckets it passes. A slot older than the
  // newest (a narrower window after a reload) counts into the newest bucket.
  void advance(std::int64_t slot) {
    if (newest_ == never || slot - newest_ >= bucket_count) {
      counts_.fill(0);
      newest_ = slot;
      return;
    }
    for (; newest_ < slot; ++newest_)
      counts_[index(newest_ + 1)] = 0;
  }

  std::array<std::uint32_t, bucket_count> counts_{};
  std::int64_t newest_ = never;
};

}  // namespace storecache::access
