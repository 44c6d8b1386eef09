// User-Agent -> device families. Substring tests over the first max_scanned bytes only: no
// regex, no allocation, bounded work per request however long or hostile the header is.
//
// Order matters because UAs borrow each other's tokens:
// - OS: iOS before macOS (iOS sends "like Mac OS X"), Android and ChromeOS before Linux
//   (both send "Linux").
// - Browser: Edge ("Edg/", "EdgA/", "EdgiOS/") and Samsung Internet before Chrome (both send
//   "Chrome/"); Android WebView ("; wv)") before Chrome; Firefox ("Firefox/", "FxiOS/") and
//   Chrome ("Chrome/", "CriOS/") before Safari (all send "Safari/"). On iOS and macOS a WebKit
//   UA without "Safari/" is an app's embedded web view (Facebook, Instagram, Teams...).
//   Opera ("OPR/") is not in the list and counts as other rather than as Chrome.
// - Safari is only believed on iOS and macOS: old Android stock browsers send "Safari/" too.
// - Media players are other browsers on their OS: iOS's AppleCoreMedia ("(iPhone; U; CPU OS
//   17_4 like Mac OS X...)", which Safari uses for <video> too) is ios/other; Android's Dalvik,
//   ExoPlayer and stagefright are android/other when they name Android.
#include "usage/device.hpp"

#include <cstddef>

namespace storecache::usage {

namespace {

// Real UAs are under 500 bytes; in-app ones with long app suffixes still fit.
constexpr std::size_t max_scanned = 1024;

bool has(std::string_view s, std::string_view token) {
  return s.find(token) != std::string_view::npos;
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// The decimal number at the start of s (at most 3 digits read); 0 when none or > 99.
int leading_number(std::string_view s) {
  int v = 0;
  std::size_t i = 0;
  for (; i < s.size() && i < 3 && is_digit(s[i]); ++i)
    v = v * 10 + (s[i] - '0');
  if (i == 0 || v > 99 || (i < s.size() && is_digit(s[i]))) return 0;
  return v;
}

// The number right after the first occurrence of token, or 0.
int number_after(std::string_view s, std::string_view token) {
  const auto at = s.find(token);
  if (at == std::string_view::npos) return 0;
  return leading_number(s.substr(at + token.size()));
}

int ios_major(std::string_view ua) {
  // iPhone: "CPU iPhone OS 17_4 like Mac OS X"; iPad and iPod: "CPU OS 17_4 like Mac OS X".
  if (int v = number_after(ua, "iPhone OS ")) return v;
  return number_after(ua, "CPU OS ");
}

int windows_major(std::string_view ua) {
  const auto at = ua.find("Windows NT ");
  if (at == std::string_view::npos) return 0;
  const std::string_view v = ua.substr(at + 11);
  if (v.starts_with("10.")) return 10;  // Windows 11 sends 10.0 as well
  if (v.starts_with("6.3") || v.starts_with("6.2")) return 8;
  if (v.starts_with("6.1")) return 7;
  return 0;
}

os_family os_of(std::string_view ua) {
  if (has(ua, "iPhone") || has(ua, "iPad") || has(ua, "iPod")) return os_family::ios;
  if (has(ua, "Android")) return os_family::android;
  if (has(ua, "CrOS")) return os_family::chromeos;
  if (has(ua, "Windows")) return os_family::windows;
  if (has(ua, "Macintosh") || has(ua, "Mac OS X")) return os_family::macos;
  if (has(ua, "Linux") || has(ua, "X11")) return os_family::gnu_linux;
  return os_family::other;
}

int os_major_of(os_family os, std::string_view ua) {
  switch (os) {
    case os_family::ios:
      return ios_major(ua);
    case os_family::android:
      return number_after(ua, "Android ");
    case os_family::windows:
      return windows_major(ua);
    case os_family::macos:
      return number_after(ua, "Mac OS X ");  // "10_15_7" and "10.15" both give 10
    default:
      return 0;
  }
}

browser_family browser_of(os_family os, std::string_view ua) {
  if (has(ua, "Edg/") || has(ua, "EdgA/") || has(ua, "EdgiOS/") || has(ua, "Edge/"))
    return browser_family::edge;
  if (has(ua, "SamsungBrowser/")) return browser_family::samsung;
  if (has(ua, "; wv)")) return browser_family::webview;
  if (has(ua, "OPR/")) return browser_family::other;
  if (has(ua, "Firefox/") || has(ua, "FxiOS/")) return browser_family::firefox;
  if (has(ua, "CriOS/") || has(ua, "Chrome/")) return browser_family::chrome;
  const bool apple = os == os_family::ios || os == os_family::macos;
  if (apple && has(ua, "Safari/")) return browser_family::safari;
  if (apple && has(ua, "AppleWebKit/")) return browser_family::webview;
  return browser_family::other;
}

}  // namespace

device classify_user_agent(std::string_view user_agent) {
  const std::string_view ua = user_agent.substr(0, max_scanned);
  device d;
  d.os = os_of(ua);
  d.os_major = os_major_of(d.os, ua);
  d.browser = browser_of(d.os, ua);
  return d;
}

std::string_view label(os_family f) {
  switch (f) {
    case os_family::ios:
      return "ios";
    case os_family::android:
      return "android";
    case os_family::windows:
      return "windows";
    case os_family::macos:
      return "macos";
    case os_family::chromeos:
      return "chromeos";
    case os_family::gnu_linux:
      return "linux";
    case os_family::other:
      break;
  }
  return "other";
}

std::string_view label(browser_family f) {
  switch (f) {
    case browser_family::safari:
      return "safari";
    case browser_family::chrome:
      return "chrome";
    case browser_family::firefox:
      return "firefox";
    case browser_family::edge:
      return "edge";
    case browser_family::samsung:
      return "samsung";
    case browser_family::webview:
      return "webview";
    case browser_family::other:
      break;
  }
  return "other";
}

std::string_view display_name(os_family f) {
  switch (f) {
    case os_family::ios:
      return "iOS/iPadOS";
    case os_family::android:
      return "Android";
    case os_family::windows:
      return "Windows";
    case os_family::macos:
      return "macOS";
    case os_family::chromeos:
      return "ChromeOS";
    case os_family::gnu_linux:
      return "Linux";
    case os_family::other:
      break;
  }
  return "Other";
}

std::string_view display_name(browser_family f) {
  switch (f) {
    case browser_family::safari:
      return "Safari";
    case browser_family::chrome:
      return "Chrome";
    case browser_family::firefox:
      return "Firefox";
    case browser_family::edge:
      return "Edge";
    case browser_family::samsung:
      return "Samsung Internet";
    case browser_family::webview:
      return "in-app WebView";
    case browser_family::other:
      break;
  }
  return "Other";
}

tls_version tls_version_from(std::string_view openssl_name) {
  if (openssl_name == "TLSv1.3") return tls_version::tls1_3;
  if (openssl_name == "TLSv1.2") return tls_version::tls1_2;
  return tls_version::other;
}

std::string_view label(tls_version v) {
  switch (v) {
    case tls_version::tls1_2:
      return "TLSv1.2";
    case tls_version::tls1_3:
      return "TLSv1.3";
    case tls_version::other:
      break;
  }
  return "other";
}

}  // namespace storecache::usage
