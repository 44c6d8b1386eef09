// Content-Type + path extension -> content class. Decisions beyond the header's list:
// - SCORM / HTML5 modules are "web": HTML, JavaScript, CSS, web fonts, WebAssembly, Flash, and
//   the package's own descriptors: imsmanifest.xml (whatever its Content-Type says) and the
//   .xsd/.dtd schema files shipped beside it. Their images and videos still count as image and
//   video: the class says what the bytes are, not which course they belong to.
// - Subtitles and captions (text/vtt, .vtt, .srt) are "video": they exist for a video and the
//   training team reads "video" as everything a video needs. HLS playlists (application/
//   vnd.apple.mpegurl, audio/mpegurl too), DASH manifests and segments (.ts, .m4s) are video.
// - SVG is "image" (image/svg+xml), also inside a module.
// - JSON, XML (other than the above) and CSV are "data"; text/plain is "document" unless the
//   extension says more (servers send text/plain for unknown files).
// - application/octet-stream, binary/octet-stream, a missing Content-Type and types not listed
//   here fall back to the extension; .zip and unknown extensions are "other".
// Matching ignores case and parameters ("Text/HTML; charset=UTF-8"); no allocation.
#include "usage/content_class.hpp"

#include <cstddef>
#include <initializer_list>

#include "cache/cache_control.hpp"

namespace storecache::usage {

namespace {

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// a equals b ignoring ASCII case; b is lower case.
bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != b[i]) return false;
  return true;
}

bool istarts_with(std::string_view a, std::string_view prefix) {
  return a.size() >= prefix.size() && iequals(a.substr(0, prefix.size()), prefix);
}

bool iends_with(std::string_view a, std::string_view suffix) {
  return a.size() >= suffix.size() && iequals(a.substr(a.size() - suffix.size()), suffix);
}

bool iany(std::string_view a, std::initializer_list<std::string_view> list) {
  for (auto b : list)
    if (iequals(a, b)) return true;
  return false;
}

// The media type without parameters: "text/html; charset=utf-8" -> "text/html".
std::string_view media_type(std::string_view content_type) {
  return cache::trim_ows(content_type.substr(0, content_type.find(';')));
}

// The last path segment without query or fragment.
std::string_view file_name(std::string_view path) {
  path = path.substr(0, path.find_first_of("?#"));
  const auto slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

// other: the type says nothing specific (or nothing we know).
content_class from_type(std::string_view t) {
  if (t.empty()) return content_class::other;
  if (iany(t, {"application/vnd.apple.mpegurl", "application/x-mpegurl", "audio/mpegurl",
               "audio/x-mpegurl", "application/dash+xml", "text/vtt"}))
    return content_class::video;
  if (istarts_with(t, "video/")) return content_class::video;
  if (istarts_with(t, "audio/")) return content_class::audio;
  if (istarts_with(t, "image/")) return content_class::image;
  if (istarts_with(t, "font/")) return content_class::web;
  if (iany(t, {"text/html", "application/xhtml+xml", "text/css", "text/javascript",
               "application/javascript", "application/x-javascript", "application/ecmascript",
               "text/ecmascript", "application/wasm", "application/font-woff",
               "application/x-font-woff", "application/x-font-ttf", "application/x-font-otf",
               "application/vnd.ms-fontobject", "application/x-shockwave-flash"}))
    return content_class::web;
  if (iany(t, {"application/pdf", "application/msword", "application/vnd.ms-excel",
               "application/vnd.ms-powerpoint", "application/rtf", "text/rtf",
               "application/epub+zip"}) ||
      istarts_with(t, "application/vnd.openxmlformats-officedocument.") ||
      istarts_with(t, "application/vnd.oasis.opendocument."))
    return content_class::document;
  if (iany(t, {"application/json", "application/xml", "text/xml", "text/csv"}) ||
      iends_with(t, "+json") || iends_with(t, "+xml"))
    return content_class::data;
  return content_class::other;
}

content_class from_extension(std::string_view name) {
  const auto dot = name.rfind('.');
  if (dot == std::string_view::npos) return content_class::other;
  const std::string_view e = name.substr(dot + 1);
  if (iany(e,
           {"mp4", "m4v", "webm", "mov", "mkv", "avi", "m3u8", "mpd", "ts", "m4s", "vtt", "srt"}))
    return content_class::video;
  if (iany(e, {"mp3", "m4a", "aac", "ogg", "oga", "opus", "wav", "flac"}))
    return content_class::audio;
  if (iany(e, {"pdf", "doc", "docx", "ppt", "pptx", "xls", "xlsx", "odt", "ods", "odp", "epub",
               "txt", "rtf"}))
    return content_class::document;
  if (iany(e, {"html", "htm", "xhtml", "js", "mjs", "css", "woff", "woff2", "ttf", "otf", "eot",
               "wasm", "swf", "xsd", "dtd"}))
    return content_class::web;
  if (iany(e, {"png", "jpg", "jpeg", "gif", "webp", "avif", "ico", "bmp", "svg"}))
    return content_class::image;
  if (iany(e, {"json", "xml", "csv"})) return content_class::data;
  return content_class::other;
}

}  // namespace

content_class classify_content(std::string_view content_type, std::string_view path) {
  const std::string_view name = file_name(path);
  // The SCORM manifest is XML by type but the module's entry point by role.
  if (iequals(name, "imsmanifest.xml")) return content_class::web;
  const std::string_view type = media_type(content_type);
  if (iequals(type, "text/plain")) {
    const content_class by_ext = from_extension(name);
    return by_ext == content_class::other ? content_class::document : by_ext;
  }
  const content_class by_type = from_type(type);
  if (by_type != content_class::other) return by_type;
  return from_extension(name);
}

std::string_view label(content_class c) {
  switch (c) {
    case content_class::video:
      return "video";
    case content_class::audio:
      return "audio";
    case content_class::document:
      return "document";
    case content_class::web:
      return "web";
    case content_class::image:
      return "image";
    case content_class::data:
      return "data";
    case content_class::other:
      break;
  }
  return "other";
}

std::string_view display_name(content_class c) {
  switch (c) {
    case content_class::video:
      return "Video";
    case content_class::audio:
      return "Audio";
    case content_class::document:
      return "Document";
    case content_class::web:
      return "Web page / module";
    case content_class::image:
      return "Image";
    case content_class::data:
      return "Data";
    case content_class::other:
      break;
  }
  return "Other";
}

}  // namespace storecache::usage
