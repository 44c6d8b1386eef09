// The pieces under the signed-URL verifiers: base64 in three alphabets, the bounded JSON
// parser for CloudFront policies (with every truncation and byte flip of valid policies, and
// hostile nesting), resource wildcards, addresses and CIDR, query and cookie lookup (duplicates,
// size caps), paths, and result names. Links storecache_access only (tests/CMakeLists.txt).
#include <catch2/catch.hpp>
#include <string>

#include "access/base64.hpp"
#include "access/json_policy.hpp"
#include "access/signed_url.hpp"
#include "access/signed_url_util.hpp"

using namespace storecache::access;
namespace d = storecache::access::detail;

TEST_CASE("base64: the three alphabets, strict", "[signed_url]") {
  const std::string bytes = "\xfb\xff\xbf-any";
  CHECK(base64_encode(bytes, base64_alphabet::standard) == "+/+/LWFueQ==");
  CHECK(base64_encode(bytes, base64_alphabet::url) == "-_-_LWFueQ");
  CHECK(base64_encode(bytes, base64_alphabet::cloudfront) == "-~-~LWFueQ__");
  for (const auto a :
       {base64_alphabet::standard, base64_alphabet::url, base64_alphabet::cloudfront}) {
    for (std::size_t n = 0; n <= bytes.size(); ++n) {
      const std::string in = bytes.substr(0, n);
      CHECK(base64_decode(base64_encode(in, a), a, 64) == in);
    }
  }
  CHECK(base64_decode("LWFueQ", base64_alphabet::standard, 64) == "-any");  // padding optional
  CHECK(base64_decode("LWFueQ=", base64_alphabet::standard, 64) == std::nullopt);
  CHECK(base64_decode("LWFueQ===", base64_alphabet::standard, 64) == std::nullopt);
  CHECK(base64_decode("LWFueR==", base64_alphabet::standard, 64) == std::nullopt);  // tail bits
  CHECK(base64_decode("L", base64_alphabet::url, 64) == std::nullopt);
  CHECK(base64_decode("+/+/", base64_alphabet::url, 64) == std::nullopt);
  CHECK(base64_decode("-_-_", base64_alphabet::standard, 64) == std::nullopt);
  CHECK(base64_decode("LW=ueQ==", base64_alphabet::standard, 64) == std::nullopt);
  CHECK(base64_decode("LWFu\nQQ", base64_alphabet::standard, 64) == std::nullopt);
  CHECK(base64_decode("AAAAAAAA", base64_alphabet::url, 5) == std::nullopt);  // 6 > 5
  CHECK(base64_decode("AAAAAAAA", base64_alphabet::url, 6).has_value());
  CHECK(base64_decode("", base64_alphabet::url, 6) == std::string());
}

namespace {
const std::string policy_text =
    R"({"Statement":[{"Resource":"https://h/a/*","Condition":{"DateLessThan":{"AWS:EpochTime":2000000000},)"
    R"("DateGreaterThan":{"AWS:EpochTime":1},"IpAddress":{"AWS:SourceIp":"10.0.0.0/8"}}}]})";
}

TEST_CASE("policy JSON: a full policy, and its fields", "[signed_url]") {
  const auto p = parse_cloudfront_policy(policy_text);
  REQUIRE(p);
  CHECK(p->resource == "https://h/a/*");
  CHECK(p->date_less_than == 2000000000);
  CHECK(p->date_greater_than == 1);
  CHECK(p->source_ip == "10.0.0.0/8");
  const auto escaped = parse_cloudfront_policy(
      R"( { "Statement" : [ { "Resource" : "https:\/\/h\/\u00e9\ud83d\ude00\"*" , )"
      R"("Condition":{"DateLessThan":{"AWS:EpochTime":0}} } ] } )");
  REQUIRE(escaped);
  CHECK(escaped->resource == "https://h/\xc3\xa9\xf0\x9f\x98\x80\"*");
  CHECK_FALSE(escaped->date_greater_than);
}

