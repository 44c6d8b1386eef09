// The HTTP/2 front end: run_http2_session() drives one nghttp2 server session over a TLS
// stream that ALPN gave to "h2".
//
// Shape (STYLE rules 3 and 8): nghttp2 never touches the socket. Three coroutines share the
// connection's executor (one thread, no locks):
//   read_loop   socket -> nghttp2_session_mem_recv (callbacks below create streams and spawn
//               one handler coroutine per request)
//   write_loop  nghttp2_session_mem_send -> one outstanding async_write, gathering up to
//               h2_write_batch bytes per write; sleeps on writer_wake_ (a steady_timer used as
//               a condition variable: wake_writer() cancels it) when nothing is pending
//   tick_loop   every 250 ms: idle timeout, graceful stop (GOAWAY), stalled writes, linger
//
// Life times — the choice: run_http2_session() does not return while any handler coroutine
// is still running. Handlers receive `ctx` (owned by our caller) and their stream, which
// points back at this connection, so waiting is what makes both references safe; detaching
// would only move the problem into ctx. Handlers cannot make us wait long: when the
// connection ends, every stream is detached (on_close(..., conn_gone)), so each further
// exchange call fails at once and every waiter is woken; what remains is the handler's own
// upstream wait, bounded by the upstream timeouts.
//
// Connection life cycle:
//   running --(idle for client_idle | stopping | peer GOAWAY | fatal error)-->
//   GOAWAY queued --(nghttp2 wants neither read nor write)--> lingering (our send side shut,
//   reading until the peer's EOF or 1 s, so a late client frame does not turn our close into
//   a TCP RST that could eat the GOAWAY) --> io done --> detach streams, wait for handlers
//   --> socket closed, return.
#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <exception>

#include "account/metrics.hpp"
#include "log/log.hpp"
#include "proxy/client_resets.hpp"
#include "proxy/http2_connection.hpp"
#include "proxy/http2_stream.hpp"
#include "proxy/request_handler.hpp"
#include "proxy/sessions.hpp"

namespace storecache::proxy {

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

constexpr auto tick_interval = 250ms;
constexpr auto linger_time = 1s;

http2_connection& conn_of(void* user_data) {
  return *static_cast<http2_connection*>(user_data);
}

// Callbacks: cast user_data, never let an exception cross into C.
template <typename F>
int guarded(F&& f) noexcept {
  try {
    return f();
  } catch (...) {
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  }
}

int on_begin_frame_cb(nghttp2_session*, const nghttp2_frame_hd* hd, void* user_data) {
  return guarded([&] { return conn_of(user_data).on_begin_frame(*hd); });
}

int on_begin_headers_cb(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
  return guarded([&] { return conn_of(user_data).on_begin_headers(*frame); });
}

int on_header_cb(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name,
                 std::size_t namelen, const std::uint8_t* value, std::size_t valuelen, std::uint8_t,
                 void* user_data) {
  return guarded([&] {
    return conn_of(user_data).on_header(*frame, {reinterpret_cast<const char*>(name), namelen},
                                        {reinterpret_cast<const char*>(value), valuelen});
  });
}

int on_frame_recv_cb(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
  return guarded([&] { return conn_of(user_data).on_frame_recv(*frame); });
}

int on_frame_send_cb(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
  return guarded([&] { return conn_of(user_data).on_frame_send(*frame); });
}

int on_data_chunk_recv_cb(nghttp2_session*, std::uint8_t flags, std::int32_t stream_id,
                          const std::uint8_t* data, std::size_t len, void* user_data) {
  return guarded([&] { return conn_of(user_data).on_data_chunk(flags, stream_id, data, len); });
}

int on_stream_close_cb(nghttp2_session*, std::int32_t stream_id, std::uint32_t error_code,
                       void* user_data) {
  return guarded([&] { return conn_of(user_data).on_stream_close(stream_id, error_code); });
}

int error_cb(nghttp2_session*, int lib_error_code, const char* msg, std::size_t len,
             void* user_data) {
  if (log::enabled(log::level::debug))
    log::debug("conn={} h2: {} ({})", conn_of(user_data).context().connection_id,
               std::string_view(msg, len), lib_error_code);
  return 0;
}

struct callbacks_deleter {
  void operator()(nghttp2_session_callbacks* p) const { nghttp2_session_callbacks_del(p); }
};
struct option_deleter {
  void operator()(nghttp2_option* p) const { nghttp2_option_del(p); }
};

}  // namespace

