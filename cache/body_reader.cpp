#include "cache/body_reader.hpp"

#include <algorithm>
#include <cstring>

#include "cache/body_checksum.hpp"
#include "cache/store_state.hpp"

namespace storecache::cache {

body_reader::body_reader(std::shared_ptr<detail::store_state> owner, key_hash hash,
                         std::uint64_t object_id, std::uint64_t size, std::uint32_t checksum)
    : owner_(owner), hash_(hash), object_id_(object_id), size_(size), checksum_(checksum) {}

body_reader::body_reader(body_reader&&) noexcept = default;
body_reader& body_reader::operator=(body_reader&&) noexcept = default;
body_reader::~body_reader() = default;

result<std::size_t> body_reader::read(std::uint64_t offset, std::span<char> out) {
  if (offset >= size_ || out.empty()) return std::size_t{0};
  const std::size_t n =
      static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), size_ - offset));
  if (inline_) {
    std::memcpy(out.data(), inline_->data() + offset, n);
    return n;  // checked at lookup
  }
  if (!file_) return store_errc::finished;
  error_code ec;
  const std::size_t got = detail::pread_full(file_->get(), out.data(), n, offset, ec);
  if (ec) return ec;
  if (got < n) {  // the file shrank under us: someone truncated it
    if (auto s = owner_.lock()) s->drop_corrupt(hash_, object_id_);
    return store_errc::corrupt_body;
  }
  if (!verified_) {
    if (auto cec = check_sequential(offset, {out.data(), got})) return cec;
  }
  return got;
}

error_code body_reader::check_sequential(std::uint64_t offset, std::span<const char> got) {
  const std::uint64_t end = offset + got.size();
  if (offset > checked_to_ || end <= checked_to_) return {};  // a gap or a re-read: no news
  const std::size_t skip = static_cast<std::size_t>(checked_to_ - offset);
  crc_ = crc32c_update(crc_, std::string_view(got.data() + skip, got.size() - skip));
  checked_to_ = end;
  if (checked_to_ < size_) return {};
  verified_ = true;
  if (crc_ == checksum_) return {};
  if (auto s = owner_.lock()) s->drop_corrupt(hash_, object_id_);
  return store_errc::corrupt_body;
}

}  // namespace storecache::cache
