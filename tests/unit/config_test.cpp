// Loading and validating whole config files: defaults, every key, a table of bad configs each
// pinned to its key and line, host overlap, site lookup, and the shipped example.
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "config/config.hpp"
#include "config_test_util.hpp"

using namespace storecache::config;
using namespace storecache::config::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string replace(std::string_view text, std::string_view from, std::string_view to) {
  std::string s(text);
  auto at = s.find(from);
  REQUIRE(at != std::string::npos);
  s.replace(at, from.size(), to);
  return s;
}

fs::path example_path() {
  // tests/unit/config_test.cpp -> <repo>/config/storecache.example.toml
  return fs::path(__FILE__).parent_path().parent_path().parent_path() / "config" /
         "storecache.example.toml";
}

}  // namespace

TEST_CASE("a minimal config gets every default", "[config]") {
  temp_dir dir;
  auto r = parse(base, "base.toml", dir.path());
  INFO(all_errors(r));
  REQUIRE(r.ok());
  REQUIRE(r.errors.empty());
  const config& c = *r.cfg;
  CHECK(c.source == "base.toml");
  REQUIRE(c.server.listen.size() == 1);
  CHECK(c.server.listen[0].host == "0.0.0.0");
  CHECK(c.server.listen[0].port == 8443);
  CHECK(c.server.workers == 0);
  CHECK(c.admin.listen.text() == "127.0.0.1:9090");
  CHECK(c.timeout.client_header == 10s);
  CHECK(c.timeout.client_idle == 60s);
  CHECK(c.timeout.upstream_connect == 5s);
  CHECK(c.timeout.upstream_first_byte == 30s);
  CHECK(c.timeout.upstream_idle == 30s);
  CHECK(c.timeout.shutdown_grace == 30s);
  CHECK(c.limit.max_header_bytes == 16384);
  CHECK(c.limit.max_header_count == 100);
  CHECK(c.limit.max_uri_bytes == 8192);
  CHECK(c.limit.max_request_body == 10ull << 20);
  CHECK(c.limit.max_connections == 10000);
  CHECK(c.limit.h2_max_concurrent_streams == 100);
  CHECK(c.cache.dir == "/var/cache/storecache");
  CHECK(c.cache.max_size == 10ull << 30);
  CHECK(c.cache.max_object_size == 4ull << 30);

  REQUIRE(c.sites.size() == 1);
  const site& s = c.sites[0];
  CHECK(s.name() == "learn.example.com");
  CHECK(s.upstream == "https://lms.example.com");
  CHECK(s.upstream_scheme == "https");
  CHECK(s.upstream_host == "lms.example.com");
  CHECK(s.upstream_port == 443);
  CHECK(s.upstream_sni == "lms.example.com");
  CHECK(s.upstream_host_header == "lms.example.com");
  CHECK(s.upstream_ca.empty());
  CHECK_FALSE(s.allow_http_upstream);
  CHECK(s.upstream_max_idle == 16);
  // Relative paths resolve against the config's directory, and come out absolute.
  CHECK(s.tls.cert == fs::absolute(dir.path()) / "site.crt");
  CHECK(s.tls.key == fs::absolute(dir.path()) / "site.key");
  CHECK(s.tls.cert.is_absolute());
  // No [server] certificate: the first site's is the default.
  CHECK(c.server.default_tls.cert == s.tls.cert);
  CHECK(c.server.default_tls.key == s.tls.key);
}

TEST_CASE("a small cache alone is no error: max_object_size follows max_size", "[config]") {
  temp_dir dir;
  auto r = parse(std::string(base) + "[cache]\nmax_size = \"2GiB\"\n", "small.toml", dir.path());
  INFO(all_errors(r));
  REQUIRE(r.ok());
  CHECK(r.cfg->cache.max_size == 2ull << 30);
  CHECK(r.cfg->cache.max_object_size == 2ull << 30);
  // written, it is checked as before
  auto w = parse(std::string(base) + "[cache]\nmax_size = \"2GiB\"\nmax_object_size = \"3GiB\"\n",
                 "small.toml", dir.path());
  CHECK_FALSE(w.ok());
}

