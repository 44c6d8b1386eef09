// RFC 9111 shared-cache policy: storability (§3), freshness (§4.2.1, §4.2.2), age (§4.2.3),
// reuse (§4, §4.2.4, RFC 5861), validation (§3.2, §4.3), invalidation (§4.4), and the
// RFC 9211 Cache-Status value. Tables of (headers, times, now) -> expected result.
#include <catch2/catch.hpp>

#include "cache/cache_status.hpp"
#include "cache/http_date.hpp"
#include "cache/policy.hpp"

using namespace storecache::cache;
using std::chrono::hours;
using std::chrono::seconds;

namespace {

// The RFC's favourite instant, "Sun, 06 Nov 1994 08:49:37 GMT".
const clock_time t0 = *parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT");
std::string date(seconds offset) {
  return format_http_date(t0 + offset);
}
// Request sent at t0, response received at t0 (Date t0): no delay, no apparent age.
const response_times at_t0{t0, t0};

}  // namespace

TEST_CASE("storability of a shared cache (§3)", "[policy][store]") {
  struct row {
    const char* name;
    std::string method;
    header_list request;
    int status;
    header_list response;
    bool storable;
  };
  const header_list none;
  const header_list auth{{"authorization", "Bearer x"}};
  const std::vector<row> rows = {
      {"GET 200 max-age", "GET", none, 200, {{"cache-control", "max-age=60"}}, true},
      {"POST", "POST", none, 200, {{"cache-control", "max-age=60"}}, false},
      {"HEAD (answered from GET)", "HEAD", none, 200, {{"cache-control", "max-age=60"}}, false},
      {"lower-case method is another method", "get", none, 200, {}, false},
      {"206 is never the whole object", "GET", none, 206, {{"cache-control", "max-age=60"}}, false},
      {"304", "GET", none, 304, {{"cache-control", "max-age=60"}}, false},
      {"1xx", "GET", none, 103, {}, false},
      // §3: any final status with explicit freshness, whether storecache knows it or not.
      {"599 + max-age", "GET", none, 599, {{"cache-control", "max-age=60"}}, true},
      {"299 + max-age", "GET", none, 299, {{"cache-control", "max-age=60"}}, true},
      {"418 + max-age", "GET", none, 418, {{"cache-control", "max-age=60"}}, true},
      {"204 + max-age", "GET", none, 204, {{"cache-control", "max-age=60"}}, true},
      {"299 + s-maxage", "GET", none, 299, {{"cache-control", "s-maxage=60"}}, true},
      {"599 + Expires", "GET", none, 599, {{"expires", date(hours(1))}}, true},
      {"599 + invalid Expires (stored, stale)", "GET", none, 599, {{"expires", "0"}}, true},
      {"418 + public", "GET", none, 418, {{"cache-control", "public"}}, true},
      {"599 without freshness", "GET", none, 599, {}, false},
      {"299 without freshness", "GET", none, 299, {}, false},
      {"500 without freshness", "GET", none, 500, {}, false},
      {"503 + Last-Modified only: not heuristically cacheable",
       "GET",
       none,
       503,
       {{"last-modified", date(-hours(24))}},
       false},
      {"599 + no-store", "GET", none, 599, {{"cache-control", "max-age=60, no-store"}}, false},
      {"599 + private", "GET", none, 599, {{"cache-control", "max-age=60, private"}}, false},
      {"response no-store", "GET", none, 200, {{"cache-control", "max-age=60, no-store"}}, false},
      {"request no-store",
       "GET",
       {{"cache-control", "no-store"}},
       200,
       {{"cache-control", "max-age=60"}},
       false},
      {"must-understand overrides no-store",
       "GET",
       none,
       200,
       {{"cache-control", "max-age=60, no-store, must-understand"}},
       true},
      {"must-understand, status not understood",
       "GET",
       none,
       299,
       {{"cache-control", "max-age=60, must-understand"}},
       false},
      {"private", "GET", none, 200, {{"cache-control", "max-age=60, private"}}, false},
      {"qualified private stores without the field",
       "GET",
       none,
       200,
       {{"cache-control", R"(max-age=60, private="x-user")"}},
       true},
      {"Authorization alone", "GET", auth, 200, {{"cache-control", "max-age=60"}}, false},
      {"Authorization + public", "GET", auth, 200, {{"cache-control", "max-age=60, public"}}, true},
      {"Authorization + s-maxage", "GET", auth, 200, {{"cache-control", "s-maxage=60"}}, true},
      {"Authorization + must-revalidate",
       "GET",
       auth,
       200,
       {{"cache-control", "max-age=60, must-revalidate"}},
       true},
      {"Vary: *", "GET", none, 200, {{"cache-control", "max-age=60"}, {"vary", "*"}}, false},
      {"Vary: * among others", "GET", none, 200, {{"vary", "accept-encoding, *"}}, false},
      {"200 without freshness: heuristic", "GET", none, 200, {}, true},
      {"404 without freshness: heuristic", "GET", none, 404, {}, true},
      {"203 without freshness: heuristic", "GET", none, 203, {}, true},
      {"204 without freshness: heuristic", "GET", none, 204, {}, true},
      {"300 without freshness: heuristic", "GET", none, 300, {}, true},
      {"301 without freshness: heuristic", "GET", none, 301, {}, true},
      {"308 without freshness: heuristic", "GET", none, 308, {}, true},
      {"405 without freshness: heuristic", "GET", none, 405, {}, true},
      {"410 without freshness: heuristic", "GET", none, 410, {}, true},
      {"414 without freshness: heuristic", "GET", none, 414, {}, true},
      {"501 without freshness: heuristic", "GET", none, 501, {}, true},
      {"302 without freshness", "GET", none, 302, {}, false},
      {"302 + max-age", "GET", none, 302, {{"cache-control", "max-age=60"}}, true},
      {"302 + Expires", "GET", none, 302, {{"expires", date(hours(1))}}, true},
      {"302 + public", "GET", none, 302, {{"cache-control", "public"}}, true},
      {"500 + max-age", "GET", none, 500, {{"cache-control", "max-age=10"}}, true},
      {"CDN-Cache-Control no-store beats Cache-Control",
       "GET",
       none,
       200,
       {{"cache-control", "max-age=60"}, {"cdn-cache-control", "no-store"}},
       false},
      {"CDN-Cache-Control max-age beats Cache-Control no-store",
       "GET",
       none,
       200,
       {{"cache-control", "no-store"}, {"cdn-cache-control", "max-age=60"}},
       true},
      {"302 + Expires ignored under CDN-Cache-Control",
       "GET",
       none,
       302,
       {{"expires", date(hours(1))}, {"cdn-cache-control", "no-transform"}},
       false},
  };
  for (const auto& r : rows) {
    INFO(r.name);
    auto d = check_storable(r.method, r.request, r.status, r.response, site_policy{});
    CHECK(d.storable == r.storable);
    CHECK_FALSE(d.reason.empty());
  }
}

