// The access log: one line per answered request (format and fields: README "Access log").
//
// A line is logfmt-style key=value pairs in a fixed order, every key on every line:
//   time=2025-03-04T09:15:02.347Z client=10.20.0.31 site=learn.example.com method=GET
//   path=/media/intro.mp4?… status=200 bytes=1048576 ms=12.817 ttfb_ms=0.412 cache=hit
//   upstream_status=- upstream_ms=- proto=h2 tls=TLSv1.3 device=ios/safari conn=17 stream=5
//   why=-
// (one line in the log). "-" is "none". A value that is not plain printable ASCII without
// space, '"', '\' and '=' is quoted, with \" \\ \n \r \t and \xHH escapes, so that a
// client-controlled path can never end a line, add a field or smuggle terminal controls.
// Client-controlled values are cut (path at 4 KiB, method at 64 bytes, why at 1 KiB, marked
// "…(+N bytes)") so a line stays whole in the journal.
//
// Targets: stderr through the journald-prefix logger ("<6>access time=..."), a file, or off.
//
// Life cycle of a file target: open() opens it O_APPEND (created 0640 if missing) and keeps
// one descriptor number for the whole life of the object. reopen() (SIGUSR1, after logrotate
// renamed the file) opens the configured path afresh and dup2()s it over that number, which
// the kernel does atomically: a line being written goes wholly to the old file or wholly to
// the new one, and write() needs no lock. Each line is one write(2) of an O_APPEND descriptor,
// so lines from several worker threads never interleave. A failed or short write is counted
// (write_errors()) and logged once until the next successful reopen; it is never fatal.
//
// Threads: write() from any thread. open(), reopen(), reconfigure() and the destructor from
// one thread at a time (the control thread); destroy only after the workers have stopped.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "account/request_record.hpp"
#include "config/config.hpp"

namespace storecache::account {

class access_log {
 public:
  // Throws std::system_error naming the file when a file target cannot be opened (start-up).
  static std::unique_ptr<access_log> open(const config::log_settings& settings);
  explicit access_log(const config::log_settings& settings);
  ~access_log();
  access_log(const access_log&) = delete;
  access_log& operator=(const access_log&) = delete;

  void write(const request_record& r);

  // SIGUSR1: opens the file's path again (logrotate has renamed the old one). Nothing to do
  // for stderr or off. On failure, logs it and keeps writing to the file already open; false.
  bool reopen();

  // SIGHUP: adopts a reloaded config's [log] settings. A new file path is opened now (it is
  // opened again even when unchanged, as reopen() does); if that fails the previous target is
  // kept, the error logged, and false returned. Switching away from a file keeps its
  // descriptor open (a worker may be writing to it) until the next file target or the end.
  bool reconfigure(const config::log_settings& settings);

  // Lines that could not be written whole to the file since start.
  std::uint64_t write_errors() const { return write_errors_.load(std::memory_order_relaxed); }

 private:
  // Opens settings' file onto fd_ (first time: publishes it; later: dup2 over it).
  void open_file(const std::filesystem::path& path);
  void count_write_error(int err);

  std::atomic<config::access_log_target> target_{config::access_log_target::stderr_journal};
  std::atomic<config::access_log_query> query_{config::access_log_query::redact};
  std::atomic<int> fd_{-1};  // set once, then only replaced in place by dup2

  std::mutex control_;          // reopen/reconfigure against each other and the error report
  std::filesystem::path path_;  // the file target's path (guarded by control_)

  std::atomic<std::uint64_t> write_errors_{0};
  std::atomic<bool> error_reported_{false};
};

// The line for r, without the stderr prefix and without the newline. For tests and write().
std::string format_access_line(const request_record& r, config::access_log_query query);

// Appends v as one logfmt value (bare or quoted and escaped, as described above).
void append_log_value(std::string& out, std::string_view v);

}  // namespace storecache::account
