// [prefetch] and [[site.prefetch]]: defaults, every key read, each error named by key and line;
// and the time windows prefetch runs in (parsing, inside, until open, until close).
#include <catch2/catch.hpp>

#include "config/config.hpp"
#include "config/time_window.hpp"
#include "config_test_util.hpp"

using namespace storecache::config;
using namespace storecache::config::test;
using namespace std::chrono_literals;

namespace {

const std::string b(base);

time_window w(std::string_view text) {
  std::string why;
  auto r = parse_time_window(text, why);
  INFO(text << ": " << why);
  REQUIRE(r);
  return *r;
}

}  // namespace

TEST_CASE("time windows: parsed, printed, crossing midnight", "[config][prefetch]") {
  CHECK(w("22:00-06:00") == time_window{1320, 360});
  CHECK(to_string(w("22:00-06:00")) == "22:00-06:00");
  CHECK(w("18:00-24:00") == time_window{1080, 0});  // 24:00 is the next midnight
  CHECK(to_string(w("08:30-21:15")) == "08:30-21:15");
  for (const char* bad : {"", "8:00-9:00", "08:00", "08:00-", "25:00-06:00", "08:60-09:00",
                          "24:00-06:00", "08:00-08:00", "00:00-24:00", "08:00 - 09:00",
                          "aa:bb-cc:dd", "24:30-01:00", "08:00-24:01"}) {
    std::string why;
    INFO(bad);
    CHECK_FALSE(parse_time_window(bad, why));
    CHECK_FALSE(why.empty());
  }
  auto night = w("22:00-06:00");
  CHECK(night.contains(22 * 60));
  CHECK(night.contains(23 * 60 + 59));
  CHECK(night.contains(0));
  CHECK(night.contains(5 * 60 + 59));
  CHECK_FALSE(night.contains(6 * 60));
  CHECK_FALSE(night.contains(12 * 60));
  CHECK_FALSE(night.contains(21 * 60 + 59));
}

TEST_CASE("time windows: inside, minutes until open and close", "[config][prefetch]") {
  std::vector<time_window> none;
  CHECK(inside(none, 0));
  CHECK(minutes_until_open(none, 700) == 0);
  CHECK_FALSE(minutes_until_close(none, 700));

  std::vector<time_window> ws{w("22:00-06:00"), w("12:00-13:00")};
  CHECK(inside(ws, 12 * 60 + 30));
  CHECK_FALSE(inside(ws, 13 * 60));
  CHECK(minutes_until_open(ws, 13 * 60) == 9 * 60);  // 13:00 -> 22:00
  CHECK(minutes_until_open(ws, 7 * 60) == 5 * 60);   // 07:00 -> 12:00
  CHECK(minutes_until_open(ws, 23 * 60) == 0);
  CHECK(minutes_until_close(ws, 23 * 60) == 7 * 60);  // 23:00 -> 06:00, across midnight
  CHECK(minutes_until_close(ws, 12 * 60) == 60);
  CHECK_FALSE(minutes_until_close(ws, 7 * 60));  // outside

  // Touching windows are one: 06:00-12:00 and 12:00-13:00 close at 13:00.
  std::vector<time_window> touching{w("06:00-12:00"), w("12:00-13:00")};
  CHECK(minutes_until_close(touching, 6 * 60) == 7 * 60);
  std::vector<time_window> whole_day{w("00:00-12:00"), w("12:00-00:00")};
  CHECK_FALSE(minutes_until_close(whole_day, 600));
}

TEST_CASE("prefetch: defaults", "[config][prefetch]") {
  temp_dir dir;
  auto r = parse(base, "base.toml", dir.path());
  INFO(all_errors(r));
  REQUIRE(r.ok());
  CHECK(r.cfg->prefetch.connections == 2);
  CHECK(r.cfg->prefetch.max_listing_size == 8u << 20);
  CHECK(r.cfg->prefetch.max_entries == 100000);
  CHECK(r.cfg->prefetch.max_depth == 3);
  CHECK(r.cfg->prefetch.max_pinned == r.cfg->cache.max_size / 2);
  CHECK(r.cfg->prefetch.listing_timeout == 2min);
  CHECK(r.cfg->sites[0].prefetch.empty());
}

