// Reads [site.signed_urls] and its [[site.signed_urls.key]] array into a site_signed_urls,
// through toml_reader, so its diagnostics look like every other key's. Checks the shape and
// that named files exist; the runtime reads the keys themselves (access/ verifiers), and a key
// it cannot use stops start-up or a reload with the file's name. Private to config/.
#pragma once

#include <toml++/toml.h>
#include <array>
#include <span>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "config/toml_reader.hpp"

namespace storecache::config {

inline constexpr std::array<std::string_view, 9> site_signed_keys{
    "scheme",      "paths",           "clock_skew", "key",          "cookies",
    "secret_file", "secure_link_md5", "md5_param",  "expires_param"};
inline constexpr std::array<std::string_view, 3> signed_key_keys{"id", "public_key", "secret_file"};

void read_site_signed_urls(toml_reader& reader, const toml::table& site_table,
                           const std::string& prefix, std::span<const table_schema> schema,
                           site_signed_urls& out);

}  // namespace storecache::config
