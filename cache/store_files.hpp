// File-system helpers of the body store: owned descriptors, full writes, durable renames and
// the layout of <dir>/objects (body files in 256 fan-out folders, temporary files in tmp/).
#pragma once

#include <boost/system/error_code.hpp>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace storecache::cache::detail {

using boost::system::error_code;

// The calling thread's errno as an error_code.
error_code last_error() noexcept;

class unique_fd {
 public:
  unique_fd() = default;
  explicit unique_fd(int fd) : fd_(fd) {}
  unique_fd(unique_fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  unique_fd& operator=(unique_fd&& o) noexcept;
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() { reset(); }

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  void reset() noexcept;

 private:
  int fd_ = -1;
};

// Writes all of data at the current position (retrying short writes and EINTR).
error_code write_all(int fd, std::string_view data) noexcept;
// Reads up to n bytes at offset (retrying EINTR and short reads until EOF); the count read.
std::size_t pread_full(int fd, char* out, std::size_t n, std::uint64_t offset,
                       error_code& ec) noexcept;
// fsync of a directory, so that a rename or unlink inside it is durable.
error_code fsync_dir(const std::filesystem::path& dir) noexcept;

// "<dir>/objects/ab/0123456789abcdef" for id 0x0123456789abcdef ("ab" = low byte of the id).
class object_layout {
 public:
  explicit object_layout(std::filesystem::path cache_dir);

  const std::filesystem::path& objects_dir() const { return objects_; }
  const std::filesystem::path& tmp_dir() const { return tmp_; }
  std::filesystem::path fan_dir(std::uint64_t id) const;
  std::filesystem::path body_path(std::uint64_t id) const;
  std::filesystem::path temp_path(std::uint64_t id) const;
  // Creates objects/, objects/tmp/ and the 256 fan-out folders.
  error_code create_dirs() const;
  // The id a body file name encodes, or nullopt for names we do not write.
  static std::optional<std::uint64_t> parse_name(std::string_view file_name);

 private:
  std::filesystem::path objects_;
  std::filesystem::path tmp_;
};

}  // namespace storecache::cache::detail
