// Requests refused on protocol grounds, and the HTTP/1.1 request-head checks that Beast's parser
// does not make. Pure: bytes in, a verdict out (no sockets, no Beast).
//
// Why a proxy is strict here (RFC 9112 §11.2, request smuggling): whatever we accept we forward,
// re-serialized, to an upstream that may read the original bytes differently. A head is refused
// when two readers could disagree on where it, or its body, ends:
//   - obs-fold (a field line continued on the next line), RFC 9112 §5.2: a server may reject;
//     Beast would silently unfold it.
//   - a bare LF or CR as a line end, RFC 9112 §2.2: a recipient may accept it; we do not.
//   - whitespace between the request line and the first field, RFC 9112 §2.2: reject or ignore.
//   - Transfer-Encoding whose last coding is not chunked (§6.3: 400), a coding other than
//     chunked (§6.1: 501, we do not decode it), chunked twice, or Transfer-Encoding in an
//     HTTP/1.0 request (§6.1: the framing is faulty).
// Content-Length and Transfer-Encoding together, and Content-Lengths that differ, Beast refuses
// itself; both are `framing`, as are bad chunk sizes (overflow) found while reading the body.
// "Content-Length: 5, 5" (or the field twice with one value) is accepted as 5: RFC 9110 §8.6
// lets a recipient replace such a list with the single value, and we forward only our own
// Content-Length, never the client's field.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace storecache::access {

enum class refusal : unsigned char {
  malformed,         // 400: not a request as RFC 9112 writes one (request line, fields, Host)
  framing,           // 400: the body's length is ambiguous or wrong (CL/TE, chunk sizes)
  line_ending,       // 400: obs-fold, a bare CR or LF, whitespace before the first field
  transfer_coding,   // 501: a transfer coding other than chunked
  header_timeout,    // 408: the head did not arrive within timeouts.client_header
  header_too_large,  // 431: head over limits.max_header_bytes
  too_many_headers,  // 431: over limits.max_header_count fields
  uri_too_long,      // 414: request-target over limits.max_uri_bytes
  body_too_large,    // 413: request body over limits.max_request_body
};
inline constexpr std::size_t refusal_count = 9;

// The label in /metrics (storecache_requests_refused_total{reason}) and the access log.
constexpr std::string_view to_string(refusal r) {
  constexpr std::array<std::string_view, refusal_count> names{
      "malformed",        "framing",          "line_ending",  "transfer_coding", "header_timeout",
      "header_too_large", "too_many_headers", "uri_too_long", "body_too_large"};
  return names[static_cast<std::size_t>(r)];
}

// The status code the client is answered with.
constexpr unsigned status_of(refusal r) {
  constexpr std::array<unsigned, refusal_count> codes{400, 400, 400, 501, 408, 431, 431, 414, 413};
  return codes[static_cast<std::size_t>(r)];
}

// Scans an HTTP/1.1 request head as its bytes arrive, before the parser sees them. Each call of
// scan() gets all bytes buffered so far (the same prefix plus what arrived); work done on earlier
// calls is not repeated, so a head sent a byte at a time costs O(n), not O(n^2).
class head_scanner {
 public:
  // max_head: limits.max_header_bytes; max_target: limits.max_uri_bytes.
  head_scanner(std::size_t max_head, std::size_t max_target)
      : max_head_(max_head), max_target_(max_target) {}

  enum class state { need_more, complete, refused };
  struct result {
    state st = state::need_more;
    std::size_t head_bytes = 0;        // complete: the head's length, its final CRLF CRLF included
    refusal why = refusal::malformed;  // refused: why, and in words below
    std::string_view detail;
  };
  result scan(std::string_view bytes);

 private:
  result refuse(refusal why, std::string_view detail) {
    done_ = result{state::refused, 0, why, detail};
    return done_;
  }

  std::size_t max_head_;
  std::size_t max_target_;
  std::size_t pos_ = 0;         // bytes examined so far
  std::size_t line_start_ = 0;  // where the current line began
  std::size_t lines_ = 0;       // complete lines so far (the request line is line 0)
  result done_{};               // once complete or refused, every further call returns it
};

// The request-target of a request line ("GET /x HTTP/1.1" -> "/x"); empty if there is none.
std::string_view request_target(std::string_view request_line);

// Checks a request's Transfer-Encoding field values (every field, in order) for an HTTP/1.x
// request (minor version given). nullopt: acceptable (none, or exactly "chunked").
struct transfer_coding_problem {
  refusal why;
  std::string_view detail;
};
std::optional<transfer_coding_problem> check_transfer_encoding(
    const std::vector<std::string_view>& values, unsigned http_minor);

}  // namespace storecache::access
