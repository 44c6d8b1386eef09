#include "config/site_access_reader.hpp"

#include <algorithm>
#include <utility>

#include "config/values.hpp"

namespace storecache::config {
namespace {

constexpr std::array<std::pair<std::string_view, client_cert_mode>, 3> mode_names{
    {{"off", client_cert_mode::off},
     {"optional", client_cert_mode::optional},
     {"required", client_cert_mode::required}}};
constexpr std::array<std::pair<std::string_view, client_cert_log>, 3> log_names{
    {{"sha256", client_cert_log::sha256},
     {"subject", client_cert_log::subject},
     {"off", client_cert_log::off}}};

template <typename Enum, std::size_t N>
std::optional<Enum> choice(toml_reader& r, const toml::node& n, const std::string& key,
                           const std::array<std::pair<std::string_view, Enum>, N>& names) {
  auto text = r.string_value(n, key);
  if (!text) return std::nullopt;
  std::string list;
  for (const auto& [name, value] : names) {
    if (*text == name) return value;
    list += (list.empty() ? "\"" : ", \"") + std::string(name) + "\"";
  }
  r.error(n, key, "'" + *text + "' is not one of " + list);
  return std::nullopt;
}

// Empty when pattern can be an access rule's path; else why not (as [[site.cache.rule]]).
std::string check_pattern(std::string_view pattern) {
  if (pattern.empty()) return "must not be empty";
  if (pattern.front() != '/' && pattern.front() != '*')
    return "must start with '/' or '*' (it is matched against the whole path, as \"/secure/*\")";
  for (char c : pattern) {
    if (c == '?') return "contains '?'; rules match the path only (the query is not part of it)";
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
      return "contains a space or control character";
  }
  return {};
}

void read_rule(toml_reader& r, const toml::table& t, const std::string& key,
               std::span<const table_schema> schema, std::vector<access_rule>& out) {
  r.check_keys(t, key, access_rule_keys, schema);
  access_rule rule;
  bool valid = true;
  const toml::node* path = t.get("path");
  if (path == nullptr) {
    r.error(t, join(key, "path"), "is required, e.g. path = \"/secure/*\"");
    valid = false;
  } else if (auto text = r.string_value(*path, join(key, "path"))) {
    if (auto why = check_pattern(*text); !why.empty()) {
      r.error(*path, join(key, "path"), why);
      valid = false;
    } else {
      rule.pattern = std::move(*text);
    }
  } else {
    valid = false;
  }
  if (const toml::node* n = t.get("client_cert")) {
    auto v = r.boolean(*n, join(key, "client_cert"));
    if (v) rule.client_cert = *v;
    valid = valid && v.has_value();
  }
  if (valid) out.push_back(std::move(rule));
}

}  // namespace

std::optional<std::vector<ip_network>> read_networks(toml_reader& r, const toml::node& n,
                                                     const std::string& key) {
  if (!n.is_array()) {
    r.type_error(n, key, "an array of networks, e.g. [\"10.0.0.0/8\", \"fd00::/8\"]");
    return std::nullopt;
  }
  const toml::array& arr = *n.as_array();
  if (arr.empty()) {
    r.error(n, key, "must list at least one network; leave the key out to admit every client");
    return std::nullopt;
  }
  std::vector<ip_network> out;
  bool ok = true;
  for (std::size_t i = 0; i < arr.size(); ++i) {
    std::string item = indexed(key, i);
    auto text = r.string_value(arr[i], item);
    if (!text) {
      ok = false;
      continue;
    }
    auto net = parse_ip_network(*text);
    if (!net.ok()) {
      r.error(arr[i], item, net.error);
      ok = false;
      continue;
    }
    out.push_back(net.value);
  }
  if (!ok) return std::nullopt;
  return out;
}

void read_client_cert_policy(toml_reader& r, const toml::table& t, const std::string& prefix,
                             client_cert_policy& out) {
  const toml::node* mode = t.get("client_certs");
  const toml::node* ca = t.get("client_ca");
  const toml::node* crl = t.get("client_crl");
  if (mode != nullptr)
    if (auto v = choice(r, *mode, join(prefix, "client_certs"), mode_names)) out.mode = *v;
  if (ca != nullptr)
    if (auto p = r.readable_file(*ca, join(prefix, "client_ca"))) out.ca = *p;
  if (const toml::node* n = t.get("log_client_cert"))
    if (auto v = choice(r, *n, join(prefix, "log_client_cert"), log_names)) out.log = *v;
  if (crl != nullptr) {
    const std::string key = join(prefix, "client_crl");
    if (crl->is_string()) {
      if (auto p = r.readable_file(*crl, key)) out.crl.push_back(*p);
    } else if (crl->is_array() && !crl->as_array()->empty()) {
      const toml::array& arr = *crl->as_array();
      for (std::size_t i = 0; i < arr.size(); ++i)
        if (auto p = r.readable_file(arr[i], indexed(key, i))) out.crl.push_back(*p);
    } else {
      r.type_error(*crl, key, "a CRL file or a non-empty array of them");
    }
  }
  // The pairs that make no sense alone: a CA nobody asks for, a mode without a CA.
  if (out.mode != client_cert_mode::off && ca == nullptr)
    r.error(mode != nullptr ? where(*mode) : where(t), join(prefix, "client_ca"),
            "is required when client_certs = \"" +
                std::string(out.mode == client_cert_mode::required ? "required" : "optional") +
                "\": the PEM file of the CA(s) that issue the device certificates");
  if (ca != nullptr && mode == nullptr)
    r.error(*ca, join(prefix, "client_certs"),
            "is required with client_ca: \"required\" (no certificate, no TLS) or \"optional\"");
  if (crl != nullptr && ca == nullptr)
    r.error(*crl, join(prefix, "client_crl"),
            "needs client_ca (a CRL revokes certificates of those CAs)");
}

void read_site_access(toml_reader& r, const toml::table& site_table, const std::string& prefix,
                      std::span<const table_schema> schema, site_access& out) {
  const toml::node* n = site_table.get("access");
  if (n == nullptr) return;
  const std::string key = join(prefix, "access");
  if (n->is_array_of_tables()) {
    r.error(*n, key, "write [site.access] (one per site), not [[site.access]]");
    return;
  }
  if (!n->is_table()) {
    r.type_error(*n, key, "a table ([site.access])");
    return;
  }
  const toml::table& t = *n->as_table();
  r.check_keys(t, key, site_access_keys, schema);
  if (const toml::node* a = t.get("allow_clients"))
    if (auto nets = read_networks(r, *a, join(key, "allow_clients"))) out.allow_clients = *nets;
  read_client_cert_policy(r, t, key, out.client);

  const toml::node* rules = t.get("rule");
  if (rules == nullptr || (rules->is_array() && rules->as_array()->empty())) return;
  const std::string rule_key = join(key, "rule");
  if (rules->is_table()) {
    r.error(*rules, rule_key, "write [[site.access.rule]] (one per rule), not [site.access.rule]");
    return;
  }
  if (!rules->is_array_of_tables()) {
    r.type_error(*rules, rule_key, "an array of tables ([[site.access.rule]])");
    return;
  }
  const toml::array& arr = *rules->as_array();
  for (std::size_t i = 0; i < arr.size(); ++i) {
    const std::size_t before = out.rules.size();
    read_rule(r, *arr[i].as_table(), indexed(rule_key, i), schema, out.rules);
    // A certificate demand needs a CA to verify against.
    if (out.rules.size() > before && out.rules.back().client_cert &&
        out.client.mode == client_cert_mode::off)
      r.error(*arr[i].as_table()->get("client_cert"), join(indexed(rule_key, i), "client_cert"),
              "needs client_certs = \"optional\" (or \"required\") and client_ca in [site.access]: "
              "no certificate is asked for otherwise");
  }
}

}  // namespace storecache::config