TEST_CASE("every key is read", "[config]") {
  temp_dir dir;
  const std::string text = R"(
[server]
listen = ["0.0.0.0:443", "[::]:443", "127.0.0.1:8443"]
workers = 3
tls_cert = "default.crt"
tls_key = "default.key"

[admin]
listen = "[::1]:9191"

[timeouts]
client_header = "250ms"
client_idle = "5m"
upstream_connect = 7
upstream_first_byte = "1h"
upstream_idle = "45s"
shutdown_grace = "2s"

[limits]
max_header_bytes = "32KiB"
max_header_count = 50
max_uri_bytes = "2KiB"
max_request_body = "1MiB"
max_connections = 20
h2_max_concurrent_streams = 1000

[cache]
dir = "cache"
max_size = "200GiB"
max_object_size = 1048576

[[site]]
hosts = ["Learn.Example.COM", "learn-alt.example.com."]
upstream = "http://LMS.example.com:8080"
allow_http_upstream = true
tls_cert = "site.crt"
tls_key = "site.key"
upstream_max_idle = 0

[[site]]
hosts = ["[2001:db8::5]", "10.1.2.3"]
upstream = "https://[2001:db8::1]:8443/"
upstream_ca = "ca.pem"
upstream_sni = "CDN.example.net"
upstream_host_header = "cdn.example.net:8443"
)";
  auto r = parse(text, "full.toml", dir.path());
  INFO(all_errors(r));
  REQUIRE(r.ok());
  const config& c = *r.cfg;
  REQUIRE(c.server.listen.size() == 3);
  CHECK(c.server.listen[1].host == "::");
  CHECK(c.server.listen[2].text() == "127.0.0.1:8443");
  CHECK(c.server.workers == 3);
  CHECK(c.server.default_tls.cert == fs::absolute(dir.path()) / "default.crt");
  CHECK(c.admin.listen.host == "::1");
  CHECK(c.admin.listen.port == 9191);
  CHECK(c.timeout.client_header == 250ms);
  CHECK(c.timeout.client_idle == 5min);
  CHECK(c.timeout.upstream_connect == 7s);
  CHECK(c.timeout.upstream_first_byte == 1h);
  CHECK(c.timeout.upstream_idle == 45s);
  CHECK(c.timeout.shutdown_grace == 2s);
  CHECK(c.limit.max_header_bytes == 32 * 1024);
  CHECK(c.limit.max_header_count == 50);
  CHECK(c.limit.max_uri_bytes == 2048);
  CHECK(c.limit.max_request_body == 1ull << 20);
  CHECK(c.limit.max_connections == 20);
  CHECK(c.limit.h2_max_concurrent_streams == 1000);
  CHECK(c.cache.dir == fs::absolute(dir.path()) / "cache");
  CHECK(c.cache.max_size == 200ull << 30);
  CHECK(c.cache.max_object_size == 1048576);

  REQUIRE(c.sites.size() == 2);
  const site& a = c.sites[0];
  CHECK(a.hosts == std::vector<std::string>{"learn.example.com", "learn-alt.example.com"});
  CHECK(a.upstream == "http://LMS.example.com:8080");
  CHECK(a.upstream_scheme == "http");
  CHECK(a.upstream_host == "lms.example.com");
  CHECK(a.upstream_port == 8080);
  CHECK(a.upstream_host_header == "lms.example.com:8080");
  CHECK(a.upstream_sni == "lms.example.com");
  CHECK(a.allow_http_upstream);
  CHECK(a.upstream_max_idle == 0);

  const site& b = c.sites[1];
  CHECK(b.hosts == std::vector<std::string>{"2001:db8::5", "10.1.2.3"});
  CHECK(b.upstream_host == "2001:db8::1");
  CHECK(b.upstream_port == 8443);
  CHECK(b.upstream_sni == "cdn.example.net");
  CHECK(b.upstream_host_header == "cdn.example.net:8443");
  CHECK(b.upstream_ca == fs::absolute(dir.path()) / "ca.pem");
  CHECK(b.tls.empty());  // uses the default certificate

  CHECK(c.find_site("[2001:db8::5]:443") == &b);
  CHECK(c.find_site("10.1.2.3") == &b);
  CHECK(c.find_site("LEARN-ALT.example.com.") == &a);
}

