// The access log: the exact line for a record, escaping of hostile paths, query handling,
// the file target's reopen after a rename (logrotate), concurrent writers, write errors.
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "account/access_log.hpp"

using namespace storecache;
using namespace storecache::account;
using storecache::http::protocol;
using storecache::http::request_head;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using config::access_log_query;
using config::access_log_target;

namespace {

// 2025-03-04T09:15:02.347Z
std::chrono::system_clock::time_point sample_time() {
  return std::chrono::system_clock::time_point(std::chrono::milliseconds(1741079702347));
}

struct sample {
  request_head req;
  config::site site;
  std::string path = "/media/intro.mp4";

  sample() {
    req.method = "GET";
    req.proto = protocol::http2;
    req.client_address = boost::asio::ip::make_address("10.20.0.31");
    req.connection_id = 17;
    req.stream_id = 5;
    site.hosts = {"learn.example.com"};
  }

  account::request_record record() const {
    return account::request_record{
        .req = req,
        .site = &site,
        .path = path,
        .status = 200,
        .bytes = 1048576,
        .cache = account::cache_outcome::hit,
        .bytes_from_cache = true,
        .upstream_status = 0,
        .upstream_time = {},
        .why = {},
        .ttfb = 412us,
        .total = 12817us,
        .end_time = sample_time(),
        .content = usage::content_class::video,
        .dev = {usage::os_family::ios, usage::browser_family::safari, 17},
        .tls = usage::tls_version::tls1_3};
  }
};

std::string line_for(const sample& s, access_log_query q = access_log_query::redact) {
  return account::format_access_line(s.record(), q);
}

// The value of key in a line (the raw text after "key=", up to the next field).
std::string field(const std::string& line, const std::string& key) {
  auto at = line.find(" " + key + "=");
  if (line.rfind(key + "=", 0) == 0)
    at = 0;
  else if (at != std::string::npos)
    ++at;
  REQUIRE(at != std::string::npos);
  at += key.size() + 1;
  if (line[at] != '"') return line.substr(at, line.find(' ', at) - at);
  std::size_t end = at + 1;
  while (line[end] != '"')
    end += line[end] == '\\' ? 2 : 1;
  return line.substr(at, end + 1 - at);
}

std::vector<std::string> read_lines(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);)
    out.push_back(line);
  return out;
}