TEST_CASE("storability: reasons and site policy", "[policy][store]") {
  auto partial = check_storable("GET", {}, 206, {}, site_policy{});
  CHECK(partial.reason.find("206") != std::string_view::npos);

  site_policy bypass;
  bypass.bypass = true;
  CHECK_FALSE(check_storable("GET", {}, 200, {{"cache-control", "max-age=60"}}, bypass).storable);

  site_policy forced;
  forced.forced_ttl = hours(24);
  CHECK(check_storable("GET", {}, 302, {}, forced).storable);
  // A forced TTL never overrides what protects private data.
  CHECK_FALSE(check_storable("GET", {}, 200, {{"cache-control", "no-store"}}, forced).storable);
  CHECK_FALSE(check_storable("GET", {}, 200, {{"cache-control", "private"}}, forced).storable);
  CHECK_FALSE(check_storable("GET", {{"authorization", "x"}}, 200, {}, forced).storable);
}

TEST_CASE("headers_to_store drops hop-by-hop and private fields (§3.1)", "[policy][store]") {
  header_list in{{"content-type", "video/mp4"},
                 {"connection", "X-Trace, keep-alive"},
                 {"keep-alive", "timeout=5"},
                 {"x-trace", "abc"},
                 {"transfer-encoding", "chunked"},
                 {"cache-control", R"(max-age=60, private="x-user", no-cache="set-cookie")"},
                 {"x-user", "alice"},
                 {"set-cookie", "a=b"},
                 {"etag", R"("v1")"}};
  auto out = headers_to_store(in);
  std::vector<std::string> names;
  for (const auto& h : out)
    names.push_back(h.name);
  CHECK(names == std::vector<std::string>{"content-type", "cache-control", "etag"});
}

