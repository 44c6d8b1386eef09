// CloudFront signed URLs and signed cookies, verified offline with the distribution's public
// keys: canned policies (Expires), custom policies (Policy: resource wildcards, start time,
// client address), RSA and ECDSA P-256 keys, SHA-1 or, with Hash-Algorithm=SHA256, SHA-256.
// Semantics and our choices (query wins over cookies, Resource required) in SIGNED_URLS.md.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "access/signed_url.hpp"

namespace storecache::access {

struct cloudfront_key {
  std::string id;               // the Key-Pair-Id that selects it (a CloudFront public key id)
  std::string public_key_path;  // PEM "PUBLIC KEY": RSA >= 2048 bits or EC P-256
};

struct cloudfront_settings {
  std::vector<cloudfront_key> keys;     // at least one; a retired key is simply left out
  std::chrono::seconds clock_skew{30};  // tolerance for expiry and start times
  bool signed_cookies = true;           // also accept CloudFront-* cookies
};

// Reads the key files; throws std::runtime_error naming the file (or the setting) and what is
// wrong: unreadable, not a PEM public key, a private key, an unsupported type or size.
std::unique_ptr<url_verifier> make_cloudfront_verifier(const cloudfront_settings& settings);

}  // namespace storecache::access
