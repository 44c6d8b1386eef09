// Client admission by network: is a client address inside an allow_clients list? Pure: the
// networks come parsed from the config (config::parse_ip_network), the address from the socket.
//
// IPv4 and IPv6 are kept apart, except that an IPv4-mapped IPv6 address (::ffff:10.1.2.3, what
// a dual-stack socket reports for an IPv4 client) is matched as the IPv4 address it carries.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <span>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace storecache::access {

// Whether address lies in network.
bool contains(const config::ip_network& network, const boost::asio::ip::address& address);

// Whether any network of an allow_clients list holds address; an empty list admits everyone
// (the key was not written). Linear: lists are a handful of store networks.
bool admitted(std::span<const config::ip_network> allow, const boost::asio::ip::address& address);

// "10.0.0.0/8" etc. into a list, for tests and tools; throws std::invalid_argument with the
// parser's message on a bad entry.
std::vector<config::ip_network> parse_networks(std::span<const std::string_view> texts);

}  // namespace storecache::access
