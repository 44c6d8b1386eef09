// CloudFront signed URLs and cookies against vectors made by the openssl CLI
// (tests/data/signed_urls/make_vectors.sh): canned and custom policies, RSA and ECDSA, SHA-1
// and SHA-256, tampering, times and clock skew, key ids, addresses, wildcards, cookies and
// their precedence, malformed input of every kind, and the factory's refusals.
// Links storecache_access only (tests/CMakeLists.txt).
#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "access/cloudfront.hpp"

#include "signed_url_vectors.hpp"

using namespace storecache::access;
using sr = signature_result;

namespace {

using storecache::access::test::data_dir;
using storecache::access::test::vec;

std::string key_path(const char* file) {
  return (data_dir / file).string();
}

std::unique_ptr<url_verifier> make(bool cookies = true) {
  cloudfront_settings s;
  s.keys = {{"KRSA", key_path("rsa_public.pem")}, {"KEC", key_path("ec_public.pem")}};
  s.clock_skew = std::chrono::seconds(30);
  s.signed_cookies = cookies;
  return make_cloudfront_verifier(s);
}

constexpr std::int64_t expiry = 2000000000;
constexpr std::int64_t before = 1900000000;

struct request {
  std::string scheme = "https";
  std::string host = "lms.example.com";
  std::string path = "/course/1/video.mp4";
  std::string query;
  std::string cookies;
  std::string ip = "10.1.2.3";
  std::int64_t now = before;
  signed_request view() const {
    signed_request r;
    r.scheme = scheme;
    r.host = host;
    r.path = path;
    r.query = query;
    r.cookies = cookies;
    r.client_ip = ip;
    r.now = now;
    return r;
  }
};

request canned(const std::string& sig_name, const std::string& key, const std::string& hash = "") {
  request r;
  r.query = "lang=en&Expires=2000000000&Signature=" + vec(sig_name) + "&Key-Pair-Id=" + key;
  if (!hash.empty()) r.query += "&Hash-Algorithm=" + hash;
  return r;
}

request custom(const std::string& name, const std::string& key, const std::string& path,
               const std::string& hash = "") {
  request r;
  r.path = path;
  r.query = "Policy=" + vec(name + "_policy") + "&Signature=" + vec(name + "_sig") +
            "&Key-Pair-Id=" + key;
  if (!hash.empty()) r.query += "&Hash-Algorithm=" + hash;
  return r;
}

std::string flip(std::string s, std::size_t i) {
  s[i] = s[i] == 'A' ? 'B' : 'A';
  return s;
}

}  // namespace

TEST_CASE("canned policy: RSA and ECDSA, SHA-1 and SHA-256", "[cloudfront]") {
  const auto v = make();
  CHECK(v->verify(canned("canned_rsa_sha1", "KRSA").view()) == sr::ok);
  CHECK(v->verify(canned("canned_rsa_sha256", "KRSA", "SHA256").view()) == sr::ok);
  CHECK(v->verify(canned("canned_rsa_sha1", "KRSA", "SHA1").view()) == sr::ok);
  CHECK(v->verify(canned("canned_ec_sha1", "KEC").view()) == sr::ok);
  CHECK(v->verify(canned("canned_ec_sha256", "KEC", "SHA256").view()) == sr::ok);
  // The digest is part of what is signed: the wrong algorithm does not verify.
  CHECK(v->verify(canned("canned_rsa_sha256", "KRSA").view()) == sr::bad_signature);
  CHECK(v->verify(canned("canned_ec_sha1", "KEC", "SHA256").view()) == sr::bad_signature);
  CHECK(v->verify(canned("canned_rsa_sha1", "KRSA", "MD5").view()) == sr::malformed);
  // Parameter order does not matter; the other parameters keep theirs.
  request r = canned("canned_rsa_sha1", "KRSA");
  r.query = "Key-Pair-Id=KRSA&lang=en&Signature=" + vec("canned_rsa_sha1") + "&Expires=2000000000";
  CHECK(v->verify(r.view()) == sr::ok);
}

