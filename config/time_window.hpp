// Daily time windows in the server's local time ("22:00-06:00"): when prefetch may run, and
// when a WAN rate applies. A pure value type with its parser; local_minute() is the one place
// that turns a clock reading into the minute the windows are matched against.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace storecache::config {

inline constexpr int minutes_per_day = 24 * 60;

// [start, end) in minutes since local midnight. end < start crosses midnight
// ("22:00-06:00" is 1320..360); start == end is refused by the parser (say what is meant:
// no window at all means always).
struct time_window {
  std::uint16_t start = 0;
  std::uint16_t end = 0;
  bool contains(int minute) const;
  bool operator==(const time_window&) const = default;
};

// "HH:MM-HH:MM" (24-hour clock, "24:00" allowed as an end); nullopt with `why` set otherwise.
std::optional<time_window> parse_time_window(std::string_view text, std::string& why);
std::string to_string(const time_window& w);  // "22:00-06:00"

// The local minute of the day (0..1439) at t, by the server's time zone.
int local_minute(std::chrono::system_clock::time_point t);

// Whether minute (0..1439) is inside any window; no windows: always.
bool inside(std::span<const time_window> windows, int minute);
// Minutes from minute until a window opens: 0 when inside one; no windows: 0.
int minutes_until_open(std::span<const time_window> windows, int minute);
// Minutes from minute until every window containing it has closed (windows that touch or
// overlap count as one); nullopt when outside, or always open (no windows, or a day covered).
std::optional<int> minutes_until_close(std::span<const time_window> windows, int minute);

}  // namespace storecache::config
