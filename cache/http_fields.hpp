// Header fields as the cache core and both front ends carry them: lower-case names, values as
// received, order kept. A vector beats a map here: requests carry a dozen fields, and the
// order matters when they are forwarded.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace storecache::cache {

struct header {
  std::string name;  // lower-case
  std::string value;
};
using header_list = std::vector<header>;

// Value of the first field with this (lower-case) name, or nullopt.
inline std::optional<std::string_view> find_header(const header_list& headers,
                                                   std::string_view name) {
  for (const auto& h : headers)
    if (h.name == name) return std::string_view(h.value);
  return std::nullopt;
}

}  // namespace storecache::cache
