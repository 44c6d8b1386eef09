// /metrics without sockets: what record() adds up (exact exposition lines, cumulative histogram
// buckets, _sum and _count), the device mix rule, label escaping, the families' shape, and the
// TLS failure classification of error codes taken from real OpenSSL handshakes in memory.
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/error.hpp>
#include <catch2/catch.hpp>

#include <cerrno>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "access/client_ledger.hpp"
#include "account/metrics.hpp"
#include "account/request_record.hpp"
#include "config/config.hpp"
#include "http/tls_failure.hpp"

using namespace storecache;
using namespace storecache::account;
using storecache::http::protocol;
using storecache::http::request_head;
using namespace std::chrono_literals;

namespace {

bool has_line(const std::string& text, const std::string& line) {
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    if (l == line) return true;
  return false;
}

#define CHECK_LINE(text, line)                  \
  do {                                          \
    INFO("missing line: " << (line));           \
    CHECK(has_line((text), std::string(line))); \
  } while (0)

config::site make_site(std::string name) {
  config::site s;
  s.hosts.push_back(std::move(name));
  return s;
}

struct recorder {
  account::metrics m;
  request_head head;
  config::site site = make_site("learn.example.com");

  void add(account::cache_outcome cache, std::chrono::steady_clock::duration total,
           std::chrono::steady_clock::duration ttfb, std::uint64_t bytes = 0,
           usage::device dev = {}, usage::tls_version tls = usage::tls_version::tls1_3,
           bool with_site = true, protocol proto = protocol::http1_1) {
    head.proto = proto;
    const account::request_record r{.req = head,
                                    .site = with_site ? &site : nullptr,
                                    .path = "/",
                                    .status = with_site ? 200u : 421u,
                                    .bytes = bytes,
                                    .cache = cache,
                                    .bytes_from_cache = cache == account::cache_outcome::hit,
                                    .upstream_status = 0,
                                    .upstream_time = {},
                                    .why = "",
                                    .ttfb = ttfb,
                                    .total = total,
                                    .end_time = {},
                                    .content = usage::content_class::other,
                                    .dev = dev,
                                    .tls = tls};
    m.record(r);
  }
};

}  // namespace

TEST_CASE("record() counts requests, responses and bytes by site", "[metrics]") {
  recorder t;
  t.add(account::cache_outcome::miss, 20ms, 10ms, 1000);
  t.add(account::cache_outcome::hit, 2ms, 1ms, 1000);
  t.add(account::cache_outcome::hit, 2ms, 1ms, 1000, {}, usage::tls_version::tls1_3, true,
        protocol::http2);
  t.add(account::cache_outcome::local, 1ms, 1ms, 50, {}, usage::tls_version::tls1_3, false);
  const auto text = t.m.render();
  CHECK_LINE(text, R"(storecache_requests_total{site="learn.example.com",protocol="http/1.1",)"
                   R"(cache_status="miss"} 1)");
  CHECK_LINE(text, R"(storecache_requests_total{site="learn.example.com",protocol="http/1.1",)"
                   R"(cache_status="hit"} 1)");
  CHECK_LINE(text, R"(storecache_requests_total{site="learn.example.com",protocol="h2",)"
                   R"(cache_status="hit"} 1)");
  CHECK_LINE(text, R"(storecache_requests_total{site="_unknown",protocol="http/1.1",)"
                   R"(cache_status="local"} 1)");
  CHECK_LINE(text, R"(storecache_responses_total{site="learn.example.com",code_class="2xx"} 3)");
  CHECK_LINE(text, R"(storecache_responses_total{site="_unknown",code_class="4xx"} 1)");
  CHECK_LINE(text,
             R"(storecache_response_bytes_total{site="learn.example.com",source="cache"} 2000)");
  CHECK_LINE(text,
             R"(storecache_response_bytes_total{site="learn.example.com",source="upstream"} 1000)");
  // local answers carry no cache/upstream bytes
  CHECK_LINE(text, R"(storecache_response_bytes_total{site="_unknown",source="cache"} 0)");
  CHECK_LINE(text, R"(storecache_response_bytes_total{site="_unknown",source="upstream"} 0)");
}

