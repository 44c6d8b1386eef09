#include "admin/listener.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "log/log.hpp"

namespace storecache::admin {

namespace asio = boost::asio;
using boost::system::error_code;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using asio::redirect_error;
using asio::use_awaitable;

namespace {

bhttp::response<bhttp::string_body> answer(const bhttp::request<bhttp::empty_body>& req,
                                           admin_state& state) {
  bhttp::response<bhttp::string_body> res;
  res.version(11);
  res.keep_alive(req.keep_alive());
  res.set(bhttp::field::cache_control, "no-store");
  std::string_view target = req.target();
  target = target.substr(0, target.find('?'));
  if (req.method() != bhttp::verb::get && req.method() != bhttp::verb::head) {
    res.result(bhttp::status::method_not_allowed);
    res.set(bhttp::field::allow, "GET, HEAD");
    res.body() = "method not allowed\n";
  } else if (target == "/healthz") {
    bool draining = state.draining();
    res.result(draining ? bhttp::status::service_unavailable : bhttp::status::ok);
    res.set(bhttp::field::content_type, "text/plain; charset=utf-8");
    res.body() = draining ? "draining\n" : "ok\n";
  } else if (target == "/metrics") {
    res.result(bhttp::status::ok);
    res.set(bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.body() = state.metrics();
  } else if ((target == "/" || target == "/index.html") && state.status_page) {
    res.result(bhttp::status::ok);
    res.set(bhttp::field::content_type, "text/html; charset=utf-8");
    // Self-contained: nothing may load from elsewhere, inline styles only, no script at all.
    res.set("content-security-policy",
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
            "form-action 'none'; frame-ancestors 'none'");
    res.set("x-content-type-options", "nosniff");
    res.body() = state.status_page();
  } else {
    res.result(bhttp::status::not_found);
    res.set(bhttp::field::content_type, "text/plain; charset=utf-8");
    res.body() = "not found: try /, /metrics or /healthz\n";
  }
  res.prepare_payload();
  if (req.method() == bhttp::verb::head) res.body().clear();
  return res;
}

asio::awaitable<void> serve(beast::tcp_stream stream, admin_state& state) {
  beast::flat_buffer buffer;
  for (;;) {
    error_code ec;
    bhttp::request_parser<bhttp::empty_body> parser;
    parser.header_limit(8 * 1024);
    stream.expires_after(std::chrono::seconds(30));
    co_await bhttp::async_read(stream, buffer, parser, redirect_error(use_awaitable, ec));
    if (ec) co_return;
    auto res = answer(parser.get(), state);
    bool head = parser.get().method() == bhttp::verb::head;
    bhttp::serializer<false, bhttp::string_body> sr(res);
    if (head) sr.split(true);
    if (head)
      co_await bhttp::async_write_header(stream, sr, redirect_error(use_awaitable, ec));
    else
      co_await bhttp::async_write(stream, sr, redirect_error(use_awaitable, ec));
    if (ec || !res.keep_alive()) co_return;
  }
}

}  // namespace

asio::awaitable<void> run_admin(asio::ip::tcp::acceptor& acceptor, admin_state& state) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(use_awaitable));
    if (ec) {
      if (!acceptor.is_open() || ec == asio::error::operation_aborted) co_return;
      log::warn("admin: accept failed: {}", ec.message());
      continue;
    }
    asio::co_spawn(acceptor.get_executor(), serve(beast::tcp_stream(std::move(socket)), state),
                   asio::detached);
  }
}

}  // namespace storecache::admin
