#include "access/networks.hpp"

#include <stdexcept>

#include "config/values.hpp"

namespace storecache::access {

namespace {

bool prefix_equal(const std::uint8_t* a, const std::uint8_t* b, unsigned prefix) {
  const unsigned whole = prefix / 8;
  for (unsigned i = 0; i < whole; ++i)
    if (a[i] != b[i]) return false;
  if (const unsigned rest = prefix % 8; rest != 0) {
    const auto mask = static_cast<std::uint8_t>(0xffu << (8 - rest));
    if ((a[whole] & mask) != (b[whole] & mask)) return false;
  }
  return true;
}

}  // namespace

bool contains(const config::ip_network& network, const boost::asio::ip::address& address) {
  if (address.is_v4() || (address.is_v6() && address.to_v6().is_v4_mapped())) {
    if (!network.v4) return false;
    const auto v4 = address.is_v4() ? address.to_v4()
                                    : boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped,
                                                                       address.to_v6());
    const auto bytes = v4.to_bytes();
    return prefix_equal(bytes.data(), network.bytes.data(), network.prefix);
  }
  if (network.v4 || !address.is_v6()) return false;
  const auto bytes = address.to_v6().to_bytes();
  return prefix_equal(bytes.data(), network.bytes.data(), network.prefix);
}

bool admitted(std::span<const config::ip_network> allow, const boost::asio::ip::address& address) {
  if (allow.empty()) return true;
  for (const auto& n : allow)
    if (contains(n, address)) return true;
  return false;
}

std::vector<config::ip_network> parse_networks(std::span<const std::string_view> texts) {
  std::vector<config::ip_network> out;
  for (auto t : texts) {
    auto n = config::parse_ip_network(t);
    if (!n.ok()) throw std::invalid_argument(n.error);
    out.push_back(n.value);
  }
  return out;
}

}  // namespace storecache::access
