#include "log/log.hpp"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string>

namespace storecache::log {

void write_line(level l, std::string_view text) {
  std::string line;
  line.reserve(text.size() + 5);
  line += '<';
  line += static_cast<char>('0' + static_cast<int>(l));
  line += '>';
  // A newline inside a message would start a line without a priority: fold it.
  for (char c : text)
    line += (c == '\n' || c == '\r') ? ' ' : c;
  line += '\n';
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // nowhere left to report it
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

bool rate_limit::allow(std::uint64_t& suppressed) {
  const std::int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                               std::chrono::steady_clock::now().time_since_epoch())
                               .count();
  // Approximate under races (two threads may both start a new second): a bound, not a quota.
  if (second_.exchange(now, std::memory_order_relaxed) != now)
    in_second_.store(0, std::memory_order_relaxed);
  if (in_second_.fetch_add(1, std::memory_order_relaxed) >= per_second_) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  suppressed = dropped_.exchange(0, std::memory_order_relaxed);
  return true;
}

}  // namespace storecache::log
