// The scalar syntaxes of the config file, as pure functions over text: durations, sizes,
// listen addresses, upstream URLs and host names. The TOML walker (loader.cpp) calls these and
// turns their error text into diagnostics with a file position; they know nothing of TOML.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "config/config.hpp"

namespace storecache::config {

// A value or the reason the text is not one. The reason is a sentence fragment meant to follow
// the key in a diagnostic ("timeouts.client_idle: unknown unit 'sec'; use ms, s, m or h").
template <class T>
struct parsed {
  T value{};
  std::string error;  // empty: value is valid
  bool ok() const { return error.empty(); }
};

// Whether a duration of zero means something. Timeouts must be > 0; a cache lifetime of 0 is
// meaningful ("stale at once": store, but revalidate on every use).
enum class zero_duration { refused, allowed };

// "250ms", "10s", "5m", "1h", "7d" (one number, one unit; > 0 unless zero is allowed).
parsed<std::chrono::milliseconds> parse_duration(std::string_view text,
                                                 zero_duration zero = zero_duration::refused);
// A bare integer duration in the config means seconds.
parsed<std::chrono::milliseconds> duration_from_seconds(
    std::int64_t seconds, zero_duration zero = zero_duration::refused);

// "16384", "16KiB", "200 GiB", "4GB": an integer and an optional unit (B, KiB, MiB, GiB, TiB
// binary; KB, MB, GB, TB decimal; units are case-insensitive).
parsed<std::uint64_t> parse_size(std::string_view text);
// 17179869184 -> "16 GiB", 1500 -> "1500 B": for messages.
std::string format_size(std::uint64_t bytes);

// A rate, in bytes per second: "5Mbit/s", "40Mbit/s", "1500kbit/s" (bits, SI: k, M, G
// x1000), "625KB/s", "5MB/s" (bytes, SI), "512KiB/s", "5MiB/s" (bytes, binary), "625000B/s",
// or a bare integer of bytes per second. Units are case-insensitive but for the B of bytes
// ("5Mb/s" is refused); at least 1 byte/s.
parsed<std::uint64_t> parse_rate(std::string_view text);
// 625000 -> "625000 B/s (5 Mbit/s)": both units, for messages and logs.
std::string format_rate(std::uint64_t bytes_per_second);

// "0.0.0.0:443" or "[::]:443": an IP literal (no names: we bind before DNS is trusted) and a
// port 1..65535.
parsed<listen_address> parse_listen_address(std::string_view text);

// "10.0.0.0/8", "fd00::/8", "127.0.0.2" (/32), "::1" (/128): a network of allow_clients. Host
// bits set below the prefix ("10.0.0.1/8") are an error: the writer meant another network or a
// single address. IPv4-mapped IPv6 networks become IPv4 ("::ffff:10.0.0.0/104" = 10.0.0.0/8).
parsed<ip_network> parse_ip_network(std::string_view text);

struct upstream_url {
  std::string scheme;  // "https" or "http", lower-case
  std::string host;    // lower-case; IPv6 without brackets
  std::uint16_t port = 0;
  bool explicit_port = false;
};
// "https://host[:port]" with an optional lone trailing "/". http:// parses too: whether it is
// allowed is a policy of the site, decided by the caller.
parsed<upstream_url> parse_upstream_url(std::string_view text);

// Empty when text is a valid DNS name (letters, digits, '-', labels of 1..63, at most 253 in
// all, an optional trailing dot) or an IPv4/IPv6 literal (IPv6 with or without brackets);
// otherwise why not.
std::string check_host_name(std::string_view text);

// Empty when text is "host" or "host:port" with host as check_host_name() accepts (IPv6 in
// brackets); otherwise why not. For header values we send, so no spaces or controls get in.
std::string check_authority(std::string_view text);

// "Host" value for an upstream: host, bracketed if IPv6, plus ":port" unless it is the
// scheme's default.
std::string host_header_for(const upstream_url& url);

// Optimal string alignment distance (Levenshtein plus adjacent transposition), so that
// "tls_cret" is one edit from "tls_cert".
std::size_t edit_distance(std::string_view a, std::string_view b);
// The known name closest to name if it is at most max_distance edits away, else empty.
std::string_view closest_name(std::string_view name, std::span<const std::string_view> known,
                              std::size_t max_distance = 2);

}  // namespace storecache::config
