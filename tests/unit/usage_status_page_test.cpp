// The status page: one bar per hour and series carrying exact bytes (prefetch apart), round
// scales, local hour labels, and HTML escaping of names a client controls (asset paths).
#include <catch2/catch.hpp>
#include <string>

#include "usage/status_page.hpp"

using namespace storecache::usage;

namespace {

const std::uint32_t h0 = 480000;  // 2024-10-04T00:00:00Z

usage_summary hours(std::uint32_t from, std::uint32_t n) {
  usage_summary s;
  s.from_hour = from;
  s.to_hour = from + n - 1;
  s.hours.resize(n);
  return s;
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto p = text.find(what); p != std::string::npos; p = text.find(what, p + 1))
    ++n;
  return n;
}

}  // namespace

TEST_CASE("html_escape: markup characters, control bytes and bad UTF-8") {
  CHECK(html_escape("a<b>&\"c'") == "a&lt;b&gt;&amp;&quot;c&#39;");
  CHECK(html_escape("plain/path.mp4") == "plain/path.mp4");
  CHECK(html_escape("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x8E\xA5") ==
        "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x8E\xA5");  // é € 🎥 kept
  CHECK(html_escape("a\nb\x7f") ==
        "a\xEF\xBF\xBD"
        "b\xEF\xBF\xBD");                                        // controls -> U+FFFD
  CHECK(html_escape("\xC3") == "\xEF\xBF\xBD");                  // truncated sequence
  CHECK(html_escape("\xC0\xAF") == "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong '/'
  CHECK(html_escape("\xED\xA0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  CHECK(html_escape("\xF4\x90\x80\x80").find("\xF4") == std::string::npos);      // > U+10FFFF
}

TEST_CASE("status page: charts carry every hour's exact bytes") {
  auto day = hours(h0, 24);
  day.hours[5] = usage_counts{10, 5, 3000, 1000, 1500, 2};
  day.hours[23] = usage_counts{4, 4, 800, 0, 0, 0};
  day.total = usage_counts{14, 9, 3800, 1000, 1500, 2};
  auto week = hours(h0 - 144, 168);
  week.hours[167] = day.hours[23];
  week.total = day.total;
  status_inputs in{.day = day,
                   .week = week,
                   .cache_bytes = 512,
                   .cache_max_bytes = 1024,
                   .cache_objects = 3,
                   .now_unix = std::int64_t{h0 + 23} * 3600 + 60,
                   .utc_offset_seconds = 3600,
                   .host_name = "store-042",
                   .version = "0.1.0",
                   .refresh_seconds = 30};
  const std::string page = render_status_page(in);

  CHECK(page.rfind("<!DOCTYPE html>", 0) == 0);
  CHECK(page.find("<meta http-equiv=\"refresh\" content=\"30\">") != std::string::npos);
  CHECK(page.find("<script") == std::string::npos);
  CHECK(count(page, "<rect class=\"served\"") == 24 + 168);
  CHECK(count(page, "<rect class=\"upstream\"") == 24 + 168);
  // Hour 5 of the day: 3000 + 1000 served, 1500 from upstream, labelled in UTC.
  CHECK(page.find("data-hour=\"2024-10-04T05:00Z\" data-bytes=\"4000\"") != std::string::npos);
  CHECK(page.find("data-hour=\"2024-10-04T05:00Z\" data-bytes=\"1500\"") != std::string::npos);
  // The scale is the next power of two above the tallest bar (4000 -> 4096).
  CHECK(page.find("id=\"chart-24h\" class=\"chart\" viewBox=\"0 0 960 220\" role=\"img\"") !=
        std::string::npos);
  CHECK(page.find("data-scale=\"4096\"") != std::string::npos);
  // Headline figures: 14 requests, 9 of them from the cache.
  CHECK(page.find("<b id=\"requests\">14</b>") != std::string::npos);
  CHECK(page.find("<b id=\"hit-ratio\">64.3 %</b>") != std::string::npos);
  CHECK(page.find("id=\"saved\" data-bytes=\"") != std::string::npos);
  CHECK(page.find("50.0 %") != std::string::npos);  // cache fill 512 of 1024
  CHECK(page.find("3 objects stored") != std::string::npos);
  // Hour labels are local (UTC+1): the day's 23:00 UTC bar is labelled as midnight.
  CHECK(page.find("Sat 05 Oct 00:00") != std::string::npos);
}

TEST_CASE("status page: a hostile asset name is text, not markup") {
  auto day = hours(h0, 24);
  auto week = hours(h0 - 144, 168);
  week.top_assets.push_back(
      {"learn.example.com/<script>alert(1)</script>\"onload=x", usage_counts{1, 0, 10, 0, 10, 10}});
  week.devices["ios/safari"] = usage_counts{1, 0, 10, 0, 10, 0};
  week.total = usage_counts{1, 0, 10, 0, 10, 10};
  status_inputs in{.day = day, .week = week, .host_name = "<b>host</b>", .version = "x"};
  const std::string page = render_status_page(in);
  CHECK(page.find("<script") == std::string::npos);
  CHECK(page.find("&lt;script&gt;alert(1)&lt;/script&gt;&quot;onload=x") != std::string::npos);
  CHECK(page.find("&lt;b&gt;host&lt;/b&gt;") != std::string::npos);
  CHECK(page.find("iOS/iPadOS, Safari") != std::string::npos);
}

TEST_CASE("status page: no traffic yet") {
  auto day = hours(h0, 24);
  auto week = hours(h0 - 144, 168);
  status_inputs in{.day = day, .week = week, .host_name = "h", .version = "x"};
  const std::string page = render_status_page(in);
  CHECK(page.find("<b id=\"requests\">0</b>") != std::string::npos);
  CHECK(page.find("no requests yet") != std::string::npos);
  CHECK(page.find("none yet") != std::string::npos);
  CHECK(count(page, "height=\"0.00\"") == 2 * (24 + 168));  // every bar empty
  CHECK(count(page, "class=\"prefetch\"") == 0);
  CHECK(page.find("id=\"prefetch-bytes\"") == std::string::npos);
}

TEST_CASE("status page: prefetch bytes apart in the hourly charts") {
  auto day = hours(h0, 24);
  day.hours[2] = usage_counts{0, 0, 0, 0, 3000, 3};  // a night's prefetch run
  day.hours[2].prefetch_bytes = 3000;
  day.hours[2].prefetch_requests = 3;
  day.hours[9] = usage_counts{10, 5, 3000, 1000, 1000, 2};  // devices' misses
  day.total = usage_counts{10, 5, 3000, 1000, 4000, 5};
  day.total.prefetch_bytes = 3000;
  day.total.prefetch_requests = 3;
  auto week = hours(h0 - 144, 168);
  week.hours[146] = day.hours[2];
  week.hours[153] = day.hours[9];
  week.total = day.total;
  status_inputs in{.day = day, .week = week, .host_name = "h", .version = "x"};
  const std::string page = render_status_page(in);
  // One prefetch bar per hour that had any, in both charts; the upstream bars keep every byte.
  CHECK(count(page, "<rect class=\"prefetch\"") == 2);
  CHECK(count(page, "<rect class=\"upstream\"") == 24 + 168);
  CHECK(count(page, "class=\"prefetch\" ") == 2);
  CHECK(page.find("data-hour=\"2024-10-04T02:00Z\" data-bytes=\"3000\"><title>Fri 04 Oct "
                  "02:00: 2.9 KiB of the upstream bytes fetched by prefetch") != std::string::npos);
  CHECK(page.find("of which by prefetch") != std::string::npos);  // the legend
  CHECK(page.find(".chart .prefetch{fill:var(--prefetch)}") != std::string::npos);
  // The prefetch bar covers the bottom of its hour's upstream bar (here all of it: every upstream
  // byte of that hour was prefetch's).
  const auto pre = page.find("<rect class=\"prefetch\"");
  REQUIRE(pre != std::string::npos);
  const auto attrs = [&](std::size_t at) {
    const auto x = page.find(" x=", at);
    return page.substr(x, page.find(" data-hour", x) - x);
  };
  CHECK(attrs(pre) == attrs(page.rfind("<rect class=\"upstream\"", pre)));
  // The headline card: the day's prefetch bytes.
  CHECK(page.find("<b id=\"prefetch-bytes\" data-bytes=\"3000\">2.9 KiB</b>") != std::string::npos);
}

TEST_CASE("status page: access denials by reason, 24 hours and 7 days") {
  auto day = hours(h0, 24);
  auto week = hours(h0 - 144, 168);
  day.total.denied = {1, 0, 3, 2};
  week.total.denied = {5, 4, 30, 2};
  status_inputs in{.day = day, .week = week, .host_name = "h", .version = "x"};
  const std::string page = render_status_page(in);
  CHECK(page.find("<table id=\"refused\">") != std::string::npos);
  CHECK(page.find("<tr data-reason=\"network\"><td>network</td><td>address not allowed "
                  "(allow_clients)</td><td class=\"num\">1</td><td class=\"num\">5</td></tr>") !=
        std::string::npos);
  CHECK(page.find("<tr data-reason=\"client_cert\"><td>client_cert</td><td>no valid device "
                  "certificate</td><td class=\"num\">0</td><td class=\"num\">4</td></tr>") !=
        std::string::npos);
  CHECK(page.find("<tr data-reason=\"signature\">") != std::string::npos);
  CHECK(page.find("<td class=\"num\">3</td><td class=\"num\">30</td>") != std::string::npos);
  CHECK(page.find("<tr data-reason=\"upstream\"><td>upstream</td><td>refused by the "
                  "upstream</td><td class=\"num\">2</td><td class=\"num\">2</td></tr>") !=
        std::string::npos);
  CHECK(page.find("<tr class=\"sum\"><td>all</td><td></td><td class=\"num\">6</td><td "
                  "class=\"num\">41</td></tr>") != std::string::npos);

  // No denials yet: the table is there, every reason at 0.
  auto quiet_day = hours(h0, 24);
  auto quiet_week = hours(h0 - 144, 168);
  const std::string quiet =
      render_status_page({.day = quiet_day, .week = quiet_week, .host_name = "h", .version = "x"});
  CHECK(count(quiet, "<tr data-reason=") == 4);
  CHECK(quiet.find("<tr class=\"sum\"><td>all</td><td></td><td class=\"num\">0</td><td "
                   "class=\"num\">0</td></tr>") != std::string::npos);
}

TEST_CASE("status page: prefetch readiness, per source, with failures") {
  auto day = hours(h0, 24);
  auto week = hours(h0 - 144, 168);
  status_inputs in{.day = day, .week = week, .host_name = "h", .version = "x"};
  const std::string none = render_status_page(in);
  CHECK(none.find("id=\"prefetch\"") == std::string::npos);  // no sources: no section

  in.prefetch.push_back({.state = {.site = "learn.example.com",
                                   .source = "safety",
                                   .listed = 40,
                                   .fresh = 40,
                                   .bytes = 3 << 20,
                                   .last_run_end = 1796367600,
                                   .next_run = 1796371200}});
  in.prefetch.push_back({.state = {.site = "learn.example.com",
                                   .source = "week<49>",
                                   .listed = 10,
                                   .fresh = 6,
                                   .missing = 3,
                                   .failed = 1,
                                   .last_error = "GET /a.mp4: the upstream answered 404"}});
  in.prefetch.push_back(
      {.state = {.site = "learn.example.com", .source = "gone"}, .listing_ok = false});
  const std::string page = render_status_page(in);
  // 46 of 50 objects: 92 %
  CHECK(page.find("<b id=\"prefetch-ready\">92") != std::string::npos);
  CHECK(page.find("of 50 listed objects") != std::string::npos);
  CHECK(count(page, "<tr class=\"problem\">") == 2);
  CHECK(page.find("week&lt;49&gt;") != std::string::npos);
  CHECK(page.find("GET /a.mp4: the upstream answered 404") != std::string::npos);
  CHECK(page.find("the listing cannot be read") != std::string::npos);
  // the second source: 10 listed, 6 fresh, 3 missing, 1 failed
  CHECK(page.find("<td class=\"num\">10</td><td class=\"num\">6</td><td class=\"num\">3</td><td "
                  "class=\"num\">1</td>") != std::string::npos);
  CHECK(page.find("<th>pinned</th>") == std::string::npos);  // no source pins: no column

  // A pinned source, part of it over the ceiling: a column, and its row is a problem.
  in.prefetch.push_back({.state = {.site = "learn.example.com",
                                   .source = "video",
                                   .listed = 5,
                                   .fresh = 5,
                                   .bytes = 5 << 20,
                                   .pinned_objects = 3,
                                   .pinned_bytes = 3 << 20,
                                   .unpinned_objects = 2,
                                   .unpinned_bytes = 2 << 20}});
  const std::string pinned = render_status_page(in);
  CHECK(pinned.find("<th>pinned</th>") != std::string::npos);
  CHECK(pinned.find("<td class=\"num\">3.0 MiB (2 objects, 2.0 MiB over max_pinned)</td>") !=
        std::string::npos);
  CHECK(count(pinned, "<tr class=\"problem\">") == 3);
  CHECK(pinned.find("<td class=\"num\">0 B</td>") != std::string::npos);  // "safety" pins none
}
