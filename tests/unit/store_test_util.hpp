// Helpers shared by the store_*_test executables: a temporary cache directory, inserting and
// reading whole bodies, deterministic body bytes.
#pragma once

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>

#include "cache/store.hpp"

namespace store_test {

namespace fs = std::filesystem;
using namespace storecache::cache;

struct temp_dir {
  fs::path path;
  explicit temp_dir(const std::string& tag) {
    static int n = 0;
    path = fs::temp_directory_path() /
           ("store_test." + tag + "." + std::to_string(::getpid()) + "." + std::to_string(n++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

inline store_options small_options(const fs::path& dir) {
  store_options o;
  o.dir = dir;
  o.max_size = 64ull << 20;
  o.max_object_size = 16ull << 20;
  o.map_size = std::size_t{1} << 30;
  return o;
}

inline store open_store(const store_options& o) {
  auto s = store::open(o);
  if (!s) FAIL("store::open: " << s.error().message());
  return std::move(*s);
}

// Body bytes that differ per seed and per position, so misplaced ranges show up.
inline std::string make_body(std::size_t size, unsigned seed) {
  std::string b(size, '\0');
  std::uint32_t x = seed * 2654435761u + 1;
  for (std::size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b[i] = static_cast<char>(x);
  }
  return b;
}

inline stored_head make_head(unsigned status = 200) {
  stored_head h;
  h.status = status;
  h.headers = {{"content-type", "video/mp4"}, {"etag", "\"v1\""}};
  h.request_time = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
  h.response_time = h.request_time + std::chrono::milliseconds(250);
  return h;
}

inline bool same_headers(const header_list& a, const header_list& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].name != b[i].name || a[i].value != b[i].value) return false;
  return true;
}

// Inserts body in chunks of chunk bytes; returns the commit's error.
inline error_code insert(store& s, std::string_view primary, std::string_view body,
                         std::string_view variant = {}, std::size_t chunk = 64 * 1024,
                         const stored_head& head = make_head()) {
  auto h = s.begin_insert(primary, variant, body.size());
  if (!h) return h.error();
  for (std::size_t off = 0; off < body.size(); off += chunk)
    if (auto ec = h->append(body.substr(off, chunk))) return ec;
  return h->commit(head);
}

// Reads the whole body in pieces of chunk bytes.
inline result<std::string> read_all(body_reader& r, std::size_t chunk = 100000) {
  std::string out;
  std::string buf(chunk, '\0');
  for (;;) {
    auto n = r.read(out.size(), buf);
    if (!n) return n.error();
    if (*n == 0) break;
    out.append(buf.data(), *n);
  }
  return out;
}

inline std::size_t count_files(const fs::path& dir) {
  std::size_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) ++n;
  return n;
}

}  // namespace store_test
