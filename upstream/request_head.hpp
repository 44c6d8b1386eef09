// The request head towards the origin, built from a device's request: our Host, forwarding
// fields set by us (Via, X-Forwarded-*, Forwarded), hop-by-hop and client-supplied forwarding
// fields dropped.
#pragma once

#include <string>
#include <string_view>

#include "http/exchange.hpp"

namespace storecache::upstream {

struct upstream_head {
  std::string text;      // "\r\n\r\n"-terminated
  bool chunked = false;  // the request body must be sent chunked (its length is unknown)
};
// for_fill: a fetch of the whole object on behalf of the cache (no Range, no client
// conditionals; `extra` adds our validators). Otherwise the client's request as it is, with
// its body's framing.
upstream_head build_upstream_head(const http::request_head& req, std::string_view method,
                                  std::string_view path, const std::string& host_header,
                                  bool for_fill, const cache::header_list& extra = {});

}  // namespace storecache::upstream