TEST_CASE("duration histograms are cumulative, in seconds, split by cache status", "[metrics]") {
  recorder t;
  t.add(account::cache_outcome::hit, 3ms, 1ms);    // le 0.005 / ttfb le 0.001 (bounds inclusive)
  t.add(account::cache_outcome::hit, 500ms, 2ms);  // le 0.5 / ttfb le 0.0025
  t.add(account::cache_outcome::hit, 90s, 0ns);    // only +Inf; never sent a head: no ttfb
  t.add(account::cache_outcome::miss, 1001us, 1001us);  // just above 1 ms: le 0.0025
  const auto text = t.m.render();
  const std::string d = "storecache_request_duration_seconds";
  const std::string f = "storecache_request_ttfb_seconds";
  CHECK_LINE(text, d + R"(_bucket{cache_status="hit",le="0.001"} 0)");
  CHECK_LINE(text, d + R"(_bucket{cache_status="hit",le="0.0025"} 0)");
  CHECK_LINE(text, d + R"(_bucket{cache_status="hit",le="0.005"} 1)");
  CHECK_LINE(text, d + R"(_bucket{cache_status="hit",le="0.25"} 1)");
  CHECK_LINE(text, d + R"(_bucket{cache_status="hit",le="0.5"} 2)");
  CHECK_LINE(text, d + R"(_bucket{cache_status="hit",le="60"} 2)");
  CHECK_LINE(text, d + R"(_bucket{cache_status="hit",le="+Inf"} 3)");
  CHECK_LINE(text, d + R"(_sum{cache_status="hit"} 90.503)");
  CHECK_LINE(text, d + R"(_count{cache_status="hit"} 3)");
  CHECK_LINE(text, f + R"(_bucket{cache_status="hit",le="0.001"} 1)");
  CHECK_LINE(text, f + R"(_bucket{cache_status="hit",le="0.0025"} 2)");
  CHECK_LINE(text, f + R"(_bucket{cache_status="hit",le="+Inf"} 2)");
  CHECK_LINE(text, f + R"(_sum{cache_status="hit"} 0.003)");
  CHECK_LINE(text, f + R"(_count{cache_status="hit"} 2)");
  CHECK_LINE(text, d + R"(_bucket{cache_status="miss",le="0.001"} 0)");
  CHECK_LINE(text, d + R"(_bucket{cache_status="miss",le="0.0025"} 1)");
  CHECK_LINE(text, d + R"(_count{cache_status="miss"} 1)");
  // every cache status has its series, zero until used
  CHECK_LINE(text, d + R"(_bucket{cache_status="stale",le="+Inf"} 0)");
  CHECK_LINE(text, d + R"(_sum{cache_status="pass"} 0)");
  CHECK_LINE(text, f + R"(_count{cache_status="local"} 0)");
}

