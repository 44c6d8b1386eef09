// A stored record read back from the index (cache/store_meta.hpp): any bytes as an LMDB
// value. A record that decodes re-encodes to the same bytes (one spelling per record), and
// what the read path then does with it — Vary match, reuse decision, Age, validators, a range
// against its body size, the Cache-Status — must cope with any decoded value, as a damaged
// or hostile index is read by the same code.
#include <chrono>
#include <cstdint>

#include "cache/cache_key.hpp"
#include "cache/cache_status.hpp"
#include "cache/policy.hpp"
#include "cache/range.hpp"
#include "cache/store_meta.hpp"
#include "fuzz/fuzz_check.hpp"

using namespace storecache::cache;
using std::chrono::seconds;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes = storecache::fuzz::as_text(data, size);
  const std::uint64_t tick = encoded_access_tick(bytes);
  const std::string retick = with_access_tick(bytes, tick + 1);
  FUZZ_CHECK(retick.size() == bytes.size());
  if (bytes.size() >= 8) FUZZ_CHECK(encoded_access_tick(retick) == tick + 1);

  const auto m = decode_meta(bytes);
  if (!m) return 0;
  FUZZ_CHECK(m->access_tick == tick);
  FUZZ_CHECK(encode_meta(*m) == bytes);

  const auto& head = m->head;
  const header_list request = {{"accept-encoding", "gzip"},
                               {"if-none-match", "\"v1\""},
                               {"if-modified-since", "Sun, 06 Nov 1994 08:49:37 GMT"}};
  variant_matches(head.headers, m->variant_key, request);
  const response_times times{head.request_time, head.response_time};
  const clock_time now{seconds(1'800'000'000)};
  site_policy site;
  site.stale_if_origin_down = seconds(3600);
  const auto d =
      decide_reuse(static_cast<int>(head.status), head.headers, times, request, now, site);
  FUZZ_CHECK(d.age.count() >= 0);
  current_age(head.headers, times, now);
  validation_headers(head.headers);
  client_not_modified(request, head.headers);
  const auto r = evaluate_range("bytes=0-99,-10", m->body_size);
  for (const auto& span : r.spans)
    FUZZ_CHECK(span.last < m->body_size);
  if_range_matches("\"v1\"", head.headers);
  cache_status cs;
  cs.hit = d.action == reuse_action::fresh;
  cs.ttl = d.ttl;
  cs.key = m->primary_key;
  format_cache_status(cs);
  return 0;
}