TEST_CASE("prefetch: every key read", "[config][prefetch]") {
  temp_dir dir;
  auto r = parse(b + R"([[site.prefetch]]
url = "/courses/safety/imsmanifest.xml"
[[site.prefetch]]
url = "/video/intro/master.m3u8"
name = "intro video"
kind = "hls"
windows = ["22:00-06:00", "12:00-13:30"]
interval = "15m"
hls_variants = "lowest_and_highest"
pin = true
[prefetch]
connections = 4
max_listing_size = "1MiB"
max_entries = 500
max_depth = 1
max_pinned = "3GiB"
listing_timeout = "30s"
[cache]
max_size = "4GiB"
)",
                 "good.toml", dir.path());
  INFO(all_errors(r));
  REQUIRE(r.ok());
  const auto& p = r.cfg->sites[0].prefetch;
  REQUIRE(p.size() == 2);
  CHECK(p[0].path == "/courses/safety/imsmanifest.xml");
  CHECK(p[0].name == p[0].path);
  CHECK(p[0].kind == prefetch_kind::detect);
  CHECK(p[0].windows.empty());
  CHECK(p[0].interval == 1h);
  CHECK_FALSE(p[0].hls_lowest_and_highest);
  CHECK_FALSE(p[0].pin);
  CHECK(p[1].pin);
  CHECK(p[1].name == "intro video");
  CHECK(p[1].kind == prefetch_kind::hls);
  CHECK(p[1].windows == std::vector<time_window>{w("22:00-06:00"), w("12:00-13:30")});
  CHECK(p[1].interval == 15min);
  CHECK(p[1].hls_lowest_and_highest);
  CHECK(r.cfg->prefetch.connections == 4);
  CHECK(r.cfg->prefetch.max_listing_size == 1u << 20);
  CHECK(r.cfg->prefetch.max_entries == 500);
  CHECK(r.cfg->prefetch.max_depth == 1);
  CHECK(r.cfg->prefetch.max_pinned == 3ull << 30);
  CHECK(r.cfg->prefetch.listing_timeout == 30s);
}

TEST_CASE("prefetch: each mistake named by key and line", "[config][prefetch]") {
  temp_dir dir;
  const std::string src = b + "[[site.prefetch]]\n";  // its keys from line 9
  struct bad_case {
    std::string text;
    const char* key;
    std::size_t line;
    const char* says;
  };
  for (const auto& c : std::vector<bad_case>{
           {src + "name = \"x\"\n", "site[0].prefetch[0].url", 8, "is required"},
           {src + "url = \"courses/x.xml\"\n", "site[0].prefetch[0].url", 9, "starting with"},
           {src + "url = \"//other.host/x\"\n", "site[0].prefetch[0].url", 9, "starting with"},
           {src + "url = \"/a b\"\n", "site[0].prefetch[0].url", 9, "no spaces"},
           {src + "url = \"/x\"\nkind = \"scorm\"\n", "site[0].prefetch[0].kind", 10,
            "\"ims_manifest\""},
           {src + "url = \"/x\"\nwindows = [\"22-06\"]\n", "site[0].prefetch[0].windows[0]", 10,
            "HH:MM-HH:MM"},
           {src + "url = \"/x\"\nwindows = []\n", "site[0].prefetch[0].windows", 10,
            "leave it out"},
           {src + "url = \"/x\"\nwindows = \"22:00-06:00\"\n", "site[0].prefetch[0].windows", 10,
            "an array"},
           {src + "url = \"/x\"\ninterval = \"5s\"\n", "site[0].prefetch[0].interval", 10,
            "at least 10s"},
           {src + "url = \"/x\"\nhls_variants = \"some\"\n", "site[0].prefetch[0].hls_variants", 10,
            "lowest_and_highest"},
           {src + "url = \"/x\"\npin = \"yes\"\n", "site[0].prefetch[0].pin", 10, ""},
           {src + "url = \"/x\"\nkeep = true\n", "site[0].prefetch[0].keep", 10, ""},
           {src + "url = \"/x\"\n" + "[[site.prefetch]]\nurl = \"/x\"\n",
            "site[0].prefetch[1].name", 10, "another [[site.prefetch]]"},
           {b + "[site.prefetch]\nurl = \"/x\"\n", "site[0].prefetch", 8, "[[site.prefetch]]"},
           {b + "[prefetch]\nconnections = 0\n", "prefetch.connections", 9, ""},
           {b + "[prefetch]\nmax_depth = 9\n", "prefetch.max_depth", 9, ""},
           {b + "[prefetch]\nurl = \"/x\"\n", "prefetch.url", 9, ""},
           {b + "[cache]\nmax_size = \"1GiB\"\n[prefetch]\nmax_pinned = \"1GiB\"\n",
            "prefetch.max_pinned", 11, "not below cache.max_size (1 GiB)"},
           {b + "[prefetch]\nmax_pinned = \"lots\"\n", "prefetch.max_pinned", 9, ""},
           {b + "[prefetch]\nlisting_timeout = \"2h\"\n", "prefetch.listing_timeout", 9, ""},
       }) {
    INFO(c.text);
    check_single_error(parse(c.text, "bad.toml", dir.path()), c.key, c.line, c.says);
  }
}

