#include "prefetch/formats.hpp"

namespace storecache::prefetch {
void parse_cmi5(std::string_view, collector& out) {
  out.fail("not implemented yet");
}
}  // namespace storecache::prefetch
