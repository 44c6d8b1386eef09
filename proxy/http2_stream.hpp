// One HTTP/2 stream as the protocol-neutral exchange handed to request_handler::handle().
//
// Life cycle: created on the request's first HEADERS frame, owned by a shared_ptr held by the
// connection's stream table and by the handler coroutine. nghttp2 closing the stream (end of
// response, RST_STREAM from the peer) or the connection ending detaches it: from then on
// every exchange call fails at once (request bytes already buffered can still be read), and
// anyone waiting is woken, so a handler never waits on a stream that is gone.
#pragma once

#include <nghttp2/nghttp2.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <string>

#include "proxy/http2_stream_state.hpp"
#include "proxy/http_names.hpp"

namespace storecache::proxy {

class http2_connection;
struct connection_context;

class http2_stream final : public http::exchange {
 public:
  http2_stream(http2_connection& conn, std::int32_t id, const asio::any_io_executor& ex);

  // exchange
  const http::request_head& request() const override { return head_; }
  asio::awaitable<std::size_t> read_body(asio::mutable_buffer buf, error_code& ec) override;
  asio::awaitable<error_code> send_interim(const http::response_head& head) override;
  asio::awaitable<error_code> send_head(const http::response_head& head, bool end_stream) override;
  asio::awaitable<error_code> send_body(asio::const_buffer data) override;
  asio::awaitable<error_code> finish() override;
  void abort() override;
  bool head_sent() const override { return state_ != h2_response_state::idle; }
  bool client_gone() const override { return !alive(); }

  // From the connection, while nghttp2 parses the request.
  std::int32_t id() const { return id_; }
  http::request_head& head() { return head_; }
  // Adds one request header field; false once the head is over the configured limits (the
  // rest are dropped and the request gets 431).
  bool add_field(std::string_view name, std::string_view value);
  bool over_limit() const { return over_limit_; }
  // Once the header block is complete: fills request() from the fields and ctx; false if a
  // required pseudo-header is missing (the stream is then reset with PROTOCOL_ERROR).
  bool build_request(const connection_context& ctx, bool end_stream);
  void on_data(const std::uint8_t* data, std::size_t len);
  void on_request_end();
  // The handler returned: request bytes nobody will read are given back to flow control.
  void on_handler_done();
  // nghttp2 closed the stream, or (conn_gone) the whole connection ended.
  void on_close(std::uint32_t error_code, bool conn_gone);
  bool handler_done() const { return handler_done_; }
  bool request_complete() const { return in_end_; }
  bool response_complete() const { return state_ == h2_response_state::complete; }
  // The handler returned without completing the response: 500 if nothing was sent yet,
  // otherwise a reset, so the client never takes a partial response as whole.
  void complete_abandoned();
  // nghttp2 data source: copies queued response bytes.
  ssize_t read_response(std::uint8_t* buf, std::size_t len, std::uint32_t* data_flags);

 private:
  bool alive() const { return conn_ != nullptr && !closed_; }
  bool apply(h2_response_event e);  // state transition; false if illegal
  void give_back(std::size_t n);    // nghttp2_session_consume for n request bytes
  // Waits until woken or the idle timeout: true if woken.
  asio::awaitable<bool> wait(asio::steady_timer& t);

  http2_connection* conn_;  // null once the connection is gone
  std::int32_t id_;
  http::request_head head_;
  std::string method_, scheme_, authority_, path_, host_;
  std::size_t field_bytes_ = 0;
  std::size_t field_count_ = 0;
  bool over_limit_ = false;

  // Request body: bytes nghttp2 delivered that the handler has not read yet. Bounded by the
  // stream window we advertise, since we give window back only as the handler reads.
  std::string in_;
  std::size_t in_pos_ = 0;
  std::size_t unconsumed_ = 0;  // received bytes not yet given back to flow control
  bool in_end_ = false;
  bool handler_done_ = false;
  asio::steady_timer read_wake_;

  // Response.
  h2_response_state state_ = h2_response_state::idle;
  std::optional<std::uint64_t> content_length_;
  std::uint64_t body_sent_ = 0;
  std::string out_;  // queued response bytes; nghttp2 pulls them through read_response
  std::size_t out_pos_ = 0;
  bool closed_ = false;
  std::uint32_t close_code_ = 0;
  asio::steady_timer write_wake_;
};

}  // namespace storecache::proxy
