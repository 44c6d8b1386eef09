// prefetch::resolve(): RFC 3986 §5.2 resolution (the §5.4 examples, on a site), and every way a
// reference in an untrusted listing can try to leave the site.
#include <catch2/catch.hpp>

#include "prefetch/listing.hpp"

using storecache::prefetch::resolve;

namespace {

constexpr auto site = "store.example";

std::string ok(std::string_view base, std::string_view ref) {
  std::string why;
  auto r = resolve(base, ref, site, &why);
  INFO(ref << " rejected: " << why);
  REQUIRE(r);
  return *r;
}

std::string refused(std::string_view base, std::string_view ref) {
  std::string why;
  auto r = resolve(base, ref, site, &why);
  INFO(ref << " resolved to " << r.value_or(""));
  REQUIRE_FALSE(r);
  CHECK_FALSE(why.empty());
  return why;
}

}  // namespace

TEST_CASE("RFC 3986 5.4.1 normal examples, as site paths", "[prefetch][resolve]") {
  const auto base = "/b/c/d;p?q";
  CHECK(ok(base, "g") == "/b/c/g");
  CHECK(ok(base, "./g") == "/b/c/g");
  CHECK(ok(base, "g/") == "/b/c/g/");
  CHECK(ok(base, "/g") == "/g");
  CHECK(ok(base, "?y") == "/b/c/d;p?y");
  CHECK(ok(base, "g?y") == "/b/c/g?y");
  CHECK(ok(base, "#s") == "/b/c/d;p?q");
  CHECK(ok(base, "g#s") == "/b/c/g");
  CHECK(ok(base, "g?y#s") == "/b/c/g?y");
  CHECK(ok(base, ";x") == "/b/c/;x");
  CHECK(ok(base, "g;x") == "/b/c/g;x");
  CHECK(ok(base, ".") == "/b/c/");
  CHECK(ok(base, "./") == "/b/c/");
  CHECK(ok(base, "..") == "/b/");
  CHECK(ok(base, "../") == "/b/");
  CHECK(ok(base, "../g") == "/b/g");
  CHECK(ok(base, "../..") == "/");
  CHECK(ok(base, "../../g") == "/g");
}

TEST_CASE("RFC 3986 5.4.2 abnormal examples: .. above the root is clamped", "[prefetch][resolve]") {
  const auto base = "/b/c/d;p?q";
  CHECK(ok(base, "../../../g") == "/g");
  CHECK(ok(base, "../../../../g") == "/g");
  CHECK(ok(base, "/./g") == "/g");
  CHECK(ok(base, "/../g") == "/g");
  CHECK(ok(base, "g.") == "/b/c/g.");
  CHECK(ok(base, ".g") == "/b/c/.g");
  CHECK(ok(base, "g..") == "/b/c/g..");
  CHECK(ok(base, "..g") == "/b/c/..g");
  CHECK(ok(base, "./../g") == "/b/g");
  CHECK(ok(base, "./g/.") == "/b/c/g/");
  CHECK(ok(base, "g/./h") == "/b/c/g/h");
  CHECK(ok(base, "g/../h") == "/b/c/h");
  CHECK(ok(base, "g;x=1/./y") == "/b/c/g;x=1/y");
  CHECK(ok(base, "g;x=1/../y") == "/b/c/y");
  CHECK(ok(base, "g?y/./x") == "/b/c/g?y/./x");  // the query is not a path
  CHECK(ok("/course/sco1/page.html", "../../../../../etc/passwd") == "/etc/passwd");
}

TEST_CASE("same-site absolute URLs become paths", "[prefetch][resolve]") {
  CHECK(ok("/x/y", "https://store.example/a/b.js?v=3#top") == "/a/b.js?v=3");
  CHECK(ok("/x/y", "HTTPS://Store.Example/a") == "/a");
  CHECK(ok("/x/y", "https://store.example:443/a") == "/a");
  CHECK(ok("/x/y", "https://store.example:/a") == "/a");
  CHECK(ok("/x/y", "https://store.example") == "/");
  CHECK(ok("/x/y", "https://store.example?q=1") == "/?q=1");
  CHECK(ok("/x/y", "//store.example/a/../b") == "/b");
  CHECK(resolve("/", "https://store.example:8443/a", "store.example:8443", nullptr) == "/a");
}

TEST_CASE("percent-encoding is kept as written; %2e%2e is not a dot segment",
          "[prefetch][resolve]") {
  CHECK(ok("/c/a/index.html", "%2e%2e/%2E%2E/secret") == "/c/a/%2e%2e/%2E%2E/secret");
  CHECK(ok("/c/", "Module%201/page%3F.html") == "/c/Module%201/page%3F.html");
  CHECK(ok("/c/", "Einf\xC3\xBChrung.html") == "/c/Einf%C3%BChrung.html");
}

TEST_CASE("references that leave the site are rejected with a reason", "[prefetch][resolve]") {
  CHECK(refused("/a", "https://cdn.other.example/a.js").find("another host") != std::string::npos);
  CHECK(refused("/a", "//cdn.other.example/a.js").find("another host") != std::string::npos);
  CHECK(refused("/a", "https://store.example.evil.example/a").find("another host") !=
        std::string::npos);
  CHECK(refused("/a", "https://store.example:8443/a").find("another port") != std::string::npos);
  CHECK(refused("/a", "https://store.example:x/a") == "bad port");
  CHECK(refused("/a", "http://store.example/a") == "scheme http: not https");
  CHECK(refused("/a", "javascript:alert(1)") == "scheme javascript: not https");
  CHECK(refused("/a", "JavaScript:void(0)") == "scheme JavaScript: not https");
  CHECK(refused("/a", "data:text/html;base64,PHNjcmlwdD4=") == "scheme data: not https");
  CHECK(refused("/a", "mailto:help@store.example") == "scheme mailto: not https");
  CHECK(refused("/a", "skd://key-server/1") == "scheme skd: not https");
  CHECK(refused("/a", "https:/a") == "URL without a host");
  CHECK(refused("/a", "https:///a") == "URL without a host");
  CHECK(refused("/a", "https://user:pw@store.example/a") == "userinfo in URL");
  CHECK(refused("/a", "//@store.example/a") == "userinfo in URL");
  CHECK(refused("/a", "") == "empty reference");
  CHECK(refused("/a", "a b.html") == "space");
  CHECK(refused("/a", "..\\..\\windows\\win.ini") == "backslash");
  CHECK(refused("/a", std::string_view("a\0b", 3)) == "control character");
  CHECK(refused("/a", "a\tb") == "control character");
  CHECK(refused("/a", "a\x7f") == "control character");
  CHECK(refused("/", "/.//evil.example/x") == "path starts with //");
  CHECK(refused("/a", std::string(5000, 'a')) == "longer than 4096 bytes");
  // A long base with a short reference must not make a path over the limit either.
  CHECK(refused("/" + std::string(4095, 'b') + "/", "cdef") == "longer than 4096 bytes");
}

TEST_CASE("a colon after a slash is a path, not a scheme", "[prefetch][resolve]") {
  CHECK(ok("/c/", "./a:b") == "/c/a:b");
  CHECK(ok("/c/", "a/b:c") == "/c/a/b:c");
  CHECK(refused("/c/", "a:b") == "scheme a: not https");
}

TEST_CASE("a base that is not an absolute path is read from the root", "[prefetch][resolve]") {
  CHECK(ok("", "a.js") == "/a.js");
  CHECK(ok("c/list.txt", "a.js") == "/c/a.js");
  CHECK(resolve("/a", "x", "store.example", nullptr) == "/x");  // why may be null
}
