// [site.cache] and [[site.cache.rule]]: defaults, every key good and bad (each error pinned to
// its dotted key and line), and match_rule()/glob_match() as a table, without allocation.
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <new>

#include "config/config.hpp"
#include "config_test_util.hpp"

using namespace storecache::config;
using namespace storecache::config::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

// Counts every allocation of this test binary, so a test can assert that a call makes none.
namespace {
std::atomic<std::size_t> allocations{0};
}
void* operator new(std::size_t n) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
// Every other (non-aligned) form too, so that nothing allocated by the sanitizer's operator new
// is released by free() above (ASan reports that as a mismatch).
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n == 0 ? 1 : n);
}
void* operator new[](std::size_t n) {
  return ::operator new(n);
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept {
  return ::operator new(n, t);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}

namespace {

const std::string b(base);
const std::string sc = b + "[site.cache]\n";  // keys from line 9

}  // namespace

TEST_CASE("site cache: a site without [site.cache] gets the defaults", "[config][cache]") {
  temp_dir dir;
  auto r = parse(base, "base.toml", dir.path());
  INFO(all_errors(r));
  REQUIRE(r.ok());
  const site_cache_policy& p = r.cfg->sites[0].cache;
  CHECK(p.enabled);
  CHECK(p.default_ttl == 0s);
  CHECK(p.stale_if_error == std::chrono::hours(24 * 7));
  CHECK(p.heuristic_fraction == 0.1);
  CHECK(p.heuristic_max == std::chrono::hours(24));
  CHECK(p.cdn_cache_control);
  CHECK(p.ignore_query_params ==
        std::vector<std::string>{"Expires", "Signature", "Key-Pair-Id", "Policy", "X-Amz-*"});
  CHECK(p.rules.empty());
}

TEST_CASE("site cache: every key read", "[config][cache]") {
  temp_dir dir;
  const std::string text = sc + R"(enabled = false
default_ttl = "10m"
stale_if_error = "2d"
heuristic_fraction = 0.25
heuristic_max = 7200
cdn_cache_control = false
ignore_query_params = ["utm_*", "Expires", "_"]

[[site.cache.rule]]
path = "/api/*"
bypass = true
[[site.cache.rule]]
path = "*.mp4"
ttl = "30d"
[[site.cache.rule]]
path = "/quiz/*.json"
ttl = 0
bypass = false

[[site]]
hosts = ["other.example.com"]
upstream = "https://other.example.net"
[site.cache]
default_ttl = "0s"
stale_if_error = 0
heuristic_fraction = 1
heuristic_max = "0s"
ignore_query_params = []
rule = [{ path = "*", ttl = "1h" }]
)";
  auto r = parse(text, "all.toml", dir.path());
  INFO(all_errors(r));
  REQUIRE(r.ok());
  REQUIRE(r.cfg->sites.size() == 2);

  const site_cache_policy& p = r.cfg->sites[0].cache;
  CHECK_FALSE(p.enabled);
  CHECK(p.default_ttl == 10min);
  CHECK(p.stale_if_error == 48h);
  CHECK(p.heuristic_fraction == 0.25);
  CHECK(p.heuristic_max == 2h);
  CHECK_FALSE(p.cdn_cache_control);
  CHECK(p.ignore_query_params == std::vector<std::string>{"utm_*", "Expires", "_"});
  REQUIRE(p.rules.size() == 3);
  CHECK(p.rules[0].pattern == "/api/*");
  CHECK(p.rules[0].bypass);
  CHECK_FALSE(p.rules[0].ttl.has_value());
  CHECK(p.rules[1].pattern == "*.mp4");
  CHECK_FALSE(p.rules[1].bypass);
  CHECK(p.rules[1].ttl == std::chrono::seconds(30 * 86400));
  CHECK(p.rules[2].pattern == "/quiz/*.json");
  CHECK(p.rules[2].ttl == 0s);  // zero is a lifetime: stored, revalidated on every use
  CHECK_FALSE(p.rules[2].bypass);

  // The second site's policy is its own; zeros are allowed and an empty list means empty.
  const site_cache_policy& q = r.cfg->sites[1].cache;
  CHECK(q.enabled);
  CHECK(q.default_ttl == 0s);
  CHECK(q.stale_if_error == 0s);
  CHECK(q.heuristic_fraction == 1.0);
  CHECK(q.heuristic_max == 0s);
  CHECK(q.ignore_query_params.empty());
  REQUIRE(q.rules.size() == 1);
  CHECK(q.rules[0].pattern == "*");
  CHECK(q.rules[0].ttl == 1h);

  // What the proxy will ask.
  CHECK(match_rule(p, "/api/v1/me") == &p.rules[0]);
  CHECK(match_rule(p, "/media/intro.mp4") == &p.rules[1]);
  CHECK(match_rule(p, "/quiz/3/q.json") == &p.rules[2]);
  CHECK(match_rule(p, "/index.html") == nullptr);
  CHECK(match_rule(q, "/index.html") == &q.rules[0]);
}

