// Our own signed-URL scheme for an LMS without a CDN: HMAC-SHA256 over the host, the path (or
// a path prefix), the rest of the query, the expiry and optionally the client address, with
// key ids so secrets rotate. Definition (the exact string to sign) in SIGNED_URLS.md;
// scripts/sign-url signs.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "access/signed_url.hpp"

namespace storecache::access {

struct hmac_key {
  std::string id;           // sc_kid: [A-Za-z0-9._-], 1 to 64 characters
  std::string secret_file;  // the secret, >= 16 bytes after trailing CR/LF are dropped
};

struct hmac_settings {
  std::vector<hmac_key> keys;  // at least one; a retired key is simply left out
  std::chrono::seconds clock_skew{30};
};

std::unique_ptr<url_verifier> make_hmac_verifier(const hmac_settings& settings);

// The bytes signed (SIGNED_URLS.md), for tests and tools:
//   "storecache-url-v1\n" kid "\n" exp "\n" host "\n" ip "\n" mode "\n" target "\n" query
// mode is "path" (target: the path, query: the other parameters) or "prefix" (target: sc_scope,
// query: empty); ip is sc_ip or empty.
struct hmac_fields {
  std::string_view kid, exp, host, ip, target, query;
  bool prefix = false;
};
std::string hmac_string_to_sign(const hmac_fields& f);

}  // namespace storecache::access
