// Reads the body of one looked-up object, by byte range, from whichever thread.
//
// A file body is read with pread() on a descriptor opened at lookup time, so an eviction that
// unlinks the file meanwhile does not disturb a read in progress (the inode lives until the
// last descriptor closes). An inline body was copied out of the LMDB transaction at lookup.
//
// Integrity: the size was checked at lookup. Reads that run from offset 0 to the end in order
// (a whole-body response) also check the CRC32C on the way: if it disagrees, the read that
// would deliver the last bytes fails with store_errc::corrupt_body instead, the index entry is
// dropped, and the caller aborts the response, so a damaged body is never presented as complete.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "cache/store_error.hpp"
#include "cache/store_hash.hpp"

namespace storecache::cache {

namespace detail {
struct store_state;
class unique_fd;
}  // namespace detail

class body_reader {
 public:
  body_reader() = default;
  body_reader(body_reader&&) noexcept;
  body_reader& operator=(body_reader&&) noexcept;
  ~body_reader();

  std::uint64_t size() const { return size_; }
  bool is_inline() const { return inline_ != nullptr; }
  explicit operator bool() const { return inline_ || file_; }

  // An inline body as it was copied out of the index (checked at lookup): lets a hit send it
  // without another copy. Empty for file bodies.
  std::string_view inline_bytes() const {
    return inline_ ? std::string_view(*inline_) : std::string_view();
  }

  // Copies up to out.size() bytes starting at offset; returns how many (0 at or past the end).
  // Never returns fewer bytes than are left unless the file shrank (then: corrupt_body).
  result<std::size_t> read(std::uint64_t offset, std::span<char> out);

 private:
  friend class store;
  body_reader(std::shared_ptr<detail::store_state> owner, key_hash hash, std::uint64_t object_id,
              std::uint64_t size, std::uint32_t checksum);
  error_code check_sequential(std::uint64_t offset, std::span<const char> got);

  std::weak_ptr<detail::store_state> owner_;  // to drop a corrupt entry, if the store lives
  key_hash hash_;
  std::uint64_t object_id_ = 0;
  std::uint64_t size_ = 0;
  std::uint32_t checksum_ = 0;
  std::shared_ptr<const std::string> inline_;
  std::shared_ptr<detail::unique_fd> file_;
  std::uint64_t checked_to_ = 0;  // bytes [0, checked_to_) went through crc_
  std::uint32_t crc_ = 0;
  bool verified_ = false;
};

}  // namespace storecache::cache
