// Escaping names that clients control (asset paths: any bytes a client asked for).
// - json_string: quotes, backslash and control bytes escaped; invalid UTF-8 replaced by
//   U+FFFD, one per bad byte, so the output is valid JSON in valid UTF-8 whatever came in.
// - terminal_safe: valid UTF-8 passes; control bytes (C0, DEL, C1) and invalid bytes become
//   \xNN, so a crafted path cannot send escape sequences to the terminal of whoever runs
//   `storecache report`.
// - html_escape (status_page.hpp): markup characters as entities; control bytes and invalid
//   UTF-8 as U+FFFD, so an asset name is always text on the status page, never markup.
#include <fmt/format.h>

#include "usage/report.hpp"
#include "usage/status_page.hpp"

namespace storecache::usage {

namespace {

// The length of the valid UTF-8 sequence at s[i], or 0 if the bytes there are not one
// (overlong forms, surrogates and code points past U+10FFFF are invalid).
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;  // overlong
    if (c == 0xED) hi = 0x9F;  // surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;  // overlong
    if (c == 0xF4) hi = 0x8F;  // past U+10FFFF
  } else {
    return 0;
  }
  if (i + n > s.size() || b(1) < lo || b(1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k)
    if ((b(k) & 0xC0) != 0x80) return 0;
  return n;
}

}  // namespace

std::string_view backslash_escape(char c) {
  switch (c) {
    case '"':
      return "\\\"";
    case '\\':
      return "\\\\";
    case '\n':
      return "\\n";
    case '\r':
      return "\\r";
    case '\t':
      return "\\t";
    default:
      return {};
  }
}

std::string json_string(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (const auto e = backslash_escape(static_cast<char>(c)); !e.empty())
        out += e;
      else if (c < 0x20 || c == 0x7F)
        fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);
      else
        out += static_cast<char>(c);
      ++i;
      continue;
    }
    if (const std::size_t n = utf8_sequence(s, i)) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += "\\ufffd";
      ++i;
    }
  }
  out += '"';
  return out;
}

std::string terminal_safe(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80 ? 1 : utf8_sequence(s, i);
    const bool c1 = n == 2 && c == 0xC2 && static_cast<unsigned char>(s[i + 1]) < 0xA0;
    if ((n == 1 && c >= 0x20 && c < 0x7F) || (n > 1 && !c1)) {
      out.append(s.substr(i, n));
    } else {
      if (n == 0) n = 1;
      for (std::size_t k = 0; k < n; ++k)
        fmt::format_to(std::back_inserter(out), "\\x{:02x}", static_cast<unsigned char>(s[i + k]));
    }
    i += n;
  }
  return out;
}

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      if (const std::size_t n = utf8_sequence(s, i)) {
        out.append(s.substr(i, n));
        i += n;
      } else {
        out += "\xEF\xBF\xBD";  // U+FFFD
        ++i;
      }
      continue;
    }
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        if (c < 0x20 || c == 0x7F)
          out += "\xEF\xBF\xBD";
        else
          out += static_cast<char>(c);
    }
    ++i;
  }
  return out;
}

}  // namespace storecache::usage
