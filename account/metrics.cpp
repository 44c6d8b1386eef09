#include "account/metrics.hpp"

#include <fmt/format.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "access/client_ledger.hpp"
#include "account/build_info.hpp"
#include "account/request_record.hpp"
#include "admin/exposition.hpp"

namespace storecache::account {

std::string_view to_string(cache_outcome o) {
  switch (o) {
    case cache_outcome::hit:
      return "hit";
    case cache_outcome::stale:
      return "stale";
    case cache_outcome::revalidated:
      return "revalidated";
    case cache_outcome::miss:
      return "miss";
    case cache_outcome::pass:
      return "pass";
    case cache_outcome::local:
      return "local";
  }
  return "local";
}

std::uint64_t metrics::next_id() {
  static std::atomic<std::uint64_t> n{0};
  return ++n;
}

// Twice a request on every worker: the lock is taken once per site and thread, then each thread
// finds the counters in its own cache. Counters live as long as this object and are never
// removed, so a cached pointer stays good; the cache belongs to one metrics object at a time.
site_counters& metrics::site(std::string_view name) {
  thread_local struct {
    std::uint64_t owner = 0;
    std::map<std::string, site_counters*, std::less<>> found;
  } cache;
  if (cache.owner != id_) {
    cache.found.clear();
    cache.owner = id_;
  }
  if (auto hit = cache.found.find(name); hit != cache.found.end()) return *hit->second;
  std::lock_guard lock(mutex_);
  auto it = sites_.find(name);
  if (it == sites_.end())
    it = sites_.emplace(std::string(name), std::make_unique<site_counters>()).first;
  cache.found.emplace(std::string(name), it->second.get());
  return *it->second;
}

void metrics::access_denied(std::string_view site, access::denial why) {
  std::lock_guard lock(mutex_);
  auto it = denied_.find(site);
  if (it == denied_.end())
    it = denied_.emplace(std::string(site), std::make_unique<denial_counters>()).first;
  (*it->second)[static_cast<std::size_t>(why)].fetch_add(1, relaxed);
}

void latency_histogram::observe(std::chrono::nanoseconds d) {
  const std::int64_t ns = std::max<std::int64_t>(d.count(), 0);
  // The first bound >= ns: Prometheus buckets count observations <= le.
  const auto at = std::lower_bound(bounds_ns.begin(), bounds_ns.end(), ns) - bounds_ns.begin();
  buckets_[static_cast<std::size_t>(at)].fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<std::uint64_t>(ns), std::memory_order_relaxed);
}

void latency_histogram::render(admin::exposition& x, std::string_view name,
                               std::string_view labels) const {
  std::uint64_t cumulative = 0;
  for (std::size_t k = 0; k < finite_buckets; ++k) {
    cumulative += buckets_[k].load(std::memory_order_relaxed);
    x.sample("{}_bucket{{{},le=\"{}\"}} {}\n", name, labels, bounds_text[k], cumulative);
  }
  cumulative += buckets_[finite_buckets].load(std::memory_order_relaxed);
  x.sample("{}_bucket{{{},le=\"+Inf\"}} {}\n", name, labels, cumulative);
  // Read after the buckets: a concurrent observe() may be in the sum and not yet in a bucket
  // (or the reverse); Prometheus tolerates that, and the next scrape agrees again.
  const auto sum_ns = sum_ns_.load(std::memory_order_relaxed);
  x.sample("{}_sum{{{}}} {}\n", name, labels, static_cast<double>(sum_ns) / 1e9);
  x.sample("{}_count{{{}}} {}\n", name, labels, cumulative);
}

