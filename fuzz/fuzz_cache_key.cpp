// Cache keys and query canonicalisation (cache/cache_key.hpp): the request's scheme,
// authority and target with a site's ignore_query_params, Vary's secondary keys, the signed
// requests' own key (access/signed_requests.hpp), and the host and path matching that picks
// the site and its rules (config/config.hpp). Input: "<authority>\n<target>\n<dropped
// parameter patterns, comma-separated>\n<Vary>\n<request Accept-Encoding>".
#include <cctype>
#include <cstdint>
#include <string>

#include "access/signed_requests.hpp"
#include "cache/cache_key.hpp"
#include "config/config.hpp"
#include "fuzz/fuzz_check.hpp"

using namespace storecache::cache;

namespace {

// host [":" port] with host letters, digits, '-' and '.' (no empty label but the root's one
// trailing dot), port digits.
bool reg_name_and_port(std::string_view a) {
  const auto colon = a.find(':');
  const auto host = a.substr(0, colon);
  if (host.find("..") != std::string_view::npos || host.starts_with('.')) return false;
  const auto port = colon == std::string_view::npos ? std::string_view{} : a.substr(colon + 1);
  for (const char c : host)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') return false;
  for (const char c : port)
    if (c < '0' || c > '9') return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const storecache::fuzz::fields<5> in(storecache::fuzz::as_text(data, size));
  const std::string_view authority = in.part[0], target = in.part[1];
  key_rules rules;
  for (std::string_view rest = in.part[2]; !rest.empty();) {
    const auto comma = rest.find(',');
    rules.dropped_query_params.emplace_back(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
  }

  // Percent-encoding normalization is idempotent, and a key is made of normalized parts.
  const std::string normalized = normalize_percent_encoding(target);
  FUZZ_CHECK(normalize_percent_encoding(normalized) == normalized);
  for (const std::string_view scheme : {"https", "http"}) {
    // Idempotent for a name and port as a routed request carries them (a malformed authority,
    // ":" inside the name or "a..", routes to no site and is keyed as it comes).
    const std::string host = normalize_authority(scheme, authority);
    if (reg_name_and_port(authority)) FUZZ_CHECK(normalize_authority(scheme, host) == host);
    const std::string key = primary_key(scheme, authority, target, rules);
    FUZZ_CHECK(key.starts_with(std::string(scheme) + "://"));
    // '\n' separates the primary from the secondary key: a URL must not bring its own.
    if (authority.find('\n') == std::string_view::npos)
      FUZZ_CHECK(key.find('\n') == std::string::npos);
    const std::string signed_key = storecache::access::signed_variant(key);
    FUZZ_CHECK(signed_key != key);
  }
  const auto qmark = target.find('?');
  if (qmark != std::string_view::npos) {
    const std::string kept = filter_query(target.substr(qmark + 1), rules);
    FUZZ_CHECK(filter_query(kept, rules) == kept);
  }
  for (const auto& name : dropped_query_names(target, rules)) {
    FUZZ_CHECK(query_param_dropped(name, rules));
    storecache::access::signature_looking(name);
  }

  const header_list response = {{"vary", std::string(in.part[3])}};
  const header_list request = {{"accept-encoding", std::string(in.part[4])},
                               {"accept-language", std::string(in.part[2])}};
  if (const auto names = vary_field_names(response)) {
    for (std::size_t i = 1; i < names->size(); ++i)
      FUZZ_CHECK((*names)[i - 1] < (*names)[i]);  // sorted, no duplicates
    const auto secondary = secondary_key(response, request);
    FUZZ_CHECK(secondary.has_value());
    FUZZ_CHECK(variant_matches(response, *secondary, request));
    full_key(normalized, *secondary);
  }
  FUZZ_CHECK(fnv1a_128(target).hex().size() == 32);

  // A host, lower-cased (the result names a host, not an authority: "[::1]:1" gives "::1").
  for (const char c : storecache::config::normalize_host(authority))
    FUZZ_CHECK(c < 'A' || c > 'Z');
  storecache::config::glob_match(in.part[2], target.substr(0, qmark));
  return 0;
}
