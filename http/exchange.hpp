// The protocol-neutral exchange: one request and its response.
//
// Both front ends (http1_session, http2_session) turn what they parse into a request_head and
// hand an `exchange` to request_handler::handle(). Everything after that line — routing,
// admission, caching, the upstream fetch — is written once, against this interface.
//
// Response life cycle, enforced by the front ends:
//   nothing sent --send_interim*--> nothing sent (final head not yet)
//   nothing sent --send_head--> head sent --send_body*--> --finish--> complete
//                   (end_stream=true goes straight to complete; abort() from any state
//                    resets the stream / closes the connection, so a short body is never
//                    presented as complete)
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/system/error_code.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "access/request_framing.hpp"
#include "cache/http_fields.hpp"

namespace storecache::http {

namespace asio = boost::asio;
using boost::system::error_code;

enum class protocol { http1_1, http2 };
std::string_view to_string(protocol p);

using cache::find_header;
using cache::header;
using cache::header_list;

struct request_head {
  std::string method;     // "GET"
  std::string scheme;     // "https"
  std::string authority;  // Host or :authority, as sent (may carry a port)
  std::string target;     // origin-form "/path?query"; absolute-form only as sent by h1 clients
  header_list headers;    // without Host and pseudo-headers
  std::optional<std::uint64_t> content_length;  // request body length if known
  bool has_body = false;  // true when a request body follows (h1 length/chunked, h2 DATA)

  // Where it came from, for logs, X-Forwarded-For and access control.
  protocol proto = protocol::http1_1;
  asio::ip::address client_address;
  std::uint16_t client_port = 0;
  std::string sni;  // TLS server name the client asked for ("" if none)
  std::uint64_t connection_id = 0;
  std::uint32_t stream_id = 0;  // h2 stream id; for h1 the request number on the connection
};

struct response_head {
  unsigned status = 200;
  header_list headers;  // no hop-by-hop headers, no Content-Length (see content_length)
  std::optional<std::uint64_t> content_length;  // known body length; nullopt: until finish()
};

class exchange {
 public:
  virtual ~exchange() = default;

  virtual const request_head& request() const = 0;

  // Reads request body bytes into buf. Returns 0 at the end of the body.
  virtual asio::awaitable<std::size_t> read_body(asio::mutable_buffer buf, error_code& ec) = 0;

  // Sends an interim (1xx) response head ahead of the final one, as the upstream sent it
  // (103 Early Hints, 102 Processing). Dropped, not an error, where the protocol forbids it:
  // 101, after the final head, or to an HTTP/1.0 client (RFC 9110 §15.2).
  virtual asio::awaitable<error_code> send_interim(const response_head& head) = 0;
  // Sends the response head. With end_stream the response is complete (no body, or HEAD).
  virtual asio::awaitable<error_code> send_head(const response_head& head, bool end_stream) = 0;
  // Sends body bytes; returns when they are queued within the front end's buffer bound
  // (back-pressure: a slow client slows the producer, memory stays bounded).
  virtual asio::awaitable<error_code> send_body(asio::const_buffer data) = 0;
  // Ends the body. A content_length given in the head must have been met exactly.
  virtual asio::awaitable<error_code> finish() = 0;
  // The response cannot be completed (upstream died mid-body): h1 closes the connection
  // without a final chunk, h2 resets the stream.
  virtual void abort() = 0;

  virtual bool head_sent() const = 0;
  // The client has given up on this exchange (HTTP/2: it reset the stream or the connection
  // ended). Work done only for it can stop; a front end that cannot tell answers false.
  virtual bool client_gone() const { return false; }
  // After read_body failed: why, when the client is still there to be told (bad framing 400,
  // over limits.max_request_body 413). nullopt: it is gone, too slow, or nobody knows.
  virtual std::optional<access::refusal> body_refusal() const { return std::nullopt; }
};

}  // namespace storecache::http
