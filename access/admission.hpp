// The request path's access check for networks and device certificates: given the site a
// request's Host resolved to, may this client have this path? Pure: the caller passes what the
// connection knows (address, certificate state) and answers 403 with the denial.
//
// It repeats the listener's and the TLS handshake's checks on purpose: a client that sent no SNI
// (or a name of no site) got the default certificate and [server]'s policy, so only Host names
// the site it wants, and only here can that site's policy be applied.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "access/denial.hpp"
#include "config/config.hpp"

namespace storecache::access {

// What a connection's TLS handshake established about the client's certificate.
struct client_cert_state {
  bool verified = false;  // a certificate was presented and verified (chain, CRL)
  // The site whose client_ca verified it (its first host name); empty when [server]'s policy
  // did (no SNI, or a name of no site). A certificate counts only for the site that verified it.
  std::string verified_for;
  // What the access log shows ("sha256:<hex>", the subject, or empty), per log_client_cert.
  std::string log_id;
};

// A denial for (site, client, certificate, path), or nullopt to admit. path: without the query.
std::optional<denial> admit_request(const config::site& site,
                                    const boost::asio::ip::address& client,
                                    const client_cert_state& cert, std::string_view path);

}  // namespace storecache::access
