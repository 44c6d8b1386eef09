// Byte ranges (RFC 9110 §14): parsing Range, resolving it against a stored object's length,
// formatting Content-Range, and evaluating If-Range (§13.1.5).
//
// The RFC's rules as applied here:
//   - A Range that does not parse (unknown unit, bad syntax, first > last, numbers that do
//     not fit in 64 bits, more than max_range_specs ranges) is ignored: answer 200 with the
//     whole object. That is always a correct answer to a range request.
//   - A range is satisfiable when first < length, or when it is a suffix "-n" with n > 0 on
//     a non-empty object; "a-b" past the end is clamped to length - 1; "-n" larger than the
//     object is the whole object. None satisfiable: 416 with "Content-Range: bytes */length".
//   - Several ranges: every satisfiable one is returned, in request order; the caller decides
//     between multipart/byteranges and the whole 200.
//   - An empty object (length 0) has no byte to send: a suffix range there is answered with
//     the whole (empty) 200, any other range with 416.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cache/http_fields.hpp"

namespace storecache::cache {

// One byte-range-spec as written: "a-b" (first, last), "a-" (first only), "-n" (suffix).
struct range_spec {
  std::optional<std::uint64_t> first;  // absent: suffix range
  std::optional<std::uint64_t> last;   // for a suffix range: the suffix length
  friend bool operator==(const range_spec&, const range_spec&) = default;
};

// More ranges than this in one request are treated as an attack on the server (§14.2 notes
// that many small or overlapping ranges are a denial-of-service vector): ignored.
inline constexpr std::size_t max_range_specs = 64;

// Parses "bytes=0-499, -500" (unit case-insensitive, OWS around commas allowed). nullopt
// means: ignore the Range field.
std::optional<std::vector<range_spec>> parse_range(std::string_view value);

// An inclusive byte span inside an object: [first, last].
struct byte_span {
  std::uint64_t first = 0;
  std::uint64_t last = 0;
  std::uint64_t length() const { return last - first + 1; }
  friend bool operator==(const byte_span&, const byte_span&) = default;
};

enum class range_outcome {
  whole,          // serve 200 with the whole object
  partial,        // serve 206 with `spans`
  unsatisfiable,  // serve 416 with unsatisfied_content_range(length)
};

struct range_resolution {
  range_outcome outcome = range_outcome::whole;
  std::vector<byte_span> spans;  // partial only, in request order
};

// Resolves parsed specs against the object's length.
range_resolution resolve_ranges(const std::vector<range_spec>& specs, std::uint64_t length);

// Range field value (or nullopt when the request had none) + length -> what to send.
range_resolution evaluate_range(std::optional<std::string_view> range_value, std::uint64_t length);

// "bytes 0-499/1234".
std::string content_range(byte_span span, std::uint64_t length);
// "bytes */1234", for 416.
std::string unsatisfied_content_range(std::uint64_t length);

// §13.1.5: may the Range be honoured given this If-Range value and the stored response's
// fields? An entity-tag must strongly match the stored ETag; an HTTP-date must exactly equal
// the stored Last-Modified, which must itself be strong (at least one second older than the
// stored Date). Anything else (weak tag, bad date, no validator): false, serve 200.
bool if_range_matches(std::string_view if_range_value, const header_list& stored_response_headers);

}  // namespace storecache::cache
