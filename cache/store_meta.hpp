// What the index keeps about one stored response, and its on-disk encoding.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "cache/http_fields.hpp"

namespace storecache::cache {

using clock_time = std::chrono::system_clock::time_point;

// The response as the policy layer wants it stored: given to insert_handle::commit() and
// store::update_head() (a 304 refreshes it).
struct stored_head {
  unsigned status = 200;
  header_list headers;       // as they will be served (no hop-by-hop fields)
  clock_time request_time;   // RFC 9111 §4.2.3: when the request that got it was sent
  clock_time response_time;  // ... and when the response arrived
};

enum class body_location : std::uint8_t { inline_value = 0, file = 1 };

struct object_meta {
  std::string primary_key;  // the full cache key (URL part), to detect hash collisions
  std::string variant_key;  // secondary key built from the Vary'd request fields ("" if none)
  stored_head head;
  std::uint64_t body_size = 0;
  std::uint32_t checksum = 0;  // CRC32C of the whole body
  body_location location = body_location::inline_value;
  std::uint64_t object_id = 0;    // unique per stored body; names the file for file bodies
  std::uint64_t access_tick = 0;  // logical clock of the last (flushed) access: LRU order
  std::uint64_t charge = 0;       // bytes this object counts against max_size
};

// Encoding: little-endian fixed fields, then length-prefixed strings. The access tick comes
// first so that recency flushes can patch it in a copy without decoding the rest.
inline constexpr std::uint8_t meta_format = 1;
std::string encode_meta(const object_meta& m);
// nullopt when the bytes are not a valid encoding (a damaged entry is dropped, not served).
std::optional<object_meta> decode_meta(std::string_view bytes);
// The access tick of an encoded entry (0 if too short to hold one).
std::uint64_t encoded_access_tick(std::string_view bytes);
// A copy of an encoded entry with another access tick.
std::string with_access_tick(std::string_view bytes, std::uint64_t tick);

}  // namespace storecache::cache
