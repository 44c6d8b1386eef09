#include "cache/cache_status.hpp"

namespace storecache::cache {

namespace {

bool is_sf_token(std::string_view s) {
  if (s.empty()) return false;
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  if (!alpha(s.front()) && s.front() != '*') return false;
  for (char c : s) {
    bool ok = alpha(c) || (c >= '0' && c <= '9') ||
              std::string_view("!#$%&'*+-.^_`|~:/").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

// sf-token if possible, else sf-string (RFC 8941 §3.3.3, §3.3.4).
void append_text(std::string& out, std::string_view s) {
  if (is_sf_token(s)) {
    out.append(s);
    return;
  }
  out.push_back('"');
  for (char c : s) {
    if (c < 0x20 || c > 0x7e) continue;
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
}

}  // namespace

std::string_view to_string(forward_reason r) {
  switch (r) {
    case forward_reason::none:
      return "";
    case forward_reason::bypass:
      return "bypass";
    case forward_reason::method:
      return "method";
    case forward_reason::uri_miss:
      return "uri-miss";
    case forward_reason::vary_miss:
      return "vary-miss";
    case forward_reason::miss:
      return "miss";
    case forward_reason::request:
      return "request";
    case forward_reason::stale:
      return "stale";
    case forward_reason::partial:
      return "partial";
  }
  return "";
}

std::string format_cache_status(const cache_status& status, std::string_view cache_name) {
  std::string out(cache_name);
  if (status.hit) out.append("; hit");
  if (status.fwd != forward_reason::none) {
    out.append("; fwd=");
    out.append(to_string(status.fwd));
  }
  if (status.fwd_status) out.append("; fwd-status=" + std::to_string(*status.fwd_status));
  if (status.ttl) out.append("; ttl=" + std::to_string(status.ttl->count()));
  if (status.stored) out.append("; stored");
  if (status.collapsed) out.append("; collapsed");
  if (!status.key.empty()) {
    out.append("; key=");
    append_text(out, status.key);
  }
  if (!status.detail.empty()) {
    out.append("; detail=");
    append_text(out, status.detail);
  }
  return out;
}

}  // namespace storecache::cache
