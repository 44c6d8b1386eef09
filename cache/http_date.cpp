#include "cache/http_date.hpp"

#include <algorithm>
#include <array>
#include <cstdio>

#include "cache/cache_control.hpp"

namespace storecache::cache {

namespace {

constexpr bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

constexpr std::array<std::string_view, 12> month_names = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
constexpr std::array<std::string_view, 7> day_names = {"Sun", "Mon", "Tue", "Wed",
                                                       "Thu", "Fri", "Sat"};

// A tiny cursor over the date text; every read checks bounds.
struct cursor {
  std::string_view s;
  bool literal(std::string_view lit) {
    if (s.substr(0, lit.size()) != lit) return false;
    s.remove_prefix(lit.size());
    return true;
  }
  std::optional<int> digits(std::size_t n) {
    if (s.size() < n) return std::nullopt;
    int v = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (!is_digit(s[i])) return std::nullopt;
      v = v * 10 + (s[i] - '0');
    }
    s.remove_prefix(n);
    return v;
  }
  std::optional<unsigned> month() {
    for (unsigned m = 0; m < month_names.size(); ++m)
      if (literal(month_names[m])) return m + 1;
    return std::nullopt;
  }
  // "HH:MM:SS"
  std::optional<std::chrono::seconds> time_of_day() {
    auto h = digits(2);
    if (!h || !literal(":")) return std::nullopt;
    auto m = digits(2);
    if (!m || !literal(":")) return std::nullopt;
    auto sec = digits(2);
    if (!sec || *h > 23 || *m > 59 || *sec > 60) return std::nullopt;
    return std::chrono::seconds(*h * 3600 + *m * 60 + *sec);
  }
};

// clock_time counts nanoseconds in 64 bits (years 1678 to 2262), and a date's year has four
// digits: "Expires: Fri, 31 Dec 9999 23:59:59 GMT" is common. A date outside 1900..2100 is
// taken as that bound, as far in the past or the future as any use here needs, with room left
// to add a freshness lifetime (at most 2^31 s, 68 years) without overflow.
clock_time clamped_time(std::chrono::seconds since_epoch) {
  constexpr std::chrono::seconds earliest =
      std::chrono::sys_days(std::chrono::year(1900) / std::chrono::January / 1).time_since_epoch();
  constexpr std::chrono::seconds latest =
      std::chrono::sys_days(std::chrono::year(2100) / std::chrono::January / 1).time_since_epoch();
  return clock_time(std::clamp(since_epoch, earliest, latest));
}

std::optional<clock_time> make_time(int year, unsigned month, int day, std::chrono::seconds tod) {
  std::chrono::year_month_day ymd{std::chrono::year(year), std::chrono::month(month),
                                  std::chrono::day(static_cast<unsigned>(day))};
  if (!ymd.ok()) return std::nullopt;
  return clamped_time(std::chrono::sys_days(ymd).time_since_epoch() + tod);
}

}  // namespace

std::optional<clock_time> parse_http_date(std::string_view text) {
  text = trim_ows(text);
  auto comma = text.find(',');
  if (comma == 3) {  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
    cursor c{text.substr(4)};
    if (!c.literal(" ")) return std::nullopt;
    auto day = c.digits(2);
    if (!day || !c.literal(" ")) return std::nullopt;
    auto mon = c.month();
    if (!mon || !c.literal(" ")) return std::nullopt;
    auto year = c.digits(4);
    if (!year || !c.literal(" ")) return std::nullopt;
    auto tod = c.time_of_day();
    if (!tod || !c.literal(" GMT") || !c.s.empty()) return std::nullopt;
    return make_time(*year, *mon, *day, *tod);
  }
  if (comma != std::string_view::npos) {  // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
    cursor c{text.substr(comma + 1)};
    if (!c.literal(" ")) return std::nullopt;
    auto day = c.digits(2);
    if (!day || !c.literal("-")) return std::nullopt;
    auto mon = c.month();
    if (!mon || !c.literal("-")) return std::nullopt;
    auto yy = c.digits(2);
    if (!yy || !c.literal(" ")) return std::nullopt;
    auto tod = c.time_of_day();
    if (!tod || !c.literal(" GMT") || !c.s.empty()) return std::nullopt;
    return make_time(*yy < 70 ? 2000 + *yy : 1900 + *yy, *mon, *day, *tod);
  }
  // asctime: "Sun Nov  6 08:49:37 1994" (day is two digits or space + digit)
  cursor c{text};
  if (c.s.size() < 4 || c.s[3] != ' ') return std::nullopt;
  c.s.remove_prefix(4);
  auto mon = c.month();
  if (!mon || !c.literal(" ")) return std::nullopt;
  auto day = c.literal(" ") ? c.digits(1) : c.digits(2);  // "Nov  6" or "Nov 16"
  if (!day || !c.literal(" ")) return std::nullopt;
  auto tod = c.time_of_day();
  if (!tod || !c.literal(" ")) return std::nullopt;
  auto year = c.digits(4);
  if (!year || !c.s.empty()) return std::nullopt;
  return make_time(*year, *mon, *day, *tod);
}

std::string format_http_date(clock_time t) {
  auto secs = std::chrono::floor<std::chrono::seconds>(t);
  auto days = std::chrono::floor<std::chrono::days>(secs);
  std::chrono::year_month_day ymd{days};
  std::chrono::weekday wd{days};
  std::chrono::hh_mm_ss<std::chrono::seconds> hms{secs - days};
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s, %02u %s %04d %02d:%02d:%02d GMT",
                day_names[wd.c_encoding()].data(), static_cast<unsigned>(ymd.day()),
                month_names[static_cast<unsigned>(ymd.month()) - 1].data(),
                static_cast<int>(ymd.year()), static_cast<int>(hms.hours().count()),
                static_cast<int>(hms.minutes().count()), static_cast<int>(hms.seconds().count()));
  return buf;
}

}  // namespace storecache::cache
