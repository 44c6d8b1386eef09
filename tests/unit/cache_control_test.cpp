// Field syntax of the cache policy: Cache-Control (RFC 9111 §5.2), CDN-Cache-Control
// (RFC 9213), delta-seconds, HTTP-date (RFC 9110 §5.6.7) and entity tags.
#include <catch2/catch.hpp>

#include "cache/cache_control.hpp"

using namespace storecache::cache;
using std::chrono::seconds;

TEST_CASE("split_list keeps quoted commas and drops empty elements", "[cache_control]") {
  auto v = split_list(R"(a, no-cache="x, y" ,, b="q\"," , c)");
  REQUIRE(v.size() == 4);
  CHECK(v[0] == "a");
  CHECK(v[1] == R"(no-cache="x, y")");
  CHECK(v[2] == R"(b="q\",")");
  CHECK(v[3] == "c");
  CHECK(split_list("").empty());
  CHECK(split_list(" , ,").empty());
}

TEST_CASE("delta-seconds: digits only, saturating at 2^31", "[cache_control]") {
  CHECK(parse_delta_seconds("0") == seconds(0));
  CHECK(parse_delta_seconds("3600") == seconds(3600));
  CHECK(parse_delta_seconds("2147483648") == seconds(2147483648LL));
  CHECK(parse_delta_seconds("99999999999999999999999") == delta_seconds_max);
  CHECK_FALSE(parse_delta_seconds(""));
  CHECK_FALSE(parse_delta_seconds("-1"));
  CHECK_FALSE(parse_delta_seconds("+1"));
  CHECK_FALSE(parse_delta_seconds("1.5"));
  CHECK_FALSE(parse_delta_seconds(" 1"));
}

TEST_CASE("response directives", "[cache_control]") {
  SECTION("all the flags, names case-insensitive") {
    auto d = parse_response_cache_control(
        "Public, NO-STORE, must-revalidate, Proxy-Revalidate, must-understand, no-transform, "
        "immutable, private, no-cache");
    CHECK(d.is_public);
    CHECK(d.no_store);
    CHECK(d.must_revalidate);
    CHECK(d.proxy_revalidate);
    CHECK(d.must_understand);
    CHECK(d.no_transform);
    CHECK(d.immutable);
    CHECK(d.is_private);
    CHECK(d.no_cache);
    CHECK_FALSE(d.invalid_freshness);
  }
  SECTION("numeric directives, token or quoted-string arguments") {
    auto d = parse_response_cache_control(
        R"(max-age=3600, s-maxage="600", stale-while-revalidate=30, stale-if-error=86400)");
    CHECK(d.max_age == seconds(3600));
    CHECK(d.s_maxage == seconds(600));
    CHECK(d.stale_while_revalidate == seconds(30));
    CHECK(d.stale_if_error == seconds(86400));
    CHECK_FALSE(d.invalid_freshness);
  }
  SECTION("qualified no-cache and private list field names, lower-cased") {
    auto d = parse_response_cache_control(R"(no-cache="Set-Cookie, X-Foo", private="x-user")");
    CHECK_FALSE(d.no_cache);
    CHECK_FALSE(d.is_private);
    CHECK(d.no_cache_fields == std::vector<std::string>{"set-cookie", "x-foo"});
    CHECK(d.private_fields == std::vector<std::string>{"x-user"});
  }
  SECTION("malformed qualified argument counts as the unqualified form") {
    auto d = parse_response_cache_control(R"(no-cache="set-cookie)");
    CHECK(d.no_cache);
  }
  SECTION("§4.2.1: conflicting or invalid freshness directives mean stale") {
    CHECK(parse_response_cache_control("max-age=60, max-age=120").invalid_freshness);
    CHECK(parse_response_cache_control("max-age=abc").invalid_freshness);
    CHECK(parse_response_cache_control("max-age=").invalid_freshness);
    CHECK(parse_response_cache_control("max-age").invalid_freshness);
    CHECK(parse_response_cache_control("s-maxage=-5").invalid_freshness);
    auto same = parse_response_cache_control("max-age=60, max-age=60");
    CHECK_FALSE(same.invalid_freshness);
    CHECK(same.max_age == seconds(60));
  }
  SECTION("unknown directives and extensions are ignored") {
    auto d = parse_response_cache_control(R"(foo="bar, baz", max-age=5, community="UCI")");
    CHECK(d.max_age == seconds(5));
    CHECK_FALSE(d.invalid_freshness);
    CHECK_FALSE(d.no_cache);
  }
  SECTION("invalid stale-* arguments are ignored, not fatal") {
    auto d = parse_response_cache_control("stale-while-revalidate=x, max-age=5");
    CHECK_FALSE(d.stale_while_revalidate);
    CHECK(d.max_age == seconds(5));
  }
}

TEST_CASE("request directives", "[cache_control]") {
  auto r = parse_request_cache_control(
      "max-age=0, min-fresh=10, no-cache, no-store, "
      "only-if-cached, stale-if-error=60");
  CHECK(r.max_age == seconds(0));
  CHECK(r.min_fresh == seconds(10));
  CHECK(r.no_cache);
  CHECK(r.no_store);
  CHECK(r.only_if_cached);
  CHECK(r.stale_if_error == seconds(60));
  CHECK_FALSE(r.max_stale);

  auto any = parse_request_cache_control("max-stale");
  CHECK(any.max_stale);
  CHECK_FALSE(any.max_stale_limit);

  auto limited = parse_request_cache_control("Max-Stale=30, max-stale=10");
  CHECK(limited.max_stale);
  CHECK(limited.max_stale_limit == seconds(10));

  auto bad = parse_request_cache_control("max-stale=abc, max-age=x");
  CHECK_FALSE(bad.max_stale);
  CHECK_FALSE(bad.max_age);
}

