// Cache keys: primary key normalization and dropped query parameters, Vary secondary keys
// (RFC 9111 §4.1), and the FNV-1a-128 fingerprint.
#include <catch2/catch.hpp>

#include "cache/cache_key.hpp"

using namespace storecache::cache;

namespace {

const key_rules signed_url_rules{{"Expires", "Signature", "Key-Pair-Id", "X-Amz-*"}};

}  // namespace

TEST_CASE("primary key: scheme, host and path", "[cache_key]") {
  const key_rules none;
  CHECK(primary_key("https", "learn.example.com", "/a/b.mp4", none) ==
        "https://learn.example.com/a/b.mp4");
  CHECK(primary_key("HTTPS", "Learn.Example.COM", "/A/b.mp4", none) ==
        "https://learn.example.com/A/b.mp4");  // the path stays case-sensitive
  CHECK(primary_key("https", "learn.example.com:443", "/", none) == "https://learn.example.com/");
  CHECK(primary_key("https", "learn.example.com.", "/", none) == "https://learn.example.com/");
  CHECK(primary_key("https", "learn.example.com:8443", "/", none) ==
        "https://learn.example.com:8443/");
  CHECK(primary_key("http", "learn.example.com:80", "/", none) == "http://learn.example.com/");
  CHECK(primary_key("http", "learn.example.com:443", "/", none) == "http://learn.example.com:443/");
  CHECK(primary_key("https", "[::1]:443", "/x", none) == "https://[::1]/x");
  CHECK(primary_key("https", "[::1]:8443", "/x", none) == "https://[::1]:8443/x");
  CHECK(primary_key("https", "learn.example.com", "", none) == "https://learn.example.com/");
  CHECK(primary_key("https", "learn.example.com", "/a#frag", none) ==
        "https://learn.example.com/a");
  CHECK(primary_key("https", "learn.example.com", "/a?", none) == "https://learn.example.com/a");
  CHECK(primary_key("https", "learn.example.com", "?x=1", none) ==
        "https://learn.example.com/?x=1");
  // Dot segments are kept: an origin may treat them differently.
  CHECK(primary_key("https", "h", "/a/../b", none) == "https://h/a/../b");
}

TEST_CASE("percent-encoding normalization (RFC 3986 §6.2.2.2)", "[cache_key]") {
  CHECK(normalize_percent_encoding("/%7euser/%41%62%2D%2e%5F") == "/~user/Ab-._");
  CHECK(normalize_percent_encoding("/a%2fb%3a") == "/a%2Fb%3A");
  CHECK(normalize_percent_encoding("/100%") == "/100%");
  CHECK(normalize_percent_encoding("/%4") == "/%4");
  CHECK(normalize_percent_encoding("/%zz%20") == "/%zz%20");
  CHECK(normalize_percent_encoding("/caf%C3%a9") == "/caf%C3%A9");
  // An encoded hex digit after a stray '%' stays encoded: decoded, "/0%%2%41" would be "/0%%2A",
  // the key of another URL ("/0%*"), and normalizing twice would change it again (fuzz_cache_key).
  CHECK(normalize_percent_encoding("/0%%2%41") == "/0%%2%41");
  CHECK(normalize_percent_encoding("/0%%2%61=2") == "/0%%2%61=2");
  CHECK(normalize_percent_encoding("/%%61b") == "/%%61b");
  CHECK(normalize_percent_encoding("/%%7e%41") == "/%~A");
  CHECK(primary_key("https", "h", "/0%%2%41", {}) != primary_key("https", "h", "/0%%2A", {}));
  for (const char* t : {"/0%%2%41", "/0%%2%61=2", "/%%61b", "/%4%31", "/%%%32a"})
    CHECK(normalize_percent_encoding(normalize_percent_encoding(t)) ==
          normalize_percent_encoding(t));
  CHECK(primary_key("https", "h", "/%7Ex?q=%7e", {}) == primary_key("https", "h", "/~x?q=~", {}));
}

TEST_CASE("query parameters: dropped by name or prefix, order kept", "[cache_key]") {
  const std::string signed_url =
      "/video/intro.mp4?v=3&Expires=1700000000&Signature=abc~def&Key-Pair-Id=K2&lang=fr";
  CHECK(primary_key("https", "cdn.example.com", signed_url, signed_url_rules) ==
        "https://cdn.example.com/video/intro.mp4?v=3&lang=fr");
  const std::string s3 =
      "/b/k.pdf?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a%2Fb&X-Amz-Date=20240101"
      "&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=ff&page=2";
  CHECK(primary_key("https", "s3.example.com", s3, signed_url_rules) ==
        "https://s3.example.com/b/k.pdf?page=2");
  // Two page loads with rotating signatures share one key.
  CHECK(primary_key("https", "h", "/a?Signature=1&Expires=2", signed_url_rules) ==
        primary_key("https", "h", "/a?Expires=3&Signature=4", signed_url_rules));
  // Exact names are case-sensitive; the remaining order is the request's.
  CHECK(filter_query("signature=1&b=2&a=1", signed_url_rules) == "signature=1&b=2&a=1");
  CHECK(filter_query("b=2&a=1", signed_url_rules) != filter_query("a=1&b=2", signed_url_rules));
  // Empty segments go; a parameter without '=' is a name too.
  CHECK(filter_query("&&a=1&&Signature&", signed_url_rules) == "a=1");
  // Names are matched after unreserved percent-decoding.
  CHECK(filter_query("%53ignature=x&k=v", signed_url_rules) == "k=v");
  CHECK(query_param_dropped("X-Amz-Anything", signed_url_rules));
  CHECK_FALSE(query_param_dropped("X-Am", signed_url_rules));
  CHECK_FALSE(query_param_dropped("Expires2", signed_url_rules));
  key_rules star{{"*"}};
  CHECK(filter_query("a=1&b=2", star).empty());
}

