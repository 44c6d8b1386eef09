// Field-value syntax the cache policy reads: RFC 9110 lists and quoted strings,
// delta-seconds, and the Cache-Control directives of RFC 9111 §5.2 (plus RFC 5861's
// stale-while-revalidate / stale-if-error) and the targeted CDN-Cache-Control of RFC 9213.
//
// Everything here is pure: no clock, no I/O, no exceptions. Malformed input never fails a
// parse as a whole; it is recorded where RFC 9111 asks for it (an invalid or conflicting
// freshness directive makes the response stale, §4.2.1) and otherwise ignored, as unknown
// directives must be (§5.2.3).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cache/http_date.hpp"
#include "cache/http_fields.hpp"

namespace storecache::cache {

// --- Generic field syntax -------------------------------------------------------------------

// ASCII-only helpers (header names and directive names are ASCII by grammar).
bool iequals(std::string_view a, std::string_view b);
std::string to_lower(std::string_view s);
std::string_view trim_ows(std::string_view s);  // strips SP and HTAB at both ends

// Splits an RFC 9110 §5.6.1 list on commas that are not inside a quoted-string; elements are
// trimmed and empty elements dropped ("a, ,b" -> {"a","b"}).
std::vector<std::string_view> split_list(std::string_view value);

// All field lines named `name` (lower-case) combined into one list value, joined by ", " as
// RFC 9110 §5.3 allows; nullopt when no such line exists. Not for Set-Cookie or fields whose
// values contain commas (Expires, Date, Last-Modified).
std::optional<std::string> combined_field(const header_list& headers, std::string_view name);

// RFC 9111 §1.2.2 delta-seconds: 1*DIGIT. A value too large to represent saturates at 2^31,
// as the RFC requires; anything else (sign, space, empty, non-digit) is nullopt.
std::optional<std::chrono::seconds> parse_delta_seconds(std::string_view text);
inline constexpr std::chrono::seconds delta_seconds_max{2147483648LL};

// --- Entity tags (RFC 9110 §8.8.3) -----------------------------------------------------------

struct entity_tag {
  bool weak = false;
  std::string_view opaque;  // including the double quotes: "\"xyzzy\""
};
// One entity-tag (W/"x" or "x"); nullopt if malformed.
std::optional<entity_tag> parse_entity_tag(std::string_view text);
// §8.8.3.2: strong comparison needs both strong and equal; weak comparison ignores W/.
bool strong_match(const entity_tag& a, const entity_tag& b);
bool weak_match(const entity_tag& a, const entity_tag& b);

// --- Cache-Control --------------------------------------------------------------------------

// Response directives (RFC 9111 §5.2.2, RFC 5861). Absent optionals mean "directive absent".
struct response_directives {
  std::optional<std::chrono::seconds> max_age;
  std::optional<std::chrono::seconds> s_maxage;
  std::optional<std::chrono::seconds> stale_while_revalidate;
  std::optional<std::chrono::seconds> stale_if_error;
  bool no_cache = false;                     // unqualified: every reuse needs validation
  std::vector<std::string> no_cache_fields;  // qualified form: only these fields need it
  bool no_store = false;
  bool is_private = false;                  // unqualified: a shared cache must not store
  std::vector<std::string> private_fields;  // qualified form: these fields are not stored
  bool is_public = false;
  bool must_revalidate = false;
  bool proxy_revalidate = false;
  bool must_understand = false;
  bool no_transform = false;
  bool immutable = false;
  // A freshness directive (max-age, s-maxage) was repeated with different values or had an
  // invalid argument: §4.2.1 says treat the response as stale.
  bool invalid_freshness = false;
};

// Request directives (RFC 9111 §5.2.1, plus RFC 5861 stale-if-error).
struct request_directives {
  std::optional<std::chrono::seconds> max_age;
  std::optional<std::chrono::seconds> min_fresh;
  bool max_stale = false;                               // present at all
  std::optional<std::chrono::seconds> max_stale_limit;  // its value; absent: any staleness
  std::optional<std::chrono::seconds> stale_if_error;
  bool no_cache = false;
  bool no_store = false;
  bool only_if_cached = false;
};

// Parse one (combined) Cache-Control value. Directive names are case-insensitive; arguments
// may be tokens or quoted-strings (§5.2: recipients accept both forms).
response_directives parse_response_cache_control(std::string_view value);
request_directives parse_request_cache_control(std::string_view value);

// Request directives from every Cache-Control line of a request (all absent if none).
request_directives request_cache_control(const header_list& request_headers);

// CDN-Cache-Control (RFC 9213) is a Structured Fields Dictionary (RFC 8941). Returns nullopt
// when the value is empty or not a valid dictionary, so that the caller falls back to
// Cache-Control. Directives whose value has an unexpected type are ignored (max-age="5" is
// not an integer here); parameters are ignored; no-cache / private with any non-boolean value
// count as their unqualified (more restrictive) form.
std::optional<response_directives> parse_cdn_cache_control(std::string_view value);

// The directives that govern this response for storecache.
//
// The exact rule (RFC 9213 §2.1, with storecache's target list being just
// "CDN-Cache-Control"): when `use_targeted` is true and the response carries a
// CDN-Cache-Control field whose (combined) value is non-empty and parses as a valid
// dictionary, those directives are used and the response's Cache-Control AND Expires fields
// are ignored entirely (`targeted` is true). Otherwise the Cache-Control lines are parsed and
// Expires applies as usual.
struct effective_directives {
  response_directives directives;
  bool targeted = false;  // came from CDN-Cache-Control; Expires must be ignored
};
effective_directives response_cache_control(const header_list& response_headers,
                                            bool use_targeted = true);

}  // namespace storecache::cache
