#include "proxy/local_answer.hpp"

#include <fmt/format.h>

#include <ctime>

#include "cache/serve_plan.hpp"

namespace storecache::proxy {

namespace {

std::string_view reason_phrase(unsigned status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 421:
      return "Misdirected Request";
    case 431:
      return "Request Header Fields Too Large";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "";
  }
}

}  // namespace

std::string http_date_now() {
  thread_local std::time_t cached_second = 0;
  thread_local std::string cached;
  std::time_t now = std::time(nullptr);
  if (now != cached_second) {
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buf[64];
    std::size_t n = std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    cached.assign(buf, n);
    cached_second = now;
  }
  return cached;
}

asio::awaitable<void> respond_local(http::exchange& ex, unsigned status, std::string_view message,
                                    header_list extra) {
  if (ex.head_sent()) {
    ex.abort();
    co_return;
  }
  std::string body = fmt::format("{} {}\n{}\n", status, reason_phrase(status), message);
  http::response_head head;
  head.status = status;
  head.headers = std::move(extra);
  head.headers.push_back({"content-type", "text/plain; charset=utf-8"});
  head.headers.push_back({"cache-control", "no-store"});
  head.headers.push_back({"date", http_date_now()});
  head.content_length = body.size();
  bool head_only = ex.request().method == "HEAD";
  if (co_await ex.send_head(head, head_only)) co_return;
  if (head_only) co_return;
  if (co_await ex.send_body(asio::buffer(body))) co_return;
  co_await ex.finish();
}

// 304 to a client whose validators match what we hold (RFC 9110 §13.1): the head without the
// fields that describe a body.
asio::awaitable<void> send_not_modified(http::exchange& ex, header_list headers,
                                        unsigned& status_sent) {
  http::response_head nm;
  nm.status = 304;
  nm.headers = std::move(headers);
  std::erase_if(nm.headers, [](const header& h) {
    return h.name.starts_with("content-") || h.name == "last-modified";
  });
  status_sent = 304;
  co_await ex.send_head(nm, true);
}

// 416 with the length the client may ask within.
asio::awaitable<void> send_unsatisfiable(http::exchange& ex, const cache::range_plan& plan,
                                         unsigned& status_sent) {
  status_sent = 416;
  // (a named list: g++ 12 miscompiles an initializer list inside co_await)
  header_list extra;
  extra.push_back({"content-range", plan.content_range});
  co_await respond_local(ex, 416, "range not satisfiable", std::move(extra));
}

}  // namespace storecache::proxy