TEST_CASE("site cache: an empty rule list and the largest lifetime load", "[config][cache]") {
  temp_dir dir;
  auto r = parse(sc + "rule = []\ndefault_ttl = 2147483648\nheuristic_max = \"24855d\"\n",
                 "edge.toml", dir.path());
  INFO(all_errors(r));
  REQUIRE(r.ok());
  CHECK(r.cfg->sites[0].cache.rules.empty());
  CHECK(r.cfg->sites[0].cache.default_ttl == std::chrono::seconds(2147483648));
  CHECK(r.cfg->sites[0].cache.heuristic_max == std::chrono::seconds(24855ll * 86400));
}

namespace {

struct bad_case {
  std::string_view name;
  std::string text;
  std::string_view key;  // of the one diagnostic expected
  std::size_t line;
  std::string_view says;  // a piece of its message
};

std::vector<bad_case> bad_cases() {
  const std::string rule = b + "[[site.cache.rule]]\n";  // rule keys from line 9
  return {
      {"cache is not a table", b + "cache = 1\n", "site[0].cache", 8, "expected a table"},
      {"[[site.cache]]", b + "[[site.cache]]\nenabled = true\n", "site[0].cache", 8,
       "write [site.cache]"},
      {"unknown key, near a known one", sc + "default_tll = \"1s\"\n", "site[0].cache.default_tll",
       9, "did you mean 'default_ttl'?"},
      {"rule key in [site.cache]", sc + "path = \"/a\"\n", "site[0].cache.path", 9,
       "belongs in [[site.cache.rule]]"},
      {"site key in [site.cache]", sc + "upstream_sni = \"x\"\n", "site[0].cache.upstream_sni", 9,
       "belongs in [[site]]"},
      {"cache key in [[site]]", b + "default_ttl = \"1m\"\n", "site[0].default_ttl", 8,
       "belongs in [site.cache]"},
      {"enabled not a boolean", sc + "enabled = 1\n", "site[0].cache.enabled", 9,
       "expected a boolean"},
      {"default_ttl unit", sc + "default_ttl = \"10x\"\n", "site[0].cache.default_ttl", 9,
       "unknown unit 'x' in '10x'; use ms, s, m, h or d"},
      {"default_ttl negative", sc + "default_ttl = -1\n", "site[0].cache.default_ttl", 9,
       "must not be negative"},
      {"default_ttl float", sc + "default_ttl = 1.5\n", "site[0].cache.default_ttl", 9,
       "found a float"},
      {"default_ttl not whole seconds", sc + "default_ttl = \"1500ms\"\n",
       "site[0].cache.default_ttl", 9, "whole number of seconds (got 1500ms)"},
      {"default_ttl too long", sc + "default_ttl = \"30000d\"\n", "site[0].cache.default_ttl", 9,
       "at most 2147483648s"},
      {"stale_if_error unit", sc + "stale_if_error = \"1w\"\n", "site[0].cache.stale_if_error", 9,
       "unknown unit 'w'"},
      {"stale_if_error no unit", sc + "stale_if_error = \"7\"\n", "site[0].cache.stale_if_error", 9,
       "has no unit"},
      {"heuristic_max empty", sc + "heuristic_max = \"\"\n", "site[0].cache.heuristic_max", 9,
       "not a duration"},
      {"heuristic_fraction above 1", sc + "heuristic_fraction = 1.5\n",
       "site[0].cache.heuristic_fraction", 9, "between 0 and 1 (got 1.5)"},
      {"heuristic_fraction negative", sc + "heuristic_fraction = -0.1\n",
       "site[0].cache.heuristic_fraction", 9, "between 0 and 1 (got -0.1)"},
      {"heuristic_fraction integer 2", sc + "heuristic_fraction = 2\n",
       "site[0].cache.heuristic_fraction", 9, "between 0 and 1 (got 2)"},
      {"heuristic_fraction nan", sc + "heuristic_fraction = nan\n",
       "site[0].cache.heuristic_fraction", 9, "(got nan)"},
      {"heuristic_fraction a string", sc + "heuristic_fraction = \"10%\"\n",
       "site[0].cache.heuristic_fraction", 9, "expected a number, found a string"},
      {"cdn_cache_control not a boolean", sc + "cdn_cache_control = \"yes\"\n",
       "site[0].cache.cdn_cache_control", 9, "expected a boolean"},
      {"ignore_query_params a string", sc + "ignore_query_params = \"Expires\"\n",
       "site[0].cache.ignore_query_params", 9, "expected an array"},
      {"ignore_query_params empty name", sc + "ignore_query_params = [\"Expires\", \"\"]\n",
       "site[0].cache.ignore_query_params[1]", 9, "must not be empty"},
      {"ignore_query_params inner star", sc + "ignore_query_params = [\"X-*-Date\"]\n",
       "site[0].cache.ignore_query_params[0]", 9, "'*' may only end a name"},
      {"ignore_query_params with value", sc + "ignore_query_params = [\"v=2\"]\n",
       "site[0].cache.ignore_query_params[0]", 9, "contains '='"},
      {"ignore_query_params with space", sc + "ignore_query_params = [\"a b\"]\n",
       "site[0].cache.ignore_query_params[0]", 9, "space"},
      {"ignore_query_params twice", sc + "ignore_query_params = [\"Expires\",\n  \"Expires\"]\n",
       "site[0].cache.ignore_query_params[1]", 10, "listed twice (also on line 9)"},
      {"ignore_query_params not strings", sc + "ignore_query_params = [1]\n",
       "site[0].cache.ignore_query_params[0]", 9, "expected a string, found an integer"},
      {"[site.cache.rule] instead of [[...]]", b + "[site.cache.rule]\npath = \"/a\"\n",
       "site[0].cache.rule", 8, "write [[site.cache.rule]]"},
      {"rule is an integer", sc + "rule = 1\n", "site[0].cache.rule", 9,
       "expected an array of tables"},
      {"rule is an array of strings", sc + "rule = [\"/a\"]\n", "site[0].cache.rule", 9,
       "expected an array of tables"},
      {"rule without path", rule + "bypass = true\n", "site[0].cache.rule[0].path", 8,
       "is required"},
      {"rule path relative", rule + "path = \"api/*\"\nbypass = true\n",
       "site[0].cache.rule[0].path", 9, "must start with '/' or '*'"},
      {"rule path empty", rule + "path = \"\"\nbypass = true\n", "site[0].cache.rule[0].path", 9,
       "must not be empty"},
      {"rule path with a query", rule + "path = \"/a?b=*\"\nbypass = true\n",
       "site[0].cache.rule[0].path", 9, "contains '?'"},
      {"rule path with a fragment", rule + "path = \"/a#b\"\nbypass = true\n",
       "site[0].cache.rule[0].path", 9, "contains '#'"},
      {"rule path with a space", rule + "path = \"/a b\"\nbypass = true\n",
       "site[0].cache.rule[0].path", 9, "space"},
      {"rule path not a string", rule + "path = 1\nbypass = true\n", "site[0].cache.rule[0].path",
       9, "expected a string"},
      {"rule with ttl and bypass", rule + "path = \"/a\"\nttl = \"1h\"\nbypass = true\n",
       "site[0].cache.rule[0].ttl", 10, "not both"},
      {"rule with neither", rule + "path = \"/a\"\n", "site[0].cache.rule[0]", 8, "does nothing"},
      {"rule with only bypass = false", rule + "path = \"/a\"\nbypass = false\n",
       "site[0].cache.rule[0]", 8, "does nothing"},
      {"rule bypass not a boolean", rule + "path = \"/a\"\nbypass = \"yes\"\n",
       "site[0].cache.rule[0].bypass", 10, "expected a boolean"},
      {"rule ttl unit", rule + "path = \"/a\"\nttl = \"30days\"\n", "site[0].cache.rule[0].ttl", 10,
       "unknown unit 'days'"},
      {"rule ttl too long", rule + "path = \"/a\"\nttl = 9999999999\n", "site[0].cache.rule[0].ttl",
       10, "at most"},
      {"rule unknown key", rule + "path = \"/a\"\nttl = \"1h\"\ntll = \"1h\"\n",
       "site[0].cache.rule[0].tll", 11, "did you mean 'ttl'?"},
      {"rule key from [site.cache]", rule + "path = \"/a\"\nttl = \"1h\"\ndefault_ttl = \"1h\"\n",
       "site[0].cache.rule[0].default_ttl", 11, "belongs in [site.cache]"},
      {"second rule's ttl",
       rule + "path = \"/a\"\nttl = \"1h\"\n[[site.cache.rule]]\npath = \"/b\"\nttl = \"x\"\n",
       "site[0].cache.rule[1].ttl", 13, "not a duration"},
      {"same pattern twice",
       rule +
           "path = \"/a/*\"\nttl = \"1h\"\n[[site.cache.rule]]\npath = \"/a/*\"\nbypass = true\n",
       "site[0].cache.rule[1].path", 12, "never applies: rule[0] (line 9)"},
      {"rule after a catch-all",
       rule + "path = \"**\"\nttl = \"1h\"\n[[site.cache.rule]]\npath = \"/b\"\nbypass = true\n",
       "site[0].cache.rule[1].path", 12, "first match wins"},
      {"second site",
       b + "[[site]]\nhosts = [\"o.example.com\"]\nupstream = \"https://o.example.net\"\n"
           "[site.cache]\ndefault_ttl = \"1y\"\n",
       "site[1].cache.default_ttl", 12, "unknown unit 'y'"},
  };
}

}  // namespace