TEST_CASE("freshness lifetime (§4.2.1, §4.2.2)", "[policy][freshness]") {
  struct row {
    const char* name;
    int status;
    header_list response;
    seconds lifetime;
    freshness_source source;
  };
  const auto d0 = date(seconds(0));
  const std::vector<row> rows = {
      {"max-age",
       200,
       {{"date", d0}, {"cache-control", "max-age=3600"}},
       seconds(3600),
       freshness_source::max_age},
      {"s-maxage beats max-age",
       200,
       {{"cache-control", "max-age=3600, s-maxage=600"}},
       seconds(600),
       freshness_source::s_maxage},
      {"max-age beats Expires",
       200,
       {{"date", d0}, {"expires", date(hours(2))}, {"cache-control", "max-age=60"}},
       seconds(60),
       freshness_source::max_age},
      {"Expires - Date",
       200,
       {{"date", d0}, {"expires", date(hours(1))}},
       seconds(3600),
       freshness_source::expires},
      {"Expires without Date: from response time",
       200,
       {{"expires", date(seconds(90))}},
       seconds(90),
       freshness_source::expires},
      {"Expires before Date",
       200,
       {{"date", d0}, {"expires", date(-hours(1))}},
       seconds(0),
       freshness_source::expires},
      {"Expires: 0 is in the past (§5.3)",
       200,
       {{"date", d0}, {"expires", "0"}},
       seconds(0),
       freshness_source::invalid},
      // §4.2.2: heuristics only without explicit expiration; an invalid Expires is explicit
      // expiration, in the past (§5.3).
      {"invalid Expires beats Last-Modified: no heuristic",
       200,
       {{"date", d0},
        {"expires", "Sun, 06 Nov 2094 8:49:37 GMT"},
        {"last-modified", date(-hours(120))}},
       seconds(0),
       freshness_source::invalid},
      {"Expires with several spaces: invalid",
       200,
       {{"date", d0}, {"expires", "Sun,  06 Nov 2094 08:49:37 GMT"}},
       seconds(0),
       freshness_source::invalid},
      {"Expires with an unknown day name: invalid",
       200,
       {{"date", d0}, {"expires", "Xyz, 06 Nov 2094 08:49:37 GMT"}},
       seconds(0),
       freshness_source::invalid},
      {"Expires in the past beats Last-Modified: no heuristic",
       200,
       {{"date", d0}, {"expires", date(-hours(1))}, {"last-modified", date(-hours(120))}},
       seconds(0),
       freshness_source::expires},
      {"invalid Date: Expires counts from the response time",
       200,
       {{"date", "Sun, 06 Nov 1994 8:49:37 GMT"}, {"expires", date(seconds(90))}},
       seconds(90),
       freshness_source::expires},
      {"heuristic for 404",
       404,
       {{"date", d0}, {"last-modified", date(-hours(10))}},
       seconds(3600),
       freshness_source::heuristic},
      {"no heuristic for 500",
       500,
       {{"date", d0}, {"last-modified", date(-hours(10))}},
       seconds(0),
       freshness_source::none},
      {"599 + max-age",
       599,
       {{"cache-control", "max-age=60"}},
       seconds(60),
       freshness_source::max_age},
      {"conflicting max-age: stale",
       200,
       {{"cache-control", "max-age=60, max-age=120"}},
       seconds(0),
       freshness_source::invalid},
      {"non-integer max-age: stale",
       200,
       {{"cache-control", "max-age=1.5"}},
       seconds(0),
       freshness_source::invalid},
      {"heuristic: 10% of 5 days",
       200,
       {{"date", d0}, {"last-modified", date(-hours(120))}},
       seconds(43200),
       freshness_source::heuristic},
      {"heuristic capped at one day",
       200,
       {{"date", d0}, {"last-modified", date(-hours(24 * 100))}},
       seconds(86400),
       freshness_source::heuristic},
      {"heuristic: Last-Modified in the future",
       200,
       {{"date", d0}, {"last-modified", date(hours(1))}},
       seconds(0),
       freshness_source::heuristic},
      {"no heuristic for 302",
       302,
       {{"date", d0}, {"last-modified", date(-hours(120))}},
       seconds(0),
       freshness_source::none},
      {"public makes 302 heuristic",
       302,
       {{"date", d0}, {"last-modified", date(-hours(10))}, {"cache-control", "public"}},
       seconds(3600),
       freshness_source::heuristic},
      {"nothing at all", 200, {{"date", d0}}, seconds(0), freshness_source::none},
      {"CDN-Cache-Control max-age beats Cache-Control",
       200,
       {{"cache-control", "max-age=60"}, {"cdn-cache-control", "max-age=600"}},
       seconds(600),
       freshness_source::max_age},
      {"CDN-Cache-Control hides Expires",
       200,
       {{"date", d0}, {"expires", date(hours(1))}, {"cdn-cache-control", "public"}},
       seconds(0),
       freshness_source::none},
      {"invalid CDN-Cache-Control falls back",
       200,
       {{"cache-control", "max-age=60"}, {"cdn-cache-control", "Max-Age=600"}},
       seconds(60),
       freshness_source::max_age},
  };
  for (const auto& r : rows) {
    INFO(r.name);
    auto f = freshness_lifetime(r.status, r.response, at_t0, site_policy{});
    CHECK(f.lifetime == r.lifetime);
    CHECK(to_string(f.source) == to_string(r.source));
  }
}

