#include "config/site_cache_reader.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "config/values.hpp"

namespace storecache::config {
namespace {

// RFC 9111 §1.2.2 caps delta-seconds at 2^31; longer lifetimes mean nothing more, and the cap
// keeps now + ttl far from overflowing any clock's time_point.
constexpr std::chrono::seconds max_lifetime{std::int64_t{1} << 31};

bool is_control_or_space(char c) {
  auto u = static_cast<unsigned char>(c);
  return u <= 0x20 || u == 0x7f;
}

// Empty when name is a query parameter name, or a prefix of one ending in '*'; else why not.
std::string check_query_param(std::string_view name) {
  if (name.empty()) return "must not be empty";
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (c == '*' && i + 1 != name.size())
      return "'*' may only end a name, as a prefix match (\"X-Amz-*\")";
    if (is_control_or_space(c)) return "contains a space or control character";
    if (c == '&' || c == '=' || c == '#' || c == '?')
      return "contains '" + std::string(1, c) +
             "'; write the parameter name only, as in \"Expires\"";
  }
  return {};
}

// Empty when pattern can be a path rule's pattern; else why not.
std::string check_pattern(std::string_view pattern) {
  if (pattern.empty()) return "must not be empty";
  if (pattern.front() != '/' && pattern.front() != '*')
    return "must start with '/' or '*' (it is matched against the whole path, as \"/api/*\")";
  for (char c : pattern) {
    if (c == '?') return "contains '?'; rules match the path only (the query is not part of it)";
    if (c == '#') return "contains '#'; a fragment never reaches the server";
    if (is_control_or_space(c)) return "contains a space or control character";
  }
  return {};
}

bool only_stars(std::string_view pattern) {
  return std::all_of(pattern.begin(), pattern.end(), [](char c) { return c == '*'; });
}

class cache_reader {
 public:
  cache_reader(toml_reader& r, std::span<const table_schema> schema) : r_(r), schema_(schema) {}

  void read(const toml::table& t, const std::string& key, site_cache_policy& out);

 private:
  void read_query_params(const toml::node& n, const std::string& key,
                         std::vector<std::string>& out);
  void read_rules(const toml::node& n, const std::string& key, std::vector<path_rule>& out);
  void read_rule(const toml::table& t, const std::string& key, std::size_t index,
                 std::vector<path_rule>& out);

  toml_reader& r_;
  std::span<const table_schema> schema_;

