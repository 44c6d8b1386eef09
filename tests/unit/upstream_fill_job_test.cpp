// A fill led through upstream::lead_fill against a scripted origin on loopback (plain HTTP, in
// this process) that answers, lies or is absent as each case chooses, with a fetch_report that
// records every call: what is stored, what the fill says, and what is reported for the counters
// and the usage history. No handler, no sessions: the fill alone.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>

#include "store_test_util.hpp"
#include "upstream/fill_job.hpp"

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace store_test;
using namespace storecache;
using upstream::fill;
using upstream::lead_result;
using upstream::upstream_error;

namespace {

// Every call, as made.
struct recording_report final : upstream::fetch_report {
  std::vector<unsigned> responses;
  std::vector<upstream_error> no_responses, failures;
  std::uint64_t body_bytes = 0;
  std::vector<std::uint64_t> exchanges;  // bytes of each exchange_done
  void response(unsigned status) override { responses.push_back(status); }
  void no_response(upstream_error e) override { no_responses.push_back(e); }
  void failed(upstream_error e) override { failures.push_back(e); }
  void body(std::size_t n) override { body_bytes += n; }
  void exchange_done(const cache::header_list&, std::uint64_t bytes) override {
    exchanges.push_back(bytes);
  }
};

// One connection: reads a request head, writes `answer` as it is, closes.
asio::awaitable<void> origin(tcp::acceptor& acceptor, std::string answer, std::string& request) {
  auto socket = co_await acceptor.async_accept(asio::use_awaitable);
  asio::streambuf in;
  co_await asio::async_read_until(socket, in, "\r\n\r\n", asio::use_awaitable);
  request.assign(asio::buffers_begin(in.data()), asio::buffers_end(in.data()));
  co_await asio::async_write(socket, asio::buffer(answer), asio::use_awaitable);
  socket.close();
}

struct rig {
  temp_dir dir{"fill-job"};
  asio::io_context io{1};
  tcp::acceptor acceptor{io, {asio::ip::make_address("127.0.0.1"), 0}};
  std::shared_ptr<upstream::wake_gate> gate = std::make_shared<upstream::wake_gate>();
  std::unique_ptr<upstream::cache_service> svc;
  std::shared_ptr<config::site> site = std::make_shared<config::site>();
  std::shared_ptr<recording_report> report = std::make_shared<recording_report>();
  std::string request_seen;

  rig() {
    config::cache_settings s;
    s.dir = dir.path;
    s.max_size = 64ull << 20;
    s.max_object_size = 16ull << 20;
    svc = std::make_unique<upstream::cache_service>(s, gate);
    site->hosts = {"learn.test"};
    site->upstream_scheme = "http";
    site->allow_http_upstream = true;
    site->upstream_host = "127.0.0.1";
    site->upstream_port = acceptor.local_endpoint().port();
    site->upstream_host_header = "origin.test";
  }
  ~rig() { svc->finish_disk_work(); }

  // Leads a fill of /v.mp4 with the origin answering `answer` (nothing listens when empty),
  // then runs until the fill has ended. Returns the lead's result; f gets the fill.
  lead_result lead(const std::string& answer, std::shared_ptr<fill>& f) {
    if (answer.empty())
      acceptor.close();
    else
      asio::co_spawn(io, origin(acceptor, answer, request_seen), asio::detached);
    auto joined = svc->inflight().join_or_create("https://learn.test/v.mp4",
                                                 asio::ip::make_address("192.0.2.1"));
    f = joined.f;
    http::request_head req;
    req.method = "GET";
    req.authority = "learn.test";
    req.target = "/v.mp4";
    req.client_address = asio::ip::make_address("192.0.2.1");
    req.headers = {{"range", "bytes=0-1"}};
    lead_result result;
    bool led = false;
    upstream::fill_request r{.f = f,
                             .path = "/v.mp4",
                             .site = site,
                             .pool = std::make_shared<upstream::upstream_pool>(
                                 io.get_executor(), *site, config::timeouts{}, nullptr),
                             .report = report,
                             .stored = std::nullopt,
                             .policy = {},
                             .orphans = {},
                             .hold = nullptr,
                             .interim_to = nullptr};
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          result = co_await upstream::lead_fill(*svc, io.get_executor(), req, std::move(r));
          led = true;
        },
        asio::detached);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    auto ended = [&] {
      const auto st = f->snapshot().st;
      return led && st != fill::state::head_pending && st != fill::state::streaming &&
             st != fill::state::body_done;
    };
    while (!ended() && std::chrono::steady_clock::now() < deadline)
      io.run_for(std::chrono::milliseconds(10));
    joined.reader.reset();
    io.run_for(std::chrono::milliseconds(50));  // the pump's last steps (its frame ends)
    REQUIRE(ended());
    return result;
  }
};