namespace {

struct bad_case {
  std::string_view name;
  std::string text;
  std::string_view key;   // of the one diagnostic expected
  std::size_t line;       // 0: no single place
  std::string_view says;  // a piece of its message
};

std::vector<bad_case> bad_cases() {
  const std::string b(base);
  return {
      {"TOML syntax", "[server\nlisten = []\n", "", 1, ""},
      {"TOML duplicate key", b + "upstream = \"https://x.example.com\"\n", "", 8, "upstream"},
      {"unknown table, close to a known one", "[cahce]\ndir = \"x\"\n" + b, "cahce", 1,
       "did you mean 'cache'?"},
      {"unknown site key", b + "upstrem_ca = \"ca.pem\"\n", "site[0].upstrem_ca", 8,
       "did you mean 'upstream_ca'?"},
      {"unknown key far from any", b + "colour = \"blue\"\n", "site[0].colour", 8,
       "unknown key 'colour'"},
      {"key in the wrong table", b + "[cache]\nworkers = 4\n", "cache.workers", 9,
       "belongs in [server]"},
      {"listen is a string", replace(b, "[\"0.0.0.0:8443\"]", "\"0.0.0.0:8443\""), "server.listen",
       2, "expected an array"},
      {"listen is empty", replace(b, "[\"0.0.0.0:8443\"]", "[]"), "server.listen", 2,
       "at least one"},
      {"listen by name", replace(b, "\"0.0.0.0:8443\"", "\"0.0.0.0:8443\", \"localhost:443\""),
       "server.listen[1]", 2, "not an IPv4 address"},
      {"listen port 0", replace(b, "8443", "0"), "server.listen[0]", 2, "out of range"},
      {"listen port too big", replace(b, "8443", "70000"), "server.listen[0]", 2, "out of range"},
      {"listen IPv6 unbracketed", replace(b, "\"0.0.0.0:8443\"", "\"::1:443\""), "server.listen[0]",
       2, "brackets"},
      {"listen element not a string", replace(b, "\"0.0.0.0:8443\"", "443"), "server.listen[0]", 2,
       "expected a string, found an integer"},
      {"listen twice", replace(b, "\"0.0.0.0:8443\"", "\"0.0.0.0:8443\", \"0.0.0.0:8443\""),
       "server.listen[1]", 2, "listed twice"},
      {"no [server]", b.substr(b.find("[[site]]")), "server.listen", 0, "is required"},
      {"no listen", replace(b, "listen = [\"0.0.0.0:8443\"]", "workers = 1"), "server.listen", 1,
       "is required"},
      {"server is not a table", "server = 1\n" + b.substr(b.find("[[site]]")), "server", 1,
       "expected a table"},
      {"workers negative", replace(b, "[server]", "[server]\nworkers = -1"), "server.workers", 2,
       "between 0 and 1024"},
      {"workers a string", replace(b, "[server]", "[server]\nworkers = \"4\""), "server.workers", 2,
       "expected an integer, found a string"},
      {"admin on a server address", b + "[admin]\nlisten = \"0.0.0.0:8443\"\n", "admin.listen", 9,
       "also a server.listen address"},
      {"admin bad address", b + "[admin]\nlisten = \"127.0.0.1\"\n", "admin.listen", 9,
       "has no port"},
      {"duration unit", b + "[timeouts]\nclient_idle = \"10x\"\n", "timeouts.client_idle", 9,
       "unknown unit 'x'"},
      {"duration zero", b + "[timeouts]\nupstream_connect = 0\n", "timeouts.upstream_connect", 9,
       "greater than zero"},
      {"duration float", b + "[timeouts]\nshutdown_grace = 1.5\n", "timeouts.shutdown_grace", 9,
       "found a float"},
      {"duration without unit", b + "[timeouts]\nclient_header = \"10\"\n",
       "timeouts.client_header", 9, "has no unit"},
      {"header bytes too big", b + "[limits]\nmax_header_bytes = \"2MiB\"\n",
       "limits.max_header_bytes", 9, "between 1 KiB and 1 MiB (got 2 MiB)"},
      {"header bytes too small", b + "[limits]\nmax_header_bytes = 512\n",
       "limits.max_header_bytes", 9, "between 1 KiB and 1 MiB"},
      {"header count zero", b + "[limits]\nmax_header_count = 0\n", "limits.max_header_count", 9,
       "between 1 and 1000"},
      {"uri bytes too small", b + "[limits]\nmax_uri_bytes = 100\n", "limits.max_uri_bytes", 9,
       "between 256 B and 1 MiB"},
      {"negative request body", b + "[limits]\nmax_request_body = -1\n", "limits.max_request_body",
       9, "negative"},
      {"streams too many", b + "[limits]\nh2_max_concurrent_streams = 1001\n",
       "limits.h2_max_concurrent_streams", 9, "between 1 and 1000"},
      {"no connections", b + "[limits]\nmax_connections = 0\n", "limits.max_connections", 9,
       "at least 1"},
      {"size unit", b + "[cache]\nmax_size = \"10XB\"\n", "cache.max_size", 9, "unknown unit 'XB'"},
      {"negative size", b + "[cache]\nmax_size = -1\n", "cache.max_size", 9, "negative"},
      {"object larger than cache", b + "[cache]\nmax_size = \"1GiB\"\nmax_object_size = \"2GiB\"\n",
       "cache.max_object_size", 10, "2 GiB is larger than cache.max_size (1 GiB)"},
      {"object larger than the default cache", b + "[cache]\nmax_object_size = \"20GiB\"\n",
       "cache.max_object_size", 9, "larger than cache.max_size (10 GiB)"},
      {"empty cache dir", b + "[cache]\ndir = \"\"\n", "cache.dir", 9, "must not be empty"},
      {"http upstream", replace(b, "https://", "http://"), "site[0].upstream", 5,
       "allow_http_upstream = true"},
      {"upstream path", replace(b, "lms.example.com\"", "lms.example.com/lms\""),
       "site[0].upstream", 5, "must not have a path"},
      {"upstream query", replace(b, "lms.example.com\"", "lms.example.com?a=1\""),
       "site[0].upstream", 5, "must not have a query"},
      {"upstream userinfo", replace(b, "https://", "https://bob:pw@"), "site[0].upstream", 5,
       "user info"},
      {"upstream scheme", replace(b, "https://", "wss://"), "site[0].upstream", 5,
       "unsupported scheme 'wss'"},
      {"upstream port", replace(b, "lms.example.com\"", "lms.example.com:0\""), "site[0].upstream",
       5, "out of range"},
      {"no upstream", replace(b, "upstream = \"https://lms.example.com\"\n", ""),
       "site[0].upstream", 3, "is required"},
      {"allow_http not a bool", b + "allow_http_upstream = \"yes\"\n",
       "site[0].allow_http_upstream", 8, "expected a boolean"},
      {"no hosts", replace(b, "hosts = [\"learn.example.com\"]\n", ""), "site[0].hosts", 3,
       "is required"},
      {"hosts empty", replace(b, "[\"learn.example.com\"]", "[]"), "site[0].hosts", 4,
       "at least one"},
      {"hosts a string", replace(b, "[\"learn.example.com\"]", "\"learn.example.com\""),
       "site[0].hosts", 4, "expected an array"},
      {"host with port", replace(b, "learn.example.com", "learn.example.com:443"),
       "site[0].hosts[0]", 4, "has a port"},
      {"wildcard host", replace(b, "learn.example.com", "*.example.com"), "site[0].hosts[0]", 4,
       "wildcard"},
      {"bad host name", replace(b, "learn.example.com", "learn example.com"), "site[0].hosts[0]", 4,
       "contains ' '"},
      {"host twice in one site",
       replace(b, "\"learn.example.com\"", "\"learn.example.com\", \"LEARN.example.com\""),
       "site[0].hosts[1]", 4, "also a host of this site"},
      {"cert without key", replace(b, "tls_key = \"site.key\"\n", ""), "site[0].tls_key", 6,
       "tls_cert is set but tls_key is not"},
      {"key without cert", replace(b, "tls_cert = \"site.crt\"\n", ""), "site[0].tls_cert", 6,
       "tls_key is set but tls_cert is not"},
      {"cert missing", replace(b, "site.crt", "missing.crt"), "site[0].tls_cert", 6,
       "does not exist"},
      {"cert is a directory", replace(b, "site.crt", "."), "site[0].tls_cert", 6, "is a directory"},
      {"ca missing", b + "upstream_ca = \"nope/ca.pem\"\n", "site[0].upstream_ca", 8,
       "does not exist"},
      {"server cert missing",
       replace(b, "[server]", "[server]\ntls_cert = \"x.crt\"\ntls_key = \"site.key\""),
       "server.tls_cert", 2, "does not exist"},
      {"no certificate at all", replace(b, "tls_cert = \"site.crt\"\ntls_key = \"site.key\"\n", ""),
       "server.tls_cert", 1, "no certificate anywhere"},
      {"[site] instead of [[site]]", replace(b, "[[site]]", "[site]"), "site", 3, "write [[site]]"},
      {"no site",
       b.substr(0, b.find("[[site]]")) + "tls_cert = \"site.crt\"\ntls_key = \"site.key\"\n",
       "site", 0, "at least one [[site]]"},
      {"idle too many", b + "upstream_max_idle = 2000\n", "site[0].upstream_max_idle", 8,
       "between 0 and 1024"},
      {"bad sni", b + "upstream_sni = \"lms example\"\n", "site[0].upstream_sni", 8,
       "contains ' '"},
      {"header injection", b + "upstream_host_header = \"lms.example.com\\r\\nX-A: b\"\n",
       "site[0].upstream_host_header", 8, "contains"},
  };
}

}  // namespace