// --- set-up ---------------------------------------------------------------------------------

http2_connection::http2_connection(http::tls_stream& stream, connection_context& ctx)
    : stream_(stream),
      ctx_(ctx),
      writer_wake_(stream.get_executor()),
      tick_timer_(stream.get_executor()),
      handlers_wake_(stream.get_executor()) {
  nghttp2_session_callbacks* raw_cbs = nullptr;
  nghttp2_option* raw_opt = nullptr;
  if (nghttp2_session_callbacks_new(&raw_cbs) != 0 || nghttp2_option_new(&raw_opt) != 0)
    return;  // out of memory: session_ stays null and run() ends at once
  std::unique_ptr<nghttp2_session_callbacks, callbacks_deleter> cbs(raw_cbs);
  std::unique_ptr<nghttp2_option, option_deleter> opt(raw_opt);
  nghttp2_session_callbacks_set_on_begin_frame_callback(cbs.get(), on_begin_frame_cb);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs.get(), on_begin_headers_cb);
  nghttp2_session_callbacks_set_on_header_callback(cbs.get(), on_header_cb);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs.get(), on_frame_recv_cb);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs.get(), on_frame_send_cb);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs.get(), on_data_chunk_recv_cb);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs.get(), on_stream_close_cb);
  nghttp2_session_callbacks_set_error_callback2(cbs.get(), error_cb);
  // Request bodies are flow-controlled by what handlers read (nghttp2_session_consume), so a
  // slow handler slows the client instead of filling our memory.
  nghttp2_option_set_no_auto_window_update(opt.get(), 1);
  // Our HPACK encoder table: the default 4 KiB, stated so it is a decision, not an accident.
  nghttp2_option_set_max_deflate_dynamic_table_size(opt.get(), 4096);
  // Flood limits, stated so they are decisions (these are nghttp2's defaults): a client that
  // makes us queue more SETTINGS and PING ACKs than this without reading them, sends more
  // entries in one SETTINGS, or more CONTINUATION frames after one HEADERS, ends its
  // connection (fail_connection: GOAWAY ENHANCE_YOUR_CALM, counted). 8 CONTINUATIONs of at
  // most 16 KiB each already exceed any header block limits.max_header_bytes allows.
  nghttp2_option_set_max_outbound_ack(opt.get(), 1000);
  nghttp2_option_set_max_settings(opt.get(), 32);
  nghttp2_option_set_max_continuations(opt.get(), 8);
  if (nghttp2_session_server_new2(&session_, cbs.get(), this, opt.get()) != 0) session_ = nullptr;
}

http2_connection::~http2_connection() {
  if (session_ != nullptr) nghttp2_session_del(session_);
}

void http2_connection::wake_writer() {
  writer_wake_.cancel();
}

std::size_t http2_connection::send_high_water() const {
  const std::size_t share = h2_connection_send_budget / std::max<std::size_t>(1, streams_.size());
  return std::clamp(share, h2_send_low_water, h2_send_high_water);
}

void http2_connection::fail_connection(std::uint32_t code, const char* why) {
  if (!goaway_counted_ && !terminated_) {
    goaway_counted_ = true;
    ctx_.stats.h2_connection_error(code);
  }
  log::info("conn={} client={} h2: {}: GOAWAY {}", ctx_.connection_id,
            ctx_.client.address().to_string(), why, nghttp2_http2_strerror(code));
  calmed_ = true;
  if (!terminated_) {
    terminated_ = true;
    nghttp2_session_terminate_session(session_, code);
  }
  close_by_ = std::min(close_by_, clock::now() + linger_time);
  wake_writer();
}

void http2_connection::drain_stream(http2_stream& st) {
  auto it = draining_.find(st.id());
  if (it == draining_.end() || it->second.reset) return;
  if (it->second.bytes <= h2_drain_limit && clock::now() < it->second.until) return;
  it->second.reset = true;
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, st.id(), NGHTTP2_NO_ERROR);
  wake_writer();
}

