// access/networks and access/admission: the allow_clients matcher (IPv4, IPv6, mapped IPv4,
// /0, /32, /128, garbage) and the request path's access check, linked against storecache_access
// alone.
#include <boost/asio/ip/address.hpp>
#include <catch2/catch.hpp>
#include <string_view>
#include <vector>

#include "access/admission.hpp"
#include "access/networks.hpp"
#include "config/values.hpp"

using namespace storecache;
using boost::asio::ip::make_address;

namespace {

std::vector<config::ip_network> nets(std::initializer_list<std::string_view> texts) {
  return access::parse_networks(std::vector<std::string_view>(texts));
}

bool admits(std::initializer_list<std::string_view> allow, const char* client) {
  return access::admitted(nets(allow), make_address(client));
}

std::string parse_error(std::string_view text) {
  return config::parse_ip_network(text).error;
}

}  // namespace

TEST_CASE("networks: IPv4 prefixes", "[access][networks]") {
  CHECK(admits({"10.0.0.0/8"}, "10.255.1.2"));
  CHECK_FALSE(admits({"10.0.0.0/8"}, "11.0.0.1"));
  CHECK(admits({"192.168.1.0/24"}, "192.168.1.255"));
  CHECK_FALSE(admits({"192.168.1.0/24"}, "192.168.2.0"));
  CHECK(admits({"172.16.0.0/12"}, "172.31.255.255"));  // a prefix off a byte boundary
  CHECK_FALSE(admits({"172.16.0.0/12"}, "172.32.0.0"));
  CHECK(admits({"127.0.0.2/32"}, "127.0.0.2"));
  CHECK_FALSE(admits({"127.0.0.2/32"}, "127.0.0.3"));
  CHECK(admits({"127.0.0.2"}, "127.0.0.2"));  // a bare address is /32
  CHECK_FALSE(admits({"127.0.0.2"}, "127.0.0.1"));
  CHECK(admits({"0.0.0.0/0"}, "203.0.113.9"));
  CHECK_FALSE(admits({"0.0.0.0/0"}, "2001:db8::1"));  // /0 of IPv4 is every IPv4 address only
}

TEST_CASE("networks: IPv6 prefixes", "[access][networks]") {
  CHECK(admits({"fd00::/8"}, "fd12:3456::1"));
  CHECK_FALSE(admits({"fd00::/8"}, "fe80::1"));
  CHECK(admits({"2001:db8::/33"}, "2001:db8:7fff::1"));
  CHECK_FALSE(admits({"2001:db8::/33"}, "2001:db8:8000::1"));
  CHECK(admits({"::1"}, "::1"));  // a bare address is /128
  CHECK(admits({"::1/128"}, "::1"));
  CHECK_FALSE(admits({"::1/128"}, "::2"));
  CHECK(admits({"::/0"}, "2001:db8::1"));
  CHECK_FALSE(admits({"::/0"}, "10.0.0.1"));  // families stay apart
}

TEST_CASE("networks: IPv4-mapped IPv6 addresses match IPv4 networks", "[access][networks]") {
  // What a dual-stack ([::]) listener reports for an IPv4 client.
  CHECK(admits({"10.0.0.0/8"}, "::ffff:10.1.2.3"));
  CHECK_FALSE(admits({"10.0.0.0/8"}, "::ffff:11.1.2.3"));
  CHECK(admits({"127.0.0.2"}, "::ffff:127.0.0.2"));
  // A network written mapped is read as IPv4.
  auto mapped = config::parse_ip_network("::ffff:10.0.0.0/104");
  REQUIRE(mapped.ok());
  CHECK(mapped.value.v4);
  CHECK(mapped.value.prefix == 8);
  CHECK(mapped.value.text() == "10.0.0.0/8");
  CHECK(admits({"::ffff:10.0.0.0/104"}, "10.9.9.9"));
  CHECK(admits({"::ffff:10.0.0.0/104"}, "::ffff:10.9.9.9"));
  CHECK_FALSE(admits({"::ffff:10.0.0.0/104"}, "::ffff:11.9.9.9"));
}

