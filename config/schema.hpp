// The config file's schema as data: every table the loader accepts, by its header as written
// ("[server]", "[[site]]", "[site.cache]"), with the keys it may hold. The loader checks files
// against it, and the manual page test (tests/unit/config_manpage_test.cpp) checks
// storecache.toml(5) against it, so the documentation cannot drift from the code.
#pragma once

#include <span>
#include <string_view>

namespace storecache::config {

// The keys one table may hold, and its header as written ("[server]", "[[site]]"). A key that
// names a sub-table ("cache" in [[site]], "rule" in [site.cache]) is a key of its parent too.
struct table_schema {
  std::string_view header;
  std::span<const std::string_view> keys;
};

// Every table of the config file, in the order the loader reads them.
std::span<const table_schema> schema_tables();

}  // namespace storecache::config
