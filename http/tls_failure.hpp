// Why a client's TLS handshake failed, reduced to a small fixed set (the reason label of
// storecache_tls_handshake_failures_total).
#pragma once

#include <boost/system/error_code.hpp>
#include <cstdint>
#include <string_view>

namespace storecache::http {

enum class tls_failure : std::uint8_t {
  timeout,      // no complete handshake within timeouts.client_header
  closed,       // the client closed or reset the connection mid-handshake
  version,      // no TLS version in common (e.g. a TLS 1.0/1.1-only client)
  cipher,       // no cipher suite / group in common
  certificate,  // the client rejected our certificate (alert: unknown CA, bad certificate...)
  plain_http,   // the client spoke plain HTTP to the TLS port
  other,
};
inline constexpr std::size_t tls_failure_count = 7;

// From the error of async_handshake (OpenSSL's reason, an EOF, or operation_aborted/timeout).
tls_failure classify_tls_failure(const boost::system::error_code& ec);
std::string_view label(tls_failure f);  // "timeout", "closed", ...

// Whether a handshake failed because we refused the client's certificate (none sent, or it did
// not verify): an access denial (client_cert), not a TLS failure.
bool refused_client_certificate(const boost::system::error_code& ec);

}  // namespace storecache::http
