// Range and If-Range (cache/range.hpp): the Range value a device sends, resolved against
// object lengths at the edges, and its Content-Range; If-Range against stored validators.
// Input: "<Range value>\n<If-Range value>".
#include <cstdint>
#include <limits>

#include "cache/http_date.hpp"
#include "cache/range.hpp"
#include "fuzz/fuzz_check.hpp"

using namespace storecache::cache;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const storecache::fuzz::fields<2> in(storecache::fuzz::as_text(data, size));
  const auto specs = parse_range(in.part[0]);
  if (specs) {
    FUZZ_CHECK(!specs->empty() && specs->size() <= max_range_specs);
    for (const auto& s : *specs)
      if (s.first && s.last) FUZZ_CHECK(*s.first <= *s.last);
  }
  constexpr std::uint64_t lengths[] = {
      0, 1, 499, 500, 1000, 1u << 31, std::numeric_limits<std::uint64_t>::max()};
  for (const std::uint64_t length : lengths) {
    const auto r = evaluate_range(in.part[0], length);
    if (!specs) FUZZ_CHECK(r.outcome == range_outcome::whole);
    if (r.outcome != range_outcome::partial) {
      FUZZ_CHECK(r.spans.empty());
      continue;
    }
    FUZZ_CHECK(!r.spans.empty() && r.spans.size() <= max_range_specs);
    for (const auto& span : r.spans) {
      FUZZ_CHECK(span.first <= span.last && span.last < length);
      FUZZ_CHECK(content_range(span, length).starts_with("bytes "));
    }
  }
  FUZZ_CHECK(unsatisfied_content_range(size) == "bytes */" + std::to_string(size));

  const header_list stored = {{"etag", "\"v1\""},
                              {"last-modified", "Sun, 06 Nov 1994 08:49:37 GMT"},
                              {"date", "Sun, 06 Nov 1994 09:49:37 GMT"}};
  const bool strong = if_range_matches(in.part[1], stored);
  // Honoured only for the stored strong ETag or exactly the stored Last-Modified.
  if (strong)
    FUZZ_CHECK(in.part[1].find("\"v1\"") != std::string_view::npos ||
               parse_http_date(in.part[1]) == parse_http_date(stored[1].value));
  if_range_matches(in.part[1], {{"etag", std::string(in.part[1])}});
  return 0;
}