TEST_CASE("several Cache-Control lines are one list", "[cache_control]") {
  header_list h{{"cache-control", "no-cache"}, {"x", "y"}, {"cache-control", "max-age=0"}};
  CHECK(combined_field(h, "cache-control") == std::string("no-cache, max-age=0"));
  CHECK_FALSE(combined_field(h, "pragma"));
  auto r = request_cache_control(h);
  CHECK(r.no_cache);
  CHECK(r.max_age == seconds(0));
}

TEST_CASE("CDN-Cache-Control is a structured dictionary", "[cache_control][rfc9213]") {
  SECTION("valid") {
    auto d = parse_cdn_cache_control("max-age=600, stale-if-error=30, public, must-revalidate");
    REQUIRE(d);
    CHECK(d->max_age == seconds(600));
    CHECK(d->stale_if_error == seconds(30));
    CHECK(d->is_public);
    CHECK(d->must_revalidate);
  }
  SECTION("booleans and parameters") {
    auto d = parse_cdn_cache_control("no-store=?0, no-cache=?1, max-age=5;a=1;b");
    REQUIRE(d);
    CHECK_FALSE(d->no_store);
    CHECK(d->no_cache);
    CHECK(d->max_age == seconds(5));
  }
  SECTION("a value of the wrong type ignores the directive, not the field") {
    auto d = parse_cdn_cache_control(R"(max-age="600", s-maxage=1.5, stale-if-error=-1, public)");
    REQUIRE(d);
    CHECK_FALSE(d->max_age);
    CHECK_FALSE(d->s_maxage);
    CHECK_FALSE(d->stale_if_error);
    CHECK(d->is_public);
  }
  SECTION("qualified private / no-cache count as unqualified") {
    auto d = parse_cdn_cache_control(R"(private="set-cookie", no-cache=(a b))");
    REQUIRE(d);
    CHECK(d->is_private);
    CHECK(d->no_cache);
  }
  SECTION("last duplicate wins") {
    auto d = parse_cdn_cache_control("max-age=5, max-age=7");
    REQUIRE(d);
    CHECK(d->max_age == seconds(7));
  }
  SECTION("invalid dictionaries are rejected as a whole") {
    CHECK_FALSE(parse_cdn_cache_control(""));
    CHECK_FALSE(parse_cdn_cache_control("   "));
    CHECK_FALSE(parse_cdn_cache_control("MAX-AGE=600"));  // keys are lower-case
    CHECK_FALSE(parse_cdn_cache_control("max-age=600,"));
    CHECK_FALSE(parse_cdn_cache_control("max-age=600 public"));
    CHECK_FALSE(parse_cdn_cache_control(R"(max-age="600)"));
    CHECK_FALSE(parse_cdn_cache_control("max-age=1234567890123456"));  // > 15 digits
    CHECK_FALSE(parse_cdn_cache_control("max-age=(1 2"));
    CHECK_FALSE(parse_cdn_cache_control("max-age=-"));
  }
}

TEST_CASE("RFC 9213 precedence: a valid CDN-Cache-Control replaces Cache-Control",
          "[cache_control][rfc9213]") {
  header_list both{{"cache-control", "max-age=60"}, {"cdn-cache-control", "max-age=600"}};
  auto e = response_cache_control(both);
  CHECK(e.targeted);
  CHECK(e.directives.max_age == seconds(600));

  // Even a targeted field without max-age replaces Cache-Control entirely.
  header_list no_store{{"cache-control", "no-store"}, {"cdn-cache-control", "public"}};
  auto n = response_cache_control(no_store);
  CHECK(n.targeted);
  CHECK_FALSE(n.directives.no_store);

  header_list invalid{{"cache-control", "max-age=60"}, {"cdn-cache-control", "max-age=600,"}};
  auto i = response_cache_control(invalid);
  CHECK_FALSE(i.targeted);
  CHECK(i.directives.max_age == seconds(60));

  auto off = response_cache_control(both, /*use_targeted=*/false);
  CHECK_FALSE(off.targeted);
  CHECK(off.directives.max_age == seconds(60));

  header_list neither{{"content-type", "video/mp4"}};
  auto none = response_cache_control(neither);
  CHECK_FALSE(none.targeted);
  CHECK_FALSE(none.directives.max_age);
}

TEST_CASE("entity tags: strong and weak comparison (RFC 9110 §8.8.3.2)", "[cache_control]") {
  auto w1 = parse_entity_tag(R"(W/"1")");
  auto w2 = parse_entity_tag(R"(W/"2")");
  auto s1 = parse_entity_tag(R"("1")");
  REQUIRE(w1);
  REQUIRE(w2);
  REQUIRE(s1);
  CHECK(w1->weak);
  CHECK_FALSE(s1->weak);
  CHECK_FALSE(strong_match(*w1, *w1));
  CHECK(weak_match(*w1, *w1));
  CHECK_FALSE(strong_match(*w1, *w2));
  CHECK_FALSE(weak_match(*w1, *w2));
  CHECK_FALSE(strong_match(*w1, *s1));
  CHECK(weak_match(*w1, *s1));
  CHECK(strong_match(*s1, *s1));
  CHECK_FALSE(parse_entity_tag("1"));
  CHECK_FALSE(parse_entity_tag(R"("a"b")"));
  CHECK_FALSE(parse_entity_tag(R"(w/"1")"));
  CHECK_FALSE(parse_entity_tag("\""));
}
