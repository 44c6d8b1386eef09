// The validated, frozen configuration of one storecache process.
//
// Life cycle: load() parses a TOML file, validates every key and returns either a config or a
// list of diagnostics that name file, line and key. A loaded config is immutable and shared as
// std::shared_ptr<const config>; a reload (SIGHUP) builds a new one and swaps the pointer.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/time_window.hpp"

namespace storecache::config {

// A client network of allow_clients: "10.0.0.0/8", "fd00::/8", or a bare address "127.0.0.2"
// (= /32, /128). IPv4 stays IPv4: an IPv4-mapped network ("::ffff:10.0.0.0/104") is read as
// 10.0.0.0/8, and an IPv4-mapped client address matches IPv4 networks (access/networks.hpp).
struct ip_network {
  bool v4 = true;
  std::array<std::uint8_t, 16> bytes{};  // the network address; IPv4 uses the first 4
  unsigned prefix = 0;                   // 0..32 (IPv4) or 0..128 (IPv6)
  std::string text() const;              // "10.0.0.0/8", "fd00::/8"
};

// "0.0.0.0:443", "[::]:443", "127.0.0.1:9090". host is the literal address without brackets.
struct listen_address {
  std::string host;
  std::uint16_t port = 0;
  // [server] listeners only: the clients it admits at accept (before TLS); empty: everyone.
  // The listener's own allow_clients, else [server].allow_clients (load() resolves it).
  std::vector<ip_network> allow_clients;
  std::string text() const;  // as it would be written in the config
};

struct timeouts {
  std::chrono::milliseconds client_header{std::chrono::seconds(10)};    // whole request head
  std::chrono::milliseconds client_idle{std::chrono::seconds(60)};      // keep-alive / h2 idle
  std::chrono::milliseconds upstream_connect{std::chrono::seconds(5)};  // TCP + TLS
  std::chrono::milliseconds upstream_first_byte{std::chrono::seconds(30)};
  std::chrono::milliseconds upstream_idle{std::chrono::seconds(30)};   // between body reads
  std::chrono::milliseconds shutdown_grace{std::chrono::seconds(30)};  // SIGTERM drain
  // How long a request may wait for an upstream slot (limits.upstream_fetches) before 503.
  std::chrono::milliseconds upstream_queue{std::chrono::seconds(10)};
};

struct limits {
  std::size_t max_header_bytes = 16 * 1024;  // request head, h1 and h2 (decoded)
  std::size_t max_header_count = 100;
  std::size_t max_uri_bytes = 8 * 1024;  // request-target (h1) or :path (h2); over: 414
  // Request body (h1 and h2); over: 413. Quiz answers and SCORM tracking are small.
  std::uint64_t max_request_body = 10 * 1024 * 1024;
  std::size_t max_connections = 10000;  // client connections, whole process
  std::uint32_t h2_max_concurrent_streams = 100;

