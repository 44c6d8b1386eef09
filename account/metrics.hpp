// Process-wide counters, rendered in the Prometheus text format on the admin listener.
//
// Counters are relaxed atomics bumped on the request path; a scrape sums nothing and locks
// only the site table. Per-site counters are created on first use and never removed, so a
// config reload that drops a site never makes a counter go backwards.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "access/denial.hpp"
#include "access/request_framing.hpp"
#include "http/exchange.hpp"
#include "http/tls_failure.hpp"
#include "upstream/upstream_error.hpp"
#include "usage/device.hpp"

namespace storecache::access {
class client_ledger;
}

namespace storecache::admin {
class exposition;
}

namespace storecache::account {

using upstream::status_for;
using upstream::to_string;
using upstream::upstream_error;

// The daemon's own memory, for /metrics and the control thread's heap trim.
struct process_memory {
  std::uint64_t resident = 0;     // resident pages, the LMDB map's file pages included
  std::uint64_t anonymous = 0;    // resident and not file-backed: heap, stacks
  std::uint64_t heap_in_use = 0;  // glibc malloc: allocated
  std::uint64_t heap_free = 0;    // in malloc's free lists, resident or not
};
process_memory read_process_memory();

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
  // [upstream_error]: failures before or during an upstream response (none/client unused).
  std::array<counter, 8> upstream_errors{};
  // Upstream authorizations of a device's request (authorize_with_upstream, signed requests
  // without a verifier), by outcome: [allowed, denied, failed, remembered].
  std::array<counter, 4> authorizations{};
};

// A latency histogram with fixed buckets suited to a LAN cache (1 ms .. 60 s): one relaxed
// atomic per bucket and the sum in nanoseconds, so observe() neither allocates nor locks.
// Buckets are stored per interval and made cumulative when rendered; _count is their sum, so
// a scrape never shows _count and the +Inf bucket disagreeing.
class latency_histogram {
 public:
  static constexpr std::size_t finite_buckets = 15;
  // Upper bounds in nanoseconds and as the le label shows them (seconds).
  static constexpr std::array<std::int64_t, finite_buckets> bounds_ns{
      1'000'000,     2'500'000,     5'000'000,      10'000'000,     25'000'000,
      50'000'000,    100'000'000,   250'000'000,    500'000'000,    1'000'000'000,
      2'500'000'000, 5'000'000'000, 10'000'000'000, 30'000'000'000, 60'000'000'000};
  static constexpr std::array<std::string_view, finite_buckets> bounds_text{
      "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
      "0.5",   "1",      "2.5",   "5",    "10",    "30",   "60"};

  void observe(std::chrono::nanoseconds d);
  // Appends name_bucket{labels,le="..."}, name_sum{labels} and name_count{labels} lines.
  // labels: already formatted and escaped, e.g. cache_status="hit".
  void render(admin::exposition& x, std::string_view name, std::string_view labels) const;

 private:
  std::array<std::atomic<std::uint64_t>, finite_buckets + 1> buckets_{};  // last: > 60 s
  std::atomic<std::uint64_t> sum_ns_{0};
};

struct request_record;

inline void count_upstream_error(site_counters& c, upstream_error e) {
  c.upstream_errors[static_cast<std::size_t>(e)].fetch_add(1, std::memory_order_relaxed);
}

class metrics {
 public:
  // Counts one answered request: requests, responses, response bytes (its site's counters),
  // the duration histograms and the device mix. On the request path: no allocation, and no
  // lock once this thread has looked the site up (site()).
  void record(const request_record& r);

  // The counters of a site ("_unknown" for requests that matched none). Stable address. The
  // first lookup of a site on a thread takes the lock; later ones hit the thread's cache.
  site_counters& site(std::string_view name);

