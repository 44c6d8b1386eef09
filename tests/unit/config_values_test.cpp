// The scalar syntaxes of the config file (config/values.hpp), as tables of text -> value or
// error, and host normalization.
#include <catch2/catch.hpp>

#include "config/config.hpp"
#include "config/values.hpp"

using namespace storecache::config;
using namespace std::chrono_literals;

TEST_CASE("durations: good", "[config][values]") {
  struct row {
    std::string_view text;
    std::chrono::milliseconds want;
  };
  const row rows[] = {
      {"250ms", 250ms},   {"10s", 10s},  {"5m", 5min}, {"1h", 1h},     {"1ms", 1ms},
      {" 30s ", 30s},     {"30 s", 30s}, {"48h", 48h}, {"0001s", 1s},  {"90m", 90min},
      {"86400s", 86400s}, {"1d", 24h},   {"7d", 168h}, {" 30d", 720h},
  };
  for (const auto& r : rows) {
    INFO(r.text);
    auto d = parse_duration(r.text);
    REQUIRE(d.ok());
    CHECK(d.value == r.want);
  }
  CHECK(duration_from_seconds(7).value == 7s);
}

TEST_CASE("durations: bad", "[config][values]") {
  struct row {
    std::string_view text;
    std::string_view why;  // a piece of the message
  };
  const row rows[] = {
      {"", "not a duration"},
      {"s", "not a duration"},
      {"10", "has no unit"},
      {"10sec", "unknown unit 'sec'"},
      {"10S", "unknown unit 'S'"},
      {"1.5s", "unknown unit '.5s'"},
      {"-5s", "not a duration"},
      {"0s", "greater than zero"},
      {"0ms", "greater than zero"},
      {"0d", "greater than zero"},
      {"1m30s", "unknown unit"},
      {"1w", "unknown unit 'w' in '1w'; use ms, s, m, h or d"},
      {"1D", "unknown unit 'D'"},
      {"1day", "unknown unit 'day'"},
      {"999999999999999d", "too long"},
      {"99999999999999999999s", "not a duration"},  // does not fit 64 bits
      {"9999999999999999h", "too long"},
  };
  for (const auto& r : rows) {
    INFO(r.text);
    auto d = parse_duration(r.text);
    REQUIRE_FALSE(d.ok());
    CHECK_THAT(d.error, Catch::Contains(std::string(r.why)));
  }
  CHECK_FALSE(duration_from_seconds(0).ok());
  CHECK_FALSE(duration_from_seconds(-1).ok());
  CHECK_FALSE(duration_from_seconds(std::numeric_limits<std::int64_t>::max()).ok());
}

TEST_CASE("durations: zero where it is allowed", "[config][values]") {
  using enum zero_duration;
  for (std::string_view zero : {"0s", "0ms", "0m", "0h", "0d", "000s"}) {
    INFO(zero);
    auto d = parse_duration(zero, allowed);
    REQUIRE(d.ok());
    CHECK(d.value == 0ms);
    CHECK_FALSE(parse_duration(zero, refused).ok());
  }
  CHECK(parse_duration("7d", allowed).value == 168h);  // non-zero values are unchanged
  CHECK(duration_from_seconds(0, allowed).value == 0ms);
  CHECK(duration_from_seconds(3, allowed).value == 3s);
  // Negative is wrong either way, and says so rather than "greater than zero".
  CHECK_THAT(duration_from_seconds(-1, allowed).error, Catch::Contains("must not be negative"));
  CHECK_THAT(duration_from_seconds(-1, refused).error, Catch::Contains("must not be negative"));
  CHECK_THAT(duration_from_seconds(0, refused).error, Catch::Contains("greater than zero"));
  CHECK_FALSE(parse_duration("", allowed).ok());
  CHECK_FALSE(parse_duration("0", allowed).ok());  // a unit is still needed in a string
}

