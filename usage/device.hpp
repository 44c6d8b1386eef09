// The device mix: a User-Agent reduced to a small fixed set of families, so that every label
// value in /metrics, the history and the status page comes from a bounded set.
//
// Families (the list): OS = iOS/iPadOS, Android, Windows, macOS, ChromeOS, Linux, other;
// browser = Safari, Chrome, Firefox, Edge, Samsung Internet, in-app WebView, other. The major OS
// version is read where the UA carries it cheaply (iOS "CPU iPhone OS 17_4", Android "Android
// 14", Windows NT -> 10/8/7, macOS "Mac OS X 10_15" -> 10); 0 when unknown or frozen.
// Known limit: iPadOS 13+ Safari asks for the desktop site by default and sends a macOS UA;
// it is counted as macOS/Safari (the UA carries nothing else to tell them apart).
#pragma once

#include <cstdint>
#include <string_view>

namespace storecache::usage {

enum class os_family : std::uint8_t { ios, android, windows, macos, chromeos, gnu_linux, other };
inline constexpr int os_family_count = 7;

enum class browser_family : std::uint8_t { safari, chrome, firefox, edge, samsung, webview, other };
inline constexpr int browser_family_count = 7;

struct device {
  os_family os = os_family::other;
  browser_family browser = browser_family::other;
  int os_major = 0;  // 0 = unknown; otherwise 1..99 (larger values are not believed: 0)
  bool operator==(const device&) const = default;
};

// Never throws; an empty or hostile string is {other, other, 0}. Linear in the string's length.
device classify_user_agent(std::string_view user_agent);

// Label values for metrics and history keys: "ios", "android", "windows", "macos",
// "chromeos", "linux", "other" / "safari", "chrome", "firefox", "edge", "samsung", "webview",
// "other".
std::string_view label(os_family f);
std::string_view label(browser_family f);
// Names for people: "iOS/iPadOS", "Samsung Internet", "in-app WebView", ...
std::string_view display_name(os_family f);
std::string_view display_name(browser_family f);

// The negotiated TLS version of the connection a request came on.
enum class tls_version : std::uint8_t { tls1_2, tls1_3, other };
inline constexpr int tls_version_count = 3;
// From OpenSSL's SSL_get_version() text ("TLSv1.3" ...).
tls_version tls_version_from(std::string_view openssl_name);
std::string_view label(tls_version v);  // "TLSv1.2", "TLSv1.3", "other"

}  // namespace storecache::usage