TEST_CASE("networks: several networks, and an empty list admits everyone", "[access][networks]") {
  CHECK(admits({"10.0.0.0/8", "fd00::/8"}, "fd00::5"));
  CHECK(admits({"10.0.0.0/8", "fd00::/8"}, "10.0.0.5"));
  CHECK_FALSE(admits({"10.0.0.0/8", "fd00::/8"}, "192.168.0.5"));
  CHECK(admits({}, "192.168.0.5"));
  CHECK(admits({}, "::1"));
}

TEST_CASE("networks: what does not parse, and why", "[access][networks]") {
  CHECK_THAT(parse_error("10.0.0.0/33"), Catch::Contains("0..32"));
  CHECK_THAT(parse_error("fd00::/129"), Catch::Contains("0..128"));
  CHECK_THAT(parse_error("10.0.0.1/8"), Catch::Contains("10.0.0.0/8"));  // host bits: suggested
  CHECK_THAT(parse_error("fd00::1/8"), Catch::Contains("fd00::/8"));
  CHECK_THAT(parse_error("10.0.0.0/"), Catch::Contains("0..32"));
  CHECK_THAT(parse_error("10.0.0.0/8x"), Catch::Contains("0..32"));
  CHECK_THAT(parse_error("10.0.0.0/-1"), Catch::Contains("0..32"));
  CHECK_THAT(parse_error("10.0.0/8"), Catch::Contains("not an IP address"));
  CHECK_THAT(parse_error("lan"), Catch::Contains("not an IP address"));
  CHECK_THAT(parse_error(""), Catch::Contains("not an IP address"));
  CHECK_THAT(parse_error("[::1]"), Catch::Contains("not an IP address"));
  CHECK_THAT(parse_error(" 10.0.0.0/8"), Catch::Contains("not an IP address"));
  CHECK_THAT(parse_error(std::string(100, '1')), Catch::Contains("not an IP address"));
  CHECK(parse_error("0.0.0.0/0").empty());
  CHECK(parse_error("::/0").empty());
  CHECK(config::parse_ip_network("10.1.0.0/16").value.text() == "10.1.0.0/16");
  CHECK(config::parse_ip_network("FD00::/8").value.text() == "fd00::/8");
}

TEST_CASE("admission: network and certificate checks of a site", "[access][admission]") {
  config::site site;
  site.hosts = {"learn.example.com"};
  const auto lan = make_address("10.1.2.3");
  const auto outside = make_address("192.168.1.9");
  const access::client_cert_state none{};
  const access::client_cert_state ours{true, "learn.example.com", "sha256:00"};
  const access::client_cert_state server_level{true, "", "sha256:00"};
  const access::client_cert_state other_site{true, "other.example.com", "sha256:00"};

  SECTION("an open site admits everyone") {
    CHECK_FALSE(access::admit_request(site, outside, none, "/x"));
  }
  SECTION("allow_clients") {
    site.access.allow_clients = nets({"10.0.0.0/8"});
    CHECK_FALSE(access::admit_request(site, lan, none, "/x"));
    CHECK(access::admit_request(site, outside, none, "/x") == access::denial::network);
    // The network comes first, whatever the certificate.
    CHECK(access::admit_request(site, outside, ours, "/x") == access::denial::network);
  }
  SECTION("required: only a certificate this site verified counts") {
    site.access.client.mode = config::client_cert_mode::required;
    CHECK_FALSE(access::admit_request(site, lan, ours, "/x"));
    CHECK(access::admit_request(site, lan, none, "/x") == access::denial::client_cert);
    // No SNI ([server]'s CA verified it) or another site's CA: not this site's device.
    CHECK(access::admit_request(site, lan, server_level, "/x") == access::denial::client_cert);
    CHECK(access::admit_request(site, lan, other_site, "/x") == access::denial::client_cert);
  }
  SECTION("optional: path rules demand a certificate, the first match decides") {
    site.access.client.mode = config::client_cert_mode::optional;
    site.access.rules = {{"/secure/public/*", false}, {"/secure/*", true}};
    CHECK_FALSE(access::admit_request(site, lan, none, "/course/a.mp4"));
    CHECK(access::admit_request(site, lan, none, "/secure/a.pdf") == access::denial::client_cert);
    CHECK_FALSE(access::admit_request(site, lan, ours, "/secure/a.pdf"));
    CHECK_FALSE(access::admit_request(site, lan, none, "/secure/public/a.pdf"));
    CHECK(access::admit_request(site, lan, other_site, "/secure/a.pdf") ==
          access::denial::client_cert);
  }
}
