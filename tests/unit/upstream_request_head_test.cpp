// The request head storecache sends to an origin (upstream/request_head): our Host and
// forwarding fields, never the client's; hop-by-hop fields and those its Connection names
// dropped; a fill asks for the whole object; the body's framing.
#include <catch2/catch.hpp>

#include <boost/asio/ip/address.hpp>

#include "upstream/request_head.hpp"

using namespace storecache;
using storecache::upstream::build_upstream_head;

namespace {

http::request_head device_request() {
  http::request_head r;
  r.method = "GET";
  r.authority = "learn.example.com";
  r.target = "/v/intro.mp4";
  r.client_address = boost::asio::ip::make_address("192.0.2.7");
  r.headers = {{"user-agent", "Mozilla/5.0 (iPhone)"},
               {"range", "bytes=0-1"},
               {"if-none-match", "\"v1\""},
               {"x-forwarded-for", "10.6.6.6"},  // forged by the client
               {"forwarded", "for=10.6.6.6"},
               {"connection", "keep-alive, x-secret"},
               {"x-secret", "hop"},
               {"keep-alive", "timeout=5"},
               {"te", "trailers"},
               {"via", "1.1 phone-proxy"}};
  return r;
}

bool has_line(const std::string& head, const std::string& line) {
  return head.find("\r\n" + line + "\r\n") != std::string::npos;
}

}  // namespace

TEST_CASE("a pass-through request keeps the device's fields, not its forwarding claims",
          "[request_head]") {
  auto h = build_upstream_head(device_request(), "GET", "/v/intro.mp4", "origin.test", false);
  const auto& t = h.text;
  CHECK(t.rfind("GET /v/intro.mp4 HTTP/1.1\r\nhost: origin.test\r\n", 0) == 0);
  CHECK(t.size() >= 4);
  CHECK(t.substr(t.size() - 4) == "\r\n\r\n");
  CHECK(has_line(t, "user-agent: Mozilla/5.0 (iPhone)"));
  CHECK(has_line(t, "range: bytes=0-1"));  // a pass-through keeps the client's range
  CHECK(has_line(t, "if-none-match: \"v1\""));
  CHECK(has_line(t, "x-forwarded-for: 192.0.2.7"));
  CHECK(t.find("10.6.6.6") == std::string::npos);
  CHECK(has_line(t, "forwarded: for=192.0.2.7;host=\"learn.example.com\";proto=https"));
  CHECK(has_line(t, "x-forwarded-host: learn.example.com"));
  CHECK(has_line(t, "via: 1.1 phone-proxy, 1.1 storecache"));
  for (const char* dropped : {"x-secret", "keep-alive", "te:", "connection"})
    CHECK(t.find(dropped) == std::string::npos);
  CHECK_FALSE(h.chunked);
}

TEST_CASE("a fill asks for the whole object with our validators only", "[request_head]") {
  auto h = build_upstream_head(device_request(), "GET", "/v/intro.mp4", "origin.test", true,
                               {{"if-none-match", "\"stored\""}});
  CHECK(h.text.find("range:") == std::string::npos);
  CHECK(h.text.find("\"v1\"") == std::string::npos);
  CHECK(has_line(h.text, "if-none-match: \"stored\""));
}

TEST_CASE("request bodies are framed by their length, or chunked", "[request_head]") {
  auto r = device_request();
  r.method = "POST";
  r.has_body = true;
  r.content_length = 42;
  r.headers.push_back({"content-length", "999"});  // ours replaces the client's
  auto with_length = build_upstream_head(r, "POST", "/quiz", "origin.test", false);
  CHECK(has_line(with_length.text, "content-length: 42"));
  CHECK(with_length.text.find("999") == std::string::npos);
  CHECK_FALSE(with_length.chunked);

  r.content_length.reset();
  auto chunked = build_upstream_head(r, "POST", "/quiz", "origin.test", false);
  CHECK(has_line(chunked.text, "transfer-encoding: chunked"));
  CHECK(chunked.chunked);

  r.has_body = false;
  auto empty = build_upstream_head(r, "POST", "/quiz", "origin.test", false);
  CHECK(has_line(empty.text, "content-length: 0"));
}

TEST_CASE("an IPv6 client is quoted in Forwarded", "[request_head]") {
  auto r = device_request();
  r.client_address = boost::asio::ip::make_address("2001:db8::7");
  auto h = build_upstream_head(r, "GET", "/", "origin.test", false);
  CHECK(has_line(h.text, "x-forwarded-for: 2001:db8::7"));
  CHECK(h.text.find("forwarded: for=\"[2001:db8::7]\";") != std::string::npos);
}
