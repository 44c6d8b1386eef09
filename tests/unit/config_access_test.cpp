// [site.access], [[site.access.rule]], the access keys of [server] and per-listener
// allow_clients: defaults, every key read, and each mistake pinned to its key and line.
#include <catch2/catch.hpp>

#include "config/config.hpp"
#include "config_test_util.hpp"

using namespace storecache::config;
using namespace storecache::config::test;

namespace {

const std::string b(base);
const std::string sa = b + "[site.access]\n";  // keys from line 9

load_result bad(const temp_dir& dir, const std::string& text) {
  return parse(text, "bad.toml", dir.path());
}

}  // namespace

TEST_CASE("access: defaults admit everyone and ask for no certificate", "[config][access]") {
  temp_dir dir;
  auto r = parse(base, "base.toml", dir.path());
  INFO(all_errors(r));
  REQUIRE(r.ok());
  const auto& s = r.cfg->sites[0].access;
  CHECK(s.allow_clients.empty());
  CHECK(s.client.mode == client_cert_mode::off);
  CHECK(s.client.log == client_cert_log::sha256);
  CHECK(s.rules.empty());
  CHECK(r.cfg->server.allow_clients.empty());
  CHECK(r.cfg->server.client.mode == client_cert_mode::off);
  CHECK(r.cfg->server.listen[0].allow_clients.empty());
}

TEST_CASE("access: every key read", "[config][access]") {
  temp_dir dir;
  dir.write("devices.pem", "x");
  dir.write("devices.crl", "x");
  dir.write("more.crl", "x");
  const std::string text = R"([server]
listen = ["0.0.0.0:8443", { address = "[::]:8443", allow_clients = ["fd00::/8"] }]
allow_clients = ["10.0.0.0/8", "192.168.1.20"]
client_certs = "optional"
client_ca = "devices.pem"
client_crl = "devices.crl"
log_client_cert = "subject"
[[site]]
hosts = ["learn.example.com"]
upstream = "https://lms.example.com"
tls_cert = "site.crt"
tls_key = "site.key"
[site.access]
allow_clients = ["10.1.0.0/16", "::ffff:10.2.0.0/112"]
client_certs = "optional"
client_ca = "devices.pem"
client_crl = ["devices.crl", "more.crl"]
log_client_cert = "off"
[[site.access.rule]]
path = "/secure/*"
client_cert = true
[[site.access.rule]]
path = "/open/*"
)";
  auto r = parse(text, "good.toml", dir.path());
  INFO(all_errors(r));
  REQUIRE(r.ok());
  const auto& srv = r.cfg->server;
  REQUIRE(srv.allow_clients.size() == 2);
  CHECK(srv.allow_clients[1].text() == "192.168.1.20/32");
  REQUIRE(srv.listen.size() == 2);
  CHECK(srv.listen[0].allow_clients.size() == 2);    // [server]'s list
  REQUIRE(srv.listen[1].allow_clients.size() == 1);  // its own
  CHECK(srv.listen[1].allow_clients[0].text() == "fd00::/8");
  CHECK(srv.listen[1].text() == "[::]:8443");
  CHECK(srv.client.mode == client_cert_mode::optional);
  CHECK(srv.client.ca == dir.path() / "devices.pem");
  CHECK(srv.client.crl == std::vector<std::filesystem::path>{dir.path() / "devices.crl"});
  CHECK(srv.client.log == client_cert_log::subject);

  const auto& a = r.cfg->sites[0].access;
  REQUIRE(a.allow_clients.size() == 2);
  CHECK(a.allow_clients[1].text() == "10.2.0.0/16");
  CHECK(a.client.crl.size() == 2);
  CHECK(a.client.log == client_cert_log::off);
  REQUIRE(a.rules.size() == 2);
  CHECK(a.rules[0].pattern == "/secure/*");
  CHECK(a.rules[0].client_cert);
  CHECK_FALSE(a.rules[1].client_cert);
  CHECK(match_access_rule(a, "/secure/x.pdf") == &a.rules[0]);
  CHECK(match_access_rule(a, "/open/x") == &a.rules[1]);
  CHECK(match_access_rule(a, "/other") == nullptr);
}

