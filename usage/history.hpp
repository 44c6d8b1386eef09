// Usage history: hourly buckets in the cache's LMDB environment (database "usage"), kept for
// history_retention_hours (35 days) and read by the status page and `storecache report`.
//
// Layout: one LMDB database, key = hour (uint32 big-endian, hours since the Unix epoch, UTC)
// + dimension (1 byte) + name (bytes, <= 400), value = usage_counts (little-endian uint64
// fields; format 1 without denials, format 2 with them, format 3 with prefetch bytes too: see
// history.cpp). Big-endian hours
// keep a period one contiguous key range; pruning deletes from the front. Names come from
// bounded sets (content class, device, TLS, protocol, site) except assets (site + path), which
// are capped per hour: beyond max_assets_per_hour distinct assets in one hour, further ones are
// added to the asset "(other assets)".
//
// A second database, "usage_prefetch", holds the latest prefetch readiness the daemon reported
// (prefetch_state, one record per source, replaced as a whole), so that `storecache report`,
// which cannot ask the daemon, shows it too.
//
// The daemon adds deltas (one write transaction per flush); readers (report, status page) use
// read transactions and never block it. A reader may open the environment read-only while the
// daemon runs (history::open_read_only).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "access/denial.hpp"
#include "cache/lmdb.hpp"
#include "usage/content_class.hpp"
#include "usage/device.hpp"

namespace storecache::usage {

using error_code = cache::lmdb::error_code;
template <typename T>
using result = cache::lmdb::result<T>;

inline constexpr std::uint32_t history_retention_hours = 35 * 24;
inline constexpr std::size_t max_assets_per_hour = 1000;
inline constexpr std::string_view other_assets = "(other assets)";
// Names longer than this are cut (LMDB keys are at most 511 bytes).
inline constexpr std::size_t max_name_bytes = 400;
// name cut to max_name_bytes, never inside a UTF-8 sequence.
std::string_view truncate_name(std::string_view name);

// Counts for one bucket (an hour, and a dimension value within it).
struct usage_counts {
  // Client requests answered for a site (not local answers), and of those the ones answered
  // from the cache (hit, stale, revalidated).
  std::uint64_t requests = 0;
  std::uint64_t hits = 0;
  // Response body bytes sent to clients: from the cache / as they came from upstream.
  std::uint64_t bytes_from_cache = 0;
  std::uint64_t bytes_from_upstream = 0;
  std::uint64_t upstream_bytes = 0;     // body bytes received from origins (WAN), fills included
  std::uint64_t upstream_requests = 0;  // requests sent to origins (errors included)
  // Refusals for access reasons, by access::denial (network, client_cert, signature,
  // upstream). Only the total and site buckets carry them; a refusal before any site was known
  // (at accept, or in a TLS handshake without a site's name) is in the total alone. A refused
  // request is not among `requests`, except an upstream denial: the upstream's own answer is
  // passed through, and that request counts as served too.
  std::array<std::uint64_t, access::denial_count> denied{};
  // Of upstream_bytes and upstream_requests: those fetched by prefetch (objects a listing named,
  // fetched in the background) rather than because a device asked. Only the total, content,
  // asset and site buckets carry them.
  std::uint64_t prefetch_bytes = 0;
  std::uint64_t prefetch_requests = 0;

  std::uint64_t bytes_served() const { return bytes_from_cache + bytes_from_upstream; }
  std::uint64_t denied_total() const;
  // Upstream bytes / requests fetched because a device asked (upstream minus prefetch; never
  // below 0).
  std::uint64_t device_upstream_bytes() const {
    return upstream_bytes > prefetch_bytes ? upstream_bytes - prefetch_bytes : 0;
  }
  std::uint64_t device_upstream_requests() const {
    return upstream_requests > prefetch_requests ? upstream_requests - prefetch_requests : 0;
  }
  usage_counts& operator+=(const usage_counts& o);
  bool operator==(const usage_counts&) const = default;
};

enum class dimension : std::uint8_t {
  total = 0,       // name ""
  content = 1,     // label(content_class)
  device = 2,      // "ios/safari": label(os_family) + "/" + label(browser_family)
  os_version = 3,  // "ios 17", "android 14", "windows 0" (0 = unknown)
  tls = 4,         // label(tls_version)
  protocol = 5,    // "http/1.1", "h2"
  asset = 6,       // "<site><path>", e.g. "learn.example.com/video/intro.mp4" (no query)
  site = 7,        // site name
};

struct bucket_key {
  std::uint32_t hour = 0;
  dimension dim = dimension::total;
  std::string name;
  auto operator<=>(const bucket_key&) const = default;
};

// What a flush adds: counts to add to each bucket.
using usage_delta = std::map<bucket_key, usage_counts>;

// Hours since the epoch for a Unix time.
inline std::uint32_t hour_of(std::int64_t unix_seconds) {
  return static_cast<std::uint32_t>(unix_seconds / 3600);
}

// One prefetch source's readiness as the daemon last reported it (recorder::set_prefetch) and
// the history stored it; the usage side's copy of prefetch::readiness (usage/ does not depend on
// prefetch/). Strings are stored cut to max_prefetch_text_bytes (UTF-8 boundaries kept).
struct prefetch_state {
  std::string site{};         // the site's name
  std::string source{};       // the source's name in the config
  std::string path{};         // the listing's path on the site
  std::string kind{};         // the listing's format ("url_list", "ims_manifest", "hls", ...)
  std::uint64_t listed = 0;   // objects the listing names
  std::uint64_t fresh = 0;    // of those, in the cache and fresh
  std::uint64_t missing = 0;  // not in the cache (or stale), not failed
  std::uint64_t failed = 0;   // the last attempt to fetch failed
  std::uint64_t bytes = 0;    // bytes of the listed objects in the cache
  std::uint64_t pinned_objects = 0;
  std::uint64_t pinned_bytes = 0;
  std::uint64_t unpinned_objects = 0;
  std::uint64_t unpinned_bytes = 0;
  std::string last_error{};       // "" when none
  std::int64_t last_run_end = 0;  // Unix seconds; 0 = never ran
  std::int64_t next_run = 0;      // Unix seconds; 0 = unknown

