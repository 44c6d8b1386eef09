#include "proxy/admission.hpp"

#include "access/admission.hpp"
#include "proxy/metrics.hpp"

namespace storecache::proxy {

std::optional<access::denial> admit_client(connection_context& ctx, const config::site& site,
                                           const request_head& req, std::string_view path) {
  auto denied = access::admit_request(site, req.client_address, ctx.client_cert,
                                      path.substr(0, path.find('?')));
  if (denied) ctx.stats.access_denied(site.name(), *denied);
  return denied;
}

}  // namespace storecache::proxy
