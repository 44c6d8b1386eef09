#include "account/usage_service.hpp"

#include <stdexcept>

#include "log/log.hpp"

namespace storecache::account {

namespace {

usage::history open_history(cache::store& store) {
  auto h = usage::history::open(store.env());
  if (!h) throw std::runtime_error("cannot open the usage history: " + h.error().message());
  return std::move(*h);
}

std::uint32_t current_hour() {
  return usage::hour_of(std::time(nullptr));
}

}  // namespace

usage_service::usage_service(cache::store& store) : history_(open_history(store)) {}

void usage_service::flush() {
  auto delta = recorder_.take();
  auto prefetch = recorder_.take_prefetch(std::time(nullptr));
  if (!delta.empty() || prefetch)
    if (auto ec = history_.add(delta, prefetch)) {
      errors_.fetch_add(1, std::memory_order_relaxed);
      log::warn("usage history: adding {} bucket(s){} failed: {}", delta.size(),
                prefetch ? " and the prefetch readiness" : "", ec.message());
      // The counts are lost; the readiness is a state, not a delta: the next flush tries again.
      if (prefetch) recorder_.untake_prefetch(std::move(*prefetch));
    }
  const std::uint32_t now = current_hour();
  if (now != pruned_hour_ && now > usage::history_retention_hours) {
    pruned_hour_ = now;
    auto n = history_.prune(now - usage::history_retention_hours);
    if (!n) {
      errors_.fetch_add(1, std::memory_order_relaxed);
      log::warn("usage history: pruning failed: {}", n.error().message());
    } else if (*n > 0)
      log::info("usage history: dropped {} bucket(s) older than {} days", *n,
                usage::history_retention_hours / 24);
  }
}

usage::result<usage::usage_summary> usage_service::last_hours(std::uint32_t hours,
                                                              std::size_t top_n) {
  return history_.summarize_last(hours, std::time(nullptr), top_n);
}

}  // namespace storecache::account
