#include "cache/range.hpp"

#include "cache/cache_control.hpp"
#include "cache/http_date.hpp"

namespace storecache::cache {

namespace {

// 1*DIGIT that fits in 64 bits; anything else is nullopt (overflow included).
std::optional<std::uint64_t> parse_u64(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    auto digit = static_cast<std::uint64_t>(c - '0');
    if (v > (UINT64_MAX - digit) / 10) return std::nullopt;
    v = v * 10 + digit;
  }
  return v;
}

std::optional<range_spec> parse_spec(std::string_view s) {
  auto dash = s.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  if (dash == 0) {  // suffix-range "-n"
    auto n = parse_u64(s.substr(1));
    if (!n) return std::nullopt;
    return range_spec{std::nullopt, n};
  }
  auto first = parse_u64(s.substr(0, dash));
  if (!first) return std::nullopt;
  auto tail = s.substr(dash + 1);
  if (tail.empty()) return range_spec{first, std::nullopt};
  auto last = parse_u64(tail);
  if (!last || *last < *first) return std::nullopt;  // §14.1.1: invalid, not unsatisfiable
  return range_spec{first, last};
}

}  // namespace

std::optional<std::vector<range_spec>> parse_range(std::string_view value) {
  value = trim_ows(value);
  auto eq = value.find('=');
  if (eq == std::string_view::npos || !iequals(value.substr(0, eq), "bytes")) return std::nullopt;
  std::vector<range_spec> specs;
  auto set = value.substr(eq + 1);
  while (true) {
    auto comma = set.find(',');
    auto element = trim_ows(set.substr(0, comma));
    // §5.6.1: recipients accept empty list elements ("0-1,,2-3").
    if (!element.empty()) {
      auto spec = parse_spec(element);
      if (!spec || specs.size() == max_range_specs) return std::nullopt;
      specs.push_back(*spec);
    }
    if (comma == std::string_view::npos) break;
    set.remove_prefix(comma + 1);
  }
  if (specs.empty()) return std::nullopt;
  return specs;
}

range_resolution resolve_ranges(const std::vector<range_spec>& specs, std::uint64_t length) {
  range_resolution r;
  if (length == 0) {
    for (const auto& s : specs)
      if (!s.first && s.last && *s.last > 0) return r;  // whole (empty) 200
    r.outcome = range_outcome::unsatisfiable;
    return r;
  }
  for (const auto& s : specs) {
    if (s.first) {
      if (*s.first >= length) continue;
      auto last = s.last && *s.last < length ? *s.last : length - 1;
      r.spans.push_back({*s.first, last});
    } else {
      const auto n = s.last.value_or(0);
      if (n == 0) continue;  // "-0" selects nothing
      r.spans.push_back({n >= length ? 0 : length - n, length - 1});
    }
  }
  r.outcome = r.spans.empty() ? range_outcome::unsatisfiable : range_outcome::partial;
  return r;
}

range_resolution evaluate_range(std::optional<std::string_view> range_value, std::uint64_t length) {
  if (!range_value) return {};
  auto specs = parse_range(*range_value);
  if (!specs) return {};
  return resolve_ranges(*specs, length);
}

std::string content_range(byte_span span, std::uint64_t length) {
  return "bytes " + std::to_string(span.first) + "-" + std::to_string(span.last) + "/" +
         std::to_string(length);
}

std::string unsatisfied_content_range(std::uint64_t length) {
  return "bytes */" + std::to_string(length);
}

bool if_range_matches(std::string_view if_range_value, const header_list& stored_response_headers) {
  auto value = trim_ows(if_range_value);
  if (value.starts_with('"') || value.starts_with("W/")) {
    auto tag = parse_entity_tag(value);
    auto stored = find_header(stored_response_headers, "etag");
    auto current = stored ? parse_entity_tag(*stored) : std::nullopt;
    return tag && current && strong_match(*tag, *current);
  }
  // Early returns, one optional at a time: g++ 12 -O2 misreads the combined test as a read of
  // an uninitialised optional (-Wmaybe-uninitialized).
  auto lm_field = find_header(stored_response_headers, "last-modified");
  auto date_field = find_header(stored_response_headers, "date");
  if (!lm_field || !date_field) return false;
  auto date = parse_http_date(value);
  auto modified = parse_http_date(*lm_field);
  auto served = parse_http_date(*date_field);
  if (!date.has_value() || !modified.has_value() || !served.has_value()) return false;
  if (date.value() != modified.value()) return false;
  // §8.8.2.2: a Last-Modified less than a second before Date may hide a second change.
  return served.value() - modified.value() >= std::chrono::seconds(1);
}

}  // namespace storecache::cache