TEST_CASE("Vary field names", "[cache_key][vary]") {
  CHECK(vary_field_names({})->empty());
  auto names =
      vary_field_names({{"vary", "User-Agent, accept-encoding"}, {"vary", "Accept-Encoding"}});
  REQUIRE(names);
  CHECK(*names == std::vector<std::string>{"accept-encoding", "user-agent"});
  CHECK_FALSE(vary_field_names({{"vary", "accept-encoding, *"}}));
  CHECK_FALSE(vary_field_names({{"vary", "*"}}));
}

TEST_CASE("Vary secondary key (§4.1)", "[cache_key][vary]") {
  header_list vary_ae{{"vary", "Accept-Encoding"}};
  auto k1 = secondary_key(vary_ae, {{"accept-encoding", "gzip, br"}});
  auto k2 = secondary_key(vary_ae, {{"accept-encoding", "GZIP,br  "}});
  auto k3 = secondary_key(vary_ae, {{"accept-encoding", "gzip"}, {"accept-encoding", "br"}});
  auto absent = secondary_key(vary_ae, {});
  auto empty = secondary_key(vary_ae, {{"accept-encoding", ""}});
  REQUIRE(k1);
  CHECK(*k1 == "accept-encoding:gzip,br");
  CHECK(k2 == k1);  // whitespace and case of a case-insensitive field
  CHECK(k3 == k1);  // several lines are one list
  CHECK(*absent == "accept-encoding!");
  CHECK(*empty == "accept-encoding:");
  CHECK(absent != empty);
  CHECK(secondary_key(header_list{}, {{"accept-encoding", "gzip"}}) == std::string());
  CHECK_FALSE(secondary_key({{"vary", "*"}}, {}));
  // Values of other fields keep their case.
  auto ua = secondary_key({{"vary", "user-agent, accept-language"}},
                          {{"user-agent", "Mozilla/5.0 (iPhone)"}, {"accept-language", "fr-FR"}});
  CHECK(*ua == "accept-language:fr-fr\nuser-agent:Mozilla/5.0 (iPhone)");
}

TEST_CASE("variant matching", "[cache_key][vary]") {
  header_list stored{{"vary", "accept-encoding"}};
  auto key = *secondary_key(stored, {{"accept-encoding", "gzip"}});
  CHECK(variant_matches(stored, key, {{"accept-encoding", " gzip"}}));
  CHECK_FALSE(variant_matches(stored, key, {{"accept-encoding", "br"}}));
  CHECK_FALSE(variant_matches(stored, key, {}));
  CHECK(variant_matches({}, "", {{"accept-encoding", "br"}}));
  CHECK_FALSE(variant_matches({{"vary", "*"}}, "", {}));
  CHECK(full_key("https://h/a", "") == "https://h/a");
  CHECK(full_key("https://h/a", key) == "https://h/a\naccept-encoding:gzip");
}

TEST_CASE("FNV-1a-128 fingerprint", "[cache_key]") {
  // Reference values of the FNV-1a 128-bit function (offset basis for "").
  CHECK(fnv1a_128("").hex() == "6c62272e07bb014262b821756295c58d");
  CHECK(fnv1a_128("a").hex() == "d228cb696f1a8caf78912b704e4a8964");
  CHECK(fnv1a_128("foobar").hex() == "343e1662793c64bf6f0d3597ba446f18");
  CHECK(fnv1a_128("https://learn.example.com/a.mp4").hex() == "71a22ec2762c57f607f19120a6c02dda");
  auto h = fnv1a_128("a");
  CHECK(h.hi == 0xd228cb696f1a8cafULL);
  CHECK(h.lo == 0x78912b704e4a8964ULL);
  CHECK(h.bytes()[0] == 0xd2);
  CHECK(h.bytes()[15] == 0x64);
  CHECK(fnv1a_128("https://h/a") != fnv1a_128("https://h/b"));
}

TEST_CASE("the names of the parameters a key drops", "[cache_key]") {
  key_rules rules{{"Expires", "Signature", "X-Amz-*"}};
  using v = std::vector<std::string>;
  CHECK(dropped_query_names("/a.mp4", rules) == v{});
  CHECK(dropped_query_names("/a.mp4?v=2", rules) == v{});
  CHECK(dropped_query_names("/a.mp4?v=2&Signature=x&&Expires=1#frag", rules) ==
        v{"Signature", "Expires"});
  CHECK(dropped_query_names("/a.mp4?X-Amz-Date=1&%53ignature=x", rules) ==
        v{"X-Amz-Date", "Signature"});
  CHECK(dropped_query_names("/a.mp4?Signature", rules) == v{"Signature"});
  CHECK(dropped_query_names("/a.mp4?Signature=1", key_rules{}) == v{});
}
