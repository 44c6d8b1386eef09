// One client connection from accept on: the TLS handshake (SNI picks the site's certificate,
// the site's device-certificate policy applies), the session ALPN chose, the close. And the
// answer to a connection over limits.max_connections: a 503 or an HTTP/2 GOAWAY, not a silent
// close. The server's accept loop (proxy/server.cpp) hands each accepted socket to one of them.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "access/denial.hpp"
#include "log/log.hpp"

namespace storecache::access {
class client_ledger;
}
namespace storecache::account {
class access_log;
class metrics;
}  // namespace storecache::account
namespace storecache::usage {
class recorder;
}

namespace storecache::proxy {

class proxy_handler;
struct runtime;

// The connection from TLS handshake to close. The frame holds what the connection uses
// (runtime, handler) so that a reload or shutdown never pulls them from under it; `connections`
// counts it until it ends.
boost::asio::awaitable<void> serve_connection(
    boost::asio::ip::tcp::socket socket, std::shared_ptr<const runtime> rt,
    std::shared_ptr<proxy_handler> handler, account::metrics& stats,
    std::atomic<std::size_t>& connections, std::uint64_t id, const bool* stopping,
    account::access_log* access, access::client_ledger* ledger, usage::recorder* usage);

// Connections over limits.max_connections are told so, not closed silently: a device's
// browser shows "try again" instead of a network error. Each such answer costs a handshake and
// a few hundred bytes, so at most max_over_limit_answers run at once, each for at most two
// seconds; beyond, a connection is closed at accept (counted as "closed"). `answering` counts
// this one until it ends.
inline constexpr std::size_t max_over_limit_answers = 64;
boost::asio::awaitable<void> answer_over_limit(boost::asio::ip::tcp::socket socket,
                                               std::shared_ptr<const runtime> rt,
                                               account::metrics& stats,
                                               std::atomic<std::size_t>& answering);

// A connection refused for an access reason before any request: counted in /metrics (site
// "-" when none was known) and in the usage history (in its total alone, then).
void count_refusal(account::metrics& stats, usage::recorder* usage, std::string_view site,
                   access::denial why);

// Refusals are logged at info, at most 10 lines a second (a scan of the port must not flood
// the journal); the next line let through says how many were dropped.
void log_refusal_line(std::string line);
template <typename... Args>
void log_refusal(fmt::format_string<Args...> f, Args&&... args) {
  if (!log::enabled(log::level::info)) return;
  log_refusal_line(fmt::format(f, std::forward<Args>(args)...));
}

// co_spawn completion: an escaped exception is a bug; log it rather than lose it.
void log_exception(std::exception_ptr e);

}  // namespace storecache::proxy
