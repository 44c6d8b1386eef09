// What a front-end session needs from the worker that accepted its connection.
#pragma once

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "access/admission.hpp"
#include "config/config.hpp"
#include "proxy/http_names.hpp"
#include "usage/device.hpp"

namespace storecache::access {
class client_ledger;
}
namespace storecache::account {
class access_log;
class metrics;
}  // namespace storecache::account

namespace storecache::proxy {

class request_handler;
struct runtime;

struct connection_context {
  std::shared_ptr<const config::config> cfg;  // the config current at accept time
  request_handler& handler;                   // the worker's handler (one per thread)
  account::metrics& stats;
  asio::ip::tcp::endpoint client;
  std::string sni;
  std::uint64_t connection_id = 0;
  const bool* stopping = nullptr;     // set when the daemon drains: finish current, take no more
  std::shared_ptr<const runtime> rt;  // TLS contexts etc. derived from cfg (proxy/tls.hpp)
  usage::tls_version tls = usage::tls_version::other;  // negotiated on this connection
  // The device certificate the handshake verified, if any, and what the access log shows of it.
  access::client_cert_state client_cert{};
  account::access_log* access = nullptr;  // where access-log lines go, if anywhere
  // Per client address, process-wide (the server's): misses in flight, abandoned requests.
  access::client_ledger* ledger = nullptr;

  // Cold misses this connection leads now (limits.misses_per_connection); shared with the
  // fills it started, which may outlive it.
  std::shared_ptr<std::atomic<std::size_t>> misses_led =
      std::make_shared<std::atomic<std::size_t>>(0);

  // The last User-Agent seen on this connection and its device: a connection rarely changes it.
  std::string last_user_agent{};
  usage::device last_device{};
};

}  // namespace storecache::proxy