TEST_CASE("site cache: bad values, each named by key and line", "[config][cache]") {
  temp_dir dir;
  for (const auto& c : bad_cases()) {
    SECTION(std::string(c.name)) {
      auto r = parse(c.text, "bad.toml", dir.path());
      INFO(c.text);
      REQUIRE(c.line != 0);  // every case here has a place, so its column is checked too
      check_single_error(r, c.key, c.line, c.says);
    }
  }
}

TEST_CASE("site cache: every problem is reported, in file order", "[config][cache]") {
  temp_dir dir;
  const std::string text = sc + R"(enabled = "no"
heuristic_fraction = 3
ignore_query_params = ["ok", "a&b"]
[[site.cache.rule]]
path = "relative"
ttl = "1h"
[[site.cache.rule]]
path = "/b"
)";
  auto r = parse(text, "many.toml", dir.path());
  REQUIRE_FALSE(r.ok());
  std::vector<std::pair<std::string, std::size_t>> got;
  for (const auto& e : r.errors)
    got.emplace_back(e.key, e.line);
  const std::vector<std::pair<std::string, std::size_t>> want = {
      {"site[0].cache.enabled", 9},
      {"site[0].cache.heuristic_fraction", 10},
      {"site[0].cache.ignore_query_params[1]", 11},
      {"site[0].cache.rule[0].path", 13},
      {"site[0].cache.rule[1]", 15},
  };
  INFO(all_errors(r));
  CHECK(got == want);
  CHECK(r.errors[4].to_string() ==
        "many.toml:15:1: site[0].cache.rule[1]: does nothing: give it ttl = \"...\", "
        "bypass = true or authorize_with_upstream = true");
}