std::string body_of(std::size_t n) {
  std::string b(n, '\0');
  for (std::size_t i = 0; i < n; ++i)
    b[i] = static_cast<char>('a' + i % 26);
  return b;
}

}  // namespace

TEST_CASE("a storable response is streamed into the fill, stored and reported once", "[fill_job]") {
  rig t;
  const std::string body = body_of(5000);
  std::shared_ptr<fill> f;
  auto r = t.lead(
      "HTTP/1.1 200 OK\r\ncache-control: max-age=600\r\ncontent-type: video/mp4\r\n"
      "content-length: 5000\r\n\r\n" +
          body,
      f);
  CHECK(r.k == lead_result::streaming);
  CHECK(r.status == 200);
  CHECK(f->snapshot().st == fill::state::complete);
  // A fill asks for the whole object: the device's Range does not go upstream.
  CHECK(t.request_seen.find("GET /v.mp4 HTTP/1.1\r\nhost: origin.test\r\n") == 0);
  CHECK(t.request_seen.find("range") == std::string::npos);
  auto stored = t.svc->store().lookup("https://learn.test/v.mp4");
  REQUIRE(stored.has_value());
  CHECK(stored->status == cache::lookup_status::hit);
  CHECK(stored->meta.body_size == 5000);
  CHECK(t.report->responses == std::vector<unsigned>{200});
  CHECK(t.report->body_bytes == 5000);
  CHECK(t.report->exchanges == std::vector<std::uint64_t>{5000});
  CHECK(t.report->failures.empty());
  CHECK(t.report->no_responses.empty());
}

TEST_CASE("an origin that sends less than it declared: nothing stored, the fill failed",
          "[fill_job]") {
  rig t;
  std::shared_ptr<fill> f;
  auto r = t.lead("HTTP/1.1 200 OK\r\ncache-control: max-age=600\r\ncontent-length: 5000\r\n\r\n" +
                      body_of(2000),
                  f);
  CHECK(r.k == lead_result::streaming);  // the head was fine
  CHECK(f->snapshot().st == fill::state::failed);
  CHECK(f->snapshot().available == 2000);
  auto stored = t.svc->store().lookup("https://learn.test/v.mp4");
  CHECK((!stored || stored->status != cache::lookup_status::hit));
  CHECK(t.report->failures.size() == 1);
  CHECK(t.report->body_bytes == 2000);
  CHECK(t.report->exchanges == std::vector<std::uint64_t>{2000});  // the usage history still
}

TEST_CASE("no origin listening: no response, reported as such, the fill failed", "[fill_job]") {
  rig t;
  std::shared_ptr<fill> f;
  auto r = t.lead("", f);
  CHECK(r.k == lead_result::failed);
  CHECK(r.err != upstream_error::none);
  CHECK(f->snapshot().st == fill::state::failed);
  CHECK(t.report->no_responses.size() == 1);
  CHECK(t.report->responses.empty());
}

TEST_CASE("a response that may not be stored is handed back to pass through", "[fill_job]") {
  rig t;
  std::shared_ptr<fill> f;
  auto r = t.lead("HTTP/1.1 200 OK\r\ncache-control: no-store\r\ncontent-length: 3\r\n\r\nabc", f);
  CHECK(r.k == lead_result::not_shared);
  REQUIRE(r.call);
  CHECK(r.call->status() == 200);
  CHECK(f->snapshot().st == fill::state::not_shared);
  CHECK(t.report->responses == std::vector<unsigned>{200});
  auto stored = t.svc->store().lookup("https://learn.test/v.mp4");
  CHECK((!stored || stored->status != cache::lookup_status::hit));
}
