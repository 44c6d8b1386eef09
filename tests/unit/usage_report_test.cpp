// The report: periods, human byte sizes, the text for people, the JSON for scripts, and the
// escaping of client-controlled names in both.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "usage/report.hpp"

using namespace storecache::usage;

namespace {

const std::uint32_t h0 = 480000;  // 2024-10-04T00:00:00Z

usage_summary sample() {
  usage_summary s;
  s.from_hour = h0;
  s.to_hour = h0 + 23;
  s.hours.resize(24);
  s.total = usage_counts{1000, 800, 3'000'000'000, 1'000'000'000, 1'200'000'000, 150};
  s.hours[9] = usage_counts{500, 400, 1'500'000'000, 500'000'000, 900'000'000, 100};
  s.hours[3] = usage_counts{500, 400, 1'500'000'000, 500'000'000, 300'000'000, 50};
  s.content[static_cast<int>(content_class::video)] =
      usage_counts{300, 280, 2'900'000'000, 900'000'000, 1'100'000'000, 40};
  s.content[static_cast<int>(content_class::web)] =
      usage_counts{700, 520, 100'000'000, 100'000'000, 100'000'000, 110};
  s.devices["ios/safari"] = usage_counts{600, 500, 0, 0, 0, 0};
  s.devices["android/samsung"] = usage_counts{300, 250, 0, 0, 0, 0};
  s.devices["other/other"] = usage_counts{100, 50, 0, 0, 0, 0};
  s.os_versions["ios 17"] = usage_counts{600, 500, 0, 0, 0, 0};
  s.os_versions["android 0"] = usage_counts{300, 250, 0, 0, 0, 0};
  s.tls["TLSv1.3"] = usage_counts{1000, 800, 0, 0, 0, 0};
  s.protocols["h2"] = usage_counts{900, 700, 0, 0, 0, 0};
  s.protocols["http/1.1"] = usage_counts{100, 100, 0, 0, 0, 0};
  s.sites["learn.example.com"] = s.total;
  s.top_assets.push_back(
      {"learn.example.com/v/intro.mp4", usage_counts{40, 38, 0, 0, 800'000'000, 2}});
  s.top_assets.push_back(
      {"learn.example.com/\"q\"\\\n\x1b[31m\xff\xc3\xa9.js", usage_counts{3, 0, 0, 7, 9, 3}});
  return s;
}

bool contains(const std::string& s, std::string_view part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("usage report: periods", "[usage][report]") {
  CHECK(parse_period("24h") == 24u);
  CHECK(parse_period("7d") == 168u);
  CHECK(parse_period("30d") == 720u);
  CHECK(parse_period("36h") == 36u);
  CHECK(parse_period("2D") == 48u);
  CHECK(parse_period("1h") == 1u);
  CHECK(parse_period("35d") == history_retention_hours);
  CHECK(parse_period("840h") == 840u);
  for (const char* bad : {"", "h", "d", "0h", "0d", "36d", "841h", "24", "24m", "-1h", "1.5d",
                          " 24h", "24h ", "9999999999h", "1w", "24hh"}) {
    INFO(bad);
    CHECK_FALSE(parse_period(bad).has_value());
  }
}

TEST_CASE("usage report: human byte sizes", "[usage][report]") {
  CHECK(human_bytes(0) == "0 B");
  CHECK(human_bytes(17) == "17 B");
  CHECK(human_bytes(1023) == "1023 B");
  CHECK(human_bytes(1024) == "1.0 KiB");
  CHECK(human_bytes(1536) == "1.5 KiB");
  CHECK(human_bytes(312 * 1024) == "312 KiB");
  CHECK(human_bytes(1024 * 1024 - 1) == "1.0 MiB");  // not "1024 KiB"
  CHECK(human_bytes(1610612736) == "1.5 GiB");
  CHECK(human_bytes(10ull << 40) == "10 TiB");
  CHECK(human_bytes(~0ull) == "16 EiB");
}

TEST_CASE("usage report: ISO times and string escaping", "[usage][report]") {
  CHECK(iso_utc(0) == "1970-01-01T00:00:00Z");
  CHECK(iso_utc(std::int64_t{h0} * 3600) == "2024-10-04T00:00:00Z");
  CHECK(iso_utc(951782400 + 59) == "2000-02-29T00:00:59Z");

  CHECK(json_string("plain/path.mp4") == "\"plain/path.mp4\"");
  CHECK(json_string("a\"b\\c") == "\"a\\\"b\\\\c\"");
  CHECK(json_string("\n\r\t\b\f") == "\"\\n\\r\\t\\u0008\\u000c\"");
  CHECK(json_string(std::string("\0\x1f\x7f", 3)) == "\"\\u0000\\u001f\\u007f\"");
  CHECK(json_string("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\xac") ==
        "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\xac\"");  // valid UTF-8 kept
  CHECK(json_string("\xff") == "\"\\ufffd\"");
  CHECK(json_string("\xc3") == "\"\\ufffd\"");                                   // cut sequence
  CHECK(json_string("\xc0\xaf") == "\"\\ufffd\\ufffd\"");                        // overlong '/'
  CHECK(json_string("\xed\xa0\x80") == "\"\\ufffd\\ufffd\\ufffd\"");             // surrogate
  CHECK(json_string("\xf4\x90\x80\x80") == "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");  // > U+10FFFF
  CHECK(json_string("\xe2\x82x") == "\"\\ufffd\\ufffdx\"");

  CHECK(terminal_safe("learn.example.com/caf\xc3\xa9") == "learn.example.com/caf\xc3\xa9");
  CHECK(terminal_safe("\x1b[2J") == "\\x1b[2J");
  CHECK(terminal_safe("\xc2\x9b"
                      "31m") == "\\xc2\\x9b31m");  // C1 CSI
  CHECK(terminal_safe("a\xff"
                      "b\x7f") == "a\\xffb\\x7f");
}

TEST_CASE("usage report: text for people", "[usage][report]") {
  report_options o;
  o.hours = 24;
  o.utc_offset_seconds = 2 * 3600;
  const std::string t = render_report(sample(), o);
  INFO(t);
  if (std::getenv("SHOW_REPORT")) std::fputs(t.c_str(), stdout);
  CHECK(contains(t, "last 24 hours: 2024-10-04 02:00 to 2024-10-05 02:00 (UTC+02:00)"));
  CHECK(contains(t, "1,000"));
  CHECK(contains(t, "80.0 %"));               // hit ratio
  CHECK(contains(t, "4,000,000,000 bytes"));  // bytes served, exact
  CHECK(contains(t, "3.7 GiB"));              // and for people
  CHECK(contains(t, "75.0 %"));               // byte hit ratio
  CHECK(contains(t, "1,200,000,000 bytes"));  // upstream
  CHECK(contains(t, "150 requests"));
  CHECK(contains(t, "2,800,000,000 bytes"));  // WAN saved
  // Peak: hour 9 UTC = 11:00 local, with the date.
  CHECK(contains(t, "Peak upstream hour     2024-10-04 11:00 to 12:00 (UTC+02:00): 858 MiB"));
  CHECK(contains(t, "Web page / module"));
  CHECK(contains(t, "iOS/iPadOS, Safari"));
  CHECK(contains(t, "Android, Samsung Internet"));
  CHECK(contains(t, "Other OS, other browser or player"));
  CHECK(contains(t, "iOS/iPadOS 17"));
  CHECK(contains(t, "Android (version unknown)"));
  CHECK(contains(t, "learn.example.com/v/intro.mp4"));
  // The hostile name cannot reach the terminal raw.
  CHECK_FALSE(contains(t, "\x1b"));
  CHECK_FALSE(contains(t, "\xff"));
  CHECK(contains(t, "\\x1b[31m\\xff\xc3\xa9.js"));
  // Table columns line up: every row of the devices table has "%" at the same column.
  const auto dev = t.find("  Devices");
  REQUIRE(dev != std::string::npos);
  std::size_t col = std::string::npos;
  std::size_t line = t.find('\n', dev) + 1;
  for (int i = 0; i < 3; ++i) {
    const auto end = t.find('\n', line);
    const auto pct = t.find('%', line);
    REQUIRE(pct < end);
    if (col == std::string::npos) col = pct - line;
    CHECK(pct - line == col);
    line = end + 1;
  }
  // Busiest device first.
  CHECK(t.find("iOS/iPadOS, Safari") < t.find("Android, Samsung Internet"));

  report_options utc;
  utc.hours = 168;
  usage_summary week = sample();
  CHECK(contains(render_report(week, utc),
                 "last 7 days: 2024-10-04 00:00 to 2024-10-05 00:00 (UTC)"));
  report_options west;
  west.utc_offset_seconds = -(4 * 3600 + 30 * 60);
  CHECK(contains(render_report(week, west), "2024-10-03 19:30 to 2024-10-04 19:30 (UTC-04:30)"));
}

TEST_CASE("usage report: an empty period says so", "[usage][report]") {
  usage_summary s;
  s.from_hour = h0;
  s.to_hour = h0;
  s.hours.resize(1);
  report_options o;
  o.hours = 1;
  const std::string t = render_report(s, o);
  CHECK(contains(t, "last 1 hour: "));
  CHECK(contains(t, "no traffic in this period"));
  o.json = true;
  const std::string j = render_report(s, o);
  CHECK(contains(j, "\"requests\":0,"));
  CHECK(contains(j, "\"hit_ratio\":0,"));
  CHECK(contains(j, "\"peak_upstream_hour\":null"));
  CHECK(contains(j, "\"devices\":{}"));
  CHECK(contains(j, "\"top_assets\":[]"));
  CHECK(contains(j,
                 "\"denied\":{\"network\":0,\"client_cert\":0,\"signature\":0,"
                 "\"upstream\":0}"));
}

TEST_CASE("usage report: JSON for scripts", "[usage][report]") {
  report_options o;
  o.hours = 24;
  o.json = true;
  o.utc_offset_seconds = 3600;  // JSON is UTC whatever the local zone
  const std::string j = render_report(sample(), o);
  INFO(j);
  CHECK(j.starts_with(
      "{\"period\":{\"hours\":24,\"from\":\"2024-10-04T00:00:00Z\",\"to\":\"2024-10-05T00:00:00Z\"}"
      ","
      "\"requests\":1000,\"hits\":800,\"hit_ratio\":0.8,\"bytes_served\":4000000000,"
      "\"bytes_from_cache\":3000000000,\"bytes_from_upstream\":1000000000,\"byte_hit_ratio\":0.75,"
      "\"upstream_bytes\":1200000000,\"upstream_requests\":150,\"prefetch_bytes\":0,"
      "\"prefetch_requests\":0,\"wan_bytes_saved\":2800000000,"
      "\"peak_upstream_hour\":{\"hour\":\"2024-10-04T09:00:00Z\",\"upstream_bytes\":900000000,"
      "\"prefetch_bytes\":0},"
      "\"content\":{\"video\":{\"requests\":300,\"hits\":280,\"bytes_served\":3800000000,"));
  CHECK(contains(j, "\"audio\":{\"requests\":0,"));
  CHECK(contains(j, "\"other\":{\"requests\":0,"));
  CHECK(contains(j, "\"devices\":{\"android/samsung\":{\"requests\":300,\"hits\":250,"));
  CHECK(contains(j, "\"os_versions\":{\"android 0\":"));
  CHECK(contains(j, "\"tls\":{\"TLSv1.3\":{\"requests\":1000,"));
  CHECK(contains(j, "\"protocols\":{\"h2\":"));
  CHECK(contains(j, "\"sites\":{\"learn.example.com\":{\"requests\":1000,"));
  CHECK(contains(j,
                 "\"top_assets\":[{\"asset\":\"learn.example.com/v/intro.mp4\",\"requests\":40,"
                 "\"hits\":38,\"bytes_served\":0,\"bytes_from_cache\":0,"
                 "\"bytes_from_upstream\":0,\"upstream_bytes\":800000000,"
                 "\"upstream_requests\":2,\"prefetch_bytes\":0,\"prefetch_requests\":0}"));
  CHECK(contains(j,
                 "{\"asset\":\"learn.example.com/\\\"q\\\"\\\\\\n\\u001b[31m\\ufffd\xc3\xa9.js\""));
  // No prefetch state stored: an empty section.
  CHECK(
      j.ends_with("],\"prefetch\":{\"saved\":null,\"sources_ready\":0,\"sources_total\":0,"
                  "\"sources\":[]}}\n"));
  // No raw control bytes anywhere but the final newline.
  CHECK(std::count_if(j.begin(), j.end(),
                      [](char c) { return static_cast<unsigned char>(c) < 0x20; }) == 1);
}

namespace {

// sample() with access denials: some on the site, some before any site was known, and a
// second site that was only ever refused.
usage_summary sample_with_denials() {
  usage_summary s = sample();
  s.total.denied = {3, 1, 12, 2};
  s.sites["learn.example.com"].denied = {0, 1, 10, 2};
  s.sites["\x1b[31mevil.example"].denied = {0, 0, 2, 0};
  return s;
}

}  // namespace

TEST_CASE("usage report: access denials by reason and site", "[usage][report]") {
  report_options o;
  o.hours = 24;
  const std::string t = render_report(sample_with_denials(), o);
  INFO(t);
  if (std::getenv("SHOW_REPORT")) std::fputs(t.c_str(), stdout);
  CHECK(contains(t, "  Refused (access)            18\n"));
  CHECK(contains(t,
                 "  Refused               network  client_cert  signature  upstream\n"
                 "  all                         3            1         12         2\n"
                 "  \\x1b[31mevil.example        0            0          2         0\n"
                 "  learn.example.com           0            1         10         2\n"));
  CHECK_FALSE(contains(t, "\x1b"));
  // The peak line keeps its place after the longer headline.
  CHECK(contains(t, "Peak upstream hour     2024-10-04 09:00"));

  // Without denials: the headline says 0 and there is no table.
  const std::string none = render_report(sample(), o);
  CHECK(contains(none, "  Refused (access)             0\n"));
  CHECK_FALSE(contains(none, "client_cert"));

  // A period with nothing but refusals is not "no traffic".
  usage_summary only;
  only.from_hour = h0;
  only.to_hour = h0;
  only.hours.resize(1);
  only.total.denied = {4, 0, 0, 0};
  const std::string o4 = render_report(only, o);
  CHECK_FALSE(contains(o4, "no traffic"));
  CHECK(contains(o4, "  Refused (access)         4\n"));
  CHECK(contains(o4, "  all            4            0          0         0\n"));

  o.json = true;
  const std::string j = render_report(sample_with_denials(), o);
  INFO(j);
  CHECK(contains(j,
                 ",\"denied\":{\"network\":3,\"client_cert\":1,\"signature\":12,"
                 "\"upstream\":2},\"top_assets\":["));
  CHECK(contains(j, "\"sites\":{\"\\u001b[31mevil.example\":{\"requests\":0,"));
  CHECK(contains(j,
                 "\"upstream_requests\":0,\"prefetch_bytes\":0,\"prefetch_requests\":0,"
                 "\"denied\":{\"network\":0,\"client_cert\":0,"
                 "\"signature\":2,\"upstream\":0}}"));
  CHECK(contains(j,
                 "\"upstream_requests\":150,\"prefetch_bytes\":0,\"prefetch_requests\":0,"
                 "\"denied\":{\"network\":0,\"client_cert\":1,"
                 "\"signature\":10,\"upstream\":2}}"));
  // Denials are reported for the whole and per site only, not per device or content class.
  std::size_t n = 0;
  for (auto p = j.find("\"denied\""); p != std::string::npos; p = j.find("\"denied\"", p + 1))
    ++n;
  CHECK(n == 3);
  const std::string empty = render_report(only, o);
  CHECK(contains(empty,
                 "\"denied\":{\"network\":4,\"client_cert\":0,\"signature\":0,"
                 "\"upstream\":0}"));
}

namespace {

// sample() where part of the upstream traffic was prefetch, with a stored prefetch readiness.
usage_summary sample_with_prefetch() {
  usage_summary s = sample();
  s.total.prefetch_bytes = 1'000'000'000;
  s.total.prefetch_requests = 100;
  s.hours[9].prefetch_bytes = 800'000'000;
  s.hours[9].prefetch_requests = 90;
  s.content[static_cast<int>(content_class::video)].prefetch_bytes = 1'000'000'000;
  s.content[static_cast<int>(content_class::video)].prefetch_requests = 100;
  s.sites["learn.example.com"] = s.total;
  s.top_assets[0].second.prefetch_bytes = 700'000'000;
  s.top_assets[0].second.prefetch_requests = 1;
  s.prefetch.saved_unix = std::int64_t{h0} * 3600 + 20 * 3600 + 30 * 60;  // 20:30 UTC
  s.prefetch.sources.push_back(prefetch_state{.site = "learn.example.com",
                                              .source = "videos",
                                              .path = "/lists/videos.txt",
                                              .kind = "url_list",
                                              .listed = 40,
                                              .fresh = 40,
                                              .bytes = 900'000'000,
                                              .pinned_objects = 40,
                                              .pinned_bytes = 900'000'000,
                                              .last_run_end = std::int64_t{h0} * 3600 + 3 * 3600,
                                              .next_run = std::int64_t{h0 + 24} * 3600 + 3 * 3600});
  s.prefetch.sources.push_back(prefetch_state{.site = "learn.example.com",
                                              .source = "\x1b[31mcourse",
                                              .path = "/course/imsmanifest.xml",
                                              .kind = "ims_manifest",
                                              .listed = 10,
                                              .fresh = 7,
                                              .missing = 1,
                                              .failed = 2,
                                              .bytes = 1'000'000,
                                              .unpinned_objects = 7,
                                              .unpinned_bytes = 1'000'000,
                                              .last_error = "HTTP 404 for /course/a\x1b[2J.mp4"});
  return s;
}

}  // namespace

TEST_CASE("usage report: upstream split into device-driven and prefetch", "[usage][report]") {
  report_options o;
  const std::string t = render_report(sample_with_prefetch(), o);
  INFO(t);
  if (std::getenv("SHOW_REPORT")) std::fputs(t.c_str(), stdout);
  CHECK(contains(t, "  Upstream (WAN)         1.1 GiB  1,200,000,000 bytes  150 requests\n"));
  CHECK(contains(t, "    device-driven        191 MiB    200,000,000 bytes   50 requests\n"));
  CHECK(contains(t, "    prefetch             954 MiB  1,000,000,000 bytes  100 requests\n"));
  // The peak stays, with its prefetch part.
  CHECK(contains(t,
                 "Peak upstream hour     2024-10-04 09:00 to 10:00 (UTC): 858 MiB (prefetch "
                 "763 MiB)"));
  // A prefetch column in the content, sites and top assets tables.
  CHECK(contains(t, "from cache  upstream  prefetch\n"));
  CHECK(contains(t, "served  upstream  prefetch\n"));
  CHECK(contains(t, "  upstream  prefetch  requests"));
  CHECK(contains(t, "   763 MiB   668 MiB        40     0 B  learn.example.com/v/intro.mp4"));

  // Without prefetch the lines still say so, and the tables keep their columns.
  const std::string plain = render_report(sample(), o);
  CHECK(contains(plain, "    prefetch                 0 B              0 bytes    0 requests\n"));
  CHECK_FALSE(contains(plain, "upstream  prefetch"));
  CHECK_FALSE(contains(plain, "(prefetch "));

  o.json = true;
  const std::string j = render_report(sample_with_prefetch(), o);
  INFO(j);
  CHECK(contains(j,
                 "\"upstream_bytes\":1200000000,\"upstream_requests\":150,"
                 "\"prefetch_bytes\":1000000000,\"prefetch_requests\":100,\"wan_bytes_saved\":"));
  CHECK(contains(j,
                 "\"peak_upstream_hour\":{\"hour\":\"2024-10-04T09:00:00Z\",\"upstream_bytes\":"
                 "900000000,\"prefetch_bytes\":800000000}"));
  CHECK(contains(j,
                 "\"video\":{\"requests\":300,\"hits\":280,\"bytes_served\":3800000000,"
                 "\"bytes_from_cache\":2900000000,\"bytes_from_upstream\":900000000,"
                 "\"upstream_bytes\":1100000000,\"upstream_requests\":40,"
                 "\"prefetch_bytes\":1000000000,\"prefetch_requests\":100}"));
  CHECK(contains(j,
                 "\"upstream_bytes\":800000000,\"upstream_requests\":2,"
                 "\"prefetch_bytes\":700000000,\"prefetch_requests\":1}"));
}

TEST_CASE("usage report: the stored prefetch readiness", "[usage][report]") {
  report_options o;
  const std::string t = render_report(sample_with_prefetch(), o);
  INFO(t);
  CHECK(contains(t,
                 "\nprefetch: 1 of 2 sources ready (as the daemon saved it at 2024-10-04 "
                 "20:30 UTC)\n"));
  CHECK(contains(t,
                 "  Prefetch                              ready  listed  fresh  missing  "
                 "failed     size        pinned          last run          next run\n"));
  CHECK(contains(t,
                 "  learn.example.com · videos          100.0 %      40     40        0  "
                 "     0  858 MiB  40 (858 MiB)  2024-10-04 03:00  2024-10-05 03:00\n"));
  CHECK(contains(t,
                 "  learn.example.com · \\x1b[31mcourse   70.0 %      10      7        1  "
                 "     2  977 KiB       0 (0 B)             never           unknown\n"));
  CHECK(contains(t,
                 "  learn.example.com · \\x1b[31mcourse: last error: HTTP 404 for "
                 "/course/a\\x1b[2J.mp4\n"));
  CHECK_FALSE(contains(t, "\x1b"));

  // Shown when the period had no traffic too; nothing when no source is stored.
  usage_summary quiet;
  quiet.from_hour = h0;
  quiet.to_hour = h0;
  quiet.hours.resize(1);
  quiet.prefetch = sample_with_prefetch().prefetch;
  const std::string q = render_report(quiet, o);
  CHECK(contains(q, "no traffic in this period\n\nprefetch: 1 of 2 sources ready"));
  CHECK_FALSE(contains(render_report(sample(), o), "prefetch:"));

  o.json = true;
  const std::string j = render_report(sample_with_prefetch(), o);
  INFO(j);
  CHECK(contains(
      j,
      "],\"prefetch\":{\"saved\":\"2024-10-04T20:30:00Z\",\"sources_ready\":1,"
      "\"sources_total\":2,\"sources\":[{\"site\":\"learn.example.com\",\"source\":\"videos\","
      "\"path\":\"/lists/videos.txt\",\"kind\":\"url_list\",\"ready\":true,\"ready_ratio\":1,"
      "\"listed\":40,\"fresh\":40,\"missing\":0,\"failed\":0,\"bytes\":900000000,"
      "\"pinned_objects\":40,\"pinned_bytes\":900000000,\"unpinned_objects\":0,"
      "\"unpinned_bytes\":0,\"last_error\":\"\",\"last_run_end\":\"2024-10-04T03:00:00Z\","
      "\"next_run\":\"2024-10-05T03:00:00Z\"},"));
  CHECK(contains(j,
                 "{\"site\":\"learn.example.com\",\"source\":\"\\u001b[31mcourse\","
                 "\"path\":\"/course/imsmanifest.xml\",\"kind\":\"ims_manifest\",\"ready\":false,"
                 "\"ready_ratio\":0.7,\"listed\":10,\"fresh\":7,\"missing\":1,\"failed\":2,"
                 "\"bytes\":1000000,\"pinned_objects\":0,\"pinned_bytes\":0,"
                 "\"unpinned_objects\":7,\"unpinned_bytes\":1000000,"
                 "\"last_error\":\"HTTP 404 for /course/a\\u001b[2J.mp4\",\"last_run_end\":null,"
                 "\"next_run\":null}]}}\n"));
  CHECK(std::count_if(j.begin(), j.end(),
                      [](char c) { return static_cast<unsigned char>(c) < 0x20; }) == 1);
}
