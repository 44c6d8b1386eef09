// TLS contexts built from a config: the server side (one context per certificate, picked by
// SNI; ALPN h2 / http/1.1) and the client side towards each site's upstream.
//
// Built at start-up and on reload; a build failure throws std::runtime_error naming the file,
// so a bad certificate stops start-up with a clear message and a bad reload changes nothing.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "access/signed_url.hpp"
#include "config/config.hpp"

namespace storecache::proxy {

class tls_server_contexts {
 public:
  explicit tls_server_contexts(const config::config& cfg);
  tls_server_contexts(const tls_server_contexts&) = delete;
  tls_server_contexts& operator=(const tls_server_contexts&) = delete;

  // The context new connections start with; its SNI callback switches to the site's context.
  boost::asio::ssl::context& initial() { return *contexts_.front(); }

 private:
  static int on_servername(SSL* ssl, int* alert, void* arg);
  std::vector<std::unique_ptr<boost::asio::ssl::context>> contexts_;  // [0] = default
  std::map<std::string, boost::asio::ssl::context*, std::less<>> by_host_;
};

// A client context that verifies the upstream's chain against the site's CA file or the system
// store. Name checks are per connection (see upstream.cpp), as SNI may differ per site.
std::shared_ptr<boost::asio::ssl::context> make_upstream_context(const config::site& site);

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
