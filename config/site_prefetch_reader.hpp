// Reads [prefetch] and each site's [[site.prefetch]] array through toml_reader, so their
// diagnostics look like every other key's. Private to config/.
#pragma once

#include <toml++/toml.h>
#include <array>
#include <span>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "config/toml_reader.hpp"

namespace storecache::config {

inline constexpr std::array<std::string_view, 6> prefetch_keys{
    "connections", "max_listing_size", "max_entries", "max_depth", "max_pinned", "listing_timeout"};
inline constexpr std::array<std::string_view, 7> site_prefetch_keys{
    "url", "name", "kind", "windows", "interval", "hls_variants", "pin"};

// cache_max_size: [cache] max_size, read before (max_pinned must stay below it).
void read_prefetch(toml_reader& reader, const toml::table& root,
                   std::span<const table_schema> schema, std::uint64_t cache_max_size,
                   prefetch_settings& out);
void read_site_prefetch(toml_reader& reader, const toml::table& site_table,
                        const std::string& prefix, std::span<const table_schema> schema,
                        std::vector<prefetch_source>& out);

}  // namespace storecache::config
