// RFC 9111 policy of a shared cache, as pure functions over header fields and a clock value
// the caller passes in: what may be stored (§3), how long it stays fresh (§4.2.1, §4.2.2),
// how old it is (§4.2.3), whether a stored response may answer a request (§4, §4.2.4,
// RFC 5861), how to validate it and fold a 304 into it (§3.2, §4.3), and which URIs an unsafe
// request invalidates (§4.4). Secondary keys (Vary, §4.1) live in cache_key.hpp.
//
// Site policy overrides are inputs (site_policy): a forced TTL replaces the freshness the
// origin gave, *and* its no-cache / must-revalidate (the operator has decided how long the
// object is good for), but never no-store, private or the Authorization rule: those protect
// someone's private data, which an operator's TTL must not leak.
//
// No function here throws or allocates more than its result.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cache/cache_control.hpp"
#include "cache/http_fields.hpp"

namespace storecache::cache {

// The per-site knobs the policy needs (filled from the site's config by the caller).
struct site_policy {
  std::chrono::seconds default_ttl{0};             // no freshness information at all; 0: not fresh
  std::optional<std::chrono::seconds> forced_ttl;  // path pattern matched: origin overridden
  bool bypass = false;                             // path pattern matched: never cache
  double heuristic_fraction = 0.1;                 // of (Date - Last-Modified), §4.2.2
  std::chrono::seconds heuristic_max{std::chrono::hours(24)};  // cap of the heuristic
  std::chrono::seconds stale_if_origin_down{0};  // serve this much past expiry on errors
  bool use_cdn_cache_control = true;             // honour RFC 9213 CDN-Cache-Control
  // Every use of a stored response is authorized by the upstream first (a path rule's
  // authorize_with_upstream): `private` and Authorization no longer keep it out of the cache,
  // and Set-Cookie is never stored (one device's session must not reach another).
  bool authorized_sharing = false;
  // Content each device is authorized for (above, or a signed request without a verifier):
  // only a 2xx is stored, so one device's refusal never answers another.
  bool store_success_only = false;
};

// When the stored response was requested and received (our clock), §4.2.3.
struct response_times {
  clock_time request_time{};
  clock_time response_time{};
};

// --- Storing (§3) --------------------------------------------------------------------------

// Status codes whose caching semantics storecache implements (for must-understand and §3).
bool status_understood(int status);
// §4.2.2: heuristically cacheable by default (200 203 204 206 300 301 308 404 405 410 414 501).
bool heuristically_cacheable(int status);
// GET and HEAD can be answered from a stored GET response; nothing else can.
bool method_uses_cache(std::string_view method);
// RFC 9110 §9.2.1 safe methods (GET HEAD OPTIONS TRACE); any other invalidates (§4.4).
bool method_is_safe(std::string_view method);

struct store_decision {
  bool storable = false;
  std::string_view reason;  // static text for logs: why (not) stored
};

// §3 for a shared cache. `method` is the request method as received (case-sensitive).
store_decision check_storable(std::string_view method, const header_list& request_headers,
                              int status, const header_list& response_headers,
                              const site_policy& site);

// The fields to keep with a stored response (§3.1): drops Connection and the fields it
// names, hop-by-hop fields, Proxy-Authenticate*, the fields named by a qualified private
// (never stored by a shared cache) and by a qualified no-cache (never served without
// validation: not storing them is the simplest way to honour that).
header_list headers_to_store(const header_list& response_headers, bool use_targeted = true,
                             bool drop_set_cookie = false);

// --- Freshness and age (§4.2) --------------------------------------------------------------

enum class freshness_source {
  forced,        // site policy forced TTL
  invalid,       // conflicting/invalid max-age or s-maxage, invalid Expires: stale
  s_maxage,      // (CDN-)Cache-Control s-maxage
  max_age,       // (CDN-)Cache-Control max-age
  expires,       // Expires - Date
  heuristic,     // fraction of Date - Last-Modified, capped
  site_default,  // site default TTL
  none,          // nothing applies: lifetime 0
};
std::string_view to_string(freshness_source s);

struct freshness {
  std::chrono::seconds lifetime{0};
  freshness_source source = freshness_source::none;
};

// §4.2.1 freshness lifetime of a stored response. A missing Date counts as the response time.
freshness freshness_lifetime(int status, const header_list& response_headers, response_times times,
                             const site_policy& site);

// §4.2.3: corrected_initial_age = max(apparent_age, Age + response_delay).
std::chrono::seconds corrected_initial_age(const header_list& response_headers,
                                           response_times times);
// §4.2.3: corrected_initial_age + (now - response_time). Value for the Age field of a hit.
std::chrono::seconds current_age(const header_list& response_headers, response_times times,
                                 clock_time now);

// --- Reuse (§4) ----------------------------------------------------------------------------

enum class reuse_action {
  fresh,                   // serve it
  stale,                   // serve it stale: the request allowed it (max-stale)
  stale_while_revalidate,  // serve it stale now and refresh it once in the background
  revalidate,              // conditional request upstream first; see stale_on_error
  gateway_timeout,         // only-if-cached and the stored response will not do: 504
};
std::string_view to_string(reuse_action a);

struct reuse_decision {
  reuse_action action = reuse_action::revalidate;
  std::chrono::seconds age{0};       // current_age, for the Age field
  std::chrono::seconds lifetime{0};  // freshness lifetime
  std::chrono::seconds ttl{0};       // lifetime - age: negative when stale (Cache-Status ttl)
  // The stored response may answer the request if the upstream fails (error, 5xx, timeout,
  // unreachable): the origin's stale-if-error, the request's stale-if-error or the site's
  // stale_if_origin_down window covers its staleness, and no must-revalidate,
  // proxy-revalidate, s-maxage or no-cache forbids stale use (§4.2.4 wins over RFC 5861).
  bool stale_on_error = false;
  std::string_view reason;  // static text for logs
};

// May this stored response (status, stored headers, times) answer this request at `now`?
// The caller has already matched the method (method_uses_cache) and the Vary variant, and
// has not looked up at all when site.bypass is set (Cache-Status fwd=bypass).
reuse_decision decide_reuse(int status, const header_list& response_headers, response_times times,
                            const header_list& request_headers, clock_time now,
                            const site_policy& site);

// --- Validation (§4.3) ---------------------------------------------------------------------

// The validator fields for a conditional request upstream: If-None-Match from ETag,
// If-Modified-Since from Last-Modified (both when both exist; none when neither does).
header_list validation_headers(const header_list& stored_response_headers);

// §4.3.4: does this 304 describe the stored response? False when the 304 carries an ETag
// (or, lacking one, a Last-Modified) that disagrees with the stored one.
bool not_modified_matches(const header_list& stored_response_headers,
                          const header_list& not_modified_headers);

// §3.2: fold a 304's fields into the stored ones. Each field present in the 304 replaces all
// stored lines of that name, except the body's own framing and coding (Content-Length,
// Content-Range, Content-Encoding, Transfer-Encoding) and what §3.1 never stores. The stored
// Age goes in any case (the 304's, if any, takes its place): like the response_times, which
// the caller replaces with those of the 304 exchange, it describes the exchange.
void apply_not_modified(header_list& stored_response_headers,
                        const header_list& not_modified_headers, bool use_targeted = true,
                        bool drop_set_cookie = false);

// RFC 9110 §13.1.2/§13.1.3 on a hit: does the client's If-None-Match (weak comparison) or,
// without it, If-Modified-Since make the answer a 304? Only meaningful for GET/HEAD.
bool client_not_modified(const header_list& request_headers,
                         const header_list& stored_response_headers);

// --- Invalidation (§4.4) -------------------------------------------------------------------

// The URIs a response to an unsafe request invalidates: nothing for safe methods or error
// statuses; else the target URI and the Location / Content-Location URIs (resolved against
// it) that share its origin. `target_uri` is absolute: "https://host/path?query".
std::vector<std::string> invalidated_uris(std::string_view method, int status,
                                          std::string_view target_uri,
                                          const header_list& response_headers);

}  // namespace storecache::cache
