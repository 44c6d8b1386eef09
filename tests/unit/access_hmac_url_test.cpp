// Our HMAC-SHA256 signed URLs against vectors made with `openssl dgst -sha256 -mac HMAC`
// (tests/data/signed_urls/make_vectors.sh, which also checks scripts/sign-url against them):
// path and prefix scopes, address binding, key rotation, tampering of every field, expiry and
// skew, malformed input, and the factory's refusals. Links storecache_access only.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "access/hmac_url.hpp"

#include "signed_url_vectors.hpp"

using namespace storecache::access;
using sr = signature_result;

namespace {

using storecache::access::test::data_dir;
using storecache::access::test::vec;

std::string file(const char* name) {
  return (data_dir / name).string();
}

std::unique_ptr<url_verifier> make() {
  hmac_settings s;
  s.keys = {{"k1", file("hmac_k1.secret")}, {"k2", file("hmac_k2.secret")}};
  s.clock_skew = std::chrono::seconds(30);
  return make_hmac_verifier(s);
}

struct request {
  std::string host = "lms.example.com";
  std::string path = "/course/1/video.mp4";
  std::string query;
  std::string ip = "10.1.2.3";
  std::int64_t now = 1900000000;
  signed_request view() const {
    signed_request r;
    r.host = host;
    r.path = path;
    r.query = query;
    r.client_ip = ip;
    r.now = now;
    return r;
  }
};

request path_signed() {
  request r;
  r.query = "lang=en&sc_exp=2000000000&sc_kid=k1&sc_sig=" + vec("hmac_path");
  return r;
}

request prefix_signed(const std::string& path) {
  request r;
  r.path = path;
  r.query = "sc_exp=2000000000&sc_kid=k2&sc_ip=10.1.2.3&sc_scope=/course/1/&sc_sig=" +
            vec("hmac_prefix_ip");
  return r;
}

}  // namespace

TEST_CASE("hmac: the string to sign", "[hmac]") {
  hmac_fields f;
  f.kid = "k1";
  f.exp = "2000000000";
  f.host = "lms.example.com";
  f.target = "/a";
  f.query = "x=1";
  CHECK(hmac_string_to_sign(f) ==
        "storecache-url-v1\nk1\n2000000000\nlms.example.com\n\npath\n/a\nx=1");
  f.prefix = true;
  f.ip = "::1";
  CHECK(hmac_string_to_sign(f) ==
        "storecache-url-v1\nk1\n2000000000\nlms.example.com\n::1\nprefix\n/a\n");
}

TEST_CASE("hmac: a path-signed URL, and tampering with each part", "[hmac]") {
  const auto v = make();
  CHECK(v->verify(path_signed().view()) == sr::ok);
  request r = path_signed();
  r.ip = "192.168.9.9";  // not bound to an address
  CHECK(v->verify(r.view()) == sr::ok);
  r = path_signed();
  r.query = "sc_sig=" + vec("hmac_path") + "&lang=en&sc_kid=k1&sc_exp=2000000000";
  CHECK(v->verify(r.view()) == sr::ok);

  r = path_signed();
  r.path = "/course/1/video.mp5";
  CHECK(v->verify(r.view()) == sr::bad_signature);
  r = path_signed();
  r.host = "lms2.example.com";
  CHECK(v->verify(r.view()) == sr::bad_signature);
  r = path_signed();
  r.query = "lang=fr&sc_exp=2000000000&sc_kid=k1&sc_sig=" + vec("hmac_path");
  CHECK(v->verify(r.view()) == sr::bad_signature);
  r.query = "lang=en&extra=1&sc_exp=2000000000&sc_kid=k1&sc_sig=" + vec("hmac_path");
  CHECK(v->verify(r.view()) == sr::bad_signature);
  r.query = "lang=en&sc_exp=2000000001&sc_kid=k1&sc_sig=" + vec("hmac_path");
  CHECK(v->verify(r.view()) == sr::bad_signature);
  r.query = "lang=en&sc_exp=2000000000&sc_kid=k2&sc_sig=" + vec("hmac_path");  // other key
  CHECK(v->verify(r.view()) == sr::bad_signature);
  r.query = "lang=en&sc_exp=2000000000&sc_kid=k1&sc_ip=10.1.2.3&sc_sig=" + vec("hmac_path");
  CHECK(v->verify(r.view()) == sr::bad_signature);  // binding added afterwards
  std::string sig = vec("hmac_path");
  for (std::size_t i = 0; i < sig.size() - 1; ++i) {  // the last char holds 4 pad bits
    std::string t = sig;
    t[i] = t[i] == 'A' ? 'B' : 'A';
    r.query = "lang=en&sc_exp=2000000000&sc_kid=k1&sc_sig=" + t;
    CHECK(v->verify(r.view()) == sr::bad_signature);
  }
}

TEST_CASE("hmac: expiry and skew", "[hmac]") {
  const auto v = make();
  request r = path_signed();
  r.now = 2000000000 + 29;
  CHECK(v->verify(r.view()) == sr::ok);
  r.now = 2000000000 + 30;
  CHECK(v->verify(r.view()) == sr::expired);
}

