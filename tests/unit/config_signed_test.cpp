// [site.signed_urls], [[site.signed_urls.key]] and the upstream authorization keys of
// [site.cache] / [[site.cache.rule]]: defaults, every key read, the scheme's own parameters
// added to the cache key's dropped ones, and each error named by key and line.
#include <catch2/catch.hpp>

#include "config/config.hpp"
#include "config_test_util.hpp"

using namespace storecache::config;
using namespace storecache::config::test;
using namespace std::chrono_literals;

namespace {

const std::string b(base);
const std::string su = b + "[site.signed_urls]\n";  // keys from line 9

std::vector<std::string> v(std::initializer_list<const char*> l) {
  return {l.begin(), l.end()};
}

}  // namespace

TEST_CASE("signed urls: defaults", "[config][signed]") {
  temp_dir dir;
  auto r = parse(base, "base.toml", dir.path());
  INFO(all_errors(r));
  REQUIRE(r.ok());
  const site& s = r.cfg->sites[0];
  CHECK(s.signed_urls.scheme == signed_url_scheme::upstream);
  CHECK_FALSE(s.signed_urls.verifies());
  CHECK(s.signed_urls.paths == v({"*"}));
  CHECK(s.signed_urls.clock_skew == 30s);
  CHECK(s.cache.authorize_cache == 0s);
  // nothing added to the key's dropped parameters
  CHECK(s.cache.ignore_query_params ==
        v({"Expires", "Signature", "Key-Pair-Id", "Policy", "X-Amz-*"}));
}

TEST_CASE("signed urls: every key read; a scheme's parameters leave the cache key",
          "[config][signed]") {
  temp_dir dir;
  dir.write("k1.secret", "0123456789abcdef0123");
  dir.write("k2.secret", "fedcba98765432100123");
  dir.write("cf.pem", "x");
  dir.write("link.secret", "0123456789abcdef0123");
  const std::string text = b + R"([site.cache]
ignore_query_params = ["utm_*"]
authorize_cache = "30s"
[[site.cache.rule]]
path = "/pluginfile.php/*"
authorize_with_upstream = true
[[site.cache.rule]]
path = "*.mp4"
ttl = "1d"
authorize_with_upstream = true
[site.signed_urls]
scheme = "hmac"
paths = ["/video/*", "*.pdf"]
clock_skew = "2m"
[[site.signed_urls.key]]
id = "k1"
secret_file = "k1.secret"
[[site.signed_urls.key]]
id = "2026.b"
secret_file = "k2.secret"

[[site]]
hosts = ["cf.example.com"]
upstream = "https://cf.example.net"
[site.signed_urls]
scheme = "cloudfront"
cookies = false
[[site.signed_urls.key]]
id = "K2JCJMDEHXQW5F"
public_key = "cf.pem"

[[site]]
hosts = ["link.example.com"]
upstream = "https://link.example.net"
[site.signed_urls]
scheme = "secure_link"
secure_link_md5 = "$secure_link_expires$uri$remote_addr $secret"
secret_file = "link.secret"
md5_param = "h"
expires_param = "e"

[[site]]
hosts = ["open.example.com"]
upstream = "https://open.example.net"
[site.signed_urls]
scheme = "none"
)";
  auto r = parse(text, "all.toml", dir.path());
  INFO(all_errors(r));
  REQUIRE(r.ok());
  const auto& sites = r.cfg->sites;
  REQUIRE(sites.size() == 4);

  const site& h = sites[0];
  CHECK(h.signed_urls.scheme == signed_url_scheme::hmac);
  CHECK(h.signed_urls.verifies());
  CHECK(h.signed_urls.paths == v({"/video/*", "*.pdf"}));
  CHECK(h.signed_urls.clock_skew == 120s);
  REQUIRE(h.signed_urls.keys.size() == 2);
  CHECK(h.signed_urls.keys[0].id == "k1");
  CHECK(h.signed_urls.keys[0].file == dir.path() / "k1.secret");
  CHECK(h.signed_urls.keys[1].id == "2026.b");
  CHECK(h.cache.ignore_query_params ==
        v({"utm_*", "sc_exp", "sc_kid", "sc_sig", "sc_ip", "sc_scope"}));
  CHECK(h.cache.authorize_cache == 30s);
  REQUIRE(h.cache.rules.size() == 2);
  CHECK(h.cache.rules[0].authorize_with_upstream);
  CHECK_FALSE(h.cache.rules[0].ttl);
  CHECK(h.cache.rules[1].authorize_with_upstream);
  CHECK(h.cache.rules[1].ttl == std::chrono::seconds(86400));

  const site& cf = sites[1];
  CHECK(cf.signed_urls.scheme == signed_url_scheme::cloudfront);
  CHECK_FALSE(cf.signed_urls.cookies);
  REQUIRE(cf.signed_urls.keys.size() == 1);
  CHECK(cf.signed_urls.keys[0].file == dir.path() / "cf.pem");
  // the default list, plus what CloudFront adds that it lacks
  CHECK(cf.cache.ignore_query_params ==
        v({"Expires", "Signature", "Key-Pair-Id", "Policy", "X-Amz-*", "Hash-Algorithm"}));

  const site& link = sites[2];
  CHECK(link.signed_urls.scheme == signed_url_scheme::secure_link);
  CHECK(link.signed_urls.secure_link_md5 == "$secure_link_expires$uri$remote_addr $secret");
  CHECK(link.signed_urls.secret_file == dir.path() / "link.secret");
  CHECK(link.signed_urls.md5_param == "h");
  CHECK(link.signed_urls.expires_param == "e");
  CHECK(link.cache.ignore_query_params.back() == "e");

  CHECK(sites[3].signed_urls.scheme == signed_url_scheme::none);
  CHECK_FALSE(sites[3].signed_urls.verifies());
}

