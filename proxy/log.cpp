#include "proxy/log.hpp"

#include <unistd.h>

#include <cerrno>
#include <string>

namespace storecache::proxy::log {

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

}  // namespace storecache::proxy::log
