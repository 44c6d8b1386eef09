#include "cache/store_files.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace storecache::cache::detail {

namespace {
// No fmt here: the cache library links nothing it does not need.
std::string hex(std::uint64_t v, int width) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%0*llx", width, static_cast<unsigned long long>(v));
  return buf;
}
}  // namespace

error_code last_error() noexcept {
  return error_code(errno, boost::system::system_category());
}

unique_fd& unique_fd::operator=(unique_fd&& o) noexcept {
  if (this != &o) {
    reset();
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

void unique_fd::reset() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

error_code write_all(int fd, std::string_view data) noexcept {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return last_error();
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

std::size_t pread_full(int fd, char* out, std::size_t n, std::uint64_t offset,
                       error_code& ec) noexcept {
  ec.clear();
  std::size_t done = 0;
  while (done < n) {
    const ssize_t r = ::pread(fd, out + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      ec = last_error();
      break;
    }
    if (r == 0) break;
    done += static_cast<std::size_t>(r);
  }
  return done;
}

error_code fsync_dir(const std::filesystem::path& dir) noexcept {
  unique_fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return last_error();
  if (::fsync(fd.get()) != 0) return last_error();
  return {};
}

object_layout::object_layout(std::filesystem::path cache_dir)
    : objects_(std::move(cache_dir) / "objects"), tmp_(objects_ / "tmp") {}

std::filesystem::path object_layout::fan_dir(std::uint64_t id) const {
  return objects_ / hex(id & 0xff, 2);
}

std::filesystem::path object_layout::body_path(std::uint64_t id) const {
  return fan_dir(id) / hex(id, 16);
}

std::filesystem::path object_layout::temp_path(std::uint64_t id) const {
  return tmp_ / (hex(id, 16) + ".part");
}

error_code object_layout::create_dirs() const {
  std::error_code ec;
  std::filesystem::create_directories(tmp_, ec);
  if (ec) return error_code(ec.value(), boost::system::system_category());
  for (std::uint64_t i = 0; i < 256; ++i) {
    std::filesystem::create_directory(fan_dir(i), ec);
    if (ec) return error_code(ec.value(), boost::system::system_category());
  }
  return fsync_dir(objects_);
}

std::optional<std::uint64_t> object_layout::parse_name(std::string_view name) {
  if (name.size() != 16) return std::nullopt;
  std::uint64_t id = 0;
  for (char c : name) {
    int d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else
      return std::nullopt;
    id = (id << 4) | static_cast<std::uint64_t>(d);
  }
  return id;
}

}  // namespace storecache::cache::detail