  // The WAN's protection against one device (issue: one device pulls gigabytes).
  std::size_t upstream_fetches = 64;           // upstream requests at once, all sites
  std::size_t upstream_fetches_per_site = 32;  // upstream requests at once, per site
  std::size_t upstream_queue = 1024;           // requests waiting for a slot; over: 503
  // Cold misses one client connection / address leads at once; more wait (upstream_queue).
  std::size_t misses_per_connection = 16;
  std::size_t misses_per_client = 16;
  // Requests a client abandons (HTTP/2 RST_STREAM, HTTP/1.1 close) before their response
  // completed, per client_reset_window: beyond, the HTTP/2 connection gets GOAWAY
  // (ENHANCE_YOUR_CALM) and the address may start no upstream fetch for reset_penalty.
  std::size_t client_resets = 100;
  std::chrono::milliseconds client_reset_window{std::chrono::seconds(10)};
  std::chrono::milliseconds reset_penalty{std::chrono::seconds(30)};
};

struct tls_files {
  std::filesystem::path cert;  // PEM chain
  std::filesystem::path key;   // PEM private key
  bool empty() const { return cert.empty(); }
};

// A path rule of a site's cache policy; the first rule whose pattern matches the path wins.
// Patterns: "*" matches any run of characters (including '/'); everything else is literal;
// the pattern must match the whole path (query excluded): "/api/*", "*.mp4", "/media/*/hls/*".
struct path_rule {
  std::string pattern;
  std::optional<std::chrono::seconds> ttl;  // force this freshness lifetime (origin overridden)
  bool bypass = false;                      // never store, never serve from cache
  // Content behind the LMS's login: stored once and shared, but every request is first
  // authorized by the upstream with the device's own credentials (a HEAD, headers only).
  bool authorize_with_upstream = false;
};

struct site_cache_policy {
  bool enabled = true;                  // false: this site is a pure pass-through proxy
  std::chrono::seconds default_ttl{0};  // responses with no freshness information at all
  std::vector<path_rule> rules;
  // Query parameters dropped from the cache key: exact names, or a prefix ending in '*'.
  // Signed-URL parameters rotate on every page load and would defeat the cache.
  std::vector<std::string> ignore_query_params{"Expires", "Signature", "Key-Pair-Id", "Policy",
                                               "X-Amz-*"};
  std::chrono::seconds stale_if_error{std::chrono::hours(24 * 7)};  // origin down: serve stale
  double heuristic_fraction = 0.1;  // of Date - Last-Modified when no explicit lifetime
  std::chrono::seconds heuristic_max{std::chrono::hours(24)};
  bool cdn_cache_control = true;  // honour RFC 9213 CDN-Cache-Control
  // How long an upstream authorization (authorize_with_upstream, signed_urls "upstream") is
  // remembered for the same credentials and URL; 0: every request asks.
  std::chrono::seconds authorize_cache{0};
};

// [site.signed_urls]: who may have a stored copy of content the upstream protects with signed
// URLs, whose signature parameters ignore_query_params leaves out of the cache key.
enum class signed_url_scheme {
  // No verifier: a request carrying a signature-looking parameter that the key drops is keyed
  // apart from unsigned requests and authorized by the upstream (a HEAD with the device's URL)
  // before a stored copy is served. The default.
  upstream,
  none,         // the dropped parameters protect nothing: stored copies are served to anyone
  cloudfront,   // CloudFront signed URLs and cookies, verified here with the keys below
  secure_link,  // nginx secure_link (MD5 with expiry), verified here
  hmac,         // storecache's HMAC-SHA256 scheme (access/SIGNED_URLS.md), verified here
};
std::string_view to_string(signed_url_scheme s);

struct signed_url_key {
  std::string id;              // Key-Pair-Id (cloudfront) or sc_kid (hmac)
  std::filesystem::path file;  // PEM public key (cloudfront) or secret file (hmac)
};

struct site_signed_urls {
  signed_url_scheme scheme = signed_url_scheme::upstream;
  std::vector<std::string> paths{"*"};  // verifier schemes: the paths that must be signed
  std::chrono::seconds clock_skew{30};  // tolerance on expiry and start times
  std::vector<signed_url_key> keys;     // cloudfront, hmac
  bool cookies = true;                  // cloudfront: accept signed cookies too
  // secure_link: nginx's secure_link_md5 expression; "$secret" is replaced by secret_file's
  // contents. The parameters as in nginx's `secure_link $arg_md5,$arg_expires`.
  std::string secure_link_md5 = "$secure_link_expires$uri $secret";
  std::filesystem::path secret_file;
  std::string md5_param = "md5";
  std::string expires_param = "expires";

