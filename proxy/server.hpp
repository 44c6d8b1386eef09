// The daemon: worker threads (one io_context each, own SO_REUSEPORT acceptors), the control
// thread (signals, admin listener, drain), reload and graceful shutdown.
//
// Life cycle: starting (bind; a failure is fatal) -> ready (sd_notify READY=1) ->
//   [SIGHUP: reloading -> ready, the old config kept if the new one is bad] ->
//   draining (SIGTERM/SIGINT: STOPPING=1, acceptors closed, in-flight requests finish within
//   timeouts.shutdown_grace) -> stopped (threads joined, exit 0).
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "access/authorization_cache.hpp"
#include "account/metrics.hpp"
#include "proxy/tls.hpp"
#include "upstream/fetch_limiter.hpp"
#include "upstream/waiter_list.hpp"
#include "upstream/wan_budget.hpp"

namespace storecache::access {
class client_ledger;
}
namespace storecache::upstream {
class cache_service;
}
namespace storecache::account {
class access_log;
class usage_service;
}  // namespace storecache::account

namespace storecache::prefetch {
class runner;
}

namespace storecache::proxy {

struct server_worker;
class loop_watchdog;

class server {
 public:
  server(std::filesystem::path config_file, std::shared_ptr<const runtime> rt);
  ~server();
  // Binds, serves until told to stop, returns the process exit code. Throws
  // std::runtime_error if a listen address cannot be bound.
  int run();

 private:
  // run()'s steps, in order.
  void open_services();
  void bind_workers(unsigned n);
  void start_workers();
  boost::asio::awaitable<void> accept_loop(std::shared_ptr<boost::asio::ip::tcp::acceptor> acceptor,
                                           std::string listener, server_worker& w);
  boost::asio::awaitable<void> housekeeping(boost::asio::io_context& control);
  void start_drain(boost::asio::io_context& control, boost::asio::steady_timer& drain_timer);
  void stop_services();

  void reload();
  void reload_failed();
  std::string status_page();  // the admin listener's "/"
  std::string own_failure_metrics() const;
  std::string upstream_metrics() const;
  std::filesystem::path config_file_;
  std::shared_ptr<const runtime> rt_;
  account::metrics stats_;
  // Per client address, shared by all workers. Declared before cache_ and workers_, so it is
  // destroyed after them: fills (which hold miss slots) and connections end first.
  std::unique_ptr<access::client_ledger> ledger_;
  // Closed once the workers are joined, before their io_contexts go (see waiter_list.hpp).
  std::shared_ptr<upstream::wake_gate> gate_ = std::make_shared<upstream::wake_gate>();
  std::unique_ptr<upstream::fetch_limiter> limiter_;  // outlives the workers
  std::unique_ptr<upstream::wan_budget> wan_;         // likewise
  access::authorization_cache authorizations_;        // likewise ([site.cache] authorize_cache)
  std::unique_ptr<upstream::cache_service> cache_;
  std::unique_ptr<account::access_log> access_;
  std::unique_ptr<account::usage_service>
      usage_;  // in the cache's LMDB env: destroyed before cache_
  // Its thread is stopped with the workers' and its loop destroyed with theirs (stop_services).
  std::unique_ptr<prefetch::runner> prefetch_;
  std::atomic<std::uint64_t> reloads_applied_{0}, reloads_failed_{0};
  std::atomic<bool> last_reload_failed_{false};
  std::atomic<std::size_t> connections_{0};
  // Connections over max_connections being answered now (serve.cpp: answer_over_limit).
  std::atomic<std::size_t> over_limit_answers_{0};
  std::atomic<std::uint64_t> next_connection_id_{1};
  std::vector<std::unique_ptr<server_worker>> workers_;
  std::unique_ptr<loop_watchdog> watchdog_;  // beats into workers_' loops: declared after them
};

}  // namespace storecache::proxy