TEST_CASE("canned policy: tampering is rejected", "[cloudfront]") {
  const auto v = make();
  const request good = canned("canned_rsa_sha1", "KRSA");
  const std::string sig = vec("canned_rsa_sha1");
  for (const std::size_t i : {std::size_t{0}, sig.size() / 2, sig.size() - 3}) {
    request r = good;
    r.query = "lang=en&Expires=2000000000&Signature=" + flip(sig, i) + "&Key-Pair-Id=KRSA";
    CHECK(v->verify(r.view()) == sr::bad_signature);
  }
  request r = good;
  r.path = "/course/1/video.mp5";
  CHECK(v->verify(r.view()) == sr::bad_signature);
  r = good;
  r.host = "other.example.com";
  CHECK(v->verify(r.view()) == sr::bad_signature);
  r = good;
  r.scheme = "http";
  CHECK(v->verify(r.view()) == sr::bad_signature);
  r = good;
  r.query = "lang=fr&Expires=2000000000&Signature=" + sig + "&Key-Pair-Id=KRSA";
  CHECK(v->verify(r.view()) == sr::bad_signature);
  r = good;
  r.query = "Expires=2000000000&Signature=" + sig + "&Key-Pair-Id=KRSA";  // lang dropped
  CHECK(v->verify(r.view()) == sr::bad_signature);
  r = good;
  r.query = "lang=en&Expires=2000000001&Signature=" + sig + "&Key-Pair-Id=KRSA";
  CHECK(v->verify(r.view()) == sr::bad_signature);
  // The ECDSA signature of this policy under the RSA key id, and the reverse.
  CHECK(v->verify(canned("canned_ec_sha1", "KRSA").view()) == sr::bad_signature);
  CHECK(v->verify(canned("canned_rsa_sha1", "KEC").view()) == sr::bad_signature);
}

TEST_CASE("canned policy: expiry and clock skew", "[cloudfront]") {
  const auto v = make();
  request r = canned("canned_rsa_sha1", "KRSA");
  r.now = expiry - 1;
  CHECK(v->verify(r.view()) == sr::ok);
  r.now = expiry + 29;  // within the 30 s skew
  CHECK(v->verify(r.view()) == sr::ok);
  r.now = expiry + 30;
  CHECK(v->verify(r.view()) == sr::expired);
  r.now = INT64_MAX;
  CHECK(v->verify(r.view()) == sr::expired);
}

TEST_CASE("key ids: unknown, and the missing and malformed parameter sets", "[cloudfront]") {
  const auto v = make();
  CHECK(v->verify(canned("canned_rsa_sha1", "KNOPE").view()) == sr::unknown_key);
  request r;
  CHECK(v->verify(r.view()) == sr::missing);
  r.query = "lang=en";
  CHECK(v->verify(r.view()) == sr::missing);
  const std::string sig = vec("canned_rsa_sha1");
  const std::string ok_query = "lang=en&Expires=2000000000&Signature=" + sig + "&Key-Pair-Id=KRSA";
  const std::vector<std::string> bad = {
      "lang=en&Expires=2000000000&Key-Pair-Id=KRSA",     // no signature
      "lang=en&Expires=2000000000&Signature=" + sig,     // no key id
      "lang=en&Signature=" + sig + "&Key-Pair-Id=KRSA",  // no expiry or policy
      ok_query + "&Policy=" + vec("custom_ip_policy"),   // both
      ok_query + "&Expires=2000000000",                  // duplicate
      ok_query + "&Signature=" + sig,                    // duplicate
      ok_query + "&Key-Pair-Id=KEC",                     // duplicate
      "lang=en&Expires=-2000000000&Signature=" + sig + "&Key-Pair-Id=KRSA",
      "lang=en&Expires=2e9&Signature=" + sig + "&Key-Pair-Id=KRSA",
      "lang=en&Expires=99999999999999999999&Signature=" + sig + "&Key-Pair-Id=KRSA",
      "lang=en&Expires=&Signature=" + sig + "&Key-Pair-Id=KRSA",
      "lang=en&Expires=2000000000&Signature=&Key-Pair-Id=KRSA",
      "lang=en&Expires=2000000000&Signature=" + sig + "!&Key-Pair-Id=KRSA",
      "lang=en&Expires=2000000000&Signature=" + sig.substr(1) + "&Key-Pair-Id=KRSA",
      "lang=en&Expires=2000000000&Signature=" + std::string(9000, 'A') + "&Key-Pair-Id=KRSA",
      "lang=en&Expires=2000000000&Signature=" + std::string(4000, 'A') + "&Key-Pair-Id=KRSA",
      "Policy=!!!&Signature=" + sig + "&Key-Pair-Id=KRSA",
      "Policy=&Signature=" + sig + "&Key-Pair-Id=KRSA",
      "Policy=" + std::string(8000, 'A') + "&Signature=" + sig + "&Key-Pair-Id=KRSA",
  };
  for (const auto& q : bad) {
    r.query = q;
    INFO(q.substr(0, 120));
    CHECK(v->verify(r.view()) == sr::malformed);
  }
}

