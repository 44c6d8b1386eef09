// One HTTP/2 client connection: the nghttp2 server session, the socket loops that feed it,
// and the table of streams. Internal to the HTTP/2 front end (http2_session.cpp,
// http2_stream.cpp); the rest of the proxy only sees run_http2_session() in sessions.hpp.
#pragma once

#include <nghttp2/nghttp2.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "access/event_window.hpp"
#include "access/request_framing.hpp"
#include "http/tls_stream.hpp"
#include "proxy/connection_context.hpp"
#include "proxy/http2_stream_ids.hpp"

namespace storecache::proxy {

class http2_stream;

// Flow-control windows we advertise. They bound what a client may push at us before a
// handler reads it: 256 KiB per stream, 1 MiB per connection. Uploads are rare here (quiz
// answers), downloads are what matters, and those are governed by the client's windows.
inline constexpr std::int32_t h2_stream_window = 256 * 1024;
inline constexpr std::int32_t h2_connection_window = 1024 * 1024;
// send_body returns once a stream's queued response bytes are below this.
inline constexpr std::size_t h2_send_high_water = 256 * 1024;
// ... unless the connection's streams share this: a client that opens many streams and never
// opens their windows holds at most about this much of our memory (each stream's share is
// the budget over the streams open, between 16 KiB and h2_send_high_water).
inline constexpr std::size_t h2_connection_send_budget = 1024 * 1024;
inline constexpr std::size_t h2_send_low_water = 16 * 1024;
// Output of nghttp2_session_mem_send gathered into one socket write (fewer, fuller records).
inline constexpr std::size_t h2_write_batch = 64 * 1024;
// A response complete before its request (an early 421, 431, 403 or a hit): the rest of the
// request is read and dropped, the stream half-closed(local), so its frames still get RFC
// 9113's checks; past this much or this long, RST_STREAM(NO_ERROR) asks the client to stop.
inline constexpr std::size_t h2_drain_limit = 256 * 1024;
inline constexpr std::chrono::milliseconds h2_drain_time{2000};

class http2_connection {
 public:
  http2_connection(http::tls_stream& stream, connection_context& ctx);
  ~http2_connection();
  http2_connection(const http2_connection&) = delete;
  http2_connection& operator=(const http2_connection&) = delete;

  // Runs the connection to its end and returns only when no handler coroutine is left.
  boost::asio::awaitable<void> run();

  // For streams: the nghttp2 session (null once the connection is over), the context, and
  // the writer's wake-up after anything was submitted.
  nghttp2_session* session() const { return session_; }
  connection_context& context() const { return ctx_; }
  const config::config& cfg() const { return *ctx_.cfg; }
  void wake_writer();
  // What one stream may keep queued before send_body waits (see h2_connection_send_budget).
  std::size_t send_high_water() const;

  // For the nghttp2 callbacks (anonymous namespace in http2_session.cpp). They return an
  // nghttp2 error code (0 on success) and never throw.
  int on_begin_frame(const nghttp2_frame_hd& hd);
  int on_begin_headers(const nghttp2_frame& frame);
  int on_header(const nghttp2_frame& frame, std::string_view name, std::string_view value);
  int on_frame_recv(const nghttp2_frame& frame);
  int on_data_chunk(std::uint8_t flags, std::int32_t stream_id, const std::uint8_t* data,
                    std::size_t len);
  int on_stream_close(std::int32_t stream_id, std::uint32_t error_code);
  int on_frame_send(const nghttp2_frame& frame);

 private:
  using clock = std::chrono::steady_clock;

  boost::asio::awaitable<void> read_loop();
  boost::asio::awaitable<void> write_loop();
  boost::asio::awaitable<void> tick_loop();
  void on_tick();
  void stop_io();  // ends all three loops: cancels socket operations and timers
  // refused: the request gets that refusal (request_handler::refuse) instead of handle().
  void start_handler(std::shared_ptr<http2_stream> st,
                     std::optional<access::refusal> refused = std::nullopt);
  // The client reset a stream whose response was not complete: count it; over the budget
  // (this connection's, or its address's), end the connection with ENHANCE_YOUR_CALM.
  void on_peer_reset(std::int32_t stream_id);
  std::shared_ptr<http2_stream> find(std::int32_t stream_id) const;
  // Ends the connection for a protocol violation or a flood: GOAWAY with `code`, counted,
  // nothing more parsed, closed within linger_time even if the client does not read.
  void fail_connection(std::uint32_t code, const char* why);
  void drain_stream(http2_stream& st);  // see h2_drain_limit

  http::tls_stream& stream_;
  connection_context& ctx_;
  nghttp2_session* session_ = nullptr;
  // Streams nghttp2 knows (until on_stream_close), and streams whose handler still runs.
  std::unordered_map<std::int32_t, std::shared_ptr<http2_stream>> streams_;
  std::unordered_map<std::int32_t, std::shared_ptr<http2_stream>> handlers_;

  boost::asio::steady_timer writer_wake_;
  boost::asio::steady_timer tick_timer_;
  boost::asio::steady_timer handlers_wake_;

  bool io_done_ = false;    // the three loops are ending
  bool lingering_ = false;  // all written and send side shut: waiting for the peer's EOF
  bool write_in_flight_ = false;
  clock::time_point write_started_{};
  clock::time_point linger_until_{};
  clock::time_point idle_since_{};
  // Graceful stop: notice (GOAWAY last id 2^31-1), then after a round trip the real GOAWAY.
  bool notice_sent_ = false;
  bool goaway_sent_ = false;
  bool terminated_ = false;  // nghttp2_session_terminate_session was called
  // Streams the client reset before their response completed, within client_reset_window
  // (rapid reset, CVE-2023-44487). The address's count in the ledger is what usually ends a
  // flood first; this one holds when the ledger cannot track the address.
  access::event_window peer_resets_;
  bool calmed_ = false;  // ended for resets or a violation: what the client sends is not parsed
  bool goaway_counted_ = false;  // fail_connection counted it: on_frame_send need not
  clock::time_point close_by_ = clock::time_point::max();  // fail_connection's deadline
  client_stream_ids stream_ids_;
  // Streams whose response went out whole before their request ended (see h2_drain_limit).
  struct drain {
    clock::time_point until;
    std::size_t bytes = 0;
    bool reset = false;  // RST_STREAM(NO_ERROR) submitted
  };
  std::unordered_map<std::int32_t, drain> draining_;
  clock::time_point stop_started_{};
};

}  // namespace storecache::proxy
