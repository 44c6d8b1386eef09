// The response side of one HTTP/2 stream as a state machine (STYLE rule 7), kept apart from
// the I/O so the legal orders of exchange calls are a table that can be tested on its own.
//
//   idle --head--> streaming --body*--> --finish--> complete
//   idle --head_end_stream--> complete
//   idle|streaming --abort|closed--> reset        (RST_STREAM sent or received, or the
//                                                  connection died: nothing more goes out)
//   complete --closed|abort--> complete           (the response is whole; abort is too late
//                                                  to matter and must not cut queued bytes)
//   reset --anything--> reset                     (calls fail, abort is a no-op)
//
// Every other pair (a body before the head, a second head, a body after finish) is a bug in
// the caller: the transition function answers nullopt and the exchange returns an error.
#pragma once

#include <optional>
#include <string_view>

namespace storecache::proxy {

enum class h2_response_state { idle, streaming, complete, reset };

enum class h2_response_event {
  head,             // send_head(end_stream = false)
  head_end_stream,  // send_head(end_stream = true)
  body,             // send_body
  finish,           // finish
  abort,            // abort
  closed,           // the stream closed (peer reset, or the connection went away)
};

constexpr std::optional<h2_response_state> next_state(h2_response_state s, h2_response_event e) {
  using st = h2_response_state;
  using ev = h2_response_event;
  switch (s) {
    case st::idle:
      switch (e) {
        case ev::head:
          return st::streaming;
        case ev::head_end_stream:
          return st::complete;
        case ev::abort:
        case ev::closed:
          return st::reset;
        case ev::body:
        case ev::finish:
          return std::nullopt;
      }
      break;
    case st::streaming:
      switch (e) {
        case ev::body:
          return st::streaming;
        case ev::finish:
          return st::complete;
        case ev::abort:
        case ev::closed:
          return st::reset;
        case ev::head:
        case ev::head_end_stream:
          return std::nullopt;
      }
      break;
    case st::complete:
      switch (e) {
        case ev::abort:
        case ev::closed:
          return st::complete;
        default:
          return std::nullopt;
      }
    case st::reset:
      return st::reset;
  }
  return std::nullopt;
}

constexpr std::string_view to_string(h2_response_state s) {
  switch (s) {
    case h2_response_state::idle:
      return "idle";
    case h2_response_state::streaming:
      return "streaming";
    case h2_response_state::complete:
      return "complete";
    case h2_response_state::reset:
      return "reset";
  }
  return "?";
}

}  // namespace storecache::proxy