std::shared_ptr<http2_stream> http2_connection::find(std::int32_t stream_id) const {
  auto it = streams_.find(stream_id);
  return it == streams_.end() ? nullptr : it->second;
}

// --- nghttp2 callbacks ----------------------------------------------------------------------

int http2_connection::on_begin_frame(const nghttp2_frame_hd& hd) {
  // RFC 9113 5.1.1: a HEADERS frame on a client identifier lower than one already opened,
  // that no stream ever used, is a connection error; nghttp2 would ignore it (see
  // http2_stream_ids.hpp). Streams nghttp2 still knows are its business.
  // Identifiers are recorded here, not in on_begin_headers: a stream nghttp2 refuses (over
  // SETTINGS_MAX_CONCURRENT_STREAMS) was used too, and its trailers are no new stream.
  const std::int32_t id = hd.stream_id;
  if (hd.type != NGHTTP2_HEADERS || id <= 0 || (id & 1) == 0 || calmed_) return 0;
  switch (stream_ids_.classify(id)) {
    case client_stream_ids::kind::new_stream:
      stream_ids_.opened(id);
      break;
    case client_stream_ids::kind::used:
      break;
    case client_stream_ids::kind::lower_unused:
      if (nghttp2_session_find_stream(session_, id) == nullptr)
        fail_connection(NGHTTP2_PROTOCOL_ERROR, "new stream with a lower identifier");
      break;
  }
  return 0;
}

