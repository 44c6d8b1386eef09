// An exchange wrapper that notes what the accounting step needs and the handler's paths do not
// report: when the response head went out (time to first byte) and what kind of content it
// carries (from its Content-Type and the request path). It also holds the request body to
// limits.max_request_body whatever its framing (HTTP/2 without content-length, chunked): a read
// past it fails, and body_refusal() says 413. Everything else is passed through.
#pragma once

#include <boost/beast/http/error.hpp>
#include <chrono>
#include <limits>

#include "http/exchange.hpp"
#include "usage/content_class.hpp"

namespace storecache::account {

namespace asio = boost::asio;
using boost::system::error_code;

class observed_exchange final : public http::exchange {
 public:
  explicit observed_exchange(http::exchange& inner,
                             std::uint64_t max_body = std::numeric_limits<std::uint64_t>::max())
      : inner_(inner), max_body_(max_body) {}

  // The path the content class falls back on when Content-Type is missing or generic.
  void set_path(std::string_view path) { path_ = path; }

  std::chrono::steady_clock::time_point head_time() const { return head_time_; }
  usage::content_class content() const { return content_; }

  const http::request_head& request() const override { return inner_.request(); }
  asio::awaitable<std::size_t> read_body(asio::mutable_buffer buf, error_code& ec) override {
    if (over_limit_) {
      ec = boost::beast::http::error::body_limit;
      co_return 0;
    }
    // Never more than one byte past the limit: enough to know, not enough to matter.
    const std::uint64_t room = max_body_ - std::min(body_bytes_, max_body_);
    if (room < buf.size()) buf = asio::buffer(buf.data(), static_cast<std::size_t>(room) + 1);
    const std::size_t n = co_await inner_.read_body(buf, ec);
    body_bytes_ += n;
    if (!ec && body_bytes_ > max_body_) {
      over_limit_ = true;
      ec = boost::beast::http::error::body_limit;
      co_return 0;
    }
    co_return n;
  }
  asio::awaitable<error_code> send_interim(const http::response_head& head) override {
    return inner_.send_interim(head);  // not the first byte of the response: no head_time
  }
  asio::awaitable<error_code> send_head(const http::response_head& head, bool end_stream) override {
    head_time_ = std::chrono::steady_clock::now();
    content_ = usage::classify_content(
        find_header(head.headers, "content-type").value_or(std::string_view{}), path_);
    return inner_.send_head(head, end_stream);
  }
  asio::awaitable<error_code> send_body(asio::const_buffer data) override {
    return inner_.send_body(data);
  }
  asio::awaitable<error_code> finish() override { return inner_.finish(); }
  void abort() override { inner_.abort(); }
  bool head_sent() const override { return inner_.head_sent(); }
  bool client_gone() const override { return inner_.client_gone(); }
  std::optional<access::refusal> body_refusal() const override {
    if (over_limit_) return access::refusal::body_too_large;
    return inner_.body_refusal();
  }

 private:
  http::exchange& inner_;
  std::uint64_t max_body_;
  std::uint64_t body_bytes_ = 0;
  bool over_limit_ = false;
  std::string_view path_;
  std::chrono::steady_clock::time_point head_time_{};
  usage::content_class content_ = usage::content_class::other;
};

}  // namespace storecache::account