TEST_CASE("freshness lifetime: site policy", "[policy][freshness]") {
  site_policy site;
  site.default_ttl = seconds(300);
  CHECK(freshness_lifetime(200, {}, at_t0, site).lifetime == seconds(300));
  CHECK(freshness_lifetime(200, {}, at_t0, site).source == freshness_source::site_default);
  // Origin freshness and the Last-Modified heuristic come first.
  CHECK(freshness_lifetime(200, {{"cache-control", "max-age=5"}}, at_t0, site).lifetime ==
        seconds(5));
  header_list lm{{"date", date(seconds(0))}, {"last-modified", date(-hours(1))}};
  CHECK(freshness_lifetime(200, lm, at_t0, site).lifetime == seconds(360));
  // Status not heuristically cacheable: no default either.
  CHECK(freshness_lifetime(302, {}, at_t0, site).lifetime == seconds(0));

  site_policy tuned;
  tuned.heuristic_fraction = 0.5;
  tuned.heuristic_max = hours(1);
  CHECK(freshness_lifetime(200, lm, at_t0, tuned).lifetime == seconds(1800));
  header_list old{{"date", date(seconds(0))}, {"last-modified", date(-hours(10))}};
  CHECK(freshness_lifetime(200, old, at_t0, tuned).lifetime == seconds(3600));

  site_policy forced;
  forced.forced_ttl = hours(24);
  auto f = freshness_lifetime(200, {{"cache-control", "max-age=0, no-cache"}}, at_t0, forced);
  CHECK(f.lifetime == seconds(86400));
  CHECK(f.source == freshness_source::forced);

  site_policy no_cdn;
  no_cdn.use_cdn_cache_control = false;
  header_list both{{"cache-control", "max-age=60"}, {"cdn-cache-control", "max-age=600"}};
  CHECK(freshness_lifetime(200, both, at_t0, no_cdn).lifetime == seconds(60));
}

TEST_CASE("age calculation (§4.2.3)", "[policy][age]") {
  struct row {
    const char* name;
    header_list response;
    response_times times;
    clock_time now;
    seconds corrected_initial;
    seconds current;
  };
  const std::vector<row> rows = {
      {"no delay, no Age",
       {{"date", date(seconds(0))}},
       {t0, t0},
       t0 + seconds(10),
       seconds(0),
       seconds(10)},
      // apparent_age = response_time - date = 2; response_delay = 3; corrected = max(2, 0+3).
      {"response delay dominates",
       {{"date", date(seconds(0))}},
       {t0 - seconds(1), t0 + seconds(2)},
       t0 + seconds(12),
       seconds(3),
       seconds(13)},
      // Age from an upstream cache plus the delay: max(2, 100 + 3).
      {"Age field plus delay",
       {{"date", date(seconds(0))}, {"age", "100"}},
       {t0 - seconds(1), t0 + seconds(2)},
       t0 + seconds(2),
       seconds(103),
       seconds(103)},
      // Date far behind (upstream clock slow): apparent_age 600 wins over Age 10.
      {"apparent age dominates",
       {{"date", date(-seconds(600))}, {"age", "10"}},
       {t0, t0},
       t0 + seconds(60),
       seconds(600),
       seconds(660)},
      {"Date in the future: apparent age 0",
       {{"date", date(hours(1))}},
       {t0, t0},
       t0 + seconds(5),
       seconds(0),
       seconds(5)},
      {"no Date: response time stands in",
       {{"age", "30"}},
       {t0, t0},
       t0 + seconds(30),
       seconds(30),
       seconds(60)},
      {"invalid Age is ignored",
       {{"date", date(seconds(0))}, {"age", "abc"}},
       {t0, t0},
       t0,
       seconds(0),
       seconds(0)},
      {"huge Age saturates at 2^31",
       {{"age", "99999999999999999999"}},
       {t0, t0},
       t0,
       seconds(2147483648LL),
       seconds(2147483648LL)},
      {"clock going back: resident time 0",
       {{"date", date(seconds(0))}},
       {t0, t0},
       t0 - seconds(50),
       seconds(0),
       seconds(0)},
  };
  for (const auto& r : rows) {
    INFO(r.name);
    CHECK(corrected_initial_age(r.response, r.times) == r.corrected_initial);
    CHECK(current_age(r.response, r.times, r.now) == r.current);
  }
}