  bool verifies() const {
    return scheme == signed_url_scheme::cloudfront || scheme == signed_url_scheme::secure_link ||
           scheme == signed_url_scheme::hmac;
  }
  // The query parameters a verified scheme signs with. load() adds them to the site's
  // ignore_query_params: they change with every link and must not split the cache.
  std::vector<std::string> parameters() const;
};

// Device certificates (mTLS): whether a client certificate is asked for, and how it is
// verified. off: never asked. optional: asked; a connection without one (or with one that does
// not verify) proceeds unverified, and path rules may demand one (403). required: no valid
// certificate, no TLS.
enum class client_cert_mode { off, optional, required };
// What the access log shows of a verified client certificate.
enum class client_cert_log { sha256, subject, off };

struct client_cert_policy {
  client_cert_mode mode = client_cert_mode::off;
  std::filesystem::path ca;                // PEM bundle of the CAs that issue device certificates
  std::vector<std::filesystem::path> crl;  // PEM CRLs, re-read on reload
  client_cert_log log = client_cert_log::sha256;
  bool empty() const { return mode == client_cert_mode::off; }
};

// A path rule of a site's access policy ([[site.access.rule]]); the first rule whose pattern
// matches the path (glob_match, as path_rule) decides. Open to more demands (signed URLs...).
struct access_rule {
  std::string pattern;
  bool client_cert = false;  // demand a certificate verified by this site's client_ca
};

struct site_access {
  std::vector<ip_network> allow_clients;  // empty: every client
  client_cert_policy client;              // client_ca, client_certs, client_crl, log_client_cert
  std::vector<access_rule> rules;
};

// What prefetch reads a listing as ([[site.prefetch]] kind); detect: from its content.
enum class prefetch_kind { detect, url_list, ims_manifest, hls, cmi5 };
std::string_view to_string(prefetch_kind k);

// One [[site.prefetch]]: a listing on the site's upstream (a URL list, an IMS/SCORM manifest,
// an HLS playlist, a cmi5 course structure) whose objects are fetched into the cache ahead of
// the devices, inside its time windows, re-read every interval.
struct prefetch_source {
  std::string name;  // the metrics label; unwritten: the path
  std::string path;  // on the site: "/courses/safety/imsmanifest.xml"
  prefetch_kind kind = prefetch_kind::detect;
  std::vector<time_window> windows;  // local time; empty: always
  std::chrono::seconds interval{std::chrono::hours(1)};
  bool hls_lowest_and_highest = false;  // hls_variants: "all" (default) or "lowest_and_highest"
  bool pin = false;  // eviction keeps what it lists (up to [prefetch] max_pinned, all sources)
};

// [wan]: what storecache may read from all upstreams together, in bytes per second (0: no
// cap), by local time: the first [[wan.window]] containing the minute, else `rate`.
struct wan_window {
  time_window hours;
  std::uint64_t rate = 0;
  bool operator==(const wan_window&) const = default;
};
struct wan_settings {
  std::uint64_t rate = 0;
  std::vector<wan_window> windows;
  // The cap in force at a local minute of the day (0..1439); 0: none.
  std::uint64_t rate_at(int minute) const;
  bool operator==(const wan_settings&) const = default;
};

struct site {
  std::vector<std::string> hosts;  // lower-case names devices use (SNI and Host); first = name
  std::string upstream;            // as written: "https://lms.example.com:8443"
  std::string upstream_scheme;     // "https" or "http" (http only with allow_http_upstream)
  std::string upstream_host;       // "lms.example.com" (no brackets for IPv6)
  std::uint16_t upstream_port = 443;
  std::string upstream_sni;           // SNI and certificate name to verify; default upstream_host
  std::string upstream_host_header;   // Host sent upstream; default upstream host[:port]
  std::filesystem::path upstream_ca;  // empty: the system trust store
  bool allow_http_upstream = false;
  tls_files tls;                          // empty: the server's default certificate
  std::size_t upstream_max_idle = 16;     // idle keep-alive connections kept per worker
  site_cache_policy cache;                // [site.cache]
  site_access access;                     // [site.access]
  site_signed_urls signed_urls;           // [site.signed_urls]
  std::vector<prefetch_source> prefetch;  // [[site.prefetch]]
  wan_settings wan;                       // [site.wan]: this site's own cap (0: none)

