// The client side towards an origin: a per-worker, per-site pool of keep-alive HTTP/1.1
// connections (TLS verified against the site's CA and name), and one request/response over it.
//
// Use:  upstream_call call(pool);
//       auto err = co_await call.start(head_text, body_source);   // sends, reads response head
//       call.response() ...; while ((n = co_await call.read_body(buf, err)) > 0) ...;
//       call.done();  // body read to the end: the connection goes back to the pool
// Destroying a call that is not done() closes its connection (its state is unknown).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "config/config.hpp"
#include "http/exchange.hpp"
#include "http/tls_stream.hpp"
#include "upstream/upstream_error.hpp"
#include "upstream/wan_budget.hpp"

namespace storecache::upstream {

namespace asio = boost::asio;
using cache::header_list;

// One keep-alive connection to an origin, TLS or (with the explicit opt-in) plain.
class upstream_connection {
 public:
  std::unique_ptr<http::tls_stream> tls;
  std::unique_ptr<boost::beast::tcp_stream> plain;
  boost::beast::flat_buffer buffer;  // bytes read past the last response stay with it

  boost::beast::tcp_stream& tcp() { return tls ? tls->next_layer() : *plain; }

  // Runs f with whichever stream this connection has; f returns the same awaitable for both.
  template <typename F>
  auto with_stream(F&& f) {
    return tls ? f(*tls) : f(*plain);
  }

  // A pooled connection the origin has closed (EOF pending) or that holds unexpected bytes
  // (a close_notify) must not be reused.
  bool looks_alive();
};

class upstream_pool {
 public:
  // budget: the WAN budget every body read of this pool's calls goes through (null: none).
  upstream_pool(asio::any_io_executor ex, const config::site& site, const config::timeouts& t,
                std::shared_ptr<asio::ssl::context> tls, wan_budget* budget = nullptr);
  ~upstream_pool();

  // An idle pooled connection (reused = true) or a newly connected one; nullptr on failure.
  // detail gets a human-readable reason on failure, for the log.
  asio::awaitable<std::unique_ptr<upstream_connection>> acquire(bool& reused, upstream_error& err,
                                                                std::string& detail);
  void release(std::unique_ptr<upstream_connection> c);

  const config::timeouts& timeouts() const { return timeouts_; }
  const std::string& host_header() const { return host_header_; }
  wan_budget* budget() const { return budget_; }
  const std::string& site_name() const { return site_name_; }

 private:
  asio::awaitable<std::unique_ptr<upstream_connection>> connect(upstream_error& err,
                                                                std::string& detail);

  asio::any_io_executor ex_;
  std::string host_, port_, sni_, host_header_;
  std::size_t max_idle_;
  config::timeouts timeouts_;
  std::shared_ptr<asio::ssl::context> tls_;  // null: plain http upstream (explicit opt-in)
  wan_budget* budget_;
  std::string site_name_;  // the budget's per-site cap
  std::deque<std::unique_ptr<upstream_connection>> idle_;
  asio::ip::tcp::resolver::results_type resolved_;
  std::chrono::steady_clock::time_point resolved_at_{};
};

// Interim (1xx) responses an upstream may send before the final one; one more is a bad
// response (502): an upstream that sends 1xx forever must not hold a request forever.
inline constexpr int max_interim_responses = 8;

class upstream_call {
 public:
  explicit upstream_call(upstream_pool& pool) : pool_(pool) {}
  ~upstream_call();
  upstream_call(const upstream_call&) = delete;
  upstream_call& operator=(const upstream_call&) = delete;

  // Sends the request head (complete text, "\r\n\r\n"-terminated) and, when body is given, the
  // request body read from it (Content-Length or chunked framing must already be in the head:
  // chunked = true frames it here). Then waits for the final response head.
  asio::awaitable<upstream_error> start(std::string head, http::exchange* body, bool chunked,
                                        bool head_request);
  // During start(), interim responses (102, 103, ...) go to this exchange (the device whose
  // request this is); 100 is not passed on (the front end answers the device's own
  // Expect: 100-continue) and 101 is a bad response. Without it they are read and dropped.
  void forward_interim_to(http::exchange* ex) { interim_to_ = ex; }

  unsigned status() const;
  header_list response_headers() const;  // hop-by-hop fields removed
  std::optional<std::uint64_t> content_length() const;
  bool body_expected() const;

  // Whom the body is read for, asked before each read under the WAN budget (default: a device).
  // A fill's answer changes when a device joins a background fill.
  void classify(std::function<fetch_class()> f) { classify_ = std::move(f); }

  // Reads response body bytes; 0 with err == none at the end. Under the pool's WAN budget,
  // waits for it first.
  asio::awaitable<std::size_t> read_body(asio::mutable_buffer buf, upstream_error& err);
  // The body was read to the end: return the connection to the pool if it can be reused.
  void done();

  // Why the last operation failed, for the log ("" if it did not).
  const std::string& error_detail() const { return detail_; }

 private:
  asio::awaitable<upstream_error> send_and_read_head(const std::string& head, http::exchange* body,
                                                     bool chunked, bool& body_started);
  upstream_pool& pool_;
  std::unique_ptr<upstream_connection> conn_;
  std::optional<boost::beast::http::response_parser<boost::beast::http::buffer_body>> parser_;
  bool head_request_ = false;
  http::exchange* interim_to_ = nullptr;
  int interim_forwarded_ = 0;
  std::string detail_;
  std::function<fetch_class()> classify_;
};

// True for fields that describe one connection, not the message (RFC 9110 §7.6.1).
bool is_hop_by_hop(std::string_view lower_name);

}  // namespace storecache::upstream
