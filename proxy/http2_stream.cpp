// One HTTP/2 stream as an exchange. Runs on the connection's executor only (the handler
// coroutine is spawned there), so nothing here needs a lock. Life cycle: see http2_stream.hpp;
// the response state machine: see http2_stream_state.hpp.
#include "proxy/http2_stream.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/errc.hpp>
#include <charconv>
#include <cstring>
#include <string>
#include <vector>

#include "proxy/connection_context.hpp"
#include "proxy/http2_connection.hpp"

namespace storecache::proxy {

namespace {

namespace errc = boost::system::errc;

error_code gone() {
  return asio::error::connection_reset;
}
error_code illegal_call() {
  return errc::make_error_code(errc::operation_not_permitted);
}
error_code length_mismatch() {
  return errc::make_error_code(errc::message_size);
}

// Connection-specific fields are forbidden in HTTP/2 (RFC 9113 8.2.2): a client must treat a
// response carrying them as malformed, so they are dropped rather than forwarded.
bool forbidden_in_h2(std::string_view name) {
  return name == "connection" || name == "keep-alive" || name == "proxy-connection" ||
         name == "transfer-encoding" || name == "upgrade" || name == "te" ||
         name == "content-length" || name.starts_with(':');
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

nghttp2_nv make_nv(std::string_view name, std::string_view value) {
  // nghttp2 copies both (NGHTTP2_NV_FLAG_NONE) before submit returns; the casts only satisfy
  // its non-const C signature.
  return {reinterpret_cast<std::uint8_t*>(const_cast<char*>(name.data())),
          reinterpret_cast<std::uint8_t*>(const_cast<char*>(value.data())), name.size(),
          value.size(), NGHTTP2_NV_FLAG_NONE};
}

ssize_t read_response_cb(nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t len,
                         std::uint32_t* data_flags, nghttp2_data_source* source, void*) {
  // The stream outlives this: it stays in the connection's table until on_stream_close, after
  // which nghttp2 never asks its data source again.
  return static_cast<http2_stream*>(source->ptr)->read_response(buf, len, data_flags);
}

}  // namespace

http2_stream::http2_stream(http2_connection& conn, std::int32_t id, const asio::any_io_executor& ex)
    : conn_(&conn), id_(id), read_wake_(ex), write_wake_(ex) {}

// --- request --------------------------------------------------------------------------------

bool http2_stream::add_field(std::string_view name, std::string_view value) {
  // Counted as SETTINGS_MAX_HEADER_LIST_SIZE counts (RFC 9113 6.5.2): octets plus 32 per
  // field, pseudo-headers included; the count limit is on regular fields only.
  field_bytes_ += name.size() + value.size() + 32;
  const bool pseudo = name.starts_with(':');
  if (!pseudo) ++field_count_;
  const auto& lim = conn_->cfg().limit;
  if (field_bytes_ > lim.max_header_bytes || field_count_ > lim.max_header_count) {
    if (!over_limit_) head_.headers.clear();  // nothing of it will be used: free it now
    over_limit_ = true;
  }
  if (over_limit_) return false;

  if (pseudo) {
    if (name == ":method")
      method_ = value;
    else if (name == ":scheme")
      scheme_ = value;
    else if (name == ":authority")
      authority_ = value;
    else if (name == ":path")
      path_ = value;
    return true;  // nghttp2 has already refused unknown pseudo-headers
  }
  if (name == "host") {
    host_ = value;
    return true;
  }
  if (name == "cookie") {
    // h2 lets clients split Cookie into crumbs; rejoin them before anything that speaks
    // HTTP/1.1 sees the head (RFC 9113 8.2.3).
    for (auto& h : head_.headers) {
      if (h.name == "cookie") {
        h.value.append("; ").append(value);
        return true;
      }
    }
  }
  head_.headers.push_back({std::string(name), std::string(value)});
  return true;
}

bool http2_stream::build_request(const connection_context& ctx, bool end_stream) {
  // Who asked, first: a request refused for its head (431) is logged with it.
  head_.proto = http::protocol::http2;
  head_.client_address = ctx.client.address();
  head_.client_port = ctx.client.port();
  head_.sni = ctx.sni;
  head_.connection_id = ctx.connection_id;
  head_.stream_id = static_cast<std::uint32_t>(id_);
  const bool connect = method_ == "CONNECT";
  if (method_.empty() || (!connect && (path_.empty() || scheme_.empty()))) return false;
  head_.method = method_;
  head_.scheme = scheme_.empty() ? "https" : scheme_;
  head_.authority = !authority_.empty() ? authority_ : host_;
  // CONNECT carries no :path; like HTTP/1.1's authority-form, the target is the authority.
  head_.target = connect ? head_.authority : path_;
  if (auto cl = find_header(head_.headers, "content-length")) {
    std::uint64_t n = 0;
    auto [p, ec] = std::from_chars(cl->data(), cl->data() + cl->size(), n);
    if (ec != std::errc() || p != cl->data() + cl->size()) return false;
    head_.content_length = n;
  }
  head_.has_body = !end_stream;
  return true;
}

void http2_stream::on_data(const std::uint8_t* data, std::size_t len) {
  unconsumed_ += len;
  if (handler_done_) {
    give_back(len);  // nobody will read it: let it flow through without keeping it
    return;
  }
  // Drop the consumed prefix once it outweighs what is left (amortised O(1) per byte).
  if (in_pos_ > 0 && in_pos_ >= in_.size() - in_pos_) {
    in_.erase(0, in_pos_);
    in_pos_ = 0;
  }
  in_.append(reinterpret_cast<const char*>(data), len);
  read_wake_.cancel();
}

void http2_stream::on_request_end() {
  in_end_ = true;
  read_wake_.cancel();
}

void http2_stream::give_back(std::size_t n) {
  n = std::min(n, unconsumed_);
  if (n == 0 || conn_ == nullptr || conn_->session() == nullptr) return;
  unconsumed_ -= n;
  // Counts for the connection window always, and for the stream's while nghttp2 knows it.
  nghttp2_session_consume(conn_->session(), id_, n);
  conn_->wake_writer();
}

void http2_stream::on_handler_done() {
  handler_done_ = true;
  in_.clear();
  in_pos_ = 0;
  give_back(unconsumed_);
}

void http2_stream::on_close(std::uint32_t error_code, bool conn_gone) {
  if (!closed_) {
    closed_ = true;
    close_code_ = error_code;
    // Request bytes still unread hold connection window: give it back now, as the stream's
    // own window no longer matters. (A handler may still read what is buffered.)
    give_back(unconsumed_);
    if (auto s = next_state(state_, h2_response_event::closed)) state_ = *s;
    out_.clear();
    out_pos_ = 0;
  }
  if (conn_gone) conn_ = nullptr;
  read_wake_.cancel();
  write_wake_.cancel();
}

asio::awaitable<bool> http2_stream::wait(asio::steady_timer& t) {
  if (conn_ == nullptr) co_return false;
  t.expires_after(conn_->cfg().timeout.client_idle);
  auto [ec] = co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
  co_return ec == asio::error::operation_aborted;
}

asio::awaitable<std::size_t> http2_stream::read_body(asio::mutable_buffer buf, error_code& ec) {
  ec = {};
  if (buf.size() == 0) co_return 0;
  for (;;) {
    if (in_pos_ < in_.size()) {
      const std::size_t n = std::min(buf.size(), in_.size() - in_pos_);
      std::memcpy(buf.data(), in_.data() + in_pos_, n);
      in_pos_ += n;
      if (in_pos_ == in_.size()) {
        in_.clear();
        in_pos_ = 0;
      }
      give_back(n);  // only now may the client send more: memory stays within the window
      co_return n;
    }
    if (in_end_) co_return 0;
    if (!alive()) {
      ec = gone();
      co_return 0;
    }
    if (!co_await wait(read_wake_)) {
      if (in_pos_ < in_.size() || in_end_) continue;
      ec = asio::error::timed_out;
      co_return 0;
    }
  }
}

// --- response -------------------------------------------------------------------------------

bool http2_stream::apply(h2_response_event e) {
  auto s = next_state(state_, e);
  if (!s) return false;
  state_ = *s;
  return true;
}

asio::awaitable<error_code> http2_stream::send_interim(const http::response_head& head) {
  if (!alive()) co_return gone();
  // A 1xx is a HEADERS frame without END_STREAM before the final one (RFC 9113 §8.1); 101 is
  // not allowed in HTTP/2 (§8.6). After the final head there is no place for it.
  if (state_ != h2_response_state::idle || head.status < 100 || head.status > 199 ||
      head.status == 101)
    co_return error_code{};
  const std::string status = std::to_string(head.status);
  std::vector<std::string> names;  // lower-cased copies, alive until submit returns
  names.reserve(head.headers.size());
  std::vector<nghttp2_nv> nv;
  nv.reserve(head.headers.size() + 1);
  nv.push_back(make_nv(":status", status));
  for (const auto& h : head.headers) {
    names.push_back(lower(h.name));
    if (forbidden_in_h2(names.back())) continue;
    nv.push_back(make_nv(names.back(), h.value));
  }
  if (nghttp2_submit_headers(conn_->session(), NGHTTP2_FLAG_NONE, id_, nullptr, nv.data(),
                             nv.size(), nullptr) < 0)
    co_return errc::make_error_code(errc::protocol_error);
  conn_->wake_writer();
  co_return error_code{};
}

asio::awaitable<error_code> http2_stream::send_head(const http::response_head& head,
                                                    bool end_stream) {
  if (!alive()) co_return gone();
  const auto ev = end_stream ? h2_response_event::head_end_stream : h2_response_event::head;
  if (!next_state(state_, ev)) co_return illegal_call();

  const std::string status =
      std::to_string(head.status >= 100 && head.status <= 999 ? head.status : 500);
  const std::string length =
      head.content_length ? std::to_string(*head.content_length) : std::string();
  std::vector<std::string> names;  // lower-cased copies, alive until submit returns
  names.reserve(head.headers.size());
  std::vector<nghttp2_nv> nv;
  nv.reserve(head.headers.size() + 2);
  nv.push_back(make_nv(":status", status));
  // RFC 9110 §8.6: never on a 204 (nor a 1xx); a stored 204 knows its length is 0.
  if (head.content_length && head.status != 204 && head.status >= 200)
    nv.push_back(make_nv("content-length", length));
  for (const auto& h : head.headers) {
    names.push_back(lower(h.name));
    if (forbidden_in_h2(names.back())) continue;
    nv.push_back(make_nv(names.back(), h.value));
  }

  nghttp2_data_provider provider{};
  provider.source.ptr = this;
  provider.read_callback = read_response_cb;
  const int rv = nghttp2_submit_response(conn_->session(), id_, nv.data(), nv.size(),
                                         end_stream ? nullptr : &provider);
  if (rv != 0) co_return errc::make_error_code(errc::protocol_error);
  apply(ev);
  content_length_ = head.content_length;
  conn_->wake_writer();
  co_return error_code{};
}

asio::awaitable<error_code> http2_stream::send_body(asio::const_buffer data) {
  if (!alive() || state_ == h2_response_state::reset) co_return gone();
  if (!next_state(state_, h2_response_event::body)) co_return illegal_call();
  if (data.size() == 0) co_return error_code{};
  if (content_length_ && body_sent_ + data.size() > *content_length_) {
    abort();  // more than announced: the client must not take any of it as the response
    co_return length_mismatch();
  }
  if (out_pos_ > 0 && out_pos_ >= out_.size() - out_pos_) {
    out_.erase(0, out_pos_);
    out_pos_ = 0;
  }
  out_.append(static_cast<const char*>(data.data()), data.size());
  body_sent_ += data.size();
  nghttp2_session_resume_data(conn_->session(), id_);
  conn_->wake_writer();

  // Back-pressure: the producer waits while the client is behind by a high-water mark.
  while (conn_ != nullptr && out_.size() - out_pos_ >= conn_->send_high_water()) {
    if (!alive() || state_ == h2_response_state::reset) co_return gone();
    const std::size_t before = out_pos_;
    if (!co_await wait(write_wake_) && out_pos_ == before && out_.size() - out_pos_ > 0) {
      abort();  // the client read nothing for client_idle
      co_return error_code(asio::error::timed_out);
    }
  }
  co_return error_code{};
}

asio::awaitable<error_code> http2_stream::finish() {
  if (!alive() || state_ == h2_response_state::reset) co_return gone();
  if (!next_state(state_, h2_response_event::finish)) co_return illegal_call();
  if (content_length_ && body_sent_ != *content_length_) {
    abort();
    co_return length_mismatch();
  }
  apply(h2_response_event::finish);
  nghttp2_session_resume_data(conn_->session(), id_);
  conn_->wake_writer();
  co_return error_code{};
}

void http2_stream::abort() {
  const bool was_reset = state_ == h2_response_state::reset;
  if (!apply(h2_response_event::abort) || was_reset || state_ != h2_response_state::reset)
    return;  // already reset, or complete (nothing to cut)
  out_.clear();
  out_pos_ = 0;
  if (alive()) {
    nghttp2_submit_rst_stream(conn_->session(), NGHTTP2_FLAG_NONE, id_, NGHTTP2_INTERNAL_ERROR);
    conn_->wake_writer();
  }
  write_wake_.cancel();
}

void http2_stream::complete_abandoned() {
  if (!alive()) return;
  if (state_ == h2_response_state::idle) {
    const nghttp2_nv nv[] = {make_nv(":status", "500"), make_nv("content-length", "0")};
    if (nghttp2_submit_response(conn_->session(), id_, nv, 2, nullptr) == 0) {
      apply(h2_response_event::head_end_stream);
      conn_->wake_writer();
      return;
    }
  }
  abort();  // never let a partial response pass as complete (no-op once complete)
}

ssize_t http2_stream::read_response(std::uint8_t* buf, std::size_t len, std::uint32_t* data_flags) {
  if (state_ == h2_response_state::reset) return NGHTTP2_ERR_DEFERRED;  // RST_STREAM is queued
  const std::size_t n = std::min(len, out_.size() - out_pos_);
  if (n > 0) std::memcpy(buf, out_.data() + out_pos_, n);
  out_pos_ += n;
  if (out_pos_ == out_.size()) {
    out_.clear();
    out_pos_ = 0;
  }
  if (conn_ != nullptr && out_.size() - out_pos_ < conn_->send_high_water()) write_wake_.cancel();
  if (out_.empty() && state_ == h2_response_state::complete) {
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }
  if (n == 0) return NGHTTP2_ERR_DEFERRED;  // send_body or finish resumes it
  return static_cast<ssize_t>(n);
}

}  // namespace storecache::proxy
