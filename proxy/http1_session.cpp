// HTTP/1.1 front end: one coroutine per connection, keep-alive, Beast's parser.
//
// Connection states: waiting (idle, client_idle timeout; the first request gets client_header)
// -> reading head (client_header timeout, header byte/count limits) -> in exchange (the handler
// owns it; body reads use client_idle) -> back to waiting, or closed when either side asked
// for close, the response could not complete, or the daemon is draining.
//
// The head is read by our own loop first: access::head_scanner sees its raw bytes (obs-fold,
// bare CR/LF, an over-long request line, the size limit), then Beast parses it whole. Every
// answer the session gives itself (400, 408, 413, 414, 431, 501) goes through the handler's
// refuse(), so it is counted and logged like any other; the connection then ends with a TLS
// close that discards what the client still sends (serve_connection's shutdown).
//
// A response that could not complete because the client went away (a write failed, a body
// read met EOF or a reset, or the client's FIN is seen while the handler runs) counts as one
// abandoned request for its address (client_resets.hpp), as an HTTP/2 stream reset does.
#include <fmt/format.h>
#include <sys/socket.h>

#include <cerrno>
#include <optional>
#include <string_view>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>

#include "access/request_framing.hpp"
#include "account/metrics.hpp"
#include "log/log.hpp"
#include "proxy/client_resets.hpp"
#include "proxy/request_handler.hpp"
#include "proxy/sessions.hpp"

namespace storecache::proxy {

namespace beast = boost::beast;
namespace bhttp = beast::http;
using asio::redirect_error;
using asio::use_awaitable;
using namespace asio::experimental::awaitable_operators;

namespace {

using request_parser = bhttp::request_parser<bhttp::buffer_body>;

// Below this size the head and a body chunk go out in one TLS record and one write.
constexpr std::size_t coalesce_limit = 16 * 1024;

// The reason phrase is optional (RFC 9112 §4): Beast's name for the codes it knows, none for
// the others (a 299 passed on from the upstream), never Beast's "<unknown-status>".
std::string_view reason_phrase(unsigned status) {
  if (status == 103) return "Early Hints";
  const auto known = bhttp::obsolete_reason(static_cast<bhttp::status>(status));
  return known.starts_with('<') ? std::string_view{} : std::string_view(known);
}

class http1_exchange final : public http::exchange {
 public:
  http1_exchange(http::tls_stream& stream, beast::flat_buffer& buffer, request_parser& parser,
                 http::request_head head, const config::config& cfg, bool keep_alive)
      : stream_(stream),
        buffer_(buffer),
        parser_(parser),
        head_(std::move(head)),
        cfg_(cfg),
        keep_alive_(keep_alive) {
    auto expect = find_header(head_.headers, "expect");
    expect_continue_ = expect && beast::iequals(*expect, "100-continue");
  }

  // Whether the connection may carry another request after this one.
  bool keep_alive() const { return keep_alive_; }
  std::optional<access::refusal> body_refusal() const override { return body_refusal_; }

  const http::request_head& request() const override { return head_; }

  asio::awaitable<std::size_t> read_body(asio::mutable_buffer buf, error_code& ec) override {
    ec = {};
    if (broken_) {
      ec = asio::error::broken_pipe;
      co_return 0;
    }
    if (expect_continue_ && !head_sent_) {
      static constexpr std::string_view cont = "HTTP/1.1 100 Continue\r\n\r\n";
      expect_continue_ = false;
      if (co_await write(asio::buffer(cont))) {
        ec = asio::error::broken_pipe;
        co_return 0;
      }
    }
    while (!parser_.is_done()) {
      auto& body = parser_.get().body();
      body.data = buf.data();
      body.size = buf.size();
      stream_.next_layer().expires_after(cfg_.timeout.client_idle);
      co_await bhttp::async_read_some(stream_, buffer_, parser_, redirect_error(use_awaitable, ec));
      if (ec == bhttp::error::need_buffer) ec = {};
      if (ec) {
        broken_ = true;
        keep_alive_ = false;  // the body's end is unknown: nothing more can be read
        body_refusal_ = refusal_of_body_error(ec);
        // A client that stops sending for client_idle is slow, not gone (the stream's expiry
        // closed the socket: there is no answering it).
        if (!body_refusal_ && ec != beast::error::timeout) client_left_ = true;
        co_return 0;
      }
      std::size_t n = buf.size() - body.size;
      if (n > 0) co_return n;
    }
    co_return 0;
  }

