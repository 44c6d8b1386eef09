#include "prefetch/formats.hpp"

namespace storecache::prefetch {
void parse_hls(std::string_view, hls_variants, collector& out) {
  out.fail("not implemented yet");
}
}  // namespace storecache::prefetch