TEST_CASE("policy JSON: refusals", "[signed_url]") {
  const std::string cond = R"("Condition":{"DateLessThan":{"AWS:EpochTime":5}})";
  for (
      const std::string& bad : std::vector<std::string>{
          "",
          "{}",
          "[]",
          R"({"Statement":[]})",
          R"({"Statement":{}})",
          R"({"Statement":[{"Resource":"x",)" + cond + "}],\"Extra\":1}",
          R"({"Statement":[{"Resource":"x","Condition":{}}]})",  // no DateLessThan
          R"({"Statement":[{)" + cond + "}]}",                   // no Resource
          R"({"Statement":[{"Resource":"",)" + cond + "}]}",     // empty Resource
          R"({"Statement":[{"Resource":1,)" + cond + "}]}",
          R"({"Statement":[{"Resource":"x","Resource":"y",)" + cond + "}]}",  // duplicate key
          R"({"Statement":[{"Resource":"x","Condition":{"DateLessThan":{"AWS:EpochTime":1.5}}}]})",
          R"({"Statement":[{"Resource":"x","Condition":{"DateLessThan":{"AWS:EpochTime":1e9}}}]})",
          R"({"Statement":[{"Resource":"x","Condition":{"DateLessThan":{"AWS:EpochTime":-1}}}]})",
          R"({"Statement":[{"Resource":"x","Condition":{"DateLessThan":{"AWS:EpochTime":01}}}]})",
          R"({"Statement":[{"Resource":"x","Condition":{"DateLessThan":{"AWS:EpochTime":"5"}}}]})",
          R"({"Statement":[{"Resource":"x","Condition":{"DateLessThan":{"AWS:EpochTime":99999999999999999999}}}]})",
          R"({"Statement":[{"Resource":"x","Condition":{"DateLessThan":{"AWS:EpochTime":5},"Foo":{}}}]})",
          R"({"Statement":[{"Resource":"x","Condition":{"DateLessThan":{"AWS:EpochTime":5},"IpAddress":{"AWS:SourceIp":5}}}]})",
          R"({"Statement":[{"Resource":"a\u0000b",)" + cond + "}]}",
          R"({"Statement":[{"Resource":"a\ud800",)" + cond + "}]}",
          R"({"Statement":[{"Resource":"a\q",)" + cond + "}]}",
          "{\"Statement\":[{\"Resource\":\"a\nb\"," + cond + "}]}",
          R"({"Statement":[{"Resource":"x",)" + cond + "}]} x",
          R"({"Statement":[{"Resource":"x",)" + cond + "},]}",
          R"({"Statement":[{"Resource":"x",)" + cond + "}]}}",
          R"({"Statement":[{"Resource":"x",)" + cond + ",\"Condition\":true}]}",
          "nul",
          "tru",
          std::string(5000, ' ') + policy_text,  // over the size bound
      }) {
    INFO(bad.substr(0, 140));
    CHECK_FALSE(parse_cloudfront_policy(bad));
  }
}

TEST_CASE("policy JSON: truncations, flips and nesting never crash or pass", "[signed_url]") {
  for (std::size_t n = 0; n < policy_text.size(); ++n)
    CHECK_FALSE(parse_cloudfront_policy(policy_text.substr(0, n)));
  std::size_t accepted = 0;
  for (std::size_t i = 0; i < policy_text.size(); ++i) {
    for (const char c : {'\0', '"', '\\', '{', '[', ']', '}', ',', ':', 'x', '9', '\xff'}) {
      std::string s = policy_text;
      s[i] = c;
      if (parse_cloudfront_policy(s)) ++accepted;  // e.g. a digit in a time: still a policy
    }
  }
  CHECK(accepted < policy_text.size() * 2);
  // Deep nesting stops at the depth bound, without deep recursion.
  CHECK_FALSE(parse_cloudfront_policy(std::string(4000, '[')));
  CHECK_FALSE(parse_cloudfront_policy(std::string(2000, '[') + std::string(2000, ']')));
  CHECK_FALSE(parse_cloudfront_policy(R"({"Statement":[{"Resource":"x","Condition":)" +
                                      std::string(1000, '{') + std::string(1000, '}') + "}]}"));
}

TEST_CASE("resource wildcards", "[signed_url]") {
  CHECK(wildcard_match("https://h/a/*", "https://h/a/"));
  CHECK(wildcard_match("https://h/a/*", "https://h/a/b/c?x=1"));
  CHECK_FALSE(wildcard_match("https://h/a/*", "https://h/b/"));
  CHECK(wildcard_match("*", ""));
  CHECK(wildcard_match("a?c", "abc"));
  CHECK_FALSE(wildcard_match("a?c", "ac"));
  CHECK(wildcard_match("*.mp4", "https://h/x.mp4"));
  CHECK_FALSE(wildcard_match("*.mp4", "https://h/x.mp4?y"));
  CHECK(wildcard_match("a*b*c", "a--b--b--c"));
  CHECK_FALSE(wildcard_match("a*b*c", "a--b--b--"));
  CHECK(wildcard_match("https://h/exact", "https://h/exact"));
  CHECK_FALSE(wildcard_match("https://h/exact", "https://h/exact2"));
  // Many stars against a long text: bounded work.
  CHECK_FALSE(wildcard_match(std::string(200, '*') + "b", std::string(8000, 'a')));
}

