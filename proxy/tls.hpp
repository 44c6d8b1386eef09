// TLS contexts built from a config: the server side (one context per certificate, picked by
// SNI; ALPN h2 / http/1.1) and the client side towards each site's upstream.
//
// Built at start-up and on reload; a build failure throws std::runtime_error naming the file,
// so a bad certificate stops start-up with a clear message and a bad reload changes nothing.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "access/client_certs.hpp"
#include "access/denial.hpp"
#include "access/signed_url.hpp"
#include "config/config.hpp"

namespace storecache::proxy {

// One handshake's inputs and verdict, shared with the SNI callback through the SSL's ex_data:
// the callback sees the client's address (Asio's engine has no socket behind the SSL) and says
// which site the client named and why it refused it.
struct handshake_info {
  boost::asio::ip::address client;
  const config::site* site = nullptr;     // the site the SNI named, if any
  std::optional<access::denial> refused;  // set when the SNI callback failed the handshake
  // Attaches info to ssl for the duration of the handshake; info must outlive it.
  static void attach(SSL* ssl, handshake_info* info);
};

// The SNI callback's choices: which context (certificate) and which device-certificate policy a
// connection gets, and which clients the site admits. By name: a site's hosts; the default
// context and [server]'s policy otherwise. The site's policy is applied to the SSL itself
// (access::client_cert_verifier::apply), so sites that share a certificate (and so a context)
// may still ask for certificates of different CAs, or none.
class tls_server_contexts {
 public:
  explicit tls_server_contexts(const config::config& cfg);
  tls_server_contexts(const tls_server_contexts&) = delete;
  tls_server_contexts& operator=(const tls_server_contexts&) = delete;

  // The context new connections start with; its SNI callback switches to the site's context.
  boost::asio::ssl::context& initial() { return *contexts_.front(); }

 private:
  static int on_servername(SSL* ssl, int* alert, void* arg);
  struct named {
    boost::asio::ssl::context* ctx;
    const config::site* site;
    const access::client_cert_verifier* verifier;
  };
  std::vector<std::unique_ptr<boost::asio::ssl::context>> contexts_;      // [0] = default
  std::vector<std::unique_ptr<access::client_cert_verifier>> verifiers_;  // [0] = [server]'s
  std::map<std::string, named, std::less<>> by_host_;
};

// The negotiated ALPN protocol ("h2", "http/1.1" or "") and SNI name ("" if none).
std::string_view alpn_selected(SSL* ssl);
std::string_view sni_name(SSL* ssl);

// Everything a running daemon derives from one config: swapped as a whole on reload.
struct runtime {
  std::shared_ptr<const config::config> cfg;
  std::shared_ptr<tls_server_contexts> server_tls;
  std::map<std::string, std::shared_ptr<boost::asio::ssl::context>, std::less<>> upstream_tls;
  // By site name, for sites whose signed URLs storecache verifies itself ([site.signed_urls]).
  std::map<std::string, std::shared_ptr<const access::url_verifier>, std::less<>> verifiers;

  // Throws std::runtime_error with a message naming the file that failed.
  static std::shared_ptr<const runtime> build(std::shared_ptr<const config::config> cfg);
};

}  // namespace storecache::proxy