TEST_CASE("hmac: a prefix scope bound to an address", "[hmac]") {
  const auto v = make();
  CHECK(v->verify(prefix_signed("/course/1/video.mp4").view()) == sr::ok);
  CHECK(v->verify(prefix_signed("/course/1/hls/seg-0001.ts").view()) == sr::ok);
  request r = prefix_signed("/course/1/x.js");
  r.query += "&v=3";  // the query is not covered by a prefix signature
  CHECK(v->verify(r.view()) == sr::ok);
  CHECK(v->verify(prefix_signed("/course/10/video.mp4").view()) == sr::wrong_resource);
  CHECK(v->verify(prefix_signed("/course/2/video.mp4").view()) == sr::wrong_resource);
  for (const char* p : {"/course/1/../2/video.mp4", "/course/1/%2e%2e/2/video.mp4",
                        "/course/1/..%2f2/video.mp4", "/course/1//etc", "/course/1/a\\b"}) {
    INFO(p);
    CHECK(v->verify(prefix_signed(p).view()) == sr::malformed);
  }
  r = prefix_signed("/course/1/video.mp4");
  r.ip = "10.1.2.4";
  CHECK(v->verify(r.view()) == sr::wrong_ip);
  r.ip = "::ffff:10.1.2.3";
  CHECK(v->verify(r.view()) == sr::ok);
  r.ip = "garbage";
  CHECK(v->verify(r.view()) == sr::wrong_ip);
}

TEST_CASE("hmac: missing, unknown key and malformed", "[hmac]") {
  const auto v = make();
  request r;
  CHECK(v->verify(r.view()) == sr::missing);
  r.query = "lang=en";
  CHECK(v->verify(r.view()) == sr::missing);
  r.query = "lang=en&sc_exp=2000000000&sc_kid=k9&sc_sig=" + vec("hmac_path");
  CHECK(v->verify(r.view()) == sr::unknown_key);
  const std::string sig = vec("hmac_path");
  for (const std::string& q : std::vector<std::string>{
           "sc_exp=2000000000&sc_kid=k1",
           "sc_exp=2000000000&sc_sig=" + sig,
           "sc_kid=k1&sc_sig=" + sig,
           "sc_exp=2e9&sc_kid=k1&sc_sig=" + sig,
           "sc_exp=-1&sc_kid=k1&sc_sig=" + sig,
           "sc_exp=9999999999999999999999&sc_kid=k1&sc_sig=" + sig,
           "sc_exp=2000000000&sc_kid=k1&sc_sig=" + sig + "&sc_sig=" + sig,
           "sc_exp=2000000000&sc_exp=2000000000&sc_kid=k1&sc_sig=" + sig,
           "sc_exp=2000000000&sc_kid=k1&sc_kid=k2&sc_sig=" + sig,
           "sc_exp=2000000000&sc_kid=k1&sc_sig=" + sig.substr(2),
           "sc_exp=2000000000&sc_kid=k1&sc_sig=" + sig + "AAAA",
           "sc_exp=2000000000&sc_kid=k1&sc_sig=" + sig.substr(0, 42) + "+",
           "sc_exp=2000000000&sc_kid=k1&sc_sig=" + std::string(9000, 'A'),
           "sc_exp=2000000000&sc_kid=k1&sc_ip=10.1.2&sc_sig=" + sig,
           "sc_exp=2000000000&sc_kid=k1&sc_scope=/course/1&sc_sig=" + sig,  // no trailing '/'
           "sc_exp=2000000000&sc_kid=k1&sc_scope=course/&sc_sig=" + sig,
           "sc_exp=2000000000&sc_kid=k1&sc_scope=/a/../&sc_sig=" + sig,
           "a=b%0a&sc_exp=2000000000&sc_kid=k1&sc_sig=" + sig + "&c=\n",
       }) {
    r.query = q;
    INFO(q.substr(0, 100));
    CHECK(v->verify(r.view()) == sr::malformed);
  }
}

TEST_CASE("hmac: the factory reads secrets and refuses bad keys", "[hmac]") {
  hmac_settings s;
  CHECK_THROWS_AS(make_hmac_verifier(s), std::runtime_error);  // no keys
  s.keys = {{"k1", file("hmac_short.secret")}};
  CHECK_THROWS_WITH(make_hmac_verifier(s),
                    Catch::Contains("hmac_short.secret") && Catch::Contains("shorter than 16"));
  s.keys = {{"k1", file("missing.secret")}};
  CHECK_THROWS_WITH(make_hmac_verifier(s), Catch::Contains("missing.secret"));
  s.keys = {{"k1", file("hmac_k1.secret")}, {"k1", file("hmac_k2.secret")}};
  CHECK_THROWS_WITH(make_hmac_verifier(s), Catch::Contains("twice"));
  s.keys = {{"k 1", file("hmac_k1.secret")}};
  CHECK_THROWS_AS(make_hmac_verifier(s), std::runtime_error);
  s.keys = {{"", file("hmac_k1.secret")}};
  CHECK_THROWS_AS(make_hmac_verifier(s), std::runtime_error);
  const auto v = make();
  const auto p = v->parameters();
  CHECK(std::vector<std::string_view>(p.begin(), p.end()) ==
        std::vector<std::string_view>{"sc_exp", "sc_kid", "sc_sig", "sc_ip", "sc_scope"});
}
