// Times at the edges of clock_time (64-bit nanoseconds, years 1678..2262), as fuzz_http_date
// and fuzz_store_meta found them: HTTP-dates with four-digit years beyond that range, and
// stored records whose times are not our clock's. Links storecache_cache only.
#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>

#include "cache/http_date.hpp"
#include "cache/policy.hpp"
#include "cache/store_meta.hpp"

using namespace storecache::cache;
using namespace std::chrono;

namespace {

clock_time at(year_month_day d) {
  return clock_time(sys_days(d).time_since_epoch());
}

}  // namespace

TEST_CASE("HTTP-date: years beyond the clock's range are clamped, not overflowed", "[http_date]") {
  // "Expires: Fri, 31 Dec 9999 23:59:59 GMT" is what many servers send for "never".
  CHECK(parse_http_date("Fri, 31 Dec 9999 23:59:59 GMT") == at(year(2100) / January / 1));
  CHECK(parse_http_date("Sat, 01 Jan 2101 00:00:00 GMT") == at(year(2100) / January / 1));
  CHECK(parse_http_date("Mon, 01 Jan 0001 00:00:00 GMT") == at(year(1900) / January / 1));
  CHECK(parse_http_date("Sun Nov  6 08:49:37 1600") == at(year(1900) / January / 1));
  // Inside the range nothing changes.
  CHECK(parse_http_date("Fri, 31 Dec 2099 23:59:59 GMT") ==
        at(year(2099) / December / 31) + hours(23) + minutes(59) + seconds(59));
  CHECK(format_http_date(*parse_http_date("Fri, 31 Dec 9999 23:59:59 GMT")) ==
        "Fri, 01 Jan 2100 00:00:00 GMT");

  // As an Expires: fresh for a long time, never a negative or wrapped lifetime.
  const clock_time now = at(year(2026) / March / 1);
  const header_list h = {{"date", format_http_date(now)},
                         {"expires", "Fri, 31 Dec 9999 23:59:59 GMT"}};
  const auto f = freshness_lifetime(200, h, {now, now}, site_policy{});
  CHECK(f.source == freshness_source::expires);
  CHECK(f.lifetime > hours(24 * 365 * 70));
  CHECK(decide_reuse(200, h, {now, now}, {}, now + hours(1), site_policy{}).action ==
        reuse_action::fresh);
}

TEST_CASE("stored record: times that are not our clock's are damage", "[store]") {
  object_meta m;
  m.primary_key = "https://learn.example.com/a";
  m.head.request_time = at(year(2026) / March / 1);
  m.head.response_time = m.head.request_time + seconds(1);
  const std::string good = encode_meta(m);
  REQUIRE(decode_meta(good));

  // request_time at offset 42, response_time at 50 (store_meta.cpp's layout).
  const auto with_time = [&](std::size_t offset, std::uint64_t ns) {
    std::string b = good;
    for (int i = 0; i < 8; ++i)
      b[offset + static_cast<std::size_t>(i)] = static_cast<char>(ns >> (8 * i));
    return b;
  };
  CHECK_FALSE(decode_meta(with_time(42, std::uint64_t{1} << 63)));  // negative as signed
  CHECK_FALSE(decode_meta(with_time(50, ~std::uint64_t{0})));
  CHECK_FALSE(decode_meta(with_time(50, 4'102'444'801ULL * 1'000'000'000ULL)));  // past 2100
  CHECK(decode_meta(with_time(50, 4'102'444'800ULL * 1'000'000'000ULL)));
  CHECK(decode_meta(with_time(42, 0)));
}
