#include "config/values.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <limits>
#include <vector>

namespace storecache::config {
namespace {

template <class T>
parsed<T> fail(std::string why) {
  parsed<T> p;
  p.error = std::move(why);
  return p;
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
char to_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = to_lower(c);
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return to_lower(x) == to_lower(y);
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

// Splits "123unit" into the leading digits and the rest; false when there are no digits or the
// number does not fit.
bool split_number(std::string_view text, std::uint64_t& number, std::string_view& unit) {
  text = trim(text);
  std::size_t i = 0;
  while (i < text.size() && is_digit(text[i]))
    ++i;
  if (i == 0) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + i, number);
  if (ec != std::errc{} || end != text.data() + i) return false;
  unit = trim(text.substr(i));
  return true;
}

bool is_ipv4(std::string_view s) {
  if (s.size() > 15) return false;
  std::array<char, 16> buf{};
  std::copy(s.begin(), s.end(), buf.begin());
  in_addr a{};
  return inet_pton(AF_INET, buf.data(), &a) == 1;
}

bool is_ipv6(std::string_view s) {
  if (s.size() > 45) return false;
  std::array<char, 46> buf{};
  std::copy(s.begin(), s.end(), buf.begin());
  in6_addr a{};
  return inet_pton(AF_INET6, buf.data(), &a) == 1;
}

// Port text to number: digits only, 1..65535.
parsed<std::uint16_t> parse_port(std::string_view text) {
  if (text.empty()) return fail<std::uint16_t>("missing port number after ':'");
  unsigned port = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (ec != std::errc{} || end != text.data() + text.size() || !is_digit(text.front()))
    return fail<std::uint16_t>("port '" + std::string(text) + "' is not a number");
  if (port == 0 || port > 65535)
    return fail<std::uint16_t>("port " + std::string(text) + " is out of range 1..65535");
  return {static_cast<std::uint16_t>(port), {}};
}

// "host:port" or "[v6]:port" into its parts; port_text is empty when there is no port.
struct authority_parts {
  std::string_view host;
  std::string_view port_text;
  bool has_port = false;
  bool bracketed = false;
};

parsed<authority_parts> split_authority(std::string_view text) {
  authority_parts parts;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) return fail<authority_parts>("missing ']'");
    parts.host = text.substr(1, close - 1);
    parts.bracketed = true;
    auto rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':')
        return fail<authority_parts>("unexpected '" + std::string(rest) + "' after ']'");
      parts.has_port = true;
      parts.port_text = rest.substr(1);
    }
    return {parts, {}};
  }
  auto colon = text.rfind(':');
  if (colon != std::string_view::npos && text.find(':') != colon)
    return fail<authority_parts>("IPv6 addresses must be in brackets, as in \"[::1]:443\"");
  if (colon == std::string_view::npos) {
    parts.host = text;
  } else {
    parts.host = text.substr(0, colon);
    parts.has_port = true;
    parts.port_text = text.substr(colon + 1);
  }
  return {parts, {}};
}

}  // namespace

parsed<std::chrono::milliseconds> parse_duration(std::string_view text, zero_duration zero) {
  using ms = std::chrono::milliseconds;
  std::uint64_t n = 0;
  std::string_view unit;
  if (!split_number(text, n, unit))
    return fail<ms>("'" + std::string(text) +
                    "' is not a duration; write e.g. \"250ms\", \"10s\", \"7d\"");
  std::uint64_t factor = 0;
  if (unit == "ms") {
    factor = 1;
  } else if (unit == "s") {
    factor = 1000;
  } else if (unit == "m") {
    factor = 60'000;
  } else if (unit == "h") {
    factor = 3'600'000;
  } else if (unit == "d") {
    factor = 86'400'000;  // a calendar-free 24 h: cache lifetimes, not wall-clock dates
  } else if (unit.empty()) {
    return fail<ms>("'" + std::string(text) +
                    "' has no unit; add one (ms, s, m, h, d) or write a bare integer of seconds");
  } else {
    return fail<ms>("unknown unit '" + std::string(unit) + "' in '" + std::string(text) +
                    "'; use ms, s, m, h or d");
  }
  if (n == 0 && zero == zero_duration::refused) return fail<ms>("must be greater than zero");
  std::uint64_t total = 0;
  if (__builtin_mul_overflow(n, factor, &total) ||
      total > static_cast<std::uint64_t>(std::numeric_limits<ms::rep>::max()))
    return fail<ms>("'" + std::string(text) + "' is too long");
  return {ms(static_cast<ms::rep>(total)), {}};
}