TEST_CASE("reuse decisions (§4, §4.2.4, RFC 5861)", "[policy][reuse]") {
  struct row {
    const char* name;
    std::string response_cc;
    std::string request_cc;
    seconds age;  // now = t0 + age; stored at t0 with Date t0
    reuse_action action;
    bool stale_on_error;
  };
  using enum reuse_action;
  const std::vector<row> rows = {
      {"fresh", "max-age=3600", "", seconds(100), fresh, true},
      {"just expired", "max-age=60", "", seconds(60), revalidate, true},
      {"stale", "max-age=60", "", seconds(100), revalidate, false},
      {"stale within stale-while-revalidate", "max-age=60, stale-while-revalidate=60", "",
       seconds(100), stale_while_revalidate, false},
      {"stale beyond stale-while-revalidate", "max-age=60, stale-while-revalidate=60", "",
       seconds(200), revalidate, false},
      {"must-revalidate forbids swr", "max-age=60, stale-while-revalidate=60, must-revalidate", "",
       seconds(100), revalidate, false},
      {"stale-if-error window", "max-age=60, stale-if-error=300", "", seconds(100), revalidate,
       true},
      {"beyond stale-if-error", "max-age=60, stale-if-error=300", "", seconds(400), revalidate,
       false},
      {"must-revalidate forbids stale-if-error", "max-age=60, stale-if-error=300, must-revalidate",
       "", seconds(100), revalidate, false},
      {"proxy-revalidate forbids stale", "max-age=60, stale-if-error=300, proxy-revalidate", "",
       seconds(100), revalidate, false},
      {"s-maxage implies proxy-revalidate", "s-maxage=60, stale-if-error=300", "max-stale",
       seconds(100), revalidate, false},
      {"request max-stale", "max-age=60", "max-stale", seconds(1000), stale, false},
      {"request max-stale=50 covers 40", "max-age=60", "max-stale=50", seconds(100), stale, false},
      {"request max-stale=10 does not cover 40", "max-age=60", "max-stale=10", seconds(100),
       revalidate, false},
      {"request max-age=0 on fresh", "max-age=3600", "max-age=0", seconds(1), revalidate, true},
      {"request max-age larger than age", "max-age=3600", "max-age=100", seconds(50), fresh, true},
      {"request min-fresh not met", "max-age=600", "min-fresh=600", seconds(100), revalidate, true},
      {"request min-fresh met", "max-age=600", "min-fresh=100", seconds(100), fresh, true},
      {"request no-cache", "max-age=3600", "no-cache", seconds(1), revalidate, true},
      {"response no-cache", "max-age=3600, no-cache", "", seconds(1), revalidate, false},
      {"request stale-if-error", "max-age=60", "stale-if-error=100", seconds(100), revalidate,
       true},
      {"only-if-cached, fresh", "max-age=3600", "only-if-cached", seconds(1), fresh, true},
      {"only-if-cached, stale: 504", "max-age=60", "only-if-cached", seconds(100), gateway_timeout,
       false},
      {"only-if-cached with max-stale", "max-age=60", "only-if-cached, max-stale", seconds(100),
       stale, false},
  };
  for (const auto& r : rows) {
    INFO(r.name);
    header_list response{{"date", date(seconds(0))}};
    if (!r.response_cc.empty()) response.push_back({"cache-control", r.response_cc});
    header_list request;
    if (!r.request_cc.empty()) request.push_back({"cache-control", r.request_cc});
    auto d = decide_reuse(200, response, at_t0, request, t0 + r.age, site_policy{});
    CHECK(to_string(d.action) == to_string(r.action));
    CHECK(d.stale_on_error == r.stale_on_error);
    CHECK(d.age == r.age);
    CHECK_FALSE(d.reason.empty());
  }
}

