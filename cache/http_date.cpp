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

constexpr char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

constexpr std::array<std::string_view, 12> month_names = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
constexpr std::array<std::string_view, 7> day_names = {"Sun", "Mon", "Tue", "Wed",
                                                       "Thu", "Fri", "Sat"};
constexpr std::array<std::string_view, 7> long_day_names = {
    "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"};

// A cursor over the date text that reads exactly what the RFC 9110 §5.6.7 grammar allows:
// every read checks bounds, digits come in the counts the grammar gives, and separators are
// single characters (no run of spaces, no missing one).
struct cursor {
  std::string_view s;

  bool literal(char c) {
    if (s.empty() || s.front() != c) return false;
    s.remove_prefix(1);
    return true;
  }
  // Names (day, month, "GMT") are matched case-insensitively: RFC 9111 §4.2 asks a cache
  // recipient to, though the grammar spells them case-sensitively.
  bool name(std::string_view lit) {
    if (s.size() < lit.size()) return false;
    for (std::size_t i = 0; i < lit.size(); ++i)
      if (lower(s[i]) != lower(lit[i])) return false;
    s.remove_prefix(lit.size());
    return true;
  }
  template <std::size_t N>
  std::optional<unsigned> one_of(const std::array<std::string_view, N>& names) {
    for (unsigned i = 0; i < N; ++i)
      if (name(names[i])) return i;
    return std::nullopt;
  }
  // Exactly n digits.
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
    auto m = one_of(month_names);
    return m ? std::optional<unsigned>(*m + 1) : std::nullopt;
  }
  // time-of-day = hour ":" minute ":" second, each 2DIGIT; 00:00:00 - 23:59:60. A leap
  // second cannot be told apart in system time: 23:59:60 is the next day's 00:00:00.
  std::optional<std::chrono::seconds> time_of_day() {
    auto h = digits(2);
    if (!h || !literal(':')) return std::nullopt;
    auto m = digits(2);
    if (!m || !literal(':')) return std::nullopt;
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

// IMF-fixdate = day-name "," SP day SP month SP year SP time-of-day SP GMT
//               ("Sun, 06 Nov 1994 08:49:37 GMT")
std::optional<clock_time> imf_fixdate(cursor c) {
  if (!c.one_of(day_names) || !c.literal(',') || !c.literal(' ')) return std::nullopt;
  auto day = c.digits(2);
  if (!day || !c.literal(' ')) return std::nullopt;
  auto mon = c.month();
  if (!mon || !c.literal(' ')) return std::nullopt;
  auto year = c.digits(4);
  if (!year || !c.literal(' ')) return std::nullopt;
  auto tod = c.time_of_day();
  if (!tod || !c.literal(' ') || !c.name("GMT") || !c.s.empty()) return std::nullopt;
  return make_time(*year, *mon, *day, *tod);
}

// rfc850-date = day-name-l "," SP day "-" month "-" 2DIGIT SP time-of-day SP GMT
//               ("Sunday, 06-Nov-94 08:49:37 GMT"). Two-digit years: 70..99 -> 19xx.
std::optional<clock_time> rfc850_date(cursor c) {
  if (!c.one_of(long_day_names) || !c.literal(',') || !c.literal(' ')) return std::nullopt;
  auto day = c.digits(2);
  if (!day || !c.literal('-')) return std::nullopt;
  auto mon = c.month();
  if (!mon || !c.literal('-')) return std::nullopt;
  auto yy = c.digits(2);
  if (!yy || !c.literal(' ')) return std::nullopt;
  auto tod = c.time_of_day();
  if (!tod || !c.literal(' ') || !c.name("GMT") || !c.s.empty()) return std::nullopt;
  return make_time(*yy < 70 ? 2000 + *yy : 1900 + *yy, *mon, *day, *tod);
}

// asctime-date = day-name SP month SP ( 2DIGIT / ( SP DIGIT ) ) SP time-of-day SP year
//                ("Sun Nov  6 08:49:37 1994")
std::optional<clock_time> asctime_date(cursor c) {
  if (!c.one_of(day_names) || !c.literal(' ')) return std::nullopt;
  auto mon = c.month();
  if (!mon || !c.literal(' ')) return std::nullopt;
  auto day = c.literal(' ') ? c.digits(1) : c.digits(2);
  if (!day || !c.literal(' ')) return std::nullopt;
  auto tod = c.time_of_day();
  if (!tod || !c.literal(' ')) return std::nullopt;
  auto year = c.digits(4);
  if (!year || !c.s.empty()) return std::nullopt;
  return make_time(*year, *mon, *day, *tod);
}

}  // namespace

std::optional<clock_time> parse_http_date(std::string_view text) {
  cursor c{trim_ows(text)};
  if (c.s.size() > 3 && c.s[3] == ',') return imf_fixdate(c);
  if (c.s.size() > 3 && c.s[3] == ' ') return asctime_date(c);
  return rfc850_date(c);
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