  asio::awaitable<error_code> send_interim(const http::response_head& head) override {
    if (broken_) co_return asio::error::broken_pipe;
    // RFC 9110 §15.2: no 1xx to an HTTP/1.0 client; 101 only for an Upgrade we never make.
    if (head_sent_ || head.status < 100 || head.status > 199 || head.status == 101 ||
        parser_.get().version() < 11)
      co_return error_code{};
    std::string out = fmt::format("HTTP/1.1 {} {}\r\n", head.status, reason_phrase(head.status));
    for (const auto& h : head.headers)
      fmt::format_to(std::back_inserter(out), "{}: {}\r\n", h.name, h.value);
    out += "\r\n";
    if (auto ec = co_await write(asio::buffer(out))) {
      broken_ = true;
      if (ec != beast::error::timeout) client_left_ = true;
      co_return ec;
    }
    co_return error_code{};
  }

  asio::awaitable<error_code> send_head(const http::response_head& head, bool end_stream) override {
    if (head_sent_ || write_broken()) co_return asio::error::broken_pipe;
    head_sent_ = true;
    // A final answer before a body the client was told to wait for (Expect: 100-continue and
    // no 100 sent), or a 413: that body will not be read, so the connection ends after it
    // (RFC 9110 §10.1.1, §15.5.14).
    if (head.status == 413 || (expect_continue_ && !parser_.is_done())) keep_alive_ = false;
    std::string& out = pending_;
    out.reserve(512);
    fmt::format_to(std::back_inserter(out), "HTTP/1.1 {} {}\r\n", head.status,
                   reason_phrase(head.status));
    for (const auto& h : head.headers)
      fmt::format_to(std::back_inserter(out), "{}: {}\r\n", h.name, h.value);
    const bool bodiless_status = head.status == 204 || head.status == 304 || head.status < 200;
    if (head.content_length) {
      if (!bodiless_status)
        fmt::format_to(std::back_inserter(out), "content-length: {}\r\n", *head.content_length);
      remaining_ = head_.method == "HEAD" ? 0 : *head.content_length;
    } else if (!end_stream) {
      out += "transfer-encoding: chunked\r\n";
      chunked_ = true;
    } else if (!bodiless_status && head_.method != "HEAD") {
      out += "content-length: 0\r\n";
    }
    if (!keep_alive_) out += "connection: close\r\n";
    out += "\r\n";
    if (end_stream) {
      complete_ = true;
      co_return co_await flush({});
    }
    co_return error_code{};
  }

  asio::awaitable<error_code> send_body(asio::const_buffer data) override {
    if (!head_sent_ || complete_ || write_broken()) co_return asio::error::broken_pipe;
    if (data.size() == 0) co_return error_code{};
    if (!chunked_) {
      if (data.size() > remaining_) {
        abort();  // the producer broke its own Content-Length: never send a wrong framing
        co_return asio::error::message_size;
      }
      remaining_ -= data.size();
      co_return co_await flush(data);
    }
    fmt::format_to(std::back_inserter(pending_), "{:x}\r\n", data.size());
    if (auto ec = co_await flush(data)) co_return ec;
    pending_ = "\r\n";
    co_return error_code{};
  }

  asio::awaitable<error_code> finish() override {
    if (!head_sent_ || complete_ || write_broken()) co_return asio::error::broken_pipe;
    if (!chunked_ && remaining_ != 0) {
      abort();
      co_return asio::error::message_size;
    }
    if (chunked_) pending_ += "0\r\n\r\n";
    complete_ = true;
    co_return co_await flush({});
  }

  void abort() override {
    if (aborted_) return;
    aborted_ = broken_ = true;
    keep_alive_ = false;
    // Closing the TCP connection without the rest of the body (or the last chunk) is how
    // HTTP/1.1 says "incomplete": the client cannot take it for a whole response.
    error_code ignored;
    stream_.next_layer().socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    stream_.next_layer().socket().close(ignored);
  }

  bool head_sent() const override { return head_sent_; }
  bool complete() const { return complete_ && !write_broken(); }

  // The client went away: a write or body read failed for that reason, or the kernel holds
  // its FIN or reset (a peek, while no read is pending: between requests nobody reads).
  // A close_notify alert ahead of the FIN is bytes, not EOF, so a client that closes TLS
  // politely is seen only when a write fails; a client that half-closes after its request
  // (rare over TLS) looks gone.
  bool client_gone() const override {
    if (!client_left_ && !broken_ && peer_closed()) client_left_ = true;
    return client_left_;
  }

 private:
  // Writes pending_ (head or chunk framing) and data, in one buffer when both are small.
  asio::awaitable<error_code> flush(asio::const_buffer data) {
    error_code ec;
    if (!pending_.empty() && data.size() <= coalesce_limit) {
      pending_.append(static_cast<const char*>(data.data()), data.size());
      ec = co_await write(asio::buffer(pending_));
    } else {
      if (!pending_.empty()) ec = co_await write(asio::buffer(pending_));
      if (!ec && data.size() > 0) ec = co_await write(data);
    }
    pending_.clear();
    if (ec) {
      broken_ = write_failed_ = true;
      // A client that stops reading for client_idle is slow, not gone.
      if (ec != beast::error::timeout) client_left_ = true;
    }
    co_return ec;
  }

