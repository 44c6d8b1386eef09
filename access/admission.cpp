#include "access/admission.hpp"

#include "access/networks.hpp"

namespace storecache::access {

std::optional<denial> admit_request(const config::site& site,
                                    const boost::asio::ip::address& client,
                                    const client_cert_state& cert, std::string_view path) {
  const config::site_access& policy = site.access;
  if (!admitted(policy.allow_clients, client)) return denial::network;
  bool cert_needed = policy.client.mode == config::client_cert_mode::required;
  if (!cert_needed && policy.client.mode == config::client_cert_mode::optional)
    if (const auto* rule = config::match_access_rule(policy, path)) cert_needed = rule->client_cert;
  if (cert_needed && !(cert.verified && cert.verified_for == site.name()))
    return denial::client_cert;
  return std::nullopt;
}

}  // namespace storecache::access