TEST_CASE("custom policy: wildcard resource, start time, IPv4 condition", "[cloudfront]") {
  const auto v = make();
  request r = custom("custom_ip", "KRSA", "/course/1/video.mp4");
  CHECK(v->verify(r.view()) == sr::ok);
  r.path = "/course/1/deep/er/file.js";
  CHECK(v->verify(r.view()) == sr::ok);
  r.query += "&any=thing";  // '*' also covers the query
  CHECK(v->verify(r.view()) == sr::ok);
  r.path = "/course/2/video.mp4";
  CHECK(v->verify(r.view()) == sr::wrong_resource);
  r.path = "/course/1/video.mp4";
  r.host = "evil.example.com";
  CHECK(v->verify(r.view()) == sr::wrong_resource);
  r.host = "lms.example.com";

  r.ip = "10.1.255.254";
  CHECK(v->verify(r.view()) == sr::ok);
  r.ip = "::ffff:10.1.0.1";  // IPv4-mapped
  CHECK(v->verify(r.view()) == sr::ok);
  r.ip = "10.2.0.1";
  CHECK(v->verify(r.view()) == sr::wrong_ip);
  r.ip = "fd00::1";
  CHECK(v->verify(r.view()) == sr::wrong_ip);
  r.ip = "not-an-address";
  CHECK(v->verify(r.view()) == sr::wrong_ip);
  r.ip = "10.1.2.3";

  r.now = 1700000000 - 31;  // DateGreaterThan, with 30 s of skew
  CHECK(v->verify(r.view()) == sr::not_yet_valid);
  r.now = 1700000000 - 30;
  CHECK(v->verify(r.view()) == sr::ok);
  r.now = expiry + 29;
  CHECK(v->verify(r.view()) == sr::ok);
  r.now = expiry + 30;
  CHECK(v->verify(r.view()) == sr::expired);
}

TEST_CASE("custom policy: '?' wildcard, IPv6 condition, ECDSA with SHA-256", "[cloudfront]") {
  const auto v = make();
  request r = custom("custom_v6", "KEC", "/course/a/b/index.html", "SHA256");
  r.ip = "fd00:1:2::3";
  CHECK(v->verify(r.view()) == sr::ok);
  r.path = "/cXurse/a/index.html";
  CHECK(v->verify(r.view()) == sr::ok);
  r.path = "/curse/a/index.html";  // '?' is exactly one character
  CHECK(v->verify(r.view()) == sr::wrong_resource);
  r.path = "/course/a/index.htm";
  CHECK(v->verify(r.view()) == sr::wrong_resource);
  r.path = "/course/a/index.html";
  r.ip = "fd00:2::1";
  CHECK(v->verify(r.view()) == sr::wrong_ip);
  r.ip = "10.1.2.3";
  CHECK(v->verify(r.view()) == sr::wrong_ip);
  // Without Hash-Algorithm the SHA-1 digest is checked, and fails.
  request sha1 = custom("custom_v6", "KEC", "/course/a/index.html");
  CHECK(v->verify(sha1.view()) == sr::bad_signature);
}

TEST_CASE("custom policy: tampered policy or signature", "[cloudfront]") {
  const auto v = make();
  const std::string policy = vec("custom_ip_policy");
  const std::string sig = vec("custom_ip_sig");
  request r = custom("custom_ip", "KRSA", "/course/1/video.mp4");
  for (std::size_t i = 0; i < policy.size(); i += 7) {
    r.query = "Policy=" + flip(policy, i) + "&Signature=" + sig + "&Key-Pair-Id=KRSA";
    const sr got = v->verify(r.view());
    CHECK((got == sr::bad_signature || got == sr::malformed));
  }
  r.query = "Policy=" + policy + "&Signature=" + flip(sig, 10) + "&Key-Pair-Id=KRSA";
  CHECK(v->verify(r.view()) == sr::bad_signature);
}

TEST_CASE("custom policy: signed but unacceptable policies are malformed", "[cloudfront]") {
  const auto v = make();
  CHECK(v->verify(custom("custom_bad_cidr", "KRSA", "/x").view()) == sr::malformed);
  CHECK(v->verify(custom("custom_extra_key", "KRSA", "/x").view()) == sr::malformed);
  CHECK(v->verify(custom("custom_two_statements", "KRSA", "/x").view()) == sr::malformed);
}

TEST_CASE("custom policy: every truncation never crashes and never verifies", "[cloudfront]") {
  const auto v = make();
  const std::string policy = vec("custom_ip_policy");
  const std::string sig = vec("custom_ip_sig");
  request r = custom("custom_ip", "KRSA", "/course/1/video.mp4");
  for (std::size_t n = 0; n < policy.size(); ++n) {
    r.query = "Policy=" + policy.substr(0, n) + "&Signature=" + sig + "&Key-Pair-Id=KRSA";
    CHECK(v->verify(r.view()) != sr::ok);
  }
  // Padding is optional, so only cuts into the signature's data are checked.
  const std::size_t data_len = sig.find_last_not_of('_') + 1;
  for (std::size_t n = 0; n < data_len; ++n) {
    r.query = "Policy=" + policy + "&Signature=" + sig.substr(0, n) + "&Key-Pair-Id=KRSA";
    CHECK(v->verify(r.view()) != sr::ok);
  }
}

