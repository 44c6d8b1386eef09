// The status page on the admin listener's "/": one self-contained HTML document (inline CSS
// and SVG, no script, font or file from anywhere else: the store may be offline) for store IT
// and the training team. It refreshes itself (meta refresh) every refresh_seconds.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "usage/history.hpp"

namespace storecache::usage {

// One prefetch source as the page shows it (the daemon copies it from prefetch::readiness).
// A prefetch source's row: its readiness as `storecache report` gets it, and what only the
// running daemon knows.
struct prefetch_row {
  prefetch_state state{};
  bool listing_ok = true;
  bool running = false;  // (its next_run is then 0)
};

struct status_inputs {
  const usage_summary& day;   // the last 24 hours
  const usage_summary& week;  // the last 7 days (168 hours)
  std::uint64_t cache_bytes = 0;
  std::uint64_t cache_max_bytes = 0;
  std::uint64_t cache_objects = 0;
  std::int64_t now_unix = 0;
  std::int64_t utc_offset_seconds = 0;  // local time, for hour labels
  std::string_view host_name;
  std::string_view version;
  int refresh_seconds = 30;
  std::vector<prefetch_row> prefetch{};  // [[site.prefetch]] sources; no section when none
};

std::string render_status_page(const status_inputs& in);

// &, <, >, " and ' as entities; bytes that are not UTF-8 text as U+FFFD.
std::string html_escape(std::string_view s);

}  // namespace storecache::usage
