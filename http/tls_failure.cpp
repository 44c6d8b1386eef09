#include "http/tls_failure.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/error.hpp>

namespace storecache::http {

namespace {

// OpenSSL's reason for a failed handshake, as a server sees it (checked against OpenSSL 3.0 by
// poking the daemon; tests/integration/test_metrics_format.py repeats the common ones). Alerts
// the client sent us arrive as SSL_R_*ALERT* reasons (SSL_AD_REASON_OFFSET + alert number).
tls_failure from_openssl_reason(int reason) {
  switch (reason) {
    case SSL_R_UNSUPPORTED_PROTOCOL:  // ClientHello offers only versions we disabled (TLS 1.1)
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_NO_PROTOCOLS_AVAILABLE:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
    case SSL_R_TLSV1_ALERT_INAPPROPRIATE_FALLBACK:
      return tls_failure::version;
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_NO_SHARED_GROUPS:
    case SSL_R_NO_SUITABLE_KEY_SHARE:
    case SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM:
    case SSL_R_NO_SUITABLE_GROUPS:
    case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:  // what a client with no suite in common sends
    case SSL_R_TLSV1_ALERT_INSUFFICIENT_SECURITY:
      return tls_failure::cipher;
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
      return tls_failure::certificate;
    case SSL_R_HTTP_REQUEST:         // "GET ", "POST", "HEAD", "PUT " where a record belongs
    case SSL_R_HTTPS_PROXY_REQUEST:  // "CONNECT": a client that took us for a forward proxy
      return tls_failure::plain_http;
    case SSL_R_UNEXPECTED_EOF_WHILE_READING:
      return tls_failure::closed;
    // SSL_R_WRONG_VERSION_NUMBER is not here: a server sees it for bytes that are not TLS at
    // all (a record header whose major version is not 3), which a real TLS 1.0/1.1 client never
    // sends (that one gets SSL_R_UNSUPPORTED_PROTOCOL). It counts as other.
    default:
      return tls_failure::other;
  }
}

}  // namespace

tls_failure classify_tls_failure(const boost::system::error_code& ec) {
  namespace asio = boost::asio;
  if (ec == boost::beast::error::timeout || ec == asio::error::timed_out ||
      ec == asio::error::operation_aborted)
    return tls_failure::timeout;
  if (ec == asio::ssl::error::stream_truncated || ec == asio::error::eof ||
      ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
      ec == asio::error::connection_aborted)
    return tls_failure::closed;
  if (ec.category() == asio::error::get_ssl_category()) {
    const auto code = static_cast<unsigned long>(static_cast<unsigned int>(ec.value()));
    // A system error OpenSSL saw on the socket (ECONNRESET...) is the client going away.
    if (ERR_SYSTEM_ERROR(code)) return tls_failure::closed;
    if (ERR_GET_LIB(code) == ERR_LIB_SSL) return from_openssl_reason(ERR_GET_REASON(code));
  }
  return tls_failure::other;
}

bool refused_client_certificate(const boost::system::error_code& ec) {
  if (ec.category() != boost::asio::error::get_ssl_category()) return false;
  const auto code = static_cast<unsigned long>(static_cast<unsigned int>(ec.value()));
  if (ERR_SYSTEM_ERROR(code) || ERR_GET_LIB(code) != ERR_LIB_SSL) return false;
  const int reason = ERR_GET_REASON(code);
  return reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE ||
         reason == SSL_R_CERTIFICATE_VERIFY_FAILED;
}

std::string_view label(tls_failure f) {
  switch (f) {
    case tls_failure::timeout:
      return "timeout";
    case tls_failure::closed:
      return "closed";
    case tls_failure::version:
      return "version";
    case tls_failure::cipher:
      return "cipher";
    case tls_failure::certificate:
      return "certificate";
    case tls_failure::plain_http:
      return "plain_http";
    case tls_failure::other:
      return "other";
  }
  return "other";
}

}  // namespace storecache::http