int http2_connection::on_begin_headers(const nghttp2_frame& frame) {
  if (frame.hd.type != NGHTTP2_HEADERS || frame.headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  if (calmed_) return 0;
  streams_[frame.hd.stream_id] =
      std::make_shared<http2_stream>(*this, frame.hd.stream_id, stream_.get_executor());
  return 0;
}

int http2_connection::on_header(const nghttp2_frame& frame, std::string_view name,
                                std::string_view value) {
  // Trailers (a second HEADERS) are accepted by nghttp2 and ignored here: nothing upstream of
  // us wants request trailers.
  if (frame.hd.type != NGHTTP2_HEADERS || frame.headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  if (auto st = find(frame.hd.stream_id)) st->add_field(name, value);
  return 0;
}

int http2_connection::on_frame_recv(const nghttp2_frame& frame) {
  if (frame.hd.type == NGHTTP2_RST_STREAM) {  // called before nghttp2 closes the stream
    on_peer_reset(frame.hd.stream_id);
    return 0;
  }
  if (frame.hd.type != NGHTTP2_HEADERS && frame.hd.type != NGHTTP2_DATA) return 0;
  auto st = find(frame.hd.stream_id);
  if (!st) return 0;
  const bool end_stream = (frame.hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  if (end_stream) st->on_request_end();
  if (frame.hd.type != NGHTTP2_HEADERS || frame.headers.cat != NGHTTP2_HCAT_REQUEST) return 0;

  const std::int32_t id = frame.hd.stream_id;
  if (st->over_limit()) {
    ctx_.stats.h2_headers_refused();
    // 431 through the handler's refuse(), so it is counted and logged as every answer is;
    // the head shows what arrived within the limits.
    st->build_request(ctx_, end_stream);
    start_handler(std::move(st), access::refusal::header_too_large);
    return 0;
  }
  if (!st->build_request(ctx_, end_stream)) {
    st->on_handler_done();
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_PROTOCOL_ERROR);
    return 0;
  }
  // Handlers outlive their streams when clients reset them; without a cap, reset-and-reopen
  // ("rapid reset", CVE-2023-44487, which nghttp2 1.52 does not mitigate) would pile them up.
  if (handlers_.size() >= 2 * std::size_t{cfg().limit.h2_max_concurrent_streams}) {
    st->on_handler_done();
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_REFUSED_STREAM);
    return 0;
  }
  start_handler(std::move(st));
  return 0;
}

int http2_connection::on_frame_send(const nghttp2_frame& frame) {
  if (frame.hd.type == NGHTTP2_GOAWAY) {
    // nghttp2's own connection errors (bad padding, WINDOW_UPDATE of 0, flow control, a
    // closed stream's HEADERS ...) and ours; fail_connection has counted its own already.
    if (frame.goaway.error_code != NGHTTP2_NO_ERROR && !goaway_counted_) {
      goaway_counted_ = true;
      ctx_.stats.h2_connection_error(frame.goaway.error_code);
      log::info("conn={} client={} h2: GOAWAY {}", ctx_.connection_id,
                ctx_.client.address().to_string(), nghttp2_http2_strerror(frame.goaway.error_code));
    }
    return 0;
  }
  if (frame.hd.type == NGHTTP2_RST_STREAM) {
    if (frame.rst_stream.error_code != NGHTTP2_NO_ERROR)
      ctx_.stats.h2_stream_error(frame.rst_stream.error_code);
    return 0;
  }
  if ((frame.hd.type != NGHTTP2_HEADERS && frame.hd.type != NGHTTP2_DATA) ||
      (frame.hd.flags & NGHTTP2_FLAG_END_STREAM) == 0)
    return 0;
  // Response complete while the client still sends its request (RFC 9113 8.1): the stream is
  // half-closed(local). Its remaining frames are read, checked by nghttp2 and dropped for a
  // while (h2_drain_limit, h2_drain_time), then RST_STREAM(NO_ERROR) asks the client to stop.
  // Resetting at once would leave those frames unchecked: after an RST_STREAM a peer's
  // frames on the stream must be ignored (5.1), bad or not.
  if (auto st = find(frame.hd.stream_id); st && !st->request_complete())
    draining_[frame.hd.stream_id] = drain{clock::now() + h2_drain_time};
  return 0;
}

int http2_connection::on_data_chunk(std::uint8_t, std::int32_t stream_id, const std::uint8_t* data,
                                    std::size_t len) {
  if (auto st = find(stream_id)) {
    st->on_data(data, len);
    if (auto d = draining_.find(stream_id); d != draining_.end()) {
      d->second.bytes += len;
      drain_stream(*st);
    }
  } else {
    nghttp2_session_consume(session_, stream_id, len);  // a stream we dropped: window back
  }
  return 0;
}

int http2_connection::on_stream_close(std::int32_t stream_id, std::uint32_t error_code) {
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return 0;
  if (error_code != NGHTTP2_NO_ERROR && log::enabled(log::level::debug))
    log::debug("conn={} stream={} closed: {}", ctx_.connection_id, stream_id,
               nghttp2_http2_strerror(error_code));
  it->second->on_close(error_code, false);
  streams_.erase(it);
  draining_.erase(stream_id);
  return 0;
}

void http2_connection::on_peer_reset(std::int32_t stream_id) {
  auto st = find(stream_id);
  if (!st || st->response_complete() || terminated_) return;
  const auto now = clock::now();
  const auto& lim = cfg().limit;
  const bool conn_over = peer_resets_.add(now, lim.client_reset_window) > lim.client_resets;
  const bool client_over = note_client_reset(ctx_, http::protocol::http2, now);
  if (!conn_over && !client_over) return;
  // GOAWAY naming the last stream we processed, then close once it is sent: nghttp2 wants
  // neither read nor write after it, so write_loop shuts our side and lingers (see the top).
  terminated_ = true;
  calmed_ = true;
  nghttp2_session_terminate_session(session_, NGHTTP2_ENHANCE_YOUR_CALM);
  ctx_.stats.connection_closed_for_resets();
  // The address's warning (client_resets.cpp) comes once per penalty; a line per connection
  // only when this connection alone went over, since a penalized client may open many.
  if (conn_over)
    log::info(
        "conn={} client={} h2: more than {} streams reset within {} ms: GOAWAY "
        "ENHANCE_YOUR_CALM",
        ctx_.connection_id, ctx_.client.address().to_string(), lim.client_resets,
        lim.client_reset_window.count());
  else
    log::debug("conn={} client={} h2: client over its reset budget: GOAWAY ENHANCE_YOUR_CALM",
               ctx_.connection_id, ctx_.client.address().to_string());
  wake_writer();
}

// --- handlers -------------------------------------------------------------------------------

void http2_connection::start_handler(std::shared_ptr<http2_stream> st,
                                     std::optional<access::refusal> refused) {
  const std::int32_t id = st->id();
  auto run = [](request_handler& h, std::shared_ptr<http2_stream> s, connection_context& ctx,
                std::optional<access::refusal> refused) -> asio::awaitable<void> {
    // co_spawn dispatches: without this the handler would start inside nghttp2's
    // on_frame_recv callback, in the middle of mem_recv. Start it on a clean stack instead.
    co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    // s keeps the exchange alive for the whole call
    if (refused)
      co_await h.refuse(*s, ctx, *refused,
                        "request head over limits.max_header_bytes or limits.max_header_count");
    else
      co_await h.handle(*s, ctx);
  };
  auto task = run(ctx_.handler, st, ctx_, refused);
  asio::co_spawn(stream_.get_executor(), std::move(task), [this, st, id](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        log::error("conn={} stream={} handler threw: {}", ctx_.connection_id, id, ex.what());
      } catch (...) {
        log::error("conn={} stream={} handler threw", ctx_.connection_id, id);
      }
    }
    st->complete_abandoned();
    st->on_handler_done();
    handlers_.erase(id);
    handlers_wake_.cancel();
    wake_writer();
  });
  // Only once co_spawn succeeded (the handler starts after a post, so its completion cannot
  // have run yet): an entry here is what run() waits for, and only the completion removes it.
  handlers_[id] = std::move(st);
}

