// The User-Agent classifier (usage/device.hpp): any string becomes one of the fixed families,
// with a believable OS version, in time linear in its length.
#include <cstdint>

#include "fuzz/fuzz_check.hpp"
#include "usage/device.hpp"

using namespace storecache::usage;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view ua = storecache::fuzz::as_text(data, size);
  const device d = classify_user_agent(ua);
  FUZZ_CHECK(static_cast<int>(d.os) < os_family_count);
  FUZZ_CHECK(static_cast<int>(d.browser) < browser_family_count);
  FUZZ_CHECK(d.os_major >= 0 && d.os_major <= 99);
  FUZZ_CHECK(!label(d.os).empty() && !label(d.browser).empty());
  FUZZ_CHECK(!display_name(d.os).empty() && !display_name(d.browser).empty());
  FUZZ_CHECK(!label(tls_version_from(ua)).empty());
  return 0;
}
