// access/request_framing: the HTTP/1.1 head scan (obs-fold, bare CR/LF, long targets, head
// size) fed whole and a byte at a time, and the Transfer-Encoding verdicts; linked against
// storecache_access alone.
#include <catch2/catch.hpp>
#include <string>
#include <string_view>

#include "access/request_framing.hpp"

using namespace storecache::access;
using state = head_scanner::state;

namespace {

head_scanner::result scan_whole(std::string_view head, std::size_t max_head = 16384,
                                std::size_t max_target = 8192) {
  head_scanner s(max_head, max_target);
  return s.scan(head);
}

// The same bytes arriving one at a time: the verdict must not depend on how they were cut.
head_scanner::result scan_bytewise(std::string_view head, std::size_t max_head = 16384,
                                   std::size_t max_target = 8192) {
  head_scanner s(max_head, max_target);
  head_scanner::result r;
  for (std::size_t n = 1; n <= head.size(); ++n) {
    r = s.scan(head.substr(0, n));
    if (r.st != state::need_more) break;
  }
  return r;
}

void check_both(std::string_view head, state st, refusal why = refusal::malformed) {
  for (const auto& r : {scan_whole(head), scan_bytewise(head)}) {
    INFO(std::string(head));
    CHECK(r.st == st);
    if (st == state::refused) CHECK(to_string(r.why) == to_string(why));
  }
}

}  // namespace

TEST_CASE("head scan: a plain head is complete at its empty line", "[access][framing]") {
  const std::string head = "GET /a HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n";
  auto r = scan_whole(head + "body bytes GET /smuggled HTTP/1.1\r\n\r\n");
  CHECK(r.st == state::complete);
  CHECK(r.head_bytes == head.size());
  CHECK(scan_bytewise(head).head_bytes == head.size());
  check_both("GET /a HTTP/1.1\r\nHost: x\r\n", state::need_more);
  check_both("GET /a HTTP/1.1\r", state::need_more);
}

TEST_CASE("head scan: obs-fold and whitespace before the first field", "[access][framing]") {
  check_both("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", state::refused,
             refusal::line_ending);
  check_both("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n", state::refused,
             refusal::line_ending);
  check_both("GET / HTTP/1.1\r\n Host: x\r\n\r\n", state::refused, refusal::line_ending);
  // Whitespace inside a line is the parser's business, not a fold.
  check_both("GET / HTTP/1.1\r\nHost: x\r\nX-A: a  b\r\n\r\n", state::complete);
}

TEST_CASE("head scan: bare LF and bare CR", "[access][framing]") {
  check_both("GET / HTTP/1.1\nHost: x\r\n\r\n", state::refused, refusal::line_ending);
  check_both("GET / HTTP/1.1\r\nHost: x\n\n", state::refused, refusal::line_ending);
  check_both("GET / HTTP/1.1\r\nHost: x\r\n\n", state::refused, refusal::line_ending);
  check_both("GET / HTTP/1.1\r\nHost: x\rX-A: b\r\n\r\n", state::refused, refusal::line_ending);
  check_both("\n", state::refused, refusal::line_ending);
}

TEST_CASE("head scan: request-target limit, early and exact", "[access][framing]") {
  const std::string at_limit = "GET /" + std::string(99, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n";
  CHECK(scan_whole(at_limit, 16384, 100).st == state::complete);
  const std::string over = "GET /" + std::string(100, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n";
  CHECK(scan_whole(over, 16384, 100).why == refusal::uri_too_long);
  CHECK(scan_bytewise(over, 16384, 100).why == refusal::uri_too_long);
  // A request line that never ends is refused as soon as no target within the limit fits.
  const std::string endless = "GET /" + std::string(1000, 'a');
  auto r = scan_bytewise(endless, 16384, 100);
  CHECK(r.st == state::refused);
  CHECK(r.why == refusal::uri_too_long);
  // ... also when it is longer than the whole head may be (414 wins over 431).
  CHECK(scan_whole("GET /" + std::string(20000, 'a'), 16384, 8192).why == refusal::uri_too_long);
}

TEST_CASE("head scan: head size limit", "[access][framing]") {
  const std::string big = "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(2000, 'b');
  CHECK(scan_whole(big, 1024, 512).why == refusal::header_too_large);
  CHECK(scan_bytewise(big, 1024, 512).why == refusal::header_too_large);
  CHECK(scan_whole(big + "\r\n\r\n", 1024, 512).why == refusal::header_too_large);
  CHECK(scan_whole(big + "\r\n\r\n", 4096, 512).st == state::complete);
}

TEST_CASE("head scan: the verdict sticks", "[access][framing]") {
  head_scanner s(16384, 8192);
  CHECK(s.scan("GET / HTTP/1.1\r\nHost: x\r\n\r\n").st == state::complete);
  CHECK(s.scan("GET / HTTP/1.1\r\nHost: x\r\n\r\nmore").head_bytes == 27);
}

TEST_CASE("request_target", "[access][framing]") {
  CHECK(request_target("GET /x?y HTTP/1.1") == "/x?y");
  CHECK(request_target("GET https://h/x HTTP/1.1") == "https://h/x");
  CHECK(request_target("GARBAGE").empty());
}

TEST_CASE("Transfer-Encoding verdicts", "[access][framing]") {
  using V = std::vector<std::string_view>;
  CHECK_FALSE(check_transfer_encoding({}, 1));
  CHECK_FALSE(check_transfer_encoding(V{"chunked"}, 1));
  CHECK_FALSE(check_transfer_encoding(V{"Chunked"}, 1));
  CHECK_FALSE(check_transfer_encoding(V{" chunked ,"}, 1));
  auto why = [](V v, unsigned minor = 1) { return check_transfer_encoding(v, minor)->why; };
  CHECK(why(V{"gzip"}) == refusal::framing);  // last is not chunked: 400
  CHECK(why(V{"chunked, gzip"}) == refusal::framing);
  CHECK(why(V{"chunked", "gzip"}) == refusal::framing);
  CHECK(why(V{"chunked, chunked"}) == refusal::framing);       // chunked twice
  CHECK(why(V{"gzip, chunked"}) == refusal::transfer_coding);  // 501
  CHECK(why(V{"gzip", "chunked"}) == refusal::transfer_coding);
  CHECK(why(V{"chunked"}, 0) == refusal::framing);  // HTTP/1.0
  CHECK(why(V{""}) == refusal::framing);
  CHECK(why(V{"chunked;x=1"}) == refusal::framing);
  CHECK(status_of(refusal::transfer_coding) == 501);
  CHECK(status_of(refusal::uri_too_long) == 414);
  CHECK(to_string(refusal::body_too_large) == "body_too_large");
  CHECK(status_of(refusal::header_timeout) == 408);
}