void metrics::record(const request_record& r) {
  auto& c = site(r.site ? std::string_view(r.site->name()) : "_unknown");
  const auto outcome = static_cast<std::size_t>(r.cache);
  c.requests[static_cast<std::size_t>(index(r.req.proto))][outcome].fetch_add(1, relaxed);
  c.responses[static_cast<std::size_t>(code_class_index(r.status))].fetch_add(1, relaxed);
  if (r.cache != cache_outcome::local)
    c.response_bytes[r.bytes_from_cache ? 0 : 1].fetch_add(r.bytes, relaxed);

  using std::chrono::duration_cast;
  using std::chrono::nanoseconds;
  duration_[outcome].observe(duration_cast<nanoseconds>(r.total));
  if (r.ttfb > std::chrono::steady_clock::duration::zero())
    ttfb_[outcome].observe(duration_cast<nanoseconds>(r.ttfb));

  // The device mix counts the store's devices using a site, as the usage history does:
  // local refusals (421 to scanners, 400, 405) say nothing about the fleet.
  if (r.site != nullptr && r.cache != cache_outcome::local) {
    const auto os = static_cast<std::size_t>(r.dev.os);
    const auto browser = static_cast<std::size_t>(r.dev.browser);
    if (os < os_count && browser < devices_[os].size()) devices_[os][browser].fetch_add(1, relaxed);
    const auto major = r.dev.os_major >= 1 && r.dev.os_major <= static_cast<int>(max_os_major)
                           ? static_cast<std::size_t>(r.dev.os_major)
                           : 0;
    if (os < os_count) os_versions_[os][major].fetch_add(1, relaxed);
    const auto tls = static_cast<std::size_t>(r.tls);
    tls_versions_[tls < tls_versions_.size() ? tls : tls_versions_.size() - 1].fetch_add(1,
                                                                                         relaxed);
  }
}

namespace {

constexpr std::array<std::string_view, 5> code_classes{"1xx", "2xx", "3xx", "4xx", "5xx"};
constexpr std::array<http::protocol, 2> protocols{http::protocol::http1_1, http::protocol::http2};

void render_process_memory(admin::exposition& x) {
  const process_memory m = read_process_memory();
  x.family("storecache_process_resident_memory_bytes", "gauge",
           "Resident memory of the daemon (/proc/self/statm), the index file's pages included.");
  x.sample("storecache_process_resident_memory_bytes {}\n", m.resident);
  x.family("storecache_process_anonymous_memory_bytes", "gauge",
           "Resident memory not backed by a file: the heap, stacks, buffers.");
  x.sample("storecache_process_anonymous_memory_bytes {}\n", m.anonymous);
  x.family("storecache_process_heap_bytes", "gauge",
           "The C heap (glibc malloc): bytes allocated, and bytes in its free lists (resident "
           "or already returned to the kernel).");
  x.sample(
      "storecache_process_heap_bytes{{state=\"in_use\"}} {}\n"
      "storecache_process_heap_bytes{{state=\"free\"}} {}\n",
      m.heap_in_use, m.heap_free);
}

}  // namespace

process_memory read_process_memory() {
  process_memory m;
  unsigned long long size_pages = 0;
  unsigned long long resident_pages = 0;
  unsigned long long file_pages = 0;  // file-backed and shared memory
  if (std::FILE* f = std::fopen("/proc/self/statm", "re")) {
    if (std::fscanf(f, "%llu %llu %llu", &size_pages, &resident_pages, &file_pages) != 3)
      resident_pages = file_pages = 0;
    std::fclose(f);
  }
  const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  m.resident = resident_pages * page;
  m.anonymous = (resident_pages - std::min(file_pages, resident_pages)) * page;
  const struct mallinfo2 mi = ::mallinfo2();
  m.heap_in_use = mi.uordblks + mi.hblkhd;
  m.heap_free = mi.fordblks;
  return m;
}

