// HTTP-date (RFC 9110 §5.6.7): the one time format of Date, Expires, Last-Modified,
// If-Modified-Since and If-Range. Pure functions; the clock is always the caller's.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace storecache::cache {

using clock_time = std::chrono::system_clock::time_point;

// Accepts IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") and, as recipients must, the obsolete
// RFC 850 ("Sunday, 06-Nov-94 08:49:37 GMT") and asctime ("Sun Nov  6 08:49:37 1994") forms,
// exactly as the grammar writes them: digit counts, single separators, GMT. Anything else is
// nullopt, which for Expires means "already expired" (RFC 9111 §5.3). Names match
// case-insensitively (RFC 9111 §4.2); the day name is not cross-checked with the date; second
// 60 (leap second) is allowed. RFC 850 two-digit years: 70..99 -> 19xx, 00..69 -> 20xx.
// Surrounding whitespace (the field's OWS) is ignored. A date before 1900 or after 2100 is
// taken as 1900-01-01 or 2100-01-01 (clock_time's range is 1678..2262).
std::optional<clock_time> parse_http_date(std::string_view text);

// IMF-fixdate of `t`, truncated to whole seconds.
std::string format_http_date(clock_time t);

}  // namespace storecache::cache
