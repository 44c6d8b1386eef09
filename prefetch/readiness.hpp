// How ready each prefetch source is: what its listing named, how much of it the cache holds
// fresh, what failed and why, when it ran and when it runs next. The runner writes it; the
// admin listener's /metrics reads it (render_metrics), from another thread, under the
// runner's lock: a value type, copied out.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace storecache::prefetch {

using clock_time = std::chrono::system_clock::time_point;

// Why a source's listing could not be read this run (one log line per source and cause).
enum class listing_problem {
  none,
  unreachable,  // no response: connect, TLS, timeout
  status,       // answered something other than 200 or 304
  too_large,    // over [prefetch] max_listing_size
  malformed,    // not parseable as its kind
};
std::string_view to_string(listing_problem p);

struct readiness {
  std::string site;
  std::string source;  // [[site.prefetch]] name
  std::string path;
  std::string kind;  // as read: "url_list", "ims_manifest", "hls", "cmi5" ("" before a read)

  // The last complete (or current) run's view of the objects listed.
  std::uint64_t listed = 0;    // distinct objects the listings named (after caps)
  std::uint64_t fresh = 0;     // of those, stored and fresh
  std::uint64_t failed = 0;    // the upstream refused or failed them, or they are not storable
  std::uint64_t bytes = 0;     // body bytes of the fresh ones
  std::uint64_t rejected = 0;  // references that left the site or were not valid
  bool truncated = false;      // [prefetch] max_entries or max_depth cut the listing
  listing_problem listing = listing_problem::none;
  std::string last_error;  // the newest failure, object or listing: "GET /a.mp4: 404"

  // pin = true: what eviction keeps (within [prefetch] max_pinned), and what did not fit under
  // the ceiling (cached, but evictable). Stored copies count, fresh or not.
  bool pin = false;
  std::uint64_t pinned_objects = 0;
  std::uint64_t pinned_bytes = 0;
  std::uint64_t unpinned_objects = 0;
  std::uint64_t unpinned_bytes = 0;

  bool running = false;
  std::optional<clock_time> last_start;
  std::optional<clock_time> last_end;
  std::optional<clock_time> next_run;  // when it will run again (inside a window)

  // Counters since start: upstream work done for this source.
  std::uint64_t fetched_objects = 0;       // fills that stored an object (new or changed)
  std::uint64_t revalidated = 0;           // stored objects the upstream confirmed (304)
  std::uint64_t fetched_bytes = 0;         // body bytes read from the upstream (listings included)
  std::uint64_t listing_not_modified = 0;  // listing reads answered 304
  std::uint64_t runs = 0;

  std::uint64_t missing() const { return listed - fresh - failed; }
};

// The storecache_prefetch_* families (Prometheus text), one sample per source, and the pinning
// ceiling ([prefetch] max_pinned).
std::string render_metrics(const std::vector<readiness>& sources, std::uint64_t pin_ceiling);

}  // namespace storecache::prefetch
