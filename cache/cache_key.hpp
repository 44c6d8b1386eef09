// Cache keys. The primary key names a URL (RFC 9111 §2: method GET is implied, HEAD uses the
// GET entry): scheme, normalized host, path and query, with the site's volatile query
// parameters dropped. The secondary key (§4.1) names one variant under a Vary field. The full
// key is what the index stores and compares (the index hashes it with store_hash.hpp).
//
// Normalization only merges spellings that mean the same resource to every origin:
//   - scheme and host are case-insensitive (lower-cased), a trailing dot on the host and the
//     scheme's default port are dropped ("https://A.example.:443" == "https://a.example");
//   - percent-encoded unreserved characters are decoded ("%7E" == "~", "%41" == "A") and the
//     hex digits of the remaining escapes are upper-cased ("%2f" == "%2F") (RFC 3986 §6.2.2);
//   - an empty path is "/", an empty query is no query, empty "&&" segments are dropped.
// Dot segments are NOT removed and parameter order is kept: origins may treat those
// differently, and the request forwarded upstream keeps its original spelling.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cache/http_fields.hpp"

namespace storecache::cache {

// Query parameters to drop from keys: exact, case-sensitive names ("Signature"), or prefix
// patterns ending in '*' ("X-Amz-*" drops "X-Amz-Credential", "X-Amz-Signature", ...). Names
// are compared after percent-decoding of unreserved characters.
struct key_rules {
  std::vector<std::string> dropped_query_params;
};

// Does this (already normalized) parameter name match one of the rules?
bool query_param_dropped(std::string_view name, const key_rules& rules);

// "Learn.Example.COM.:443" (https) -> "learn.example.com"; "[::1]:8443" stays; a port equal
// to the scheme's default (80 http, 443 https) is dropped.
std::string normalize_authority(std::string_view scheme, std::string_view authority);

// RFC 3986 §6.2.2.2 percent-encoding normalization (see above). A '%' not followed by two hex
// digits is kept as it is, and an encoded hex digit after it stays encoded ("%%2%41" keeps its
// "%41"): decoded, it would form a new triplet with that '%'. Idempotent.
std::string normalize_percent_encoding(std::string_view s);

// The query with dropped parameters removed, the others in their order, normalized.
std::string filter_query(std::string_view query, const key_rules& rules);

// The names (normalized) of the parameters of `target`'s query that the rules drop, in order.
std::vector<std::string> dropped_query_names(std::string_view target, const key_rules& rules);

// "https://learn.example.com/a/b.mp4?v=2". `target` is the request target in origin-form
// ("/a/b.mp4?v=2&Signature=..."); a fragment, if any, is ignored.
std::string primary_key(std::string_view scheme, std::string_view authority,
                        std::string_view target, const key_rules& rules);

// --- Vary (§4.1) ---------------------------------------------------------------------------

// The lower-case field names a response varies on, sorted and without duplicates; empty for
// no Vary; nullopt for "Vary: *" (such a response is never reused).
std::optional<std::vector<std::string>> vary_field_names(const header_list& response_headers);

// The request's values for those fields, normalized: lines combined, list elements trimmed
// and joined by ",", values of case-insensitive fields (accept-encoding, accept-language,
// accept-charset) lower-cased; an absent field differs from an empty one. "" for no names.
// Format: one "name:value" or "name!" (absent) per line, joined by '\n'.
std::string secondary_key_for(const std::vector<std::string>& names,
                              const header_list& request_headers);
// Same, from the response's Vary; nullopt for "Vary: *".
std::optional<std::string> secondary_key(const header_list& response_headers,
                                         const header_list& request_headers);

// Does a stored variant (its response headers and the secondary key it was stored under)
// answer a new request? Never for "Vary: *".
bool variant_matches(const header_list& stored_response_headers,
                     std::string_view stored_secondary_key, const header_list& request_headers);

// primary + '\n' + secondary, or just primary when there is no secondary key. '\n' cannot
// occur in a URL, so the result is unambiguous.
std::string full_key(std::string_view primary, std::string_view secondary);

// --- Fingerprint ---------------------------------------------------------------------------

// FNV-1a 128-bit of a key: self-contained, fast, unkeyed. For logs, metrics labels, sharding
// and Cache-Status; NOT for the index, which uses the keyed SipHash of store_hash.hpp so that
// whoever chooses URLs cannot craft collisions.
struct key_fingerprint {
  std::uint64_t hi = 0;
  std::uint64_t lo = 0;
  std::array<std::uint8_t, 16> bytes() const;  // big-endian
  std::string hex() const;                     // 32 lower-case hex digits, big-endian
  friend bool operator==(const key_fingerprint&, const key_fingerprint&) = default;
};
key_fingerprint fnv1a_128(std::string_view key);

}  // namespace storecache::cache