TEST_CASE("addresses and CIDR", "[signed_url]") {
  const auto net4 = d::parse_cidr("10.1.0.0/16");
  REQUIRE(net4);
  CHECK(d::contains(*net4, *d::parse_ip("10.1.200.3")));
  CHECK(d::contains(*net4, *d::parse_ip("::ffff:10.1.0.9")));
  CHECK_FALSE(d::contains(*net4, *d::parse_ip("10.2.0.1")));
  CHECK_FALSE(d::contains(*net4, *d::parse_ip("::a01:1")));  // IPv4-compatible is not IPv4
  const auto net6 = d::parse_cidr("2001:db8::/33");
  REQUIRE(net6);
  CHECK(d::contains(*net6, *d::parse_ip("2001:db8:7fff::1")));
  CHECK_FALSE(d::contains(*net6, *d::parse_ip("2001:db8:8000::1")));
  CHECK_FALSE(d::contains(*net6, *d::parse_ip("10.1.0.1")));
  const auto host = d::parse_cidr("192.0.2.7");
  REQUIRE(host);
  CHECK(d::contains(*host, *d::parse_ip("192.0.2.7")));
  CHECK_FALSE(d::contains(*host, *d::parse_ip("192.0.2.6")));
  CHECK(d::contains(*d::parse_cidr("0.0.0.0/0"), *d::parse_ip("8.8.8.8")));
  CHECK(d::contains(*d::parse_cidr("::/0"), *d::parse_ip("fe80::1")));
  for (const char* bad : {"10.1.0.0/33", "::/129", "10.1.0.0/", "10.1.0.0/-1", "10.1.0/8",
                          "10.1.0.0/8/8", "", "/8", "10.1.0.0/0008", "fe80::1%eth0/64"})
    CHECK_FALSE(d::parse_cidr(bad));
  CHECK_FALSE(d::parse_ip(std::string(100, '1')));
}

TEST_CASE("query and cookie lookup: duplicates and size caps", "[signed_url]") {
  const std::array<std::string_view, 2> names = {"a", "b"};
  std::array<std::optional<std::string_view>, 2> v;
  CHECK(d::find_pairs("x=1&a=2&b", '&', names, v) == d::lookup_status::ok);
  CHECK(v[0] == "2");
  CHECK(v[1] == "");
  CHECK(d::find_pairs("a=1&a=1", '&', names, v) == d::lookup_status::duplicate);
  CHECK(d::find_pairs("A=1&aa=2&=3&&", '&', names, v) == d::lookup_status::ok);
  CHECK_FALSE(v[0]);
  CHECK(d::find_pairs("a=" + std::string(max_parameter_bytes + 1, 'x'), '&', names, v) ==
        d::lookup_status::too_long);
  CHECK(d::find_pairs("a=" + std::string(max_parameter_bytes, 'x'), '&', names, v) ==
        d::lookup_status::ok);
  CHECK(d::find_pairs(" x=1;  a=2 ;b=3", ';', names, v) == d::lookup_status::ok);
  CHECK(v[0] == "2");
  CHECK(v[1] == "3");
  CHECK(d::strip_query("x=1&a=2&y=3&b=4", names) == "x=1&y=3");
  CHECK(d::strip_query("a=1&b", names).empty());
  // Many parameters: linear, no trouble.
  std::string many;
  for (int i = 0; i < 20000; ++i)
    many += "p" + std::to_string(i) + "=v&";
  many += "a=1";
  CHECK(d::find_pairs(many, '&', names, v) == d::lookup_status::ok);
  CHECK(v[0] == "1");
}

TEST_CASE("integers, paths, constant-time equality, names", "[signed_url]") {
  CHECK(d::parse_decimal("0") == 0);
  CHECK(d::parse_decimal("999999999999999999") == 999999999999999999);
  for (const char* bad : {"", "-1", "+1", "1e3", " 1", "1 ", "0x10", "9999999999999999999"})
    CHECK_FALSE(d::parse_decimal(bad));
  CHECK(d::saturating_add(INT64_MAX, 30) == INT64_MAX);
  CHECK(d::is_plain_path("/a/b.c/..d/.e/"));
  for (const char* bad : {"", "a", "/a/../b", "/a/./b", "/..", "/a/.", "//a", "/a%2fb", "/a%5Cb",
                          "/a\\b", "/%2e%2E/x", "/.%2e/x"})
    CHECK_FALSE(d::is_plain_path(bad));
  CHECK(d::percent_decode("/a%20b%2F") == "/a b/");
  CHECK_FALSE(d::percent_decode("/a%2"));
  CHECK_FALSE(d::percent_decode("/a%g0"));
  CHECK_FALSE(d::percent_decode("/a%00"));
  CHECK(d::equal_ct("abc", "abc"));
  CHECK_FALSE(d::equal_ct("abc", "abd"));
  CHECK_FALSE(d::equal_ct("abc", "ab"));
  for (const auto r : {signature_result::ok, signature_result::missing, signature_result::malformed,
                       signature_result::bad_signature, signature_result::expired,
                       signature_result::not_yet_valid, signature_result::unknown_key,
                       signature_result::wrong_ip, signature_result::wrong_resource})
    CHECK_FALSE(to_string(r).empty());
}
