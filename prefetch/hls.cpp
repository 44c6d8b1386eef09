// HLS playlists (RFC 8216). A master playlist names variant streams (EXT-X-STREAM-INF and the
// URI line after it), renditions (EXT-X-MEDIA URI="…") and I-frame streams
// (EXT-X-I-FRAME-STREAM-INF URI="…"): those are media playlists, sources to read in turn. A
// media playlist names segments (every URI line), init sections (EXT-X-MAP URI="…") and keys
// (EXT-X-KEY URI="…"): those are objects. A key on another host (a DRM licence server, say) is
// rejected like any other reference that leaves the site.
//
// With hls_variants::lowest_and_highest only two variants are read: the lowest BANDWIDTH (what
// a device starts on, or falls back to) and the highest (what it climbs to on the store's
// LAN). Renditions are all kept (each audio language is wanted); I-frame streams, only used
// for scrubbing, are dropped. The two variants are added after the rest of the playlist.
//
// Not read: Low-Latency HLS parts and hints (EXT-X-PART, EXT-X-PRELOAD-HINT), which exist only
// for live streams, nothing a store prefetches.
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "prefetch/formats.hpp"

namespace storecache::prefetch {
namespace {

struct attribute {
  std::string_view name;
  std::string_view value;  // a quoted-string without its quotes
};

// RFC 8216 §4.2: AttributeName=AttributeValue, comma-separated; a quoted string may hold
// commas. Stops at the first malformed attribute and returns those before it.
std::vector<attribute> parse_attributes(std::string_view list) {
  std::vector<attribute> out;
  while (!list.empty()) {
    const auto eq = list.find('=');
    if (eq == 0 || eq == std::string_view::npos) break;
    attribute a{list.substr(0, eq), {}};
    if (a.name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != std::string_view::npos)
      break;
    list.remove_prefix(eq + 1);
    std::size_t end = 0;
    if (list.starts_with('"')) {
      const auto close = list.find('"', 1);
      if (close == std::string_view::npos) break;
      a.value = list.substr(1, close - 1);
      end = close + 1;
    } else {
      end = std::min(list.find(','), list.size());
      a.value = list.substr(0, end);
    }
    out.push_back(a);
    list.remove_prefix(end);
    if (list.empty()) break;
    if (!list.starts_with(',')) break;
    list.remove_prefix(1);
  }
  return out;
}

std::optional<std::string_view> find(const std::vector<attribute>& list, std::string_view name) {
  for (const auto& a : list)
    if (a.name == name) return a.value;
  return std::nullopt;
}

std::string_view tag_value(std::string_view line, std::string_view tag) {
  return line.substr(tag.size());
}

// A variant held back until the whole master is read (lowest_and_highest).
struct candidate {
  std::uint64_t bandwidth = 0;
  std::size_t order = 0;
  std::string path;
};

class playlist_reader {
 public:
  playlist_reader(collector& out, hls_variants variants) : out_(out), variants_(variants) {}

  // False once max_entries is reached.
  bool line(std::string_view line) {
    if (line.starts_with('#')) return tag(line);
    if (!pending_variant_) return add(line, entry_role::object);  // a segment
    pending_variant_ = false;
    if (variants_ == hls_variants::all) return add(line, entry_role::source);
    hold(line);
    return true;
  }

  void finish() {
    if (!lowest_ || !highest_) return;
    const bool lowest_first = lowest_->order <= highest_->order;
    auto& first = lowest_first ? *lowest_ : *highest_;
    auto& second = lowest_first ? *highest_ : *lowest_;
    if (out_.add_path(std::move(first.path), entry_role::source) && first.order != second.order)
      out_.add_path(std::move(second.path), entry_role::source);
  }

 private:
  bool tag(std::string_view line) {
    static constexpr std::string_view stream_inf = "#EXT-X-STREAM-INF:";
    static constexpr std::string_view iframe = "#EXT-X-I-FRAME-STREAM-INF:";
    static constexpr std::string_view media = "#EXT-X-MEDIA:";
    static constexpr std::string_view map = "#EXT-X-MAP:";
    static constexpr std::string_view key = "#EXT-X-KEY:";
    static constexpr std::string_view session_key = "#EXT-X-SESSION-KEY:";
    if (line.starts_with(stream_inf)) {
      pending_variant_ = true;
      pending_bandwidth_ = bandwidth(parse_attributes(tag_value(line, stream_inf)));
    } else if (line.starts_with(iframe)) {
      if (variants_ == hls_variants::all)
        return add_uri(tag_value(line, iframe), entry_role::source);
    } else if (line.starts_with(media)) {
      return add_uri(tag_value(line, media), entry_role::source);
    } else if (line.starts_with(map)) {
      return add_uri(tag_value(line, map), entry_role::object);
    } else if (line.starts_with(key) || line.starts_with(session_key)) {
      const auto attrs = parse_attributes(line.substr(line.find(':') + 1));
      if (find(attrs, "METHOD") == "NONE") return true;
      if (const auto uri = find(attrs, "URI")) return add(*uri, entry_role::object);
    }
    return true;  // EXTINF, EXT-X-BYTERANGE, comments, …
  }

  bool add_uri(std::string_view attributes, entry_role role) {
    const auto uri = find(parse_attributes(attributes), "URI");
    return uri ? add(*uri, role) : true;
  }

  bool add(std::string_view reference, entry_role role) {
    return out_.add(out_.source_path(), reference, role);
  }

  static std::uint64_t bandwidth(const std::vector<attribute>& attrs) {
    // Required by §4.3.4.2; a variant without one counts as 0, the lowest.
    const auto value = find(attrs, "BANDWIDTH").value_or("");
    std::uint64_t n = 0;
    std::from_chars(value.data(), value.data() + value.size(), n);
    return n;
  }

  void hold(std::string_view reference) {
    auto path = out_.resolve_or_reject(out_.source_path(), reference);
    if (!path) return;
    const std::size_t order = variants_seen_++;
    if (!lowest_ || pending_bandwidth_ < lowest_->bandwidth)
      lowest_ = candidate{pending_bandwidth_, order, *path};
    if (!highest_ || pending_bandwidth_ > highest_->bandwidth)
      highest_ = candidate{pending_bandwidth_, order, std::move(*path)};
  }

  collector& out_;
  hls_variants variants_;
  bool pending_variant_ = false;  // an EXT-X-STREAM-INF waits for its URI line
  std::uint64_t pending_bandwidth_ = 0;
  std::size_t variants_seen_ = 0;
  std::optional<candidate> lowest_, highest_;
};

std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r");
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t\r") - first + 1);
}

}  // namespace

void parse_hls(std::string_view body, hls_variants variants, collector& out) {
  if (body.starts_with("\xEF\xBB\xBF")) body.remove_prefix(3);
  body.remove_prefix(std::min(body.find_first_not_of(" \t\r\n"), body.size()));
  const auto first_nl = body.find('\n');
  if (trim(body.substr(0, first_nl)) != "#EXTM3U")
    return out.fail("not a playlist: the first line is not #EXTM3U");
  body = first_nl == std::string_view::npos ? std::string_view{} : body.substr(first_nl + 1);

  playlist_reader reader(out, variants);
  while (!body.empty()) {
    const auto nl = body.find('\n');
    const auto line = trim(body.substr(0, nl));
    body = nl == std::string_view::npos ? std::string_view{} : body.substr(nl + 1);
    if (!line.empty() && !reader.line(line)) return;
  }
  reader.finish();
}

}  // namespace storecache::prefetch
