// Signed-URL verification: what a verifier sees of a request, what it answers, and the
// interface every scheme implements (CloudFront in cloudfront.hpp, nginx secure_link in
// secure_link.hpp, our HMAC scheme in hmac_url.hpp; the schemes are described in
// access/SIGNED_URLS.md).
//
// Why it exists: a site whose origin signs its URLs is cached with the signature parameters
// left out of the cache key, so one stored copy serves every rotation of the signature. The
// proxy must therefore check the signature itself, on every request, hit or miss, before it
// serves anything; otherwise the cache turns protected content into open content.
//
// Pure: bytes, keys and the clock (an argument) in, a result out. No sockets, no Asio, no
// config/ (the proxy maps its config to the settings structs). A verifier is immutable after
// its factory returns and is used from many threads at once; verify() never throws, never
// allocates more than a small multiple of its (capped) input, and leaves OpenSSL's
// thread-local error queue empty.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace storecache::access {

// What a verifier sees of one request. Views into the caller's buffers, valid for the call.
struct signed_request {
  std::string_view scheme = "https";  // as the device used it
  std::string_view host;              // lower-case host the device named, no port
  std::string_view path;              // as received, percent-encoding untouched, no query
  std::string_view query;             // raw query without '?', may be empty
  std::string_view cookies;           // every Cookie header value, joined with "; "
  std::string_view client_ip;         // textual address: "10.1.2.3", "::1"
  std::int64_t now = 0;               // unix seconds
};

enum class signature_result {
  ok,
  missing,         // no signature parameters at all
  malformed,       // present but unusable: bad encoding, duplicate, too long, bad policy...
  bad_signature,   // well-formed, but the signature does not match (forged or tampered)
  expired,         // signature good, expiry (plus clock skew) has passed
  not_yet_valid,   // signature good, start time (minus clock skew) not reached
  unknown_key,     // key id names no configured key (expired keys are simply not configured)
  wrong_ip,        // signature good, bound to another client address
  wrong_resource,  // signature good, for another URL (policy resource, scope)
};

// A short token for logs and metrics labels: "ok", "missing", "malformed", "forged",
// "expired", "not_yet_valid", "unknown_key", "wrong_ip", "wrong_resource".
std::string_view to_string(signature_result r);

class url_verifier {
 public:
  virtual ~url_verifier() = default;
  virtual signature_result verify(const signed_request& request) const = 0;
  // Query parameter names the scheme reads: drop them from the cache key, never log them.
  // Valid as long as the verifier.
  virtual std::span<const std::string_view> parameters() const = 0;
};

// Bounds every scheme applies to the request (larger → malformed).
inline constexpr std::size_t max_parameter_bytes = 8 * 1024;  // one query or cookie value
inline constexpr std::size_t max_policy_bytes = 4 * 1024;     // a decoded CloudFront policy

}  // namespace storecache::access