class scratch_dir {
 public:
  scratch_dir() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() / ("storecache-alog-test-" + std::to_string(::getpid()) +
                                         "-" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~scratch_dir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

config::log_settings to_file(const fs::path& p, access_log_query q = access_log_query::redact) {
  config::log_settings s;
  s.access_log = access_log_target::file;
  s.access_log_file = p;
  s.query = q;
  return s;
}

}  // namespace

TEST_CASE("access log: the line for a cache hit over h2", "[access_log]") {
  sample s;
  CHECK(line_for(s) ==
        "time=2025-03-04T09:15:02.347Z client=10.20.0.31 site=learn.example.com method=GET "
        "path=/media/intro.mp4 status=200 bytes=1048576 ms=12.817 ttfb_ms=0.412 cache=hit "
        "upstream_status=- upstream_ms=- proto=h2 tls=TLSv1.3 cert=- device=ios/safari conn=17 "
        "stream=5 why=-");
}

TEST_CASE("access log: the device certificate as log_client_cert shows it", "[access_log]") {
  sample s;
  account::request_record r = s.record();
  r.client_cert = "sha256:0f1e2d3c";
  CHECK(field(account::format_access_line(r, access_log_query::redact), "cert") ==
        "sha256:0f1e2d3c");
  r.client_cert = "CN=tablet 7,O=Store 12";
  CHECK(field(account::format_access_line(r, access_log_query::redact), "cert") ==
        "\"CN=tablet 7,O=Store 12\"");
  r.status = 403;
  r.client_cert = {};
  r.why = "denied: client_cert";
  const std::string line = account::format_access_line(r, access_log_query::redact);
  CHECK(field(line, "cert") == "-");
  CHECK(field(line, "why") == "\"denied: client_cert\"");
}

TEST_CASE("access log: a local answer and a miss", "[access_log]") {
  sample s;
  s.req.proto = protocol::http1_1;
  s.req.client_address = boost::asio::ip::make_address("2001:db8::7");
  {
    account::request_record r = s.record();
    r.site = nullptr;
    r.status = 421;
    r.bytes = 0;
    r.cache = account::cache_outcome::local;
    r.ttfb = {};
    r.why = "no site for this name";
    r.dev = {};
    r.tls = usage::tls_version::tls1_2;
    std::string line = account::format_access_line(r, access_log_query::redact);
    CHECK(field(line, "client") == "2001:db8::7");
    CHECK(field(line, "site") == "-");
    CHECK(field(line, "status") == "421");
    CHECK(field(line, "ttfb_ms") == "-");
    CHECK(field(line, "cache") == "local");
    CHECK(field(line, "proto") == "http/1.1");
    CHECK(field(line, "tls") == "TLSv1.2");
    CHECK(field(line, "device") == "other/other");
    CHECK(field(line, "why") == "\"no site for this name\"");
  }
  {
    account::request_record r = s.record();
    r.cache = account::cache_outcome::miss;
    r.upstream_status = 200;
    r.upstream_time = 8250us;
    std::string line = account::format_access_line(r, access_log_query::redact);
    CHECK(field(line, "upstream_status") == "200");
    CHECK(field(line, "upstream_ms") == "8.250");
  }
  {
    // An upstream that never answered (timeout): a time, but no status.
    account::request_record r = s.record();
    r.status = 504;
    r.upstream_time = 30s;
    std::string line = account::format_access_line(r, access_log_query::redact);
    CHECK(field(line, "upstream_status") == "-");
    CHECK(field(line, "upstream_ms") == "30000.000");
  }
}

TEST_CASE("access log: the query is redacted, dropped or kept", "[access_log]") {
  sample s;
  s.path = "/v/a.mp4?Expires=1700000000&Signature=abc%2Fdef&Key-Pair-Id=K1";
  CHECK(field(line_for(s, access_log_query::redact), "path") == "/v/a.mp4?…");
  CHECK(field(line_for(s, access_log_query::drop), "path") == "/v/a.mp4");
  // Kept: quoted, because '=' would be ambiguous in a bare value.
  CHECK(field(line_for(s, access_log_query::keep), "path") ==
        "\"/v/a.mp4?Expires=1700000000&Signature=abc%2Fdef&Key-Pair-Id=K1\"");
  for (auto q : {access_log_query::redact, access_log_query::drop})
    CHECK(line_for(s, q).find("Signature") == std::string::npos);

  s.path = "/v/a.mp4?";  // an empty query is still a query
  CHECK(field(line_for(s), "path") == "/v/a.mp4?…");
  s.path = "/plain";
  CHECK(field(line_for(s), "path") == "/plain");
}

TEST_CASE("access log: a hostile path cannot break the line", "[access_log]") {
  sample s;
  s.path = std::string("/a b\"c\\d\ne\rf\tg\x01h\x7fi=j\xc3\xa9k\xe2\x80\xaew") + '\0' + "z";
  s.req.method = "G T";
  std::string line = line_for(s);
  CHECK(line.find('\n') == std::string::npos);
  CHECK(line.find('\r') == std::string::npos);
  for (unsigned char c : line)  // printable ASCII only: no query, so no "?…" mark
    CHECK((c >= 0x20 && c < 0x7f));
  CHECK(field(line, "path") == R"("/a b\"c\\d\ne\rf\tg\x01h\x7fi=j\xc3\xa9k\xe2\x80\xaew\x00z")");
  CHECK(field(line, "method") == "\"G T\"");
  // The rest of the line is still where it belongs.
  CHECK(field(line, "status") == "200");
  CHECK(line.find(" why=-") == line.size() - 6);

  // In a redacted path the mark is the only raw non-ASCII: a path cannot forge it.
  s.path = "/x\xe2\x80\xa6?q=1";
  CHECK(field(line_for(s), "path") == R"("/x\xe2\x80\xa6?…")");
  // An empty path (never routed) is "" rather than nothing.
  s.path = "";
  CHECK(field(line_for(s), "path") == "\"\"");
}

TEST_CASE("access log: client values are cut so a line stays whole in the journal",
          "[access_log]") {
  sample s;
  s.path = "/" + std::string(9999, '\x01') + "?q=1";  // the worst case: 4 bytes per byte
  s.req.method = std::string(100, 'M');
  account::request_record r = s.record();
  std::string why = "no site serves host '" + std::string(5000, 'h') + "'";
  r.why = why;
  std::string line = account::format_access_line(r, access_log_query::redact);
  CHECK(line.size() < 24 * 1024);  // journald's LineMax is 48 KiB
  std::string path = field(line, "path");
  CHECK(path.size() == 2 + 4095 * 4 + std::string("…(+5904 bytes)?…\"").size());
  CHECK_THAT(path, Catch::EndsWith("\\x01…(+5904 bytes)?…\""));
  CHECK(field(line, "method") == "\"" + std::string(64, 'M') + "…(+36 bytes)\"");
  CHECK_THAT(field(line, "why"),
             Catch::EndsWith("hhh…(+" + std::to_string(why.size() - 1024) + " bytes)\""));
  CHECK(field(line, "status") == "200");
}

TEST_CASE("access log: a file target, reopened after a rename", "[access_log]") {
  scratch_dir dir;
  const fs::path file = dir.path() / "access.log";
  sample s;
  auto log = access_log::open(to_file(file));
  REQUIRE(fs::exists(file));
  log->write(s.record());
  log->write(s.record());
  fs::rename(file, dir.path() / "access.log.1");  // logrotate: rename, then SIGUSR1
  log->write(s.record());                         // still the renamed file
  REQUIRE(log->reopen());
  log->write(s.record());
  log->write(s.record());

  auto old_lines = read_lines(dir.path() / "access.log.1");
  auto new_lines = read_lines(file);
  CHECK(old_lines.size() == 3);
  CHECK(new_lines.size() == 2);
  for (const auto& l : new_lines)
    CHECK(l == line_for(s));
  CHECK(log->write_errors() == 0);
}

TEST_CASE("access log: an existing file is appended to, never truncated", "[access_log]") {
  scratch_dir dir;
  const fs::path file = dir.path() / "access.log";
  { std::ofstream(file) << "earlier line\n"; }
  sample s;
  access_log::open(to_file(file))->write(s.record());
  auto lines = read_lines(file);
  REQUIRE(lines.size() == 2);
  CHECK(lines[0] == "earlier line");
}

TEST_CASE("access log: threads writing across a reopen lose and mix no line", "[access_log]") {
  scratch_dir dir;
  const fs::path file = dir.path() / "access.log";
  auto log = access_log::open(to_file(file));
  constexpr int threads = 4, per_thread = 2000;
  std::vector<sample> samples(threads);
  for (int t = 0; t < threads; ++t) {
    samples[t].path = "/t" + std::to_string(t) + std::string(200 + 300 * t, 'x');
    samples[t].req.stream_id = static_cast<std::uint32_t>(t);
  }
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t)
    workers.emplace_back([&, t] {
      const account::request_record r = samples[t].record();
      for (int i = 0; i < per_thread; ++i)
        log->write(r);
    });
  int rotations = 0;
  for (; rotations < 5; ++rotations) {
    std::this_thread::sleep_for(1ms);
    fs::rename(file, dir.path() / ("access.log." + std::to_string(rotations)));
    REQUIRE(log->reopen());
  }
  for (auto& w : workers)
    w.join();

