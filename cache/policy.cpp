#include "cache/policy.hpp"

#include <algorithm>
#include <array>

#include "cache/cache_key.hpp"

namespace storecache::cache {

namespace {

using std::chrono::seconds;

// Hop-by-hop fields (RFC 9110 §7.6.1) and the proxy authentication fields §3.1 lets a cache
// drop: none of them describe the stored representation.
constexpr std::array<std::string_view, 11> unstored_fields = {"connection",
                                                              "keep-alive",
                                                              "proxy-connection",
                                                              "te",
                                                              "trailer",
                                                              "transfer-encoding",
                                                              "upgrade",
                                                              "proxy-authenticate",
                                                              "proxy-authorization",
                                                              "proxy-authentication-info",
                                                              "authentication-info"};

// Fields a 304 must not overwrite: they describe the stored body's framing and coding.
constexpr std::array<std::string_view, 4> body_fields = {"content-length", "content-range",
                                                         "content-encoding", "transfer-encoding"};

template <std::size_t N>
bool contains(const std::array<std::string_view, N>& set, std::string_view name) {
  return std::find(set.begin(), set.end(), name) != set.end();
}

bool contains(const std::vector<std::string>& set, std::string_view name) {
  return std::find(set.begin(), set.end(), name) != set.end();
}

seconds to_seconds(clock_time::duration d) {
  return std::chrono::floor<seconds>(d);
}

// Date of the response, or the time it arrived when it has none (§4.2.1, §4.2.3).
clock_time date_value(const header_list& headers, response_times times) {
  auto date = find_header(headers, "date");
  auto parsed = date ? parse_http_date(*date) : std::nullopt;
  return parsed ? *parsed : times.response_time;
}

freshness lifetime_from(int status, const header_list& headers, const effective_directives& eff,
                        response_times times, const site_policy& site) {
  const auto& d = eff.directives;
  if (site.forced_ttl) return {*site.forced_ttl, freshness_source::forced};
  if (d.invalid_freshness) return {seconds(0), freshness_source::invalid};
  if (d.s_maxage) return {*d.s_maxage, freshness_source::s_maxage};
  if (d.max_age) return {*d.max_age, freshness_source::max_age};
  if (!eff.targeted) {
    if (auto expires = find_header(headers, "expires")) {
      // §5.3: an invalid Expires ("0", "-1") means already expired.
      auto when = parse_http_date(*expires);
      if (!when) return {seconds(0), freshness_source::invalid};
      return {std::max(seconds(0), to_seconds(*when - date_value(headers, times))),
              freshness_source::expires};
    }
  }
  if (!heuristically_cacheable(status) && !d.is_public) return {};
  if (auto lm = find_header(headers, "last-modified")) {
    if (auto modified = parse_http_date(*lm)) {
      auto since = to_seconds(date_value(headers, times) - *modified);
      if (since <= seconds(0)) return {seconds(0), freshness_source::heuristic};
      auto h = seconds(
          static_cast<seconds::rep>(static_cast<double>(since.count()) * site.heuristic_fraction));
      return {std::clamp(h, seconds(0), site.heuristic_max), freshness_source::heuristic};
    }
  }
  if (site.default_ttl > seconds(0)) return {site.default_ttl, freshness_source::site_default};
  return {};
}

}  // namespace

// --- Storing ---------------------------------------------------------------------------------

bool status_understood(int status) {
  switch (status) {
    case 200:
    case 201:
    case 202:
    case 203:
    case 204:
    case 205:
    case 206:
    case 300:
    case 301:
    case 302:
    case 303:
    case 304:
    case 307:
    case 308:
    case 400:
    case 401:
    case 402:
    case 403:
    case 404:
    case 405:
    case 406:
    case 407:
    case 408:
    case 409:
    case 410:
    case 411:
    case 412:
    case 413:
    case 414:
    case 415:
    case 416:
    case 417:
    case 421:
    case 422:
    case 426:
    case 429:
    case 451:
    case 500:
    case 501:
    case 502:
    case 503:
    case 504:
    case 505:
      return true;
    default:
      return false;
  }
}

bool heuristically_cacheable(int status) {
  switch (status) {
    case 200:
    case 203:
    case 204:
    case 206:
    case 300:
    case 301:
    case 308:
    case 404:
    case 405:
    case 410:
    case 414:
    case 501:
      return true;
    default:
      return false;
  }
}

bool method_uses_cache(std::string_view method) {
  return method == "GET" || method == "HEAD";
}

bool method_is_safe(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "TRACE";
}

store_decision check_storable(std::string_view method, const header_list& request_headers,
                              int status, const header_list& response_headers,
                              const site_policy& site) {
  if (site.bypass) return {false, "site policy: bypass"};
  // HEAD responses have no body to store; they are answered from the GET entry instead.
  if (method != "GET") return {false, "request method is not GET"};
  if (status < 200) return {false, "not a final response"};
  if (status == 304) return {false, "304 refreshes a stored response, it is not one"};
  if (status == 206) return {false, "partial content (206) is not the whole object"};
  if (site.store_success_only && status >= 300)
    return {false, "authorized content: only a 2xx is stored"};
  if (request_cache_control(request_headers).no_store) return {false, "request no-store"};
  const auto eff = response_cache_control(response_headers, site.use_cdn_cache_control);
  const auto& d = eff.directives;
  // §3: any final status may be stored when the rest of this allows it (explicit freshness,
  // public, or a heuristically cacheable status); must-understand alone asks for a status
  // whose caching storecache implements.
  if (d.must_understand && !status_understood(status))
    return {false, "must-understand: status not understood"};
  // §5.2.2.3: must-understand with an understood status overrides no-store.
  if (d.no_store && !d.must_understand) return {false, "response no-store"};
  if (d.is_private && !site.authorized_sharing) return {false, "response private"};
  if (!site.authorized_sharing && find_header(request_headers, "authorization") &&
      !(d.is_public || d.s_maxage || d.must_revalidate))
    return {false, "Authorization without public, s-maxage or must-revalidate"};
  if (!vary_field_names(response_headers)) return {false, "Vary: *"};
  if (site.forced_ttl) return {true, "site policy: forced TTL"};
  if (d.max_age || d.s_maxage || d.invalid_freshness ||
      (!eff.targeted && find_header(response_headers, "expires")))
    return {true, "explicit freshness"};
  if (heuristically_cacheable(status)) return {true, "heuristically cacheable status"};
  if (d.is_public) return {true, "public"};
  return {false, "no freshness information, status not heuristically cacheable"};
}

header_list headers_to_store(const header_list& response_headers, bool use_targeted,
                             bool drop_set_cookie) {
  std::vector<std::string> dropped;
  if (auto connection = combined_field(response_headers, "connection"))
    for (auto name : split_list(*connection))
      dropped.push_back(to_lower(name));
  const auto d = response_cache_control(response_headers, use_targeted).directives;
  dropped.insert(dropped.end(), d.private_fields.begin(), d.private_fields.end());
  dropped.insert(dropped.end(), d.no_cache_fields.begin(), d.no_cache_fields.end());
  header_list out;
  if (drop_set_cookie) dropped.emplace_back("set-cookie");
  for (const auto& h : response_headers)
    if (!contains(unstored_fields, h.name) && !contains(dropped, h.name)) out.push_back(h);
  return out;
}

// --- Freshness and age -----------------------------------------------------------------------

std::string_view to_string(freshness_source s) {
  switch (s) {
    case freshness_source::forced:
      return "forced";
    case freshness_source::invalid:
      return "invalid";
    case freshness_source::s_maxage:
      return "s-maxage";
    case freshness_source::max_age:
      return "max-age";
    case freshness_source::expires:
      return "expires";
    case freshness_source::heuristic:
      return "heuristic";
    case freshness_source::site_default:
      return "site-default";
    case freshness_source::none:
      return "none";
  }
  return "none";
}

freshness freshness_lifetime(int status, const header_list& response_headers, response_times times,
                             const site_policy& site) {
  auto eff = response_cache_control(response_headers, site.use_cdn_cache_control);
  return lifetime_from(status, response_headers, eff, times, site);
}

seconds corrected_initial_age(const header_list& response_headers, response_times times) {
  // An Age that is not a single delta-seconds value is ignored rather than trusted.
  auto age_field = find_header(response_headers, "age");
  auto age_value = age_field ? parse_delta_seconds(trim_ows(*age_field)) : std::nullopt;
  auto apparent_age =
      std::max(seconds(0), to_seconds(times.response_time - date_value(response_headers, times)));
  auto response_delay = std::max(seconds(0), to_seconds(times.response_time - times.request_time));
  auto corrected_age_value = age_value.value_or(seconds(0)) + response_delay;
  return std::max(apparent_age, corrected_age_value);
}

seconds current_age(const header_list& response_headers, response_times times, clock_time now) {
  auto resident_time = std::max(seconds(0), to_seconds(now - times.response_time));
  return corrected_initial_age(response_headers, times) + resident_time;
}

// --- Reuse -----------------------------------------------------------------------------------

std::string_view to_string(reuse_action a) {
  switch (a) {
    case reuse_action::fresh:
      return "fresh";
    case reuse_action::stale:
      return "stale";
    case reuse_action::stale_while_revalidate:
      return "stale-while-revalidate";
    case reuse_action::revalidate:
      return "revalidate";
    case reuse_action::gateway_timeout:
      return "gateway-timeout";
  }
  return "revalidate";
}

reuse_decision decide_reuse(int status, const header_list& response_headers, response_times times,
                            const header_list& request_headers, clock_time now,
                            const site_policy& site) {
  const auto eff = response_cache_control(response_headers, site.use_cdn_cache_control);
  const auto& d = eff.directives;
  const auto req = request_cache_control(request_headers);
  const auto life = lifetime_from(status, response_headers, eff, times, site);

  reuse_decision r;
  r.age = current_age(response_headers, times, now);
  r.lifetime = life.lifetime;
  r.ttl = life.lifetime - r.age;
  const bool fresh = r.ttl > seconds(0);
  const seconds staleness = std::max(seconds(0), -r.ttl);

  // §4.2.4: these forbid any stale use; a forced TTL has overridden them.
  const bool forced = life.source == freshness_source::forced;
  const bool stale_forbidden =
      !forced && (d.must_revalidate || d.proxy_revalidate || d.s_maxage || d.no_cache);
  const seconds error_window =
      std::max({d.stale_if_error.value_or(seconds(0)), req.stale_if_error.value_or(seconds(0)),
                site.stale_if_origin_down});
  r.stale_on_error = !stale_forbidden && staleness <= error_window;

  auto finish = [&](reuse_action action, std::string_view reason) {
    if (action == reuse_action::revalidate && req.only_if_cached) {
      action = reuse_action::gateway_timeout;
      reason = "only-if-cached, stored response not usable";
    }
    r.action = action;
    r.reason = reason;
    return r;
  };

  if (!vary_field_names(response_headers)) return finish(reuse_action::revalidate, "Vary: *");
  if (d.no_cache && !forced) return finish(reuse_action::revalidate, "response no-cache");
  if (req.no_cache) return finish(reuse_action::revalidate, "request no-cache");
  if (req.max_age && r.age > *req.max_age)
    return finish(reuse_action::revalidate, "older than request max-age");
  if (fresh) {
    if (req.min_fresh && r.ttl < *req.min_fresh)
      return finish(reuse_action::revalidate, "fresh for less than request min-fresh");
    return finish(reuse_action::fresh, "fresh");
  }
  if (stale_forbidden) return finish(reuse_action::revalidate, "stale, revalidation required");
  if (req.max_stale && (!req.max_stale_limit || staleness <= *req.max_stale_limit))
    return finish(reuse_action::stale, "stale within request max-stale");
  if (d.stale_while_revalidate && staleness <= *d.stale_while_revalidate)
    return finish(reuse_action::stale_while_revalidate, "stale within stale-while-revalidate");
  return finish(reuse_action::revalidate, "stale");
}

// --- Validation ------------------------------------------------------------------------------

header_list validation_headers(const header_list& stored_response_headers) {
  header_list out;
  if (auto etag = find_header(stored_response_headers, "etag"))
    out.push_back({"if-none-match", std::string(*etag)});
  if (auto lm = find_header(stored_response_headers, "last-modified"))
    out.push_back({"if-modified-since", std::string(*lm)});
  return out;
}

bool not_modified_matches(const header_list& stored_response_headers,
                          const header_list& not_modified_headers) {
  if (auto new_etag = find_header(not_modified_headers, "etag")) {
    auto stored = find_header(stored_response_headers, "etag");
    auto a = parse_entity_tag(*new_etag);
    auto b = stored ? parse_entity_tag(*stored) : std::nullopt;
    if (!a || !b) return false;
    // A strong validator in the 304 selects only a stored response with that strong tag.
    return a->weak ? weak_match(*a, *b) : strong_match(*a, *b);
  }
  if (auto new_lm = find_header(not_modified_headers, "last-modified")) {
    auto stored = find_header(stored_response_headers, "last-modified");
    auto a = parse_http_date(*new_lm);
    auto b = stored ? parse_http_date(*stored) : std::nullopt;
    return a && b && *a == *b;
  }
  return true;
}

void apply_not_modified(header_list& stored_response_headers,
                        const header_list& not_modified_headers, bool use_targeted,
                        bool drop_set_cookie) {
  header_list incoming = headers_to_store(not_modified_headers, use_targeted, drop_set_cookie);
  std::erase_if(incoming, [](const header& h) { return contains(body_fields, h.name); });
  std::vector<std::string> replaced;
  for (const auto& h : incoming)
    if (!contains(replaced, h.name)) replaced.push_back(h.name);
  // Age describes the exchange, like the response_times the caller replaces: the stored one
  // goes even when the 304 has none (else a response stored stale, Age above max-age, stayed
  // stale after every 304 and each request revalidated).
  std::erase_if(stored_response_headers,
                [&](const header& h) { return h.name == "age" || contains(replaced, h.name); });
  stored_response_headers.insert(stored_response_headers.end(), incoming.begin(), incoming.end());
}

bool client_not_modified(const header_list& request_headers,
                         const header_list& stored_response_headers) {
  if (auto inm = combined_field(request_headers, "if-none-match")) {
    if (trim_ows(*inm) == "*") return true;
    auto stored = find_header(stored_response_headers, "etag");
    auto current = stored ? parse_entity_tag(*stored) : std::nullopt;
    if (!current) return false;
    for (auto element : split_list(*inm))
      if (auto tag = parse_entity_tag(element); tag && weak_match(*tag, *current)) return true;
    return false;  // If-Modified-Since is ignored when If-None-Match is present
  }
  auto ims = find_header(request_headers, "if-modified-since");
  auto lm = find_header(stored_response_headers, "last-modified");
  if (!ims || !lm) return false;
  auto since = parse_http_date(*ims);
  auto modified = parse_http_date(*lm);
  return since && modified && *modified <= *since;
}

// --- Invalidation ----------------------------------------------------------------------------

namespace {

struct uri_parts {
  std::string scheme;     // lower-case
  std::string authority;  // normalized
  std::string rest;       // path?query
};

std::optional<uri_parts> split_absolute(std::string_view uri) {
  auto sep = uri.find("://");
  if (sep == std::string_view::npos || sep == 0) return std::nullopt;
  auto scheme = to_lower(uri.substr(0, sep));
  auto after = uri.substr(sep + 3);
  auto slash = after.find_first_of("/?#");
  auto authority = after.substr(0, slash);
  std::string rest(slash == std::string_view::npos ? "" : after.substr(slash));
  rest = rest.substr(0, rest.find('#'));
  if (rest.empty() || rest.front() == '?') rest.insert(0, "/");
  return uri_parts{scheme, normalize_authority(scheme, authority), rest};
}

// RFC 3986 §5.2 reference resolution, without dot-segment removal (keys keep them too).
std::optional<uri_parts> resolve(const uri_parts& base, std::string_view ref) {
  ref = trim_ows(ref);
  if (ref.empty()) return std::nullopt;
  if (ref.find("://") != std::string_view::npos && ref.find("://") < ref.find_first_of("/?#"))
    return split_absolute(ref);
  if (ref.starts_with("//")) return split_absolute(base.scheme + ":" + std::string(ref));
  uri_parts out{base.scheme, base.authority, {}};
  if (ref.front() == '/') {
    out.rest = std::string(ref);
  } else {
    auto base_path = base.rest.substr(0, base.rest.find('?'));
    out.rest = base_path.substr(0, base_path.rfind('/') + 1) + std::string(ref);
  }
  out.rest = out.rest.substr(0, out.rest.find('#'));
  return out;
}

}  // namespace

std::vector<std::string> invalidated_uris(std::string_view method, int status,
                                          std::string_view target_uri,
                                          const header_list& response_headers) {
  std::vector<std::string> out;
  if (method_is_safe(method) || status < 200 || status > 399) return out;
  auto target = split_absolute(target_uri);
  if (!target) return out;
  auto text = [](const uri_parts& u) { return u.scheme + "://" + u.authority + u.rest; };
  out.push_back(text(*target));
  for (auto name : {"location", "content-location"}) {
    auto value = find_header(response_headers, name);
    if (!value) continue;
    auto u = resolve(*target, *value);
    // §4.4: only URIs with the target's origin, so a response cannot evict another site.
    if (!u || u->scheme != target->scheme || u->authority != target->authority) continue;
    auto t = text(*u);
    if (std::find(out.begin(), out.end(), t) == out.end()) out.push_back(std::move(t));
  }
  return out;
}

}  // namespace storecache::cache