  const std::string& name() const { return hosts.front(); }
};

struct cache_settings {
  std::filesystem::path dir = "/var/cache/storecache";
  std::uint64_t max_size = 10ull << 30;
  std::uint64_t max_object_size = 4ull << 30;  // unwritten: at most max_size
  // A fill whose every client has gone stops (the partial body is discarded) unless one of
  // these holds: the object is at most finish_orphans_below bytes (declared length), at least
  // finish_orphans_after of it has arrived, or finish_orphans_wanted_by client addresses or
  // more asked for it. Background fills (stale-while-revalidate) always finish.
  std::uint64_t finish_orphans_below = 1024 * 1024;
  double finish_orphans_after = 0.5;           // 0..1; 1: never for this reason
  std::uint32_t finish_orphans_wanted_by = 2;  // 0: never for this reason
  // An orphan that would stop first pauses (reads nothing from upstream, holds no upstream
  // slot) this long for a client to come back: players probe, fetch range by range, cancel
  // and re-request.
  std::chrono::milliseconds orphan_grace{std::chrono::seconds(5)};
};

// [prefetch]: what every site's prefetch shares.
struct prefetch_settings {
  unsigned connections = 2;                     // upstream fetches at once, all sites together
  std::uint64_t max_listing_size = 8ull << 20;  // a bigger listing is refused
  std::uint64_t max_entries = 100000;           // per source, nested listings included
  unsigned max_depth = 3;                       // listings that list listings
  // Reading one listing in all (a trickling upstream gives up), on top of the read timeout.
  std::chrono::seconds listing_timeout{120};
  // Pinned bytes of every source together; the loader sets half of [cache] max_size unless
  // written (it must be below max_size).
  std::uint64_t max_pinned = 0;
};

struct server_settings {
  std::vector<listen_address> listen;
  unsigned workers = 0;  // 0: one per core (resolved by the daemon, not here)
  // empty: the first site's certificate. load() fills it in (from [server], else from the first
  // site that has one), so a loaded config never has it empty.
  tls_files default_tls;
  // Clients every listener admits unless it has its own list (see listen_address).
  std::vector<ip_network> allow_clients;
  // Device certificates for connections that name no site (no SNI, or an unknown name).
  client_cert_policy client;
};

struct admin_settings {
  listen_address listen{"127.0.0.1", 9090, {}};
};

// [log]. Levels are syslog priorities, the numbers journald shows ("<6>" = info).
enum class log_level : int { err = 3, warning = 4, notice = 5, info = 6, debug = 7 };

// Where access-log lines go: stderr (the journal under systemd, with a priority prefix), an
// append-only file reopened on SIGUSR1 (logrotate), or nowhere.
enum class access_log_target { stderr_journal, file, off };

// What the access log keeps of a request's query. Signed URLs carry their credential in it
// (Signature=, X-Amz-Signature=, Policy=...), so by default it is replaced by "?…".
enum class access_log_query { redact, drop, keep };

struct log_settings {
  log_level level = log_level::info;  // the command line's --log-level takes precedence
  access_log_target access_log = access_log_target::stderr_journal;
  std::filesystem::path access_log_file;  // absolute; set when access_log is file
  access_log_query query = access_log_query::redact;
};

struct config {
  std::filesystem::path source;  // the file it was loaded from
  server_settings server;
  admin_settings admin;
  log_settings log;
  timeouts timeout;
  limits limit;
  cache_settings cache;
  prefetch_settings prefetch;
  wan_settings wan;
  std::vector<site> sites;

  // The site a client-facing name belongs to (case-insensitive, port and a trailing dot
  // ignored), or nullptr. Runs per request: a binary search without allocation.
  const site* find_site(std::string_view host) const;

  // Rebuilds the name index behind find_site(). load() calls it; a config built by hand (in a
  // test) works without it, through a linear scan.
  void index_hosts();

 private:
  std::vector<std::pair<std::string, std::size_t>> host_index_;  // sorted (host, site index)
};

// One problem found while loading: where it is and what is wrong.
struct diagnostic {
  std::string file;
  std::size_t line = 0;  // 1-based; 0 when the problem has no single place
  std::size_t column = 0;
  std::string key;  // dotted path: "site[2].upstream", "timeouts.client_idle"
  std::string message;
  std::string to_string() const;  // "file:line:column: key: message"
};

struct load_result {
  std::shared_ptr<const config> cfg;  // null when errors is not empty
  std::vector<diagnostic> errors;
  bool ok() const { return cfg != nullptr; }
};

// Reads and validates a config file. Never throws.
load_result load(const std::filesystem::path& file);
// Same, from text already in memory; source_name is used in diagnostics; relative paths in
// the text are resolved against base_dir.
load_result parse(std::string_view text, std::string_view source_name,
                  const std::filesystem::path& base_dir = ".");

// Whether pattern (as described at path_rule) matches the whole of path. Case-sensitive, as
// paths are; no allocation, no recursion; worst case O(pattern * path), linear in practice.
bool glob_match(std::string_view pattern, std::string_view path);

// The first rule of policy whose pattern matches path, or nullptr. path is the request path as
// received, without the query (the caller strips it). Runs per request.
const path_rule* match_rule(const site_cache_policy& policy, std::string_view path);

// The first access rule of a site whose pattern matches path, or nullptr.
const access_rule* match_access_rule(const site_access& access, std::string_view path);

// Strips an optional ":port" and lower-cases: "Learn.Example.com:443" -> "learn.example.com".
// IPv6 loses its brackets ("[::1]:8443" -> "::1"), as the hosts of a loaded config are written;
// one trailing dot goes ("example.com." is the same name). Malformed input ("[::1", "h:1x")
// gives "", which matches no site.
std::string normalize_host(std::string_view authority);

}  // namespace storecache::config
