// Typed reads from a toml++ tree that turn every problem into a diagnostic (file, line and
// column of the offending value, dotted key, message) instead of stopping: the schema code in
// loader.cpp asks for "an integer in 1..1000 at limits.max_header_count" and gets either the
// value or nullopt with the error recorded. Private to config/: only our .cpp files include it.
#pragma once

#include <toml++/toml.h>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "config/schema.hpp"
#include "config/values.hpp"

namespace storecache::config {

struct position {
  std::size_t line = 0;  // 0: no single place
  std::size_t column = 0;
};
position where(const toml::node& n);

// "server" + "listen" -> "server.listen"; "" + "site" -> "site"; ("site", 2) -> "site[2]".
std::string join(std::string_view prefix, std::string_view key);
std::string indexed(std::string_view key, std::size_t i);

class toml_reader {
 public:
  // Relative paths read by path()/readable_file() resolve against base_dir, made absolute.
  toml_reader(std::string_view file, const std::filesystem::path& base_dir);

  void error(position at, std::string key, std::string message);
  void error(const toml::node& at, std::string key, std::string message);
  void type_error(const toml::node& n, std::string key, std::string_view expected);
  // Sorted by place, so they read top to bottom; placeless ones last.
  std::vector<diagnostic> take_errors();

  // Reports keys of t that are not in known, suggesting a near one, or else the table of
  // schema the key belongs to.
  void check_keys(const toml::table& t, std::string_view prefix,
                  std::span<const std::string_view> known, std::span<const table_schema> schema);
  // root[name] if it is a table; nullptr if absent (no error) or not a table (error).
  const toml::table* table(const toml::table& root, std::string_view name);

  std::optional<std::string> string_value(const toml::node& n, const std::string& key);
  std::optional<bool> boolean(const toml::node& n, const std::string& key);
  std::optional<std::int64_t> integer(const toml::node& n, const std::string& key, std::int64_t min,
                                      std::int64_t max);
  // A float or an integer within min..max (NaN and infinities are out of any range).
  std::optional<double> number(const toml::node& n, const std::string& key, double min, double max);
  // "10s", "250ms", "7d", or an integer of seconds.
  std::optional<std::chrono::milliseconds> duration(const toml::node& n, const std::string& key,
                                                    zero_duration zero = zero_duration::refused);
  // A duration as above that is a whole number of seconds, at most max.
  std::optional<std::chrono::seconds> seconds(const toml::node& n, const std::string& key,
                                              zero_duration zero, std::chrono::seconds max);
  // An integer of bytes or "16KiB", within min..max.
  std::optional<std::uint64_t> size(const toml::node& n, const std::string& key, std::uint64_t min,
                                    std::uint64_t max);
  // A non-empty path string, resolved and normalized; existence not checked.
  std::optional<std::filesystem::path> path(const toml::node& n, const std::string& key);
  // As path(), and it must name an existing, readable regular file.
  std::optional<std::filesystem::path> readable_file(const toml::node& n, const std::string& key);

 private:
  std::string file_;
  std::filesystem::path base_dir_;
  std::vector<diagnostic> errors_;
};

}  // namespace storecache::config
