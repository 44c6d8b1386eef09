// The listings a prefetch reads (issue 8): what a store's course or media library says it is
// made of, read from bytes into the site paths to fetch. Pure functions: no sockets, no files;
// the runner fetches the listings and the objects, and caps the body's size.
//
// Formats: a URL list (one path or same-site URL a line), an IMS/SCORM manifest
// (imsmanifest.xml), an HLS playlist (RFC 8216: master or media), a cmi5 course structure
// (cmi5.xml). Every reference is resolved against the listing's own path (resolve()) and kept
// only when it stays on the site; anything else is rejected, with a reason, never fetched.
//
// Bounds: at most max_entries paths (objects and sources together), at most 10 rejected
// references kept as text (all counted), each path at most max_reference_length bytes.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace storecache::prefetch {

enum class source_kind { url_list, ims_manifest, hls, cmi5 };
std::string_view to_string(source_kind);

// From the body's first bytes (BOM and whitespace skipped): "#EXTM3U" → hls; XML whose root
// element is `manifest` → ims_manifest, `courseStructure` → cmi5; otherwise url_list.
// content_type and path are hints only when the body is ambiguous: empty, or XML whose root is
// neither of those (then a hint gives the parser the chance to say what is wrong with it).
source_kind detect_kind(std::string_view body, std::string_view content_type,
                        std::string_view path);

enum class hls_variants { all, lowest_and_highest };

struct parse_options {
  // The listing's own path on the site ("/c/a/imsmanifest.xml", may carry ?query).
  std::string source_path;
  // The site's host name: "https://<site_name>/x" and "//<site_name>/x" are same-site.
  std::string site_name;
  // Objects + sources; more → truncated = true, the rest ignored.
  std::size_t max_entries = 100000;
  // Bytes of the paths kept (objects + sources); more → truncated. Bounds what a listing can
  // make of its size: short relative references under a long xml:base resolve to long paths.
  std::size_t max_bytes = std::size_t{64} << 20;
  hls_variants variants = hls_variants::all;
};

struct listing {
  // Site paths ("/…", query kept, fragment dropped), deduplicated, first-seen order.
  std::vector<std::string> objects;
  // Nested listings to read in turn (HLS media playlists of a master; URL-list lines naming a
  // .m3u8/.m3u, imsmanifest.xml or cmi5.xml).
  std::vector<std::string> sources;
  // The first 10 rejected references, each "reference: reason".
  std::vector<std::string> rejected;
  std::size_t rejected_count = 0;  // all of them
  bool truncated = false;          // max_entries reached
  // Non-empty: the body is malformed (XML error with line, not a playlist, …); objects and
  // sources then hold what was read before the error.
  std::string error;
};

listing parse(source_kind kind, std::string_view body, const parse_options& options);

// A reference longer than this (or one that resolves to a longer path) is rejected: it bounds
// what max_entries paths can cost (many servers refuse longer request targets anyway).
inline constexpr std::size_t max_reference_length = 4096;

// A reference (absolute path, relative path, or absolute URL) resolved against base_path (a
// site path), RFC 3986 §5.2 with dot-segment removal; nullopt with *why set when it leaves the
// site: another host or port, a scheme other than https (http://same-host also rejected), `..`
// above the root is clamped per RFC 3986, userinfo, control characters, spaces or backslashes,
// an empty reference. Percent-encoding is kept as written (no decoding); bytes above 0x7f are
// percent-encoded (RFC 3987 §3.1), so a course's "Einführung.html" stays fetchable.
std::optional<std::string> resolve(std::string_view base_path, std::string_view reference,
                                   std::string_view site_name, std::string* why);

}  // namespace storecache::prefetch
