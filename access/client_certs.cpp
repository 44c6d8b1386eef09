#include "access/client_certs.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <vector>

namespace storecache::access {

namespace {

std::string openssl_error() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "no PEM data";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

// The SSL's verifier (set by apply) and whether its optional-mode verification failed.
int verifier_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}
int failed_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// required: OpenSSL's verdict stands (a bad chain fails the handshake). optional: the
// handshake goes on, and the connection is marked unverified, as if it had sent none.
int on_verify(int preverify_ok, X509_STORE_CTX* store_ctx) {
  auto* ssl = static_cast<SSL*>(
      X509_STORE_CTX_get_ex_data(store_ctx, SSL_get_ex_data_X509_STORE_CTX_idx()));
  const auto* v = ssl ? client_cert_verifier::of(ssl) : nullptr;
  if (preverify_ok == 1 || v == nullptr) return preverify_ok;
  if (SSL_get_ex_data(ssl, failed_index()) == nullptr)
    SSL_set_ex_data(
        ssl, failed_index(),
        reinterpret_cast<void*>(static_cast<std::intptr_t>(X509_STORE_CTX_get_error(store_ctx))));
  return v->mode() == config::client_cert_mode::optional ? 1 : 0;
}

struct bio_closer {
  void operator()(BIO* b) const { BIO_free(b); }
};

std::unique_ptr<BIO, bio_closer> open_pem(const std::filesystem::path& file, const char* what) {
  std::unique_ptr<BIO, bio_closer> bio(BIO_new_file(file.c_str(), "r"));
  if (!bio)
    throw std::runtime_error(std::string("TLS: cannot read ") + what + " " + file.string() + ": " +
                             openssl_error());
  return bio;
}

std::string name_text(const X509_NAME* name) {
  BIO* b = BIO_new(BIO_s_mem());
  X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  std::string out(data, static_cast<std::size_t>(n));
  BIO_free(b);
  return out;
}

}  // namespace

client_cert_verifier::client_cert_verifier(const config::client_cert_policy& policy,
                                           std::string scope)
    : policy_(policy), scope_(std::move(scope)) {
  store_ = X509_STORE_new();
  names_ = sk_X509_NAME_new_null();
  // A constructor that throws runs no destructor: what it made is freed here.
  try {
    if (store_ == nullptr || names_ == nullptr) throw std::runtime_error("TLS: out of memory");
    load();
  } catch (...) {
    X509_STORE_free(store_);
    sk_X509_NAME_pop_free(names_, X509_NAME_free);
    throw;
  }
}

void client_cert_verifier::load() {
  if (policy_.mode == config::client_cert_mode::off) return;

  const std::string ca_file = policy_.ca.string();
  std::vector<X509*> cas;  // owned by store_ (up-ref'd there), freed below
  {
    auto bio = open_pem(policy_.ca, "client_ca");
    while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr))
      cas.push_back(x);
    ERR_clear_error();  // the loop ends on "no start line"
  }
  struct free_all {
    std::vector<X509*>& v;
    ~free_all() {
      for (X509* x : v)
        X509_free(x);
    }
  } guard{cas};
  if (cas.empty()) throw std::runtime_error("TLS: client_ca " + ca_file + ": no certificate in it");
  for (X509* x : cas) {
    if (X509_check_ca(x) == 0)
      throw std::runtime_error("TLS: client_ca " + ca_file + ": '" +
                               name_text(X509_get_subject_name(x)) +
                               "' is not a CA certificate (client_ca holds the issuing CAs, not "
                               "device certificates)");
    if (X509_STORE_add_cert(store_, x) != 1)
      throw std::runtime_error("TLS: client_ca " + ca_file + ": " + openssl_error());
    sk_X509_NAME_push(names_, X509_NAME_dup(X509_get_subject_name(x)));
  }

  std::vector<bool> ca_has_crl(cas.size(), false);
  for (const auto& file : policy_.crl) {
    auto bio = open_pem(file, "client_crl");
    std::size_t count = 0;
    while (X509_CRL* crl = PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr)) {
      ++count;
      bool issued = false;
      for (std::size_t i = 0; i < cas.size(); ++i)
        if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(cas[i])) == 0 &&
            X509_CRL_verify(crl, X509_get0_pubkey(cas[i])) == 1) {
          issued = true;
          ca_has_crl[i] = true;
        }
      ERR_clear_error();
      const std::string issuer = name_text(X509_CRL_get_issuer(crl));
      const bool added = issued && X509_STORE_add_crl(store_, crl) == 1;
      X509_CRL_free(crl);
      if (!issued)
        throw std::runtime_error("TLS: client_crl " + file.string() + ": the CRL of '" + issuer +
                                 "' is not signed by a CA of client_ca " + ca_file);
      if (!added)
        throw std::runtime_error("TLS: client_crl " + file.string() + ": " + openssl_error());
    }
    ERR_clear_error();
    if (count == 0)
      throw std::runtime_error("TLS: client_crl " + file.string() + ": no PEM CRL in it");
  }
  // An intermediate CA in client_ca is trusted as an anchor (no root needed). With CRLs, the
  // leaf is always checked; the whole chain when every CA has its CRL (else OpenSSL would fail
  // every chain through a CA without one: "unable to get certificate CRL").
  unsigned long flags = X509_V_FLAG_PARTIAL_CHAIN;
  if (!policy_.crl.empty()) {
    flags |= X509_V_FLAG_CRL_CHECK;
    crl_check_all_ = std::find(ca_has_crl.begin(), ca_has_crl.end(), false) == ca_has_crl.end();
    if (crl_check_all_) flags |= X509_V_FLAG_CRL_CHECK_ALL;
  }
  X509_STORE_set_flags(store_, flags);
}