TEST_CASE("glob_match: '*' spans any run, '/' included; the rest is literal", "[config][cache]") {
  struct row {
    std::string_view pattern;
    std::string_view path;
    bool match;
  };
  const row rows[] = {
      {"/api/*", "/api/x", true},
      {"/api/*", "/api/", true},
      {"/api/*", "/api/a/b/c", true},
      {"/api/*", "/api", false},
      {"/api/*", "/apix/y", false},
      {"/api/*", "/v2/api/x", false},  // anchored at the start
      {"*.mp4", "/v/a.mp4", true},
      {"*.mp4", ".mp4", true},
      {"*.mp4", "/v/a.mp4x", false},  // anchored at the end
      {"*.mp4", "/v/a.MP4", false},   // paths are case-sensitive
      {"*.mp4", "/v/a.mp4/x.mp4", true},
      {"/media/*/hls/*", "/media/c1/v2/hls/seg1.ts", true},
      {"/media/*/hls/*", "/media/hls/seg1.ts", false},
      {"/media/*/hls/*", "/media//hls/", true},  // '*' may match nothing
      {"*", "", true},
      {"*", "/", true},
      {"*", "/anything/at/all?x", true},
      {"**", "/x", true},
      {"/", "/", true},
      {"/", "/a", false},
      {"/a", "/a", true},
      {"/a", "/ab", false},
      {"/a", "/", false},
      {"/a*", "/a", true},
      {"/a*b*c", "/aXbYc", true},
      {"/a*b*c", "/abcbc", true},
      {"/a*b*c", "/aXbYcZ", false},
      {"*ab", "/aab", true},  // the star has to give back a character it tried to keep
      {"/*/x", "/a/b/x", true},
      {"*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
      {"", "", true},
      {"", "/", false},
      {"/x*", "", false},
      {"/a.b", "/aXb", false},  // '.' is literal, not a regex
      {"/a?", "/ab", false},    // so is '?'
  };
  for (const auto& r : rows) {
    INFO(r.pattern << " vs " << r.path);
    CHECK(glob_match(r.pattern, r.path) == r.match);
  }
}

TEST_CASE("glob_match: long paths with many stars stay fast", "[config][cache]") {
  // Each star restarts at most once per path character: 64 KiB against four stars is a few
  // hundred thousand steps, where a backtracking matcher would be exponential.
  const std::string path(64 * 1024, 'a');
  CHECK_FALSE(glob_match("*a*a*a*b", path));
  CHECK(glob_match("*a*a*a*a", path));
  CHECK(glob_match("*", path));
}

TEST_CASE("match_rule: first match wins, without allocating", "[config][cache]") {
  site_cache_policy p;
  p.rules = {
      {"/api/*", std::nullopt, true},
      {"*.mp4", std::chrono::seconds(3600), false},
      {"/media/*", std::chrono::seconds(60), false},
      {"/api/public/*", std::chrono::seconds(5), false},  // shadowed by rule 0
  };
  struct row {
    std::string_view path;
    int rule;  // -1: none
  };
  const row rows[] = {
      {"/api/me", 0},
      {"/api/public/x", 0},
      {"/media/a.mp4", 1},
      {"/media/a.pdf", 2},
      {"/a.mp4", 1},
      {"/index.html", -1},
      {"", -1},
      {"/api", -1},
      {"/media/x/api/y.mp4", 1},
  };
  {
    // The counter sees allocations at all (else the checks below would prove nothing).
    std::size_t before = allocations.load();
    auto heap = std::make_unique<std::string>(100, 'x');
    REQUIRE(allocations.load() > before);
  }
  for (const auto& r : rows) {
    INFO(r.path);
    std::size_t before = allocations.load();
    const path_rule* got = match_rule(p, r.path);
    CHECK(allocations.load() == before);
    CHECK(got == (r.rule < 0 ? nullptr : &p.rules[static_cast<std::size_t>(r.rule)]));
  }
  CHECK(match_rule(site_cache_policy{}, "/x") == nullptr);  // no rules: no match
}
