// Shared pieces of the signed-URL schemes: see signed_url.hpp and signed_url_util.hpp.
#include "access/signed_url.hpp"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <algorithm>
#include <fstream>
#include <stdexcept>

#include "access/signed_url_util.hpp"

namespace storecache::access {

std::string_view to_string(signature_result r) {
  switch (r) {
    case signature_result::ok:
      return "ok";
    case signature_result::missing:
      return "missing";
    case signature_result::malformed:
      return "malformed";
    case signature_result::bad_signature:
      return "forged";
    case signature_result::expired:
      return "expired";
    case signature_result::not_yet_valid:
      return "not_yet_valid";
    case signature_result::unknown_key:
      return "unknown_key";
    case signature_result::wrong_ip:
      return "wrong_ip";
    case signature_result::wrong_resource:
      return "wrong_resource";
  }
  return "unknown";
}

namespace detail {

namespace {

std::string_view trim_spaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

lookup_status find_pairs(std::string_view list, char sep, std::span<const std::string_view> names,
                         std::span<std::optional<std::string_view>> values) {
  for (auto& v : values)
    v.reset();
  while (!list.empty()) {
    const std::size_t end = list.find(sep);
    std::string_view pair = list.substr(0, end);
    list = end == std::string_view::npos ? std::string_view{} : list.substr(end + 1);
    if (sep != '&') pair = trim_spaces(pair);
    const std::size_t eq = pair.find('=');
    const std::string_view name = pair.substr(0, eq);
    const std::string_view value =
        eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
    for (std::size_t i = 0; i < names.size() && i < values.size(); ++i) {
      if (name != names[i]) continue;
      if (values[i]) return lookup_status::duplicate;
      if (value.size() > max_parameter_bytes) return lookup_status::too_long;
      values[i] = value;
    }
  }
  return lookup_status::ok;
}

std::string strip_query(std::string_view query, std::span<const std::string_view> names) {
  std::string out;
  out.reserve(query.size());
  while (!query.empty()) {
    const std::size_t end = query.find('&');
    const std::string_view pair = query.substr(0, end);
    query = end == std::string_view::npos ? std::string_view{} : query.substr(end + 1);
    const std::string_view name = pair.substr(0, pair.find('='));
    bool drop = false;
    for (const auto n : names)
      drop = drop || n == name;
    if (drop) continue;
    if (!out.empty()) out += '&';
    out += pair;
  }
  return out;
}

std::optional<std::int64_t> parse_decimal(std::string_view s) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  std::int64_t v = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

std::optional<ip_address> parse_ip(std::string_view text) {
  if (text.empty() || text.size() > 45) return std::nullopt;
  char buf[46] = {};
  text.copy(buf, text.size());
  ip_address a;
  if (text.find(':') == std::string_view::npos) {
    unsigned char v4[4];
    if (inet_pton(AF_INET, buf, v4) != 1) return std::nullopt;
    a.bytes[10] = 0xff;
    a.bytes[11] = 0xff;
    std::copy(v4, v4 + 4, a.bytes.begin() + 12);
    a.v4 = true;
    return a;
  }
  if (inet_pton(AF_INET6, buf, a.bytes.data()) != 1) return std::nullopt;
  static constexpr unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  a.v4 = std::equal(mapped, mapped + 12, a.bytes.begin());
  return a;
}

std::optional<ip_network> parse_cidr(std::string_view text) {
  const std::size_t slash = text.find('/');
  const auto base = parse_ip(text.substr(0, slash));
  if (!base) return std::nullopt;
  ip_network net{*base, 128};
  if (slash != std::string_view::npos) {
    const std::string_view bits = text.substr(slash + 1);
    const auto n = bits.size() <= 3 ? parse_decimal(bits) : std::nullopt;
    if (!n || *n > (base->v4 ? 32 : 128)) return std::nullopt;
    net.prefix = static_cast<int>(*n) + (base->v4 ? 96 : 0);
  }
  return net;
}

bool contains(const ip_network& net, const ip_address& a) {
  if (net.base.v4 != a.v4) return false;
  for (int i = 0; i < 16; ++i) {
    const int bits = std::min(8, std::max(0, net.prefix - i * 8));
    const unsigned mask = bits == 0 ? 0u : (0xffu << (8 - bits)) & 0xffu;
    if ((net.base.bytes[i] & mask) != (a.bytes[i] & mask)) return false;
  }
  return true;
}

std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      const int hi = hex_value(s[i + 1]);
      const int lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    if (c == '\0') return std::nullopt;
    out += c;
  }
  return out;
}

bool is_plain_path(std::string_view p) {
  if (p.empty() || p.front() != '/') return false;
  if (p.find("//") != std::string_view::npos || p.find('\\') != std::string_view::npos)
    return false;
  for (std::size_t i = 0; i + 2 < p.size(); ++i) {
    if (p[i] != '%') continue;
    if (hex_value(p[i + 1]) < 0 || hex_value(p[i + 2]) < 0) continue;
    const int v = hex_value(p[i + 1]) * 16 + hex_value(p[i + 2]);
    if (v == '/' || v == '\\') return false;
  }
  // Segments, with %2e read as '.'.
  std::size_t start = 1;
  while (start <= p.size()) {
    std::size_t end = p.find('/', start);
    if (end == std::string_view::npos) end = p.size();
    std::string_view seg = p.substr(start, end - start);
    std::size_t dots = 0;
    bool only_dots = true;
    while (!seg.empty() && only_dots) {
      if (seg.front() == '.') {
        ++dots;
        seg.remove_prefix(1);
      } else if (seg.size() >= 3 && seg[0] == '%' && seg[1] == '2' &&
                 (seg[2] == 'e' || seg[2] == 'E')) {
        ++dots;
        seg.remove_prefix(3);
      } else {
        only_dots = false;
      }
    }
    if (only_dots && (dots == 1 || dots == 2)) return false;
    start = end + 1;
  }
  return true;
}

bool equal_ct(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string read_key_file(const std::string& path, std::size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  std::string data;
  data.resize(max_bytes + 1);
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  if (in.bad()) throw std::runtime_error(path + ": cannot read");
  data.resize(static_cast<std::size_t>(in.gcount()));
  if (data.size() > max_bytes)
    throw std::runtime_error(path + ": larger than " + std::to_string(max_bytes) + " bytes");
  return data;
}

void md_free::operator()(EVP_MD* md) const {
  EVP_MD_free(md);
}

md_ptr fetch_digest(const char* name) {
  md_ptr md(EVP_MD_fetch(nullptr, name, nullptr));
  if (!md) {
    ERR_clear_error();
    throw std::runtime_error(std::string("OpenSSL offers no ") + name);
  }
  return md;
}

}  // namespace detail

}  // namespace storecache::access
