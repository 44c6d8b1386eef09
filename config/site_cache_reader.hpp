// Reads [site.cache] and its [[site.cache.rule]] array into a site_cache_policy, through
// toml_reader so that its diagnostics look like every other key's. Split from loader.cpp to keep
// each file to one concern; private to config/.
#pragma once

#include <toml++/toml.h>
#include <array>
#include <span>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "config/toml_reader.hpp"

namespace storecache::config {

inline constexpr std::array<std::string_view, 9> site_cache_keys{
    "enabled",        "default_ttl",       "stale_if_error",      "heuristic_fraction",
    "heuristic_max",  "cdn_cache_control", "ignore_query_params", "rule",
    "authorize_cache"};
inline constexpr std::array<std::string_view, 4> path_rule_keys{"path", "ttl", "bypass",
                                                                "authorize_with_upstream"};

// site_table is one [[site]]; prefix its dotted key ("site[0]"); schema is the whole file's, for
// "it belongs in [...]" hints. Absent [site.cache] leaves out at its defaults.
void read_site_cache(toml_reader& reader, const toml::table& site_table, const std::string& prefix,
                     std::span<const table_schema> schema, site_cache_policy& out);

}  // namespace storecache::config
