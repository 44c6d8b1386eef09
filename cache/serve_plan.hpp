// What a request gets from the cache, decided without sockets: the site's policy for its path,
// the stored response that may answer it (the plain entry or the matching Vary variant), the
// range to send from it, and the response fields a client sees. Shared by hits and fills.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "cache/http_fields.hpp"
#include "cache/policy.hpp"
#include "cache/store.hpp"
#include "config/config.hpp"

namespace storecache::cache {

// The site's caching rules as they apply to this path (its first matching [[site.cache.rule]]).
site_policy policy_for(const config::site& site, std::string_view path);

// The stored response that may answer this request: the plain entry, or the variant whose
// Vary'd request fields match.
std::optional<lookup_result> find_stored(store& st, const std::string& primary,
                                         const header_list& request_headers);

// The same choice from the metadata alone (store::peek): for background checks, which must
// not open bodies nor count as an access.
std::optional<object_meta> find_stored_meta(const store& st, const std::string& primary,
                                            const header_list& request_headers);

// Response fields for a client: the stored ones, our Via, Age and Cache-Status.
header_list client_headers(const header_list& stored, std::optional<std::chrono::seconds> age,
                           const std::string& cache_status);

// The span of a body to send for the request's Range (RFC 9110 §14), or 416.
struct range_plan {
  unsigned status = 200;
  std::uint64_t first = 0;
  std::optional<std::uint64_t> end;  // one past the last byte; nullopt: to the end
  std::string content_range;
};
range_plan plan_range(const header_list& request_headers, const header_list& stored,
                      unsigned status, std::optional<std::uint64_t> length);

// Where the request's single Range starts (0 without one or with several; the largest value
// for a suffix range, which starts at the end).
std::uint64_t range_start(const header_list& request_headers);

}  // namespace storecache::cache
