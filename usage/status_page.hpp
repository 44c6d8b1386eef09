// The status page on the admin listener's "/": one self-contained HTML document (inline CSS
// and SVG, no script, font or file from anywhere else: the store may be offline) for store IT
// and the training team. It refreshes itself (meta refresh) every refresh_seconds.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "usage/history.hpp"

namespace storecache::usage {

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
};

std::string render_status_page(const status_inputs& in);

// &, <, >, " and ' as entities; bytes that are not UTF-8 text as U+FFFD.
std::string html_escape(std::string_view s);

}  // namespace storecache::usage
