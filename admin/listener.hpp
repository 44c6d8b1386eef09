// The admin listener: plain HTTP on a loopback address by default, for ops.
//   GET /healthz  -> 200 "ok" (503 "draining" during shutdown)
//   GET /metrics  -> Prometheus text format
//   GET /         -> the status page (HTML, usage/status_page.hpp)
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <functional>
#include <string>

namespace storecache::admin {

struct admin_state {
  std::function<std::string()> metrics;  // the exposition text
  std::function<bool()> draining;
  std::function<std::string()> status_page;  // HTML; unset: 404
};

// Accepts on `acceptor` until it is closed; each connection served in its own coroutine.
boost::asio::awaitable<void> run_admin(boost::asio::ip::tcp::acceptor& acceptor,
                                       admin_state& state);

}  // namespace storecache::admin
