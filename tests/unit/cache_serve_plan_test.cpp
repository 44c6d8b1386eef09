// What a request gets from a stored response, without sockets (cache/serve_plan): the range to
// send (206, 416, or the whole body when Range cannot or should not be honoured) and the
// fields a client sees.
#include <catch2/catch.hpp>

#include "cache/serve_plan.hpp"

using namespace storecache::cache;

namespace {

const header_list stored{{"etag", "\"v1\""},
                         {"last-modified", "Tue, 01 Dec 2026 10:00:00 GMT"},
                         {"content-type", "video/mp4"}};

}  // namespace

TEST_CASE("one range of a known length is a 206 with its span", "[serve_plan]") {
  auto p = plan_range({{"range", "bytes=100-199"}}, stored, 200, 1000);
  CHECK(p.status == 206);
  CHECK(p.first == 100);
  CHECK(p.end == 200u);
  CHECK(p.content_range == "bytes 100-199/1000");

  auto suffix = plan_range({{"range", "bytes=-10"}}, stored, 200, 1000);
  CHECK(suffix.status == 206);
  CHECK(suffix.first == 990);
  CHECK(suffix.end == 1000u);
}

TEST_CASE("a range past the end is a 416 naming the length", "[serve_plan]") {
  auto p = plan_range({{"range", "bytes=5000-"}}, stored, 200, 1000);
  CHECK(p.status == 416);
  CHECK(p.content_range == "bytes */1000");
}

TEST_CASE("the whole body when Range does not apply", "[serve_plan]") {
  SECTION("no Range") {
    auto p = plan_range({}, stored, 200, 1000);
    CHECK(p.status == 200);
    CHECK(p.first == 0);
    CHECK(p.end == 1000u);
  }
  SECTION("several ranges: the whole 200 (RFC 9110 §14.2 allows it)") {
    auto p = plan_range({{"range", "bytes=0-1,5-6"}}, stored, 200, 1000);
    CHECK(p.status == 200);
    CHECK(p.end == 1000u);
  }
  SECTION("If-Range names another validator: the whole, current body") {
    auto p = plan_range({{"range", "bytes=0-1"}, {"if-range", "\"v2\""}}, stored, 200, 1000);
    CHECK(p.status == 200);
    CHECK(p.content_range.empty());
  }
  SECTION("If-Range matches: the range") {
    auto p = plan_range({{"range", "bytes=0-1"}, {"if-range", "\"v1\""}}, stored, 200, 1000);
    CHECK(p.status == 206);
  }
  SECTION("a stored status other than 200 is sent as it is") {
    auto p = plan_range({{"range", "bytes=0-1"}}, stored, 404, 1000);
    CHECK(p.status == 404);
  }
  SECTION("unknown length (a fill without Content-Length): the whole body") {
    auto p = plan_range({{"range", "bytes=0-1"}}, stored, 200, std::nullopt);
    CHECK(p.status == 200);
    CHECK_FALSE(p.end.has_value());
  }
}

TEST_CASE("where a single range starts", "[serve_plan]") {
  CHECK(range_start({}) == 0);
  CHECK(range_start({{"range", "bytes=4096-"}}) == 4096);
  CHECK(range_start({{"range", "bytes=-10"}}) == UINT64_MAX);  // a suffix starts at the end
  CHECK(range_start({{"range", "bytes=0-1,9-10"}}) == 0);
  CHECK(range_start({{"range", "nonsense"}}) == 0);
}

TEST_CASE("a client sees the stored fields with our Via, Age and Cache-Status", "[serve_plan]") {
  const header_list from_origin{{"content-type", "text/html"},     {"age", "999"},
                                {"content-length", "12"},          {"accept-ranges", "none"},
                                {"cache-status", "upstream; hit"}, {"via", "1.1 cdn"}};
  auto h = client_headers(from_origin, std::chrono::seconds(42), "storecache; hit");
  CHECK(find_header(h, "content-type") == "text/html");
  CHECK(find_header(h, "age") == "42");
  CHECK(find_header(h, "via") == "1.1 cdn, 1.1 storecache");
  CHECK(find_header(h, "cache-status") == "storecache; hit");
  CHECK_FALSE(find_header(h, "content-length").has_value());  // the sender sets its own
  CHECK_FALSE(find_header(h, "accept-ranges").has_value());
  CHECK(h.size() == 4);

  auto no_age = client_headers({}, std::nullopt, "storecache; fwd=miss");
  CHECK(find_header(no_age, "via") == "1.1 storecache");
  CHECK_FALSE(find_header(no_age, "age").has_value());
}
