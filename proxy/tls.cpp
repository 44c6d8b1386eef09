#include "proxy/tls.hpp"

#include "access/site_verifier.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <mutex>
#include <stdexcept>
#include <utility>

#include "access/networks.hpp"
#include "http/tls_stream.hpp"
#include "upstream/client_tls.hpp"

namespace storecache::proxy {

using http::openssl_error;

namespace ssl = boost::asio::ssl;

namespace {

// Mozilla "intermediate" (v5.7): TLS 1.2 suites with forward secrecy and AEAD only; TLS 1.3
// keeps OpenSSL's default suites, which are exactly the recommended three.
constexpr const char* intermediate_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";
constexpr const char* intermediate_groups = "X25519:prime256v1:secp384r1";

// ALPN: prefer h2, then http/1.1; a client offering neither gets http/1.1 semantics without
// ALPN (RFC 7301 allows the server to not select).
int on_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
            unsigned int inlen, void*) {
  static const unsigned char ours[] = "\x02h2\x08http/1.1";
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, ours, sizeof ours - 1, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

std::unique_ptr<ssl::context> make_server_context(const config::tls_files& files) {
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
  SSL_CTX* h = ctx->native_handle();
  SSL_CTX_set_min_proto_version(h, TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(h, TLS1_3_VERSION);
  // Intermediate leaves the cipher choice to the client (all offered suites are strong).
  SSL_CTX_set_options(h, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  if (SSL_CTX_set_cipher_list(h, intermediate_ciphers) != 1 ||
      SSL_CTX_set1_groups_list(h, intermediate_groups) != 1)
    throw std::runtime_error("TLS: cannot set cipher policy: " + openssl_error());
  SSL_CTX_set_dh_auto(h, 1);
  SSL_CTX_set_alpn_select_cb(h, on_alpn, nullptr);
  SSL_CTX_set_session_cache_mode(h, SSL_SESS_CACHE_SERVER);
  if (SSL_CTX_use_certificate_chain_file(h, files.cert.c_str()) != 1)
    throw std::runtime_error("TLS: cannot load certificate " + files.cert.string() + ": " +
                             openssl_error());
  if (SSL_CTX_use_PrivateKey_file(h, files.key.c_str(), SSL_FILETYPE_PEM) != 1)
    throw std::runtime_error("TLS: cannot load key " + files.key.string() + ": " + openssl_error());
  if (SSL_CTX_check_private_key(h) != 1)
    throw std::runtime_error("TLS: key " + files.key.string() + " does not match certificate " +
                             files.cert.string());
  return ctx;
}

}  // namespace

tls_server_contexts::tls_server_contexts(const config::config& cfg) {
  const config::tls_files* default_files = &cfg.server.default_tls;
  if (default_files->empty())
    for (const auto& s : cfg.sites)
      if (!s.tls.empty()) {
        default_files = &s.tls;
        break;
      }
  if (default_files->empty()) throw std::runtime_error("TLS: no certificate configured");
  contexts_.push_back(make_server_context(*default_files));
  verifiers_.push_back(std::make_unique<access::client_cert_verifier>(cfg.server.client, ""));
  bool any_client_certs = !cfg.server.client.empty();
  // One context per distinct certificate file; sites sharing a file share the context.
  std::map<std::string, ssl::context*> by_file{{default_files->cert.string(), contexts_[0].get()}};
  for (const auto& s : cfg.sites) {
    ssl::context* ctx = contexts_[0].get();
    if (!s.tls.empty()) {
      auto [it, fresh] = by_file.try_emplace(s.tls.cert.string(), nullptr);
      if (fresh) {
        contexts_.push_back(make_server_context(s.tls));
        it->second = contexts_.back().get();
      }
      ctx = it->second;
    }
    verifiers_.push_back(std::make_unique<access::client_cert_verifier>(s.access.client, s.name()));
    any_client_certs = any_client_certs || !s.access.client.empty();
    for (const auto& h : s.hosts)
      by_host_.emplace(h, named{ctx, &s, verifiers_.back().get()});
  }
  for (auto& c : contexts_) {
    SSL_CTX* h = c->native_handle();
    SSL_CTX_set_tlsext_servername_callback(h, on_servername);
    SSL_CTX_set_tlsext_servername_arg(h, this);
    // Sessions are looked up before the SNI callback picks the site (TLS 1.3 PSKs are parsed
    // with the ClientHello), and a resumed session skips certificate verification: a session
    // of a site without certificates, or a certificate revoked since, must not be resumed.
    // With device certificates anywhere, every connection does a full handshake (on a LAN).
    if (any_client_certs) {
      SSL_CTX_set_options(h, SSL_OP_NO_TICKET);
      SSL_CTX_set_num_tickets(h, 0);
      SSL_CTX_set_session_cache_mode(h, SSL_SESS_CACHE_OFF);
    }
  }
  // Before any SNI callback (and should a client's hello not reach it): [server]'s policy.
  if (any_client_certs && !cfg.server.client.empty())
    SSL_CTX_set_verify(contexts_[0]->native_handle(),
                       cfg.server.client.mode == config::client_cert_mode::required
                           ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                           : SSL_VERIFY_PEER,
                       nullptr);
}

namespace {
int handshake_info_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}
}  // namespace

void handshake_info::attach(SSL* ssl, handshake_info* info) {
  SSL_set_ex_data(ssl, handshake_info_index(), info);
}

int tls_server_contexts::on_servername(SSL* ssl, int* alert, void* arg) {
  auto* self = static_cast<tls_server_contexts*>(arg);
  auto* info = static_cast<handshake_info*>(SSL_get_ex_data(ssl, handshake_info_index()));
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  auto it =
      name == nullptr ? self->by_host_.end() : self->by_host_.find(config::normalize_host(name));
  if (it == self->by_host_.end()) {
    // No SNI or an unknown name: the default certificate and [server]'s policy; the request's
    // Host then decides the site, and the request path applies its policy (or answers 421).
    self->verifiers_.front()->apply(ssl);
    return SSL_TLSEXT_ERR_OK;
  }
  const named& n = it->second;
  if (info != nullptr) {
    info->site = n.site;
    if (!access::admitted(n.site->access.allow_clients, info->client)) {
      info->refused = access::denial::network;
      *alert = SSL_AD_ACCESS_DENIED;
      return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
  }
  if (n.ctx->native_handle() != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, n.ctx->native_handle());
  n.verifier->apply(ssl);
  return SSL_TLSEXT_ERR_OK;
}

std::string_view alpn_selected(SSL* ssl) {
  const unsigned char* p = nullptr;
  unsigned int n = 0;
  SSL_get0_alpn_selected(ssl, &p, &n);
  return p ? std::string_view(reinterpret_cast<const char*>(p), n) : std::string_view();
}

std::string_view sni_name(SSL* ssl) {
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  return name ? std::string_view(name) : std::string_view();
}

std::shared_ptr<const runtime> runtime::build(std::shared_ptr<const config::config> cfg) {
  auto rt = std::make_shared<runtime>();
  rt->server_tls = std::make_shared<tls_server_contexts>(*cfg);
  for (const auto& s : cfg->sites)
    if (s.upstream_scheme == "https")
      rt->upstream_tls.emplace(s.name(), upstream::make_upstream_context(s));
  for (const auto& s : cfg->sites)
    if (auto v = access::make_site_verifier(s)) rt->verifiers.emplace(s.name(), std::move(v));
  rt->cfg = std::move(cfg);
  return rt;
}

}  // namespace storecache::proxy
