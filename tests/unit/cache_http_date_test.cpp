// HTTP-date (RFC 9110 §5.6.7): the three forms a recipient must accept, and every form their
// grammar excludes. An Expires that does not parse means "already expired" (RFC 9111 §5.3), so
// a lenient parser here serves stale content as fresh.
//
// Decisions taken from the RFCs:
//   - Names (day, month, "GMT") match case-insensitively: RFC 9111 §4.2 asks a cache
//     recipient to, although RFC 9110 spells the grammar case-sensitively.
//   - Second 60 is allowed (the grammar's range is 00:00:00 - 23:59:60, leap second); it is
//     the next second in system time.
//   - The day name is not checked against the date: the grammar does not relate them.
//   - Whitespace around the value is the field's OWS, not part of the date: ignored. Inside
//     the date, every separator is exactly the one SP (or "-", ":", ",") the grammar has.
#include <catch2/catch.hpp>
#include <string>

#include "cache/http_date.hpp"

using namespace storecache::cache;
using std::chrono::seconds;

TEST_CASE("HTTP-date: the three forms of RFC 9110 §5.6.7", "[http_date]") {
  auto imf = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT");
  REQUIRE(imf);
  CHECK(imf->time_since_epoch() == seconds(784111777));
  CHECK(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT") == imf);
  CHECK(parse_http_date("Sun Nov  6 08:49:37 1994") == imf);
  CHECK(parse_http_date("Sun Nov 06 08:49:37 1994") == imf);  // date3: 2DIGIT is allowed too
  CHECK(parse_http_date("  Sun, 06 Nov 1994 08:49:37 GMT ") == imf);  // the field's OWS
  CHECK(parse_http_date("\tSun, 06 Nov 1994 08:49:37 GMT\t") == imf);
  CHECK(parse_http_date("Thursday, 01-Jan-70 00:00:00 GMT")->time_since_epoch() == seconds(0));
  CHECK(parse_http_date("Friday, 01-Jan-21 00:00:00 GMT") ==
        parse_http_date("Fri, 01 Jan 2021 00:00:00 GMT"));
  CHECK(parse_http_date("Thu Jan 16 00:00:00 2020") ==
        parse_http_date("Thu, 16 Jan 2020 00:00:00 GMT"));
  CHECK(parse_http_date("Thu, 29 Feb 2024 23:59:59 GMT"));  // leap day
  for (auto day : {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}) {
    INFO(day);
    CHECK(parse_http_date(std::string(day) + ", 06 Nov 1994 08:49:37 GMT") == imf);
    CHECK(parse_http_date(std::string(day) + " Nov  6 08:49:37 1994") == imf);
  }
  for (auto day : {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}) {
    INFO(day);
    CHECK(parse_http_date(std::string(day) + ", 06-Nov-94 08:49:37 GMT") == imf);
  }
  const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (int m = 0; m < 12; ++m) {
    INFO(months[m]);
    auto t = parse_http_date(std::string("Sun, 01 ") + months[m] + " 2023 00:00:00 GMT");
    REQUIRE(t);
    std::chrono::year_month_day ymd{std::chrono::floor<std::chrono::days>(*t)};
    CHECK(static_cast<unsigned>(ymd.month()) == static_cast<unsigned>(m + 1));
  }
}

TEST_CASE("HTTP-date: names match case-insensitively (RFC 9111 §4.2)", "[http_date]") {
  auto imf = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT");
  CHECK(parse_http_date("sun, 06 nov 1994 08:49:37 gmt") == imf);
  CHECK(parse_http_date("SUN, 06 NOV 1994 08:49:37 GMT") == imf);
  CHECK(parse_http_date("SUNDAY, 06-NOV-94 08:49:37 GMT") == imf);
  CHECK(parse_http_date("sun nov  6 08:49:37 1994") == imf);
}

TEST_CASE("HTTP-date: the bounds of time-of-day and date", "[http_date]") {
  CHECK(parse_http_date("Sat, 31 Dec 2016 23:59:60 GMT") ==
        parse_http_date("Sun, 01 Jan 2017 00:00:00 GMT"));  // a leap second
  CHECK(parse_http_date("Sat, 01 Jan 2000 23:59:59 GMT"));
  CHECK(parse_http_date("Sat, 01 Jan 2000 00:00:00 GMT"));
  CHECK(parse_http_date("Tue, 29 Feb 2000 00:00:00 GMT"));  // 2000 is a leap year
  CHECK(parse_http_date("Fri, 31 Dec 9999 23:59:59 GMT"));
  CHECK(parse_http_date("Mon, 01 Jan 0001 00:00:00 GMT"));
  CHECK(parse_http_date("Monday, 01-Jan-69 00:00:00 GMT") ==
        parse_http_date("Tue, 01 Jan 2069 00:00:00 GMT"));
  CHECK(parse_http_date("Monday, 31-Dec-99 00:00:00 GMT") ==
        parse_http_date("Fri, 31 Dec 1999 00:00:00 GMT"));
}

TEST_CASE("HTTP-date: every form the grammar excludes is rejected", "[http_date]") {
  const char* bad[] = {
      // empty, blank, numbers, what origins send for "expired"
      "", " ", "\t", "0", "-1", "784111777", "never", "now",
      // IMF-fixdate: digit counts
      "Sun, 6 Nov 1994 08:49:37 GMT", "Sun, 006 Nov 1994 08:49:37 GMT",
      "Sun, 06 Nov 94 08:49:37 GMT", "Sun, 06 Nov 994 08:49:37 GMT",
      "Sun, 06 Nov 01994 08:49:37 GMT", "Sun, 06 Nov 1994 8:49:37 GMT",
      "Thu, 01 Jan 2099 2:01:18 GMT", "Sun, 06 Nov 1994 008:49:37 GMT",
      "Sun, 06 Nov 1994 08:9:37 GMT", "Sun, 06 Nov 1994 08:049:37 GMT",
      "Sun, 06 Nov 1994 08:49:7 GMT", "Sun, 06 Nov 1994 08:49:037 GMT",
      "Sun, 06 Nov 1994 08:49 GMT", "Sun, 06 Nov 1994 08:49:37:00 GMT", "Sun, 06 Nov 1994 GMT",
      "Sun, 06 Nov 08:49:37 GMT", "Sun, Nov 1994 08:49:37 GMT", "Sun, +6 Nov 1994 08:49:37 GMT",
      "Sun, 06 Nov +994 08:49:37 GMT", "Sun, 06 Nov 1994 -8:49:37 GMT",
      "Sun, 06 Nov 1994 08:49:3x GMT",
      // IMF-fixdate: separators (several spaces, none, tabs, other characters)
      "Sun,  06 Nov 1994 08:49:37 GMT", "Sun, 06  Nov 1994 08:49:37 GMT",
      "Sun, 06 Nov  1994 08:49:37 GMT", "Sun, 06 Nov 1994  08:49:37 GMT",
      "Sun, 06 Nov 1994 08:49:37  GMT", "Thu,  01  Jan  2099  00:00:00  GMT",
      "Sun,06 Nov 1994 08:49:37 GMT", "Sun, 06Nov 1994 08:49:37 GMT",
      "Sun, 06 Nov1994 08:49:37 GMT", "Sun, 06 Nov 199408:49:37 GMT",
      "Sun, 06 Nov 1994 08:49:37GMT", "Sun 06 Nov 1994 08:49:37 GMT",
      "Sun , 06 Nov 1994 08:49:37 GMT", "Sun,\t06 Nov 1994 08:49:37 GMT",
      "Sun, 06\tNov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 08:49:37\tGMT",
      "Sun, 06-Nov-1994 08:49:37 GMT", "Sun, 06/Nov/1994 08:49:37 GMT",
      "Sun, 06 Nov 1994 08.49.37 GMT", "Sun, 06 Nov 1994 08 49 37 GMT",
      "Sun,, 06 Nov 1994 08:49:37 GMT",
      // IMF-fixdate: names
      "Snu, 06 Nov 1994 08:49:37 GMT", "Xyz, 06 Nov 1994 08:49:37 GMT",
      "Su, 06 Nov 1994 08:49:37 GMT", "Sunday, 06 Nov 1994 08:49:37 GMT",
      "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 06 November 1994 08:49:37 GMT",
      "Sun, 06 No 1994 08:49:37 GMT", "Sun, 06 11 1994 08:49:37 GMT",
      // IMF-fixdate: zone
      "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 06 Nov 1994 08:49:37 UT",
      "Sun, 06 Nov 1994 08:49:37 +0000", "Sun, 06 Nov 1994 08:49:37 GMT+1",
      "Sun, 06 Nov 1994 08:49:37 EST", "Sun, 06 Nov 1994 08:49:37 Z", "Sun, 06 Nov 1994 08:49:37",
      "Sun, 06 Nov 1994 08:49:37 G", "Sun, 06 Nov 1994 08:49:37 GM",
      // IMF-fixdate: out of range
      "Sun, 06 Nov 1994 24:00:00 GMT", "Sun, 06 Nov 1994 99:00:00 GMT",
      "Sun, 06 Nov 1994 08:60:00 GMT", "Sun, 06 Nov 1994 08:49:61 GMT",
      "Sun, 06 Nov 1994 08:49:99 GMT", "Sun, 00 Nov 1994 08:49:37 GMT",
      "Sun, 31 Nov 1994 08:49:37 GMT", "Sun, 32 Dec 1994 08:49:37 GMT",
      "Sun, 31 Feb 1994 08:49:37 GMT", "Thu, 29 Feb 2023 00:00:00 GMT",
      "Thu, 29 Feb 1900 00:00:00 GMT",
      // IMF-fixdate: leading and trailing junk
      "Sun, 06 Nov 1994 08:49:37 GMTx", "Sun, 06 Nov 1994 08:49:37 GMT;",
      "Sun, 06 Nov 1994 08:49:37 GMT,", "Sun, 06 Nov 1994 08:49:37 GMT 1994",
      "Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT",
      "xSun, 06 Nov 1994 08:49:37 GMT", ", 06 Nov 1994 08:49:37 GMT",
      "\"Sun, 06 Nov 1994 08:49:37 GMT\"",
      // rfc850-date
      "Sun, 06-Nov-94 08:49:37 GMT", "Sunday, 06-Nov-1994 08:49:37 GMT",
      "Sunday, 6-Nov-94 08:49:37 GMT", "Sunday, 06-Nov-4 08:49:37 GMT",
      "Sunday, 06 Nov 94 08:49:37 GMT", "Sunday, 06-Nov-94 8:49:37 GMT",
      "Sunday,  06-Nov-94 08:49:37 GMT", "Sunday, 06-Nov-94  08:49:37 GMT",
      "Sunday,06-Nov-94 08:49:37 GMT", "Sunday 06-Nov-94 08:49:37 GMT",
      "Sundy, 06-Nov-94 08:49:37 GMT", "Sundays, 06-Nov-94 08:49:37 GMT",
      "Sunday, 06-Nov-94 08:49:37 UTC", "Sunday, 06-Nov-94 08:49:37",
      "Sunday, 06-Nov-94 08:49:37 GMTx", "Sunday, 31-Nov-94 08:49:37 GMT",
      "Sunday, 06-Nov-94 24:49:37 GMT", "Sunday, 06-November-94 08:49:37 GMT",
      // asctime-date
      "Sun Nov 6 08:49:37 1994", "Sun Nov  16 08:49:37 1994", "Sun Nov   6 08:49:37 1994",
      "Sun Nov 006 08:49:37 1994", "Sun Nov  6 8:49:37 1994", "Sun Nov  6 08:49:37 94",
      "Sun Nov  6 08:49:37 01994", "Sun Nov  6 08:49:37 1994 GMT", "Sun  Nov  6 08:49:37 1994",
      "Sun Nov  6  08:49:37 1994", "Sun Nov  6 08:49:37  1994", "Sunday Nov  6 08:49:37 1994",
      "Sun November  6 08:49:37 1994", "Sun Nov  6 08:49:37", "Sun Nov 6 1994",
      "Sun Nov  0 08:49:37 1994", "Sun Nov 31 08:49:37 1994", "Sun Nov  6 24:00:00 1994",
      "Sun Nov\t 6 08:49:37 1994", "Sun Nov  6 08:49:371994", "SunNov  6 08:49:37 1994",
      "Xyz Nov  6 08:49:37 1994",
      // other date formats seen in the wild
      "1994-11-06T08:49:37Z", "1994-11-06 08:49:37", "06 Nov 1994 08:49:37 GMT",
      "Sun, 06 Nov 1994 08:49:37 -0000", "Sunday, November 6, 1994"};
  for (const char* text : bad) {
    INFO('"' << text << '"');
    CHECK_FALSE(parse_http_date(text));
  }
  // A NUL inside the value, and values cut short at every length.
  CHECK_FALSE(parse_http_date(std::string_view("Sun, 06 Nov 1994 08:49:37 GMT\0", 30)));
  CHECK_FALSE(parse_http_date(std::string_view("Sun, 06 Nov\0 1994 08:49:37 GMT", 30)));
  for (std::string full : {"Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
                           "Sun Nov  6 08:49:37 1994"}) {
    for (std::size_t n = 0; n < full.size(); ++n) {
      INFO(full.substr(0, n));
      CHECK_FALSE(parse_http_date(full.substr(0, n)));
    }
  }
}

TEST_CASE("HTTP-date: formatting is IMF-fixdate and round-trips", "[http_date]") {
  CHECK(format_http_date(clock_time{}) == "Thu, 01 Jan 1970 00:00:00 GMT");
  auto t = *parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT");
  CHECK(format_http_date(t) == "Sun, 06 Nov 1994 08:49:37 GMT");
  CHECK(format_http_date(t + std::chrono::milliseconds(999)) == "Sun, 06 Nov 1994 08:49:37 GMT");
  auto later = clock_time{} + seconds(4102444799);  // 2099-12-31 23:59:59
  CHECK(format_http_date(later) == "Thu, 31 Dec 2099 23:59:59 GMT");
  CHECK(parse_http_date(format_http_date(later)) == later);
}
