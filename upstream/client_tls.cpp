#include "upstream/client_tls.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <mutex>
#include <stdexcept>
#include <utility>

#include "http/tls_stream.hpp"

namespace storecache::upstream {

namespace ssl = boost::asio::ssl;
using http::openssl_error;

namespace {

// The newest resumable session of one upstream context, shared by every worker's pool.
struct session_slot {
  std::mutex mutex;
  SSL_SESSION* newest = nullptr;  // one reference held
  ~session_slot() { SSL_SESSION_free(newest); }
};

int session_slot_index() {
  static const int index = SSL_CTX_get_ex_new_index(
      0, nullptr, nullptr, nullptr, [](void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
        delete static_cast<session_slot*>(ptr);
      });
  return index;
}

session_slot* slot_of(SSL_CTX* ctx) {
  return static_cast<session_slot*>(SSL_CTX_get_ex_data(ctx, session_slot_index()));
}

// OpenSSL hands over each new session (TLS 1.3: each ticket) here. A copy is kept: OpenSSL
// marks the connection's own session not resumable when that connection ends without a TLS
// shutdown, which is how upstream connections end (an origin closing, an error answer). The
// copy it replaces is released.
int on_new_upstream_session(SSL* ssl, SSL_SESSION* session) {
  auto* slot = slot_of(SSL_get_SSL_CTX(ssl));
  if (!slot || !SSL_SESSION_is_resumable(session)) return 0;
  SSL_SESSION* copy = SSL_SESSION_dup(session);
  if (!copy) return 0;
  SSL_SESSION* old = nullptr;
  {
    std::lock_guard lock(slot->mutex);
    old = std::exchange(slot->newest, copy);
  }
  SSL_SESSION_free(old);
  return 0;  // the connection's own reference stays OpenSSL's
}

}  // namespace

void offer_upstream_session(SSL* ssl) {
  auto* slot = slot_of(SSL_get_SSL_CTX(ssl));
  if (!slot) return;
  SSL_SESSION* session = nullptr;
  {
    std::lock_guard lock(slot->mutex);
    session = slot->newest;
    if (session) SSL_SESSION_up_ref(session);
  }
  if (!session) return;
  SSL_set_session(ssl, session);  // takes a reference of its own
  SSL_SESSION_free(session);
}

std::shared_ptr<ssl::context> make_upstream_context(const config::site& site) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  SSL_CTX* h = ctx->native_handle();
  SSL_CTX_set_min_proto_version(h, TLS1_2_VERSION);
  SSL_CTX_set_options(h, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  ctx->set_verify_mode(ssl::verify_peer);
  if (!site.upstream_ca.empty()) {
    if (SSL_CTX_load_verify_locations(h, site.upstream_ca.c_str(), nullptr) != 1)
      throw std::runtime_error("TLS: cannot load upstream CA " + site.upstream_ca.string() + ": " +
                               openssl_error());
  } else if (SSL_CTX_set_default_verify_paths(h) != 1) {
    throw std::runtime_error("TLS: cannot load the system trust store: " + openssl_error());
  }
  SSL_CTX_set_ex_data(h, session_slot_index(), new session_slot);
  SSL_CTX_set_session_cache_mode(h, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(h, on_new_upstream_session);
  return ctx;
}

}  // namespace storecache::upstream
