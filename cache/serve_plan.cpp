#include "cache/serve_plan.hpp"

#include <limits>

#include "cache/cache_control.hpp"
#include "cache/cache_key.hpp"
#include "cache/range.hpp"

namespace storecache::cache {

site_policy policy_for(const config::site& site, std::string_view path) {
  site_policy p;
  p.default_ttl = site.cache.default_ttl;
  p.heuristic_fraction = site.cache.heuristic_fraction;
  p.heuristic_max = site.cache.heuristic_max;
  p.stale_if_origin_down = site.cache.stale_if_error;
  p.use_cdn_cache_control = site.cache.cdn_cache_control;
  if (const auto* rule = config::match_rule(site.cache, path.substr(0, path.find('?')))) {
    p.bypass = rule->bypass;
    p.forced_ttl = rule->ttl;
    p.authorized_sharing = rule->authorize_with_upstream;
  }
  return p;
}

std::optional<lookup_result> find_stored(store& st, const std::string& primary,
                                         const header_list& request_headers) {
  auto r = st.lookup(primary);
  if (r && r->status == lookup_status::hit) return std::move(*r);
  auto variants = st.variants(primary);
  if (!variants) return std::nullopt;
  for (const auto& m : *variants) {
    if (m.variant_key.empty()) continue;
    if (!variant_matches(m.head.headers, m.variant_key, request_headers)) continue;
    auto v = st.lookup(primary, m.variant_key);
    if (v && v->status == lookup_status::hit) return std::move(*v);
  }
  return std::nullopt;
}

std::optional<object_meta> find_stored_meta(const store& st, const std::string& primary,
                                            const header_list& request_headers) {
  if (auto m = st.peek(primary); m && *m) return std::move(**m);
  auto variants = st.variants(primary);
  if (!variants) return std::nullopt;
  for (auto& m : *variants) {
    if (m.variant_key.empty()) continue;
    if (variant_matches(m.head.headers, m.variant_key, request_headers)) return std::move(m);
  }
  return std::nullopt;
}

header_list client_headers(const header_list& stored, std::optional<std::chrono::seconds> age,
                           const std::string& cache_status) {
  header_list out;
  out.reserve(stored.size() + 3);
  bool via = false;
  for (const auto& h : stored) {
    if (h.name == "age" || h.name == "cache-status" || h.name == "content-length" ||
        h.name == "accept-ranges")  // ours says what we do, not what the origin does
      continue;
    out.push_back(h);
    if (h.name == "via") {
      out.back().value += ", 1.1 storecache";
      via = true;
    }
  }
  if (!via) out.push_back({"via", "1.1 storecache"});
  if (age) out.push_back({"age", std::to_string(age->count())});
  out.push_back({"cache-status", cache_status});
  return out;
}

range_plan plan_range(const header_list& request_headers, const header_list& stored,
                      unsigned status, std::optional<std::uint64_t> length) {
  range_plan p;
  p.status = status;
  p.end = length;
  auto range = find_header(request_headers, "range");
  if (!range || status != 200 || !length) return p;  // unknown length: whole body (allowed)
  if (auto if_range = find_header(request_headers, "if-range");
      if_range && !if_range_matches(*if_range, stored))
    return p;
  auto r = evaluate_range(range, *length);
  if (r.outcome == range_outcome::unsatisfiable) {
    p.status = 416;
    p.content_range = unsatisfied_content_range(*length);
  } else if (r.outcome == range_outcome::partial && r.spans.size() == 1) {
    // Several ranges are answered with the whole 200 (RFC 9110 §14.2 allows it): players ask
    // for one range at a time, and multipart bodies would have to be built for nobody.
    p.status = 206;
    p.first = r.spans[0].first;
    p.end = r.spans[0].last + 1;
    p.content_range = content_range(r.spans[0], *length);
  }
  return p;
}

std::uint64_t range_start(const header_list& request_headers) {
  auto range = find_header(request_headers, "range");
  if (!range) return 0;
  auto specs = parse_range(*range);
  if (!specs || specs->size() != 1) return 0;
  const auto& s = specs->front();
  return s.first ? *s.first : std::numeric_limits<std::uint64_t>::max();  // suffix: the end
}

}  // namespace storecache::cache
