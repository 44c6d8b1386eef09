#include "account/access_log.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <system_error>

#include "log/log.hpp"
#include "usage/report.hpp"

namespace storecache::account {

namespace {

using config::access_log_query;
using config::access_log_target;

// Client-controlled values are cut to these many bytes, so that a line, escaped (up to 4x),
// stays far below journald's LineMax (48 KiB): a longer one would be split, and its second
// half, without the "access" prefix, could pose as a line of its own.
constexpr std::size_t max_path_bytes = 4096;
constexpr std::size_t max_method_bytes = 64;
constexpr std::size_t max_why_bytes = 1024;  // may quote a client's Host

bool bare_safe(char c) {
  return c > ' ' && c < 0x7f && c != '"' && c != '\\' && c != '=';
}

// "2025-03-04T09:15:02.347Z" (RFC 3339, UTC, milliseconds).
void append_time(std::string& out, std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  auto ms = duration_cast<milliseconds>(t.time_since_epoch()).count();
  auto secs = static_cast<std::time_t>(ms / 1000);
  auto frac = ms % 1000;
  if (frac < 0) {  // before 1970: floor, not truncate
    frac += 1000;
    --secs;
  }
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  fmt::format_to(std::back_inserter(out), "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 frac);
}

void append_ms(std::string& out, std::chrono::steady_clock::duration d) {
  fmt::format_to(std::back_inserter(out), "{:.3f}",
                 std::chrono::duration<double, std::milli>(d).count());
}

void append_field(std::string& out, std::string_view key) {
  if (!out.empty()) out += ' ';
  out += key;
  out += '=';
}

// v as one logfmt value, at most max_bytes of it (the rest counted, "…(+N bytes)"), then
// raw_suffix (our own text, not escaped) inside the same value.
void append_value(std::string& out, std::string_view v, std::string_view raw_suffix = {},
                  std::size_t max_bytes = std::string_view::npos) {
  std::size_t cut = v.size() > max_bytes ? v.size() - max_bytes : 0;
  v.remove_suffix(cut);
  bool bare = !v.empty() && cut == 0;
  for (char c : v)
    bare = bare && bare_safe(c);
  if (bare) {
    out += v;
    out += raw_suffix;
    return;
  }
  out += '"';
  for (char c : v) {
    if (const auto e = usage::backslash_escape(c); !e.empty())
      out += e;
    else if (c >= ' ' && c < 0x7f)
      out += c;
    else  // control bytes, DEL, and every non-ASCII byte (no bidi or terminal tricks)
      fmt::format_to(std::back_inserter(out), "\\x{:02x}", static_cast<unsigned char>(c));
  }
  if (cut > 0) fmt::format_to(std::back_inserter(out), "…(+{} bytes)", cut);
  out += raw_suffix;
  out += '"';
}

// The path as the log shows it. The marks "?…" (redacted) and "…(+N bytes)" (cut) are the only
// non-ASCII text a line can hold (every byte a client sent above 0x7f is escaped), so a path
// cannot forge them.
void append_path(std::string& out, std::string_view target, access_log_query query) {
  auto q = target.find('?');
  if (q == std::string_view::npos || query == access_log_query::keep) {
    append_value(out, target, {}, max_path_bytes);
    return;
  }
  append_value(out, target.substr(0, q),
               query == access_log_query::redact ? "?…" : std::string_view(), max_path_bytes);
}

int open_append(const std::filesystem::path& path) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

}  // namespace

void append_log_value(std::string& out, std::string_view v) {
  append_value(out, v);
}

std::string format_access_line(const request_record& r, access_log_query query) {
  const http::request_head& req = r.req;
  std::string out;
  out.reserve(320 + r.path.size());
  append_field(out, "time");
  append_time(out, r.end_time);
  append_field(out, "client");
  out += req.client_address.to_string();
  append_field(out, "site");
  append_log_value(out, r.site != nullptr ? std::string_view(r.site->name()) : "-");
  append_field(out, "method");
  append_value(out, req.method, {}, max_method_bytes);
  append_field(out, "path");
  append_path(out, r.path, query);
  auto put = [&out](std::string_view key, auto value) {
    append_field(out, key);
    fmt::format_to(std::back_inserter(out), "{}", value);
  };
  put("status", r.status);
  put("bytes", r.bytes);
  append_field(out, "ms");
  append_ms(out, r.total);
  append_field(out, "ttfb_ms");
  if (r.ttfb.count() > 0)
    append_ms(out, r.ttfb);
  else
    out += '-';
  put("cache", to_string(r.cache));
  append_field(out, "upstream_status");
  if (r.upstream_status != 0)
    fmt::format_to(std::back_inserter(out), "{}", r.upstream_status);
  else
    out += '-';
  append_field(out, "upstream_ms");
  if (r.upstream_time.count() > 0)
    append_ms(out, r.upstream_time);
  else
    out += '-';
  put("proto", to_string(req.proto));
  put("tls", usage::label(r.tls));
  append_field(out, "cert");
  append_value(out, r.client_cert.empty() ? std::string_view("-") : r.client_cert, {},
               max_why_bytes);
  append_field(out, "device");
  out += usage::label(r.dev.os);
  out += '/';
  out += usage::label(r.dev.browser);
  put("conn", req.connection_id);
  put("stream", req.stream_id);
  append_field(out, "why");
  append_value(out, r.why.empty() ? std::string_view("-") : r.why, {}, max_why_bytes);
  return out;
}

std::unique_ptr<access_log> access_log::open(const config::log_settings& settings) {
  return std::make_unique<access_log>(settings);
}

access_log::access_log(const config::log_settings& settings) {
  if (settings.access_log == access_log_target::file) open_file(settings.access_log_file);
  query_.store(settings.query);
  target_.store(settings.access_log);
}

access_log::~access_log() {
  if (int fd = fd_.load(); fd >= 0) ::close(fd);
}

// Called with control_ held, or from the constructor.
void access_log::open_file(const std::filesystem::path& path) {
  int fd = open_append(path);
  if (fd < 0)
    throw std::system_error(errno, std::generic_category(),
                            "cannot open access log '" + path.string() + "'");
  int current = fd_.load(std::memory_order_acquire);
  if (current < 0) {
    fd_.store(fd, std::memory_order_release);
  } else {
    // Atomic replacement under the same number: writers never see a closed descriptor.
    int rc;
    do {
      rc = ::dup2(fd, current);
    } while (rc < 0 && errno == EINTR);
    int err = errno;
    ::close(fd);
    if (rc < 0)
      throw std::system_error(err, std::generic_category(),
                              "cannot switch to access log '" + path.string() + "'");
  }
  path_ = path;
  error_reported_.store(false, std::memory_order_relaxed);
}

bool access_log::reopen() {
  std::lock_guard lock(control_);
  if (target_.load() != access_log_target::file) return true;
  try {
    open_file(path_);
  } catch (const std::system_error& e) {
    log::error("access log: reopen failed: {}; still writing to the file open before", e.what());
    return false;
  }
  log::notice("access log: reopened {}", path_.string());
  return true;
}

bool access_log::reconfigure(const config::log_settings& settings) {
  std::lock_guard lock(control_);
  if (settings.access_log == access_log_target::file) {
    try {
      open_file(settings.access_log_file);
    } catch (const std::system_error& e) {
      log::error("access log: {}; keeping the previous access log target", e.what());
      return false;
    }
  }
  query_.store(settings.query);
  target_.store(settings.access_log, std::memory_order_release);
  return true;
}

void access_log::write(const request_record& r) {
  auto target = target_.load(std::memory_order_acquire);
  if (target == access_log_target::off) return;
  if (target == access_log_target::stderr_journal) {
    if (!log::enabled(log::level::info)) return;
    log::write_line(log::level::info,
                    "access " + format_access_line(r, query_.load(std::memory_order_relaxed)));
    return;
  }
  std::string line = format_access_line(r, query_.load(std::memory_order_relaxed));
  line += '\n';
  int fd = fd_.load(std::memory_order_acquire);
  ssize_t n;
  do {
    n = ::write(fd, line.data(), line.size());
  } while (n < 0 && errno == EINTR);
  // A short write is not retried: the rest, written later, could land after another thread's
  // line. It happens when the disk is full; the line is counted as lost.
  if (n != static_cast<ssize_t>(line.size())) count_write_error(n < 0 ? errno : ENOSPC);
}

void access_log::count_write_error(int err) {
  write_errors_.fetch_add(1, std::memory_order_relaxed);
  if (error_reported_.exchange(true, std::memory_order_relaxed)) return;
  std::lock_guard lock(control_);
  log::error(
      "access log: writing to {} failed: {}; lines are being lost (counted, not logged again "
      "until the next reopen)",
      path_.string(), std::generic_category().message(err));
}

}  // namespace storecache::account
