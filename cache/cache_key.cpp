#include "cache/cache_key.hpp"

#include <algorithm>

#include "cache/cache_control.hpp"

namespace storecache::cache {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 3986 §2.3 unreserved.
bool is_unreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

constexpr char hex_digits[] = "0123456789ABCDEF";

// Fields whose values are case-insensitive by their grammar: lower-casing them merges
// variants that are the same to every origin.
bool case_insensitive_value(std::string_view name) {
  return name == "accept-encoding" || name == "accept-language" || name == "accept-charset";
}

}  // namespace

bool query_param_dropped(std::string_view name, const key_rules& rules) {
  for (const auto& rule : rules.dropped_query_params) {
    if (!rule.empty() && rule.back() == '*') {
      if (name.starts_with(std::string_view(rule).substr(0, rule.size() - 1))) return true;
    } else if (name == rule) {
      return true;
    }
  }
  return false;
}

std::string normalize_authority(std::string_view scheme, std::string_view authority) {
  std::string_view host = authority, port;
  if (authority.starts_with('[')) {
    auto close = authority.find(']');
    if (close != std::string_view::npos) {
      host = authority.substr(0, close + 1);
      auto rest = authority.substr(close + 1);
      if (rest.starts_with(':')) port = rest.substr(1);
    }
  } else if (auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.ends_with('.') && host.size() > 1) host.remove_suffix(1);
  std::string out = to_lower(host);
  // Leading zeros do not change a port; the default port is the same as none.
  while (port.size() > 1 && port.front() == '0')
    port.remove_prefix(1);
  const bool is_default =
      (iequals(scheme, "https") && port == "443") || (iequals(scheme, "http") && port == "80");
  if (!port.empty() && !is_default) {
    out.push_back(':');
    out.append(port);
  }
  return out;
}

std::string normalize_percent_encoding(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      auto c = static_cast<unsigned char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      // A decoded hex digit right after a stray '%' ("%%2%41", "%%61b") would make a triplet
      // that was not there ("%2A"), and two different URLs one key: keep it encoded.
      const auto n = out.size();
      const bool joins_stray =
          hex_value(static_cast<char>(c)) >= 0 && n > 0 &&
          (out[n - 1] == '%' || (n > 1 && out[n - 2] == '%' && hex_value(out[n - 1]) >= 0));
      if (is_unreserved(c) && !joins_stray) {
        out.push_back(static_cast<char>(c));
      } else {
        out.push_back('%');
        out.push_back(hex_digits[c >> 4]);
        out.push_back(hex_digits[c & 0xf]);
      }
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::string filter_query(std::string_view query, const key_rules& rules) {
  std::string out;
  while (!query.empty()) {
    auto amp = query.find('&');
    auto param = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (param.empty()) continue;
    auto normalized = normalize_percent_encoding(param);
    auto name = std::string_view(normalized).substr(0, normalized.find('='));
    if (query_param_dropped(name, rules)) continue;
    if (!out.empty()) out.push_back('&');
    out.append(normalized);
  }
  return out;
}

std::vector<std::string> dropped_query_names(std::string_view target, const key_rules& rules) {
  std::vector<std::string> out;
  target = target.substr(0, target.find('#'));
  auto qmark = target.find('?');
  if (qmark == std::string_view::npos || rules.dropped_query_params.empty()) return out;
  std::string_view query = target.substr(qmark + 1);
  while (!query.empty()) {
    auto amp = query.find('&');
    auto param = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (param.empty()) continue;
    auto normalized = normalize_percent_encoding(param.substr(0, param.find('=')));
    if (query_param_dropped(normalized, rules)) out.push_back(std::move(normalized));
  }
  return out;
}

std::string primary_key(std::string_view scheme, std::string_view authority,
                        std::string_view target, const key_rules& rules) {
  target = target.substr(0, target.find('#'));
  auto qmark = target.find('?');
  auto path = target.substr(0, qmark);
  std::string key = to_lower(scheme);
  key.append("://");
  key.append(normalize_authority(scheme, authority));
  key.append(path.empty() ? std::string("/") : normalize_percent_encoding(path));
  if (qmark != std::string_view::npos) {
    auto query = filter_query(target.substr(qmark + 1), rules);
    if (!query.empty()) {
      key.push_back('?');
      key.append(query);
    }
  }
  return key;
}

// --- Vary ------------------------------------------------------------------------------------

std::optional<std::vector<std::string>> vary_field_names(const header_list& response_headers) {
  std::vector<std::string> names;
  auto vary = combined_field(response_headers, "vary");
  if (!vary) return names;
  for (auto element : split_list(*vary)) {
    if (element == "*") return std::nullopt;
    names.push_back(to_lower(element));
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

std::string secondary_key_for(const std::vector<std::string>& names,
                              const header_list& request_headers) {
  std::string key;
  for (const auto& name : names) {
    if (!key.empty()) key.push_back('\n');
    key.append(name);
    auto value = combined_field(request_headers, name);
    if (!value) {
      key.push_back('!');
      continue;
    }
    key.push_back(':');
    bool first = true;
    for (auto element : split_list(*value)) {
      if (!first) key.push_back(',');
      first = false;
      key.append(case_insensitive_value(name) ? to_lower(element) : std::string(element));
    }
  }
  return key;
}

std::optional<std::string> secondary_key(const header_list& response_headers,
                                         const header_list& request_headers) {
  auto names = vary_field_names(response_headers);
  if (!names) return std::nullopt;
  return secondary_key_for(*names, request_headers);
}

bool variant_matches(const header_list& stored_response_headers,
                     std::string_view stored_secondary_key, const header_list& request_headers) {
  auto key = secondary_key(stored_response_headers, request_headers);
  return key && *key == stored_secondary_key;
}

std::string full_key(std::string_view primary, std::string_view secondary) {
  std::string key(primary);
  if (!secondary.empty()) {
    key.push_back('\n');
    key.append(secondary);
  }
  return key;
}

// --- Fingerprint
// ------------------------------------------------------------------------------------

key_fingerprint fnv1a_128(std::string_view key) {
  // FNV-1a 128: offset basis 0x6c62272e07bb014262b821756295c58d,
  // prime 2^88 + 2^8 + 0x3b = 0x0000000001000000000000000000013B.
  __extension__ using u128 = unsigned __int128;
  u128 h = (u128(0x6c62272e07bb0142ULL) << 64) | 0x62b821756295c58dULL;
  const u128 prime = (u128(0x0000000001000000ULL) << 64) | 0x000000000000013BULL;
  for (char c : key) {
    h ^= static_cast<unsigned char>(c);
    h *= prime;
  }
  return {static_cast<std::uint64_t>(h >> 64), static_cast<std::uint64_t>(h)};
}

std::array<std::uint8_t, 16> key_fingerprint::bytes() const {
  std::array<std::uint8_t, 16> out{};
  for (int i = 0; i < 8; ++i) {
    out[i] = static_cast<std::uint8_t>(hi >> (56 - 8 * i));
    out[8 + i] = static_cast<std::uint8_t>(lo >> (56 - 8 * i));
  }
  return out;
}

std::string key_fingerprint::hex() const {
  std::string out;
  for (auto b : bytes()) {
    out.push_back("0123456789abcdef"[b >> 4]);
    out.push_back("0123456789abcdef"[b & 0xf]);
  }
  return out;
}

}  // namespace storecache::cache