std::string metrics::render() const {
  std::string out;
  out.reserve(8192);
  admin::exposition x(out);
  std::lock_guard lock(mutex_);

  x.family("storecache_build_info", "gauge", "Version and commit of the running binary.");
  x.sample("storecache_build_info{{version=\"{}\",commit=\"{}\"}} 1\n", build_version,
           build_commit);

  x.family("storecache_requests_total", "counter",
           "Client requests answered, by site, protocol and what the cache did.");
  for (const auto& [name, c] : sites_)
    for (int p = 0; p < 2; ++p)
      for (int o = 0; o < cache_outcome_count; ++o)
        x.sample(
            "storecache_requests_total{{site=\"{}\",protocol=\"{}\",cache_status=\"{}\"}} {}\n",
            admin::escape_label(name), to_string(protocols[static_cast<std::size_t>(p)]),
            to_string(static_cast<cache_outcome>(o)),
            c->requests[static_cast<std::size_t>(p)][static_cast<std::size_t>(o)].load());

  x.family("storecache_responses_total", "counter",
           "Responses sent to clients, by site and status class.");
  for (const auto& [name, c] : sites_)
    for (std::size_t k = 0; k < 5; ++k)
      x.sample("storecache_responses_total{{site=\"{}\",code_class=\"{}\"}} {}\n",
               admin::escape_label(name), code_classes[k], c->responses[k].load());

  x.family("storecache_response_bytes_total", "counter",
           "Response body bytes sent to clients, by site and where they came from.");
  for (const auto& [name, c] : sites_) {
    x.sample("storecache_response_bytes_total{{site=\"{}\",source=\"cache\"}} {}\n",
             admin::escape_label(name), c->response_bytes[0].load());
    x.sample("storecache_response_bytes_total{{site=\"{}\",source=\"upstream\"}} {}\n",
             admin::escape_label(name), c->response_bytes[1].load());
  }

  x.family("storecache_upstream_requests_total", "counter",
           "Requests sent to the origin, by site and response status class (error: no response).");
  for (const auto& [name, c] : sites_)
    for (std::size_t k = 0; k < 6; ++k)
      x.sample("storecache_upstream_requests_total{{site=\"{}\",code_class=\"{}\"}} {}\n",
               admin::escape_label(name), k < 5 ? code_classes[k] : "error",
               c->upstream_requests[k].load());

  x.family("storecache_upstream_bytes_total", "counter",
           "Response body bytes received from the origin (WAN usage), by site.");
  for (const auto& [name, c] : sites_)
    x.sample("storecache_upstream_bytes_total{{site=\"{}\"}} {}\n", admin::escape_label(name),
             c->upstream_bytes.load());

  x.family("storecache_upstream_authorizations_total", "counter",
           "Device requests authorized by the upstream before a stored copy was served, by site "
           "and outcome: allowed (2xx/304), denied (anything else: passed through, not stored), "
           "failed (no answer: 502/504 to the device), remembered (authorize_cache).");
  constexpr std::array<std::string_view, 4> authorization_outcomes{"allowed", "denied", "failed",
                                                                   "remembered"};
  for (const auto& [name, c] : sites_)
    for (std::size_t k = 0; k < authorization_outcomes.size(); ++k)
      x.sample("storecache_upstream_authorizations_total{{site=\"{}\",outcome=\"{}\"}} {}\n",
               admin::escape_label(name), authorization_outcomes[k], c->authorizations[k].load());

  x.family("storecache_upstream_errors_total", "counter",
           "Upstream fetches that failed, by site and kind: resolve (DNS), connect (refused or "
           "unreachable), tls (handshake or certificate), timeout (connect or first byte), reset "
           "(closed before or during the response), bad_response (not parseable HTTP).");
  constexpr std::array<upstream_error, 6> error_kinds{
      upstream_error::resolve, upstream_error::connect, upstream_error::tls,
      upstream_error::timeout, upstream_error::reset,   upstream_error::bad_response};
  for (const auto& [name, c] : sites_)
    for (auto kind : error_kinds)
      x.sample("storecache_upstream_errors_total{{site=\"{}\",kind=\"{}\"}} {}\n",
               admin::escape_label(name), to_string(kind),
               c->upstream_errors[static_cast<std::size_t>(kind)].load());

  x.family("storecache_request_duration_seconds", "histogram",
           "Time from a request's head to the end of its response (every request, aborted ones "
           "included), by cache status.");
  for (int o = 0; o < cache_outcome_count; ++o)
    duration_[static_cast<std::size_t>(o)].render(
        x, "storecache_request_duration_seconds",
        fmt::format("cache_status=\"{}\"", to_string(static_cast<cache_outcome>(o))));

  x.family("storecache_request_ttfb_seconds", "histogram",
           "Time from a request's head to its response head being sent (time to first byte), by "
           "cache status. Requests that ended before a response head was sent are not counted "
           "here, only in storecache_request_duration_seconds.");
  for (int o = 0; o < cache_outcome_count; ++o)
    ttfb_[static_cast<std::size_t>(o)].render(
        x, "storecache_request_ttfb_seconds",
        fmt::format("cache_status=\"{}\"", to_string(static_cast<cache_outcome>(o))));

  x.family("storecache_device_requests_total", "counter",
           "Requests served for a site (local refusals such as 421 not counted), by the client's "
           "OS and browser family read from the User-Agent.");
  for (std::size_t os = 0; os < os_count; ++os)
    for (std::size_t b = 0; b < devices_[os].size(); ++b)
      x.sample("storecache_device_requests_total{{os=\"{}\",browser=\"{}\"}} {}\n",
               usage::label(static_cast<usage::os_family>(os)),
               usage::label(static_cast<usage::browser_family>(b)), devices_[os][b].load());

  x.family("storecache_device_os_version_requests_total", "counter",
           "Requests served for a site, by OS family and major OS version (1-99, or unknown); "
           "only versions seen since start appear.");
  for (std::size_t os = 0; os < os_count; ++os)
    for (std::size_t major = 0; major <= max_os_major; ++major)
      if (auto n = os_versions_[os][major].load(); n != 0)
        x.sample("storecache_device_os_version_requests_total{{os=\"{}\",major=\"{}\"}} {}\n",
                 usage::label(static_cast<usage::os_family>(os)),
                 major == 0 ? std::string("unknown") : std::to_string(major), n);

  x.family("storecache_tls_requests_total", "counter",
           "Requests served for a site, by the TLS version negotiated on their connection.");
  for (std::size_t v = 0; v < tls_versions_.size(); ++v)
    x.sample("storecache_tls_requests_total{{version=\"{}\"}} {}\n",
             usage::label(static_cast<usage::tls_version>(v)), tls_versions_[v].load());

  x.family("storecache_client_connections", "gauge", "Open client connections, by protocol.");
  for (int p = 0; p < 2; ++p)
    x.sample("storecache_client_connections{{protocol=\"{}\"}} {}\n",
             to_string(protocols[static_cast<std::size_t>(p)]),
             open_connections_[static_cast<std::size_t>(p)].load());

  x.family("storecache_tls_handshake_failures_total", "counter",
           "Client TLS handshakes that failed, by reason: timeout (nothing complete within "
           "timeouts.client_header), closed (client closed or reset), version, cipher, "
           "certificate (client rejected ours), plain_http (HTTP sent to the TLS port), other.");
  for (std::size_t k = 0; k < http::tls_failure_count; ++k)
    x.sample("storecache_tls_handshake_failures_total{{reason=\"{}\"}} {}\n",
             label(static_cast<http::tls_failure>(k)), tls_handshake_failures_[k].load());

  x.family("storecache_connections_rejected_total", "counter",
           "Client connections over limits.max_connections, by how they were answered: 503 "
           "(HTTP/1.1, with Retry-After), goaway (HTTP/2 SETTINGS without streams and GOAWAY), "
           "closed (no answer: 64 such answers already in progress, or the handshake failed or "
           "timed out).");
  constexpr std::array<std::string_view, 3> over_limit_answers{"503", "goaway", "closed"};
  for (std::size_t k = 0; k < over_limit_answers.size(); ++k)
    x.sample("storecache_connections_rejected_total{{answer=\"{}\"}} {}\n", over_limit_answers[k],
             connections_over_limit_[k].load());

  x.family("storecache_requests_refused_total", "counter",
           "Requests storecache refused itself on protocol grounds or limits, by protocol, status "
           "and reason: malformed, framing (Content-Length/Transfer-Encoding conflicts, bad chunk "
           "sizes: request smuggling), line_ending (obs-fold, bare CR or LF), transfer_coding, "
           "header_timeout, header_too_large, too_many_headers, uri_too_long, body_too_large. "
           "Each is also in storecache_requests_total and the access log.");
  for (int p = 0; p < 2; ++p)
    for (std::size_t k = 0; k < access::refusal_count; ++k) {
      const auto why = static_cast<access::refusal>(k);
      x.sample(
          "storecache_requests_refused_total{{protocol=\"{}\",status=\"{}\",reason=\"{}\"}} {}\n",
          to_string(protocols[static_cast<std::size_t>(p)]), access::status_of(why),
          access::to_string(why), refused_[static_cast<std::size_t>(p)][k].load());
    }

  x.family("storecache_access_denied_total", "counter",
           "Clients refused by the access policy, by site (\"-\": before any site was known, at "
           "accept or in a handshake that named no site) and reason: network (allow_clients), "
           "client_cert (no valid device certificate), signature, upstream.");
  for (const auto& [name, c] : denied_)
    for (std::size_t k = 0; k < access::denial_count; ++k)
      x.sample("storecache_access_denied_total{{site=\"{}\",reason=\"{}\"}} {}\n",
               admin::escape_label(name), access::to_string(static_cast<access::denial>(k)),
               (*c)[k].load());

  x.family("storecache_client_resets_total", "counter",
           "Requests clients abandoned before their response completed (HTTP/2 RST_STREAM from "
           "the client, HTTP/1.1 connection closed mid-response), by protocol.");
  for (int p = 0; p < 2; ++p)
    x.sample("storecache_client_resets_total{{protocol=\"{}\"}} {}\n",
             to_string(protocols[static_cast<std::size_t>(p)]),
             client_resets_[static_cast<std::size_t>(p)].load());

  x.family("storecache_connections_closed_for_resets_total", "counter",
           "HTTP/2 connections ended with GOAWAY (ENHANCE_YOUR_CALM) because the connection or its "
           "client address abandoned more than limits.client_resets requests per "
           "limits.client_reset_window.");
  x.sample("storecache_connections_closed_for_resets_total {}\n",
           connections_closed_for_resets_.load());

  // RFC 9113 section 7 names, lower case; the last one stands for any code beyond.
  static constexpr std::array<std::string_view, h2_error_count> h2_codes{"no_error",
                                                                         "protocol_error",
                                                                         "internal_error",
                                                                         "flow_control_error",
                                                                         "settings_timeout",
                                                                         "stream_closed",
                                                                         "frame_size_error",
                                                                         "refused_stream",
                                                                         "cancel",
                                                                         "compression_error",
                                                                         "connect_error",
                                                                         "enhance_your_calm",
                                                                         "inadequate_security",
                                                                         "http_1_1_required",
                                                                         "other"};
  x.family("storecache_h2_connection_errors_total", "counter",
           "HTTP/2 connections ended with a GOAWAY carrying an error code, by code: the client "
           "broke the protocol (protocol_error, flow_control_error, stream_closed, "
           "frame_size_error, compression_error) or flooded it (enhance_your_calm: too many "
           "SETTINGS, PING or CONTINUATION frames, or too many resets).");
  for (std::size_t k = 1; k < h2_error_count; ++k)
    x.sample("storecache_h2_connection_errors_total{{code=\"{}\"}} {}\n", h2_codes[k],
             h2_conn_errors_[k].load());
  x.family("storecache_h2_stream_errors_total", "counter",
           "HTTP/2 streams reset by storecache with an error code (RST_STREAM other than "
           "NO_ERROR), by code: a malformed request (protocol_error), flow control, a stream "
           "refused over the handler cap (refused_stream), a response cut (internal_error).");
  for (std::size_t k = 1; k < h2_error_count; ++k)
    x.sample("storecache_h2_stream_errors_total{{code=\"{}\"}} {}\n", h2_codes[k],
             h2_stream_errors_[k].load());
  x.family("storecache_h2_headers_refused_total", "counter",
           "HTTP/2 requests answered 431 because their decoded header list went over "
           "limits.max_header_bytes or limits.max_header_count (an HPACK bomb among them).");
  x.sample("storecache_h2_headers_refused_total {}\n", h2_headers_refused_.load());

  const auto ledger = ledger_ ? ledger_->totals() : access::client_ledger::counters{};
  x.family("storecache_clients_over_budget_total", "counter",
           "Times a client address went over its budget of abandoned requests and started a "
           "penalty of limits.reset_penalty (a warning names the address).");
  x.sample("storecache_clients_over_budget_total {}\n", ledger.over_budget);

  x.family("storecache_client_misses_refused_total", "counter",
           "Cold misses refused because their client address already led "
           "limits.misses_per_client, or could not be tracked (the client table was full).");
  x.sample("storecache_client_misses_refused_total {}\n", ledger.misses_refused);
  x.family("storecache_connection_misses_refused_total", "counter",
           "Cold misses answered 503 because their connection still led "
           "limits.misses_per_connection fetches after timeouts.upstream_queue.");
  x.sample("storecache_connection_misses_refused_total {}\n", connection_misses_refused_.load());

  x.family("storecache_client_ledger_untracked_total", "counter",
           "New client addresses the client table could not track because it held its maximum "
           "(65,536) of active addresses.");
  x.sample("storecache_client_ledger_untracked_total {}\n", ledger.untracked);

  x.family("storecache_client_ledger_entries", "gauge",
           "Client addresses tracked: with a cold miss in flight, a request abandoned within "
           "limits.client_reset_window, or a penalty running.");
  x.sample("storecache_client_ledger_entries {}\n", ledger_ ? ledger_->entries() : 0);

  x.family("storecache_requests_in_flight", "gauge", "Requests being answered right now.");
  x.sample("storecache_requests_in_flight {}\n", in_flight_.load());
  render_process_memory(x);
  if (extra_) out += extra_();
  return out;
}

}  // namespace storecache::account
