// Reads [site.access] and its [[site.access.rule]] array into a site_access, and the access keys
// that [server] shares with it (allow_clients, client_certs, client_ca, client_crl,
// log_client_cert), through toml_reader so that diagnostics name file, line and key. Private to
// config/.
#pragma once

#include <toml++/toml.h>
#include <array>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "config/toml_reader.hpp"

namespace storecache::config {

inline constexpr std::array<std::string_view, 6> site_access_keys{
    "allow_clients", "client_certs", "client_ca", "client_crl", "log_client_cert", "rule"};
inline constexpr std::array<std::string_view, 2> access_rule_keys{"path", "client_cert"};
// The keys of client_cert_keys also belong to [server] (for connections that name no site).
inline constexpr std::array<std::string_view, 4> client_cert_keys{"client_certs", "client_ca",
                                                                  "client_crl", "log_client_cert"};

// An array of networks ("10.0.0.0/8", "fd00::/8", "127.0.0.2"), at least one; nullopt after
// an error.
std::optional<std::vector<ip_network>> read_networks(toml_reader& reader, const toml::node& n,
                                                     const std::string& key);

// client_certs, client_ca, client_crl and log_client_cert of table t (a [server] or a
// [site.access]); prefix is its dotted key. Checks that they fit together.
void read_client_cert_policy(toml_reader& reader, const toml::table& t, const std::string& prefix,
                             client_cert_policy& out);

// site_table is one [[site]]; absent [site.access] leaves out at its defaults (open to all).
void read_site_access(toml_reader& reader, const toml::table& site_table, const std::string& prefix,
                      std::span<const table_schema> schema, site_access& out);

}  // namespace storecache::config
