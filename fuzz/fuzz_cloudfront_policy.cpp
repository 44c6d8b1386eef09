// CloudFront custom policies (access/json_policy.hpp): the bounded JSON parser and its walk
// to the one statement, on any bytes; and the resource wildcard match.
// Input: the policy JSON; for the wildcard match also "<pattern>\n<text>".
#include <cstdint>

#include "access/json_policy.hpp"
#include "access/signed_url.hpp"
#include "fuzz/fuzz_check.hpp"

using namespace storecache::access;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in = storecache::fuzz::as_text(data, size);
  if (const auto p = parse_cloudfront_policy(in)) {
    FUZZ_CHECK(in.size() <= max_policy_bytes);
    FUZZ_CHECK(!p->resource.empty());
    wildcard_match(p->resource, "https://lms.example.com/course/1/video.mp4");
  }
  const storecache::fuzz::fields<2> f(in);
  const bool matched = wildcard_match(f.part[0], f.part[1]);
  if (f.part[0].find_first_of("*?") == std::string_view::npos)
    FUZZ_CHECK(matched == (f.part[0] == f.part[1]));
  FUZZ_CHECK(wildcard_match(f.part[1], f.part[1]));  // '*' and '?' match themselves too
  return 0;
}
