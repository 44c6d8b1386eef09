// resolve(): RFC 3986 §5.2 reference resolution, restricted to one site. A listing is written
// by whoever publishes a course or a stream, so every reference in it is untrusted: the only
// answer is a path on the site being prefetched, or a reason why not.
#include <charconv>
#include <optional>
#include <string>
#include <string_view>

#include "prefetch/listing.hpp"

namespace storecache::prefetch {
namespace {

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// The scheme of an absolute URI (§3.1), or empty when the reference has none: a ':' before
// any '/', '?' or '#' ends it ("./a:b" is how a relative path with a colon is written).
std::string_view scheme_of(std::string_view ref) {
  if (ref.empty() || !is_alpha(ref[0])) return {};
  for (std::size_t i = 1; i < ref.size(); ++i) {
    const char c = ref[i];
    if (c == ':') return ref.substr(0, i);
    if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.') return {};
  }
  return {};
}

struct host_port {
  std::string_view host;
  std::string_view port;  // empty: the scheme's default
};

host_port split_authority(std::string_view authority) {
  if (authority.starts_with('[')) {  // IP literal: the port follows the ']'
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return {authority, {}};
    auto rest = authority.substr(close + 1);
    return {authority.substr(0, close + 1), rest.starts_with(':') ? rest.substr(1) : rest};
  }
  const auto colon = authority.rfind(':');
  if (colon == std::string_view::npos) return {authority, {}};
  return {authority.substr(0, colon), authority.substr(colon + 1)};
}

// A port as a number; 443 when absent (https's default, §6.2.3: "host:" is "host").
std::optional<unsigned> port_number(std::string_view port) {
  if (port.empty()) return 443;
  unsigned n = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
  if (ec != std::errc{} || end != port.data() + port.size()) return std::nullopt;
  return n;
}

// Why an authority is not this site's, or empty when it is.
std::string check_authority(std::string_view authority, std::string_view site_name) {
  if (authority.find('@') != std::string_view::npos) return "userinfo in URL";
  const auto ref = split_authority(authority);
  const auto site = split_authority(site_name);
  if (ref.host.empty()) return "URL without a host";
  if (!iequals(ref.host, site.host)) return "another host (" + std::string(ref.host) + ")";
  const auto port = port_number(ref.port);
  if (!port) return "bad port";
  if (port != port_number(site.port)) return "another port (" + std::string(ref.port) + ")";
  return {};
}

// Drops the last segment written so far; at the root there is none, and RFC 3986 §5.2.4 says
// to stay there: "/../a" is "/a". We follow it (clamping, not rejecting), as browsers do.
void pop_segment(std::string& out) {
  const auto slash = out.rfind('/');
  out.erase(slash == std::string::npos ? 0 : slash);
}

// RFC 3986 §5.2.4, on a path that starts with '/'. Only "." and ".." as written are dot
// segments; "%2e%2e" is not (§2.3 keeps it an ordinary segment), and the path stays on this
// site whatever the origin makes of it.
std::string remove_dot_segments(std::string_view in) {
  std::string out;
  while (!in.empty()) {
    if (in.starts_with("../")) {
      in.remove_prefix(3);
    } else if (in.starts_with("./")) {
      in.remove_prefix(2);
    } else if (in.starts_with("/./")) {
      in.remove_prefix(2);
    } else if (in == "/.") {
      in = "/";
    } else if (in.starts_with("/../")) {
      in.remove_prefix(3);
      pop_segment(out);
    } else if (in == "/..") {
      in = "/";
      pop_segment(out);
    } else if (in == "." || in == "..") {
      in = {};
    } else {
      const auto next = in.find('/', 1);
      out += in.substr(0, next);
      in = next == std::string_view::npos ? std::string_view{} : in.substr(next);
    }
  }
  return out;
}

// Bytes above 0x7f as %XX: an IRI's UTF-8 made a URI (RFC 3987 §3.1), fit for a request line.
std::string encode_non_ascii(std::string s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : s) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x80) {
      out += c;
    } else {
      out += '%';
      out += hex[b >> 4];
      out += hex[b & 0xf];
    }
  }
  return out;
}

std::string_view why_unusable(std::string_view ref) {
  if (ref.empty()) return "empty reference";
  if (ref.size() > max_reference_length) return "longer than 4096 bytes";
  for (const char c : ref) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7f) return "control character";
    if (c == ' ') return "space";
    if (c == '\\') return "backslash";
  }
  return {};
}

struct split_target {
  std::string_view path;
  std::string_view query;  // with its '?'
};

split_target split_query(std::string_view s) {
  const auto q = s.find('?');
  if (q == std::string_view::npos) return {s, {}};
  return {s.substr(0, q), s.substr(q)};
}

}  // namespace

std::optional<std::string> resolve(std::string_view base_path, std::string_view reference,
                                   std::string_view site_name, std::string* why) {
  auto fail = [&](std::string_view reason) -> std::optional<std::string> {
    if (why) *why = reason;
    return std::nullopt;
  };
  if (const auto bad = why_unusable(reference); !bad.empty()) return fail(bad);
  auto ref = reference.substr(0, reference.find('#'));

  if (const auto scheme = scheme_of(ref); !scheme.empty()) {
    // http://same-host too: a prefetch must not fetch, nor make a device fetch, in the clear.
    if (!iequals(scheme, "https")) return fail("scheme " + std::string(scheme) + ": not https");
    ref.remove_prefix(scheme.size() + 1);
    if (!ref.starts_with("//")) return fail("URL without a host");
  }

  std::string path;
  std::string_view query;
  if (ref.starts_with("//")) {
    ref.remove_prefix(2);
    const auto end = ref.find_first_of("/?");
    const auto authority = ref.substr(0, end);
    if (const auto bad = check_authority(authority, site_name); !bad.empty()) return fail(bad);
    const auto target = split_query(end == std::string_view::npos ? "" : ref.substr(end));
    path = remove_dot_segments(target.path.empty() ? "/" : target.path);
    query = target.query;
  } else {
    const auto base = split_query(base_path.substr(0, base_path.find('#')));
    const std::string base_dir = (base.path.starts_with('/') ? "" : "/") +
                                 std::string(base.path.substr(0, base.path.rfind('/') + 1));
    const auto target = split_query(ref);
    query = target.query;
    if (target.path.empty()) {  // "?x" or a bare fragment: the base document itself (§5.2.2)
      path = remove_dot_segments((base.path.starts_with('/') ? "" : "/") + std::string(base.path));
      if (query.empty()) query = base.query;
    } else if (target.path.starts_with('/')) {
      path = remove_dot_segments(target.path);
    } else {
      path = remove_dot_segments(base_dir + std::string(target.path));  // §5.2.3 merge
    }
  }
  // "/.//host/x" leaves "//host/x": a site path that any URL parser reads as another host.
  if (path.starts_with("//")) return fail("path starts with //");
  auto result = encode_non_ascii(path + std::string(query));
  if (result.size() > max_reference_length) return fail("longer than 4096 bytes");
  return result;
}

}  // namespace storecache::prefetch
