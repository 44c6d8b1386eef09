#pragma once

#include <boost/asio/ssl.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <string>

namespace storecache::http {

// A TLS connection whose TCP layer carries Beast's per-operation timeouts
// (stream.next_layer().expires_after(...)).
using tls_stream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

// The oldest error on OpenSSL's queue, as text (the queue is cleared).
std::string openssl_error();

}  // namespace storecache::http
