#include "upstream/client.hpp"

#include <fmt/format.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>

#include "log/log.hpp"
#include "upstream/client_tls.hpp"

namespace storecache::upstream {

namespace beast = boost::beast;
namespace bhttp = beast::http;
using asio::redirect_error;
using asio::use_awaitable;
using boost::system::error_code;

bool upstream_connection::looks_alive() {
  if (buffer.size() != 0) return false;
  char byte;
  ssize_t n = ::recv(tcp().socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

bool is_hop_by_hop(std::string_view n) {
  return n == "connection" || n == "keep-alive" || n == "proxy-connection" || n == "te" ||
         n == "trailer" || n == "transfer-encoding" || n == "upgrade" ||
         n == "proxy-authenticate" || n == "proxy-authorization";
}

upstream_pool::upstream_pool(asio::any_io_executor ex, const config::site& site,
                             const config::timeouts& t, std::shared_ptr<asio::ssl::context> tls,
                             wan_budget* budget)
    : ex_(std::move(ex)),
      host_(site.upstream_host),
      port_(std::to_string(site.upstream_port)),
      sni_(site.upstream_sni.empty() ? site.upstream_host : site.upstream_sni),
      host_header_(site.upstream_host_header),
      max_idle_(site.upstream_max_idle),
      timeouts_(t),
      tls_(std::move(tls)),
      budget_(budget),
      site_name_(site.name()) {
  if (host_header_.empty()) {
    bool v6 = host_.find(':') != std::string::npos;
    host_header_ = v6 ? "[" + host_ + "]" : host_;
    bool default_port = (tls_ && site.upstream_port == 443) || (!tls_ && site.upstream_port == 80);
    if (!default_port) host_header_ += ":" + port_;
  }
}

upstream_pool::~upstream_pool() = default;

asio::awaitable<std::unique_ptr<upstream_connection>> upstream_pool::acquire(bool& reused,
                                                                             upstream_error& err,
                                                                             std::string& detail) {
  while (!idle_.empty()) {
    auto c = std::move(idle_.back());
    idle_.pop_back();
    if (c->looks_alive()) {
      reused = true;
      co_return c;
    }
  }
  reused = false;
  co_return co_await connect(err, detail);
}

void upstream_pool::release(std::unique_ptr<upstream_connection> c) {
  if (max_idle_ == 0) return;
  if (idle_.size() >= max_idle_) idle_.pop_front();  // keep the most recently used
  c->tcp().expires_never();
  idle_.push_back(std::move(c));
}

asio::awaitable<std::unique_ptr<upstream_connection>> upstream_pool::connect(upstream_error& err,
                                                                             std::string& detail) {
  using namespace asio::experimental::awaitable_operators;
  auto now = std::chrono::steady_clock::now();
  // Resolve at most every 30 s: a DNS round trip per connection would add WAN latency.
  if (resolved_.empty() || now - resolved_at_ > std::chrono::seconds(30)) {
    asio::ip::tcp::resolver resolver(ex_);
    asio::steady_timer timer(ex_, timeouts_.upstream_connect);
    auto result = co_await (resolver.async_resolve(host_, port_, asio::as_tuple(use_awaitable)) ||
                            timer.async_wait(asio::as_tuple(use_awaitable)));
    if (result.index() == 1) {
      err = upstream_error::timeout;
      detail = "resolving " + host_ + " timed out";
      co_return nullptr;
    }
    auto [rec, results] = std::get<0>(std::move(result));
    if (rec) {
      err = upstream_error::resolve;
      detail = "resolving " + host_ + ": " + rec.message();
      co_return nullptr;
    }
    resolved_ = std::move(results);
    resolved_at_ = now;
  }

  auto c = std::make_unique<upstream_connection>();
  // Beast reads max(512, free capacity) bytes at a time: without room, a body would arrive
  // in 512-byte reads (and go out in 512-byte writes).
  c->buffer.reserve(64 * 1024);
  if (tls_)
    c->tls = std::make_unique<http::tls_stream>(ex_, *tls_);
  else
    c->plain = std::make_unique<beast::tcp_stream>(ex_);
  auto& tcp = c->tcp();
  error_code ec;
  tcp.expires_after(timeouts_.upstream_connect);
  co_await tcp.async_connect(resolved_, redirect_error(use_awaitable, ec));
  if (ec) {
    err = ec == beast::error::timeout ? upstream_error::timeout : upstream_error::connect;
    detail = fmt::format("connecting to {}:{}: {}", host_, port_, ec.message());
    resolved_ = {};  // the address may have moved
    co_return nullptr;
  }
  tcp.socket().set_option(asio::ip::tcp::no_delay(true), ec);
  if (c->tls) {
    SSL* ssl = c->tls->native_handle();
    error_code addr_ec;
    asio::ip::make_address(sni_, addr_ec);
    if (addr_ec) {
      SSL_set_tlsext_host_name(ssl, sni_.c_str());
      SSL_set1_host(ssl, sni_.c_str());  // verify the certificate names this host
    } else {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), sni_.c_str());
    }
    offer_upstream_session(ssl);
    co_await c->tls->async_handshake(asio::ssl::stream_base::client,
                                     redirect_error(use_awaitable, ec));
    if (ec) {
      err = ec == beast::error::timeout ? upstream_error::timeout : upstream_error::tls;
      long verify = SSL_get_verify_result(ssl);
      detail = fmt::format("TLS with {}:{} (name {}): {}{}", host_, port_, sni_, ec.message(),
                           verify == X509_V_OK ? std::string()
                                               : std::string("; certificate: ") +
                                                     X509_verify_cert_error_string(verify));
      co_return nullptr;
    }
  }
  err = upstream_error::none;
  co_return c;
}

upstream_call::~upstream_call() = default;  // a connection still held here is closed

asio::awaitable<upstream_error> upstream_call::start(std::string head, http::exchange* body,
                                                     bool chunked, bool head_request) {
  head_request_ = head_request;
  // Interim responses go to the device only while the head is awaited (the call may outlive it).
  struct clear_sink {
    http::exchange*& to;
    ~clear_sink() { to = nullptr; }
  } clear{interim_to_};
  for (int attempt = 0;; ++attempt) {
    bool reused = false;
    upstream_error err = upstream_error::none;
    conn_ = co_await pool_.acquire(reused, err, detail_);
    if (!conn_) co_return err;
    bool body_started = false;
    err = co_await send_and_read_head(head, body, chunked, body_started);
    if (err == upstream_error::none) co_return err;
    conn_.reset();
    // A reused connection may have been closed by the origin just as we sent: retry once on
    // a fresh one, unless request body bytes were already consumed (they cannot be replayed).
    // Nor when an interim response was passed on: the device would see it twice.
    if (!(reused && attempt == 0 && !body_started && interim_forwarded_ == 0 &&
          err == upstream_error::reset))
      co_return err;
    log::debug("upstream: reused connection failed ({}), retrying on a new one", detail_);
  }
}

asio::awaitable<upstream_error> upstream_call::send_and_read_head(const std::string& head,
                                                                  http::exchange* body,
                                                                  bool chunked,
                                                                  bool& body_started) {
  const auto& t = pool_.timeouts();
  auto& tcp = conn_->tcp();
  auto& buffer = conn_->buffer;
  co_return co_await conn_->with_stream([&](auto& s) -> asio::awaitable<upstream_error> {
    error_code ec;
    tcp.expires_after(t.upstream_idle);
    co_await asio::async_write(s, asio::buffer(head), redirect_error(use_awaitable, ec));
    if (ec) {
      detail_ = "sending request head: " + ec.message();
      co_return ec == beast::error::timeout ? upstream_error::timeout : upstream_error::reset;
    }
    if (body) {
      std::vector<char> chunk(64 * 1024);
      for (;;) {
        error_code rec;
        std::size_t n = co_await body->read_body(asio::buffer(chunk), rec);
        body_started = true;
        if (rec) {
          detail_ = "reading the client's request body: " + rec.message();
          co_return upstream_error::client;
        }
        tcp.expires_after(t.upstream_idle);
        if (chunked) {
          std::string size_line = fmt::format("{:x}\r\n", n);
          std::array<asio::const_buffer, 3> parts{
              asio::buffer(size_line), asio::buffer(chunk.data(), n), asio::buffer("\r\n", 2)};
          if (n == 0) parts[2] = asio::buffer("\r\n", 2);
          co_await asio::async_write(s, parts, redirect_error(use_awaitable, ec));
        } else if (n > 0) {
          co_await asio::async_write(s, asio::buffer(chunk.data(), n),
                                     redirect_error(use_awaitable, ec));
        }
        if (ec) {
          detail_ = "sending request body: " + ec.message();
          co_return ec == beast::error::timeout ? upstream_error::timeout : upstream_error::reset;
        }
        if (n == 0) break;
      }
    }
    // The response head, after any interim 1xx responses (one upstream_first_byte for all).
    tcp.expires_after(t.upstream_first_byte);
    for (int interim = 0;; ++interim) {
      parser_.emplace();
      parser_->body_limit(boost::none);
      parser_->header_limit(64 * 1024);
      if (head_request_) parser_->skip(true);
      co_await bhttp::async_read_header(s, buffer, *parser_, redirect_error(use_awaitable, ec));
      if (ec) {
        detail_ = "reading response head: " + ec.message();
        if (ec == beast::error::timeout) co_return upstream_error::timeout;
        if (ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
            ec == asio::error::connection_reset || ec == asio::ssl::error::stream_truncated)
          co_return upstream_error::reset;
        co_return upstream_error::bad_response;
      }
      const unsigned status = parser_->get().result_int();
      if (status >= 200) break;
      if (status == 101) {  // never asked for: Upgrade is hop-by-hop and stripped
        detail_ = "101 Switching Protocols to a request without Upgrade";
        co_return upstream_error::bad_response;
      }
      if (interim == max_interim_responses) {
        detail_ = fmt::format("more than {} interim (1xx) responses", max_interim_responses);
        co_return upstream_error::bad_response;
      }
      if (interim_to_ != nullptr && status != 100) {
        http::response_head interim_head;
        interim_head.status = status;
        interim_head.headers = response_headers();
        ++interim_forwarded_;
        // A device gone here is seen when the final head is sent; the upstream goes on.
        (void)co_await interim_to_->send_interim(interim_head);
      }
    }
    co_return upstream_error::none;
  });
}

unsigned upstream_call::status() const {
  return parser_->get().result_int();
}

header_list upstream_call::response_headers() const {
  const auto& msg = parser_->get();
  // Fields named in Connection are hop-by-hop too.
  std::string connection_tokens;
  for (const auto& f : msg)
    if (beast::iequals(f.name_string(), "connection")) {
      connection_tokens += ',';
      connection_tokens += std::string_view(f.value());
    }
  for (auto& ch : connection_tokens)
    ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  auto named_in_connection = [&](std::string_view name) {
    std::size_t pos = 0;
    while ((pos = connection_tokens.find(name, pos)) != std::string::npos) {
      auto before = connection_tokens.find_last_not_of(" \t", pos == 0 ? 0 : pos - 1);
      auto after = connection_tokens.find_first_not_of(" \t", pos + name.size());
      bool start_ok = pos == 0 || connection_tokens[before] == ',';
      bool end_ok = after == std::string::npos || connection_tokens[after] == ',';
      if (start_ok && end_ok) return true;
      pos += name.size();
    }
    return false;
  };
  header_list out;
  out.reserve(static_cast<std::size_t>(std::distance(msg.begin(), msg.end())) + 1);
  for (const auto& f : msg) {
    std::string name(f.name_string());
    for (auto& ch : name)
      ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (is_hop_by_hop(name) || name == "content-length" || named_in_connection(name)) continue;
    out.push_back({std::move(name), std::string(f.value())});
  }
  return out;
}

std::optional<std::uint64_t> upstream_call::content_length() const {
  const auto& msg = parser_->get();
  unsigned s = msg.result_int();
  if (s == 204) return 0;  // no content, whatever the fields say (RFC 9110 §15.3.5)
  if (s == 304) return std::nullopt;
  if (parser_->chunked()) return std::nullopt;
  if (auto v = parser_->content_length()) return *v;
  // HEAD answers carry the length of the body a GET would get; pass it on.
  if (head_request_) {
    auto it = msg.find(bhttp::field::content_length);
    if (it != msg.end()) {
      std::uint64_t n = 0;
      for (char ch : std::string_view(it->value())) {
        if (ch < '0' || ch > '9') return std::nullopt;
        n = n * 10 + static_cast<std::uint64_t>(ch - '0');
      }
      return n;
    }
  }
  return std::nullopt;
}

bool upstream_call::body_expected() const {
  return !parser_->is_done();
}

asio::awaitable<std::size_t> upstream_call::read_body(asio::mutable_buffer buf,
                                                      upstream_error& err) {
  err = upstream_error::none;
  wan_budget* budget = pool_.budget();
  const fetch_class cls = classify_ ? classify_() : fetch_class::device;
  if (budget != nullptr && budget->capped() && !parser_->is_done())
    co_await budget->admit(cls, pool_.site_name());
  auto& tcp = conn_->tcp();
  auto& buffer = conn_->buffer;
  // read_some returns as soon as some body bytes arrived: followers and slow clients see
  // bytes as the origin sends them, not per 64 KiB. Loop while only framing was parsed.
  while (!parser_->is_done()) {
    auto& body = parser_->get().body();
    body.data = buf.data();
    body.size = buf.size();
    tcp.expires_after(pool_.timeouts().upstream_idle);
    error_code ec;
    co_await conn_->with_stream([&](auto& s) -> asio::awaitable<void> {
      co_await bhttp::async_read_some(s, buffer, *parser_, redirect_error(use_awaitable, ec));
    });
    if (ec == bhttp::error::need_buffer) ec = {};
    std::size_t n = buf.size() - body.size;
    if (ec) {
      detail_ = "reading response body: " + ec.message();
      err = ec == beast::error::timeout ? upstream_error::timeout : upstream_error::reset;
      conn_.reset();
      co_return 0;
    }
    if (parser_->is_done() && buffer.size() > 0) {
      // Bytes past the response's end (more than its Content-Length, or after the last
      // chunk): the upstream's framing cannot be trusted; its last bytes are not passed on.
      detail_ = fmt::format("{} bytes past the end of the response body", buffer.size());
      err = upstream_error::reset;
      conn_.reset();
      co_return 0;
    }
    if (n > 0) {
      if (budget != nullptr) budget->charge(n, cls, pool_.site_name());
      co_return n;
    }
  }
  co_return 0;
}

void upstream_call::done() {
  if (conn_ && parser_ && parser_->is_done() && parser_->keep_alive())
    pool_.release(std::move(conn_));
  conn_.reset();
}

}  // namespace storecache::upstream
