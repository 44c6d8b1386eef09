// A URL list: what a store's operator writes by hand or a CMS exports.
//
//   # course 12, spring catalogue
//   /courses/12/index.html
//   media/intro.mp4            # relative to the list's own path
//   https://store.example/courses/12/video/master.m3u8
//
// One reference a line (LF or CRLF), blank lines and `#` comments (a whole line, or after
// whitespace: "/a.html#top" is a fragment, "/a.html #top" a comment). A line naming a listing
// (.m3u8, .m3u, imsmanifest.xml, cmi5.xml) is a source to read in turn; any other an object.
#include "prefetch/formats.hpp"

namespace storecache::prefetch {
namespace {

std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r");
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t\r") - first + 1);
}

// The line without its comment: '#' at the start or after a space or a tab.
std::string_view strip_comment(std::string_view line) {
  for (std::size_t i = 0; i < line.size(); ++i)
    if (line[i] == '#' && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t'))
      return line.substr(0, i);
  return line;
}

}  // namespace

void parse_url_list(std::string_view body, collector& out) {
  if (body.starts_with("\xEF\xBB\xBF")) body.remove_prefix(3);
  while (!body.empty()) {
    const auto nl = body.find('\n');
    const auto line = trim(strip_comment(body.substr(0, nl)));
    body = nl == std::string_view::npos ? std::string_view{} : body.substr(nl + 1);
    if (line.empty()) continue;
    auto path = out.resolve_or_reject(out.source_path(), line);
    if (!path) continue;
    const auto role = listing_name_kind(*path) ? entry_role::source : entry_role::object;
    if (!out.add_path(std::move(*path), role)) return;
  }
}

}  // namespace storecache::prefetch
