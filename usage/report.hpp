// `storecache report`: a period of the usage history as text for people or JSON for scripts.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "usage/history.hpp"

namespace storecache::usage {

struct report_options {
  std::uint32_t hours = 24;  // the period: the last `hours` hours, the current one included
  bool json = false;
  // Local time offset for showing hours (seconds east of UTC); the JSON carries UTC too.
  std::int64_t utc_offset_seconds = 0;
};

// "24h", "7d", "30d", "36h", "2d"... -> hours (1 .. history_retention_hours); nullopt if bad.
std::optional<std::uint32_t> parse_period(std::string_view text);

// The report for a summary. Text: headline figures (requests, hit ratio, byte hit ratio, bytes
// served, upstream bytes split into device-driven and prefetch, WAN bytes saved, access
// denials, peak upstream hour), then per content class, the devices, TLS versions, protocols,
// sites, the denials by reason (all, and per site; when there were any), the top assets by
// upstream bytes, and the stored prefetch readiness (s.prefetch; when any source is stored).
// JSON: the same figures with exact integer byte counts (schema documented in the README).
std::string render_report(const usage_summary& s, const report_options& opts);

// History keys for people: "ios/safari" -> "iOS/iPadOS, Safari", "android/other" ->
// "Android, other browser or player"; "ios 17" -> "iOS/iPadOS 17", "ios 0" -> "iOS/iPadOS
// (version unknown)". A key of no known family is shown terminal_safe.
std::string device_display_name(std::string_view key);
std::string os_version_display_name(std::string_view key);

// The machine's local time offset east of UTC at that moment, in seconds (for hour labels).
std::int64_t local_utc_offset(std::int64_t unix_seconds);

// "1.5 GiB", "312 KiB", "17 B": for people.
std::string human_bytes(std::uint64_t n);

// The JSON form alone (render_report with opts.json). Schema: report_json.cpp.
std::string render_report_json(const usage_summary& s, const report_options& opts);

// "2024-10-05T14:00:00Z".
std::string iso_utc(std::int64_t unix_seconds);

// s as a quoted JSON string: escapes, and U+FFFD for each byte of invalid UTF-8.
std::string json_string(std::string_view s);
// The two-character escape of a double quote, backslash, newline, CR or tab, or "" for any other
// byte: what JSON strings and the access log's quoted values share.
std::string_view backslash_escape(char c);
// s for a terminal: valid UTF-8 as is; control bytes (C0, DEL, C1) and invalid UTF-8 as \xNN.
std::string terminal_safe(std::string_view s);

}  // namespace storecache::usage