TEST_CASE("device mix and TLS versions count requests served for a site", "[metrics]") {
  recorder t;
  const usage::device iphone{usage::os_family::ios, usage::browser_family::safari, 17};
  const usage::device android{usage::os_family::android, usage::browser_family::chrome, 14};
  const usage::device odd{usage::os_family::windows, usage::browser_family::edge, 0};
  t.add(account::cache_outcome::miss, 1ms, 1ms, 0, iphone, usage::tls_version::tls1_3);
  t.add(account::cache_outcome::hit, 1ms, 1ms, 0, iphone, usage::tls_version::tls1_3);
  t.add(account::cache_outcome::pass, 1ms, 1ms, 0, android, usage::tls_version::tls1_2);
  t.add(account::cache_outcome::hit, 1ms, 1ms, 0, odd, usage::tls_version::other);
  // a version past 99 is not believed: "unknown"
  t.add(account::cache_outcome::hit, 1ms, 1ms, 0,
        {usage::os_family::gnu_linux, usage::browser_family::other, 250},
        usage::tls_version::other);
  // a refused request (421, no site) is not part of the fleet's mix
  t.add(account::cache_outcome::local, 1ms, 1ms, 0, iphone, usage::tls_version::tls1_3, false);
  const auto text = t.m.render();
  CHECK_LINE(text, R"(storecache_device_requests_total{os="ios",browser="safari"} 2)");
  CHECK_LINE(text, R"(storecache_device_requests_total{os="android",browser="chrome"} 1)");
  CHECK_LINE(text, R"(storecache_device_requests_total{os="windows",browser="edge"} 1)");
  CHECK_LINE(text, R"(storecache_device_requests_total{os="linux",browser="other"} 1)");
  CHECK_LINE(text, R"(storecache_device_requests_total{os="other",browser="webview"} 0)");
  CHECK_LINE(text, R"(storecache_device_os_version_requests_total{os="ios",major="17"} 2)");
  CHECK_LINE(text, R"(storecache_device_os_version_requests_total{os="android",major="14"} 1)");
  CHECK_LINE(text,
             R"(storecache_device_os_version_requests_total{os="windows",major="unknown"} 1)");
  CHECK_LINE(text, R"(storecache_device_os_version_requests_total{os="linux",major="unknown"} 1)");
  // only versions seen appear
  CHECK(text.find(R"(storecache_device_os_version_requests_total{os="macos")") ==
        std::string::npos);
  CHECK_LINE(text, R"(storecache_tls_requests_total{version="TLSv1.3"} 2)");
  CHECK_LINE(text, R"(storecache_tls_requests_total{version="TLSv1.2"} 1)");
  CHECK_LINE(text, R"(storecache_tls_requests_total{version="other"} 2)");
}

TEST_CASE("upstream errors by kind, TLS failures by reason, escaped site names", "[metrics]") {
  account::metrics m;
  auto& site = m.site("learn.example.com");
  account::count_upstream_error(site, upstream_error::connect);
  account::count_upstream_error(site, upstream_error::connect);
  account::count_upstream_error(site, upstream_error::timeout);
  account::count_upstream_error(site,
                                upstream_error::client);  // not an upstream failure: not rendered
  m.tls_handshake_failed(http::tls_failure::plain_http);
  m.tls_handshake_failed(http::tls_failure::version);
  m.tls_handshake_failed(http::tls_failure::version);
  m.site("we\"ird\\na\nme");
  const auto text = m.render();
  const std::string e = R"(storecache_upstream_errors_total{site="learn.example.com",kind=")";
  CHECK_LINE(text, e + R"(connect"} 2)");
  CHECK_LINE(text, e + R"(timeout"} 1)");
  for (auto kind : {"resolve", "tls", "reset", "bad_response"})
    CHECK_LINE(text, e + kind + "\"} 0");
  CHECK(text.find("kind=\"client\"") == std::string::npos);
  CHECK(text.find("kind=\"none\"") == std::string::npos);
  CHECK_LINE(text, R"(storecache_tls_handshake_failures_total{reason="plain_http"} 1)");
  CHECK_LINE(text, R"(storecache_tls_handshake_failures_total{reason="version"} 2)");
  CHECK_LINE(text, R"(storecache_tls_handshake_failures_total{reason="timeout"} 0)");
  CHECK_LINE(text, R"(storecache_upstream_bytes_total{site="we\"ird\\na\nme"} 0)");
}

