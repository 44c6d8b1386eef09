// The client side of TLS towards each site's upstream.
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/ssl/context.hpp>
#include <memory>

#include "config/config.hpp"

namespace storecache::upstream {

// A client context that verifies the upstream's chain against the site's CA file or the system
// store. Name checks are per connection (see client.cpp), as SNI may differ per site.
// It keeps one TLS session, the newest, for resumption: a new upstream connection then costs
// one round trip less over the WAN and no certificate chain (OpenSSL's own client cache kept
// every session, a few KiB each, up to 20,480 per site, and never used them).
std::shared_ptr<boost::asio::ssl::context> make_upstream_context(const config::site& site);
// Offers the context's newest session on a connection before its handshake (if there is one).
void offer_upstream_session(SSL* ssl);

}  // namespace storecache::upstream
