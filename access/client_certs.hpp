// Device certificates (mTLS): a client_cert_policy of the config made ready for handshakes, and
// what a finished handshake established. OpenSSL objects only, no sockets: proxy/tls.cpp applies
// a verifier to a connection in its SNI callback, once it knows which site the device named.
//
// Life cycle: built with the runtime (start-up, and every reload: the CA bundle and the CRLs are
// read again then, so a CRL written before SIGHUP revokes from the next handshake on); held by
// the TLS contexts of that runtime; a connection keeps its runtime, and so its verifier, alive.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "access/admission.hpp"
#include "config/config.hpp"

namespace storecache::access {

class client_cert_verifier {
 public:
  // Reads policy's CA bundle and CRLs. scope: the site's name, or "" for [server]'s policy.
  // Throws std::runtime_error naming the file that failed (unreadable, no certificate or CRL
  // in it, not a CA, a CRL of no CA in the bundle, or badly signed).
  client_cert_verifier(const config::client_cert_policy& policy, std::string scope);
  ~client_cert_verifier();
  client_cert_verifier(const client_cert_verifier&) = delete;
  client_cert_verifier& operator=(const client_cert_verifier&) = delete;

  // Sets one handshake to this policy: verify mode and callback, the trust store with the
  // CRLs, and the CA names of the CertificateRequest. Call after SSL_set_SSL_CTX, which
  // neither keeps nor carries over these (the SSL's verify store and CA names belong to the
  // SSL's cert, which SSL_set_SSL_CTX replaces; its verify mode stays the old context's).
  void apply(SSL* ssl) const;

  config::client_cert_mode mode() const { return policy_.mode; }
  const std::string& scope() const { return scope_; }
  // Whether the chain is checked against CRLs at every level (each CA in client_ca has a CRL),
  // or the leaf only.
  bool checks_whole_chain() const { return crl_check_all_; }

  // The verifier apply() put on ssl, or nullptr.
  static const client_cert_verifier* of(SSL* ssl);
  // After the handshake: whether a certificate was presented and verified, and its log id.
  static client_cert_state state_of(SSL* ssl);
  // Why verification failed ("certificate revoked", ...), or "no certificate"; for log lines.
  static std::string failure_of(SSL* ssl);

 private:
  config::client_cert_policy policy_;
  std::string scope_;
  void load();  // client_ca and client_crl into store_ and names_; throws naming the file
  X509_STORE* store_ = nullptr;
  STACK_OF(X509_NAME) * names_ = nullptr;
  bool crl_check_all_ = false;
};

// "sha256:<64 hex digits>" of the certificate's DER; the subject as RFC 2253 text.
std::string certificate_sha256(X509* cert);
std::string certificate_subject(X509* cert);

}  // namespace storecache::access
