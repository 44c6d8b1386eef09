#include "config/wan_reader.hpp"

#include <string>

#include "config/values.hpp"

namespace storecache::config {

namespace {

std::optional<std::uint64_t> read_rate(toml_reader& reader, const toml::node& n,
                                       const std::string& key) {
  std::uint64_t value = 0;
  std::string error;
  if (const auto* i = n.as_integer()) {
    if (i->get() < 1)
      error = "must be at least 1 byte per second";
    else
      value = static_cast<std::uint64_t>(i->get());
  } else if (auto text = reader.string_value(n, key)) {
    auto r = parse_rate(*text);
    value = r.value;
    error = r.error;
  } else {
    return std::nullopt;  // string_value reported the type
  }
  if (!error.empty()) {
    reader.error(n, key, error);
    return std::nullopt;
  }
  return value;
}

}  // namespace

namespace {

// A [wan]-shaped table at `prefix` ("wan", "site[0].wan").
void read_wan_table(toml_reader& reader, const toml::table* t, const std::string& prefix,
                    std::span<const table_schema> schema, wan_settings& out) {
  if (t == nullptr) return;
  reader.check_keys(*t, prefix, wan_keys, schema);
  if (const toml::node* n = t->get("rate"))
    if (auto v = read_rate(reader, *n, join(prefix, "rate"))) out.rate = *v;
  const toml::node* n = t->get("window");
  if (n == nullptr) return;
  const std::string window_key = join(prefix, "window");
  if (!n->is_array_of_tables()) {
    reader.type_error(*n, window_key,
                      "an array of tables ([[" + window_key + "]], each with hours and rate)");
    return;
  }
  const toml::array& arr = *n->as_array();
  for (std::size_t i = 0; i < arr.size(); ++i) {
    const std::string key = indexed(window_key, i);
    const toml::table& w = *arr[i].as_table();
    reader.check_keys(w, key, wan_window_keys, schema);
    wan_window window;
    bool ok = true;
    if (const toml::node* h = w.get("hours")) {
      if (auto text = reader.string_value(*h, join(key, "hours"))) {
        std::string why;
        if (auto tw = parse_time_window(*text, why))
          window.hours = *tw;
        else {
          reader.error(*h, join(key, "hours"), why);
          ok = false;
        }
      } else {
        ok = false;
      }
    } else {
      reader.error(arr[i], join(key, "hours"), "is required (local time, e.g. \"08:00-21:00\")");
      ok = false;
    }
    if (const toml::node* r = w.get("rate")) {
      if (auto v = read_rate(reader, *r, join(key, "rate")))
        window.rate = *v;
      else
        ok = false;
    } else {
      reader.error(arr[i], join(key, "rate"), "is required (e.g. \"5Mbit/s\")");
      ok = false;
    }
    if (ok) out.windows.push_back(window);
  }
}

}  // namespace

void read_wan(toml_reader& reader, const toml::table& root, std::span<const table_schema> schema,
              wan_settings& out) {
  read_wan_table(reader, reader.table(root, "wan"), "wan", schema, out);
}

void read_site_wan(toml_reader& reader, const toml::table& site_table, const std::string& prefix,
                   std::span<const table_schema> schema, wan_settings& out) {
  const toml::node* n = site_table.get("wan");
  if (n == nullptr) return;
  const std::string key = join(prefix, "wan");
  if (!n->is_table()) {
    reader.type_error(*n, key, "a table ([site.wan], with rate and [[site.wan.window]])");
    return;
  }
  read_wan_table(reader, n->as_table(), key, schema, out);
}

}  // namespace storecache::config
