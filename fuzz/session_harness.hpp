// Drives one front-end session (run_http1_session or run_http2_session, proxy/sessions.hpp) as
// the daemon runs it, on bytes a fuzz target chooses: a TLS connection over a socketpair, both
// ends on one io_context and one thread. The server end runs the session with a small handler
// that reads the request body and answers in one of four ways (length, chunked, no body,
// aborted); the client end writes the input, reads whatever comes back, and hangs up once
// nothing is left to run. The session must then end: one that does not is a finding.
//
// TLS is there because the sessions take a tls_stream: a P-256 handshake per run, about a
// millisecond of the run's time.
#pragma once

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "account/metrics.hpp"
#include "fuzz/fuzz_check.hpp"
#include "log/log.hpp"
#include "proxy/connection_context.hpp"
#include "proxy/request_handler.hpp"
#include "proxy/sessions.hpp"

namespace storecache::fuzz {

namespace asio = boost::asio;

// Reads the request body (bounded), then answers by the target's length modulo 4, so that
// the fuzzer reaches every way a response can go out, and the session's error paths.
struct fuzz_handler final : proxy::request_handler {
  // The sessions' own refusals (400, 408, 413, 414, 431, 501): a bodiless answer.
  asio::awaitable<void> refuse(http::exchange& ex, proxy::connection_context&, access::refusal why,
                               std::string) override {
    http::response_head h;
    h.status = access::status_of(why);
    h.content_length = 0;
    co_await ex.send_head(h, true);
  }
  asio::awaitable<void> handle(http::exchange& ex, proxy::connection_context&) override {
    const auto& req = ex.request();
    std::array<char, 4096> buf;
    std::size_t total = 0;
    proxy::error_code ec;
    while (total < 256 * 1024) {
      const std::size_t n = co_await ex.read_body(asio::buffer(buf), ec);
      if (ec || n == 0) break;
      total += n;
    }
    http::response_head h;
    h.headers.push_back({"content-type", "text/plain"});
    const std::string body = req.method + " " + req.authority + " " + req.target + "\n";
    switch (req.target.size() % 4) {
      case 0:
        h.content_length = body.size();
        if (co_await ex.send_head(h, false)) co_return;
        if (co_await ex.send_body(asio::buffer(body))) co_return;
        co_await ex.finish();
        break;
      case 1:
        if (co_await ex.send_head(h, false)) co_return;
        if (co_await ex.send_body(asio::buffer(body))) co_return;
        co_await ex.finish();
        break;
      case 2:
        h.status = 204;
        co_await ex.send_head(h, true);
        break;
      default:
        if (co_await ex.send_head(h, false)) co_return;
        co_await ex.send_body(asio::buffer(body.data(), body.size() / 2));
        ex.abort();
        break;
    }
  }
};

class session_harness {
 public:
  using session_fn = asio::awaitable<void> (*)(http::tls_stream&, proxy::connection_context&);

  session_harness() {
    log::threshold = static_cast<int>(log::level::err);  // refusals log at info
    auto c = std::make_shared<config::config>();
    c->timeout.client_header = std::chrono::seconds(5);
    c->timeout.client_idle = std::chrono::seconds(5);
    c->limit.max_header_bytes = 4 * 1024;
    c->limit.max_header_count = 32;
    c->limit.h2_max_concurrent_streams = 16;
    cfg_ = std::move(c);
    // A throwaway self-signed P-256 certificate, made in memory once.
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* cert = X509_new();
    FUZZ_CHECK(key != nullptr && cert != nullptr);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("fuzz"), -1, -1, 0);
    X509_set_issuer_name(cert, name);
    FUZZ_CHECK(X509_sign(cert, key, EVP_sha256()) > 0);
    FUZZ_CHECK(SSL_CTX_use_certificate(server_tls_.native_handle(), cert) == 1);
    FUZZ_CHECK(SSL_CTX_use_PrivateKey(server_tls_.native_handle(), key) == 1);
    X509_free(cert);
    EVP_PKEY_free(key);
    // No tickets: every run is a full, identical handshake.
    SSL_CTX_set_options(server_tls_.native_handle(), SSL_OP_NO_TICKET);
  }

  // One connection: `session` on the server end, `input` from the client.
  void run(session_fn session, std::string_view input) {
    asio::io_context ioc(1);
    int fds[2];
    FUZZ_CHECK(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    asio::ip::tcp::socket server_socket(ioc), client_socket(ioc);
    server_socket.assign(asio::ip::tcp::v4(), fds[0]);
    client_socket.assign(asio::ip::tcp::v4(), fds[1]);
    http::tls_stream server(boost::beast::tcp_stream(std::move(server_socket)), server_tls_);
    asio::ssl::stream<asio::ip::tcp::socket> client(std::move(client_socket), client_tls_);

    bool stopping = false, server_done = false, written = false, reader_done = false;
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wmissing-field-initializers"
    proxy::connection_context ctx{.cfg = cfg_,
                                  .handler = handler_,
                                  .stats = stats_,
                                  .client = {asio::ip::make_address_v4("10.1.2.3"), 40000},
                                  .sni = "learn.example.com",
                                  .connection_id = 1,
                                  .stopping = &stopping};
#pragma clang diagnostic pop

    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
          auto [ec] = co_await server.async_handshake(asio::ssl::stream_base::server,
                                                      asio::as_tuple(asio::use_awaitable));
          if (ec) std::fprintf(stderr, "fuzz: TLS handshake failed: %s\n", ec.message().c_str());
          FUZZ_CHECK(!ec);  // our own set-up: without it nothing below runs
          co_await session(server, ctx);
          server_done = true;
        },
        asio::detached);
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
          auto [ec] = co_await client.async_handshake(asio::ssl::stream_base::client,
                                                      asio::as_tuple(asio::use_awaitable));
          if (ec) {
            reader_done = written = true;
            co_return;
          }
          asio::co_spawn(
              ioc,
              [&]() -> asio::awaitable<void> {
                std::array<char, 16 * 1024> buf;
                for (;;) {
                  auto [rec, n] = co_await client.async_read_some(
                      asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
                  if (rec) break;
                }
                reader_done = true;
              },
              asio::detached);
          co_await asio::async_write(client, asio::buffer(input.data(), input.size()),
                                     asio::as_tuple(asio::use_awaitable));
          written = true;
        },
        asio::detached);

    // Until the input is written and nothing is left to run but waits on the peer or on
    // timers; then the client hangs up, and the session must come to its end.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!written && !server_done && std::chrono::steady_clock::now() < deadline)
      ioc.run_one_for(std::chrono::milliseconds(100));
    FUZZ_CHECK(written || server_done);
    for (int idle = 0; idle < 2;)
      idle = ioc.poll() == 0 ? idle + 1 : 0;
    boost::system::error_code ignored;
    client.lowest_layer().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    client.lowest_layer().close(ignored);
    ioc.run_for(std::chrono::seconds(10));
    FUZZ_CHECK(server_done);  // the session ended once its client was gone
    FUZZ_CHECK(reader_done);
  }

 private:
  asio::ssl::context server_tls_{asio::ssl::context::tls_server};
  asio::ssl::context client_tls_{asio::ssl::context::tls_client};
  std::shared_ptr<const config::config> cfg_;
  account::metrics stats_;
  fuzz_handler handler_;
};

}  // namespace storecache::fuzz