TEST_CASE("signed cookies, and the query's precedence over them", "[cloudfront]") {
  const auto v = make();
  request r;
  r.cookies = "session=abc; CloudFront-Expires=2000000000; CloudFront-Signature=" +
              vec("canned_cookie_rsa") + ";CloudFront-Key-Pair-Id=KRSA";
  CHECK(v->verify(r.view()) == sr::ok);
  r.path = "/course/1/other.mp4";
  CHECK(v->verify(r.view()) == sr::bad_signature);
  r.path = "/course/1/video.mp4";
  r.now = expiry + 30;
  CHECK(v->verify(r.view()) == sr::expired);
  r.now = before;

  // Custom policy in cookies.
  request c;
  c.cookies = "CloudFront-Policy=" + vec("custom_ip_policy") +
              "; CloudFront-Signature=" + vec("custom_ip_sig") + "; CloudFront-Key-Pair-Id=KRSA";
  CHECK(v->verify(c.view()) == sr::ok);
  c.ip = "192.168.1.1";
  CHECK(v->verify(c.view()) == sr::wrong_ip);

  // A duplicate cookie is malformed.
  request d = r;
  d.cookies += "; CloudFront-Key-Pair-Id=KEC";
  CHECK(v->verify(d.view()) == sr::malformed);

  // The query wins: a bad query signature is not rescued by good cookies.
  request q = r;
  q.query =
      "Expires=2000000000&Signature=" + flip(vec("canned_cookie_rsa"), 5) + "&Key-Pair-Id=KRSA";
  CHECK(v->verify(q.view()) == sr::bad_signature);
  q.query = "Expires=2000000000&Signature=" + vec("canned_cookie_rsa") + "&Key-Pair-Id=KRSA";
  CHECK(v->verify(q.view()) == sr::ok);

  // Cookies off: only the query counts.
  const auto no_cookies = make(false);
  CHECK(no_cookies->verify(r.view()) == sr::missing);
}

TEST_CASE("parameters() names what the cache key drops", "[cloudfront]") {
  const auto v = make();
  const auto p = v->parameters();
  const std::vector<std::string_view> names(p.begin(), p.end());
  CHECK(names == std::vector<std::string_view>{"Expires", "Policy", "Signature", "Key-Pair-Id",
                                               "Hash-Algorithm"});
  CHECK(to_string(sr::bad_signature) == "forged");
  CHECK(to_string(sr::ok) == "ok");
}

TEST_CASE("the factory refuses bad keys, naming the file", "[cloudfront]") {
  auto refuses = [](const std::string& file, const std::string& what) {
    cloudfront_settings s;
    s.keys = {{"K", key_path(file.c_str())}};
    try {
      make_cloudfront_verifier(s);
      FAIL("accepted " << file);
    } catch (const std::runtime_error& e) {
      const std::string msg = e.what();
      INFO(msg);
      CHECK(msg.find(file) != std::string::npos);
      CHECK(msg.find(what) != std::string::npos);
    }
  };
  refuses("rsa_private.pem", "private key");
  refuses("ec_private.pem", "private key");
  refuses("garbage.pem", "not a PEM public key");
  refuses("hmac_k1.secret", "not a PEM public key");
  refuses("rsa1024_public.pem", "2048");
  refuses("ec384_public.pem", "P-256");
  refuses("ed25519_public.pem", "unsupported key type");
  refuses("no_such_file.pem", "cannot open");

  cloudfront_settings s;
  CHECK_THROWS_AS(make_cloudfront_verifier(s), std::runtime_error);  // no keys
  s.keys = {{"K", key_path("rsa_public.pem")}, {"K", key_path("ec_public.pem")}};
  CHECK_THROWS_WITH(make_cloudfront_verifier(s), Catch::Contains("twice"));
  s.keys = {{"K&x", key_path("rsa_public.pem")}};
  CHECK_THROWS_AS(make_cloudfront_verifier(s), std::runtime_error);
}

TEST_CASE("one verifier, many threads at once", "[cloudfront]") {
  const auto v = make();
  const request rsa = canned("canned_rsa_sha1", "KRSA");
  const request ec = canned("canned_ec_sha256", "KEC", "SHA256");
  request forged = rsa;
  forged.path = "/course/1/other.mp4";
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100; ++i) {
        if (v->verify(rsa.view()) != sr::ok) ++wrong;
        if (v->verify(ec.view()) != sr::ok) ++wrong;
        if (v->verify(forged.view()) != sr::bad_signature) ++wrong;
      }
    });
  }
  for (auto& t : threads)
    t.join();
  CHECK(wrong == 0);
}
