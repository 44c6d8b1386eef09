// CloudFront custom policies: a small JSON parser bounded in size (max_policy_bytes) and depth,
// and the walk from its tree to the one statement CloudFront allows. Anything else — another
// key, a second statement, a fraction or exponent, a number beyond int64, a duplicate key,
// trailing bytes — is refused (nullopt), never guessed at. Never throws on input bytes;
// recursion is bounded by the depth limit.
//
// The verifier parses a policy only after its signature has been checked, so these bytes
// come from the key holder; the parser is hardened anyway (the unit test feeds it every
// truncation and byte flip of valid policies).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace storecache::access {

struct cloudfront_policy {
  std::string resource;                           // may hold '*' and '?' wildcards
  std::int64_t date_less_than = 0;                // AWS:EpochTime, required
  std::optional<std::int64_t> date_greater_than;  // AWS:EpochTime
  std::optional<std::string> source_ip;           // AWS:SourceIp, CIDR text as written
};

// {"Statement":[{"Resource":"...","Condition":{"DateLessThan":{"AWS:EpochTime":N},
//   "DateGreaterThan":{"AWS:EpochTime":N},"IpAddress":{"AWS:SourceIp":"a.b.c.d/n"}}}]}
// Resource is required here (CloudFront allows omitting it, which makes a signature good for
// every URL of the distribution; we refuse that, see SIGNED_URLS.md).
std::optional<cloudfront_policy> parse_cloudfront_policy(std::string_view json);

// CloudFront's resource match: '*' any run of characters (also none), '?' exactly one.
bool wildcard_match(std::string_view pattern, std::string_view text);

}  // namespace storecache::access
