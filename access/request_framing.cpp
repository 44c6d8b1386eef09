#include "access/request_framing.hpp"

#include <cctype>

namespace storecache::access {

head_scanner::result head_scanner::scan(std::string_view bytes) {
  if (done_.st != state::need_more) return done_;
  for (; pos_ < bytes.size(); ++pos_) {
    const char c = bytes[pos_];
    if (c == '\r') {
      // A CR must be followed by LF; decide once the next byte is here.
      if (pos_ + 1 >= bytes.size()) break;
      if (bytes[pos_ + 1] != '\n') return refuse(refusal::line_ending, "bare CR in the head");
      continue;
    }
    if (c == '\n') {
      if (pos_ == 0 || bytes[pos_ - 1] != '\r')
        return refuse(refusal::line_ending, "bare LF as a line end");
      const std::size_t line_len = pos_ - 1 - line_start_;  // without its CRLF
      if (lines_ == 0 && line_len > 0) {
        const auto target = request_target(bytes.substr(line_start_, line_len));
        if (target.size() > max_target_)
          return refuse(refusal::uri_too_long, "request-target over limits.max_uri_bytes");
      }
      if (line_len == 0 && lines_ > 0) {  // the empty line: the head is complete
        if (pos_ + 1 > max_head_)
          return refuse(refusal::header_too_large, "request head over limits.max_header_bytes");
        done_ = result{state::complete, pos_ + 1, refusal::malformed, {}};
        return done_;
      }
      // An empty line before the request line (RFC 9112 §2.2 lets us skip it) is left for the
      // parser, which refuses it; it is not counted as the request line.
      if (line_len > 0 || lines_ > 0) ++lines_;
      line_start_ = pos_ + 1;
      continue;
    }
    if ((c == ' ' || c == '\t') && pos_ == line_start_ && lines_ > 0) {
      return refuse(refusal::line_ending, lines_ == 1 ? "whitespace before the first header field"
                                                      : "obs-fold (a field line continued)");
    }
  }
  // Still inside the request line: it can be refused as soon as it is longer than any line
  // with a target within the limit (a method and version of 32 bytes at most, generously).
  if (lines_ == 0 && pos_ - line_start_ > max_target_ + 32)
    return refuse(refusal::uri_too_long, "request-target over limits.max_uri_bytes");
  if (pos_ > max_head_)
    return refuse(refusal::header_too_large, "request head over limits.max_header_bytes");
  return done_;
}

std::string_view request_target(std::string_view line) {
  const auto sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return {};
  const auto rest = line.substr(sp1 + 1);
  const auto sp2 = rest.rfind(' ');
  return sp2 == std::string_view::npos ? rest : rest.substr(0, sp2);
}

namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<transfer_coding_problem> check_transfer_encoding(
    const std::vector<std::string_view>& values, unsigned http_minor) {
  if (values.empty()) return std::nullopt;
  if (http_minor == 0)
    return transfer_coding_problem{refusal::framing, "Transfer-Encoding in an HTTP/1.0 request"};
  // The codings of every field, in order (RFC 9110 §5.3: fields combine as one list); empty
  // list elements are allowed and skipped.
  std::vector<std::string_view> codings;
  for (auto v : values) {
    while (!v.empty()) {
      const auto comma = v.find(',');
      const auto item = trim(v.substr(0, comma));
      if (!item.empty()) codings.push_back(item);
      if (comma == std::string_view::npos) break;
      v.remove_prefix(comma + 1);
    }
  }
  if (codings.empty()) return transfer_coding_problem{refusal::framing, "empty Transfer-Encoding"};
  if (!iequals(codings.back(), "chunked"))
    return transfer_coding_problem{refusal::framing,
                                   "Transfer-Encoding whose last coding is not chunked"};
  if (codings.size() == 1) return std::nullopt;
  for (std::size_t i = 0; i + 1 < codings.size(); ++i)
    if (iequals(codings[i], "chunked"))
      return transfer_coding_problem{refusal::framing, "chunked applied more than once"};
  return transfer_coding_problem{refusal::transfer_coding, "a transfer coding other than chunked"};
}

}  // namespace storecache::access
