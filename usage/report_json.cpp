// The report as JSON. Every name goes through json_string (text_escape.cpp): asset names are
// client-controlled bytes.
//
// Schema (keys always present, in this order; integers exact; ratios 0..1):
//   period {hours, from, to}       from inclusive, to exclusive, ISO-8601 UTC ("...T14:00:00Z")
//   requests, hits, hit_ratio, bytes_served, bytes_from_cache, bytes_from_upstream,
//   byte_hit_ratio, upstream_bytes, upstream_requests, prefetch_bytes, prefetch_requests,
//   wan_bytes_saved,
//   peak_upstream_hour {hour, upstream_bytes, prefetch_bytes} | null
//   content {video, audio, document, web, image, data, other: counts}
//   devices {"ios/safari": counts...}, os_versions {"ios 17": counts...}, tls {"TLSv1.3": ...},
//   protocols {"h2": ...}, sites {"<site>": counts + denied}
//   denied {network, client_cert, signature, upstream}   requests and connections refused for
//                                  access reasons (access/denial.hpp), all sites and none
//   top_assets [{asset, requests, hits, bytes_served, bytes_from_cache, bytes_from_upstream,
//                upstream_bytes, upstream_requests, prefetch_bytes, prefetch_requests}...]
//                                  by upstream bytes, descending
//   prefetch {saved, sources_ready, sources_total, sources [{site, source, path, kind, ready,
//             ready_ratio, listed, fresh, missing, failed, bytes, pinned_objects, pinned_bytes,
//             unpinned_objects, unpinned_bytes, last_error, last_run_end, next_run}...]}
//                                  the prefetch readiness the daemon stored last, whatever the
//                                  period; saved, last_run_end, next_run: ISO-8601 UTC or null
//                                  (never / unknown); ready: listed > 0 and all fresh
// counts = {requests, hits, bytes_served, bytes_from_cache, bytes_from_upstream,
//           upstream_bytes, upstream_requests, prefetch_bytes, prefetch_requests}
// prefetch_bytes and prefetch_requests are the part of upstream_bytes and upstream_requests
// that prefetch fetched; the rest was fetched because a device asked.
// denied = {network, client_cert, signature, upstream}: counts per reason, every reason always
//          present (in sites: the site's own; a refusal before a site was known is in none)
#include <fmt/format.h>

#include "usage/report.hpp"

