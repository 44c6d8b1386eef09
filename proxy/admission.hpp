// The request path's access step (DESIGN step 4, admit): one call right after the site is
// resolved, before any cache lookup: the site's networks and device certificates
// (access::admit_request, pure), then its signed URLs (the runtime's verifier). This adds what
// the daemon does with a denial: count it by site and reason, and say why.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "access/denial.hpp"
#include "access/signed_url.hpp"
#include "config/config.hpp"
#include "proxy/connection_context.hpp"
#include "proxy/http_names.hpp"

namespace storecache::proxy {

struct refusal {
  access::denial reason;
  std::string why;  // for the access log: "denied: network", "denied: signature expired"
};

// A denial of req for site (counted in storecache_access_denied_total), or nullopt to go on.
// authority: the one the request was routed by; target: the routed target, query included.
// The caller answers 403.
std::optional<refusal> admit(connection_context& ctx, const config::site& site,
                             const http::request_head& req, std::string_view authority,
                             std::string_view target);

// [site.signed_urls] with a verifier: ok when the path needs no signature or carries a valid
// one (hit or miss alike: the cache key leaves the signature out).
access::signature_result check_signature(const connection_context& ctx, const config::site& site,
                                         const http::request_head& req, std::string_view authority,
                                         std::string_view target);

}  // namespace storecache::proxy
