// The small, hot or shared pieces of config.hpp: host normalization and lookup (per request),
// diagnostics, and reading the file. The TOML walk and validation live in loader.cpp.
#include "config/config.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>

namespace storecache::config {
namespace {

char to_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool all_digits(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The host part of an authority, without port, brackets or a trailing dot; nullopt when
// malformed. Shared by normalize_host() and find_site() so both agree on every input.
std::optional<std::string_view> host_part(std::string_view authority) {
  std::string_view host;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = authority.substr(1, close - 1);
    auto rest = authority.substr(close + 1);
    if (!rest.empty() && (rest.front() != ':' || !all_digits(rest.substr(1)))) return std::nullopt;
    return host;  // an IPv6 literal has no trailing dot to strip
  }
  auto colon = authority.find(':');
  if (colon == std::string_view::npos) {
    host = authority;
  } else if (authority.find(':', colon + 1) != std::string_view::npos) {
    host = authority;  // a bare IPv6 literal (SNI never carries one; a Host header must not)
  } else {
    if (!all_digits(authority.substr(colon + 1))) return std::nullopt;
    host = authority.substr(0, colon);
  }
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  return host;
}

}  // namespace

std::string listen_address::text() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

std::string ip_network::text() const {
  char buf[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(v4 ? AF_INET : AF_INET6, bytes.data(), buf, sizeof buf);
  return std::string(buf) + "/" + std::to_string(prefix);
}

std::string diagnostic::to_string() const {
  std::string out = file;
  if (line != 0) {
    out += ":" + std::to_string(line);
    if (column != 0) out += ":" + std::to_string(column);
  }
  out += ": ";
  if (!key.empty()) out += key + ": ";
  out += message;
  return out;
}

std::string normalize_host(std::string_view authority) {
  auto host = host_part(authority);
  if (!host) return {};
  std::string out(*host);
  for (char& c : out)
    c = to_lower(c);
  return out;
}

void config::index_hosts() {
  host_index_.clear();
  for (std::size_t i = 0; i < sites.size(); ++i)
    for (const auto& h : sites[i].hosts)
      host_index_.emplace_back(normalize_host(h), i);
  std::sort(host_index_.begin(), host_index_.end());
}

const site* config::find_site(std::string_view authority) const {
  auto host = host_part(authority);
  // 253 is the longest DNS name; anything longer cannot be configured, so no need to copy it.
  std::array<char, 256> buf;
  if (!host || host->empty() || host->size() > buf.size()) return nullptr;
  std::transform(host->begin(), host->end(), buf.begin(), to_lower);
  std::string_view wanted(buf.data(), host->size());

  if (host_index_.empty()) {
    for (const auto& s : sites)
      for (const auto& h : s.hosts)
        if (normalize_host(h) == wanted) return &s;
    return nullptr;
  }
  auto it = std::lower_bound(host_index_.begin(), host_index_.end(), wanted,
                             [](const auto& entry, std::string_view v) { return entry.first < v; });
  if (it == host_index_.end() || it->first != wanted || it->second >= sites.size()) return nullptr;
  return &sites[it->second];
}

bool glob_match(std::string_view pattern, std::string_view path) {
  // Greedy, remembering only the last '*': on a mismatch after it, that star takes one more
  // character and matching resumes. An earlier star never needs revisiting, because anything
  // an earlier star could absorb the last one can absorb instead.
  constexpr auto none = std::string_view::npos;
  std::size_t p = 0;
  std::size_t i = 0;
  std::size_t star = none;
  std::size_t star_i = 0;  // where in path the last star's run ends
  while (i < path.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      star_i = i;
    } else if (p < pattern.size() && pattern[p] == path[i]) {
      ++p;
      ++i;
    } else if (star != none) {
      p = star + 1;
      i = ++star_i;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*')
    ++p;
  return p == pattern.size();
}

const path_rule* match_rule(const site_cache_policy& policy, std::string_view path) {
  for (const auto& rule : policy.rules)
    if (glob_match(rule.pattern, path)) return &rule;
  return nullptr;
}

const access_rule* match_access_rule(const site_access& access, std::string_view path) {
  for (const auto& rule : access.rules)
    if (glob_match(rule.pattern, path)) return &rule;
  return nullptr;
}

load_result load(const std::filesystem::path& file) {
  try {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      int err = errno;
      load_result r;
      r.errors.push_back(
          {file.string(), 0, 0, {}, std::string("cannot open: ") + std::strerror(err)});
      return r;
    }
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) {
      load_result r;
      r.errors.push_back({file.string(), 0, 0, {}, "cannot read the file"});
      return r;
    }
    auto base = file.parent_path();
    if (base.empty()) base = ".";
    // parse() records source_name as config::source: the file a reload reads again.
    return parse(text.str(), file.string(), base);
  } catch (const std::exception& e) {
    load_result r;
    r.errors.push_back({file.string(), 0, 0, {}, std::string("internal error: ") + e.what()});
    return r;
  }
}

std::string_view to_string(signed_url_scheme s) {
  switch (s) {
    case signed_url_scheme::upstream:
      return "upstream";
    case signed_url_scheme::none:
      return "none";
    case signed_url_scheme::cloudfront:
      return "cloudfront";
    case signed_url_scheme::secure_link:
      return "secure_link";
    case signed_url_scheme::hmac:
      return "hmac";
  }
  return "?";
}

std::uint64_t wan_settings::rate_at(int minute) const {
  for (const auto& w : windows)
    if (w.hours.contains(minute)) return w.rate;
  return rate;
}

std::string_view to_string(prefetch_kind k) {
  switch (k) {
    case prefetch_kind::detect:
      return "detect";
    case prefetch_kind::url_list:
      return "url_list";
    case prefetch_kind::ims_manifest:
      return "ims_manifest";
    case prefetch_kind::hls:
      return "hls";
    case prefetch_kind::cmi5:
      return "cmi5";
  }
  return "?";
}

std::vector<std::string> site_signed_urls::parameters() const {
  switch (scheme) {
    case signed_url_scheme::cloudfront:
      return {"Expires", "Signature", "Key-Pair-Id", "Policy", "Hash-Algorithm"};
    case signed_url_scheme::hmac:
      return {"sc_exp", "sc_kid", "sc_sig", "sc_ip", "sc_scope"};
    case signed_url_scheme::secure_link:
      return {md5_param, expires_param};
    case signed_url_scheme::upstream:
    case signed_url_scheme::none:
      break;
  }
  return {};
}

}  // namespace storecache::config
