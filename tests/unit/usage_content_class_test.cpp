// Content class from Content-Type and path: specific types decide, generic or missing ones
// fall back to the extension; SCORM module parts; case and parameters ignored.
#include <catch2/catch.hpp>

#include "usage/content_class.hpp"

using namespace storecache::usage;

namespace {

struct cc_case {
  const char* type;
  const char* path;
  content_class expect;
};

const cc_case cases[] = {
    // The type decides when it is specific, whatever the extension says.
    {"video/mp4", "/v/intro.mp4", content_class::video},
    {"video/mp4", "/download?id=7", content_class::video},
    {"Video/MP4; codecs=\"avc1.42E01E\"", "/x", content_class::video},
    {"video/mp2t", "/hls/seg-001.ts", content_class::video},
    {"application/vnd.apple.mpegurl", "/hls/index.m3u8", content_class::video},
    {"application/x-mpegURL", "/hls/index.m3u8", content_class::video},
    {"audio/mpegurl", "/hls/index.m3u8", content_class::video},
    {"application/dash+xml", "/dash/manifest.mpd", content_class::video},
    {"text/vtt; charset=utf-8", "/v/intro.en.vtt", content_class::video},
    {"audio/mpeg", "/a/podcast.mp3", content_class::audio},
    {"audio/mp4", "/a/x.m4a", content_class::audio},
    {"image/png", "/i/logo.png", content_class::image},
    {"image/svg+xml", "/module/img/arrow.svg", content_class::image},
    {"text/html; charset=UTF-8", "/", content_class::web},
    {"TEXT/HTML", "/index", content_class::web},
    {"application/xhtml+xml", "/p", content_class::web},
    {"text/css", "/m/style.css", content_class::web},
    {"text/javascript", "/m/scormdriver.js", content_class::web},
    {"application/javascript; charset=utf-8", "/m/app.js", content_class::web},
    {"font/woff2", "/m/fonts/open-sans.woff2", content_class::web},
    {"application/font-woff", "/m/f.woff", content_class::web},
    {"application/wasm", "/m/engine.wasm", content_class::web},
    {"application/pdf", "/docs/manual.pdf", content_class::document},
    {"application/vnd.openxmlformats-officedocument.presentationml.presentation", "/d/x",
     content_class::document},
    {"application/vnd.openxmlformats-officedocument.wordprocessingml.document", "/d/y",
     content_class::document},
    {"application/msword", "/d/old.doc", content_class::document},
    {"application/vnd.oasis.opendocument.text", "/d/z.odt", content_class::document},
    {"application/epub+zip", "/b/book.epub", content_class::document},
    {"application/json", "/api/progress", content_class::data},
    {"application/ld+json", "/meta", content_class::data},
    {"application/xml", "/feed", content_class::data},
    {"text/csv", "/r/report.csv", content_class::data},
    // SCORM: the manifest is the module whatever its type; schemas ship with it.
    {"application/xml", "/course/imsmanifest.xml", content_class::web},
    {"text/xml", "/course/IMSMANIFEST.XML?v=2", content_class::web},
    {"", "/course/imsmanifest.xml", content_class::web},
    {"application/octet-stream", "/course/adlcp_rootv1p2.xsd", content_class::web},
    {"application/json", "/course/data/quiz.json", content_class::data},
    // text/plain: the extension if it knows better, else document.
    {"text/plain", "/m/app.js", content_class::web},
    {"text/plain", "/notes/readme.txt", content_class::document},
    {"text/plain; charset=us-ascii", "/robots", content_class::document},
    {"text/plain", "/v/intro.vtt", content_class::video},
    // Generic or missing type: the extension decides (any case, query and fragment ignored).
    {"application/octet-stream", "/v/intro.MP4", content_class::video},
    {"binary/octet-stream", "/v/intro.webm?X-Amz-Signature=abc", content_class::video},
    {"", "/v/intro.mov", content_class::video},
    {"", "/dash/seg-17.m4s", content_class::video},
    {"", "/v/intro.srt", content_class::video},
    {"", "/a/song.ogg", content_class::audio},
    {"", "/a/song.WAV#t=10", content_class::audio},
    {"", "/docs/a.docx", content_class::document},
    {"", "/docs/a.PPTX", content_class::document},
    {"", "/m/index.html", content_class::web},
    {"", "/m/index.htm", content_class::web},
    {"", "/m/app.mjs", content_class::web},
    {"", "/m/f.woff", content_class::web},
    {"", "/i/photo.JPEG", content_class::image},
    {"", "/i/photo.webp", content_class::image},
    {"", "/i/a.avif", content_class::image},
    {"", "/favicon.ico", content_class::image},
    {"", "/d/x.json", content_class::data},
    {"", "/d/x.xml", content_class::data},
    {"application/x-unknown", "/v/intro.mp4", content_class::video},
    // Nothing to go on.
    {"", "", content_class::other},
    {"", "/", content_class::other},
    {"", "/course.zip", content_class::other},
    {"application/zip", "/course.zip", content_class::other},
    {"application/octet-stream", "/bin/blob", content_class::other},
    {"", "/dir.mp4/file", content_class::other},  // the extension is the last segment's
    {"", "/file.", content_class::other},
    {";;;", "/?a.mp4", content_class::other},
};

}  // namespace

TEST_CASE("usage: content class from Content-Type and extension", "[usage][content]") {
  for (const auto& c : cases) {
    INFO("type '" << c.type << "' path '" << c.path << "'");
    CHECK(label(classify_content(c.type, c.path)) == label(c.expect));
  }
}

TEST_CASE("usage: content class labels and names", "[usage][content]") {
  const char* labels[] = {"video", "audio", "document", "web", "image", "data", "other"};
  for (int i = 0; i < content_class_count; ++i)
    CHECK(label(static_cast<content_class>(i)) == labels[i]);
  CHECK(display_name(content_class::web) == "Web page / module");
  CHECK(display_name(content_class::video) == "Video");
  CHECK(display_name(content_class::other) == "Other");
}
