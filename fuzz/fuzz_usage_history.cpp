// The usage history's records as read back from LMDB (usage/history.hpp): any bytes as a
// bucket key, as its counts (formats 1 to 3) or as the stored prefetch readiness. What decodes
// re-encodes to a record that decodes the same (the prefetch readiness to the same bytes);
// names are cut on UTF-8 boundaries.
#include <cstdint>

#include "fuzz/fuzz_check.hpp"
#include "usage/history.hpp"

using namespace storecache::usage;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes = storecache::fuzz::as_text(data, size);
  if (const auto k = decode_key(bytes)) {
    FUZZ_CHECK(k->name.size() <= max_name_bytes);
    const auto again = decode_key(encode_key(*k));
    FUZZ_CHECK(again && *again == *k);
  }
  if (const auto c = decode_counts(bytes)) {
    const auto again = decode_counts(encode_counts(*c));
    FUZZ_CHECK(again && *again == *c);
    usage_counts sum;
    sum += *c;
    FUZZ_CHECK(sum == *c);
    FUZZ_CHECK(c->device_upstream_bytes() <= c->upstream_bytes);
  }
  if (const auto p = decode_prefetch(bytes)) {
    FUZZ_CHECK(p->sources.size() <= max_prefetch_sources);
    FUZZ_CHECK(p->ready_count() <= p->sources.size());
    FUZZ_CHECK(encode_prefetch(*p) == bytes);
  }
  const std::string_view cut = truncate_name(bytes);
  FUZZ_CHECK(cut.size() <= max_name_bytes && bytes.starts_with(cut));
  // Never inside a UTF-8 sequence; a name of nothing but continuation bytes (not UTF-8 at all)
  // is cut to "".
  if (!cut.empty() && cut.size() < bytes.size())
    FUZZ_CHECK((static_cast<unsigned char>(bytes[cut.size()]) & 0xc0) != 0x80);
  return 0;
}