client_cert_verifier::~client_cert_verifier() {
  X509_STORE_free(store_);
  sk_X509_NAME_pop_free(names_, X509_NAME_free);
}

void client_cert_verifier::apply(SSL* ssl) const {
  SSL_set_ex_data(ssl, verifier_index(), const_cast<client_cert_verifier*>(this));
  SSL_set_ex_data(ssl, failed_index(), nullptr);
  switch (policy_.mode) {
    case config::client_cert_mode::off:
      SSL_set_verify(ssl, SSL_VERIFY_NONE, nullptr);
      return;
    case config::client_cert_mode::optional:
      SSL_set_verify(ssl, SSL_VERIFY_PEER, on_verify);
      break;
    case config::client_cert_mode::required:
      SSL_set_verify(ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, on_verify);
      break;
  }
  SSL_set_verify_depth(ssl, 5);
  SSL_set1_verify_cert_store(ssl, store_);
  SSL_set_client_CA_list(ssl, SSL_dup_CA_list(names_));
}

const client_cert_verifier* client_cert_verifier::of(SSL* ssl) {
  return static_cast<const client_cert_verifier*>(SSL_get_ex_data(ssl, verifier_index()));
}

client_cert_state client_cert_verifier::state_of(SSL* ssl) {
  client_cert_state out;
  const auto* v = of(ssl);
  X509* peer = SSL_get0_peer_certificate(ssl);
  if (v == nullptr || v->mode() == config::client_cert_mode::off || peer == nullptr) return out;
  if (SSL_get_ex_data(ssl, failed_index()) != nullptr || SSL_get_verify_result(ssl) != X509_V_OK)
    return out;
  out.verified = true;
  out.verified_for = v->scope();
  switch (v->policy_.log) {
    case config::client_cert_log::sha256:
      out.log_id = certificate_sha256(peer);
      break;
    case config::client_cert_log::subject:
      out.log_id = certificate_subject(peer);
      break;
    case config::client_cert_log::off:
      break;
  }
  return out;
}

std::string client_cert_verifier::failure_of(SSL* ssl) {
  const auto failed = reinterpret_cast<std::intptr_t>(SSL_get_ex_data(ssl, failed_index()));
  if (failed != 0) return X509_verify_cert_error_string(static_cast<long>(failed));
  if (SSL_get0_peer_certificate(ssl) == nullptr) return "no certificate";
  return X509_verify_cert_error_string(SSL_get_verify_result(ssl));
}

std::string certificate_sha256(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (X509_digest(cert, EVP_sha256(), md, &n) != 1) return {};
  std::string out = "sha256:";
  char hex[3];
  for (unsigned i = 0; i < n; ++i) {
    std::snprintf(hex, sizeof hex, "%02x", md[i]);
    out += hex;
  }
  return out;
}

std::string certificate_subject(X509* cert) {
  return name_text(X509_get_subject_name(cert));
}

}  // namespace storecache::access
