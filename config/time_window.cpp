#include "config/time_window.hpp"

#include <cstdio>
#include <ctime>

namespace storecache::config {

int local_minute(std::chrono::system_clock::time_point t) {
  const std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm lt{};
  localtime_r(&tt, &lt);
  return lt.tm_hour * 60 + lt.tm_min;
}
namespace {

// "HH:MM" -> minutes; hour 0..24, and 24 only as "24:00".
std::optional<int> clock_time(std::string_view s) {
  if (s.size() != 5 || s[2] != ':') return std::nullopt;
  for (std::size_t i : {0u, 1u, 3u, 4u})
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
  int h = (s[0] - '0') * 10 + (s[1] - '0');
  int m = (s[3] - '0') * 10 + (s[4] - '0');
  if (h > 24 || m > 59 || (h == 24 && m != 0)) return std::nullopt;
  return h * 60 + m;
}

}  // namespace

bool time_window::contains(int minute) const {
  if (start < end) return minute >= start && minute < end;
  return minute >= start || minute < end;  // crosses midnight
}

std::optional<time_window> parse_time_window(std::string_view text, std::string& why) {
  auto dash = text.find('-');
  std::optional<int> from, to;
  if (dash != std::string_view::npos) {
    from = clock_time(text.substr(0, dash));
    to = clock_time(text.substr(dash + 1));
  }
  if (!from || !to) {
    why = "must be \"HH:MM-HH:MM\" on a 24-hour clock, e.g. \"22:00-06:00\"";
    return std::nullopt;
  }
  if (*from == minutes_per_day) {
    why = "a window cannot start at 24:00; write 00:00";
    return std::nullopt;
  }
  int end = *to % minutes_per_day;
  if (*from == end) {
    why = "starts where it ends; leave windows out to mean always";
    return std::nullopt;
  }
  return time_window{static_cast<std::uint16_t>(*from), static_cast<std::uint16_t>(end)};
}

std::string to_string(const time_window& w) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%02d:%02d-%02d:%02d", w.start / 60, w.start % 60, w.end / 60,
                w.end % 60);
  return buf;
}

bool inside(std::span<const time_window> windows, int minute) {
  if (windows.empty()) return true;
  for (const auto& w : windows)
    if (w.contains(minute)) return true;
  return false;
}

int minutes_until_open(std::span<const time_window> windows, int minute) {
  // At most a day ahead: step minute by minute (1440 steps, a few windows each).
  for (int d = 0; d < minutes_per_day; ++d)
    if (inside(windows, (minute + d) % minutes_per_day)) return d;
  return 0;  // unreachable: a parsed window is never empty
}

std::optional<int> minutes_until_close(std::span<const time_window> windows, int minute) {
  if (windows.empty() || !inside(windows, minute)) return std::nullopt;
  for (int d = 1; d <= minutes_per_day; ++d)
    if (!inside(windows, (minute + d) % minutes_per_day)) return d;
  return std::nullopt;  // the windows cover the whole day
}

}  // namespace storecache::config