TEST_CASE("sizes", "[config][values]") {
  struct good {
    std::string_view text;
    std::uint64_t want;
  };
  const good goods[] = {
      {"16384", 16384},
      {"0", 0},
      {"16B", 16},
      {"16KiB", 16 * 1024},
      {"16kib", 16 * 1024},
      {"3MiB", 3ull << 20},
      {"200GiB", 200ull << 30},
      {"200 GiB", 200ull << 30},
      {"2TiB", 2ull << 40},
      {"4KB", 4000},
      {"4MB", 4'000'000},
      {"4GB", 4'000'000'000},
      {"1TB", 1'000'000'000'000},
      {"16777215TiB", 16777215ull << 40},
  };
  for (const auto& g : goods) {
    INFO(g.text);
    auto s = parse_size(g.text);
    REQUIRE(s.ok());
    CHECK(s.value == g.want);
  }
  for (std::string_view bad :
       {"", "GiB", "16XB", "16 K", "1.5GiB", "-1", "16777216TiB", "99999999999999999999"}) {
    INFO(bad);
    CHECK_FALSE(parse_size(bad).ok());
  }
  CHECK(format_size(16384) == "16 KiB");
  CHECK(format_size(4ull << 30) == "4 GiB");
  CHECK(format_size(1500) == "1500 B");
  CHECK(format_size(0) == "0 B");
}

TEST_CASE("rates: bits and bytes, SI and binary", "[config][values]") {
  struct good {
    std::string_view text;
    std::uint64_t want;  // bytes per second
  };
  for (const auto& g : std::vector<good>{{"5Mbit/s", 625'000},
                                         {"40Mbit/s", 5'000'000},
                                         {"40 mbit/s", 5'000'000},
                                         {"1500kbit/s", 187'500},
                                         {"1Gbit/s", 125'000'000},
                                         {"8bit/s", 1},
                                         {"625KB/s", 625'000},
                                         {"5MB/s", 5'000'000},
                                         {"512KiB/s", 512 * 1024},
                                         {"5MiB/s", 5ull << 20},
                                         {"625000B/s", 625'000},
                                         {"625000", 625'000}}) {
    INFO(g.text);
    auto r = parse_rate(g.text);
    REQUIRE(r.ok());
    CHECK(r.value == g.want);
  }
  for (std::string_view bad : {"", "fast", "5Mb/s", "5Mbps", "5 Mbit", "1.5Mbit/s", "0", "7bit/s",
                               "-5MB/s", "99999999999999999999GB/s", "18446744073709551615GB/s"}) {
    INFO(bad);
    CHECK_FALSE(parse_rate(bad).ok());
  }
  CHECK(format_rate(625'000) == "625000 B/s (5 Mbit/s)");
  CHECK(format_rate(5'000'000) == "5000000 B/s (40 Mbit/s)");
  CHECK(format_rate(100) == "100 B/s (800 bit/s)");
}

TEST_CASE("listen addresses", "[config][values]") {
  struct good {
    std::string_view text;
    std::string_view host;
    std::uint16_t port;
  };
  const good goods[] = {
      {"0.0.0.0:443", "0.0.0.0", 443},
      {"127.0.0.1:9090", "127.0.0.1", 9090},
      {"[::]:443", "::", 443},
      {"[::1]:65535", "::1", 65535},
      {"[2001:DB8::1]:1", "2001:db8::1", 1},
  };
  for (const auto& g : goods) {
    INFO(g.text);
    auto a = parse_listen_address(g.text);
    REQUIRE(a.ok());
    CHECK(a.value.host == g.host);
    CHECK(a.value.port == g.port);
    // text() writes it back as the config would.
    auto again = parse_listen_address(a.value.text());
    REQUIRE(again.ok());
    CHECK(again.value.host == a.value.host);
    CHECK(again.value.port == a.value.port);
  }
  CHECK(listen_address{"::", 443, {}}.text() == "[::]:443");
  CHECK(listen_address{"0.0.0.0", 443, {}}.text() == "0.0.0.0:443");

  struct bad {
    std::string_view text;
    std::string_view why;
  };
  const bad bads[] = {
      {"0.0.0.0", "has no port"},
      {"[::]", "has no port"},
      {"localhost:443", "not an IPv4 address"},
      {"::1:443", "must be in brackets"},
      {"0.0.0.0:0", "out of range"},
      {"0.0.0.0:65536", "out of range"},
      {"0.0.0.0:", "missing port"},
      {"0.0.0.0:44x", "not a number"},
      {"0.0.0.0:+443", "not a number"},
      {"[::1:443", "missing ']'"},
      {"[::1]443", "after ']'"},
      {"[1.2.3.4]:443", "not an IPv6 address"},
      {"256.0.0.1:443", "not an IPv4 address"},
  };
  for (const auto& b : bads) {
    INFO(b.text);
    auto a = parse_listen_address(b.text);
    REQUIRE_FALSE(a.ok());
    CHECK_THAT(a.error, Catch::Contains(std::string(b.why)));
  }
}

TEST_CASE("upstream URLs", "[config][values]") {
  auto u = parse_upstream_url("https://LMS.Example.com");
  REQUIRE(u.ok());
  CHECK(u.value.scheme == "https");
  CHECK(u.value.host == "lms.example.com");
  CHECK(u.value.port == 443);
  CHECK_FALSE(u.value.explicit_port);
  CHECK(host_header_for(u.value) == "lms.example.com");

  u = parse_upstream_url("HTTPS://lms.example.com:8443/");
  REQUIRE(u.ok());
  CHECK(u.value.port == 8443);
  CHECK(host_header_for(u.value) == "lms.example.com:8443");

  u = parse_upstream_url("http://10.0.0.5");
  REQUIRE(u.ok());
  CHECK(u.value.scheme == "http");
  CHECK(u.value.port == 80);

  u = parse_upstream_url("https://[2001:db8::1]:8443");
  REQUIRE(u.ok());
  CHECK(u.value.host == "2001:db8::1");
  CHECK(host_header_for(u.value) == "[2001:db8::1]:8443");

  u = parse_upstream_url("https://lms.example.com:443");
  REQUIRE(u.ok());
  CHECK(host_header_for(u.value) == "lms.example.com");  // the default port is not written

  struct bad {
    std::string_view text;
    std::string_view why;
  };
  const bad bads[] = {
      {"lms.example.com", "not a URL"},
      {"ftp://lms.example.com", "unsupported scheme 'ftp'"},
      {"https://lms.example.com/lms", "must not have a path ('/lms')"},
      {"https://lms.example.com?x=1", "must not have a query"},
      {"https://lms.example.com/?x=1", "must not have a query"},
      {"https://lms.example.com#top", "must not have a fragment"},
      {"https://user:pw@lms.example.com", "user info"},
      {"https://", "has no host"},
      {"https://:443", "has no host"},
      {"https://lms.example.com:0", "out of range"},
      {"https://lms.example.com:99999", "out of range"},
      {"https://lms_example.com", "contains '_'"},
      {"https://[::1", "missing ']'"},
      {"https://2001:db8::1", "must be in brackets"},
  };
  for (const auto& b : bads) {
    INFO(b.text);
    auto r = parse_upstream_url(b.text);
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error, Catch::Contains(std::string(b.why)));
  }
}

TEST_CASE("host names", "[config][values]") {
  for (std::string_view good : {"learn.example.com", "LEARN.example.com", "localhost", "a-b.c",
                                "learn.example.com.", "127.0.0.1", "::1", "[::1]", "x1.y2"}) {
    INFO(good);
    CHECK(check_host_name(good).empty());
  }
  for (std::string_view bad : {"", "*.example.com", "learn..example.com", ".example.com",
                               "-learn.example.com", "learn-.example.com", "learn example.com",
                               "learn_x.example.com", "999.1.1.1", "[1.2.3.4]", "[::1"}) {
    INFO(bad);
    CHECK_FALSE(check_host_name(bad).empty());
  }
  CHECK_FALSE(check_host_name(std::string(64, 'a') + ".com").empty());
  CHECK(check_host_name(std::string(63, 'a') + ".com").empty());

  CHECK(check_authority("lms.example.com").empty());
  CHECK(check_authority("lms.example.com:8443").empty());
  CHECK(check_authority("[::1]:8443").empty());
  CHECK_FALSE(check_authority("lms.example.com\r\nX-Evil: 1").empty());
  CHECK_FALSE(check_authority("lms.example.com:").empty());
}

TEST_CASE("normalize_host", "[config][values]") {
  CHECK(normalize_host("Learn.Example.COM:443") == "learn.example.com");
  CHECK(normalize_host("learn.example.com") == "learn.example.com");
  CHECK(normalize_host("learn.example.com.") == "learn.example.com");
  CHECK(normalize_host("learn.example.com.:443") == "learn.example.com");
  CHECK(normalize_host("[::1]:8443") == "::1");
  CHECK(normalize_host("[::1]") == "::1");
  CHECK(normalize_host("[2001:DB8::1]") == "2001:db8::1");
  CHECK(normalize_host("::1") == "::1");
  CHECK(normalize_host("127.0.0.1") == "127.0.0.1");
  CHECK(normalize_host("127.0.0.1:80") == "127.0.0.1");
  CHECK(normalize_host("example.com:") == "example.com");  // RFC 3986 allows an empty port
  // Malformed: matches nothing.
  CHECK(normalize_host("[::1") == "");
  CHECK(normalize_host("[::1]x") == "");
  CHECK(normalize_host("example.com:44x") == "");
  CHECK(normalize_host("") == "");
}

TEST_CASE("edit distance and suggestions", "[config][values]") {
  CHECK(edit_distance("", "") == 0);
  CHECK(edit_distance("abc", "") == 3);
  CHECK(edit_distance("upstream_ca", "upstream_ca") == 0);
  CHECK(edit_distance("upstrem_ca", "upstream_ca") == 1);
  CHECK(edit_distance("tls_cret", "tls_cert") == 1);  // a transposition counts once
  CHECK(edit_distance("kitten", "sitting") == 3);
  const std::string_view known[] = {"tls_cert", "tls_key", "upstream_ca", "upstream"};
  CHECK(closest_name("upstrem_ca", known) == "upstream_ca");
  CHECK(closest_name("tls_kye", known) == "tls_key");
  CHECK(closest_name("upstreams", known) == "upstream");
  CHECK(closest_name("certificate", known).empty());
  CHECK(closest_name("xyz", known).empty());
}
