// nginx secure_link against a vector made with `openssl md5 -binary | base64`
// (tests/data/signed_urls/make_vectors.sh): good links, tampering, expiry and skew, $uri
// decoding and the paths we refuse, $arg_, parameter names, malformed input, and the
// factory's refusals. Links storecache_access only (tests/CMakeLists.txt).
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include <openssl/evp.h>

#include "access/base64.hpp"
#include "access/secure_link.hpp"

#include "signed_url_vectors.hpp"

using namespace storecache::access;
using sr = signature_result;

namespace {

using storecache::access::test::data_dir;
using storecache::access::test::vec;

constexpr const char* tmpl = "$secure_link_expires$uri$remote_addr secret-for-tests";

std::unique_ptr<url_verifier> make(std::string t = tmpl) {
  secure_link_settings s;
  s.md5_template = std::move(t);
  s.clock_skew = std::chrono::seconds(30);
  return make_secure_link_verifier(s);
}

struct request {
  std::string path = "/course/1/video%20file.mp4";
  std::string query;
  std::string ip = "10.1.2.3";
  std::int64_t now = 1900000000;
  signed_request view() const {
    signed_request r;
    r.host = "lms.example.com";
    r.path = path;
    r.query = query;
    r.client_ip = ip;
    r.now = now;
    return r;
  }
};

request good() {
  request r;
  r.query = "md5=" + vec("secure_link_md5") + "&expires=2000000000";
  return r;
}

}  // namespace

TEST_CASE("secure_link: a good link, and tampering", "[secure_link]") {
  const auto v = make();
  CHECK(v->verify(good().view()) == sr::ok);
  request r = good();
  r.query = "expires=2000000000&x=1&md5=" + vec("secure_link_md5");  // order, other args
  CHECK(v->verify(r.view()) == sr::ok);
  r = good();
  r.query = "md5=" + vec("secure_link_md5") + "==&expires=2000000000";  // padding allowed
  CHECK(v->verify(r.view()) == sr::ok);

  std::string md5 = vec("secure_link_md5");
  md5[3] = md5[3] == 'A' ? 'B' : 'A';
  r.query = "md5=" + md5 + "&expires=2000000000";
  CHECK(v->verify(r.view()) == sr::bad_signature);
  r = good();
  r.path = "/course/1/video%20file.mp3";
  CHECK(v->verify(r.view()) == sr::bad_signature);
  r = good();
  r.ip = "10.1.2.4";  // $remote_addr is signed
  CHECK(v->verify(r.view()) == sr::bad_signature);
  r = good();
  r.query = "md5=" + vec("secure_link_md5") + "&expires=2000000001";
  CHECK(v->verify(r.view()) == sr::bad_signature);
}

TEST_CASE("secure_link: $uri is the decoded path", "[secure_link]") {
  const auto v = make();
  request r = good();
  r.path = "/course/1/video file.mp4";  // the same $uri, spelled undecoded
  CHECK(v->verify(r.view()) == sr::ok);
  r.path = "/course/%31/video%20file.mp4";
  CHECK(v->verify(r.view()) == sr::ok);
  for (const char* p : {"/course/1/video%2file.mp4", "/course/1/video%zzfile.mp4", "/c/%00/x",
                        "/course/1/../1/video%20file.mp4", "/course/1/./video%20file.mp4",
                        "/course//1/video%20file.mp4", "/course/1%2fvideo%20file.mp4",
                        "/course/1/%2e%2e/video", "course/1/video%20file.mp4", "/a\\b", "/x%"}) {
    r.path = p;
    INFO(p);
    CHECK(v->verify(r.view()) == sr::malformed);
  }
}

TEST_CASE("secure_link: expiry as nginx judges it, with skew", "[secure_link]") {
  const auto v = make();
  request r = good();
  r.now = 2000000000;  // nginx: expired only once expires < now
  CHECK(v->verify(r.view()) == sr::ok);
  r.now = 2000000030;
  CHECK(v->verify(r.view()) == sr::ok);
  r.now = 2000000031;
  CHECK(v->verify(r.view()) == sr::expired);
}

