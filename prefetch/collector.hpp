// What every listing parser fills in, with the rules that are the same for all formats: a
// reference is resolved against a base and kept only when it stays on the site, is not the
// listing itself, and is new; past max_entries nothing more is kept. Internal to prefetch/.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "prefetch/listing.hpp"

namespace storecache::prefetch {

enum class entry_role { object, source };

// How many rejected references are kept as text; all of them are counted.
inline constexpr std::size_t max_rejected_kept = 10;

class collector {
 public:
  explicit collector(const parse_options& options);

  // `reference` resolved against `base` (a site path) and added as `role`, or rejected. False
  // once max_entries is reached: the parser may stop reading.
  bool add(std::string_view base, std::string_view reference, entry_role role);
  // An already resolved site path (an HLS variant chosen after the whole playlist was read).
  bool add_path(std::string path, entry_role role);
  // Resolves against `base` without adding; rejects (and counts) what leaves the site.
  std::optional<std::string> resolve_or_reject(std::string_view base, std::string_view reference);
  void reject(std::string_view reference, std::string_view reason);

  bool full() const { return out_.truncated; }
  const std::string& source_path() const { return options_.source_path; }
  const std::string& site_name() const { return options_.site_name; }
  void fail(std::string error) { out_.error = std::move(error); }
  bool failed() const { return !out_.error.empty(); }
  listing take() { return std::move(out_); }

 private:
  const parse_options& options_;
  std::string self_;  // the listing's own path, resolved like its references
  listing out_;
  std::size_t bytes_ = 0;  // of the paths kept
  // Hash of every path kept → its place (index * 2 + role), so duplicates are found without a
  // second copy of the strings: memory stays at max_entries strings.
  std::unordered_multimap<std::size_t, std::size_t> seen_;
};

}  // namespace storecache::prefetch