TEST_CASE("bad configs: each error names its key and line", "[config]") {
  temp_dir dir;
  for (const auto& c : bad_cases()) {
    SECTION(std::string(c.name)) {
      auto r = parse(c.text, "bad.toml", dir.path());
      INFO(c.text);
      check_single_error(r, c.key, c.line, c.says);
    }
  }
}

TEST_CASE("a config with many problems reports them all, in file order", "[config]") {
  temp_dir dir;
  const std::string text = R"([server]
listen = ["0.0.0.0:0"]
wrokers = 2
[timeouts]
client_idle = "1 fortnight"
[cache]
max_size = "1GiB"
max_object_size = "2GiB"
[[site]]
hosts = ["learn.example.com"]
upstream = "http://lms.example.com/path"
tls_cert = "missing.crt"
)";
  auto r = parse(text, "many.toml", dir.path());
  REQUIRE_FALSE(r.ok());
  std::vector<std::pair<std::string, std::size_t>> got;
  for (const auto& e : r.errors)
    got.emplace_back(e.key, e.line);
  const std::vector<std::pair<std::string, std::size_t>> want = {
      {"server.listen[0]", 2},      {"server.wrokers", 3},    {"timeouts.client_idle", 5},
      {"cache.max_object_size", 8}, {"site[0].upstream", 11}, {"site[0].tls_key", 12},
      {"site[0].tls_cert", 12},
  };
  INFO(all_errors(r));
  CHECK(got == want);
  CHECK_THAT(r.errors[1].message, Catch::Contains("did you mean 'workers'?"));
}