TEST_CASE("reuse: ttl, site stale window, forced TTL, Vary: *", "[policy][reuse]") {
  header_list response{{"date", date(seconds(0))}, {"cache-control", "max-age=600"}};
  auto fresh = decide_reuse(200, response, at_t0, {}, t0 + seconds(60), site_policy{});
  CHECK(fresh.action == reuse_action::fresh);
  CHECK(fresh.ttl == seconds(540));
  CHECK(fresh.lifetime == seconds(600));
  auto stale = decide_reuse(200, response, at_t0, {}, t0 + seconds(700), site_policy{});
  CHECK(stale.ttl == seconds(-100));
  CHECK_FALSE(stale.stale_on_error);

  site_policy offline;
  offline.stale_if_origin_down = hours(24 * 7);  // the store's WAN link may be down for days
  auto down = decide_reuse(200, response, at_t0, {}, t0 + hours(48), offline);
  CHECK(down.action == reuse_action::revalidate);
  CHECK(down.stale_on_error);
  CHECK_FALSE(decide_reuse(200, response, at_t0, {}, t0 + hours(24 * 8), offline).stale_on_error);
  header_list strict{{"date", date(seconds(0))}, {"cache-control", "max-age=600, must-revalidate"}};
  CHECK_FALSE(decide_reuse(200, strict, at_t0, {}, t0 + hours(1), offline).stale_on_error);

  site_policy forced;
  forced.forced_ttl = hours(1);
  header_list no_cache{{"date", date(seconds(0))}, {"cache-control", "no-cache, must-revalidate"}};
  CHECK(decide_reuse(200, no_cache, at_t0, {}, t0 + seconds(60), forced).action ==
        reuse_action::fresh);
  CHECK(decide_reuse(200, no_cache, at_t0, {}, t0 + seconds(60), site_policy{}).action ==
        reuse_action::revalidate);

  header_list star{{"date", date(seconds(0))}, {"cache-control", "max-age=600"}, {"vary", "*"}};
  CHECK(decide_reuse(200, star, at_t0, {}, t0, site_policy{}).action == reuse_action::revalidate);

  // Heuristic freshness for a Last-Modified-only asset: 10% of 10 days = 1 day (the cap).
  header_list lm{{"date", date(seconds(0))}, {"last-modified", date(-hours(240))}};
  CHECK(decide_reuse(200, lm, at_t0, {}, t0 + hours(23), site_policy{}).action ==
        reuse_action::fresh);
  CHECK(decide_reuse(200, lm, at_t0, {}, t0 + hours(25), site_policy{}).action ==
        reuse_action::revalidate);
}

TEST_CASE("validation requests and 304 handling (§4.3, §3.2)", "[policy][validation]") {
  header_list stored{{"date", date(seconds(0))},
                     {"content-length", "1000"},
                     {"content-type", "video/mp4"},
                     {"etag", R"("v1")"},
                     {"last-modified", date(-hours(1))},
                     {"cache-control", "max-age=60"},
                     {"x-a", "1"},
                     {"x-a", "2"}};
  auto v = validation_headers(stored);
  REQUIRE(v.size() == 2);
  CHECK(v[0].name == "if-none-match");
  CHECK(v[0].value == R"("v1")");
  CHECK(v[1].name == "if-modified-since");
  CHECK(v[1].value == date(-hours(1)));
  CHECK(validation_headers({{"content-type", "text/html"}}).empty());

  header_list not_modified{{"date", date(seconds(100))},     {"etag", R"("v1")"},
                           {"cache-control", "max-age=120"}, {"content-length", "0"},
                           {"connection", "close"},          {"x-a", "3"}};
  CHECK(not_modified_matches(stored, not_modified));
  apply_not_modified(stored, not_modified);
  CHECK(find_header(stored, "content-length") == std::string_view("1000"));
  CHECK(find_header(stored, "cache-control") == std::string_view("max-age=120"));
  CHECK(find_header(stored, "date") == std::string_view(date(seconds(100))));
  CHECK(find_header(stored, "content-type") == std::string_view("video/mp4"));
  CHECK_FALSE(find_header(stored, "connection"));
  int x_a = 0;
  for (const auto& h : stored)
    x_a += h.name == "x-a";
  CHECK(x_a == 1);
  CHECK(find_header(stored, "x-a") == std::string_view("3"));
  // After the update the response is fresh again, counted from the 304's times.
  response_times t304{t0 + seconds(100), t0 + seconds(100)};
  CHECK(decide_reuse(200, stored, t304, {}, t0 + seconds(150), site_policy{}).action ==
        reuse_action::fresh);
}

