// Reads [wan] and its [[wan.window]] array through toml_reader. Private to config/.
#pragma once

#include <toml++/toml.h>
#include <array>
#include <span>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "config/toml_reader.hpp"

namespace storecache::config {

inline constexpr std::array<std::string_view, 2> wan_keys{"rate", "window"};
inline constexpr std::array<std::string_view, 2> wan_window_keys{"hours", "rate"};

void read_wan(toml_reader& reader, const toml::table& root, std::span<const table_schema> schema,
              wan_settings& out);
// A site's own cap: [site.wan] (prefix: "site[0]"), the same keys.
void read_site_wan(toml_reader& reader, const toml::table& site_table, const std::string& prefix,
                   std::span<const table_schema> schema, wan_settings& out);

}  // namespace storecache::config