  std::vector<int> counts(threads);
  std::size_t total = 0;
  for (const auto& entry : fs::directory_iterator(dir.path()))
    for (const auto& l : read_lines(entry.path())) {
      ++total;
      int t = std::stoi(field(l, "stream"));
      REQUIRE((t >= 0 && t < threads));
      CHECK(l == line_for(samples[t]));  // whole, not interleaved with another thread's
      ++counts[t];
    }
  CHECK(total == threads * per_thread);
  for (int t = 0; t < threads; ++t)
    CHECK(counts[t] == per_thread);
}

TEST_CASE("access log: write errors are counted, never thrown", "[access_log]") {
  if (!fs::exists("/dev/full")) {
    WARN("no /dev/full: skipped");
    return;
  }
  auto log = access_log::open(to_file("/dev/full"));
  sample s;
  for (int i = 0; i < 3; ++i)
    log->write(s.record());
  CHECK(log->write_errors() == 3);
}

TEST_CASE("access log: a file that cannot be opened", "[access_log]") {
  scratch_dir dir;
  const fs::path missing = dir.path() / "no-such-dir" / "access.log";
  CHECK_THROWS_WITH(access_log::open(to_file(missing)), Catch::Contains(missing.string()));

  // At run time (reload) the previous target stays.
  const fs::path file = dir.path() / "access.log";
  auto log = access_log::open(to_file(file));
  CHECK_FALSE(log->reconfigure(to_file(missing)));
  sample s;
  log->write(s.record());
  CHECK(read_lines(file).size() == 1);

  // A failed reopen keeps the file already open.
  fs::rename(file, dir.path() / "rotated.log");
  fs::permissions(dir.path(), fs::perms::owner_read | fs::perms::owner_exec);
  bool reopened = log->reopen();
  fs::permissions(dir.path(), fs::perms::owner_all);
  if (::geteuid() != 0) CHECK_FALSE(reopened);  // root may create it anyway
  log->write(s.record());
  if (!reopened) CHECK(read_lines(dir.path() / "rotated.log").size() == 2);
}

TEST_CASE("access log: reconfigure switches file, query handling and off", "[access_log]") {
  scratch_dir dir;
  const fs::path a = dir.path() / "a.log", b = dir.path() / "b.log";
  sample s;
  s.path = "/p?token=secret";
  auto log = access_log::open(to_file(a));
  log->write(s.record());
  REQUIRE(log->reconfigure(to_file(b, access_log_query::drop)));
  log->write(s.record());
  config::log_settings off;
  off.access_log = access_log_target::off;
  REQUIRE(log->reconfigure(off));
  log->write(s.record());
  REQUIRE(log->reopen());  // nothing to reopen when off
  log->write(s.record());

  auto la = read_lines(a), lb = read_lines(b);
  REQUIRE(la.size() == 1);
  REQUIRE(lb.size() == 1);
  CHECK(field(la[0], "path") == "/p?…");
  CHECK(field(lb[0], "path") == "/p");
}
