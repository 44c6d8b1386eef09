// URL lists: comments, CRLF, relative lines, nested listings as sources, off-site and hostile
// lines, and 200,000 lines against max_entries.
#include <catch2/catch.hpp>

#include "prefetch/listing.hpp"

using namespace storecache::prefetch;

namespace {

parse_options options(std::string source_path = "/lists/spring.txt") {
  parse_options o;
  o.source_path = std::move(source_path);
  o.site_name = "store.example";
  return o;
}

using strings = std::vector<std::string>;

}  // namespace

TEST_CASE("a realistic URL list", "[prefetch][url_list]") {
  const auto body =
      "# spring catalogue, exported 2026-03-01\r\n"
      "\r\n"
      "/courses/12/index.html\r\n"
      "   /courses/12/app.js?v=7   # cache-busted\r\n"
      "media/intro.mp4\r\n"
      "../shared/logo.svg#top\r\n"
      "https://store.example/courses/12/video/master.m3u8\r\n"
      "/courses/13/imsmanifest.xml\r\n"
      "/courses/14/cmi5.xml?lang=de\r\n"
      "/radio/old.M3U\r\n"
      "/courses/12/index.html\r\n"  // a duplicate
      "\t# indented comment\n"
      "/last-line-without-newline.css";
  const auto l = parse(source_kind::url_list, body, options());
  CHECK(l.error.empty());
  CHECK(l.objects == strings{"/courses/12/index.html", "/courses/12/app.js?v=7",
                             "/lists/media/intro.mp4", "/shared/logo.svg",
                             "/last-line-without-newline.css"});
  CHECK(l.sources == strings{"/courses/12/video/master.m3u8", "/courses/13/imsmanifest.xml",
                             "/courses/14/cmi5.xml?lang=de", "/radio/old.M3U"});
  CHECK(l.rejected.empty());
  CHECK(l.rejected_count == 0);
  CHECK_FALSE(l.truncated);
}

TEST_CASE("a name that only ends like a listing is an object", "[prefetch][url_list]") {
  const auto l =
      parse(source_kind::url_list,
            "/a/myimsmanifest.xml\n/a/cmi5.xml.bak\n/a/list.m3u8.txt\n/a/x?f=a.m3u8\n", options());
  CHECK(l.sources.empty());
  CHECK(l.objects ==
        strings{"/a/myimsmanifest.xml", "/a/cmi5.xml.bak", "/a/list.m3u8.txt", "/a/x?f=a.m3u8"});
}

TEST_CASE("hostile lines are rejected, counted, and never kept", "[prefetch][url_list]") {
  std::string body =
      "https://evil.example/steal.js\n"
      "http://store.example/clear.js\n"
      "javascript:alert(document.cookie)\n"
      "data:text/html,<script>x</script>\n"
      "../../../../etc/passwd\n"  // clamped at the root: stays on the site
      "/with space.html\n"
      "\\\\server\\share\n"
      "/lists/spring.txt\n"  // the list itself
      "https://user@store.example/x\n";
  body += std::string("/nul\0byte\n", 10);
  const auto l = parse(source_kind::url_list, body, options());
  CHECK(l.objects == strings{"/etc/passwd"});
  CHECK(l.sources.empty());
  CHECK(l.rejected_count == 9);
  REQUIRE(l.rejected.size() == 9);
  CHECK(l.rejected[0] == "https://evil.example/steal.js: another host (evil.example)");
  CHECK(l.rejected[1] == "http://store.example/clear.js: scheme http: not https");
  CHECK(l.rejected[5] == "\\\\server\\share: backslash");
  CHECK(l.rejected[6] == "/lists/spring.txt: refers to itself");
  CHECK(l.rejected[8] == "/nul\\x00byte: control character");
}