TEST_CASE("signed urls: bad values, each named by key and line", "[config][signed]") {
  temp_dir dir;
  dir.write("k.secret", "0123456789abcdef0123");
  struct bad {
    const char* name;
    std::string text;
    const char* key;
    std::size_t line;
    const char* says;
  };
  const std::string rule = b + "[[site.cache.rule]]\n";
  const std::string key = su + "scheme = \"hmac\"\n[[site.signed_urls.key]]\n";  // its keys: 11
  const std::vector<bad> cases{
      {"unknown scheme", su + "scheme = \"akamai\"\n", "site[0].signed_urls.scheme", 9,
       "must be \"upstream\", \"none\""},
      {"scheme not a string", su + "scheme = 1\n", "site[0].signed_urls.scheme", 9,
       "expected a string"},
      {"cloudfront without keys", su + "scheme = \"cloudfront\"\n", "site[0].signed_urls.scheme", 9,
       "needs at least one [[site.signed_urls.key]] (id and public_key)"},
      {"hmac without keys", su + "scheme = \"hmac\"\n", "site[0].signed_urls.scheme", 9,
       "(id and secret_file)"},
      {"key without id", key + "secret_file = \"k.secret\"\n", "site[0].signed_urls.key[0].id", 10,
       "is required"},
      {"key id with a space", key + "id = \"a b\"\nsecret_file = \"k.secret\"\n",
       "site[0].signed_urls.key[0].id", 11, "letters, digits"},
      {"key id twice",
       key + "id = \"a\"\nsecret_file = \"k.secret\"\n[[site.signed_urls.key]]\nid = \"a\"\n"
             "secret_file = \"k.secret\"\n",
       "site[0].signed_urls.key[1].id", 14, "used by another key"},
      {"hmac key with public_key", key + "id = \"a\"\npublic_key = \"k.secret\"\n",
       "site[0].signed_urls.key[0].public_key", 12, "write secret_file"},
      {"key file missing", key + "id = \"a\"\nsecret_file = \"nope\"\n",
       "site[0].signed_urls.key[0].secret_file", 12, "nope"},
      {"key unknown field", key + "id = \"a\"\nsecret_file = \"k.secret\"\nsecret = \"x\"\n",
       "site[0].signed_urls.key[0].secret", 13, ""},
      {"secure_link without secret_file", su + "scheme = \"secure_link\"\n",
       "site[0].signed_urls.secret_file", 9, "is required by scheme = \"secure_link\""},
      {"secure_link with keys",
       su + "scheme = \"secure_link\"\nsecret_file = \"k.secret\"\n[[site.signed_urls.key]]\n"
            "id = \"a\"\nsecret_file = \"k.secret\"\n",
       "site[0].signed_urls.key", 11, "secure_link uses secret_file"},
      {"hmac with a scheme-level secret_file",
       su + "scheme = \"hmac\"\nsecret_file = \"k.secret\"\n[[site.signed_urls.key]]\n"
            "id = \"a\"\nsecret_file = \"k.secret\"\n",
       "site[0].signed_urls.secret_file", 10, "this scheme's secrets are per key"},
      {"upstream with paths", su + "paths = [\"/v/*\"]\n", "site[0].signed_urls.paths", 9,
       "has no effect with scheme = \"upstream\""},
      {"none with a key file", su + "scheme = \"none\"\nsecret_file = \"k.secret\"\n",
       "site[0].signed_urls.secret_file", 10, "has no effect with scheme = \"none\""},
      {"paths empty", su + "scheme = \"hmac\"\npaths = []\n", "site[0].signed_urls.paths", 10,
       "non-empty array"},
      {"paths relative", su + "scheme = \"hmac\"\npaths = [\"video/*\"]\n",
       "site[0].signed_urls.paths[0]", 10, "must start with '/' or '*'"},
      {"clock_skew over an hour", su + "clock_skew = \"2h\"\n", "site[0].signed_urls.clock_skew", 9,
       "at most"},
      {"md5_param with '='", su + "md5_param = \"a=b\"\n", "site[0].signed_urls.md5_param", 9,
       "query parameter name"},
      {"signed_urls an array", b + "[[site.signed_urls]]\nscheme = \"none\"\n",
       "site[0].signed_urls", 8, "a table"},
      {"authorize and bypass",
       rule + "path = \"/a\"\nbypass = true\nauthorize_with_upstream = true\n",
       "site[0].cache.rule[0].authorize_with_upstream", 11, "not both"},
      {"authorize not a boolean", rule + "path = \"/a\"\nauthorize_with_upstream = \"yes\"\n",
       "site[0].cache.rule[0].authorize_with_upstream", 10, "expected a boolean"},
      {"authorize_cache over an hour", b + "[site.cache]\nauthorize_cache = \"2h\"\n",
       "site[0].cache.authorize_cache", 9, "at most"},
  };
  for (const auto& c : cases) {
    if (c.line == 0) continue;
    SECTION(c.name) {
      auto r = parse(c.text, "bad.toml", dir.path());
      INFO(c.text);
      INFO(all_errors(r));
      REQUIRE_FALSE(r.ok());
      bool found = false;
      for (const auto& e : r.errors)
        if (e.key == c.key && e.line == c.line && e.message.find(c.says) != std::string::npos)
          found = true;
      CHECK(found);
    }
  }
}
