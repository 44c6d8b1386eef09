#include "proxy/admission.hpp"

#include <fmt/format.h>

#include <chrono>

#include "access/admission.hpp"
#include "access/site_verifier.hpp"
#include "account/metrics.hpp"
#include "proxy/tls.hpp"

namespace storecache::proxy {

std::optional<refusal> admit(connection_context& ctx, const config::site& site,
                             const http::request_head& req, std::string_view authority,
                             std::string_view target) {
  if (auto denied = access::admit_request(site, req.client_address, ctx.client_cert,
                                          target.substr(0, target.find('?')))) {
    ctx.stats.access_denied(site.name(), *denied);
    return refusal{*denied, fmt::format("denied: {}", access::to_string(*denied))};
  }
  // Signed URLs are checked on every request, hit or miss: the cache key leaves the signature
  // out, so without this a stored copy would answer an unsigned request.
  if (ctx.rt && site.signed_urls.verifies()) {
    auto result = check_signature(ctx, site, req, authority, target);
    if (result != access::signature_result::ok) {
      ctx.stats.access_denied(site.name(), access::denial::signature);
      return refusal{access::denial::signature,
                     fmt::format("denied: signature {}", access::to_string(result))};
    }
  }
  return std::nullopt;
}

access::signature_result check_signature(const connection_context& ctx, const config::site& site,
                                         const http::request_head& req, std::string_view authority,
                                         std::string_view target) {
  const auto qmark = target.find('?');
  const std::string_view path = target.substr(0, qmark);
  if (!access::must_be_signed(site.signed_urls, path)) return access::signature_result::ok;
  auto it = ctx.rt->verifiers.find(site.name());
  if (it == ctx.rt->verifiers.end()) return access::signature_result::missing;  // not built
  std::string cookies;
  for (const auto& h : req.headers)
    if (h.name == "cookie") {
      if (!cookies.empty()) cookies += "; ";
      cookies += h.value;
    }
  const std::string host = config::normalize_host(authority);
  const std::string ip = req.client_address.to_string();
  access::signed_request sr;
  sr.host = host;
  sr.path = path;
  sr.query = qmark == std::string_view::npos ? std::string_view{} : target.substr(qmark + 1);
  sr.cookies = cookies;
  sr.client_ip = ip;
  sr.now = std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
               .count();
  return it->second->verify(sr);
}

}  // namespace storecache::proxy