TEST_CASE("abandoned requests, connections closed for them, and the client ledger", "[metrics]") {
  account::metrics m;
  // Without a ledger the ledger's families are there, at zero.
  CHECK_LINE(m.render(), "storecache_client_ledger_entries 0");
  CHECK_LINE(m.render(), "storecache_clients_over_budget_total 0");

  storecache::access::client_ledger::limits lim;
  lim.resets = 2;
  lim.misses_per_client = 1;
  storecache::access::client_ledger ledger(lim);
  m.set_ledger(&ledger);
  const auto a = boost::asio::ip::make_address("10.0.0.9");
  const auto now = std::chrono::steady_clock::now();
  for (int i = 0; i < 3; ++i)
    ledger.note_reset(a, now);
  auto slot = ledger.begin_miss(boost::asio::ip::make_address("10.0.0.10"));
  CHECK_FALSE(ledger.begin_miss(boost::asio::ip::make_address("10.0.0.10")));
  m.client_reset(protocol::http2);
  m.client_reset(protocol::http2);
  m.client_reset(protocol::http1_1);
  m.connection_closed_for_resets();
  const auto text = m.render();
  CHECK_LINE(text, R"(storecache_client_resets_total{protocol="h2"} 2)");
  CHECK_LINE(text, R"(storecache_client_resets_total{protocol="http/1.1"} 1)");
  CHECK_LINE(text, "storecache_connections_closed_for_resets_total 1");
  CHECK_LINE(text, "storecache_clients_over_budget_total 1");
  CHECK_LINE(text, "storecache_client_misses_refused_total 1");
  CHECK_LINE(text, "storecache_client_ledger_untracked_total 0");
  CHECK_LINE(text, "storecache_client_ledger_entries 2");
}

TEST_CASE("every family has HELP and TYPE once, and only its own samples", "[metrics]") {
  recorder t;
  t.add(account::cache_outcome::hit, 1ms, 1ms, 10, {usage::os_family::ios, {}, 16});
  std::istringstream in(t.m.render());
  std::map<std::string, std::string> types;
  std::set<std::string> helped;
  std::string current;
  for (std::string l; std::getline(in, l);) {
    if (l.starts_with("# HELP ")) {
      auto name = l.substr(7, l.find(' ', 7) - 7);
      CHECK(helped.insert(name).second);
      current = name;
    } else if (l.starts_with("# TYPE ")) {
      auto rest = l.substr(7);
      auto name = rest.substr(0, rest.find(' '));
      auto type = rest.substr(rest.find(' ') + 1);
      INFO(l);
      CHECK(name == current);
      CHECK(types.emplace(name, type).second);
      CHECK((type == "counter" || type == "gauge" || type == "histogram"));
      CHECK(name.ends_with("_total") == (type == "counter"));
    } else {
      INFO(l);
      auto sample = l.substr(0, l.find_first_of("{ "));
      REQUIRE(types.count(current) == 1);
      if (types[current] == "histogram")
        CHECK((sample == current + "_bucket" || sample == current + "_sum" ||
               sample == current + "_count"));
      else
        CHECK(sample == current);
    }
  }
  CHECK(types.size() == helped.size());
  CHECK(types.at("storecache_request_duration_seconds") == "histogram");
  CHECK(types.at("storecache_client_connections") == "gauge");
}

// --- TLS failure classification --------------------------------------------------------------

namespace {

// An in-memory TLS client and server: each SSL reads and writes memory BIOs, and pump() moves
// bytes between them, so a handshake fails exactly as it would on a socket, minus the socket.
struct tls_pair {
  SSL_CTX* server_ctx = SSL_CTX_new(TLS_server_method());
  SSL_CTX* client_ctx = SSL_CTX_new(TLS_client_method());
  SSL* server = nullptr;
  SSL* client = nullptr;

  tls_pair() {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* cert = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("metrics.test"), -1, -1, 0);
    X509_set_issuer_name(cert, X509_get_subject_name(cert));
    X509_sign(cert, key, EVP_sha256());
    SSL_CTX_use_certificate(server_ctx, cert);
    SSL_CTX_use_PrivateKey(server_ctx, key);
    X509_free(cert);
    EVP_PKEY_free(key);
    // as the daemon configures it (proxy/tls.cpp): TLS 1.2 and 1.3 only
    SSL_CTX_set_min_proto_version(server_ctx, TLS1_2_VERSION);
  }
  ~tls_pair() {
    SSL_free(server);
    SSL_free(client);
    SSL_CTX_free(server_ctx);
    SSL_CTX_free(client_ctx);
  }
  tls_pair(const tls_pair&) = delete;
  tls_pair& operator=(const tls_pair&) = delete;

