// The request path's access step for networks and device certificates (DESIGN step 4, admit):
// one call right after the site is resolved. The decision is access::admit_request (pure); this
// adds what the daemon does with a denial: count it by site and reason.
#pragma once

#include <optional>
#include <string_view>

#include "access/denial.hpp"
#include "config/config.hpp"
#include "proxy/connection_context.hpp"
#include "proxy/exchange.hpp"

namespace storecache::proxy {

// A denial of req for site (counted in storecache_access_denied_total), or nullopt to go on.
// path: the routed target, query included (it is stripped here). The caller answers 403 and
// the access-log line carries the reason.
std::optional<access::denial> admit_client(connection_context& ctx, const config::site& site,
                                           const request_head& req, std::string_view path);

}  // namespace storecache::proxy