TEST_CASE("access: bad networks", "[config][access]") {
  temp_dir dir;
  check_single_error(bad(dir, sa + "allow_clients = [\"10.0.0.0/33\"]\n"),
                     "site[0].access.allow_clients[0]", 9, "0..32");
  check_single_error(bad(dir, sa + "allow_clients = [\"10.0.0.0/8\", \"10.0.0.1/8\"]\n"),
                     "site[0].access.allow_clients[1]", 9, "bits set");
  check_single_error(bad(dir, sa + "allow_clients = [\"store-lan\"]\n"),
                     "site[0].access.allow_clients[0]", 9, "not an IP address");
  check_single_error(bad(dir, sa + "allow_clients = []\n"), "site[0].access.allow_clients", 9,
                     "at least one network");
  check_single_error(bad(dir, sa + "allow_clients = \"10.0.0.0/8\"\n"),
                     "site[0].access.allow_clients", 9, "array");
  check_single_error(
      bad(dir, "[server]\nlisten = [\"0.0.0.0:8443\"]\nallow_clients = [\"fd00::/7x\"]\n" +
                   b.substr(b.find("[[site]]"))),
      "server.allow_clients[0]", 3, "0..128");
  check_single_error(
      bad(dir,
          "[server]\nlisten = [{ address = \"0.0.0.0:8443\", allow_clients = [\"1.2.3.4/40\"] "
          "}]\n" +
              b.substr(b.find("[[site]]"))),
      "server.listen[0].allow_clients[0]", 2, "0..32");
  check_single_error(bad(dir, "[server]\nlisten = [{ allow_clients = [\"1.2.3.4\"] }]\n" +
                                  b.substr(b.find("[[site]]"))),
                     "server.listen[0].address", 2, "required");
  check_single_error(
      bad(dir, "[server]\nlisten = [{ address = \"0.0.0.0:8443\", allow = [\"1.2.3.4\"] }]\n" +
                   b.substr(b.find("[[site]]"))),
      "server.listen[0].allow", 2, "");
}

TEST_CASE("access: certificate keys that do not fit together", "[config][access]") {
  temp_dir dir;
  dir.write("devices.pem", "x");
  check_single_error(bad(dir, sa + "client_certs = \"required\"\n"), "site[0].access.client_ca", 9,
                     "required when client_certs");
  check_single_error(bad(dir, sa + "client_ca = \"devices.pem\"\n"), "site[0].access.client_certs",
                     9, "required with client_ca");
  check_single_error(bad(dir, sa + "client_certs = \"sometimes\"\nclient_ca = \"devices.pem\"\n"),
                     "site[0].access.client_certs", 9, "\"optional\"");
  check_single_error(bad(dir, sa + "client_certs = \"required\"\nclient_ca = \"missing.pem\"\n"),
                     "site[0].access.client_ca", 10, "missing.pem");
  check_single_error(bad(dir, sa + "client_certs = \"required\"\nclient_ca = \"devices.pem\"\n"
                                   "client_crl = [\"devices.pem\", \"gone.crl\"]\n"),
                     "site[0].access.client_crl[1]", 11, "gone.crl");
  check_single_error(bad(dir, sa + "client_crl = \"devices.pem\"\n"), "site[0].access.client_crl",
                     9, "needs client_ca");
  check_single_error(bad(dir, sa + "log_client_cert = \"full\"\n"),
                     "site[0].access.log_client_cert", 9, "\"sha256\"");
  check_single_error(
      bad(dir, "[server]\nlisten = [\"0.0.0.0:8443\"]\nclient_certs = \"optional\"\n" +
                   b.substr(b.find("[[site]]"))),
      "server.client_ca", 3, "required when");
}

TEST_CASE("access: rules", "[config][access]") {
  temp_dir dir;
  dir.write("devices.pem", "x");
  const std::string with_ca =
      sa + "client_certs = \"optional\"\nclient_ca = \"devices.pem\"\n";  // rules from line 11
  check_single_error(bad(dir, sa + "[[site.access.rule]]\npath = \"/s/*\"\nclient_cert = true\n"),
                     "site[0].access.rule[0].client_cert", 11, "no certificate is asked for");
  check_single_error(bad(dir, with_ca + "[[site.access.rule]]\nclient_cert = true\n"),
                     "site[0].access.rule[0].path", 11, "required");
  check_single_error(bad(dir, with_ca + "[[site.access.rule]]\npath = \"secure\"\n"),
                     "site[0].access.rule[0].path", 12, "must start with");
  check_single_error(bad(dir, with_ca + "[[site.access.rule]]\npath = \"/s/*\"\nclient_cert = 1\n"),
                     "site[0].access.rule[0].client_cert", 13, "boolean");
  check_single_error(bad(dir, with_ca + "[[site.access.rule]]\npath = \"/s/*\"\nttl = 1\n"),
                     "site[0].access.rule[0].ttl", 13, "");
  check_single_error(bad(dir, with_ca + "[site.access.rule]\npath = \"/s/*\"\n"),
                     "site[0].access.rule", 11, "[[site.access.rule]]");
  check_single_error(bad(dir, b + "[[site.access]]\n"), "site[0].access", 8, "[site.access]");
}
