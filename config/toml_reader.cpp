#include "config/toml_reader.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <limits>

#include "config/values.hpp"

namespace storecache::config {
namespace {

namespace fs = std::filesystem;

std::string_view type_name(toml::node_type t) {
  switch (t) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

// Shortest text that reads back as v: 0.1 -> "0.1", 1.0 -> "1", NaN -> "nan".
std::string format_number(double v) {
  std::array<char, 32> buf;
  auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  return ec == std::errc{} ? std::string(buf.data(), end) : std::string("?");
}

}  // namespace

position where(const toml::node& n) {
  return {n.source().begin.line, n.source().begin.column};
}

std::string join(std::string_view prefix, std::string_view key) {
  if (prefix.empty()) return std::string(key);
  return std::string(prefix) + "." + std::string(key);
}

std::string indexed(std::string_view key, std::size_t i) {
  return std::string(key) + "[" + std::to_string(i) + "]";
}

toml_reader::toml_reader(std::string_view file, const fs::path& base_dir) : file_(file) {
  std::error_code ec;
  base_dir_ = fs::absolute(base_dir, ec);
  if (ec) base_dir_ = base_dir;  // relative paths then stay relative; still checked below
}

void toml_reader::error(position at, std::string key, std::string message) {
  errors_.push_back({file_, at.line, at.column, std::move(key), std::move(message)});
}

void toml_reader::error(const toml::node& at, std::string key, std::string message) {
  error(where(at), std::move(key), std::move(message));
}

void toml_reader::type_error(const toml::node& n, std::string key, std::string_view expected) {
  error(n, std::move(key),
        "expected " + std::string(expected) + ", found " + std::string(type_name(n.type())));
}

std::vector<diagnostic> toml_reader::take_errors() {
  // File order, ties in the order found. An index sort rather than std::stable_sort, whose
  // temporary buffer ASan flags as an alloc/dealloc mismatch in g++ 12's libstdc++.
  std::vector<std::size_t> order(errors_.size());
  for (std::size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  auto line_of = [this](std::size_t i) {
    return errors_[i].line == 0 ? std::numeric_limits<std::size_t>::max() : errors_[i].line;
  };
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    if (line_of(a) != line_of(b)) return line_of(a) < line_of(b);
    if (errors_[a].column != errors_[b].column) return errors_[a].column < errors_[b].column;
    return a < b;
  });
  std::vector<diagnostic> out;
  out.reserve(errors_.size());
  for (std::size_t i : order)
    out.push_back(std::move(errors_[i]));
  errors_.clear();
  return out;
}

void toml_reader::check_keys(const toml::table& t, std::string_view prefix,
                             std::span<const std::string_view> known,
                             std::span<const table_schema> schema) {
  for (auto&& [k, v] : t) {
    std::string_view name = k.str();
    if (std::find(known.begin(), known.end(), name) != known.end()) continue;
    std::string message = "unknown key '" + std::string(name) + "'";
    if (auto near = closest_name(name, known); !near.empty()) {
      message += "; did you mean '" + std::string(near) + "'?";
    } else {
      // Right key, wrong table: say where it goes.
      std::string homes;
      for (const auto& s : schema)
        if (std::find(s.keys.begin(), s.keys.end(), name) != s.keys.end())
          homes += (homes.empty() ? "" : " or ") + std::string(s.header);
      if (!homes.empty()) message += "; it belongs in " + homes;
    }
    const auto& b = k.source().begin;
    error(position{b.line, b.column}, join(prefix, name), std::move(message));
  }
}

const toml::table* toml_reader::table(const toml::table& root, std::string_view name) {
  const toml::node* n = root.get(name);
  if (n == nullptr) return nullptr;
  if (!n->is_table()) {
    type_error(*n, std::string(name), "a table ([" + std::string(name) + "])");
    return nullptr;
  }
  return n->as_table();
}

std::optional<std::string> toml_reader::string_value(const toml::node& n, const std::string& key) {
  if (!n.is_string()) {
    type_error(n, key, "a string");
    return std::nullopt;
  }
  return n.as_string()->get();
}

std::optional<bool> toml_reader::boolean(const toml::node& n, const std::string& key) {
  if (!n.is_boolean()) {
    type_error(n, key, "a boolean (true or false)");
    return std::nullopt;
  }
  return n.as_boolean()->get();
}

std::optional<std::int64_t> toml_reader::integer(const toml::node& n, const std::string& key,
                                                 std::int64_t min, std::int64_t max) {
  if (!n.is_integer()) {
    type_error(n, key, "an integer");
    return std::nullopt;
  }
  std::int64_t v = n.as_integer()->get();
  if (v < min || v > max) {
    std::string range = max == std::numeric_limits<std::int64_t>::max()
                            ? "at least " + std::to_string(min)
                            : "between " + std::to_string(min) + " and " + std::to_string(max);
    error(n, key, "must be " + range + " (got " + std::to_string(v) + ")");
    return std::nullopt;
  }
  return v;
}

std::optional<double> toml_reader::number(const toml::node& n, const std::string& key, double min,
                                          double max) {
  double v = 0;
  if (n.is_floating_point()) {
    v = n.as_floating_point()->get();
  } else if (n.is_integer()) {
    v = static_cast<double>(n.as_integer()->get());  // "= 1" is as good as "= 1.0"
  } else {
    type_error(n, key, "a number");
    return std::nullopt;
  }
  if (!(v >= min && v <= max)) {  // written so that NaN fails too
    error(n, key,
          "must be between " + format_number(min) + " and " + format_number(max) + " (got " +
              format_number(v) + ")");
    return std::nullopt;
  }
  return v;
}

std::optional<std::chrono::milliseconds> toml_reader::duration(const toml::node& n,
                                                               const std::string& key,
                                                               zero_duration zero) {
  parsed<std::chrono::milliseconds> d;
  if (n.is_integer()) {
    d = duration_from_seconds(n.as_integer()->get(), zero);
  } else if (n.is_string()) {
    d = parse_duration(n.as_string()->get(), zero);
  } else {
    type_error(n, key, "a duration (\"10s\", \"250ms\", \"7d\", or an integer of seconds)");
    return std::nullopt;
  }
  if (!d.ok()) {
    error(n, key, d.error);
    return std::nullopt;
  }
  return d.value;
}

std::optional<std::chrono::seconds> toml_reader::seconds(const toml::node& n,
                                                         const std::string& key, zero_duration zero,
                                                         std::chrono::seconds max) {
  auto d = duration(n, key, zero);
  if (!d) return std::nullopt;
  if (d->count() % 1000 != 0) {
    error(n, key, "must be a whole number of seconds (got " + std::to_string(d->count()) + "ms)");
    return std::nullopt;
  }
  auto s = std::chrono::duration_cast<std::chrono::seconds>(*d);
  if (s > max) {
    error(n, key,
          "must be at most " + std::to_string(max.count()) + "s (got " + std::to_string(s.count()) +
              "s)");
    return std::nullopt;
  }
  return s;
}

std::optional<std::uint64_t> toml_reader::size(const toml::node& n, const std::string& key,
                                               std::uint64_t min, std::uint64_t max) {
  parsed<std::uint64_t> s;
  if (n.is_integer()) {
    std::int64_t v = n.as_integer()->get();
    if (v < 0) {
      error(n, key, "must not be negative");
      return std::nullopt;
    }
    s.value = static_cast<std::uint64_t>(v);
  } else if (n.is_string()) {
    s = parse_size(n.as_string()->get());
  } else {
    type_error(n, key, "a size (an integer of bytes, or \"16KiB\", \"200GiB\")");
    return std::nullopt;
  }
  if (!s.ok()) {
    error(n, key, s.error);
    return std::nullopt;
  }
  if (s.value < min || s.value > max) {
    std::string range = max == std::numeric_limits<std::uint64_t>::max()
                            ? "at least " + format_size(min)
                            : "between " + format_size(min) + " and " + format_size(max);
    error(n, key, "must be " + range + " (got " + format_size(s.value) + ")");
    return std::nullopt;
  }
  return s.value;
}

std::optional<fs::path> toml_reader::path(const toml::node& n, const std::string& key) {
  auto text = string_value(n, key);
  if (!text) return std::nullopt;
  if (text->empty()) {
    error(n, key, "must not be empty");
    return std::nullopt;
  }
  fs::path p(*text);
  if (p.is_relative()) p = base_dir_ / p;
  return p.lexically_normal();
}

std::optional<fs::path> toml_reader::readable_file(const toml::node& n, const std::string& key) {
  auto p = path(n, key);
  if (!p) return std::nullopt;
  // Only existence and readability: the daemon parses the PEM and reports what is wrong in it.
  std::error_code ec;
  auto st = fs::status(*p, ec);
  if (st.type() == fs::file_type::not_found) {
    error(n, key, "file '" + p->string() + "' does not exist");
    return std::nullopt;
  }
  if (ec) {
    error(n, key, "cannot check '" + p->string() + "': " + ec.message());
    return std::nullopt;
  }
  if (fs::is_directory(st)) {
    error(n, key, "'" + p->string() + "' is a directory, not a file");
    return std::nullopt;
  }
  if (::access(p->c_str(), R_OK) != 0) {
    error(n, key, "file '" + p->string() + "' is not readable: " + std::strerror(errno));
    return std::nullopt;
  }
  return p;
}

}  // namespace storecache::config