  // Where each rule kept in out came from (index in the file, place of its path), to report a
  // later rule that an earlier one always pre-empts.
  struct origin {
    std::size_t index;
    position at;
  };
  std::vector<origin> kept_;
};

void cache_reader::read(const toml::table& t, const std::string& key, site_cache_policy& out) {
  r_.check_keys(t, key, site_cache_keys, schema_);
  if (const toml::node* n = t.get("enabled"))
    if (auto v = r_.boolean(*n, join(key, "enabled"))) out.enabled = *v;
  if (const toml::node* n = t.get("cdn_cache_control"))
    if (auto v = r_.boolean(*n, join(key, "cdn_cache_control"))) out.cdn_cache_control = *v;

  struct field {
    std::string_view name;
    std::chrono::seconds site_cache_policy::*member;
    std::chrono::seconds max;
  };
  static constexpr std::array<field, 4> lifetimes{{
      {"default_ttl", &site_cache_policy::default_ttl, max_lifetime},
      {"stale_if_error", &site_cache_policy::stale_if_error, max_lifetime},
      {"heuristic_max", &site_cache_policy::heuristic_max, max_lifetime},
      // An authorization outlives a revoked session by at most this: keep it short.
      {"authorize_cache", &site_cache_policy::authorize_cache, std::chrono::hours(1)},
  }};
  for (const auto& f : lifetimes)
    if (const toml::node* n = t.get(f.name))
      if (auto v = r_.seconds(*n, join(key, f.name), zero_duration::allowed, f.max))
        out.*f.member = *v;

  if (const toml::node* n = t.get("heuristic_fraction"))
    if (auto v = r_.number(*n, join(key, "heuristic_fraction"), 0.0, 1.0))
      out.heuristic_fraction = *v;
  if (const toml::node* n = t.get("ignore_query_params"))
    read_query_params(*n, join(key, "ignore_query_params"), out.ignore_query_params);
  if (const toml::node* n = t.get("rule")) read_rules(*n, join(key, "rule"), out.rules);
}

void cache_reader::read_query_params(const toml::node& n, const std::string& key,
                                     std::vector<std::string>& out) {
  if (!n.is_array()) {
    r_.type_error(n, key, "an array of parameter names, e.g. [\"Expires\", \"X-Amz-*\"]");
    return;
  }
  // Written, the list replaces the default one; [] keeps every parameter in the key.
  out.clear();
  const toml::array& arr = *n.as_array();
  std::vector<position> at;
  for (std::size_t i = 0; i < arr.size(); ++i) {
    std::string item_key = indexed(key, i);
    auto name = r_.string_value(arr[i], item_key);
    if (!name) continue;
    if (auto why = check_query_param(*name); !why.empty()) {
      r_.error(arr[i], item_key, why);
      continue;
    }
    auto dup = std::find(out.begin(), out.end(), *name);
    if (dup != out.end()) {
      r_.error(arr[i], item_key,
               "'" + *name + "' is listed twice (also on line " +
                   std::to_string(at[static_cast<std::size_t>(dup - out.begin())].line) + ")");
      continue;
    }
    out.push_back(std::move(*name));
    at.push_back(where(arr[i]));
  }
}

void cache_reader::read_rules(const toml::node& n, const std::string& key,
                              std::vector<path_rule>& out) {
  if (n.is_table()) {
    r_.error(n, key, "write [[site.cache.rule]] (one per rule), not [site.cache.rule]");
    return;
  }
  // toml++ does not call an empty array one "of tables"; "rule = []" is just no rules.
  if (n.is_array() && n.as_array()->empty()) return;
  if (!n.is_array_of_tables()) {
    r_.type_error(n, key, "an array of tables ([[site.cache.rule]])");
    return;
  }
  const toml::array& arr = *n.as_array();
  for (std::size_t i = 0; i < arr.size(); ++i)
    read_rule(*arr[i].as_table(), indexed(key, i), i, out);
}

void cache_reader::read_rule(const toml::table& t, const std::string& key, std::size_t index,
                             std::vector<path_rule>& out) {
  r_.check_keys(t, key, path_rule_keys, schema_);
  path_rule rule;
  bool valid = true;

  const toml::node* path = t.get("path");
  if (path == nullptr) {
    r_.error(t, join(key, "path"), "is required, e.g. path = \"/api/*\"");
    valid = false;
  } else if (auto text = r_.string_value(*path, join(key, "path"))) {
    if (auto why = check_pattern(*text); !why.empty()) {
      r_.error(*path, join(key, "path"), why);
      valid = false;
    } else {
      rule.pattern = std::move(*text);
    }
  } else {
    valid = false;
  }

  const toml::node* ttl = t.get("ttl");
  const toml::node* bypass = t.get("bypass");
  const toml::node* authorize = t.get("authorize_with_upstream");
  if (authorize != nullptr) {
    auto v = r_.boolean(*authorize, join(key, "authorize_with_upstream"));
    if (v) rule.authorize_with_upstream = *v;
    valid = valid && v.has_value();
  }
  if (ttl != nullptr) {
    auto v = r_.seconds(*ttl, join(key, "ttl"), zero_duration::allowed, max_lifetime);
    if (v) rule.ttl = *v;
    valid = valid && v.has_value();
  }
  if (bypass != nullptr) {
    auto v = r_.boolean(*bypass, join(key, "bypass"));
    if (v) rule.bypass = *v;
    valid = valid && v.has_value();
  }
  if (ttl != nullptr && rule.bypass) {
    r_.error(*ttl, join(key, "ttl"),
             "a bypassed response is never stored, so ttl has no effect; keep ttl or "
             "bypass = true, not both");
    valid = false;
  } else if (rule.authorize_with_upstream && rule.bypass) {
    r_.error(*authorize, join(key, "authorize_with_upstream"),
             "a bypassed request always goes to the upstream, which authorizes it itself; keep "
             "authorize_with_upstream or bypass = true, not both");
    valid = false;
  } else if (ttl == nullptr && !rule.authorize_with_upstream &&
             (bypass == nullptr || (bypass->is_boolean() && !rule.bypass))) {
    r_.error(t, key,
             "does nothing: give it ttl = \"...\", bypass = true or "
             "authorize_with_upstream = true");
    valid = false;
  }
  if (!valid) return;

  // The first match wins, so a rule after an identical pattern or a catch-all never applies.
  for (std::size_t k = 0; k < out.size(); ++k) {
    if (out[k].pattern == rule.pattern || only_stars(out[k].pattern)) {
      r_.error(*path, join(key, "path"),
               "never applies: rule[" + std::to_string(kept_[k].index) + "] (line " +
                   std::to_string(kept_[k].at.line) +
                   ") matches every path this one does, and the first match wins");
      return;
    }
  }
  out.push_back(std::move(rule));
  kept_.push_back({index, where(*path)});
}

}  // namespace

void read_site_cache(toml_reader& reader, const toml::table& site_table, const std::string& prefix,
                     std::span<const table_schema> schema, site_cache_policy& out) {
  const toml::node* n = site_table.get("cache");
  if (n == nullptr) return;
  std::string key = join(prefix, "cache");
  if (n->is_array_of_tables()) {
    reader.error(*n, key, "write [site.cache] (one per site), not [[site.cache]]");
    return;
  }
  if (!n->is_table()) {
    reader.type_error(*n, key, "a table ([site.cache])");
    return;
  }
  cache_reader(reader, schema).read(*n->as_table(), key, out);
}

}  // namespace storecache::config
