// One client connection from accept on (proxy/connection.hpp).
#include "proxy/connection.hpp"

#include <openssl/ssl.h>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <ctime>

#include "access/client_certs.hpp"
#include "access/client_ledger.hpp"
#include "account/metrics.hpp"
#include "http/tls_failure.hpp"
#include "http/tls_stream.hpp"
#include "log/log.hpp"
#include "proxy/proxy_handler.hpp"
#include "proxy/sessions.hpp"
#include "proxy/tls.hpp"
#include "usage/report.hpp"

namespace storecache::proxy {

using asio::redirect_error;
using asio::use_awaitable;
using asio::ip::tcp;

namespace {

// Refusals are logged at info, at most 10 a second: a scan of the port must not flood the journal.
log::rate_limit refusal_log_limit{10};

}  // namespace

void log_refusal_line(std::string line) {
  std::uint64_t suppressed = 0;
  if (!refusal_log_limit.allow(suppressed)) return;
  if (suppressed > 0) line += fmt::format(" ({} similar lines suppressed)", suppressed);
  log::write_line(log::level::info, line);
}

void count_refusal(account::metrics& stats, usage::recorder* usage, std::string_view site,
                   access::denial why) {
  stats.access_denied(site, why);
  if (usage != nullptr)
    usage->record(usage::denial_facts{.unix_seconds = std::time(nullptr),
                                      .site = site == account::metrics::no_site ? "" : site,
                                      .reason = why});
}

void log_exception(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    log::error("internal error in a connection: {}", x.what());
  }
}

namespace {

struct connection_slot {
  std::atomic<std::size_t>& count;
  ~connection_slot() { count.fetch_sub(1, std::memory_order_relaxed); }
};

constexpr auto over_limit_answer_time = std::chrono::seconds(2);

constexpr std::string_view over_limit_body =
    "503 Service Unavailable\nThis server has as many device connections as it may take "
    "(limits.max_connections). Try again in a few seconds.\n";

std::string over_limit_http1() {
  return fmt::format(
      "HTTP/1.1 503 Service Unavailable\r\nretry-after: 5\r\ncache-control: no-store\r\n"
      "content-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n"
      "\r\n{}",
      over_limit_body.size(), over_limit_body);
}

// The HTTP/2 server preface, a SETTINGS frame allowing no streams (RFC 9113 §6.5.2
// MAX_CONCURRENT_STREAMS = 0), then GOAWAY with last stream 0 and REFUSED_STREAM: no request
// was processed, so the client may safely retry (§8.7). Written by hand: no session is needed
// for two frames.
std::string over_limit_h2() {
  constexpr std::string_view debug = "over limits.max_connections; retry later";
  std::string out;
  auto frame = [&out](std::uint8_t type, std::string_view payload) {
    const auto n = payload.size();
    out += {static_cast<char>(n >> 16),
            static_cast<char>((n >> 8) & 0xff),
            static_cast<char>(n & 0xff),
            static_cast<char>(type),
            '\0',
            '\0',
            '\0',
            '\0',
            '\0'};
    out += payload;
  };
  frame(0x4, std::string_view("\x00\x03\x00\x00\x00\x00", 6));  // SETTINGS: MCS = 0
  std::string goaway("\x00\x00\x00\x00\x00\x00\x00\x07", 8);    // last id 0, REFUSED_STREAM
  goaway += debug;
  frame(0x7, goaway);
  return out;
}

}  // namespace

