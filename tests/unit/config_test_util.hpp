// Shared by the config tests: a scratch directory with the files configs name, a base config
// that loads, and all diagnostics of a load as one string for failure messages.
#pragma once

#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>

#include "config/config.hpp"

namespace storecache::config::test {

// A fresh directory with the files configs refer to; removed at the end of the test.
class temp_dir {
 public:
  temp_dir() {
    static std::atomic<int> counter{0};
    path_ =
        std::filesystem::temp_directory_path() /
        ("storecache-config-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
    for (const char* name :
         {"site.crt", "site.key", "other.crt", "other.key", "default.crt", "default.key", "ca.pem"})
      write(name, "-----BEGIN PLACEHOLDER-----\n");
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path write(const std::filesystem::path& name, std::string_view text) const {
    std::filesystem::create_directories((path_ / name).parent_path());
    std::ofstream out(path_ / name, std::ios::binary);
    out << text;
    return path_ / name;
  }

 private:
  std::filesystem::path path_;
};

inline std::string all_errors(const load_result& r) {
  std::string out;
  for (const auto& e : r.errors)
    out += e.to_string() + "\n";
  return out;
}

// Seven lines: a config that loads. Cases append to it or replace a line of it, so their own
// lines start at 8.
inline constexpr std::string_view base = R"([server]
listen = ["0.0.0.0:8443"]
[[site]]
hosts = ["learn.example.com"]
upstream = "https://lms.example.com"
tls_cert = "site.crt"
tls_key = "site.key"
)";

// The one diagnostic a bad config must produce: its file, key, line (and a column when it has
// a line) and a piece of its message.
inline void check_single_error(const load_result& r, std::string_view key, std::size_t line,
                               std::string_view says) {
  INFO(all_errors(r));
  CHECK_FALSE(r.ok());
  CHECK(r.cfg == nullptr);
  REQUIRE(r.errors.size() == 1);
  const diagnostic& d = r.errors[0];
  CHECK(d.file == "bad.toml");
  CHECK(d.key == key);
  CHECK(d.line == line);
  if (line != 0) CHECK(d.column > 0);
  CHECK_THAT(d.message, Catch::Contains(std::string(says)));
}

}  // namespace storecache::config::test
