// The client stream identifiers one HTTP/2 connection has opened, so that a HEADERS frame on
// a lower identifier can be told apart (RFC 9113 5.1.1):
//   - a stream that was opened and is closed now (late trailers, frames in flight after our
//     RST_STREAM): a closed-stream matter, which nghttp2 handles or ignores as 5.1 allows;
//   - an identifier never used: a new stream lower than one already opened, which "MUST" be
//     a connection error PROTOCOL_ERROR. nghttp2 1.52 only ignores that header block, and the
//     client waits for an answer that never comes.
// Bounded: the 1,024 odd identifiers below the highest are remembered in a bitset (128 bytes
// a connection). Anything lower is treated as unused; for a stream that was used that long
// ago, 5.1 allows a connection error too (an endpoint "MAY choose to limit the period over
// which it ignores frames").
#pragma once

#include <bitset>
#include <cstdint>

namespace storecache::proxy {

class client_stream_ids {
 public:
  static constexpr std::size_t remembered = 1024;  // odd identifiers below the highest

  enum class kind { new_stream, used, lower_unused };

  // What a HEADERS frame on client stream `id` (odd, nonzero) that nghttp2 does not know
  // would be.
  kind classify(std::int32_t id) const {
    if (id > highest_) return kind::new_stream;
    const auto back = static_cast<std::uint32_t>(highest_ - id) / 2;
    return back < remembered && seen_[back] ? kind::used : kind::lower_unused;
  }

  // A HEADERS frame used identifier `id` (a lower one changes nothing).
  void opened(std::int32_t id) {
    if (id <= highest_) return;
    const auto shift = static_cast<std::uint32_t>(id - highest_) / 2;
    if (shift >= remembered)
      seen_.reset();
    else
      seen_ <<= shift;
    seen_.set(0);
    highest_ = id;
  }

  std::int32_t highest() const { return highest_; }

 private:
  std::int32_t highest_ = 0;
  std::bitset<remembered> seen_;  // bit i: identifier highest_ - 2i was used
};

}  // namespace storecache::proxy