// --- the loops ------------------------------------------------------------------------------

void http2_connection::stop_io() {
  if (io_done_) return;
  io_done_ = true;
  boost::system::error_code ignored;
  boost::beast::get_lowest_layer(stream_).socket().cancel(ignored);
  writer_wake_.cancel();
  tick_timer_.cancel();
}

asio::awaitable<void> http2_connection::read_loop() {
  std::array<std::uint8_t, 16 * 1024> buf;
  while (!io_done_) {
    auto [ec, n] =
        co_await stream_.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
    if (ec) {
      // Peer closed, TLS truncation, our own cancel: expected endings, not errors.
      if (log::enabled(log::level::debug))
        log::debug("conn={} h2 read ended: {}", ctx_.connection_id, ec.message());
      break;
    }
    // Our side is done (only waiting for the peer's EOF), or ended for resets: a flood's
    // remaining frames are not worth decoding.
    if (lingering_ || calmed_) continue;
    const ssize_t rv = nghttp2_session_mem_recv(session_, buf.data(), n);
    if (rv == NGHTTP2_ERR_FLOODED || rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS ||
        rv == NGHTTP2_ERR_TOO_MANY_SETTINGS) {
      // nghttp2 stops here without a word to the client: tell it why, and count it.
      fail_connection(NGHTTP2_ENHANCE_YOUR_CALM, nghttp2_strerror(static_cast<int>(rv)));
      continue;
    }
    if (rv < 0) {
      log::info("conn={} h2 session error: {}", ctx_.connection_id,
                nghttp2_strerror(static_cast<int>(rv)));
      break;
    }
    wake_writer();
  }
  stop_io();
}

