// Front ends: one coroutine per client connection after the TLS handshake. ALPN decides which.
#pragma once

#include <boost/asio/awaitable.hpp>

#include "http/tls_stream.hpp"
#include "proxy/connection_context.hpp"

namespace storecache::proxy {

// HTTP/1.1 with keep-alive (Beast parser). Returns when the connection is done.
boost::asio::awaitable<void> run_http1_session(http::tls_stream& stream, connection_context& ctx);

// HTTP/2 (nghttp2, server side). Each stream becomes an exchange handed to ctx.handler, run
// as its own coroutine on the connection's executor. Returns when the connection is done.
boost::asio::awaitable<void> run_http2_session(http::tls_stream& stream, connection_context& ctx);

}  // namespace storecache::proxy