  // Nothing more can be written: a write failed or the exchange was aborted. (A body read that
  // failed for a reason the client should hear still lets the refusal go out.)
  bool write_broken() const { return write_failed_ || aborted_ || (broken_ && !body_refusal_); }

  static std::optional<access::refusal> refusal_of_body_error(const error_code& ec) {
    if (ec == bhttp::error::body_limit) return access::refusal::body_too_large;
    if (ec.category() != bhttp::make_error_code(bhttp::error::bad_chunk).category() ||
        ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message)
      return std::nullopt;            // the client is gone (EOF, reset, truncated TLS)
    return access::refusal::framing;  // a chunk size that overflows, a bad chunk line
  }

  bool peer_closed() const {
    auto& socket = stream_.next_layer().socket();
    if (!socket.is_open()) return false;
    char byte = 0;
    const auto n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
  }

  asio::awaitable<error_code> write(asio::const_buffer data) {
    error_code ec;
    stream_.next_layer().expires_after(cfg_.timeout.client_idle);
    co_await asio::async_write(stream_, data, redirect_error(use_awaitable, ec));
    co_return ec;
  }

  http::tls_stream& stream_;
  beast::flat_buffer& buffer_;
  request_parser& parser_;
  http::request_head head_;
  const config::config& cfg_;
  bool keep_alive_;
  bool expect_continue_ = false;
  bool head_sent_ = false;
  bool chunked_ = false;
  bool complete_ = false;
  bool broken_ = false;        // no more reads or writes (but see write_broken())
  bool write_failed_ = false;  // a write failed
  bool aborted_ = false;
  std::optional<access::refusal> body_refusal_;
  mutable bool client_left_ = false;  // see client_gone()
  std::uint64_t remaining_ = 0;
  std::string pending_;
};

// What a refused request's log line shows when its head did not parse: the method and target
// of its request line as sent, the target cut at 4 KiB (the access log cuts there too).
void read_request_line(std::string_view bytes, http::request_head& head) {
  const auto eol = bytes.find("\r\n");
  const std::string_view line = bytes.substr(0, std::min(eol, std::size_t{8192}));
  head.method = std::string(line.substr(0, std::min(line.find(' '), std::size_t{64})));
  head.target = std::string(access::request_target(line).substr(0, 4096));
}

// The parser's verdict on a head the scanner let through, as a refusal.
access::refusal refusal_of_head_error(const error_code& ec) {
  if (ec == bhttp::error::header_limit) return access::refusal::header_too_large;
  if (ec == bhttp::error::bad_content_length || ec == bhttp::error::multiple_content_length ||
      ec == bhttp::error::bad_transfer_encoding)
    return access::refusal::framing;
  if (ec == bhttp::error::bad_line_ending) return access::refusal::line_ending;
  return access::refusal::malformed;
}

struct connection_gauge {
  account::metrics& m;
  explicit connection_gauge(account::metrics& mm) : m(mm) {
    m.connection_opened(http::protocol::http1_1);
  }
  ~connection_gauge() { m.connection_closed(http::protocol::http1_1); }
};

}  // namespace

asio::awaitable<void> run_http1_session(http::tls_stream& stream, connection_context& ctx) {
  const config::config& cfg = *ctx.cfg;
  connection_gauge gauge(ctx.stats);
  beast::flat_buffer buffer;
  buffer.reserve(16 * 1024);  // request bodies are read in chunks of the free capacity
  auto& tcp = stream.next_layer();
  error_code ec;

  for (std::uint32_t n = 1;; ++n) {
    if (ctx.stopping && *ctx.stopping) co_return;
    // Wait for the next request: an idle keep-alive connection may sit for client_idle; the
    // first request must arrive within client_header of the handshake.
    if (buffer.size() == 0) {
      tcp.expires_after(n == 1 ? cfg.timeout.client_header : cfg.timeout.client_idle);
      std::size_t got = co_await stream.async_read_some(buffer.prepare(16 * 1024),
                                                        redirect_error(use_awaitable, ec));
      if (ec) co_return;  // idle timeout, peer closed, or shutdown: nothing to answer
      buffer.commit(got);
    }

    request_parser parser;
    parser.header_limit(static_cast<std::uint32_t>(cfg.limit.max_header_bytes));
    parser.body_limit(boost::none);  // a declared length is the handler's to judge (413)
    http::request_head head;
    head.scheme = "https";
    head.proto = http::protocol::http1_1;
    head.client_address = ctx.client.address();
    head.client_port = ctx.client.port();
    head.sni = ctx.sni;
    head.connection_id = ctx.connection_id;
    head.stream_id = n;
    // Answers the request with a refusal and ends the connection.
    auto refuse = [&](access::refusal why, std::string detail) -> asio::awaitable<void> {
      http1_exchange ex(stream, buffer, parser, std::move(head), cfg, false);
      co_await ctx.handler.refuse(ex, ctx, why, std::move(detail));
    };

    // The whole head within client_header, its raw bytes checked as they arrive.
    access::head_scanner scanner(cfg.limit.max_header_bytes, cfg.limit.max_uri_bytes);
    // The head's deadline is a timer of ours, not the stream's expiry: that one closes the
    // socket when it fires, and the 408 could not be written.
    tcp.expires_never();
    asio::steady_timer head_deadline(stream.get_executor(), cfg.timeout.client_header);
    for (;;) {
      const std::string_view bytes(static_cast<const char*>(buffer.data().data()), buffer.size());
      const auto scan = scanner.scan(bytes);
      if (scan.st == access::head_scanner::state::complete) break;
      if (scan.st == access::head_scanner::state::refused) {
        read_request_line(bytes, head);
        co_await refuse(scan.why, std::string(scan.detail));
        co_return;
      }
      auto read = co_await (
          stream.async_read_some(buffer.prepare(16 * 1024), asio::as_tuple(use_awaitable)) ||
          head_deadline.async_wait(asio::as_tuple(use_awaitable)));
      if (read.index() == 1) {
        read_request_line({static_cast<const char*>(buffer.data().data()), buffer.size()}, head);
        co_await refuse(access::refusal::header_timeout,
                        fmt::format("request head not complete within timeouts.client_header "
                                    "({} ms)",
                                    cfg.timeout.client_header.count()));
        co_return;
      }
      auto [read_ec, got] = std::get<0>(read);
      if (read_ec) co_return;  // peer closed or reset, or shutdown: nobody to answer
      buffer.commit(got);
    }
    const std::size_t used = parser.put(buffer.data(), ec);
    if (!ec && !parser.is_header_done()) ec = bhttp::error::need_more;  // cannot happen: whole
    if (ec) {
      read_request_line({static_cast<const char*>(buffer.data().data()), buffer.size()}, head);
      log::debug("conn={} client={}: request head refused: {}", ctx.connection_id,
                 ctx.client.address().to_string(), ec.message());
      co_await refuse(refusal_of_head_error(ec), ec.message());
      co_return;
    }
    buffer.consume(used);

    auto& msg = parser.get();
    head.method = std::string(msg.method_string());
    head.target = std::string(msg.target());
    std::size_t count = 0;
    bool hosts = false, duplicate_host = false;
    std::vector<std::string_view> transfer_codings;
    for (const auto& f : msg) {
      ++count;
      std::string name(f.name_string());
      for (auto& c : name)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (name == "host") {
        duplicate_host = hosts;
        hosts = true;
        head.authority = std::string(f.value());
        continue;
      }
      if (name == "transfer-encoding") transfer_codings.push_back(f.value());
      head.headers.push_back({std::move(name), std::string(f.value())});
    }
    if (count > cfg.limit.max_header_count) {
      co_await refuse(access::refusal::too_many_headers,
                      fmt::format("{} header fields, over limits.max_header_count ({})", count,
                                  cfg.limit.max_header_count));
      co_return;
    }
    if (!hosts || duplicate_host) {  // RFC 9112 §3.2: exactly one Host
      co_await refuse(access::refusal::malformed,
                      hosts ? "more than one Host field" : "no Host field");
      co_return;
    }
    if (auto problem = access::check_transfer_encoding(transfer_codings, msg.version() % 10)) {
      co_await refuse(problem->why, std::string(problem->detail));
      co_return;
    }
    // Chunk sizes are held to the limit as they arrive (a declared length: see above).
    parser.body_limit(cfg.limit.max_request_body);
    if (auto len = parser.content_length()) head.content_length = *len;
    head.has_body = !parser.is_done();

    const bool keep_alive = parser.keep_alive() && !(ctx.stopping && *ctx.stopping);
    http1_exchange ex(stream, buffer, parser, std::move(head), cfg, keep_alive);
    co_await ctx.handler.handle(ex, ctx);
    if (!ex.complete()) {
      if (ex.client_gone())
        note_client_reset(ctx, http::protocol::http1_1, std::chrono::steady_clock::now());
      co_return;
    }
    if (!ex.keep_alive()) co_return;
    // A request body the handler did not read must be skipped before the next request;
    // a large one is not worth reading: close instead.
    if (!parser.is_done()) {
      std::vector<char> sink(16 * 1024);
      std::size_t drained = 0;
      while (!parser.is_done() && drained < 1024 * 1024) {
        error_code rec;
        std::size_t got = co_await ex.read_body(asio::buffer(sink), rec);
        if (rec || got == 0) break;
        drained += got;
      }
      if (!parser.is_done()) co_return;
    }
  }
}

}  // namespace storecache::proxy