TEST_CASE("wan: the cap by local time", "[config][wan]") {
  temp_dir dir;
  auto none = parse(base, "base.toml", dir.path());
  REQUIRE(none.ok());
  CHECK(none.cfg->wan.rate == 0);
  CHECK(none.cfg->wan.rate_at(600) == 0);
  auto r = parse(b + R"([wan]
rate = "40Mbit/s"
[[wan.window]]
hours = "08:00-21:00"
rate = "5Mbit/s"
[[wan.window]]
hours = "12:00-13:00"
rate = 100000
)",
                 "wan.toml", dir.path());
  INFO(all_errors(r));
  REQUIRE(r.ok());
  const auto& w = r.cfg->wan;
  CHECK(w.rate == 5'000'000);
  REQUIRE(w.windows.size() == 2);
  CHECK(w.rate_at(7 * 60 + 59) == 5'000'000);  // outside every window: the default
  CHECK(w.rate_at(8 * 60) == 625'000);         // the first window that contains the minute
  CHECK(w.rate_at(12 * 60 + 30) == 625'000);   // (first match wins: 08-21 before 12-13)
  CHECK(w.rate_at(21 * 60) == 5'000'000);
  // a site's own cap, with windows of its own
  auto site = parse(b + "[site.wan]\nrate = \"2Mbit/s\"\n[[site.wan.window]]\nhours = "
                        "\"22:00-06:00\"\nrate = \"20Mbit/s\"\n",
                    "site.toml", dir.path());
  INFO(all_errors(site));
  REQUIRE(site.ok());
  CHECK(site.cfg->wan.rate == 0);
  CHECK(site.cfg->sites[0].wan.rate_at(12 * 60) == 250'000);
  CHECK(site.cfg->sites[0].wan.rate_at(23 * 60) == 2'500'000);
  // windows alone: no cap outside them
  auto only = parse(b + "[[wan.window]]\nhours = \"22:00-06:00\"\nrate = \"40Mbit/s\"\n",
                    "only.toml", dir.path());
  REQUIRE(only.ok());
  CHECK(only.cfg->wan.rate_at(23 * 60) == 5'000'000);
  CHECK(only.cfg->wan.rate_at(12 * 60) == 0);

  struct bad_case {
    std::string text;
    const char* key;
    std::size_t line;
    const char* says;
  };
  for (const auto& c : std::vector<bad_case>{
           {b + "[wan]\nrate = \"5Mbps\"\n", "wan.rate", 9, "unknown unit"},
           {b + "[wan]\nrate = 0\n", "wan.rate", 9, "at least 1 byte"},
           {b + "[wan]\nrat = \"5Mbit/s\"\n", "wan.rat", 9, ""},
           {b + "[[wan.window]]\nrate = \"5Mbit/s\"\n", "wan.window[0].hours", 8, "is required"},
           {b + "[[wan.window]]\nhours = \"08:00-21:00\"\n", "wan.window[0].rate", 8,
            "is required"},
           {b + "[[wan.window]]\nhours = \"8-21\"\nrate = 1000\n", "wan.window[0].hours", 9,
            "HH:MM-HH:MM"},
           {b + "[wan]\nwindow = \"08:00-21:00\"\n", "wan.window", 9, "[[wan.window]]"},
           {b + "[site.wan]\nrate = \"fast\"\n", "site[0].wan.rate", 9, "not a rate"},
           {b + "[[site.wan.window]]\nrate = 1000\n", "site[0].wan.window[0].hours", 8,
            "is required"},
       }) {
    INFO(c.text);
    check_single_error(parse(c.text, "bad.toml", dir.path()), c.key, c.line, c.says);
  }
}