// One client connection, from TLS handshake to close. The frame holds what the connection
// uses (runtime, handler) so that a reload or shutdown never pulls them from under it.
asio::awaitable<void> serve_connection(tcp::socket socket, std::shared_ptr<const runtime> rt,
                                       std::shared_ptr<proxy_handler> handler,
                                       account::metrics& stats,
                                       std::atomic<std::size_t>& connections, std::uint64_t id,
                                       const bool* stopping, account::access_log* access,
                                       access::client_ledger* ledger, usage::recorder* usage) {
  connection_slot slot{connections};
  error_code ec;
  tcp::endpoint client = socket.remote_endpoint(ec);
  if (ec) co_return;
  http::tls_stream stream(std::move(socket), rt->server_tls->initial());
  handshake_info hs{client.address(), nullptr, std::nullopt};
  handshake_info::attach(stream.native_handle(), &hs);
  stream.next_layer().expires_after(rt->cfg->timeout.client_header);
  co_await stream.async_handshake(asio::ssl::stream_base::server,
                                  redirect_error(use_awaitable, ec));
  handshake_info::attach(stream.native_handle(), nullptr);
  if (ec) {
    const auto* verifier = access::client_cert_verifier::of(stream.native_handle());
    const std::string_view site =
        hs.site ? std::string_view(hs.site->name()) : account::metrics::no_site;
    if (hs.refused) {
      count_refusal(stats, usage, site, *hs.refused);
      log_refusal("conn={} client={} site={}: refused in the TLS handshake: {} (allow_clients)", id,
                  client.address().to_string(), site, access::to_string(*hs.refused));
      co_return;
    }
    if (verifier != nullptr && verifier->mode() == config::client_cert_mode::required &&
        http::refused_client_certificate(ec)) {
      count_refusal(stats, usage, site, access::denial::client_cert);
      log_refusal("conn={} client={} site={}: refused in the TLS handshake: client_cert ({})", id,
                  client.address().to_string(), site,
                  access::client_cert_verifier::failure_of(stream.native_handle()));
      co_return;
    }
    stats.tls_handshake_failed(http::classify_tls_failure(ec));
    log::debug("conn={} client={}: TLS handshake failed: {}", id, client.address().to_string(),
               ec.message());
    co_return;
  }
  connection_context ctx{
      rt->cfg, *handler, stats, client, std::string(sni_name(stream.native_handle())),
      id,      stopping, rt};
  ctx.access = access;
  ctx.ledger = ledger;
  ctx.tls = usage::tls_version_from(::SSL_get_version(stream.native_handle()));
  ctx.client_cert = access::client_cert_verifier::state_of(stream.native_handle());
  if (alpn_selected(stream.native_handle()) == "h2")
    co_await run_http2_session(stream, ctx);
  else
    co_await run_http1_session(stream, ctx);
  // close_notify, briefly: a client that is already gone must not hold the coroutine.
  if (stream.next_layer().socket().is_open()) {
    stream.next_layer().expires_after(std::chrono::seconds(1));
    co_await stream.async_shutdown(redirect_error(use_awaitable, ec));
  }
}

// One connection over limits.max_connections: the TLS handshake (so the answer can be read),
// the answer, and the usual close. Everything within over_limit_answer_time, plus the close.
asio::awaitable<void> answer_over_limit(tcp::socket socket, std::shared_ptr<const runtime> rt,
                                        account::metrics& stats,
                                        std::atomic<std::size_t>& answering) {
  struct slot {
    std::atomic<std::size_t>& n;
    ~slot() { n.fetch_sub(1, std::memory_order_relaxed); }
  } held{answering};
  using answer = account::metrics::over_limit_answer;
  error_code ec;
  const tcp::endpoint client = socket.remote_endpoint(ec);
  if (ec) {
    stats.connection_refused_limit(answer::closed);
    co_return;
  }
  http::tls_stream stream(std::move(socket), rt->server_tls->initial());
  handshake_info hs{client.address(), nullptr, std::nullopt};
  handshake_info::attach(stream.native_handle(), &hs);
  stream.next_layer().expires_after(over_limit_answer_time);
  co_await stream.async_handshake(asio::ssl::stream_base::server,
                                  redirect_error(use_awaitable, ec));
  handshake_info::attach(stream.native_handle(), nullptr);
  if (ec) {
    stats.connection_refused_limit(answer::closed);
    co_return;
  }
  const bool h2 = alpn_selected(stream.native_handle()) == "h2";
  const std::string out = h2 ? over_limit_h2() : over_limit_http1();
  co_await asio::async_write(stream, asio::buffer(out), redirect_error(use_awaitable, ec));
  if (ec) {
    stats.connection_refused_limit(answer::closed);
    co_return;
  }
  stats.connection_refused_limit(h2 ? answer::h2_goaway : answer::http1_503);
  log_refusal("client={}: over limits.max_connections ({}): {}", client.address().to_string(),
              rt->cfg->limit.max_connections, h2 ? "GOAWAY" : "503");
  // close_notify; what the client still sends (its request) is read and dropped meanwhile, so
  // that closing does not reset the connection before it has read the answer.
  stream.next_layer().expires_after(std::chrono::seconds(1));
  co_await stream.async_shutdown(redirect_error(use_awaitable, ec));
}

}  // namespace storecache::proxy
