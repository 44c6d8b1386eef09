// Helpers shared by the signed-URL schemes (internal to access/; tests use them too): query
// and cookie lookup with duplicate and size checks, strict integers, addresses and CIDR,
// percent-decoding, constant-time comparison, and reading key files at start-up.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <openssl/types.h>

#include "access/signed_url.hpp"

namespace storecache::access::detail {

enum class lookup_status { ok, duplicate, too_long };

// Finds each of names in a list of name=value pairs separated by sep (query: '&', cookies:
// ';', with spaces around cookie pairs ignored). values[i] is set for names[i] when present.
// A name present twice is a duplicate: the caller cannot know which one the origin or the
// CDN would read, so it refuses the request (parameter pollution). A value longer than
// max_parameter_bytes is too_long. Names are compared exactly (case-sensitive).
lookup_status find_pairs(std::string_view list, char sep, std::span<const std::string_view> names,
                         std::span<std::optional<std::string_view>> values);

// The query without the named parameters, the others kept in order with their '&'.
std::string strip_query(std::string_view query, std::span<const std::string_view> names);

// A non-negative decimal integer: digits only, at most 18 of them (no sign, no overflow).
std::optional<std::int64_t> parse_decimal(std::string_view s);

inline std::int64_t saturating_add(std::int64_t a, std::int64_t b) {
  std::int64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) return b > 0 ? INT64_MAX : INT64_MIN;
  return r;
}

// An address as 16 bytes; IPv4 (and IPv4-mapped IPv6) as ::ffff:a.b.c.d.
struct ip_address {
  std::array<unsigned char, 16> bytes{};
  bool v4 = false;
  friend bool operator==(const ip_address&, const ip_address&) = default;
};
std::optional<ip_address> parse_ip(std::string_view text);

struct ip_network {
  ip_address base;
  int prefix = 0;  // in bits of the 16-byte form (IPv4 /n is 96 + n)
};
// "a.b.c.d/n", "x::/n", or an address alone (a single host).
std::optional<ip_network> parse_cidr(std::string_view text);
bool contains(const ip_network& net, const ip_address& a);

// Percent-decoding of a path; nullopt on a bad escape or a decoded NUL.
std::optional<std::string> percent_decode(std::string_view s);

// True when a path has no segment that a server would resolve or re-split: no "." or ".."
// segment (also as %2e), no "//", no encoded '/' or '\' and no '\'. Prefix scopes and
// nginx's normalised $uri rely on it.
bool is_plain_path(std::string_view raw_path);

// Constant-time equality of two byte strings (lengths are not secret).
bool equal_ct(std::string_view a, std::string_view b);

// A key or secret file, whole, at start-up: throws std::runtime_error naming the file when it
// cannot be read or is larger than max_bytes.
std::string read_key_file(const std::string& path, std::size_t max_bytes);

// A digest fetched once at construction (fetching per request costs a provider lookup).
struct md_free {
  void operator()(EVP_MD* md) const;
};
using md_ptr = std::unique_ptr<EVP_MD, md_free>;
md_ptr fetch_digest(const char* name);  // throws std::runtime_error when OpenSSL lacks it

}  // namespace storecache::access::detail
