// Why an upstream exchange failed: the client (upstream/client) reports it, fills keep it for
// their readers, and it decides 502 versus 504 and the metrics label.
#pragma once

#include <string_view>

namespace storecache::upstream {

// Why an upstream exchange failed; decides 502 versus 504 and the metrics label.
enum class upstream_error {
  none,
  resolve,       // name did not resolve -> 502
  connect,       // refused / unreachable -> 502
  tls,           // handshake or certificate verification failed -> 502
  timeout,       // connect or first-byte timeout -> 504
  reset,         // closed before or during the response -> 502
  bad_response,  // not parseable HTTP -> 502
  client,        // the client went away while we sent its request body
};
std::string_view to_string(upstream_error e);
unsigned status_for(upstream_error e);  // 502 or 504

}  // namespace storecache::upstream