  // Every listed object is in the cache and fresh (and the listing named at least one).
  bool ready() const { return listed > 0 && fresh == listed; }
  bool operator==(const prefetch_state&) const = default;
};

inline constexpr std::size_t max_prefetch_text_bytes = 1024;
// At most this many sources are stored; more are dropped (the config's bound is far lower).
inline constexpr std::size_t max_prefetch_sources = 4096;

// The stored set: what the daemon last reported, and when it wrote it (Unix seconds; 0 when
// nothing is stored).
struct prefetch_snapshot {
  std::int64_t saved_unix = 0;
  std::vector<prefetch_state> sources{};
  std::size_t ready_count() const;
  bool operator==(const prefetch_snapshot&) const = default;
};

// An aggregated period, as the report and the status page show it.
struct usage_summary {
  std::uint32_t from_hour = 0;  // inclusive
  std::uint32_t to_hour = 0;    // inclusive
  usage_counts total;
  std::vector<usage_counts> hours;  // one per hour from_hour..to_hour, zeros included
  std::array<usage_counts, content_class_count> content{};
  std::map<std::string, usage_counts, std::less<>> devices;      // "ios/safari"
  std::map<std::string, usage_counts, std::less<>> os_versions;  // "ios 17"
  std::map<std::string, usage_counts, std::less<>> tls;          // "TLSv1.3"
  std::map<std::string, usage_counts, std::less<>> protocols;    // "h2"
  std::map<std::string, usage_counts, std::less<>> sites;
  // Assets with the most upstream bytes (ties: more requests first, then name), at most top_n.
  std::vector<std::pair<std::string, usage_counts>> top_assets;
  // The prefetch readiness stored last (not limited to the period: it is the latest state).
  prefetch_snapshot prefetch{};

  // Derived figures; 0 when the denominator is 0.
  double hit_ratio() const;       // hits / requests
  double byte_hit_ratio() const;  // bytes_from_cache / bytes_served
  // Bytes served minus upstream bytes (never below 0): what the WAN did not carry.
  std::uint64_t wan_bytes_saved() const;
  // The hour with the most upstream bytes (nullopt when there were none).
  std::optional<std::uint32_t> peak_upstream_hour() const;
};

class history {
 public:
  // Opens (creating) the "usage" database in the daemon's env. Call at start-up.
  static result<history> open(cache::lmdb::env& env);
  // Opens <cache_dir>/index read-only, without the store's directory lock, for a process that
  // only reads (storecache report) while the daemon may be running. errc::not_found (or ENOENT)
  // when there is no history yet.
  static result<history> open_read_only(const std::filesystem::path& cache_dir);

  history(history&&) noexcept;
  history& operator=(history&&) noexcept;
  ~history();

  // Adds delta to the stored buckets in one write transaction (read-modify-write), applying the
  // per-hour asset cap. Not on a worker thread: it writes.
  error_code add(const usage_delta& delta);
  // add(delta), and in the same write transaction replaces the stored prefetch readiness with
  // *prefetch (none stored after an empty set) when prefetch has a value; saved_unix is stored
  // as given.
  error_code add(const usage_delta& delta, const std::optional<prefetch_snapshot>& prefetch);
  // Deletes buckets of hours < oldest_kept. Returns the number of keys deleted.
  result<std::size_t> prune(std::uint32_t oldest_kept);
  // Aggregates hours [from_hour, to_hour] (one read transaction).
  result<usage_summary> summarize(std::uint32_t from_hour, std::uint32_t to_hour,
                                  std::size_t top_n = 10) const;
  // The last `hours` hours up to the hour of now_unix, that hour included (hours >= 1).
  result<usage_summary> summarize_last(std::uint32_t hours, std::int64_t now_unix,
                                       std::size_t top_n = 10) const {
    const std::uint32_t to = hour_of(now_unix);
    return summarize(to - (hours - 1), to, top_n);
  }
  // The stored prefetch readiness (an empty snapshot when none is).
  result<prefetch_snapshot> prefetch() const;
  // Oldest and newest hour stored (nullopt when empty).
  result<std::optional<std::pair<std::uint32_t, std::uint32_t>>> span() const;

 private:
  struct state;
  explicit history(std::unique_ptr<state> s);
  std::unique_ptr<state> s_;
};

// Key and value codecs (exposed for tests). encode_counts writes format 3 (96 bytes) when
// prefetch is counted, else format 2 (80 bytes) when a denial is counted, else format 1 (48
// bytes); decode_counts reads all three (the older ones with 0 for what they lack).
std::string encode_key(const bucket_key& k);
std::optional<bucket_key> decode_key(std::string_view bytes);
std::string encode_counts(const usage_counts& c);
std::optional<usage_counts> decode_counts(std::string_view bytes);
// The stored prefetch readiness (history.cpp has the layout). Strings longer than
// max_prefetch_text_bytes are cut, sources beyond max_prefetch_sources dropped.
std::string encode_prefetch(const prefetch_snapshot& p);
std::optional<prefetch_snapshot> decode_prefetch(std::string_view bytes);

}  // namespace storecache::usage
