// CRC32C (Castagnoli) of body bytes, streamed. Written here rather than pulled from OpenSSL
// (which has no CRC32C) or a hash library: it is 60 lines, runs on the SSE4.2 crc32
// instruction where the CPU has it (several GB/s, so checking a body costs less than reading
// it) and falls back to a slicing-by-8 table elsewhere. It detects torn or truncated writes and
// bit rot; it is not a defence against someone who can write to the cache directory.
#pragma once

#include <cstdint>
#include <string_view>

namespace storecache::cache {

// crc = crc32c_update(crc, bytes) over consecutive pieces; start with 0.
std::uint32_t crc32c_update(std::uint32_t crc, std::string_view bytes) noexcept;

inline std::uint32_t crc32c(std::string_view bytes) noexcept {
  return crc32c_update(0, bytes);
}

}  // namespace storecache::cache
