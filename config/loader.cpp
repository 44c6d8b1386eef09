// parse(): walks the TOML tree, checks every key against the schema, converts values and
// validates them, collecting every problem (not just the first) as a diagnostic that names the
// file, the line and column of the offending value or table, and the dotted key.
//
// toml++ is built with exceptions here (Debian's shared libtomlplusplus), so its parse_error
// is caught at the edge and nothing escapes parse().
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <limits>
#include <map>
#include <optional>

#include "config/config.hpp"
#include "config/site_access_reader.hpp"
#include "config/site_cache_reader.hpp"
#include "config/site_prefetch_reader.hpp"
#include "config/site_signed_reader.hpp"
#include "config/toml_reader.hpp"
#include "config/values.hpp"
#include "config/wan_reader.hpp"

namespace storecache::config {
namespace {

using namespace std::string_view_literals;

constexpr std::array root_keys{"server"sv, "admin"sv,    "log"sv, "timeouts"sv, "limits"sv,
                               "cache"sv,  "prefetch"sv, "wan"sv, "site"sv};
constexpr std::array server_keys{"listen"sv,    "workers"sv,       "tls_cert"sv,
                                 "tls_key"sv,   "allow_clients"sv, "client_certs"sv,
                                 "client_ca"sv, "client_crl"sv,    "log_client_cert"sv};
// An entry of server.listen written as an inline table: { address = "...", allow_clients = [...] }.
constexpr std::array listener_keys{"address"sv, "allow_clients"sv};
constexpr std::array admin_keys{"listen"sv};
constexpr std::array log_keys{"level"sv, "access_log"sv, "access_log_query"sv};
constexpr std::array timeout_keys{"client_header"sv,       "client_idle"sv,   "upstream_connect"sv,
                                  "upstream_first_byte"sv, "upstream_idle"sv, "shutdown_grace"sv,
                                  "upstream_queue"sv};
constexpr std::array limit_keys{"max_header_bytes"sv,    "max_header_count"sv,
                                "max_uri_bytes"sv,       "max_request_body"sv,
                                "max_connections"sv,     "h2_max_concurrent_streams"sv,
                                "upstream_fetches"sv,    "upstream_fetches_per_site"sv,
                                "upstream_queue"sv,      "misses_per_connection"sv,
                                "misses_per_client"sv,   "client_resets"sv,
                                "client_reset_window"sv, "reset_penalty"sv};
constexpr std::array cache_keys{"dir"sv,
                                "max_size"sv,
                                "max_object_size"sv,
                                "finish_orphans_below"sv,
                                "finish_orphans_after"sv,
                                "finish_orphans_wanted_by"sv,
                                "orphan_grace"sv};
constexpr std::array site_keys{"hosts"sv,
                               "upstream"sv,
                               "allow_http_upstream"sv,
                               "tls_cert"sv,
                               "tls_key"sv,
                               "upstream_ca"sv,
                               "upstream_sni"sv,
                               "upstream_host_header"sv,
                               "upstream_max_idle"sv,
                               "cache"sv,
                               "access"sv,
                               "signed_urls"sv,
                               "prefetch"sv,
                               "wan"sv};

constexpr std::array<table_schema, 20> schema{{{"[server]", server_keys},
                                               {"server.listen entry", listener_keys},
                                               {"[admin]", admin_keys},
                                               {"[log]", log_keys},
                                               {"[timeouts]", timeout_keys},
                                               {"[limits]", limit_keys},
                                               {"[cache]", cache_keys},
                                               {"[prefetch]", prefetch_keys},
                                               {"[wan]", wan_keys},
                                               {"[[wan.window]]", wan_window_keys},
                                               {"[site.wan]", wan_keys},
                                               {"[[site.wan.window]]", wan_window_keys},
                                               {"[[site]]", site_keys},
                                               {"[site.cache]", site_cache_keys},
                                               {"[[site.cache.rule]]", path_rule_keys},
                                               {"[site.access]", site_access_keys},
                                               {"[[site.access.rule]]", access_rule_keys},
                                               {"[site.signed_urls]", site_signed_keys},
                                               {"[[site.signed_urls.key]]", signed_key_keys},
                                               {"[[site.prefetch]]", site_prefetch_keys}}};

// The schema's tables and the checks that span keys (pairs, overlaps, defaults); the typed
// reads and the error list are toml_reader's.
class loader : public toml_reader {
 public:
  using toml_reader::toml_reader;

