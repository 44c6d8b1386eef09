// Cache-Control (request and response), CDN-Cache-Control (RFC 9213, a Structured Fields
// dictionary), the list and entity-tag syntax under them, and the policy decisions that read
// them (cache/cache_control.hpp, cache/policy.hpp): storable, freshness, reuse, the fields
// stored, 304 handling. Input: "<response Cache-Control>\n<CDN-Cache-Control>\n<request
// Cache-Control>\n<ETag / If-None-Match>".
#include <chrono>
#include <cstdint>

#include "cache/cache_control.hpp"
#include "cache/cache_status.hpp"
#include "cache/policy.hpp"
#include "fuzz/fuzz_check.hpp"

using namespace storecache::cache;
using std::chrono::seconds;

namespace {

void check_seconds(const std::optional<seconds>& s) {
  if (s) FUZZ_CHECK(s->count() >= 0 && *s <= delta_seconds_max);
}

void check(const response_directives& d) {
  check_seconds(d.max_age);
  check_seconds(d.s_maxage);
  check_seconds(d.stale_while_revalidate);
  check_seconds(d.stale_if_error);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const storecache::fuzz::fields<4> in(storecache::fuzz::as_text(data, size));
  const std::string_view cc = in.part[0], cdn = in.part[1], req_cc = in.part[2], tag = in.part[3];

  for (const auto element : split_list(cc)) {
    FUZZ_CHECK(!element.empty());
    FUZZ_CHECK(trim_ows(element) == element);
  }
  check_seconds(parse_delta_seconds(cc));
  check(parse_response_cache_control(cc));
  if (const auto targeted = parse_cdn_cache_control(cdn)) check(*targeted);
  const auto r = parse_request_cache_control(req_cc);
  check_seconds(r.max_age);
  check_seconds(r.min_fresh);
  check_seconds(r.max_stale_limit);
  check_seconds(r.stale_if_error);
  if (const auto t = parse_entity_tag(tag)) {
    FUZZ_CHECK(t->opaque.size() >= 2 && t->opaque.front() == '"' && t->opaque.back() == '"');
    FUZZ_CHECK(weak_match(*t, *t));
    FUZZ_CHECK(strong_match(*t, *t) == !t->weak);
  }

  // The same values as the policy reads them from a response and a request.
  const header_list response = {{"cache-control", std::string(cc)},
                                {"cdn-cache-control", std::string(cdn)},
                                {"etag", std::string(tag)},
                                {"date", "Sun, 06 Nov 1994 08:49:37 GMT"},
                                {"last-modified", "Sat, 05 Nov 1994 08:49:37 GMT"},
                                {"connection", std::string(cc)},
                                {"vary", std::string(req_cc)}};
  const header_list request = {{"cache-control", std::string(req_cc)},
                               {"if-none-match", std::string(tag)},
                               {"pragma", std::string(req_cc)}};
  const clock_time received{seconds(784'111'777)};
  const response_times times{received - seconds(1), received};
  for (const bool targeted : {true, false}) {
    site_policy site;
    site.use_cdn_cache_control = targeted;
    const auto eff = response_cache_control(response, targeted);
    check(eff.directives);
    for (const int status : {200, 404, 599}) {
      check_storable("GET", request, status, response, site);
      const auto f = freshness_lifetime(status, response, times, site);
      FUZZ_CHECK(f.lifetime.count() >= 0);
      for (const auto later : {seconds(0), seconds(3600), seconds(std::int64_t{1} << 32)}) {
        const auto d = decide_reuse(status, response, times, request, received + later, site);
        FUZZ_CHECK(d.age.count() >= 0);
      }
    }
    const header_list kept = headers_to_store(response, targeted, !targeted);
    FUZZ_CHECK(kept.size() <= response.size());
    for (const auto& h : kept)
      FUZZ_CHECK(h.name != "connection");
    header_list refreshed = kept;
    apply_not_modified(refreshed, response, targeted);
    not_modified_matches(kept, response);
    client_not_modified(request, kept);
    validation_headers(kept);
  }
  cache_status cs;
  cs.detail = std::string(cc);
  cs.key = std::string(cdn);
  const std::string formatted = format_cache_status(cs);
  for (const char c : formatted)
    FUZZ_CHECK(c >= 0x20 && c < 0x7f);  // a field value we send must be printable ASCII
  return 0;
}