TEST_CASE("a host name belongs to one site: overlap names both", "[config]") {
  temp_dir dir;
  const std::string text = std::string(base) + R"(
[[site]]
hosts = ["other.example.com", "Learn.Example.com"]
upstream = "https://other.example.net"
tls_cert = "other.crt"
tls_key = "other.key"
)";
  auto r = parse(text, "overlap.toml", dir.path());
  INFO(all_errors(r));
  REQUIRE(r.errors.size() == 1);
  const diagnostic& d = r.errors[0];
  CHECK(d.key == "site[1].hosts[1]");
  CHECK(d.line == 10);
  CHECK(d.column == 31);
  CHECK_THAT(d.message, Catch::Contains("'learn.example.com' is also a host of site[0] (line 4)"));
  CHECK(d.to_string() ==
        "overlap.toml:10:31: site[1].hosts[1]: 'learn.example.com' is also a host of site[0] "
        "(line 4); a name belongs to one site only");
}

TEST_CASE("find_site: case-insensitive, port and trailing dot ignored", "[config]") {
  temp_dir dir;
  const std::string text = std::string(base) + R"(
[[site]]
hosts = ["b.example.com", "a.example.com", "c.example.com"]
upstream = "https://other.example.net"
)";
  auto r = parse(text, "sites.toml", dir.path());
  INFO(all_errors(r));
  REQUIRE(r.ok());
  const config& c = *r.cfg;
  const site* learn = &c.sites[0];
  const site* other = &c.sites[1];
  CHECK(c.find_site("learn.example.com") == learn);
  CHECK(c.find_site("LEARN.Example.Com") == learn);
  CHECK(c.find_site("Learn.Example.COM:443") == learn);
  CHECK(c.find_site("learn.example.com.") == learn);
  CHECK(c.find_site("learn.example.com:8443") == learn);
  CHECK(c.find_site("A.EXAMPLE.COM") == other);
  CHECK(c.find_site("b.example.com") == other);
  CHECK(c.find_site("c.example.com:1") == other);
  CHECK(c.find_site("d.example.com") == nullptr);
  CHECK(c.find_site("example.com") == nullptr);
  CHECK(c.find_site("learn.example.co") == nullptr);
  CHECK(c.find_site("learn.example.com.evil") == nullptr);
  CHECK(c.find_site("") == nullptr);
  CHECK(c.find_site("learn.example.com:x") == nullptr);
  CHECK(c.find_site(std::string(300, 'a')) == nullptr);

  // A copy looks up in its own sites, not the original's.
  config copy = c;
  CHECK(copy.find_site("a.example.com") == &copy.sites[1]);

  // Built by hand, without index_hosts(): the same answers through the fallback scan...
  config hand;
  hand.sites.resize(2);
  hand.sites[0].hosts = {"x.example.com"};
  hand.sites[1].hosts = {"y.example.com", "[::1]"};
  CHECK(hand.find_site("Y.example.com:443") == &hand.sites[1]);
  CHECK(hand.find_site("[::1]:8443") == &hand.sites[1]);
  CHECK(hand.find_site("z.example.com") == nullptr);
  // ...and through the index once built.
  hand.index_hosts();
  CHECK(hand.find_site("X.EXAMPLE.COM") == &hand.sites[0]);
  CHECK(hand.find_site("[::1]") == &hand.sites[1]);
  CHECK(hand.find_site("z.example.com") == nullptr);
}

