// What kind of content a response is, for the usage history and the status page:
// video, audio, document, web (page / HTML5 / SCORM module parts), image, data, other.
//
// Content-Type decides when it is specific (video/*, audio/*, image/*, text/html, text/css,
// JavaScript, application/pdf, office types, JSON, XML, HLS/DASH playlists...). When it is
// missing or generic (application/octet-stream, binary/octet-stream), the path's extension
// decides (.mp4 .m4v .webm .mov .m3u8 .mpd .ts -> video, .mp3 .m4a .aac .ogg .wav -> audio,
// .pdf .docx .pptx .xlsx .odt .epub .txt -> document, .html .htm .js .mjs .css .woff(2) -> web,
// .png .jpg .jpeg .gif .webp .avif .ico .svg -> image, .json .xml .csv -> data); otherwise
// other. SCORM manifests, subtitles and text/plain: see the decisions in content_class.cpp.
#pragma once

#include <cstdint>
#include <string_view>

namespace storecache::usage {

enum class content_class : std::uint8_t { video, audio, document, web, image, data, other };
inline constexpr int content_class_count = 7;

// content_type: the response's Content-Type field value as sent (parameters, any case).
// path: the request path, query already removed or not (a query is ignored).
content_class classify_content(std::string_view content_type, std::string_view path);

std::string_view label(content_class c);         // "video", "audio", ..., "other"
std::string_view display_name(content_class c);  // "Video", "Web page / module", ...

}  // namespace storecache::usage