  void connection_opened(http::protocol p) { open_connections_[index(p)].fetch_add(1, relaxed); }
  void connection_closed(http::protocol p) { open_connections_[index(p)].fetch_sub(1, relaxed); }
  void tls_handshake_failed(http::tls_failure why) {
    tls_handshake_failures_[static_cast<std::size_t>(why)].fetch_add(1, relaxed);
  }
  // A connection over limits.max_connections: told so (HTTP/1.1 503, HTTP/2 GOAWAY), or closed
  // without a word (too many such answers in progress, or its handshake failed).
  enum class over_limit_answer { http1_503, h2_goaway, closed };
  void connection_refused_limit(over_limit_answer how) {
    connections_over_limit_[static_cast<std::size_t>(how)].fetch_add(1, relaxed);
  }
  // A request the front end or the handler refused on protocol grounds (400, 408, 413, 414,
  // 431, 501): counted here by reason, besides its request record.
  void request_refused(http::protocol p, access::refusal why) {
    refused_[index(p)][static_cast<std::size_t>(why)].fetch_add(1, relaxed);
  }
  // A client refused by the access policy: at accept, in the TLS handshake or per request.
  // site: the site's name, or no_site ("-") before any site is known (at accept, or a
  // handshake that named no site).
  void access_denied(std::string_view site, access::denial why);
  static constexpr std::string_view no_site = "-";
  // A request the client abandoned before its response completed (proxy/client_resets.hpp).
  void client_reset(http::protocol p) { client_resets_[index(p)].fetch_add(1, relaxed); }
  // An HTTP/2 connection ended with GOAWAY(ENHANCE_YOUR_CALM) for its resets.
  void connection_closed_for_resets() { connections_closed_for_resets_.fetch_add(1, relaxed); }
  // HTTP/2 errors we answered a client's frames with (RFC 9113 5.4): a GOAWAY carrying an
  // error code (the connection is over), an RST_STREAM with one (other than NO_ERROR), and
  // request header blocks over limits.max_header_bytes / max_header_count (431). code: the
  // HTTP/2 error code, h2_error_count - 1 for codes beyond ENHANCE_YOUR_CALM / HTTP_1_1_REQUIRED.
  static constexpr std::size_t h2_error_count = 15;
  void h2_connection_error(std::uint32_t code) {
    h2_conn_errors_[h2_error_index(code)].fetch_add(1, relaxed);
  }
  void h2_stream_error(std::uint32_t code) {
    h2_stream_errors_[h2_error_index(code)].fetch_add(1, relaxed);
  }
  void h2_headers_refused() { h2_headers_refused_.fetch_add(1, relaxed); }
  // A cold miss refused after waiting over limits.misses_per_connection.
  void connection_miss_refused() { connection_misses_refused_.fetch_add(1, relaxed); }

  // Exchanges being answered right now; graceful shutdown waits for this to reach zero.
  void request_started() { in_flight_.fetch_add(1, relaxed); }
  void request_finished() { in_flight_.fetch_sub(1, relaxed); }
  std::int64_t in_flight() const { return in_flight_.load(relaxed); }

  // Prometheus text exposition format, version 0.0.4.
  std::string render() const;
  // Families owned elsewhere (the cache), appended to render(). Set before serving.
  void set_extra(std::function<std::string()> f) { extra_ = std::move(f); }
  // The client ledger whose counters and size are rendered (zeros without one). Set before
  // serving; it must outlive every render().
  void set_ledger(const access::client_ledger* l) { ledger_ = l; }

 private:
  static constexpr auto relaxed = std::memory_order_relaxed;
  static int index(http::protocol p) { return p == http::protocol::http2 ? 1 : 0; }
  static std::size_t h2_error_index(std::uint32_t code) {
    return code < h2_error_count - 1 ? code : h2_error_count - 1;
  }

  // Tells this object's entries in a thread's lookup cache (site()) from an earlier one's.
  const std::uint64_t id_ = next_id();
  static std::uint64_t next_id();
  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<site_counters>, std::less<>> sites_;
  std::array<std::atomic<std::int64_t>, 2> open_connections_{};
  std::array<std::atomic<std::uint64_t>, http::tls_failure_count> tls_handshake_failures_{};
  std::array<std::atomic<std::uint64_t>, 3> connections_over_limit_{};  // [over_limit_answer]
  // [protocol][refusal]
  std::array<std::array<std::atomic<std::uint64_t>, access::refusal_count>, 2> refused_{};
  // [site or "-"][denial]; created on first denial (and "-" at once), never removed.
  using denial_counters = std::array<std::atomic<std::uint64_t>, access::denial_count>;
  std::map<std::string, std::unique_ptr<denial_counters>, std::less<>> denied_ = [] {
    std::map<std::string, std::unique_ptr<denial_counters>, std::less<>> m;
    m.emplace(std::string(no_site), std::make_unique<denial_counters>());
    return m;
  }();
  std::array<std::atomic<std::uint64_t>, 2> client_resets_{};  // [protocol]
  std::atomic<std::uint64_t> connections_closed_for_resets_{0};
  std::atomic<std::uint64_t> connection_misses_refused_{0};
  std::array<std::atomic<std::uint64_t>, h2_error_count> h2_conn_errors_{};    // [code]
  std::array<std::atomic<std::uint64_t>, h2_error_count> h2_stream_errors_{};  // [code]
  std::atomic<std::uint64_t> h2_headers_refused_{0};
  const access::client_ledger* ledger_ = nullptr;
  std::atomic<std::int64_t> in_flight_{0};
  std::function<std::string()> extra_;

  // Not per site: the fleet is the store's, and labels stay bounded (6 + 49 + 700 + 3 series).
  std::array<latency_histogram, cache_outcome_count> duration_{};  // [cache_outcome]
  std::array<latency_histogram, cache_outcome_count> ttfb_{};      // [cache_outcome]
  using counter = std::atomic<std::uint64_t>;
  static constexpr std::size_t os_count = usage::os_family_count;
  static constexpr std::size_t max_os_major = 99;
  std::array<std::array<counter, usage::browser_family_count>, os_count> devices_{};
  std::array<std::array<counter, max_os_major + 1>, os_count> os_versions_{};  // [os][0: unknown]
  std::array<counter, usage::tls_version_count> tls_versions_{};
};

}  // namespace storecache::account
