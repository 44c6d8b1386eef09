// User-Agent classification against real UA strings, the TLS version names, and the labels.
#include <catch2/catch.hpp>
#include <string>

#include "usage/device.hpp"

using namespace storecache::usage;

namespace {

struct ua_case {
  const char* what;
  const char* ua;
  os_family os;
  browser_family browser;
  int os_major;
};

const ua_case cases[] = {
    {"iPhone Safari iOS 17",
     "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
     "Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
     os_family::ios, browser_family::safari, 17},
    {"iPad Safari (mobile UA)",
     "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/16.6 Mobile/15E148 Safari/604.1",
     os_family::ios, browser_family::safari, 16},
    {"iPadOS desktop mode: a macOS UA (documented limit)",
     "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.4 Safari/605.1.15",
     os_family::macos, browser_family::safari, 10},
    {"Facebook in-app on iOS (no Safari/ token)",
     "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
     "Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/452.0.0.39.110;FBBV/558118497;FBDV/iPhone14,5;FBMD/"
     "iPhone;FBSN/iOS;FBSV/17.3.1;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5;FBRV/0]",
     os_family::ios, browser_family::webview, 17},
    {"Instagram in-app on iOS",
     "Mozilla/5.0 (iPhone; CPU iPhone OS 16_7_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
     "Gecko) Mobile/15E148 Instagram 309.0.2.23.103 (iPhone12,1; iOS 16_7_2; en_US; en; "
     "scale=2.00; 828x1792; 537288532)",
     os_family::ios, browser_family::webview, 16},
    {"Teams-style WKWebView on iPad",
     "Mozilla/5.0 (iPad; CPU OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Mobile/15E148 TeamsMobile-iOS",
     os_family::ios, browser_family::webview, 17},
    {"Chrome on iOS (CriOS)",
     "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
     "Gecko) CriOS/123.0.6312.52 Mobile/15E148 Safari/604.1",
     os_family::ios, browser_family::chrome, 17},
    {"Firefox on iOS (FxiOS)",
     "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
     "Gecko) FxiOS/124.0 Mobile/15E148 Safari/605.1.15",
     os_family::ios, browser_family::firefox, 17},
    {"Edge on iOS (EdgiOS)",
     "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
     "Gecko) Version/17.0 EdgiOS/123.2420.56 Mobile/15E148 Safari/604.1",
     os_family::ios, browser_family::edge, 17},
    {"iOS media player (AppleCoreMedia)",
     "AppleCoreMedia/1.0.0.21E236 (iPhone; U; CPU OS 17_4 like Mac OS X; en_us)", os_family::ios,
     browser_family::other, 17},
    {"Android Chrome",
     "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/123.0.6312.99 Mobile Safari/537.36",
     os_family::android, browser_family::chrome, 14},
    {"Android Chrome reduced UA",
     "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Mobile Safari/537.36",
     os_family::android, browser_family::chrome, 10},
    {"Samsung Internet",
     "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
     "SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
     os_family::android, browser_family::samsung, 13},
    {"Android WebView",
     "Mozilla/5.0 (Linux; Android 12; SM-T505 Build/SP1A.210812.016; wv) AppleWebKit/537.36 "
     "(KHTML, like Gecko) Version/4.0 Chrome/122.0.6261.119 Safari/537.36",
     os_family::android, browser_family::webview, 12},
    {"Edge on Android (EdgA)",
     "Mozilla/5.0 (Linux; Android 14; SM-G991B) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/123.0.0.0 Mobile Safari/537.36 EdgA/123.0.2420.65",
     os_family::android, browser_family::edge, 14},
    {"Firefox on Android", "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0",
     os_family::android, browser_family::firefox, 14},
    {"Android stock browser (Safari/ token, not Safari)",
     "Mozilla/5.0 (Linux; U; Android 4.0.3; ko-kr; LG-L160L Build/IML74K) AppleWebkit/534.30 "
     "(KHTML, like Gecko) Version/4.0 Mobile Safari/534.30",
     os_family::android, browser_family::other, 4},
    {"Android media player (Dalvik)", "Dalvik/2.1.0 (Linux; U; Android 11; SM-A515F Build/RP1A)",
     os_family::android, browser_family::other, 11},
    {"Windows Chrome",
     "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/123.0.0.0 Safari/537.36",
     os_family::windows, browser_family::chrome, 10},
    {"Windows Edge",
     "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/123.0.0.0 Safari/537.36 Edg/123.0.2420.81",
     os_family::windows, browser_family::edge, 10},
    {"Windows Firefox",
     "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
     os_family::windows, browser_family::firefox, 10},
    {"Windows 8.1 Chrome",
     "Mozilla/5.0 (Windows NT 6.3; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/109.0.0.0 Safari/537.36",
     os_family::windows, browser_family::chrome, 8},
    {"Windows 7 Firefox",
     "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:115.0) Gecko/20100101 Firefox/115.0",
     os_family::windows, browser_family::firefox, 7},
    {"Windows Vista: version not mapped",
     "Mozilla/5.0 (Windows NT 6.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/49.0 "
     "Safari/537.36",
     os_family::windows, browser_family::chrome, 0},
    {"Opera on Windows counts as other, not Chrome",
     "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/123.0.0.0 Safari/537.36 OPR/109.0.0.0",
     os_family::windows, browser_family::other, 10},
    {"macOS Safari",
     "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.3.1 Safari/605.1.15",
     os_family::macos, browser_family::safari, 10},
    {"macOS Firefox (dotted version)",
     "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:125.0) Gecko/20100101 Firefox/125.0",
     os_family::macos, browser_family::firefox, 10},
    {"macOS Chrome",
     "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/123.0.0.0 Safari/537.36",
     os_family::macos, browser_family::chrome, 10},
    {"ChromeOS",
     "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/123.0.0.0 Safari/537.36",
     os_family::chromeos, browser_family::chrome, 0},
    {"Linux Firefox", "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
     os_family::gnu_linux, browser_family::firefox, 0},
    {"Ubuntu Firefox",
     "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:124.0) Gecko/20100101 Firefox/124.0",
     os_family::gnu_linux, browser_family::firefox, 0},
    {"curl", "curl/8.5.0", os_family::other, browser_family::other, 0},
    {"empty", "", os_family::other, browser_family::other, 0},
    {"garbage", "\x01\xff<script>alert(1)</script>", os_family::other, browser_family::other, 0},
    {"absurd iOS version", "Mozilla/5.0 (iPhone; CPU iPhone OS 1234_1 like Mac OS X)",
     os_family::ios, browser_family::other, 0},
    {"three-digit Android version", "Mozilla/5.0 (Linux; Android 100; X)", os_family::android,
     browser_family::other, 0},
    {"Android without a number", "Mozilla/5.0 (Linux; Android; X)", os_family::android,
     browser_family::other, 0},
};

}  // namespace