TEST_CASE("load(): from a file, paths relative to its directory", "[config]") {
  temp_dir dir;
  auto file =
      dir.write("etc/storecache.toml", replace(replace(base, "\"site.crt\"", "\"tls/site.crt\""),
                                               "\"site.key\"", "\"tls/site.key\""));
  dir.write("etc/tls/site.crt", "x");
  dir.write("etc/tls/site.key", "x");
  auto r = load(file);
  INFO(all_errors(r));
  REQUIRE(r.ok());
  CHECK(r.cfg->source == file);
  CHECK(r.cfg->sites[0].tls.cert == dir.path() / "etc/tls/site.crt");

  // The same text read from elsewhere does not find the files: they are relative to the file.
  auto moved = dir.write("storecache.toml", read_file(file));
  auto r2 = load(moved);
  REQUIRE_FALSE(r2.ok());
  REQUIRE(r2.errors.size() == 2);
  CHECK(r2.errors[0].file == moved.string());
  CHECK(r2.errors[0].key == "site[0].tls_cert");

  auto missing = load(dir.path() / "nope.toml");
  REQUIRE_FALSE(missing.ok());
  REQUIRE(missing.errors.size() == 1);
  CHECK(missing.errors[0].line == 0);
  CHECK_THAT(missing.errors[0].to_string(), Catch::Contains("nope.toml: cannot open"));
}

