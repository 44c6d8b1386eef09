// The prefetch listing parsers (prefetch/listing.hpp): a URL list, an IMS/SCORM manifest, an
// HLS playlist or a cmi5 course structure, as anyone who publishes one could write it. The
// first byte picks the kind (low two bits), the variant choice (bit 2) and a small max_entries
// (bit 3, so truncation is reached); the rest is the body. Whatever the body, every path kept
// is a site path without dot segments, without bytes a request line cannot carry, unique, and
// there are never more than max_entries of them.
#include <cstdint>
#include <set>
#include <string>

#include "fuzz/fuzz_check.hpp"
#include "prefetch/listing.hpp"

namespace {

using namespace storecache::prefetch;

void check_path(const std::string& p) {
  FUZZ_CHECK(p.starts_with('/'));
  FUZZ_CHECK(!p.starts_with("//"));
  FUZZ_CHECK(p.size() <= max_reference_length);
  const auto path = std::string_view(p).substr(0, p.find('?'));
  FUZZ_CHECK(path.find("/../") == std::string_view::npos);
  FUZZ_CHECK(path.find("/./") == std::string_view::npos);
  FUZZ_CHECK(!path.ends_with("/..") && !path.ends_with("/."));
  FUZZ_CHECK(p.find('#') == std::string::npos);
  for (const char c : p) {
    const auto b = static_cast<unsigned char>(c);
    FUZZ_CHECK(b > 0x20 && b < 0x7f && c != '\\');
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto kind = static_cast<source_kind>(data[0] & 3);
  parse_options o;
  o.source_path = "/courses/c1/listing";
  o.site_name = "store.example";
  o.variants = data[0] & 4 ? hls_variants::lowest_and_highest : hls_variants::all;
  if (data[0] & 8) o.max_entries = 3;
  const auto body = storecache::fuzz::as_text(data + 1, size - 1);

  (void)detect_kind(body, "", o.source_path);
  const auto l = parse(kind, body, o);
  FUZZ_CHECK(l.objects.size() + l.sources.size() <= o.max_entries);
  FUZZ_CHECK(!l.truncated || l.objects.size() + l.sources.size() == o.max_entries);
  FUZZ_CHECK(l.rejected.size() <= 10 && l.rejected.size() <= l.rejected_count);
  std::set<std::string> seen;
  for (const auto* list : {&l.objects, &l.sources}) {
    for (const auto& p : *list) {
      check_path(p);
      FUZZ_CHECK(p != "/courses/c1/listing");  // never the listing itself
      FUZZ_CHECK(seen.insert(p).second);
    }
  }
  return 0;
}