TEST_CASE("usage: User-Agents map to OS and browser families", "[usage][device]") {
  for (const auto& c : cases) {
    INFO(c.what << ": " << c.ua);
    const device d = classify_user_agent(c.ua);
    CHECK(label(d.os) == label(c.os));
    CHECK(label(d.browser) == label(c.browser));
    CHECK(d.os_major == c.os_major);
  }
}

TEST_CASE("usage: long and hostile User-Agents are other/other", "[usage][device]") {
  std::string junk(10 * 1024, '\0');
  std::uint32_t x = 12345;
  for (auto& ch : junk) {
    x = x * 1103515245u + 12345u;
    ch = static_cast<char>('a' + (x >> 16) % 26);  // letters only: no token can appear
  }
  CHECK(classify_user_agent(junk) == device{});
  CHECK(classify_user_agent(std::string(10 * 1024, '\xff')) == device{});
  // Tokens past the scanned prefix are not looked at.
  CHECK(classify_user_agent(junk + " (iPhone; CPU iPhone OS 17_4) Safari/604.1") == device{});
  // A UA cut right after its version token.
  CHECK(classify_user_agent("Mozilla/5.0 (Linux; Android 1").os_major == 1);
  CHECK(classify_user_agent("Mozilla/5.0 (Windows NT ").os == os_family::windows);
}

TEST_CASE("usage: TLS version names", "[usage][device]") {
  CHECK(tls_version_from("TLSv1.3") == tls_version::tls1_3);
  CHECK(tls_version_from("TLSv1.2") == tls_version::tls1_2);
  CHECK(tls_version_from("TLSv1.1") == tls_version::other);
  CHECK(tls_version_from("") == tls_version::other);
  CHECK(tls_version_from("tlsv1.3") == tls_version::other);  // OpenSSL's spelling only
  CHECK(label(tls_version::tls1_2) == "TLSv1.2");
  CHECK(label(tls_version::tls1_3) == "TLSv1.3");
  CHECK(label(tls_version::other) == "other");
}

TEST_CASE("usage: device labels are the documented bounded set", "[usage][device]") {
  const char* os_labels[] = {"ios", "android", "windows", "macos", "chromeos", "linux", "other"};
  const char* browser_labels[] = {"safari",  "chrome",  "firefox", "edge",
                                  "samsung", "webview", "other"};
  for (int i = 0; i < os_family_count; ++i)
    CHECK(label(static_cast<os_family>(i)) == os_labels[i]);
  for (int i = 0; i < browser_family_count; ++i)
    CHECK(label(static_cast<browser_family>(i)) == browser_labels[i]);
  CHECK(display_name(os_family::ios) == "iOS/iPadOS");
  CHECK(display_name(os_family::gnu_linux) == "Linux");
  CHECK(display_name(browser_family::samsung) == "Samsung Internet");
  CHECK(display_name(browser_family::webview) == "in-app WebView");
  CHECK(display_name(browser_family::other) == "Other");
}
