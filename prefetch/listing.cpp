// parse(), detect_kind() and the collector every format's parser fills.
#include "prefetch/listing.hpp"

#include <functional>

#include "prefetch/collector.hpp"
#include "prefetch/formats.hpp"

namespace storecache::prefetch {
namespace {

constexpr std::size_t max_shown_reference = 200;

// A rejected reference as a log can show it: control bytes escaped, long ones cut.
std::string printable(std::string_view ref) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (const char c : ref.substr(0, max_shown_reference)) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7f) {
      out += "\\x";
      out += hex[b >> 4];
      out += hex[b & 0xf];
    } else {
      out += c;
    }
  }
  if (ref.size() > max_shown_reference) out += "...";
  return out;
}

std::string_view skip_bom_and_space(std::string_view body) {
  if (body.starts_with("\xEF\xBB\xBF")) body.remove_prefix(3);
  const auto first = body.find_first_not_of(" \t\r\n");
  return first == std::string_view::npos ? std::string_view{} : body.substr(first);
}

// The root element's local name of an XML document, or empty when none is found: skips the
// declaration, processing instructions, comments and a DOCTYPE (with its internal subset).
std::string_view xml_root_name(std::string_view s) {
  while (true) {
    s = skip_bom_and_space(s);
    if (!s.starts_with('<')) return {};
    std::size_t end = std::string_view::npos;
    if (s.starts_with("<?")) {
      end = s.find("?>");
      if (end != std::string_view::npos) end += 2;
    } else if (s.starts_with("<!--")) {
      end = s.find("-->");
      if (end != std::string_view::npos) end += 3;
    } else if (s.starts_with("<!")) {
      const auto subset = s.find('[');
      const auto close = s.find('>');
      if (subset != std::string_view::npos && subset < close) {
        const auto subset_end = s.find("]", subset);
        end = subset_end == std::string_view::npos ? subset_end : s.find('>', subset_end);
      } else {
        end = close;
      }
      if (end != std::string_view::npos) end += 1;
    } else {
      auto name = s.substr(1, s.find_first_of(" \t\r\n/>", 1) - 1);
      const auto colon = name.find(':');
      return colon == std::string_view::npos ? name : name.substr(colon + 1);
    }
    if (end == std::string_view::npos) return {};
    s.remove_prefix(end);
  }
}

bool ends_with_nocase(std::string_view s, std::string_view suffix) {
  if (s.size() < suffix.size()) return false;
  s = s.substr(s.size() - suffix.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != suffix[i]) return false;
  }
  return true;
}

std::optional<source_kind> kind_from_hints(std::string_view content_type, std::string_view path) {
  const auto type = content_type.substr(0, content_type.find(';'));
  if (ends_with_nocase(type, "mpegurl")) return source_kind::hls;  // application/vnd.apple.mpegurl
  if (const auto n = listing_name_kind(path)) return *n;
  return std::nullopt;
}

}  // namespace

std::string_view to_string(source_kind kind) {
  switch (kind) {
    case source_kind::url_list:
      return "url_list";
    case source_kind::ims_manifest:
      return "ims_manifest";
    case source_kind::hls:
      return "hls";
    case source_kind::cmi5:
      return "cmi5";
  }
  return "unknown";
}

std::optional<source_kind> listing_name_kind(std::string_view path) {
  path = path.substr(0, path.find_first_of("?#"));
  const auto name = path.substr(path.rfind('/') + 1);
  if (ends_with_nocase(name, ".m3u8") || ends_with_nocase(name, ".m3u")) return source_kind::hls;
  if (ends_with_nocase(name, "imsmanifest.xml") && name.size() == 15)
    return source_kind::ims_manifest;
  if (ends_with_nocase(name, "cmi5.xml") && name.size() == 8) return source_kind::cmi5;
  return std::nullopt;
}

source_kind detect_kind(std::string_view body, std::string_view content_type,
                        std::string_view path) {
  const auto start = skip_bom_and_space(body);
  if (start.starts_with("#EXTM3U")) return source_kind::hls;
  if (start.starts_with('<')) {
    const auto root = xml_root_name(start);
    if (root == "manifest") return source_kind::ims_manifest;
    if (root == "courseStructure") return source_kind::cmi5;
  }
  if (start.empty() || start.starts_with('<')) {
    if (const auto hinted = kind_from_hints(content_type, path)) return *hinted;
  }
  return source_kind::url_list;
}

listing parse(source_kind kind, std::string_view body, const parse_options& options) {
  collector out(options);
  switch (kind) {
    case source_kind::url_list:
      parse_url_list(body, out);
      break;
    case source_kind::ims_manifest:
      parse_ims_manifest(body, out);
      break;
    case source_kind::hls:
      parse_hls(body, options.variants, out);
      break;
    case source_kind::cmi5:
      parse_cmi5(body, out);
      break;
  }
  return out.take();
}

collector::collector(const parse_options& options) : options_(options) {
  // The listing's own path in the form its references resolve to ("/a/./b.m3u8" is "/a/b.m3u8").
  self_ =
      resolve("/", options.source_path, options.site_name, nullptr).value_or(options.source_path);
}

std::optional<std::string> collector::resolve_or_reject(std::string_view base,
                                                        std::string_view reference) {
  std::string why;
  auto path = resolve(base, reference, options_.site_name, &why);
  if (!path) {
    reject(reference, why);
    return std::nullopt;
  }
  if (*path == self_) {
    reject(reference, "refers to itself");
    return std::nullopt;
  }
  return path;
}

bool collector::add(std::string_view base, std::string_view reference, entry_role role) {
  if (full()) return false;
  auto path = resolve_or_reject(base, reference);
  if (!path) return true;
  return add_path(std::move(*path), role);
}

bool collector::add_path(std::string path, entry_role role) {
  if (full()) return false;
  const auto hash = std::hash<std::string>{}(path);
  const auto [first, last] = seen_.equal_range(hash);
  for (auto it = first; it != last; ++it) {
    const auto& list = it->second % 2 == 0 ? out_.objects : out_.sources;
    if (list[it->second / 2] == path) return true;
  }
  if (out_.objects.size() + out_.sources.size() >= options_.max_entries ||
      bytes_ + path.size() > options_.max_bytes) {
    out_.truncated = true;
    return false;
  }
  bytes_ += path.size();
  auto& list = role == entry_role::object ? out_.objects : out_.sources;
  seen_.emplace(hash, list.size() * 2 + (role == entry_role::object ? 0 : 1));
  list.push_back(std::move(path));
  return true;
}

void collector::reject(std::string_view reference, std::string_view reason) {
  ++out_.rejected_count;
  if (out_.rejected.size() < max_rejected_kept)
    out_.rejected.push_back(printable(reference) + ": " + std::string(reason));
}

}  // namespace storecache::prefetch
