// Byte ranges (RFC 9110 §14) and If-Range (§13.1.5): parsing, resolution against a length,
// Content-Range, and the edge cases devices hit (Safari's bytes=0-1 probe, seeks past the end).
#include <catch2/catch.hpp>

#include "cache/http_date.hpp"
#include "cache/range.hpp"

using namespace storecache::cache;

namespace {

using spans = std::vector<byte_span>;

range_resolution eval(const char* range, std::uint64_t length) {
  return evaluate_range(std::string_view(range), length);
}

}  // namespace

TEST_CASE("parsing valid Range values", "[range]") {
  using specs = std::vector<range_spec>;
  CHECK(parse_range("bytes=0-499") == specs{{0, 499}});
  CHECK(parse_range("bytes=500-") == specs{{500, std::nullopt}});
  CHECK(parse_range("bytes=-500") == specs{{std::nullopt, 500}});
  CHECK(parse_range("Bytes=0-1") == specs{{0, 1}});
  CHECK(parse_range(" bytes=0-0, -1 ") == specs{{0, 0}, {std::nullopt, 1}});
  CHECK(parse_range("bytes=0-1,,5-6") == specs{{0, 1}, {5, 6}});
  CHECK(parse_range("bytes=0-18446744073709551615") == specs{{0, UINT64_MAX}});
}

TEST_CASE("invalid Range values are ignored", "[range]") {
  for (auto bad : {"", "bytes", "bytes=", "bytes=,", "items=0-1", "bytes 0-1", "bytes=1-0",
                   "bytes=a-b", "bytes=0-1x", "bytes=-", "bytes=--1", "bytes=0 -1", "bytes=0- 1",
                   "bytes=+1-2", "bytes=0-18446744073709551616", "bytes=99999999999999999999-",
                   "bytes=-99999999999999999999"}) {
    INFO(bad);
    CHECK_FALSE(parse_range(bad));
    CHECK(eval(bad, 1000).outcome == range_outcome::whole);
  }
}

TEST_CASE("too many ranges are ignored", "[range]") {
  std::string many = "bytes=0-0";
  for (std::size_t i = 1; i < max_range_specs; ++i)
    many += "," + std::to_string(i) + "-" + std::to_string(i);
  CHECK(parse_range(many)->size() == max_range_specs);
  many += ",999-999";
  CHECK_FALSE(parse_range(many));
}

TEST_CASE("resolving ranges against a length", "[range]") {
  struct row {
    const char* range;
    std::uint64_t length;
    range_outcome outcome;
    spans expected;
  };
  using enum range_outcome;
  const std::vector<row> rows = {
      {"bytes=0-499", 1000, partial, {{0, 499}}},
      {"bytes=500-", 1000, partial, {{500, 999}}},
      {"bytes=-200", 1000, partial, {{800, 999}}},
      {"bytes=0-1", 1000, partial, {{0, 1}}},  // Safari's probe
      {"bytes=0-1", 1, partial, {{0, 0}}},     // ...on a 1-byte object
      {"bytes=0-0", 1, partial, {{0, 0}}},
      {"bytes=900-5000", 1000, partial, {{900, 999}}},  // last past the end: clamped
      {"bytes=999-", 1000, partial, {{999, 999}}},
      {"bytes=-5000", 1000, partial, {{0, 999}}},  // suffix longer than the object
      {"bytes=1000-", 1000, unsatisfiable, {}},    // first == length
      {"bytes=1000-2000", 1000, unsatisfiable, {}},
      {"bytes=-0", 1000, unsatisfiable, {}},
      {"bytes=0-", 0, unsatisfiable, {}},
      {"bytes=-0", 0, unsatisfiable, {}},
      {"bytes=-1", 0, whole, {}},  // empty object: the empty 200
      {"bytes=0-0,-1", 1000, partial, {{0, 0}, {999, 999}}},
      {"bytes=0-99, 2000-3000, 200-299", 1000, partial, {{0, 99}, {200, 299}}},
      {"bytes=500-600,0-700",
       1000,
       partial,
       {{500, 600}, {0, 700}}},  // overlap kept, caller decides
      {"bytes=2000-,-0", 1000, unsatisfiable, {}},
      {"bytes=0-18446744073709551615", 1000, partial, {{0, 999}}},
  };
  for (const auto& r : rows) {
    INFO(r.range << " of " << r.length);
    auto res = eval(r.range, r.length);
    CHECK(res.outcome == r.outcome);
    CHECK(res.spans == r.expected);
  }
  CHECK(evaluate_range(std::nullopt, 1000).outcome == range_outcome::whole);
}

TEST_CASE("large objects: the last MiB of 200 MB", "[range]") {
  const std::uint64_t length = 200'000'000;
  auto res = eval("bytes=-1048576", length);
  REQUIRE(res.outcome == range_outcome::partial);
  CHECK(res.spans == spans{{length - 1048576, length - 1}});
  CHECK(res.spans[0].length() == 1048576);
  auto big = eval("bytes=5000000000-", 6'000'000'000ULL);  // beyond 32 bits
  CHECK(big.spans == spans{{5'000'000'000ULL, 5'999'999'999ULL}});
}

TEST_CASE("Content-Range values", "[range]") {
  CHECK(content_range({0, 499}, 1234) == "bytes 0-499/1234");
  CHECK(content_range({0, 0}, 1) == "bytes 0-0/1");
  CHECK(unsatisfied_content_range(1234) == "bytes */1234");
  CHECK(byte_span{10, 19}.length() == 10);
}

TEST_CASE("If-Range (§13.1.5)", "[range]") {
  const std::string date = "Sun, 06 Nov 1994 08:49:37 GMT";
  const std::string lm = "Sun, 06 Nov 1994 08:00:00 GMT";
  header_list stored{{"etag", R"("v1")"}, {"date", date}, {"last-modified", lm}};
  CHECK(if_range_matches(R"("v1")", stored));
  CHECK_FALSE(if_range_matches(R"("v2")", stored));
  CHECK_FALSE(if_range_matches(R"(W/"v1")", stored));  // weak tags never match
  header_list weak_stored{{"etag", R"(W/"v1")"}};
  CHECK_FALSE(if_range_matches(R"("v1")", weak_stored));
  CHECK(if_range_matches(lm, stored));
  CHECK(if_range_matches("Sunday, 06-Nov-94 08:00:00 GMT", stored));       // same date, other form
  CHECK_FALSE(if_range_matches("Sun, 06 Nov 1994 08:00:01 GMT", stored));  // exact match only
  CHECK_FALSE(if_range_matches("not a date", stored));
  // Last-Modified within a second of Date is weak: no range.
  header_list same_second{{"date", date}, {"last-modified", date}};
  CHECK_FALSE(if_range_matches(date, same_second));
  header_list no_date{{"last-modified", lm}};
  CHECK_FALSE(if_range_matches(lm, no_date));
  CHECK_FALSE(if_range_matches(R"("v1")", {}));
}
