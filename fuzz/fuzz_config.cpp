// The TOML config loader (config/config.hpp parse(): toml++ and then our validation), fed any
// text as a config file. It must answer with a config or with diagnostics, never both, never
// neither, and never throw. Relative paths resolve under a directory that does not exist, so
// nothing is read from the disk.
#include <cstdint>

#include "config/config.hpp"
#include "fuzz/fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto r = storecache::config::parse(storecache::fuzz::as_text(data, size), "fuzz.toml",
                                           "/nonexistent/storecache-fuzz");
  FUZZ_CHECK(r.ok() == r.errors.empty());
  for (const auto& e : r.errors)
    FUZZ_CHECK(!e.to_string().empty());
  if (r.ok()) {
    FUZZ_CHECK(!r.cfg->sites.empty());
    for (const auto& site : r.cfg->sites)
      FUZZ_CHECK(r.cfg->find_site(site.name()) != nullptr);
  }
  return 0;
}