TEST_CASE("a 304 replaces the stored Age: age belongs to the exchange (§4.2.3, §4.3.4)",
          "[policy][validation]") {
  // Stored two hours old from a CDN (Age: 7200 with max-age=3600: stale on arrival).
  header_list stored{{"date", date(seconds(0))},
                     {"etag", R"("v1")"},
                     {"cache-control", "max-age=3600"},
                     {"age", "7200"}};
  const response_times t304{t0 + seconds(100), t0 + seconds(100)};
  SECTION("a 304 without Age: the validated response is new, age 0 at the 304") {
    apply_not_modified(stored, {{"date", date(seconds(100))}, {"etag", R"("v1")"}});
    CHECK_FALSE(find_header(stored, "age"));
    // Before the fix the old Age stayed: stale at once, so every request revalidated.
    CHECK(decide_reuse(200, stored, t304, {}, t0 + seconds(150), site_policy{}).action ==
          reuse_action::fresh);
  }
  SECTION("a 304 with its own Age: that one counts") {
    apply_not_modified(stored,
                       {{"date", date(seconds(100))}, {"etag", R"("v1")"}, {"age", "3000"}});
    CHECK(find_header(stored, "age") == std::string_view("3000"));
    CHECK(decide_reuse(200, stored, t304, {}, t0 + seconds(150), site_policy{}).action ==
          reuse_action::fresh);
    CHECK(decide_reuse(200, stored, t304, {}, t0 + seconds(800), site_policy{}).action !=
          reuse_action::fresh);
  }
}

TEST_CASE("which stored response a 304 describes (§4.3.4)", "[policy][validation]") {
  header_list strong{{"etag", R"("v1")"}, {"last-modified", date(seconds(0))}};
  header_list weak{{"etag", R"(W/"v1")"}};
  CHECK(not_modified_matches(strong, {{"etag", R"("v1")"}}));
  CHECK_FALSE(not_modified_matches(strong, {{"etag", R"("v2")"}}));
  CHECK_FALSE(not_modified_matches(weak, {{"etag", R"("v1")"}}));  // strong selects strong only
  CHECK(not_modified_matches(weak, {{"etag", R"(W/"v1")"}}));
  CHECK(not_modified_matches(strong, {{"etag", R"(W/"v1")"}}));
  CHECK_FALSE(not_modified_matches({}, {{"etag", R"("v1")"}}));
  CHECK(not_modified_matches(strong, {{"last-modified", date(seconds(0))}}));
  CHECK_FALSE(not_modified_matches(strong, {{"last-modified", date(seconds(1))}}));
  CHECK(not_modified_matches(strong, {{"date", date(seconds(9))}}));
}

TEST_CASE("client conditionals on a hit (RFC 9110 §13.1)", "[policy][validation]") {
  header_list stored{{"etag", R"("v1")"}, {"last-modified", date(seconds(0))}};
  CHECK(client_not_modified({{"if-none-match", R"("v0", W/"v1")"}}, stored));
  CHECK_FALSE(client_not_modified({{"if-none-match", R"("v2")"}}, stored));
  CHECK(client_not_modified({{"if-none-match", "*"}}, stored));
  CHECK(client_not_modified({{"if-modified-since", date(seconds(0))}}, stored));
  CHECK(client_not_modified({{"if-modified-since", date(seconds(10))}}, stored));
  CHECK_FALSE(client_not_modified({{"if-modified-since", date(-seconds(10))}}, stored));
  CHECK_FALSE(client_not_modified({{"if-modified-since", "yesterday"}}, stored));
  // If-None-Match present: If-Modified-Since is not evaluated.
  CHECK_FALSE(client_not_modified(
      {{"if-none-match", R"("v2")"}, {"if-modified-since", date(seconds(10))}}, stored));
  CHECK_FALSE(client_not_modified({}, stored));
}

