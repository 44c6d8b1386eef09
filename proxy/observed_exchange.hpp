// An exchange wrapper that notes what the accounting step needs and the handler's paths do not
// report: when the response head went out (time to first byte) and what kind of content it
// carries (from its Content-Type and the request path). Everything else is passed through.
#pragma once

#include <chrono>

#include "proxy/exchange.hpp"
#include "usage/content_class.hpp"

namespace storecache::proxy {

class observed_exchange final : public exchange {
 public:
  explicit observed_exchange(exchange& inner) : inner_(inner) {}

  // The path the content class falls back on when Content-Type is missing or generic.
  void set_path(std::string_view path) { path_ = path; }

  std::chrono::steady_clock::time_point head_time() const { return head_time_; }
  usage::content_class content() const { return content_; }

  const request_head& request() const override { return inner_.request(); }
  asio::awaitable<std::size_t> read_body(asio::mutable_buffer buf, error_code& ec) override {
    return inner_.read_body(buf, ec);
  }
  asio::awaitable<error_code> send_interim(const response_head& head) override {
    return inner_.send_interim(head);  // not the first byte of the response: no head_time
  }
  asio::awaitable<error_code> send_head(const response_head& head, bool end_stream) override {
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

 private:
  exchange& inner_;
  std::string_view path_;
  std::chrono::steady_clock::time_point head_time_{};
  usage::content_class content_ = usage::content_class::other;
};

}  // namespace storecache::proxy
