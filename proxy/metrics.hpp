// Process-wide counters, rendered in the Prometheus text format on the admin listener.
//
// Counters are relaxed atomics bumped on the request path; a scrape sums nothing and locks
// only the site table. Per-site counters are created on first use and never removed, so a
// config reload that drops a site never makes a counter go backwards.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "proxy/exchange.hpp"

namespace storecache::proxy {

// What the cache did for a request (the cache_status label).
enum class cache_outcome : int {
  hit,          // served from cache, fresh
  stale,        // served stale (origin down or stale-while-revalidate)
  revalidated,  // stored copy confirmed by a 304 and served
  miss,         // fetched upstream (and stored if storable)
  pass,         // not cacheable: forwarded without storing
  local,        // answered by storecache itself (421, 405, 400, ...), nothing upstream
};
inline constexpr int cache_outcome_count = 6;
std::string_view to_string(cache_outcome o);

enum class byte_source : int { cache, upstream };

// Index of a status code's class: 0 = 1xx ... 4 = 5xx.
inline int code_class_index(unsigned status) {
  return status >= 100 && status < 600 ? static_cast<int>(status / 100) - 1 : 4;
}

struct site_counters {
  using counter = std::atomic<std::uint64_t>;
  std::array<std::array<counter, cache_outcome_count>, 2> requests{};  // [protocol][outcome]
  std::array<counter, 5> responses{};                                  // [code class]
  std::array<counter, 2> response_bytes{};                             // [byte_source]
  std::array<counter, 6> upstream_requests{};  // [code class], [5] = no response (error)
  counter upstream_bytes{0};
};

class metrics {
 public:
  // The counters of a site ("_unknown" for requests that matched none). Stable address.
  site_counters& site(std::string_view name);

  void connection_opened(protocol p) { open_connections_[index(p)].fetch_add(1, relaxed); }
  void connection_closed(protocol p) { open_connections_[index(p)].fetch_sub(1, relaxed); }
  void tls_handshake_failed() { tls_handshake_failures_.fetch_add(1, relaxed); }
  void connection_refused_limit() { connections_over_limit_.fetch_add(1, relaxed); }

  // Exchanges being answered right now; graceful shutdown waits for this to reach zero.
  void request_started() { in_flight_.fetch_add(1, relaxed); }
  void request_finished() { in_flight_.fetch_sub(1, relaxed); }
  std::int64_t in_flight() const { return in_flight_.load(relaxed); }

  // Prometheus text exposition format, version 0.0.4.
  std::string render() const;
  // Families owned elsewhere (the cache), appended to render(). Set before serving.
  void set_extra(std::function<std::string()> f) { extra_ = std::move(f); }

 private:
  static constexpr auto relaxed = std::memory_order_relaxed;
  static int index(protocol p) { return p == protocol::http2 ? 1 : 0; }

  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<site_counters>, std::less<>> sites_;
  std::array<std::atomic<std::int64_t>, 2> open_connections_{};
  std::atomic<std::uint64_t> tls_handshake_failures_{0};
  std::atomic<std::uint64_t> connections_over_limit_{0};
  std::atomic<std::int64_t> in_flight_{0};
  std::function<std::string()> extra_;
};

}  // namespace storecache::proxy