TEST_CASE("unreadable files are refused", "[config]") {
  temp_dir dir;
  auto key = dir.path() / "site.key";
  fs::permissions(key, fs::perms::none);
  if (::geteuid() == 0) {
    // root reads any file, so access(R_OK) cannot fail here; the daemon's own user may differ.
    WARN("running as root: the unreadable-file check cannot be exercised");
    CHECK(parse(base, "perm.toml", dir.path()).ok());
  } else {
    auto r = parse(base, "perm.toml", dir.path());
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].key == "site[0].tls_key");
    CHECK_THAT(r.errors[0].message, Catch::Contains("not readable"));
  }
}

TEST_CASE("diagnostic::to_string", "[config]") {
  CHECK(diagnostic{"a.toml", 3, 7, "site[0].upstream", "bad"}.to_string() ==
        "a.toml:3:7: site[0].upstream: bad");
  CHECK(diagnostic{"a.toml", 0, 0, "site", "none"}.to_string() == "a.toml: site: none");
  CHECK(diagnostic{"a.toml", 1, 1, "", "syntax"}.to_string() == "a.toml:1:1: syntax");
}

namespace {

// The example with its /etc/storecache/ paths pointed into dir, where those files exist.
std::string example_in(const temp_dir& dir, std::string text) {
  const std::string etc = "/etc/storecache/";
  for (auto at = text.find(etc); at != std::string::npos; at = text.find(etc, at))
    text.replace(at, etc.size(), dir.path().string() + "/");
  for (const char* f : {"tls/default.crt", "tls/default.key", "tls/learn.example.com.crt",
                        "tls/learn.example.com.key", "upstream-ca.pem", "mdm-device-ca.pem",
                        "mdm-device-ca.crl", "cloudfront-K2JCJMDEHXQW5F.pem"})
    dir.write(f, "x");
  return text;
}

// "# tls_cert = ..." -> "tls_cert = ..." and "# [[site.cache.rule]]" -> "[[site.cache.rule]]";
// prose comments stay.
std::string uncomment_keys(const std::string& text) {
  std::istringstream in(text);
  std::string out, line;
  while (std::getline(in, line)) {
    std::size_t name_end = 2;
    while (name_end < line.size() &&
           ((line[name_end] >= 'a' && line[name_end] <= 'z') || line[name_end] == '_'))
      ++name_end;
    bool is_key = line.rfind("# ", 0) == 0 && name_end > 2 && line.compare(name_end, 3, " = ") == 0;
    bool is_header = line.rfind("# [", 0) == 0 && line.back() == ']';
    out += (is_key || is_header ? line.substr(2) : line) + "\n";
  }
  return out;
}

}  // namespace