parsed<std::chrono::milliseconds> duration_from_seconds(std::int64_t seconds, zero_duration zero) {
  using ms = std::chrono::milliseconds;
  if (seconds < 0) return fail<ms>("must not be negative");
  if (seconds == 0 && zero == zero_duration::refused) return fail<ms>("must be greater than zero");
  std::int64_t total = 0;
  if (__builtin_mul_overflow(seconds, std::int64_t{1000}, &total))
    return fail<ms>(std::to_string(seconds) + " seconds is too long");
  return {ms(total), {}};
}

parsed<std::uint64_t> parse_size(std::string_view text) {
  struct unit_factor {
    std::string_view unit;
    std::uint64_t factor;
  };
  static constexpr std::array<unit_factor, 10> units{{
      {"B", 1},
      {"KiB", 1ull << 10},
      {"MiB", 1ull << 20},
      {"GiB", 1ull << 30},
      {"TiB", 1ull << 40},
      {"KB", 1'000},
      {"MB", 1'000'000},
      {"GB", 1'000'000'000},
      {"TB", 1'000'000'000'000},
  }};
  std::uint64_t n = 0;
  std::string_view unit;
  if (!split_number(text, n, unit))
    return fail<std::uint64_t>("'" + std::string(text) +
                               "' is not a size; write e.g. 16384, \"16KiB\", \"200GiB\"");
  std::uint64_t factor = unit.empty() ? 1 : 0;
  for (const auto& u : units) {
    if (!u.unit.empty() && iequals(unit, u.unit)) factor = u.factor;
  }
  if (factor == 0)
    return fail<std::uint64_t>("unknown unit '" + std::string(unit) +
                               "'; use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB");
  std::uint64_t total = 0;
  if (__builtin_mul_overflow(n, factor, &total))
    return fail<std::uint64_t>("'" + std::string(text) + "' is too large");
  return {total, {}};
}

parsed<std::uint64_t> parse_rate(std::string_view text) {
  struct unit_factor {
    std::string_view unit;
    std::uint64_t factor;  // bits per unit for bit units, bytes per unit for byte units
    bool bits;
  };
  static constexpr std::array<unit_factor, 14> units{{
      {"bit/s", 1, true},
      {"kbit/s", 1'000, true},
      {"Mbit/s", 1'000'000, true},
      {"Gbit/s", 1'000'000'000, true},
      {"B/s", 1, false},
      {"KB/s", 1'000, false},
      {"MB/s", 1'000'000, false},
      {"GB/s", 1'000'000'000, false},
      {"KiB/s", 1ull << 10, false},
      {"MiB/s", 1ull << 20, false},
      {"GiB/s", 1ull << 30, false},
  }};
  std::uint64_t n = 0;
  std::string_view unit;
  if (!split_number(text, n, unit))
    return fail<std::uint64_t>("'" + std::string(text) +
                               "' is not a rate; write e.g. \"5Mbit/s\" or \"625KB/s\"");
  const unit_factor* found = nullptr;
  // Case-insensitive, except that bytes are a capital B: "5Mb/s" is refused (bits or bytes?).
  for (const auto& u : units)
    if (!u.unit.empty() && iequals(unit, u.unit) &&
        (u.bits || unit.find('B') != std::string_view::npos))
      found = &u;
  if (!unit.empty() && found == nullptr)
    return fail<std::uint64_t>("unknown unit '" + std::string(unit) +
                               "'; use bit/s, kbit/s, Mbit/s, Gbit/s, B/s, KB/s, MB/s, GB/s, "
                               "KiB/s, MiB/s or GiB/s");
  std::uint64_t total = n;
  if (found != nullptr && __builtin_mul_overflow(n, found->factor, &total))
    return fail<std::uint64_t>("'" + std::string(text) + "' is too large");
  if (found != nullptr && found->bits) total /= 8;
  if (total == 0) return fail<std::uint64_t>("must be at least 1 byte per second (8 bit/s)");
  return {total, {}};
}

std::string format_rate(std::uint64_t bytes_per_second) {
  double v = static_cast<double>(bytes_per_second) * 8.0;
  const char* unit = "bit/s";
  if (v >= 1e9) {
    v /= 1e9;
    unit = "Gbit/s";
  } else if (v >= 1e6) {
    v /= 1e6;
    unit = "Mbit/s";
  } else if (v >= 1e3) {
    v /= 1e3;
    unit = "kbit/s";
  }
  char buf[96];
  std::snprintf(buf, sizeof buf, "%llu B/s (%.4g %s)",
                static_cast<unsigned long long>(bytes_per_second), v, unit);
  return buf;
}

std::string format_size(std::uint64_t bytes) {
  static constexpr std::array<std::string_view, 5> names{"B", "KiB", "MiB", "GiB", "TiB"};
  std::size_t i = 0;
  while (i + 1 < names.size() && bytes != 0 && bytes % 1024 == 0) {
    bytes /= 1024;
    ++i;
  }
  return std::to_string(bytes) + " " + std::string(names[i]);
}

parsed<listen_address> parse_listen_address(std::string_view text) {
  auto parts = split_authority(text);
  if (!parts.ok()) return fail<listen_address>(parts.error);
  const auto& p = parts.value;
  if (!p.has_port)
    return fail<listen_address>(
        "'" + std::string(text) + "' has no port; write e.g. \"" +
        (p.bracketed ? "[" + std::string(p.host) + "]" : std::string(p.host)) + ":443\"");
  if (p.bracketed ? !is_ipv6(p.host) : !is_ipv4(p.host))
    return fail<listen_address>(
        "'" + std::string(p.host) + "' is not an " + (p.bracketed ? "IPv6" : "IPv4") +
        " address (listen addresses are IP literals: \"0.0.0.0:443\", \"[::]:443\")");
  auto port = parse_port(p.port_text);
  if (!port.ok()) return fail<listen_address>(port.error);
  return {listen_address{lower(p.host), port.value, {}}, {}};
}

parsed<ip_network> parse_ip_network(std::string_view text) {
  const std::string quoted = "'" + std::string(text) + "'";
  auto slash = text.find('/');
  std::string_view addr = text.substr(0, slash);
  ip_network net;
  std::array<char, 46> buf{};
  if (addr.size() >= buf.size())
    return fail<ip_network>(quoted + " is not an IP address or network");
  std::copy(addr.begin(), addr.end(), buf.begin());
  in6_addr a6{};
  if (inet_pton(AF_INET, buf.data(), net.bytes.data()) == 1) {
    net.v4 = true;
  } else if (inet_pton(AF_INET6, buf.data(), &a6) == 1) {
    net.v4 = false;
    std::copy(std::begin(a6.s6_addr), std::end(a6.s6_addr), net.bytes.begin());
  } else {
    return fail<ip_network>(quoted +
                            " is not an IP address or network; write e.g. \"10.0.0.0/8\", "
                            "\"fd00::/8\" or \"192.168.1.20\"");
  }
  const unsigned max = net.v4 ? 32 : 128;
  net.prefix = max;
  if (slash != std::string_view::npos) {
    auto digits = text.substr(slash + 1);
    unsigned n = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size() || n > max)
      return fail<ip_network>("prefix length in " + quoted + " must be a number 0.." +
                              std::to_string(max));
    net.prefix = n;
  }
  for (unsigned bit = net.prefix; bit < max; ++bit)
    if (net.bytes[bit / 8] & (0x80u >> (bit % 8)))
      return fail<ip_network>(
          quoted + " has bits set beyond its /" + std::to_string(net.prefix) +
          " prefix; did you mean \"" +
          [&] {
            ip_network clean = net;
            for (unsigned b = net.prefix; b < max; ++b)
              clean.bytes[b / 8] &= static_cast<std::uint8_t>(~(0x80u >> (b % 8)));
            return clean.text();
          }() +
          "\" (the network) or \"" + std::string(addr) + "\" (that one address)?");
  // ::ffff:a.b.c.d/96+n is IPv4's a.b.c.d/n: clients arrive either way on a dual-stack socket.
  static constexpr std::array<std::uint8_t, 12> mapped{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (!net.v4 && net.prefix >= 96 && std::equal(mapped.begin(), mapped.end(), net.bytes.begin())) {
    std::array<std::uint8_t, 16> v4{};
    std::copy(net.bytes.begin() + 12, net.bytes.end(), v4.begin());
    net.bytes = v4;
    net.v4 = true;
    net.prefix -= 96;
  }
  return {net, {}};
}

parsed<upstream_url> parse_upstream_url(std::string_view text) {
  auto sep = text.find("://");
  if (sep == std::string_view::npos)
    return fail<upstream_url>("'" + std::string(text) +
                              "' is not a URL; write e.g. \"https://lms.example.com\"");
  upstream_url url;
  url.scheme = lower(text.substr(0, sep));
  if (url.scheme != "https" && url.scheme != "http")
    return fail<upstream_url>("unsupported scheme '" + url.scheme + "'; use https://");
  auto rest = text.substr(sep + 3);
  auto end = rest.find_first_of("/?#");
  auto authority = rest.substr(0, end);
  auto tail = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
  if (authority.find('@') != std::string_view::npos)
    return fail<upstream_url>(
        "must not contain user info ('user@'); credentials do not belong "
        "in the config");
  if (tail.find('?') != std::string_view::npos)
    return fail<upstream_url>("must not have a query ('?...')");
  if (tail.find('#') != std::string_view::npos)
    return fail<upstream_url>("must not have a fragment ('#...')");
  if (!tail.empty() && tail != "/")
    return fail<upstream_url>("must not have a path ('" + std::string(tail) +
                              "'); request paths are forwarded as they are");
  auto parts = split_authority(authority);
  if (!parts.ok()) return fail<upstream_url>(parts.error);
  if (parts.value.host.empty()) return fail<upstream_url>("has no host");
  if (auto why = check_host_name(parts.value.host); !why.empty()) return fail<upstream_url>(why);
  if (parts.value.bracketed && !is_ipv6(parts.value.host))
    return fail<upstream_url>("'" + std::string(parts.value.host) + "' is not an IPv6 address");
  url.host = lower(parts.value.host);
  if (!url.host.empty() && url.host.back() == '.') url.host.pop_back();
  url.port = url.scheme == "https" ? 443 : 80;
  if (parts.value.has_port) {
    auto port = parse_port(parts.value.port_text);
    if (!port.ok()) return fail<upstream_url>(port.error);
    url.port = port.value;
    url.explicit_port = true;
  }
  return {std::move(url), {}};
}

std::string check_host_name(std::string_view text) {
  if (text.empty()) return "empty host name";
  if (text.size() > 2 && text.front() == '[' && text.back() == ']') {
    auto inner = text.substr(1, text.size() - 2);
    return is_ipv6(inner) ? std::string{} : "'" + std::string(text) + "' is not an IPv6 address";
  }
  if (is_ipv4(text) || is_ipv6(text)) return {};
  if (text.find('*') != std::string_view::npos)
    return "'" + std::string(text) + "' is a wildcard; wildcards are not supported (yet)";
  auto name = text;
  if (name.back() == '.') name.remove_suffix(1);
  if (name.size() > 253) return "'" + std::string(text) + "' is longer than 253 characters";
  std::string_view last_label;
  while (true) {
    auto dot = name.find('.');
    auto label = name.substr(0, dot);
    if (label.empty() || label.size() > 63)
      return "'" + std::string(text) + "' has an empty label or one longer than 63 characters";
    for (char c : label) {
      bool ok = is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
      if (!ok) {
        return "'" + std::string(text) + "' contains '" + std::string(1, c) +
               "'; a host name has letters, digits, '-' and '.'";
      }
    }
    if (label.front() == '-' || label.back() == '-')
      return "'" + std::string(text) + "' has a label that starts or ends with '-'";
    last_label = label;
    if (dot == std::string_view::npos) break;
    name.remove_prefix(dot + 1);
  }
  if (std::all_of(last_label.begin(), last_label.end(), is_digit))
    return "'" + std::string(text) + "' is neither an IPv4 address nor a host name";
  return {};
}

std::string check_authority(std::string_view text) {
  auto parts = split_authority(text);
  if (!parts.ok()) return parts.error;
  if (parts.value.bracketed && !is_ipv6(parts.value.host))
    return "'" + std::string(parts.value.host) + "' is not an IPv6 address";
  if (auto why = check_host_name(parts.value.host); !why.empty()) return why;
  if (parts.value.has_port) {
    auto port = parse_port(parts.value.port_text);
    if (!port.ok()) return port.error;
  }
  return {};
}

std::string host_header_for(const upstream_url& url) {
  std::string host = url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
  std::uint16_t default_port = url.scheme == "https" ? 443 : 80;
  if (url.port != default_port) host += ":" + std::to_string(url.port);
  return host;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  // Three rows suffice for optimal string alignment; keys are short.
  std::vector<std::size_t> prev2(b.size() + 1), prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j)
    prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        cur[j] = std::min(cur[j], prev2[j - 2] + 1);
    }
    std::swap(prev2, prev);
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string_view closest_name(std::string_view name, std::span<const std::string_view> known,
                              std::size_t max_distance) {
  std::string_view best;
  std::size_t best_distance = max_distance + 1;
  for (auto candidate : known) {
    auto d = edit_distance(name, candidate);
    if (d < best_distance) {
      best = candidate;
      best_distance = d;
    }
  }
  return best;
}

}  // namespace storecache::config