asio::awaitable<void> http2_connection::write_loop() {
  std::string batch;
  batch.reserve(h2_write_batch + 16 * 1024);
  while (!io_done_) {
    batch.clear();
    while (batch.size() < h2_write_batch) {
      const std::uint8_t* data = nullptr;
      const ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n < 0) {
        log::info("conn={} h2 send error: {}", ctx_.connection_id,
                  nghttp2_strerror(static_cast<int>(n)));
        stop_io();
        co_return;
      }
      if (n == 0) break;
      batch.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
    }
    if (!batch.empty()) {
      write_in_flight_ = true;
      write_started_ = clock::now();
      auto [ec, n] = co_await asio::async_write(stream_, asio::buffer(batch),
                                                asio::as_tuple(asio::use_awaitable));
      write_in_flight_ = false;
      if (ec) {
        stop_io();
        co_return;
      }
      continue;
    }
    if (nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0) {
      // Everything said, GOAWAY included: shut our send side and linger for the peer's EOF.
      lingering_ = true;
      linger_until_ = clock::now() + linger_time;
      boost::system::error_code ignored;
      boost::beast::get_lowest_layer(stream_).socket().shutdown(
          asio::ip::tcp::socket::shutdown_send, ignored);
      co_return;
    }
    writer_wake_.expires_at(clock::time_point::max());
    co_await writer_wake_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

asio::awaitable<void> http2_connection::tick_loop() {
  while (!io_done_) {
    tick_timer_.expires_after(tick_interval);
    co_await tick_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    if (!io_done_) on_tick();
  }
}

void http2_connection::on_tick() {
  const auto now = clock::now();
  const auto& t = cfg().timeout;
  if (lingering_) {
    if (now >= linger_until_) stop_io();
    return;
  }
  if (now >= close_by_) {  // failed, and the client does not read its GOAWAY
    stop_io();
    return;
  }
  for (auto& [id, d] : draining_)
    if (!d.reset && now >= d.until)
      if (auto st = find(id)) drain_stream(*st);
  if (write_in_flight_ && now - write_started_ > t.client_idle) {
    log::info("conn={} h2 client stopped reading: closing", ctx_.connection_id);
    stop_io();
    return;
  }
  if (!streams_.empty() || !handlers_.empty()) {
    idle_since_ = now;
  } else if (!terminated_ && now - idle_since_ >= t.client_idle) {
    terminated_ = true;
    nghttp2_session_terminate_session(session_, NGHTTP2_NO_ERROR);
    wake_writer();
  }
  if (ctx_.stopping == nullptr || !*ctx_.stopping || terminated_) return;
  // Graceful stop (RFC 9113 6.8): a notice first, so requests already in flight towards us
  // are still taken; one tick later the GOAWAY naming the last stream we process.
  if (!notice_sent_) {
    notice_sent_ = true;
    stop_started_ = now;
    nghttp2_submit_shutdown_notice(session_);
  } else if (!goaway_sent_) {
    goaway_sent_ = true;
    nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                          nullptr, 0);
  } else if (now - stop_started_ >= t.shutdown_grace) {
    terminated_ = true;
    nghttp2_session_terminate_session(session_, NGHTTP2_NO_ERROR);
  }
  wake_writer();
}

asio::awaitable<void> http2_connection::run() {
  using namespace asio::experimental::awaitable_operators;
  // Our loops keep their own timeouts; Beast's per-operation timer would fire on the reader
  // that legitimately waits for the next request.
  boost::beast::get_lowest_layer(stream_).expires_never();
  // Frames are small and interleaved (WINDOW_UPDATE, SETTINGS ACK, a response head): Nagle
  // plus the peer's delayed ACK would hold each of them ~40 ms, once per window round trip.
  boost::system::error_code nodelay_ec;  // best effort
  boost::beast::get_lowest_layer(stream_).socket().set_option(asio::ip::tcp::no_delay(true),
                                                              nodelay_ec);
  idle_since_ = clock::now();

  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, cfg().limit.h2_max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<std::uint32_t>(h2_stream_window)},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
       static_cast<std::uint32_t>(cfg().limit.max_header_bytes)},
  };
  if (session_ == nullptr ||
      nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings)) != 0 ||
      nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, h2_connection_window) !=
          0) {
    log::error("conn={} h2 session set-up failed", ctx_.connection_id);
  } else {
    try {
      co_await (read_loop() && write_loop() && tick_loop());
    } catch (const std::exception& e) {
      // Only allocation failures get here; the group has waited for all three loops, and
      // the handlers must still be waited for below.
      log::error("conn={} h2 session failed: {}", ctx_.connection_id, e.what());
      stop_io();
    }
  }

  // The connection is over: detach every stream so handler calls fail fast, then wait.
  for (auto& [id, st] : streams_)
    st->on_close(NGHTTP2_CANCEL, true);
  for (auto& [id, st] : handlers_)
    st->on_close(NGHTTP2_CANCEL, true);
  streams_.clear();
  while (!handlers_.empty()) {
    handlers_wake_.expires_after(1s);
    co_await handlers_wake_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  boost::system::error_code ignored;
  boost::beast::get_lowest_layer(stream_).socket().close(ignored);
}

asio::awaitable<void> run_http2_session(http::tls_stream& stream, connection_context& ctx) {
  // The open-connections gauge, as http1_session keeps it: up for the whole session.
  struct gauge {
    account::metrics& m;
    explicit gauge(account::metrics& mm) : m(mm) { m.connection_opened(http::protocol::http2); }
    ~gauge() { m.connection_closed(http::protocol::http2); }
    gauge(const gauge&) = delete;
    gauge& operator=(const gauge&) = delete;
  } open_connection(ctx.stats);
  http2_connection conn(stream, ctx);
  co_await conn.run();
}

}  // namespace storecache::proxy