TEST_CASE("only the first 10 rejections are kept as text, all are counted",
          "[prefetch][url_list]") {
  std::string body;
  for (int i = 0; i < 25; ++i)
    body += "https://cdn" + std::to_string(i) + ".example/x\n";
  const auto l = parse(source_kind::url_list, body, options());
  CHECK(l.rejected_count == 25);
  CHECK(l.rejected.size() == 10);
  CHECK(l.objects.empty());
}

TEST_CASE("200,000 lines stop at max_entries", "[prefetch][url_list]") {
  std::string body;
  for (int i = 0; i < 200000; ++i)
    body += "/objects/" + std::to_string(i) + ".bin\n";
  auto o = options();
  const auto l = parse(source_kind::url_list, body, o);
  CHECK(l.truncated);
  CHECK(l.objects.size() == o.max_entries);
  CHECK(l.objects.back() == "/objects/99999.bin");

  o.max_entries = 3;
  const auto small = parse(source_kind::url_list, "/a\n/b\n/a\n/x.m3u8\n/c\n", o);
  CHECK(small.truncated);
  CHECK(small.objects == strings{"/a", "/b"});
  CHECK(small.sources == strings{"/x.m3u8"});
}

TEST_CASE("the bytes of the paths kept stop at max_bytes", "[prefetch][url_list]") {
  auto o = options();
  o.max_bytes = 10;
  const auto l = parse(source_kind::url_list, "/abcd\n/efgh\n/ijkl\n", o);
  CHECK(l.truncated);
  CHECK(l.objects == strings{"/abcd", "/efgh"});  // 10 bytes; the third would make 15

  // A manifest's xml:base makes long paths of short hrefs: the cap holds the result, not the
  // body, to its size.
  std::string manifest =
      "<manifest><resources xml:base=\"" + std::string(3000, 'd') + "/\"><resource href=\"a\">";
  for (int i = 0; i < 1000; ++i)
    manifest += "<file href=\"" + std::to_string(i) + "\"/>";
  manifest += "</resource></resources></manifest>";
  o.source_path = "/c/imsmanifest.xml";
  o.max_bytes = 100000;
  const auto m = parse(source_kind::ims_manifest, manifest, o);
  CHECK(m.truncated);
  std::size_t bytes = 0;
  for (const auto& p : m.objects)
    bytes += p.size();
  CHECK(bytes <= o.max_bytes);
  CHECK(m.objects.size() < 1000);
}

TEST_CASE("duplicates do not count against max_entries", "[prefetch][url_list]") {
  auto o = options();
  o.max_entries = 2;
  const auto l = parse(source_kind::url_list, "/a\n/b\n/a\n/b\n./../a\n", o);
  CHECK_FALSE(l.truncated);
  CHECK(l.objects == strings{"/a", "/b"});
}

TEST_CASE("200,000 rejected lines keep 10 texts", "[prefetch][url_list]") {
  std::string body;
  for (int i = 0; i < 200000; ++i)
    body += "http://store.example/" + std::to_string(i) + "\n";
  const auto l = parse(source_kind::url_list, body, options());
  CHECK(l.rejected_count == 200000);
  CHECK(l.rejected.size() == 10);
  CHECK_FALSE(l.truncated);
}

TEST_CASE("a long rejected reference is shortened in its text", "[prefetch][url_list]") {
  const auto l =
      parse(source_kind::url_list, "https://evil.example/" + std::string(3000, 'x'), options());
  REQUIRE(l.rejected.size() == 1);
  CHECK(l.rejected[0].size() < 300);
  CHECK(l.rejected[0].find("...: another host") != std::string::npos);
}

TEST_CASE("a UTF-8 BOM and an empty list", "[prefetch][url_list]") {
  CHECK(parse(source_kind::url_list, "\xEF\xBB\xBF/a.css\n", options()).objects ==
        strings{"/a.css"});
  const auto empty = parse(source_kind::url_list, "", options());
  CHECK(empty.objects.empty());
  CHECK(empty.error.empty());
}
