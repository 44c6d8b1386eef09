#include <catch2/catch.hpp>

#include "access/authorization_cache.hpp"
#include "access/signed_requests.hpp"

using namespace storecache::access;
using clock_type = authorization_cache::clock;

TEST_CASE("signature-looking parameter names") {
  for (const char* n : {"Signature",
                        "signature",
                        "Policy",
                        "Key-Pair-Id",
                        "Expires",
                        "X-Amz-Signature",
                        "X-Amz-Credential",
                        "x-amz-date",
                        "hdnts",
                        "__token__",
                        "md5",
                        "sig",
                        "se",
                        "sc_sig",
                        "sc_exp",
                        "X-Goog-Signature",
                        "token",
                        "access_token",
                        "hmac",
                        "my-hmac-value",
                        "AuthSignature"})
    CHECK(signature_looking(n));
  for (const char* n :
       {"v", "utm_source", "utm_medium", "lang", "page", "id", "version", "q", "start", "design"})
    CHECK_FALSE(signature_looking(n));
  CHECK(any_signature_looking({"utm_source", "Signature"}));
  CHECK_FALSE(any_signature_looking({"utm_source", "utm_medium"}));
  CHECK_FALSE(any_signature_looking({}));
}

TEST_CASE("a signed request's key never equals an unsigned one's") {
  CHECK(signed_variant("https://a.example/v.mp4") == "https://a.example/v.mp4#signed");
  CHECK(signed_variant("https://a.example/v.mp4") != "https://a.example/v.mp4");
}

TEST_CASE("authorization cache: keys separate credentials") {
  auto a = authorization_cache::key({"site", "/v.mp4", "cookie=a"});
  auto b = authorization_cache::key({"site", "/v.mp4", "cookie=b"});
  auto c = authorization_cache::key({"site", "/v.mp4c", "ookie=a"});  // same bytes, other split
  CHECK(a != b);
  CHECK(a != c);
  CHECK(a == authorization_cache::key({"site", "/v.mp4", "cookie=a"}));
}

TEST_CASE("authorization cache: expiry and bound") {
  authorization_cache cache(100);
  const auto now = clock_type::now();
  auto k = authorization_cache::key({"x"});
  CHECK_FALSE(cache.allowed(k, now));
  cache.remember(k, now + std::chrono::seconds(5));
  CHECK(cache.allowed(k, now));
  CHECK(cache.allowed(k, now + std::chrono::seconds(4)));
  CHECK_FALSE(cache.allowed(k, now + std::chrono::seconds(5)));
  CHECK(cache.size() == 0);  // the expired entry went when it was asked for

  for (int i = 0; i < 1000; ++i)
    cache.remember(authorization_cache::key({std::to_string(i)}),
                   clock_type::now() + std::chrono::seconds(60 + i));
  CHECK(cache.size() <= 100);
  // The longest-lived survive; the newest entry is always kept.
  CHECK(cache.allowed(authorization_cache::key({"999"}), clock_type::now()));

  authorization_cache off(0);
  off.remember(k, now + std::chrono::seconds(5));
  CHECK_FALSE(off.allowed(k, now));
}