TEST_CASE("the example config validates, with and without its optional keys", "[config]") {
  temp_dir dir;
  const std::string example = read_file(example_path());
  REQUIRE_FALSE(example.empty());

  auto r = parse(example_in(dir, example), "example.toml", dir.path());
  INFO(all_errors(r));
  REQUIRE(r.ok());
  // Its values are the defaults (a default-constructed config has them).
  const config defaults;
  const config& c = *r.cfg;
  CHECK(c.server.workers == defaults.server.workers);
  CHECK(c.admin.listen.text() == defaults.admin.listen.text());
  CHECK(c.timeout.client_header == defaults.timeout.client_header);
  CHECK(c.timeout.client_idle == defaults.timeout.client_idle);
  CHECK(c.timeout.upstream_connect == defaults.timeout.upstream_connect);
  CHECK(c.timeout.upstream_first_byte == defaults.timeout.upstream_first_byte);
  CHECK(c.timeout.upstream_idle == defaults.timeout.upstream_idle);
  CHECK(c.timeout.shutdown_grace == defaults.timeout.shutdown_grace);
  CHECK(c.limit.max_header_bytes == defaults.limit.max_header_bytes);
  CHECK(c.limit.max_header_count == defaults.limit.max_header_count);
  CHECK(c.limit.max_uri_bytes == defaults.limit.max_uri_bytes);
  CHECK(c.limit.max_request_body == defaults.limit.max_request_body);
  CHECK(c.limit.max_connections == defaults.limit.max_connections);
  CHECK(c.limit.h2_max_concurrent_streams == defaults.limit.h2_max_concurrent_streams);
  CHECK(c.cache.dir == defaults.cache.dir);
  CHECK(c.cache.max_size == defaults.cache.max_size);
  CHECK(c.cache.max_object_size == defaults.cache.max_object_size);
  CHECK(c.log.level == defaults.log.level);
  CHECK(c.log.access_log == defaults.log.access_log);
  CHECK(c.log.query == defaults.log.query);
  REQUIRE(c.sites.size() == 1);
  CHECK(c.sites[0].upstream_max_idle == site{}.upstream_max_idle);
  CHECK(c.sites[0].allow_http_upstream == site{}.allow_http_upstream);
  const site_cache_policy default_policy;
  const site_cache_policy& policy = c.sites[0].cache;
  CHECK(policy.enabled == default_policy.enabled);
  CHECK(policy.default_ttl == default_policy.default_ttl);
  CHECK(policy.stale_if_error == default_policy.stale_if_error);
  CHECK(policy.heuristic_fraction == default_policy.heuristic_fraction);
  CHECK(policy.heuristic_max == default_policy.heuristic_max);
  CHECK(policy.cdn_cache_control == default_policy.cdn_cache_control);
  CHECK(policy.ignore_query_params == default_policy.ignore_query_params);
  CHECK(policy.rules.empty());

  // Uncomment every "# key = value" line: the optional keys must be valid as written too, and
  // the derived ones must show what the default would have been.
  const std::string all_keys = uncomment_keys(example);
  REQUIRE(all_keys != example);
  auto full = parse(example_in(dir, all_keys), "example-all.toml", dir.path());
  INFO(all_errors(full));
  REQUIRE(full.ok());
  const site& s = full.cfg->sites[0];
  CHECK_FALSE(s.upstream_ca.empty());
  CHECK(s.upstream_sni == c.sites[0].upstream_sni);
  CHECK(s.upstream_host_header == c.sites[0].upstream_host_header);
  CHECK(full.cfg->server.default_tls.cert == dir.path() / "tls/default.crt");
  // The rule examples, uncommented with their table headers.
  const auto& rules = s.cache.rules;
  REQUIRE(rules.size() == 3);
  CHECK(rules[2].pattern == "/pluginfile.php/*");
  CHECK(rules[2].authorize_with_upstream);
  CHECK(s.cache.authorize_cache == c.sites[0].cache.authorize_cache);
  // [site.signed_urls]: the default scheme, and the uncommented CloudFront example.
  CHECK(c.sites[0].signed_urls.scheme == signed_url_scheme::upstream);
  CHECK(s.signed_urls.scheme == signed_url_scheme::cloudfront);
  REQUIRE(s.signed_urls.keys.size() == 1);
  CHECK(s.signed_urls.keys[0].id == "K2JCJMDEHXQW5F");
  CHECK(s.signed_urls.paths == std::vector<std::string>{"*"});
  CHECK(rules[0].pattern == "/api/*");
  CHECK(rules[0].bypass);
  CHECK(rules[1].pattern == "*.mp4");
  CHECK(rules[1].ttl == std::chrono::hours(24 * 30));
  CHECK(match_rule(s.cache, "/api/progress") == &rules[0]);
  // [server]'s and [site.access]'s access keys.
  const auto& srv = full.cfg->server;
  CHECK(srv.allow_clients.size() == 3);
  CHECK(srv.listen[0].allow_clients.size() == 3);
  CHECK(srv.client.mode == client_cert_mode::off);
  CHECK(srv.client.log == client_cert_log::sha256);
  CHECK(c.sites[0].access.allow_clients.empty());
  CHECK(c.sites[0].access.client.mode == client_cert_mode::off);
  CHECK(s.access.allow_clients.size() == 1);
  CHECK(s.access.client.mode == client_cert_mode::optional);
  CHECK(s.access.client.crl.size() == 1);
  REQUIRE(s.access.rules.size() == 1);
  CHECK(s.access.rules[0].client_cert);
  CHECK(match_access_rule(s.access, "/secure/a.pdf") == &s.access.rules[0]);
}