  void run(const toml::table& root, config& cfg);

 private:
  bool tls_pair(const toml::table& t, std::string_view prefix, tls_files& out);

  void read_server(const toml::table& root, config& cfg);
  void read_admin(const toml::table& root, config& cfg);
  void read_log(const toml::table& root, config& cfg);
  void read_access_log(const toml::node& n, log_settings& out);
  template <typename Enum, std::size_t N>
  std::optional<Enum> choice(const toml::node& n, const std::string& key,
                             const std::array<std::pair<std::string_view, Enum>, N>& names);
  void read_timeouts(const toml::table& root, config& cfg);
  void read_limits(const toml::table& root, config& cfg);
  void read_cache(const toml::table& root, config& cfg);
  void read_sites(const toml::table& root, config& cfg);
  void read_site(const toml::table& t, std::size_t index, site& out);
  void read_hosts(const toml::table& t, std::size_t index, site& out);

  // Across sites: which site first claimed a host name, and where.
  struct claim {
    std::size_t site;
    position at;
  };
  std::map<std::string, claim, std::less<>> host_claims_;
  std::vector<bool> site_has_cert_;
  bool server_has_cert_ = false;
  position server_at_;
  std::vector<std::pair<listen_address, position>> server_listen_;
  std::vector<std::size_t> listen_own_allow_;  // listeners with their own allow_clients
};

// tls_cert and tls_key of one table: both or neither. True when either is written, so that a
// missing file is reported once and not again as "no certificate at all".
bool loader::tls_pair(const toml::table& t, std::string_view prefix, tls_files& out) {
  const toml::node* cert = t.get("tls_cert");
  const toml::node* key = t.get("tls_key");
  if (cert != nullptr && key == nullptr)
    error(*cert, join(prefix, "tls_key"),
          "tls_cert is set but tls_key is not; set both or neither");
  if (key != nullptr && cert == nullptr)
    error(*key, join(prefix, "tls_cert"),
          "tls_key is set but tls_cert is not; set both or neither");
  if (cert != nullptr)
    if (auto p = readable_file(*cert, join(prefix, "tls_cert"))) out.cert = *p;
  if (key != nullptr)
    if (auto p = readable_file(*key, join(prefix, "tls_key"))) out.key = *p;
  return cert != nullptr || key != nullptr;
}

void loader::run(const toml::table& root, config& cfg) {
  check_keys(root, "", root_keys, schema);
  read_server(root, cfg);
  read_admin(root, cfg);
  read_log(root, cfg);
  read_timeouts(root, cfg);
  read_limits(root, cfg);
  read_cache(root, cfg);
  read_prefetch(*this, root, schema, cfg.cache.max_size, cfg.prefetch);
  read_wan(*this, root, schema, cfg.wan);
  read_sites(root, cfg);

  // The default certificate answers clients without SNI or with an unknown name.
  if (!server_has_cert_) {
    auto first = std::find(site_has_cert_.begin(), site_has_cert_.end(), true);
    if (first != site_has_cert_.end()) {
      cfg.server.default_tls =
          cfg.sites[static_cast<std::size_t>(first - site_has_cert_.begin())].tls;
    } else if (!cfg.sites.empty()) {
      error(server_at_, "server.tls_cert",
            "no certificate anywhere: set tls_cert and tls_key in [server] or in a [[site]]");
    }
  }
}

void loader::read_server(const toml::table& root, config& cfg) {
  const toml::table* t = table(root, "server");
  if (t == nullptr) {
    if (root.get("server") == nullptr)
      error(position{}, "server.listen",
            "is required: add a [server] table with listen = [\"0.0.0.0:443\", \"[::]:443\"]");
    return;
  }
  server_at_ = where(*t);
  check_keys(*t, "server", server_keys, schema);

  const toml::node* listen = t->get("listen");
  if (listen == nullptr) {
    error(*t, "server.listen", "is required, e.g. listen = [\"0.0.0.0:443\", \"[::]:443\"]");
  } else if (!listen->is_array()) {
    type_error(*listen, "server.listen", "an array of addresses, e.g. [\"0.0.0.0:443\"]");
  } else if (listen->as_array()->empty()) {
    error(*listen, "server.listen", "must list at least one address");
  } else {
    const toml::array& arr = *listen->as_array();
    for (std::size_t i = 0; i < arr.size(); ++i) {
      std::string key = indexed("server.listen", i);
      // A string, or { address = "...", allow_clients = [...] } for a listener's own clients.
      const toml::node* address = &arr[i];
      std::optional<std::vector<ip_network>> own_allow;
      if (const toml::table* lt = arr[i].as_table()) {
        check_keys(*lt, key, listener_keys, schema);
        address = lt->get("address");
        if (address == nullptr) {
          error(*lt, join(key, "address"), "is required, e.g. address = \"10.1.2.3:443\"");
          continue;
        }
        if (const toml::node* a = lt->get("allow_clients")) {
          own_allow = read_networks(*this, *a, join(key, "allow_clients"));
          if (!own_allow) continue;
        }
      }
      auto text = string_value(*address, address == &arr[i] ? key : join(key, "address"));
      if (!text) continue;
      auto addr = parse_listen_address(*text);
      if (!addr.ok()) {
        error(*address, key, addr.error);
        continue;
      }
      if (own_allow) {
        addr.value.allow_clients = std::move(*own_allow);
        listen_own_allow_.push_back(cfg.server.listen.size());
      }
      auto dup = std::find_if(server_listen_.begin(), server_listen_.end(), [&](const auto& l) {
        return l.first.host == addr.value.host && l.first.port == addr.value.port;
      });
      if (dup != server_listen_.end()) {
        error(arr[i], key,
              addr.value.text() + " is listed twice (also on line " +
                  std::to_string(dup->second.line) + ")");
        continue;
      }
      server_listen_.emplace_back(addr.value, where(arr[i]));
      cfg.server.listen.push_back(addr.value);
    }
  }
  if (const toml::node* n = t->get("workers"))
    if (auto v = integer(*n, "server.workers", 0, 1024))
      cfg.server.workers = static_cast<unsigned>(*v);
  server_has_cert_ = tls_pair(*t, "server", cfg.server.default_tls);
  if (const toml::node* n = t->get("allow_clients"))
    if (auto nets = read_networks(*this, *n, "server.allow_clients"))
      cfg.server.allow_clients = std::move(*nets);
  read_client_cert_policy(*this, *t, "server", cfg.server.client);
  // Listeners without their own list admit whom [server] admits.
  for (std::size_t i = 0; i < cfg.server.listen.size(); ++i)
    if (std::find(listen_own_allow_.begin(), listen_own_allow_.end(), i) == listen_own_allow_.end())
      cfg.server.listen[i].allow_clients = cfg.server.allow_clients;
}

void loader::read_admin(const toml::table& root, config& cfg) {
  const toml::table* t = table(root, "admin");
  if (t == nullptr) return;
  check_keys(*t, "admin", admin_keys, schema);
  const toml::node* n = t->get("listen");
  if (n == nullptr) return;
  auto text = string_value(*n, "admin.listen");
  if (!text) return;
  auto addr = parse_listen_address(*text);
  if (!addr.ok()) {
    error(*n, "admin.listen", addr.error);
    return;
  }
  for (const auto& [l, at] : server_listen_) {
    if (l.host == addr.value.host && l.port == addr.value.port) {
      error(*n, "admin.listen",
            addr.value.text() + " is also a server.listen address (line " +
                std::to_string(at.line) + "); the admin listener needs its own");
      return;
    }
  }
  cfg.admin.listen = addr.value;
}

// One of a fixed set of words; the error lists them all.
template <typename Enum, std::size_t N>
std::optional<Enum> loader::choice(const toml::node& n, const std::string& key,
                                   const std::array<std::pair<std::string_view, Enum>, N>& names) {
  auto text = string_value(n, key);
  if (!text) return std::nullopt;
  std::string list;
  for (const auto& [name, value] : names) {
    if (*text == name) return value;
    list += (list.empty() ? "\"" : ", \"") + std::string(name) + "\"";
  }
  error(n, key, "'" + *text + "' is not one of " + list);
  return std::nullopt;
}

void loader::read_log(const toml::table& root, config& cfg) {
  const toml::table* t = table(root, "log");
  if (t == nullptr) return;
  check_keys(*t, "log", log_keys, schema);
  static constexpr std::array<std::pair<std::string_view, log_level>, 5> levels{{
      {"err", log_level::err},
      {"warning", log_level::warning},
      {"notice", log_level::notice},
      {"info", log_level::info},
      {"debug", log_level::debug},
  }};
  static constexpr std::array<std::pair<std::string_view, access_log_query>, 3> queries{{
      {"redact", access_log_query::redact},
      {"drop", access_log_query::drop},
      {"keep", access_log_query::keep},
  }};
  if (const toml::node* n = t->get("level"))
    if (auto v = choice(*n, "log.level", levels)) cfg.log.level = *v;
  if (const toml::node* n = t->get("access_log")) read_access_log(*n, cfg.log);
  if (const toml::node* n = t->get("access_log_query"))
    if (auto v = choice(*n, "log.access_log_query", queries)) cfg.log.query = *v;
}

// "stderr", "off", or an absolute path whose directory exists and that the daemon could append
// to. Relative paths are refused, unlike elsewhere: "off" or "stderr" would otherwise be files.
void loader::read_access_log(const toml::node& n, log_settings& out) {
  namespace fs = std::filesystem;
  const std::string key = "log.access_log";
  auto text = string_value(n, key);
  if (!text) return;
  if (*text == "stderr") {
    out.access_log = access_log_target::stderr_journal;
    return;
  }
  if (*text == "off") {
    out.access_log = access_log_target::off;
    return;
  }
  fs::path p(*text);
  if (!p.is_absolute() || !p.has_filename()) {
    error(n, key,
          "'" + *text +
              "' is neither \"stderr\", \"off\" nor an absolute file path, e.g. "
              "\"/var/log/storecache/access.log\"");
    return;
  }
  p = p.lexically_normal();
  std::error_code ec;
  const fs::path dir = p.parent_path();
  if (!fs::is_directory(dir, ec)) {
    error(n, key, "directory '" + dir.string() + "' does not exist");
    return;
  }
  auto st = fs::status(p, ec);
  bool exists = st.type() != fs::file_type::not_found && !ec;
  if (exists && fs::is_directory(st)) {
    error(n, key, "'" + p.string() + "' is a directory, not a file");
    return;
  }
  // The file is created if missing: then the directory must be writable.
  const fs::path& probe = exists ? p : dir;
  if (::access(probe.c_str(), W_OK) != 0) {
    error(n, key, "'" + probe.string() + "' is not writable: " + std::strerror(errno));
    return;
  }
  out.access_log = access_log_target::file;
  out.access_log_file = std::move(p);
}

void loader::read_timeouts(const toml::table& root, config& cfg) {
  const toml::table* t = table(root, "timeouts");
  if (t == nullptr) return;
  check_keys(*t, "timeouts", timeout_keys, schema);
  struct field {
    std::string_view name;
    std::chrono::milliseconds timeouts::*member;
  };
  static constexpr std::array<field, 7> fields{{
      {"client_header", &timeouts::client_header},
      {"client_idle", &timeouts::client_idle},
      {"upstream_connect", &timeouts::upstream_connect},
      {"upstream_first_byte", &timeouts::upstream_first_byte},
      {"upstream_idle", &timeouts::upstream_idle},
      {"shutdown_grace", &timeouts::shutdown_grace},
      {"upstream_queue", &timeouts::upstream_queue},
  }};
  for (const auto& f : fields)
    if (const toml::node* n = t->get(f.name))
      if (auto d = duration(*n, join("timeouts", f.name))) cfg.timeout.*f.member = *d;
}

void loader::read_limits(const toml::table& root, config& cfg) {
  const toml::table* t = table(root, "limits");
  if (t == nullptr) return;
  check_keys(*t, "limits", limit_keys, schema);
  constexpr auto int_max = std::numeric_limits<std::int64_t>::max();
  if (const toml::node* n = t->get("max_header_bytes"))
    if (auto v = size(*n, "limits.max_header_bytes", 1024, 1024 * 1024))
      cfg.limit.max_header_bytes = static_cast<std::size_t>(*v);
  if (const toml::node* n = t->get("max_header_count"))
    if (auto v = integer(*n, "limits.max_header_count", 1, 1000))
      cfg.limit.max_header_count = static_cast<std::size_t>(*v);
  if (const toml::node* n = t->get("max_uri_bytes"))
    if (auto v = size(*n, "limits.max_uri_bytes", 256, 1024 * 1024))
      cfg.limit.max_uri_bytes = static_cast<std::size_t>(*v);
  if (const toml::node* n = t->get("max_request_body"))
    if (auto v = size(*n, "limits.max_request_body", 0, std::numeric_limits<std::uint64_t>::max()))
      cfg.limit.max_request_body = *v;
  if (const toml::node* n = t->get("max_connections"))
    if (auto v = integer(*n, "limits.max_connections", 1, int_max))
      cfg.limit.max_connections = static_cast<std::size_t>(*v);
  if (const toml::node* n = t->get("h2_max_concurrent_streams"))
    if (auto v = integer(*n, "limits.h2_max_concurrent_streams", 1, 1000))
      cfg.limit.h2_max_concurrent_streams = static_cast<std::uint32_t>(*v);
  struct count_field {
    std::string_view name;
    std::size_t limits::*member;
    std::int64_t min, max;
  };
  static constexpr std::array<count_field, 6> counts{{
      {"upstream_fetches", &limits::upstream_fetches, 1, 100000},
      {"upstream_fetches_per_site", &limits::upstream_fetches_per_site, 1, 100000},
      {"upstream_queue", &limits::upstream_queue, 0, 1000000},
      {"misses_per_connection", &limits::misses_per_connection, 1, 100000},
      {"misses_per_client", &limits::misses_per_client, 1, 100000},
      {"client_resets", &limits::client_resets, 1, 1000000},
  }};
  for (const auto& f : counts)
    if (const toml::node* n = t->get(f.name))
      if (auto v = integer(*n, join("limits", f.name), f.min, f.max))
        cfg.limit.*f.member = static_cast<std::size_t>(*v);
  if (const toml::node* n = t->get("client_reset_window"))
    if (auto d = duration(*n, "limits.client_reset_window")) cfg.limit.client_reset_window = *d;
  if (const toml::node* n = t->get("reset_penalty"))
    if (auto d = duration(*n, "limits.reset_penalty")) cfg.limit.reset_penalty = *d;
}

void loader::read_cache(const toml::table& root, config& cfg) {
  const toml::table* t = table(root, "cache");
  if (t == nullptr) return;
  check_keys(*t, "cache", cache_keys, schema);
  constexpr auto size_max = std::numeric_limits<std::uint64_t>::max();
  if (const toml::node* n = t->get("dir"))
    if (auto p = path(*n, "cache.dir")) cfg.cache.dir = *p;
  bool sizes_ok = true;
  if (const toml::node* n = t->get("max_size")) {
    auto v = size(*n, "cache.max_size", 1, size_max);
    if (v) cfg.cache.max_size = *v;
    sizes_ok = v.has_value();
  }
  const toml::node* object = t->get("max_object_size");
  if (object != nullptr) {
    auto v = size(*object, "cache.max_object_size", 1, size_max);
    if (v) cfg.cache.max_object_size = *v;
    sizes_ok = sizes_ok && v.has_value();
  }
  if (const toml::node* n = t->get("finish_orphans_below"))
    if (auto v = size(*n, "cache.finish_orphans_below", 0, size_max))
      cfg.cache.finish_orphans_below = *v;
  if (const toml::node* n = t->get("finish_orphans_after"))
    if (auto v = number(*n, "cache.finish_orphans_after", 0.0, 1.0))
      cfg.cache.finish_orphans_after = *v;
  if (const toml::node* n = t->get("finish_orphans_wanted_by"))
    if (auto v = integer(*n, "cache.finish_orphans_wanted_by", 0, 1000))
      cfg.cache.finish_orphans_wanted_by = static_cast<std::uint32_t>(*v);
  if (const toml::node* n = t->get("orphan_grace"))
    if (auto d = duration(*n, "cache.orphan_grace", zero_duration::allowed))
      cfg.cache.orphan_grace = *d;
  // Unwritten, max_object_size follows max_size: a small cache ("2GiB") is not an error about
  // a key its writer never wrote.
  if (object == nullptr && cfg.cache.max_object_size > cfg.cache.max_size)
    cfg.cache.max_object_size = cfg.cache.max_size;
  // Compared only when both are valid, so one typo is reported once. The default max_size
  // counts: a lone max_object_size above it is as wrong as an explicit pair.
  if (sizes_ok && cfg.cache.max_object_size > cfg.cache.max_size) {
    error(object != nullptr ? where(*object) : where(*t), "cache.max_object_size",
          format_size(cfg.cache.max_object_size) + " is larger than cache.max_size (" +
              format_size(cfg.cache.max_size) + ")");
  }
}

void loader::read_sites(const toml::table& root, config& cfg) {
  const toml::node* n = root.get("site");
  if (n == nullptr) {
    error(position{}, "site", "at least one [[site]] is required");
    return;
  }
  if (n->is_table()) {
    error(*n, "site", "write [[site]] (one per site), not [site]");
    return;
  }
  if (!n->is_array_of_tables()) {
    type_error(*n, "site", "an array of tables ([[site]])");
    return;
  }
  const toml::array& arr = *n->as_array();
  if (arr.empty()) {
    error(*n, "site", "at least one [[site]] is required");
    return;
  }
  cfg.sites.resize(arr.size());
  site_has_cert_.assign(arr.size(), false);
  for (std::size_t i = 0; i < arr.size(); ++i)
    read_site(*arr[i].as_table(), i, cfg.sites[i]);
}

void loader::read_hosts(const toml::table& t, std::size_t index, site& out) {
  std::string prefix = indexed("site", index);
  const toml::node* n = t.get("hosts");
  if (n == nullptr) {
    error(t, join(prefix, "hosts"), "is required, e.g. hosts = [\"learn.example.com\"]");
    return;
  }
  if (!n->is_array()) {
    type_error(*n, join(prefix, "hosts"), "an array of names, e.g. [\"learn.example.com\"]");
    return;
  }
  const toml::array& arr = *n->as_array();
  if (arr.empty()) {
    error(*n, join(prefix, "hosts"), "must list at least one name");
    return;
  }
  for (std::size_t i = 0; i < arr.size(); ++i) {
    std::string key = indexed(join(prefix, "hosts"), i);
    auto text = string_value(arr[i], key);
    if (!text) continue;
    auto colon = text->find(':');
    bool one_colon = colon != std::string::npos && text->find(':', colon + 1) == std::string::npos;
    if (one_colon || text->find("]:") != std::string::npos) {
      error(arr[i], key,
            "'" + *text + "' has a port; hosts are names only (every listen address serves them)");
      continue;
    }
    if (auto why = check_host_name(*text); !why.empty()) {
      error(arr[i], key, why);
      continue;
    }
    std::string host = normalize_host(*text);
    auto [it, fresh] = host_claims_.try_emplace(host, claim{index, where(arr[i])});
    if (!fresh) {
      const claim& c = it->second;
      std::string other = c.site == index ? "this site" : indexed("site", c.site);
      error(arr[i], key,
            "'" + host + "' is also a host of " + other + " (line " + std::to_string(c.at.line) +
                "); a name belongs to one site only");
      continue;
    }
    out.hosts.push_back(std::move(host));
  }
}

void loader::read_site(const toml::table& t, std::size_t index, site& out) {
  std::string prefix = indexed("site", index);
  check_keys(t, prefix, site_keys, schema);
  read_hosts(t, index, out);
  if (out.hosts.empty()) out.hosts.emplace_back();  // keeps name() safe; errors stop the load

  if (const toml::node* n = t.get("allow_http_upstream")) {
    if (auto v = boolean(*n, join(prefix, "allow_http_upstream"))) out.allow_http_upstream = *v;
  }

  const toml::node* up = t.get("upstream");
  std::optional<upstream_url> url;
  if (up == nullptr) {
    error(t, join(prefix, "upstream"), "is required, e.g. upstream = \"https://lms.example.com\"");
  } else if (auto text = string_value(*up, join(prefix, "upstream"))) {
    auto parsed_url = parse_upstream_url(*text);
    if (!parsed_url.ok()) {
      error(*up, join(prefix, "upstream"), parsed_url.error);
    } else if (parsed_url.value.scheme == "http" && !out.allow_http_upstream) {
      error(*up, join(prefix, "upstream"),
            "http:// sends content unencrypted over the WAN; use https://, or set "
            "allow_http_upstream = true in this site if that is really intended");
    } else {
      url = std::move(parsed_url.value);
      out.upstream = *text;
      out.upstream_scheme = url->scheme;
      out.upstream_host = url->host;
      out.upstream_port = url->port;
    }
  }

  site_has_cert_[index] = tls_pair(t, prefix, out.tls);
  if (const toml::node* n = t.get("upstream_ca"))
    if (auto p = readable_file(*n, join(prefix, "upstream_ca"))) out.upstream_ca = *p;

  if (const toml::node* n = t.get("upstream_sni")) {
    if (auto text = string_value(*n, join(prefix, "upstream_sni"))) {
      if (auto why = check_host_name(*text); !why.empty())
        error(*n, join(prefix, "upstream_sni"), why);
      else
        out.upstream_sni = normalize_host(*text);
    }
  } else if (url) {
    out.upstream_sni = url->host;
  }

  if (const toml::node* n = t.get("upstream_host_header")) {
    if (auto text = string_value(*n, join(prefix, "upstream_host_header"))) {
      if (auto why = check_authority(*text); !why.empty())
        error(*n, join(prefix, "upstream_host_header"), why);
      else
        out.upstream_host_header = *text;
    }
  } else if (url) {
    out.upstream_host_header = host_header_for(*url);
  }

  if (const toml::node* n = t.get("upstream_max_idle"))
    if (auto v = integer(*n, join(prefix, "upstream_max_idle"), 0, 1024))
      out.upstream_max_idle = static_cast<std::size_t>(*v);

  read_site_cache(*this, t, prefix, schema, out.cache);
  read_site_access(*this, t, prefix, schema, out.access);
  read_site_signed_urls(*this, t, prefix, schema, out.signed_urls);
  read_site_prefetch(*this, t, prefix, schema, out.prefetch);
  read_site_wan(*this, t, prefix, schema, out.wan);
  auto& dropped = out.cache.ignore_query_params;
  for (auto& name : out.signed_urls.parameters())
    if (std::find(dropped.begin(), dropped.end(), name) == dropped.end())
      dropped.push_back(std::move(name));
}

}  // namespace

std::span<const table_schema> schema_tables() {
  return schema;
}

load_result parse(std::string_view text, std::string_view source_name,
                  const std::filesystem::path& base_dir) {
  load_result result;
  try {
    toml::table root;
    try {
      root = toml::parse(text, source_name);
    } catch (const toml::parse_error& e) {
      const auto& b = e.source().begin;
      result.errors.push_back(
          {std::string(source_name), b.line, b.column, {}, std::string(e.description())});
      return result;
    }
    loader l(source_name, base_dir);
    auto cfg = std::make_shared<config>();
    cfg->source = std::filesystem::path(source_name);
    l.run(root, *cfg);
    result.errors = l.take_errors();
    if (result.errors.empty()) {
      cfg->index_hosts();
      result.cfg = std::move(cfg);
    }
  } catch (const std::exception& e) {
    // Only allocation failure can get here; the caller still gets a diagnostic, not a throw.
    result.cfg = nullptr;
    result.errors.push_back(
        {std::string(source_name), 0, 0, {}, std::string("internal error: ") + e.what()});
  }
  return result;
}

}  // namespace storecache::config
