#include "proxy/metrics.hpp"

#include <fmt/format.h>

namespace storecache::proxy {

std::string_view to_string(protocol p) {
  return p == protocol::http2 ? "h2" : "http/1.1";
}

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

site_counters& metrics::site(std::string_view name) {
  std::lock_guard lock(mutex_);
  auto it = sites_.find(name);
  if (it == sites_.end())
    it = sites_.emplace(std::string(name), std::make_unique<site_counters>()).first;
  return *it->second;
}

namespace {

constexpr std::array<std::string_view, 5> code_classes{"1xx", "2xx", "3xx", "4xx", "5xx"};
constexpr std::array<protocol, 2> protocols{protocol::http1_1, protocol::http2};

// Label values are site names (validated host names) and fixed words: escaping the three
// characters the format reserves is still cheap insurance.
std::string escape(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }

  return out;
}

void family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

}  // namespace

std::string metrics::render() const {
  std::string out;
  out.reserve(8192);
  auto put = [&out](std::string_view line) { out.append(line); };
  std::lock_guard lock(mutex_);

  family(out, "storecache_build_info", "gauge", "Version and commit of the running binary.");
  fmt::format_to(std::back_inserter(out),
                 "storecache_build_info{{version=\"{}\",commit=\"{}\"}} 1\n", STORECACHE_VERSION,
                 STORECACHE_COMMIT);

  family(out, "storecache_requests_total", "counter",
         "Client requests answered, by site, protocol and what the cache did.");
  for (const auto& [name, c] : sites_)
    for (int p = 0; p < 2; ++p)
      for (int o = 0; o < cache_outcome_count; ++o)
        put(fmt::format(
            "storecache_requests_total{{site=\"{}\",protocol=\"{}\",cache_status=\"{}\"}} {}\n",
            escape(name), to_string(protocols[static_cast<std::size_t>(p)]),
            to_string(static_cast<cache_outcome>(o)),
            c->requests[static_cast<std::size_t>(p)][static_cast<std::size_t>(o)].load()));

  family(out, "storecache_responses_total", "counter",
         "Responses sent to clients, by site and status class.");
  for (const auto& [name, c] : sites_)
    for (std::size_t k = 0; k < 5; ++k)
      put(fmt::format("storecache_responses_total{{site=\"{}\",code_class=\"{}\"}} {}\n",
                      escape(name), code_classes[k], c->responses[k].load()));

  family(out, "storecache_response_bytes_total", "counter",
         "Response body bytes sent to clients, by site and where they came from.");
  for (const auto& [name, c] : sites_) {
    put(fmt::format("storecache_response_bytes_total{{site=\"{}\",source=\"cache\"}} {}\n",
                    escape(name), c->response_bytes[0].load()));
    put(fmt::format("storecache_response_bytes_total{{site=\"{}\",source=\"upstream\"}} {}\n",
                    escape(name), c->response_bytes[1].load()));
  }

  family(out, "storecache_upstream_requests_total", "counter",
         "Requests sent to the origin, by site and response status class (error: no response).");
  for (const auto& [name, c] : sites_)
    for (std::size_t k = 0; k < 6; ++k)
      put(fmt::format("storecache_upstream_requests_total{{site=\"{}\",code_class=\"{}\"}} {}\n",
                      escape(name), k < 5 ? code_classes[k] : "error",
                      c->upstream_requests[k].load()));

  family(out, "storecache_upstream_bytes_total", "counter",
         "Response body bytes received from the origin (WAN usage), by site.");
  for (const auto& [name, c] : sites_)
    put(fmt::format("storecache_upstream_bytes_total{{site=\"{}\"}} {}\n", escape(name),
                    c->upstream_bytes.load()));

  family(out, "storecache_client_connections", "gauge", "Open client connections, by protocol.");
  for (int p = 0; p < 2; ++p)
    put(fmt::format("storecache_client_connections{{protocol=\"{}\"}} {}\n",
                    to_string(protocols[static_cast<std::size_t>(p)]),
                    open_connections_[static_cast<std::size_t>(p)].load()));

  family(out, "storecache_tls_handshake_failures_total", "counter",
         "Client TLS handshakes that failed or timed out.");
  put(fmt::format("storecache_tls_handshake_failures_total {}\n", tls_handshake_failures_.load()));

  family(out, "storecache_connections_rejected_total", "counter",
         "Client connections closed at accept because limits.max_connections was reached.");
  put(fmt::format("storecache_connections_rejected_total {}\n", connections_over_limit_.load()));

  family(out, "storecache_requests_in_flight", "gauge", "Requests being answered right now.");
  put(fmt::format("storecache_requests_in_flight {}\n", in_flight_.load()));
  if (extra_) out += extra_();
  return out;
}

}  // namespace storecache::proxy