TEST_CASE("invalidation after unsafe methods (§4.4)", "[policy][invalidation]") {
  const std::string target = "https://learn.example.com/dir/item?x=1";
  header_list locations{{"location", "/dir/new"},
                        {"content-location", "https://other.example.com/dir/item"}};
  CHECK(invalidated_uris("POST", 201, target, locations) ==
        std::vector<std::string>{target, "https://learn.example.com/dir/new"});
  CHECK(invalidated_uris("GET", 200, target, locations).empty());
  CHECK(invalidated_uris("HEAD", 200, target, locations).empty());
  CHECK(invalidated_uris("POST", 500, target, locations).empty());
  CHECK(invalidated_uris("DELETE", 404, target, {}).empty());
  CHECK(invalidated_uris("DELETE", 204, target, {}) == std::vector<std::string>{target});
  CHECK(invalidated_uris("PURGE", 200, target, {}) == std::vector<std::string>{target});
  CHECK(invalidated_uris("PUT", 303, target, {{"location", "other#frag"}}) ==
        std::vector<std::string>{target, "https://learn.example.com/dir/other"});
  // Same origin however it is spelled; a different port or scheme is another origin.
  CHECK(invalidated_uris("PUT", 200, target, {{"content-location", "//LEARN.example.com:443/a"}}) ==
        std::vector<std::string>{target, "https://learn.example.com/a"});
  CHECK(invalidated_uris("PUT", 200, target,
                         {{"content-location", "https://learn.example.com:8443/a"}}) ==
        std::vector<std::string>{target});
  CHECK(invalidated_uris("PUT", 200, target, {{"location", "http://learn.example.com/a"}}) ==
        std::vector<std::string>{target});
  CHECK(invalidated_uris("PUT", 200, target, {{"location", target}}) ==
        std::vector<std::string>{target});
}

TEST_CASE("method helpers", "[policy]") {
  CHECK(method_uses_cache("GET"));
  CHECK(method_uses_cache("HEAD"));
  CHECK_FALSE(method_uses_cache("POST"));
  CHECK(method_is_safe("OPTIONS"));
  CHECK(method_is_safe("TRACE"));
  CHECK_FALSE(method_is_safe("PUT"));
  CHECK(heuristically_cacheable(308));
  CHECK_FALSE(heuristically_cacheable(302));
  CHECK(status_understood(451));
  CHECK_FALSE(status_understood(299));
}

TEST_CASE("Cache-Status values (RFC 9211)", "[cache_status]") {
  cache_status hit;
  hit.hit = true;
  hit.ttl = seconds(3540);
  CHECK(format_cache_status(hit) == "storecache; hit; ttl=3540");

  cache_status miss;
  miss.fwd = forward_reason::miss;
  miss.stored = true;
  CHECK(format_cache_status(miss) == "storecache; fwd=miss; stored");

  cache_status revalidated;
  revalidated.fwd = forward_reason::stale;
  revalidated.fwd_status = 304;
  revalidated.ttl = seconds(600);
  CHECK(format_cache_status(revalidated) == "storecache; fwd=stale; fwd-status=304; ttl=600");

  cache_status stale_error;
  stale_error.hit = true;
  stale_error.ttl = seconds(-120);
  stale_error.detail = "stale-if-error";
  CHECK(format_cache_status(stale_error) == "storecache; hit; ttl=-120; detail=stale-if-error");

  cache_status collapsed;
  collapsed.fwd = forward_reason::uri_miss;
  collapsed.collapsed = true;
  collapsed.key = "https://a.example/x?y=1";
  collapsed.detail = R"(origin "down" \ again)";
  CHECK(format_cache_status(collapsed, "store-42") ==
        R"(store-42; fwd=uri-miss; collapsed; key="https://a.example/x?y=1"; )"
        R"(detail="origin \"down\" \\ again")");

  cache_status bypass;
  bypass.fwd = forward_reason::bypass;
  CHECK(format_cache_status(bypass) == "storecache; fwd=bypass");
  CHECK(format_cache_status(cache_status{}) == "storecache");
}
