// What every fuzz target shares: an invariant check that stops the run with a message (a
// failed check is a finding, like a crash), and the input as text.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#define FUZZ_CHECK(cond)                                                                \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                     \
    }                                                                                   \
  } while (false)

namespace storecache::fuzz {

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// The input split at its first `n - 1` newlines into `n` fields (missing ones empty): readable
// seeds for targets that take several strings.
template <std::size_t n>
struct fields {
  std::string_view part[n];
  explicit fields(std::string_view in) {
    for (std::size_t i = 0; i + 1 < n; ++i) {
      const auto nl = in.find('\n');
      part[i] = in.substr(0, nl);
      in = nl == std::string_view::npos ? std::string_view{} : in.substr(nl + 1);
    }
    part[n - 1] = in;
  }
};

}  // namespace storecache::fuzz
