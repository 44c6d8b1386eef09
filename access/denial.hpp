// Why a device was refused content: one reason per check of the admission step, so that
// /metrics (storecache_access_denied_total{site,reason}), the access log and the status page
// say the same thing. Nothing secret goes with it: a reason names the check, never the token.
#pragma once

#include <array>
#include <cstddef>
#include <string_view>

namespace storecache::access {

enum class denial : unsigned char {
  network,      // the client's address is outside the listener's or site's allow_clients
  client_cert,  // no verified device certificate where one is required (or a revoked one)
  signature,    // a signed URL or signed cookie that is missing, forged, expired or malformed
  upstream,     // the upstream refused this device's credentials (authorize with upstream)
};
inline constexpr std::size_t denial_count = 4;

constexpr std::string_view to_string(denial d) {
  constexpr std::array<std::string_view, denial_count> names{"network", "client_cert", "signature",
                                                             "upstream"};
  return names[static_cast<std::size_t>(d)];
}

}  // namespace storecache::access