  void start() {
    server = SSL_new(server_ctx);
    client = SSL_new(client_ctx);
    SSL_set_bio(server, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
    SSL_set_bio(client, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
    SSL_set_accept_state(server);
    SSL_set_connect_state(client);
  }

  static void move(SSL* from, SSL* to) {
    char buf[16384];
    int n;
    while ((n = BIO_read(SSL_get_wbio(from), buf, sizeof buf)) > 0)
      BIO_write(SSL_get_rbio(to), buf, n);
  }

  // Runs the handshake; the server's failure as Asio reports it (engine::perform).
  boost::system::error_code server_error() {
    ERR_clear_error();
    for (int round = 0; round < 10; ++round) {
      SSL_do_handshake(client);
      ERR_clear_error();  // the client's own errors are not the server's
      move(client, server);
      if (int rc = SSL_do_handshake(server); rc <= 0) {
        if (SSL_get_error(server, rc) == SSL_ERROR_SSL)
          return {static_cast<int>(ERR_get_error()), boost::asio::error::get_ssl_category()};
      } else if (SSL_is_init_finished(server) && SSL_is_init_finished(client)) {
        return {};
      }
      move(server, client);
    }
    return {};
  }

  // The server handshake fed raw bytes instead of a ClientHello.
  boost::system::error_code server_error_for(std::string_view bytes) {
    server = SSL_new(server_ctx);
    SSL_set_bio(server, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
    SSL_set_accept_state(server);
    BIO_write(SSL_get_rbio(server), bytes.data(), static_cast<int>(bytes.size()));
    ERR_clear_error();
    int rc = SSL_do_handshake(server);
    if (rc <= 0 && SSL_get_error(server, rc) == SSL_ERROR_SSL)
      return {static_cast<int>(ERR_get_error()), boost::asio::error::get_ssl_category()};
    return {};
  }
};

}  // namespace

TEST_CASE("a handshake that works gives no error (the in-memory pair is sound)", "[tls]") {
  tls_pair p;
  p.start();
  CHECK_FALSE(p.server_error());
}

TEST_CASE("TLS failures from real OpenSSL handshakes", "[tls]") {
  SECTION("plain HTTP to the TLS port") {
    tls_pair p;
    auto ec = p.server_error_for("GET / HTTP/1.1\r\nHost: learn.example.com\r\n\r\n");
    INFO(ec.message());
    CHECK(http::classify_tls_failure(ec) == http::tls_failure::plain_http);
  }
  SECTION("a forward-proxy CONNECT") {
    tls_pair p;
    auto ec = p.server_error_for("CONNECT learn.example.com:443 HTTP/1.1\r\n\r\n");
    INFO(ec.message());
    CHECK(http::classify_tls_failure(ec) == http::tls_failure::plain_http);
  }
  SECTION("a TLS 1.1-only client") {
    tls_pair p;
    SSL_CTX_set_security_level(p.client_ctx, 0);
    SSL_CTX_set_max_proto_version(p.client_ctx, TLS1_1_VERSION);
    p.start();
    auto ec = p.server_error();
    INFO(ec.message());
    CHECK(http::classify_tls_failure(ec) == http::tls_failure::version);
  }
  SECTION("no cipher suite in common (TLS 1.2, RSA-only suite against an EC certificate)") {
    tls_pair p;
    SSL_CTX_set_max_proto_version(p.client_ctx, TLS1_2_VERSION);
    SSL_CTX_set_cipher_list(p.client_ctx, "AES128-SHA");
    p.start();
    auto ec = p.server_error();
    INFO(ec.message());
    CHECK(http::classify_tls_failure(ec) == http::tls_failure::cipher);
  }
  SECTION("no group in common (TLS 1.3)") {
    tls_pair p;
    SSL_CTX_set_min_proto_version(p.client_ctx, TLS1_3_VERSION);
    SSL_CTX_set1_groups_list(p.client_ctx, "X448");
    SSL_CTX_set1_groups_list(p.server_ctx, "P-256");
    p.start();
    auto ec = p.server_error();
    INFO(ec.message());
    CHECK(http::classify_tls_failure(ec) == http::tls_failure::cipher);
  }
  SECTION("the client does not trust our certificate") {
    tls_pair p;
    SSL_CTX_set_verify(p.client_ctx, SSL_VERIFY_PEER, nullptr);
    p.start();
    auto ec = p.server_error();
    INFO(ec.message());
    CHECK(http::classify_tls_failure(ec) == http::tls_failure::certificate);
  }
  SECTION("garbage that is not TLS nor HTTP") {
    tls_pair p;
    auto ec = p.server_error_for(std::string(64, '\x7f'));
    INFO(ec.message());
    CHECK(http::classify_tls_failure(ec) == http::tls_failure::other);  // "wrong version number"
  }
}

TEST_CASE("TLS failures from the transport", "[tls]") {
  namespace asio = boost::asio;
  using boost::system::error_code;
  CHECK(http::classify_tls_failure(boost::beast::error::timeout) == http::tls_failure::timeout);
  CHECK(http::classify_tls_failure(asio::error::operation_aborted) == http::tls_failure::timeout);
  CHECK(http::classify_tls_failure(asio::error::timed_out) == http::tls_failure::timeout);
  CHECK(http::classify_tls_failure(asio::ssl::error::stream_truncated) ==
        http::tls_failure::closed);
  CHECK(http::classify_tls_failure(asio::error::eof) == http::tls_failure::closed);
  CHECK(http::classify_tls_failure(asio::error::connection_reset) == http::tls_failure::closed);
  // an errno OpenSSL saw on the socket, packed as OpenSSL 3 packs system errors
  CHECK(http::classify_tls_failure(error_code(static_cast<int>(ERR_SYSTEM_FLAG | ECONNRESET),
                                              asio::error::get_ssl_category())) ==
        http::tls_failure::closed);
  CHECK(http::classify_tls_failure(asio::ssl::error::unspecified_system_error) ==
        http::tls_failure::other);
  CHECK(http::classify_tls_failure(asio::error::no_memory) == http::tls_failure::other);
}

TEST_CASE("TLS failure labels", "[tls]") {
  std::set<std::string_view> seen;
  for (std::size_t k = 0; k < http::tls_failure_count; ++k)
    seen.insert(label(static_cast<http::tls_failure>(k)));
  CHECK(seen == std::set<std::string_view>{"timeout", "closed", "version", "cipher", "certificate",
                                           "plain_http", "other"});
}

TEST_CASE("site() finds the same counters from every thread, and each metrics its own",
          "[metrics]") {
  // Each thread caches what it looked up: a second metrics object on the same thread (and at
  // the same address, once the first is gone) must not get the first one's counters.
  site_counters* first = nullptr;
  {
    account::metrics a;
    first = &a.site("learn.example.com");
    CHECK(&a.site("learn.example.com") == first);
    site_counters* from_other_thread = nullptr;
    std::thread([&] { from_other_thread = &a.site("learn.example.com"); }).join();
    CHECK(from_other_thread == first);
    CHECK(&a.site("other.example.com") != first);
    a.site("learn.example.com").upstream_bytes += 5;
  }
  for (int i = 0; i < 3; ++i) {
    account::metrics b;  // often where `a` was
    auto& c = b.site("learn.example.com");
    CHECK(c.upstream_bytes.load() == 0);
    c.upstream_bytes += 7;
    CHECK(&b.site("learn.example.com") == &c);
    CHECK(b.site("learn.example.com").upstream_bytes.load() == 7);
  }
}
