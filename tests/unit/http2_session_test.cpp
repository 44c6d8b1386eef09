// run_http2_session() against real clients: a TLS acceptor on 127.0.0.1:0 with a throwaway
// self-signed certificate and ALPN h2, a small scripted request_handler, and the real
// `nghttp` / `curl --http2` binaries as subprocesses. Where the client must misbehave on cue
// (hang up mid-request, sit idle, watch a graceful stop), a raw TLS client in this file
// writes the HTTP/2 frames itself.
#include <openssl/ssl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ssl.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "access/client_ledger.hpp"
#include "account/metrics.hpp"
#include "proxy/connection_context.hpp"
#include "proxy/request_handler.hpp"
#include "proxy/sessions.hpp"

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using storecache::http::exchange;
using storecache::http::response_head;
using storecache::proxy::connection_context;
using storecache::proxy::error_code;

namespace {

// --- helpers ----------------------------------------------------------------------------------

struct command_result {
  int status = -1;  // exit code, or -1 if it did not exit normally
  std::string out;
};

// A temp directory for this run (certificate, bodies, client logs), removed at exit.
const fs::path& scratch_dir() {
  static const struct scratch {
    fs::path path;
    ~scratch() {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  } dir{[] {
    char tmpl[] = "/tmp/storecache-h2-test-XXXXXX";
    return fs::path(::mkdtemp(tmpl));
  }()};
  return dir.path;
}

// Runs a shell command (bounded by `timeout`), returns its exit code and stdout.
command_result run(const std::string& cmd) {
  command_result r;
  // Clients' stderr (certificate warnings, nghttp's notes) goes to a log beside the cert.
  FILE* p = ::popen(
      ("timeout 60 " + cmd + " 2>>" + (scratch_dir() / "clients.log").string()).c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 65536> buf;
  std::size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0)
    r.out.append(buf.data(), n);
  const int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

std::size_t count(const std::string& hay, const std::string& needle) {
  std::size_t n = 0;
  for (auto pos = hay.find(needle); pos != std::string::npos; pos = hay.find(needle, pos + 1))
    ++n;
  return n;
}

// Deterministic body: byte i of any generated response, so a client can check every byte.
char pattern(std::uint64_t i) {
  return static_cast<char>((i ^ (i >> 8) ^ (i >> 17)) * 31 + 7);
}

std::string pattern_string(std::uint64_t n) {
  std::string s(n, '\0');
  for (std::uint64_t i = 0; i < n; ++i)
    s[i] = pattern(i);
  return s;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A self-signed certificate for 127.0.0.1, made once per test run in a temp directory.
const fs::path& cert_dir() {
  static const fs::path dir = [] {
    const fs::path& d = scratch_dir();
    const auto r =
        run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
            "-nodes -days 1 -subj /CN=127.0.0.1 -keyout " +
            (d / "key.pem").string() + " -out " + (d / "cert.pem").string() + " 2>/dev/null");
    if (r.status != 0) throw std::runtime_error("openssl req failed");
    return d;
  }();
  return dir;
}

// --- the handler the tests script through the path -------------------------------------------

struct test_handler final : storecache::proxy::request_handler {
  std::mutex mutex;
  std::vector<std::string> events;  // "late:<error>", "session-end", ... in order
  std::string last_head;            // /head: what the handler saw
  std::atomic<int> running{0};
  std::atomic<int> max_running{0};

  void record(std::string e) {
    std::lock_guard lock(mutex);
    events.push_back(std::move(e));
  }
  std::vector<std::string> snapshot() {
    std::lock_guard lock(mutex);
    return events;
  }

  static std::uint64_t number_after(std::string_view target, std::string_view prefix) {
    return std::stoull(std::string(target.substr(prefix.size())));
  }

  asio::awaitable<void> send_all(exchange& ex, std::uint64_t n, bool with_length) {
    response_head h;
    h.headers.push_back({"content-type", "application/octet-stream"});
    if (with_length) h.content_length = n;
    if (co_await ex.send_head(h, false)) co_return;
    std::string chunk;
    for (std::uint64_t off = 0; off < n;) {
      const std::uint64_t len = std::min<std::uint64_t>(32 * 1024, n - off);
      chunk.resize(len);
      for (std::uint64_t i = 0; i < len; ++i)
        chunk[i] = pattern(off + i);
      if (const error_code ec = co_await ex.send_body(asio::buffer(chunk))) {
        record("send:" + ec.message());
        co_return;
      }
      off += len;
    }
    co_await ex.finish();
  }

  // The session's own refusals (a 431, ...): answered with their status, recorded.
  asio::awaitable<void> refuse(exchange& ex, connection_context&, storecache::access::refusal why,
                               std::string) override {
    const unsigned status = storecache::access::status_of(why);
    record("refused:" + std::to_string(status));
    co_await send_text(ex, status, "refused\n");
  }

  asio::awaitable<void> send_text(exchange& ex, unsigned status, const std::string& body) {
    response_head h;
    h.status = status;
    h.content_length = body.size();
    h.headers.push_back({"Content-Type", "text/plain"});  // upper case on purpose
    h.headers.push_back({"Connection", "keep-alive"});    // must be dropped for h2
    if (co_await ex.send_head(h, body.empty())) co_return;
    if (body.empty()) co_return;
    if (co_await ex.send_body(asio::buffer(body))) co_return;
    co_await ex.finish();
  }

  asio::awaitable<void> sleep(std::chrono::milliseconds d) {
    asio::steady_timer t(co_await asio::this_coro::executor, d);
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
  }

  asio::awaitable<void> handle(exchange& ex, connection_context&) override {
    const int now = ++running;
    for (int m = max_running; now > m && !max_running.compare_exchange_weak(m, now);) {
    }
    co_await dispatch(ex);
    --running;
  }

  asio::awaitable<void> dispatch(exchange& ex) {
    const auto& req = ex.request();
    const std::string_view t = req.target;
    if (t.starts_with("/size/")) {
      co_await send_all(ex, number_after(t, "/size/"), true);
    } else if (t.starts_with("/nolen/")) {
      co_await send_all(ex, number_after(t, "/nolen/"), false);
    } else if (t.starts_with("/delay/")) {
      co_await sleep(std::chrono::milliseconds(number_after(t, "/delay/")));
      co_await send_text(ex, 200, "ok\n");
    } else if (t == "/echo") {
      std::string body;
      std::array<char, 8192> buf;
      error_code ec;
      for (;;) {
        const std::size_t n = co_await ex.read_body(asio::buffer(buf), ec);
        if (ec || n == 0) break;
        body.append(buf.data(), n);
        if (body.size() % (256 * 1024) < 8192) co_await sleep(1ms);  // a slowish reader
      }
      if (ec) {
        record("echo:" + ec.message());
        co_return;
      }
      co_await send_text(ex, 200, body);
    } else if (t.starts_with("/abort/")) {
      response_head h;  // no content-length: only the reset tells the client it is short
      if (co_await ex.send_head(h, false)) co_return;
      const auto body = pattern_string(number_after(t, "/abort/"));
      co_await ex.send_body(asio::buffer(body));
      ex.abort();
    } else if (t == "/wrong-length") {
      response_head h;
      h.content_length = 10;
      if (co_await ex.send_head(h, false)) co_return;
      co_await ex.send_body(asio::buffer("short", 5));
      const error_code ec = co_await ex.finish();
      record("wrong-length:" + std::string(ec ? "error" : "ok"));
    } else if (t == "/nothing") {
      co_return;  // the session must answer for us
    } else if (t.starts_with("/late/")) {
      co_await sleep(std::chrono::milliseconds(number_after(t, "/late/")));
      response_head h;
      const error_code ec = co_await ex.send_head(h, true);
      record(std::string("late:") + (ec ? "error" : "ok"));
    } else if (t.starts_with("/head") || req.method == "CONNECT") {
      std::string s = "method=" + req.method + "\nscheme=" + req.scheme +
                      "\nauthority=" + req.authority + "\ntarget=" + req.target +
                      "\nhas_body=" + std::to_string(req.has_body) + "\ncontent_length=" +
                      (req.content_length ? std::to_string(*req.content_length) : "none") +
                      "\nstream_id=" + std::to_string(req.stream_id) +
                      "\nproto=" + std::to_string(static_cast<int>(req.proto)) +
                      "\nclient=" + req.client_address.to_string() + "\n";
      for (const auto& h : req.headers)
        s += "h:" + h.name + "=" + h.value + "\n";
      {
        std::lock_guard lock(mutex);
        last_head = s;
      }
      co_await send_text(ex, req.method == "CONNECT" ? 405 : 200, s);
    } else {
      co_await send_text(ex, 404, "not found\n");
    }
  }
};

// --- the server --------------------------------------------------------------------------------

int select_h2(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
              unsigned int inlen, void*) {
  static const unsigned char h2[] = {2, 'h', '2'};
  unsigned char* o = nullptr;
  if (SSL_select_next_proto(&o, outlen, h2, sizeof h2, in, inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  *out = o;
  return SSL_TLSEXT_ERR_OK;
}

struct test_server {
  asio::io_context ioc{1};
  asio::ssl::context tls{asio::ssl::context::tls_server};
  asio::ip::tcp::acceptor acceptor{ioc};
  std::shared_ptr<storecache::config::config> cfg = std::make_shared<storecache::config::config>();
  test_handler handler;
  storecache::account::metrics stats;
  storecache::access::client_ledger* ledger = nullptr;  // set before connecting
  bool stopping = false;                                // touched on the io thread only
  std::atomic<int> active{0};
  std::atomic<int> sessions_done{0};
  std::thread thread;

  explicit test_server(std::chrono::milliseconds client_idle = 10s) {
    cfg->timeout.client_idle = client_idle;
    cfg->timeout.shutdown_grace = 5s;
    cfg->limit.max_header_bytes = 8 * 1024;
    cfg->limit.max_header_count = 60;
    cfg->limit.h2_max_concurrent_streams = 32;
    tls.use_certificate_chain_file((cert_dir() / "cert.pem").string());
    tls.use_private_key_file((cert_dir() / "key.pem").string(), asio::ssl::context::pem);
    SSL_CTX_set_alpn_select_cb(tls.native_handle(), select_h2, nullptr);
    asio::ip::tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
    acceptor.open(ep.protocol());
    acceptor.bind(ep);
    acceptor.listen();
    asio::co_spawn(ioc, accept_loop(), asio::detached);
    thread = std::thread([this] { ioc.run(); });
  }

  ~test_server() {
    // Drain like the daemon does, so no coroutine frame is torn down mid-flight.
    asio::post(ioc, [this] {
      stopping = true;
      acceptor.close();
    });
    for (int i = 0; i < 200 && active > 0; ++i)
      std::this_thread::sleep_for(50ms);
    ioc.stop();
    thread.join();
  }

  std::uint16_t port() const { return acceptor.local_endpoint().port(); }
  std::string url(std::string_view path) const {
    return "https://127.0.0.1:" + std::to_string(port()) + std::string(path);
  }
  void stop_gracefully() {
    asio::post(ioc, [this] { stopping = true; });
  }

  asio::awaitable<void> accept_loop() {
    std::uint64_t next_id = 1;
    for (;;) {
      auto [ec, sock] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      asio::co_spawn(ioc, session(std::move(sock), next_id++), asio::detached);
    }
  }

  asio::awaitable<void> session(asio::ip::tcp::socket sock, std::uint64_t id) {
    ++active;
    const auto client = sock.remote_endpoint();
    storecache::http::tls_stream stream(boost::beast::tcp_stream(std::move(sock)), tls);
    auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::server,
                                                asio::as_tuple(asio::use_awaitable));
    if (!ec) {
      // Named fields only: members the lead adds later (rt, ...) keep their defaults.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
      connection_context ctx{.cfg = cfg,
                             .handler = handler,
                             .stats = stats,
                             .client = client,
                             .sni = "",
                             .connection_id = id,
                             .stopping = &stopping};
#pragma GCC diagnostic pop
      ctx.ledger = ledger;
      co_await storecache::proxy::run_http2_session(stream, ctx);
      handler.record("session-end");
      ++sessions_done;
    }
    --active;
  }

  bool wait_sessions_done(int n, std::chrono::milliseconds limit = 5s) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (sessions_done < n && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(10ms);
    return sessions_done >= n;
  }
};

// --- a raw HTTP/2 client for scripted misbehaviour ---------------------------------------------

struct frame {
  std::uint8_t type = 0, flags = 0;
  std::uint32_t stream = 0;
  std::string payload;
};
constexpr std::uint8_t DATA = 0, HEADERS = 1, RST_STREAM = 3, SETTINGS = 4, GOAWAY = 7;
constexpr std::uint8_t END_STREAM = 1, END_HEADERS = 4;

std::string frame_bytes(std::uint8_t type, std::uint8_t flags, std::uint32_t stream,
                        const std::string& payload) {
  std::string f;
  const auto len = payload.size();
  f += static_cast<char>(len >> 16);
  f += static_cast<char>(len >> 8);
  f += static_cast<char>(len);
  f += static_cast<char>(type);
  f += static_cast<char>(flags);
  for (int s = 24; s >= 0; s -= 8)
    f += static_cast<char>(stream >> s);
  return f + payload;
}

// HPACK "literal header field without indexing, new name", lengths under 127.
std::string hpack_literal(const std::string& name, const std::string& value) {
  return std::string(1, '\0') + static_cast<char>(name.size()) + name +
         static_cast<char>(value.size()) + value;
}

std::string get_request(std::uint32_t stream, const std::string& path) {
  const std::string block = hpack_literal(":method", "GET") + hpack_literal(":scheme", "https") +
                            hpack_literal(":authority", "127.0.0.1") + hpack_literal(":path", path);
  return frame_bytes(HEADERS, END_HEADERS | END_STREAM, stream, block);
}

std::vector<frame> parse_frames(const std::string& bytes) {
  std::vector<frame> out;
  std::size_t pos = 0;
  while (bytes.size() - pos >= 9) {
    const auto b = [&](std::size_t i) { return static_cast<std::uint8_t>(bytes[pos + i]); };
    const std::size_t len = (std::size_t{b(0)} << 16) | (std::size_t{b(1)} << 8) | b(2);
    if (bytes.size() - pos < 9 + len) break;
    frame f;
    f.type = b(3);
    f.flags = b(4);
    f.stream = ((std::uint32_t{b(5)} & 0x7f) << 24) | (std::uint32_t{b(6)} << 16) |
               (std::uint32_t{b(7)} << 8) | b(8);
    f.payload = bytes.substr(pos + 9, len);
    out.push_back(std::move(f));
    pos += 9 + len;
  }
  return out;
}

struct raw_result {
  bool finished = false;  // the server closed the connection before the deadline
  std::chrono::milliseconds elapsed{0};
  std::vector<frame> frames;
};

// Connects with ALPN h2, sends the preface, SETTINGS and `requests`, calls after_send(), then
// behaves as `mode` says.
enum class raw_mode {
  read_all,    // read until the server closes
  hang_up,     // close right after sending
  never_read,  // keep the connection open for the whole limit, reading nothing
};

raw_result raw_h2(std::uint16_t port, const std::string& requests, raw_mode mode,
                  const std::function<void()>& after_send, std::chrono::milliseconds limit,
                  const std::function<void()>& before_close = nullptr) {
  asio::io_context ioc;
  asio::ssl::context ctx{asio::ssl::context::tls_client};
  ctx.set_verify_mode(asio::ssl::verify_none);
  asio::ssl::stream<asio::ip::tcp::socket> s(ioc, ctx);
  SSL_set_alpn_protos(s.native_handle(), reinterpret_cast<const unsigned char*>("\x02h2"), 3);
  raw_result r;
  std::string received;
  const auto start = std::chrono::steady_clock::now();
  auto client = [&]() -> asio::awaitable<void> {
    co_await s.next_layer().async_connect({asio::ip::make_address("127.0.0.1"), port},
                                          asio::use_awaitable);
    co_await s.async_handshake(asio::ssl::stream_base::client, asio::use_awaitable);
    const std::string out = std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") +
                            frame_bytes(SETTINGS, 0, 0, "") + requests;
    co_await asio::async_write(s, asio::buffer(out), asio::use_awaitable);
    if (after_send) after_send();
    if (mode == raw_mode::hang_up) {
      s.next_layer().close();
      r.finished = true;
      co_return;
    }
    if (mode == raw_mode::never_read) {
      asio::steady_timer t(ioc, limit);
      co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
      if (before_close) before_close();
      co_return;
    }
    std::array<char, 16384> buf;
    for (;;) {
      auto [ec, n] =
          co_await s.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
      received.append(buf.data(), n);
      if (ec) break;
    }
    r.finished = true;
  };
  asio::co_spawn(ioc, client(), asio::detached);
  // never_read holds for `limit` after the handshake: give it the time to get there.
  ioc.run_for(mode == raw_mode::never_read ? limit + 2s : limit);
  r.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  r.frames = parse_frames(received);
  return r;
}

std::string rst_stream(std::uint32_t stream, std::uint32_t code) {
  std::string p;
  for (int s = 24; s >= 0; s -= 8)
    p += static_cast<char>(code >> s);
  return frame_bytes(RST_STREAM, 0, stream, p);
}

bool has_frame(const raw_result& r, std::uint8_t type, std::uint32_t stream = 0,
               std::uint8_t flags = 0) {
  for (const auto& f : r.frames)
    if (f.type == type && f.stream == stream && (f.flags & flags) == flags) return true;
  return false;
}

}  // namespace

// --- tests ---------------------------------------------------------------------------------------

TEST_CASE("h2: a GET is answered and the request head is built", "[http2]") {
  test_server srv;
  const auto r = run("curl -sk --http2 -H 'Cookie: a=1' -H 'Cookie: b=2' -H 'X-Test: yes' " +
                     srv.url("/head?q=1"));
  REQUIRE(r.status == 0);
  CHECK(r.out.find("method=GET\n") != std::string::npos);
  CHECK(r.out.find("scheme=https\n") != std::string::npos);
  CHECK(r.out.find("authority=127.0.0.1:" + std::to_string(srv.port()) + "\n") !=
        std::string::npos);
  CHECK(r.out.find("target=/head?q=1\n") != std::string::npos);
  CHECK(r.out.find("has_body=0\n") != std::string::npos);
  CHECK(r.out.find("stream_id=1\n") != std::string::npos);
  CHECK(r.out.find("proto=1\n") != std::string::npos);  // protocol::http2
  CHECK(r.out.find("client=127.0.0.1\n") != std::string::npos);
  CHECK(r.out.find("h:x-test=yes\n") != std::string::npos);
  CHECK(r.out.find("h:cookie=a=1; b=2\n") != std::string::npos);
  CHECK(r.out.find("h:host=") == std::string::npos);

  // Response headers went out lower-cased, connection-specific ones dropped.
  const auto v = run("nghttp -v " + srv.url("/head"));
  REQUIRE(v.status == 0);
  CHECK(v.out.find("content-type: text/plain") != std::string::npos);
  CHECK(v.out.find("connection:") == std::string::npos);
  CHECK(v.out.find(":status: 200") != std::string::npos);
  // Our SETTINGS: the configured stream limit, the 256 KiB window, the header list limit.
  CHECK(v.out.find("[SETTINGS_MAX_CONCURRENT_STREAMS(0x03):32]") != std::string::npos);
  CHECK(v.out.find("[SETTINGS_INITIAL_WINDOW_SIZE(0x04):262144]") != std::string::npos);
  CHECK(v.out.find("[SETTINGS_MAX_HEADER_LIST_SIZE(0x06):8192]") != std::string::npos);
}

TEST_CASE("h2: several concurrent streams on one connection", "[http2]") {
  test_server srv;
  const auto start = std::chrono::steady_clock::now();
  const auto r = run("nghttp -n -v -m 8 " + srv.url("/delay/400"));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  REQUIRE(r.status == 0);
  CHECK(count(r.out, ":status: 200") == 8);
  CHECK(srv.handler.max_running >= 4);  // the handlers overlapped
  CHECK(elapsed < 2500ms);              // sequential would take 3.2 s
}

TEST_CASE("h2: a 20 MiB response arrives byte-exact", "[http2]") {
  test_server srv;
  const std::uint64_t size = 20ull << 20;
  const fs::path out = cert_dir() / "big.out";
  const auto start = std::chrono::steady_clock::now();
  const auto r = run("nghttp " + srv.url("/size/" + std::to_string(size)) + " > " + out.string());
  const auto elapsed = std::chrono::steady_clock::now() - start;
  REQUIRE(r.status == 0);
  // Loopback moves this in well under a second; a stall per window round trip (Nagle and
  // delayed ACK, a lost writer wake-up) shows up as many seconds.
  CHECK(elapsed < 8s);
  const std::string got = read_file(out);
  REQUIRE(got.size() == size);
  CHECK(got == pattern_string(size));
  fs::remove(out);

  // Without a content-length the end is the END_STREAM that finish() sends.
  const auto r2 = run("curl -sk --http2 " + srv.url("/nolen/100000"));
  REQUIRE(r2.status == 0);
  CHECK(r2.out == pattern_string(100000));
}

TEST_CASE("h2: a POST body is echoed through flow control", "[http2]") {
  test_server srv;
  // 3 MiB: more than the stream (256 KiB) and connection (1 MiB) windows, so the upload only
  // completes if reading the body gives the window back.
  std::string body(3u << 20, '\0');
  std::mt19937 rng(42);
  for (auto& c : body)
    c = static_cast<char>(rng());
  const fs::path in = cert_dir() / "post.in";
  const fs::path out = cert_dir() / "post.out";
  std::ofstream(in, std::ios::binary) << body;
  const auto r = run("nghttp -d " + in.string() + " " + srv.url("/echo") + " > " + out.string());
  REQUIRE(r.status == 0);
  const std::string got = read_file(out);
  CHECK(got.size() == body.size());
  CHECK(got == body);

  // Two uploads at once on one connection share the connection window without deadlock.
  const auto r2 = run("nghttp -n -v -m 2 -d " + in.string() + " " + srv.url("/echo"));
  REQUIRE(r2.status == 0);
  CHECK(count(r2.out, ":status: 200") == 2);
  fs::remove(in);
  fs::remove(out);
}

TEST_CASE("h2: abort resets the stream so a short body is never complete", "[http2]") {
  test_server srv;
  const auto v = run("nghttp -v " + srv.url("/abort/100000"));
  CHECK(v.out.find("RST_STREAM") != std::string::npos);
  CHECK(v.out.find("INTERNAL_ERROR") != std::string::npos);
  // curl reports the reset as an HTTP/2 stream error (exit 92), not success.
  const auto c = run("curl -sk --http2 -o /dev/null " + srv.url("/abort/100000"));
  CHECK(c.status == 92);

  // A body shorter than its content-length is refused by finish() and reset too.
  const auto w = run("curl -sk --http2 -o /dev/null " + srv.url("/wrong-length"));
  CHECK(w.status == 92);
  const auto ev = srv.handler.snapshot();
  CHECK(std::find(ev.begin(), ev.end(), "wrong-length:error") != ev.end());

  // A handler that returns without answering: the session answers 500 for it.
  const auto n = run("curl -sk --http2 -o /dev/null -w '%{http_code}' " + srv.url("/nothing"));
  CHECK(n.out == "500");
}

TEST_CASE("h2: request heads over the limits get 431", "[http2]") {
  test_server srv;  // max_header_bytes 8 KiB, max_header_count 60
  const std::string big(9000, 'a');
  const auto r = run("curl -sk --http2 -o /dev/null -w '%{http_code}' -H 'x-big: " + big + "' " +
                     srv.url("/head"));
  CHECK(r.out == "431");

  std::string many, some;
  for (int i = 0; i < 70; ++i)
    many += " -H 'x-h" + std::to_string(i) + ": v'";
  for (int i = 0; i < 40; ++i)
    some += " -H 'x-h" + std::to_string(i) + ": v'";
  const auto m =
      run("curl -sk --http2 -o /dev/null -w '%{http_code}'" + many + " " + srv.url("/head"));
  CHECK(m.out == "431");
  const auto ok =
      run("curl -sk --http2 -o /dev/null -w '%{http_code}'" + some + " " + srv.url("/head"));
  CHECK(ok.out == "200");

  // A 431 is a stream answer, not a connection error: two such streams on one connection
  // are both answered.
  const auto both =
      run("nghttp -n -v -H 'x-big: " + big + "' " + srv.url("/head") + " " + srv.url("/head?2"));
  CHECK(count(both.out, ":status: 431") == 2);
}

TEST_CASE("h2: CONNECT reaches the handler", "[http2]") {
  test_server srv;
  const std::string block =
      hpack_literal(":method", "CONNECT") + hpack_literal(":authority", "example.com:443");
  const auto r = raw_h2(
      srv.port(), frame_bytes(HEADERS, END_HEADERS, 1, block), raw_mode::read_all,
      [&] { srv.stop_gracefully(); }, 5s);
  CHECK(r.finished);
  CHECK(has_frame(r, HEADERS, 1));
  const auto head = [&] {
    std::lock_guard lock(srv.handler.mutex);
    return srv.handler.last_head;
  }();
  CHECK(head.find("method=CONNECT\n") != std::string::npos);
  CHECK(head.find("target=example.com:443\n") != std::string::npos);
}

TEST_CASE("h2: a request without :path is reset with PROTOCOL_ERROR", "[http2]") {
  test_server srv;
  const std::string block = hpack_literal(":method", "GET") + hpack_literal(":scheme", "https") +
                            hpack_literal(":authority", "127.0.0.1");
  const auto r = raw_h2(
      srv.port(),
      frame_bytes(HEADERS, END_HEADERS | END_STREAM, 1, block) + get_request(3, "/head"),
      raw_mode::read_all, [&] { srv.stop_gracefully(); }, 5s);
  CHECK(r.finished);
  CHECK(has_frame(r, RST_STREAM, 1));
  CHECK(has_frame(r, HEADERS, 3));  // the connection went on
}

TEST_CASE("h2: an idle connection gets GOAWAY and is closed", "[http2]") {
  test_server srv(500ms);
  const auto r = raw_h2(srv.port(), "", raw_mode::read_all, nullptr, 5s);
  CHECK(r.finished);
  CHECK(has_frame(r, SETTINGS));
  CHECK(has_frame(r, GOAWAY));
  CHECK(r.elapsed >= 400ms);
  CHECK(r.elapsed < 3s);
  CHECK(srv.wait_sessions_done(1));
}

TEST_CASE("h2: graceful stop lets the open stream finish, then closes", "[http2]") {
  test_server srv;
  const auto r = raw_h2(
      srv.port(), get_request(1, "/delay/800"), raw_mode::read_all, [&] { srv.stop_gracefully(); },
      5s);
  CHECK(r.finished);
  CHECK(has_frame(r, GOAWAY));
  CHECK(has_frame(r, HEADERS, 1));
  CHECK(has_frame(r, DATA, 1, END_STREAM));  // the whole response came before the close
  CHECK(r.elapsed >= 700ms);
  CHECK(r.elapsed < 4s);
  CHECK(srv.wait_sessions_done(1));
}

TEST_CASE("h2: the session outlives a handler whose client hung up", "[http2]") {
  test_server srv;
  const auto r = raw_h2(srv.port(), get_request(1, "/late/300"), raw_mode::hang_up, nullptr, 5s);
  CHECK(r.finished);
  REQUIRE(srv.wait_sessions_done(1));
  const auto ev = srv.handler.snapshot();
  // The handler's late call failed fast, and only then did run_http2_session return.
  REQUIRE(ev.size() == 2);
  CHECK(ev[0] == "late:error");
  CHECK(ev[1] == "session-end");
}

TEST_CASE("h2: a client reset stops the handler's sends, the connection goes on", "[http2]") {
  test_server srv;
  // Stream 1 asks for 50 MB and cancels it at once (CANCEL = 0x8); stream 3 must still be
  // answered on the same connection.
  const auto r = raw_h2(
      srv.port(), get_request(1, "/size/50000000") + rst_stream(1, 0x8) + get_request(3, "/head"),
      raw_mode::read_all, [&] { srv.stop_gracefully(); }, 5s);
  CHECK(r.finished);
  CHECK(has_frame(r, HEADERS, 3));
  REQUIRE(srv.wait_sessions_done(1));
  const auto ev = srv.handler.snapshot();
  // The handler learnt of the reset from send_body (or never started sending), and did not
  // hold the session: it ended after the handler.
  CHECK(std::find(ev.begin(), ev.end(), "session-end") == ev.end() - 1);
  CHECK(srv.handler.running == 0);
}

TEST_CASE("h2: a request body that never comes times out in read_body", "[http2]") {
  test_server srv(500ms);
  const std::string block = hpack_literal(":method", "POST") + hpack_literal(":scheme", "https") +
                            hpack_literal(":authority", "127.0.0.1") +
                            hpack_literal(":path", "/echo");
  // HEADERS without END_STREAM, then silence.
  const auto r = raw_h2(srv.port(), frame_bytes(HEADERS, END_HEADERS, 1, block), raw_mode::read_all,
                        nullptr, 5s);
  CHECK(r.finished);
  REQUIRE(srv.wait_sessions_done(1));
  const auto ev = srv.handler.snapshot();
  const std::string timed_out = "echo:" + error_code(asio::error::timed_out).message();
  CHECK(std::find(ev.begin(), ev.end(), timed_out) != ev.end());
  CHECK(has_frame(r, HEADERS, 1));  // the session answered for the handler that gave up (500)
  CHECK(has_frame(r, GOAWAY));      // then the idle connection was closed
}

TEST_CASE("h2: a client that stops reading is timed out, not waited on forever", "[http2]") {
  SECTION("flow control: the stream window never reopens, send_body times out") {
    test_server srv(500ms);
    int done_while_held = -1;
    raw_h2(srv.port(), get_request(1, "/size/50000000"), raw_mode::never_read, nullptr, 3s,
           [&] { done_while_held = srv.sessions_done; });
    CHECK(done_while_held == 1);  // the server gave up while the client still held on
    const auto ev = srv.handler.snapshot();
    const std::string timed_out = "send:" + error_code(asio::error::timed_out).message();
    CHECK(std::find(ev.begin(), ev.end(), timed_out) != ev.end());
  }
  SECTION("TCP: windows wide open, the socket write stalls and the connection is dropped") {
    test_server srv(500ms);
    // SETTINGS_INITIAL_WINDOW_SIZE = 2^31-1 and the connection window raised to match, so
    // only TCP back-pressure can stop the 50 MB.
    int done_while_held = -1;
    const std::string settings =
        frame_bytes(SETTINGS, 0, 0, std::string("\x00\x04\x7f\xff\xff\xff", 6));
    const std::string window_update = frame_bytes(0x8, 0, 0, std::string("\x7f\xff\x00\x00", 4));
    raw_h2(srv.port(), settings + window_update + get_request(1, "/size/50000000"),
           raw_mode::never_read, nullptr, 4s, [&] { done_while_held = srv.sessions_done; });
    CHECK(done_while_held == 1);
    const auto ev = srv.handler.snapshot();
    // The handler was blocked in send_body (back-pressure), then told the stream is gone.
    CHECK(std::find_if(ev.begin(), ev.end(),
                       [](const std::string& e) { return e.starts_with("send:"); }) != ev.end());
  }
}

TEST_CASE("h2: a bounded load with h2load: every request succeeds", "[http2][load]") {
  test_server srv;
  // 2000 requests, 4 connections, 16 streams in flight on each; bounded by count and by
  // run()'s 60 s timeout.
  const auto start = std::chrono::steady_clock::now();
  const auto r = run("h2load -n 2000 -c 4 -m 16 " + srv.url("/size/4096"));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  REQUIRE(r.status == 0);
  CHECK(r.out.find("2000 succeeded, 0 failed, 0 errored") != std::string::npos);
  CHECK(r.out.find("status codes: 2000 2xx") != std::string::npos);
  CHECK(elapsed < 20s);
  CHECK(srv.handler.max_running <= 4 * 16);  // never more than the streams clients may open
}

// --- reset floods (issue 15) ------------------------------------------------------------------

namespace {

std::string reset_pairs(std::uint32_t first_stream, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) {
    const auto id = first_stream + 2 * static_cast<std::uint32_t>(i);
    out += get_request(id, "/head") + rst_stream(id, 0x8);  // CANCEL
  }
  return out;
}

// The GOAWAY's (last stream id, error code), or nullopt.
std::optional<std::pair<std::uint32_t, std::uint32_t>> goaway_of(const raw_result& r) {
  for (const auto& f : r.frames) {
    if (f.type != GOAWAY || f.payload.size() < 8) continue;
    const auto word = [&](std::size_t at) {
      std::uint32_t v = 0;
      for (std::size_t i = 0; i < 4; ++i)
        v = (v << 8) | static_cast<std::uint8_t>(f.payload[at + i]);
      return v;
    };
    return std::pair{word(0) & 0x7fffffffu, word(4)};
  }
  return std::nullopt;
}

}  // namespace

TEST_CASE("h2: a reset flood gets GOAWAY ENHANCE_YOUR_CALM naming the last stream", "[http2]") {
  test_server srv;
  srv.cfg->limit.client_resets = 10;
  srv.cfg->limit.client_reset_window = 10s;
  // No ledger: the connection's own budget ends it.
  const auto r = raw_h2(srv.port(), reset_pairs(1, 500), raw_mode::read_all, nullptr, 5s);
  CHECK(r.finished);
  const auto g = goaway_of(r);
  REQUIRE(g);
  CHECK(g->second == 0xb);  // ENHANCE_YOUR_CALM
  // Over at the 11th reset (stream 21); a stream answered before its RST was read does not
  // count, hence the slack.
  CHECK(g->first >= 21);
  CHECK(g->first <= 61);
  CHECK(srv.wait_sessions_done(1));
  const auto text = srv.stats.render();
  CHECK(text.find("storecache_connections_closed_for_resets_total 1\n") != std::string::npos);
  CHECK(text.find("storecache_client_resets_total{protocol=\"h2\"} 11\n") != std::string::npos);
}

TEST_CASE("h2: resets within the budget leave the connection open", "[http2]") {
  test_server srv;
  srv.cfg->limit.client_resets = 10;
  const auto r = raw_h2(
      srv.port(), reset_pairs(1, 10) + get_request(21, "/head"), raw_mode::read_all,
      [&] { srv.stop_gracefully(); }, 5s);
  CHECK(r.finished);
  CHECK(has_frame(r, HEADERS, 21));
  const auto g = goaway_of(r);
  REQUIRE(g);
  CHECK(g->second == 0);  // the graceful stop's NO_ERROR, not ENHANCE_YOUR_CALM
}

TEST_CASE("h2: the address's budget spans connections; while penalized, one reset ends one",
          "[http2]") {
  test_server srv;
  srv.cfg->limit.client_resets = 10;
  storecache::access::client_ledger::limits lim;
  lim.resets = 10;
  lim.reset_window = 10s;
  lim.penalty = 30s;
  storecache::access::client_ledger ledger(lim);
  srv.ledger = &ledger;
  // Two connections of 6 resets each: each within its own budget, the address over at 11.
  raw_h2(srv.port(), reset_pairs(1, 6), raw_mode::never_read, nullptr, 300ms);
  REQUIRE(srv.wait_sessions_done(1));
  CHECK(ledger.totals().resets_noted == 6);
  CHECK(ledger.totals().over_budget == 0);
  const auto second = raw_h2(srv.port(), reset_pairs(1, 6), raw_mode::read_all, nullptr, 5s);
  const auto g = goaway_of(second);
  REQUIRE(g);
  CHECK(g->second == 0xb);
  CHECK(ledger.penalized(asio::ip::make_address("127.0.0.1"), std::chrono::steady_clock::now()));
  CHECK(ledger.totals().over_budget == 1);
  // Penalized: the next connection is ended at its first reset.
  const auto third = raw_h2(srv.port(), reset_pairs(1, 3), raw_mode::read_all, nullptr, 5s);
  const auto g3 = goaway_of(third);
  REQUIRE(g3);
  CHECK(g3->second == 0xb);
  CHECK(g3->first == 1);
  CHECK(srv.wait_sessions_done(3));
}
