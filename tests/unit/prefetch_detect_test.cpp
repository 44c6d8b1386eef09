// detect_kind(): the body decides (BOM and whitespace skipped); content type and path only when
// the body is ambiguous. to_string() names every kind.
#include <catch2/catch.hpp>

#include "prefetch/listing.hpp"

using namespace storecache::prefetch;

TEST_CASE("the body's first bytes decide", "[prefetch][detect]") {
  CHECK(detect_kind("#EXTM3U\n#EXT-X-VERSION:3\n", "", "") == source_kind::hls);
  CHECK(detect_kind("\xEF\xBB\xBF \r\n\t#EXTM3U\n", "text/plain", "/a.txt") == source_kind::hls);
  CHECK(detect_kind("<?xml version=\"1.0\"?>\n<!-- tool -->\n<manifest identifier=\"x\">", "",
                    "") == source_kind::ims_manifest);
  CHECK(detect_kind("<imscp:manifest xmlns:imscp=\"…\"/>", "", "") == source_kind::ims_manifest);
  CHECK(detect_kind("<?xml version=\"1.0\"?><courseStructure xmlns=\"…\">", "", "") ==
        source_kind::cmi5);
  CHECK(detect_kind("<!DOCTYPE manifest [<!ELEMENT manifest ANY>]>\n<manifest/>", "", "") ==
        source_kind::ims_manifest);
  CHECK(detect_kind("/a.html\n/b.css\n", "", "") == source_kind::url_list);
  CHECK(detect_kind("# list\n/a.html\n", "", "") == source_kind::url_list);
}

TEST_CASE("hints do not override an unambiguous body", "[prefetch][detect]") {
  CHECK(detect_kind("#EXTM3U\n", "application/xml", "/c/imsmanifest.xml") == source_kind::hls);
  CHECK(detect_kind("<manifest/>", "application/vnd.apple.mpegurl", "/v/master.m3u8") ==
        source_kind::ims_manifest);
  // A plain (pre-HLS) .m3u is a list of URLs.
  CHECK(detect_kind("a.mp3\nb.mp3\n", "audio/mpegurl", "/radio/old.m3u") == source_kind::url_list);
}

TEST_CASE("an empty body or unknown XML goes by the hints", "[prefetch][detect]") {
  CHECK(detect_kind("", "", "") == source_kind::url_list);
  CHECK(detect_kind("", "application/vnd.apple.mpegurl", "/x") == source_kind::hls);
  CHECK(detect_kind("  \n", "application/x-mpegURL; charset=utf-8", "/x") == source_kind::hls);
  CHECK(detect_kind("", "", "/v/master.M3U8?token=1") == source_kind::hls);
  CHECK(detect_kind("", "", "/c/imsmanifest.xml") == source_kind::ims_manifest);
  CHECK(detect_kind("", "", "/c/cmi5.xml") == source_kind::cmi5);
  CHECK(detect_kind("", "", "/c/mycmi5.xml") == source_kind::url_list);
  // An error page where a manifest was expected: the manifest parser says what is wrong.
  CHECK(detect_kind("<html><body>Not found</body></html>", "text/html", "/c/imsmanifest.xml") ==
        source_kind::ims_manifest);
  CHECK(detect_kind("<html><body>Not found</body></html>", "text/html", "/c/list.txt") ==
        source_kind::url_list);
  CHECK(detect_kind("<!-- never closed", "", "/c/cmi5.xml") == source_kind::cmi5);
}

TEST_CASE("to_string names every kind", "[prefetch][detect]") {
  CHECK(to_string(source_kind::url_list) == "url_list");
  CHECK(to_string(source_kind::ims_manifest) == "ims_manifest");
  CHECK(to_string(source_kind::hls) == "hls");
  CHECK(to_string(source_kind::cmi5) == "cmi5");
}

TEST_CASE("detected and parsed: an error page is reported, not listed", "[prefetch][detect]") {
  parse_options o;
  o.source_path = "/c/imsmanifest.xml";
  o.site_name = "store.example";
  const auto body = "<html><body>Not found</body></html>";
  const auto l = parse(detect_kind(body, "text/html", o.source_path), body, o);
  CHECK(l.error == "line 1: root element is <html>, not <manifest>");
  CHECK(l.objects.empty());
}