namespace storecache::usage {

namespace {

void append_counts_fields(std::string& out, const usage_counts& c) {
  fmt::format_to(std::back_inserter(out),
                 "\"requests\":{},\"hits\":{},\"bytes_served\":{},\"bytes_from_cache\":{},"
                 "\"bytes_from_upstream\":{},\"upstream_bytes\":{},\"upstream_requests\":{},"
                 "\"prefetch_bytes\":{},\"prefetch_requests\":{}",
                 c.requests, c.hits, c.bytes_served(), c.bytes_from_cache, c.bytes_from_upstream,
                 c.upstream_bytes, c.upstream_requests, c.prefetch_bytes, c.prefetch_requests);
}

void append_denied(std::string& out, const usage_counts& c) {
  out += "\"denied\":{";
  for (std::size_t i = 0; i < access::denial_count; ++i)
    fmt::format_to(std::back_inserter(out), "{}\"{}\":{}", i > 0 ? "," : "",
                   access::to_string(static_cast<access::denial>(i)), c.denied[i]);
  out += '}';
}

void append_map(std::string& out, std::string_view key,
                const std::map<std::string, usage_counts, std::less<>>& m, bool denied = false) {
  out += ",\"";
  out += key;
  out += "\":{";
  bool first = true;
  for (const auto& [name, c] : m) {
    if (!first) out += ',';
    first = false;
    out += json_string(name);
    out += ":{";
    append_counts_fields(out, c);
    if (denied) {
      out += ',';
      append_denied(out, c);
    }
    out += '}';
  }
  out += '}';
}

std::string iso_hour(std::uint32_t hour) {
  return iso_utc(static_cast<std::int64_t>(hour) * 3600);
}

std::string iso_or_null(std::int64_t unix_seconds) {
  return unix_seconds > 0 ? "\"" + iso_utc(unix_seconds) + "\"" : std::string("null");
}

void append_prefetch(std::string& out, const prefetch_snapshot& p) {
  auto it = std::back_inserter(out);
  fmt::format_to(it,
                 ",\"prefetch\":{{\"saved\":{},\"sources_ready\":{},\"sources_total\":{},"
                 "\"sources\":[",
                 iso_or_null(p.saved_unix), p.ready_count(), p.sources.size());
  for (std::size_t i = 0; i < p.sources.size(); ++i) {
    const prefetch_state& s = p.sources[i];
    if (i > 0) out += ',';
    fmt::format_to(it, "{{\"site\":{},\"source\":{},\"path\":{},\"kind\":{}", json_string(s.site),
                   json_string(s.source), json_string(s.path), json_string(s.kind));
    fmt::format_to(it,
                   ",\"ready\":{},\"ready_ratio\":{},\"listed\":{},\"fresh\":{},\"missing\":{},"
                   "\"failed\":{},\"bytes\":{},\"pinned_objects\":{},\"pinned_bytes\":{},"
                   "\"unpinned_objects\":{},\"unpinned_bytes\":{}",
                   s.ready(),
                   s.listed ? static_cast<double>(s.fresh) / static_cast<double>(s.listed) : 0.0,
                   s.listed, s.fresh, s.missing, s.failed, s.bytes, s.pinned_objects,
                   s.pinned_bytes, s.unpinned_objects, s.unpinned_bytes);
    fmt::format_to(it, ",\"last_error\":{},\"last_run_end\":{},\"next_run\":{}}}",
                   json_string(s.last_error), iso_or_null(s.last_run_end), iso_or_null(s.next_run));
  }
  out += "]}";
}

}  // namespace

std::string render_report_json(const usage_summary& s, const report_options& opts) {
  const usage_counts& t = s.total;
  std::string out;
  out.reserve(4096);
  auto it = std::back_inserter(out);
  fmt::format_to(it, "{{\"period\":{{\"hours\":{},\"from\":\"{}\",\"to\":\"{}\"}}", opts.hours,
                 iso_hour(s.from_hour), iso_hour(s.to_hour + 1));
  fmt::format_to(it,
                 ",\"requests\":{},\"hits\":{},\"hit_ratio\":{},\"bytes_served\":{},"
                 "\"bytes_from_cache\":{},\"bytes_from_upstream\":{},\"byte_hit_ratio\":{},"
                 "\"upstream_bytes\":{},\"upstream_requests\":{},\"prefetch_bytes\":{},"
                 "\"prefetch_requests\":{},\"wan_bytes_saved\":{}",
                 t.requests, t.hits, s.hit_ratio(), t.bytes_served(), t.bytes_from_cache,
                 t.bytes_from_upstream, s.byte_hit_ratio(), t.upstream_bytes, t.upstream_requests,
                 t.prefetch_bytes, t.prefetch_requests, s.wan_bytes_saved());
  if (const auto peak = s.peak_upstream_hour())
    fmt::format_to(it,
                   ",\"peak_upstream_hour\":{{\"hour\":\"{}\",\"upstream_bytes\":{},"
                   "\"prefetch_bytes\":{}}}",
                   iso_hour(*peak), s.hours[*peak - s.from_hour].upstream_bytes,
                   s.hours[*peak - s.from_hour].prefetch_bytes);
  else
    out += ",\"peak_upstream_hour\":null";
  out += ",\"content\":{";
  for (int i = 0; i < content_class_count; ++i) {
    if (i > 0) out += ',';
    fmt::format_to(it, "\"{}\":{{", label(static_cast<content_class>(i)));
    append_counts_fields(out, s.content[static_cast<std::size_t>(i)]);
    out += '}';
  }
  out += '}';
  append_map(out, "devices", s.devices);
  append_map(out, "os_versions", s.os_versions);
  append_map(out, "tls", s.tls);
  append_map(out, "protocols", s.protocols);
  append_map(out, "sites", s.sites, true);
  out += ',';
  append_denied(out, t);
  out += ",\"top_assets\":[";
  for (std::size_t i = 0; i < s.top_assets.size(); ++i) {
    if (i > 0) out += ',';
    out += "{\"asset\":";
    out += json_string(s.top_assets[i].first);
    out += ',';
    append_counts_fields(out, s.top_assets[i].second);
    out += '}';
  }
  out += ']';
  append_prefetch(out, s.prefetch);
  out += "}\n";
  return out;
}

}  // namespace storecache::usage