TEST_CASE("secure_link: missing and malformed parameters", "[secure_link]") {
  const auto v = make();
  request r;
  CHECK(v->verify(r.view()) == sr::missing);
  r.query = "expires=2000000000";
  CHECK(v->verify(r.view()) == sr::missing);
  const std::string md5 = vec("secure_link_md5");
  for (const std::string& q : std::vector<std::string>{
           "md5=" + md5,                                             // no expires
           "md5=" + md5 + "&expires=",                               // empty
           "md5=" + md5 + "&expires=0",                              // nginx: not positive
           "md5=" + md5 + "&expires=-5",                             //
           "md5=" + md5 + "&expires=20000000000000000000",           // overflow
           "md5=" + md5 + "&expires=2000000000&expires=2000000000",  // duplicate
           "md5=" + md5 + "&md5=" + md5 + "&expires=2000000000",     // duplicate
           "md5=" + md5.substr(1) + "&expires=2000000000",           // 15 bytes
           "md5=" + md5 + "AAAA&expires=2000000000",                 // 19 bytes
           "md5=" + md5 + "+&expires=2000000000",                    // not base64url
           "md5=" + std::string(9000, 'A') + "&expires=2000000000",  // huge
           "md5=&expires=2000000000",
       }) {
    r.query = q;
    INFO(q.substr(0, 100));
    CHECK(v->verify(r.view()) == sr::malformed);
  }
}

TEST_CASE("secure_link: parameter names, $arg_ and ${} variables", "[secure_link]") {
  secure_link_settings s;
  s.md5_template = "${secure_link_expires}$uri$arg_user$host secret";
  s.hash_parameter = "st";
  s.expires_parameter = "e";
  const auto v = make_secure_link_verifier(s);
  const auto p = v->parameters();
  CHECK(std::vector<std::string_view>(p.begin(), p.end()) ==
        std::vector<std::string_view>{"st", "e"});
  // A good and a bad link, computed here the same way as the vector (md5 of the expression).
  request r;
  r.path = "/a/b";
  r.query = "user=bob&e=2000000000&st=AAAAAAAAAAAAAAAAAAAAAA";
  CHECK(v->verify(r.view()) == sr::bad_signature);
  // md5("2000000000" "/a/b" "bob" "lms.example.com" " secret"), by OpenSSL directly.
  const std::string input = "2000000000/a/bboblms.example.com secret";
  unsigned char md[16];
  REQUIRE(EVP_Digest(input.data(), input.size(), md, nullptr, EVP_md5(), nullptr) == 1);
  const std::string st =
      base64_encode(std::string(reinterpret_cast<char*>(md), 16), base64_alphabet::url);
  r.query = "user=bob&e=2000000000&st=" + st;
  CHECK(v->verify(r.view()) == sr::ok);
  r.query = "user=eve&e=2000000000&st=" + st;
  CHECK(v->verify(r.view()) == sr::bad_signature);
  r.query = "user=bob&user=eve&e=2000000000&st=AAAAAAAAAAAAAAAAAAAAAA";
  CHECK(v->verify(r.view()) == sr::malformed);  // a signed $arg_ twice
}

TEST_CASE("secure_link: the factory refuses unsafe templates", "[secure_link]") {
  CHECK_THROWS_WITH(make("$secure_link_expires$remote_addr secret"), Catch::Contains("$uri"));
  CHECK_THROWS_WITH(make("$uri secret"), Catch::Contains("$secure_link_expires"));
  CHECK_THROWS_WITH(make("$secure_link_expires$uri$cookie_x secret"), Catch::Contains("$cookie_x"));
  CHECK_THROWS_WITH(make("${secure_link_expires$uri secret"), Catch::Contains("'}'"));
  try {
    make("$secure_link_expires$uri$bogus my-secret");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find("my-secret") == std::string::npos);  // never the secret
  }
  secure_link_settings s;
  s.md5_template = "$uri secret";
  s.expires_parameter = "";  // links that never expire, as nginx allows
  const auto v = make_secure_link_verifier(s);
  CHECK(v->parameters().size() == 1);
  s.hash_parameter = "";
  CHECK_THROWS_AS(make_secure_link_verifier(s), std::runtime_error);
  s.hash_parameter = "a&b";
  CHECK_THROWS_AS(make_secure_link_verifier(s), std::runtime_error);
}
