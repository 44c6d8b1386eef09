#include "prefetch/formats.hpp"

namespace storecache::prefetch {
void parse_ims_manifest(std::string_view, collector& out) {
  out.fail("not implemented yet");
}
}  // namespace storecache::prefetch
