#include "proxy/server.hpp"

#include <malloc.h>
#include <pthread.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>

#include <unistd.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>

#include <csignal>
#include <cstdio>
#include <ctime>
#include <stdexcept>
#include <thread>

#include "access/client_certs.hpp"
#include "access/client_ledger.hpp"
#include "access/networks.hpp"
#include "account/access_log.hpp"
#include "account/build_info.hpp"
#include "account/usage_service.hpp"
#include "admin/exposition.hpp"
#include "admin/listener.hpp"
#include "http/tls_failure.hpp"
#include "log/log.hpp"
#include "prefetch/runner.hpp"
#include "proxy/connection.hpp"
#include "proxy/proxy_handler.hpp"
#include "proxy/sessions.hpp"
#include "proxy/watchdog.hpp"
#include "upstream/cache_service.hpp"
#include "usage/report.hpp"
#include "usage/status_page.hpp"

namespace storecache::proxy {

using asio::redirect_error;
using asio::use_awaitable;
using asio::ip::tcp;
using reuse_port = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

namespace {

// glibc trims only the top of its heaps: what a burst freed between longer-lived allocations
// (LMDB's page pool, a connection's buffers) stays resident. When resident anonymous memory
// exceeds what malloc has allocated by this much, the 5 s tick returns the free pages to the
// kernel. malloc_trim took 3-6 ms after a burst of 5,000 misses (it locks one arena at a time,
// so a worker may wait that long once); then the gap is closed and it runs again only after
// the next burst.
constexpr std::uint64_t unused_resident_trim_above = 16 << 20;

void release_free_heap() {
  const account::process_memory m = account::read_process_memory();
  if (m.anonymous <= m.heap_in_use + unused_resident_trim_above) return;
  const auto t0 = std::chrono::steady_clock::now();
  ::malloc_trim(0);
  log::debug(
      "heap: {} bytes resident, {} in use: trimmed to {} in {} us", m.anonymous, m.heap_in_use,
      account::read_process_memory().anonymous,
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
          .count());
}

tcp::endpoint endpoint_of(const config::listen_address& a) {
  error_code ec;
  auto addr = asio::ip::make_address(a.host, ec);
  if (ec) throw std::runtime_error("listen address '" + a.text() + "' is not an IP address");
  return {addr, a.port};
}

std::shared_ptr<tcp::acceptor> open_acceptor(asio::io_context& io, const config::listen_address& a,
                                             bool share_port) {
  auto acc = std::make_shared<tcp::acceptor>(io);
  auto ep = endpoint_of(a);
  error_code ec;
  acc->open(ep.protocol(), ec);
  if (!ec && ep.address().is_v6()) acc->set_option(asio::ip::v6_only(true), ec);
  if (!ec) acc->set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec && share_port) acc->set_option(reuse_port(true), ec);
  if (!ec) acc->bind(ep, ec);
  if (!ec) acc->listen(1024, ec);
  if (ec) throw std::runtime_error("cannot listen on " + a.text() + ": " + ec.message());
  return acc;
}

// The clients a bound listener admits, from the current config: its own entry by address (a
// reload may change the list, not the sockets), else [server].allow_clients.
const std::vector<config::ip_network>& allowed_on(const config::config& cfg,
                                                  const std::string& listener) {
  for (const auto& l : cfg.server.listen)
    if (l.text() == listener) return l.allow_clients;
  return cfg.server.allow_clients;
}

// Every client connection holds a descriptor, and so does each upstream connection: with the
// soft limit most shells give (1024), accept would fail long before limits.max_connections
// (the systemd unit sets LimitNOFILE=65536). The soft limit is raised to the hard one, and a
// limit still short of what the config may need is said at start.
void raise_descriptor_limit(const config::limits& lim) {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  if (rl.rlim_cur != rl.rlim_max) {
    rlimit raised = rl;
    raised.rlim_cur = rl.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) rl = raised;
  }
  // Clients, upstream fetches, answers over the limit, and 256 for listeners, the index, body
  // files being written or read, logs.
  const std::uint64_t needed = lim.max_connections + lim.upstream_fetches + 64 + 256;
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < needed)
    log::warn(
        "open file limit is {}, below the {} that limits.max_connections = {} may need: new "
        "connections will fail at accept before that; raise LimitNOFILE (ulimit -n) or lower "
        "limits.max_connections",
        static_cast<std::uint64_t>(rl.rlim_cur), needed, lim.max_connections);
}

}  // namespace

struct server_worker {
  asio::io_context io{1};
  std::shared_ptr<proxy_handler> handler;
  std::shared_ptr<const runtime> rt;  // touched only on this worker's thread
  std::vector<std::shared_ptr<tcp::acceptor>> acceptors;
  bool stopping = false;  // likewise
  std::thread thread;

  server_worker(upstream::cache_service* cache, usage::recorder* usage,
                upstream::fetch_limiter& limiter, upstream::wan_budget& budget,
                access::authorization_cache& authorizations)
      : handler(std::make_shared<proxy_handler>(io.get_executor(), cache, usage, limiter, budget,
                                                authorizations)) {}
};

server::server(std::filesystem::path config_file, std::shared_ptr<const runtime> rt)
    : config_file_(std::move(config_file)), rt_(std::move(rt)) {}

server::~server() = default;

int server::run() {
  const auto& cfg = *rt_->cfg;
  unsigned n = cfg.server.workers != 0 ? cfg.server.workers
                                       : std::max(1u, std::thread::hardware_concurrency());
  std::signal(SIGPIPE, SIG_IGN);
  raise_descriptor_limit(cfg.limit);
  open_services();

  // Bind everything first: a port in use is a start-up error, reported before READY.
  bind_workers(n);
  asio::io_context control{1};
  auto admin_acceptor = open_acceptor(control, cfg.admin.listen, false);
  start_workers();
  prefetch_->start(rt_->cfg, rt_->upstream_tls);
  // Liveness: systemd's watchdog is pinged only while every worker's loop turns, and the
  // prefetch runner's.
  std::vector<loop_watchdog::watched> loops;
  for (std::size_t i = 0; i < workers_.size(); ++i)
    loops.push_back({std::to_string(i), &workers_[i]->io});
  loops.push_back({"prefetch", &prefetch_->loop()});
  const auto systemd_watchdog = loop_watchdog::systemd_interval();
  watchdog_ = std::make_unique<loop_watchdog>(
      std::move(loops), loop_watchdog::beat_for(systemd_watchdog), systemd_watchdog.has_value());
  asio::co_spawn(control, watchdog_->run(), log_exception);

  bool draining = false;
  admin::admin_state admin{[this] { return stats_.render(); }, [&draining] { return draining; },
                           [this] { return status_page(); }};
  asio::co_spawn(control, admin::run_admin(*admin_acceptor, admin), log_exception);
  asio::co_spawn(control, housekeeping(control), log_exception);

  asio::signal_set signals(control, SIGINT, SIGTERM, SIGHUP);
  signals.add(SIGUSR1);
  asio::steady_timer drain_timer(control);
  std::function<void()> wait_signal = [&] {
    signals.async_wait([&](error_code ec, int sig) {
      if (ec) return;
      if (sig == SIGHUP) {
        reload();
      } else if (sig == SIGUSR1) {
        access_->reopen();
      } else if (!draining) {
        draining = true;
        start_drain(control, drain_timer);
      }
      wait_signal();
    });
  };
  wait_signal();

  std::string addresses;
  for (const auto& a : cfg.server.listen)
    addresses += " " + a.text();
  log::notice("storecache {} ready: {} worker(s), listening on{}, admin on {}",
              account::build_version, n, addresses, cfg.admin.listen.text());
  sd_notify(0, "READY=1");
  control.run();
  stop_services();
  log::notice("stopped");
  return 0;
}

void server::open_services() {
  const auto& cfg = *rt_->cfg;
  ledger_ = std::make_unique<access::client_ledger>(access::client_ledger::from_config(cfg.limit));
  stats_.set_ledger(ledger_.get());
  // The cache first: a cache directory we cannot use is a start-up error.
  limiter_ = std::make_unique<upstream::fetch_limiter>(
      upstream::fetch_limiter::from_config(cfg.limit), gate_);
  cache_ = std::make_unique<upstream::cache_service>(cfg.cache, gate_);
  usage_ = std::make_unique<account::usage_service>(cache_->store());
  access_ = account::access_log::open(cfg.log);
  wan_ = std::make_unique<upstream::wan_budget>();
  wan_->set(cfg);
  prefetch_ =
      std::make_unique<prefetch::runner>(*cache_, *limiter_, *wan_, stats_, &usage_->recorder());
  stats_.set_extra([this] {
    return cache_->render_metrics() + upstream_metrics() + wan_->render_metrics() +
           own_failure_metrics() + (watchdog_ ? watchdog_->render_metrics() : std::string()) +
           prefetch_->render_metrics();
  });
}

void server::bind_workers(unsigned n) {
  const auto& cfg = *rt_->cfg;
  for (unsigned i = 0; i < n; ++i) {
    auto w = std::make_unique<server_worker>(cache_.get(), &usage_->recorder(), *limiter_, *wan_,
                                             authorizations_);
    w->rt = rt_;
    for (const auto& a : cfg.server.listen)
      w->acceptors.push_back(open_acceptor(w->io, a, true));
    workers_.push_back(std::move(w));
  }
}

void server::start_workers() {
  const auto& cfg = *rt_->cfg;
  for (auto& wp : workers_) {
    server_worker& w = *wp;
    for (std::size_t i = 0; i < w.acceptors.size(); ++i)
      asio::co_spawn(w.io, accept_loop(w.acceptors[i], cfg.server.listen[i].text(), w),
                     log_exception);
    w.thread = std::thread([&w, name = fmt::format("sc-worker-{}", &wp - workers_.data())] {
      pthread_setname_np(pthread_self(), name.c_str());  // top -H, gdb and the watchdog test
      w.io.run();
    });
  }
}

asio::awaitable<void> server::accept_loop(std::shared_ptr<tcp::acceptor> acceptor,
                                          std::string listener, server_worker& w) {
  for (;;) {
    auto [ec, socket] = co_await acceptor->async_accept(asio::as_tuple(use_awaitable));
    if (w.stopping || !acceptor->is_open()) co_return;
    if (ec) {
      // Out of descriptors and the like: back off instead of spinning.
      log::warn("accept failed: {}", ec.message());
      asio::steady_timer pause(w.io, std::chrono::milliseconds(100));
      co_await pause.async_wait(asio::as_tuple(use_awaitable));
      continue;
    }
    // Admission by network, before any TLS: a client outside allow_clients is closed.
    if (const auto& allow = allowed_on(*w.rt->cfg, listener); !allow.empty()) {
      error_code peer_ec;
      const auto peer = socket.remote_endpoint(peer_ec);
      if (peer_ec || !access::admitted(allow, peer.address())) {
        count_refusal(stats_, &usage_->recorder(), account::metrics::no_site,
                      access::denial::network);
        log_refusal("client={} listener={}: refused at accept: network (allow_clients)",
                    peer_ec ? std::string("?") : peer.address().to_string(), listener);
        continue;  // the socket closes here
      }
    }
    if (connections_.fetch_add(1, std::memory_order_relaxed) >= w.rt->cfg->limit.max_connections) {
      connections_.fetch_sub(1, std::memory_order_relaxed);
      if (over_limit_answers_.fetch_add(1, std::memory_order_relaxed) >= max_over_limit_answers) {
        over_limit_answers_.fetch_sub(1, std::memory_order_relaxed);
        stats_.connection_refused_limit(account::metrics::over_limit_answer::closed);
        continue;  // the socket closes here
      }
      asio::co_spawn(w.io, answer_over_limit(std::move(socket), w.rt, stats_, over_limit_answers_),
                     log_exception);
      continue;
    }
    error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    auto id = next_connection_id_.fetch_add(1, std::memory_order_relaxed);
    asio::co_spawn(w.io,
                   serve_connection(std::move(socket), w.rt, w.handler, stats_, connections_, id,
                                    &w.stopping, access_.get(), ledger_.get(), &usage_->recorder()),
                   log_exception);
  }
}

// Access recency is kept in memory on hits, usage counts in the recorder; write both to the
// index every few seconds, here on the control thread, so that LRU order and the usage
// history survive restarts and no worker waits for it.
asio::awaitable<void> server::housekeeping(asio::io_context& control) {
  asio::steady_timer tick(control);
  for (;;) {
    tick.expires_after(std::chrono::seconds(5));
    auto [ec] = co_await tick.async_wait(asio::as_tuple(use_awaitable));
    if (ec) co_return;
    if (auto fe = cache_->store().flush_access()) log::warn("cache: {}", fe.message());
    usage_->flush();
    // Addresses with nothing left to remember leave, so the gauge shows real activity.
    ledger_->sweep(std::chrono::steady_clock::now());
    release_free_heap();
  }
}

// SIGTERM/SIGINT: no new connections; requests in flight get timeouts.shutdown_grace, then
// the workers and the control loop stop.
void server::start_drain(asio::io_context& control, asio::steady_timer& drain_timer) {
  sd_notify(0, "STOPPING=1");
  log::notice("stopping: no new connections; waiting up to {} ms for {} request(s)",
              rt_->cfg->timeout.shutdown_grace.count(), stats_.in_flight());
  for (auto& w : workers_)
    asio::post(w->io, [&w = *w] {
      w.stopping = true;
      for (auto& a : w.acceptors) {
        error_code ignored;
        a->close(ignored);
      }
    });
  auto deadline = std::chrono::steady_clock::now() + rt_->cfg->timeout.shutdown_grace;
  asio::co_spawn(
      control,
      [this, &control, &drain_timer, deadline]() -> asio::awaitable<void> {
        while (stats_.in_flight() > 0 && std::chrono::steady_clock::now() < deadline) {
          drain_timer.expires_after(std::chrono::milliseconds(50));
          co_await drain_timer.async_wait(asio::as_tuple(use_awaitable));
        }
        if (stats_.in_flight() > 0)
          log::warn("stopping: {} request(s) still running after the grace period; cut",
                    stats_.in_flight());
        for (auto& w : workers_)
          w->io.stop();
        prefetch_->stop();
        control.stop();
      },
      log_exception);
}

// After the control loop: the order matters (see each line).
void server::stop_services() {
  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
    w->acceptors.clear();
    w->handler.reset();
  }
  prefetch_->stop();  // joined like a worker (a no-op after a drain)
  // Disk work (commits) still running posts its completion to a worker's executor: let it
  // finish while the io_contexts still exist (stopped, they only queue it).
  cache_->finish_disk_work();
  // Frames destroyed below (fills, queued requests) release permits and leave fills: from
  // now on nothing may post to another worker, whose io_context may already be gone.
  gate_->close();
  prefetch_->destroy();  // its loop, and the prefetch fills' pumps in it
  workers_.clear();      // destroys each io_context, and with it every connection's frame
  usage_->flush();       // the last seconds of usage
  usage_.reset();
  cache_.reset();  // waits for disk work, flushes access recency
}

std::string server::upstream_metrics() const {
  const auto s = limiter_->snapshot();
  std::string out;
  admin::exposition x(out);
  x.family("storecache_upstream_fetches", "gauge",
           "Upstream requests in progress (limits.upstream_fetches caps them).");
  x.sample("storecache_upstream_fetches {}\n", s.active);
  x.family("storecache_upstream_fetches_max", "gauge",
           "The most upstream requests in progress at once since start.");
  x.sample("storecache_upstream_fetches_max {}\n", s.most_active);
  x.family("storecache_upstream_fetch_queue", "gauge",
           "Requests waiting for an upstream slot now.");
  x.sample("storecache_upstream_fetch_queue {}\n", s.waiting);
  x.family("storecache_upstream_fetches_queued_total", "counter",
           "Requests that had to wait for an upstream slot.");
  x.sample("storecache_upstream_fetches_queued_total {}\n", s.queued);
  x.family("storecache_upstream_fetches_refused_total", "counter",
           "Requests answered 503 for want of an upstream slot: the queue was full, or no slot "
           "came within timeouts.upstream_queue.");
  x.sample(
      "storecache_upstream_fetches_refused_total{{reason=\"queue_full\"}} {}\n"
      "storecache_upstream_fetches_refused_total{{reason=\"timeout\"}} {}\n",
      s.queue_full, s.timed_out);
  return out;
}

// Failures of storecache's own bookkeeping: nothing a request sees, but lost data ops must know of.
std::string server::own_failure_metrics() const {
  std::string out;
  admin::exposition x(out);
  x.family("storecache_access_log_write_errors_total", "counter",
           "Access-log lines that could not be written to the log file (disk full, I/O error); "
           "requests are not affected.");
  x.sample("storecache_access_log_write_errors_total {}\n", access_->write_errors());
  x.family("storecache_usage_history_errors_total", "counter",
           "Writes of usage counts to the history that failed; those counts are missing from the "
           "status page and the report.");
  x.sample("storecache_usage_history_errors_total {}\n", usage_->errors());
  x.family("storecache_config_reloads_total", "counter",
           "Reloads asked for (SIGHUP), by outcome: applied, or failed (the running "
           "configuration kept; the log says why).");
  x.sample(
      "storecache_config_reloads_total{{outcome=\"applied\"}} {}\n"
      "storecache_config_reloads_total{{outcome=\"failed\"}} {}\n",
      reloads_applied_.load(), reloads_failed_.load());
  x.family("storecache_config_last_reload_successful", "gauge",
           "0 while the last reload failed and the config file differs from what runs.");
  x.sample("storecache_config_last_reload_successful {}\n", last_reload_failed_.load() ? 0 : 1);
  return out;
}

std::string server::status_page() {
  usage_->flush();  // the page shows what was served up to now
  auto day = usage_->last_hours(24);
  auto week = usage_->last_hours(7 * 24, 15);
  if (!day || !week) {
    const auto& ec = day ? week.error() : day.error();
    log::warn("status page: reading the usage history failed: {}", ec.message());
    return "<!DOCTYPE html><title>storecache</title><p>The usage history cannot be read: " +
           usage::html_escape(ec.message()) + "</p>";
  }
  const auto sc = cache_->store().counters();
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "this server");
  const std::time_t now = std::time(nullptr);
  std::vector<usage::prefetch_row> prefetch;
  for (const auto& r : prefetch_->snapshot())
    prefetch.push_back({.state = prefetch::usage_state(r),
                        .listing_ok = r.listing == prefetch::listing_problem::none,
                        .running = r.running});
  return usage::render_status_page({.day = *day,
                                    .week = *week,
                                    .cache_bytes = sc.bytes,
                                    .cache_max_bytes = rt_->cfg->cache.max_size,
                                    .cache_objects = sc.objects,
                                    .now_unix = now,
                                    .utc_offset_seconds = usage::local_utc_offset(now),
                                    .host_name = host,
                                    .version = account::build_version,
                                    .refresh_seconds = 30,
                                    .prefetch = std::move(prefetch)});
}

void server::reload_failed() {
  reloads_failed_.fetch_add(1, std::memory_order_relaxed);
  last_reload_failed_.store(true, std::memory_order_relaxed);
  sd_notify(0, "READY=1");
}

void server::reload() {
  sd_notify(0, "RELOADING=1");
  log::notice("reloading {}", config_file_.string());
  auto loaded = config::load(config_file_);
  if (!loaded.ok()) {
    for (const auto& d : loaded.errors)
      log::error("reload: {}", d.to_string());
    log::error("reload failed: keeping the running configuration");
    reload_failed();
    return;
  }
  std::shared_ptr<const runtime> next;
  try {
    next = runtime::build(loaded.cfg);
  } catch (const std::exception& e) {
    log::error("reload failed: {}; keeping the running configuration", e.what());
    reload_failed();
    return;
  }
  const auto& old_cfg = *rt_->cfg;
  std::vector<std::string> before, after;
  for (const auto& a : old_cfg.server.listen)
    before.push_back(a.text());
  for (const auto& a : next->cfg->server.listen)
    after.push_back(a.text());
  if (before != after || old_cfg.admin.listen.text() != next->cfg->admin.listen.text() ||
      old_cfg.server.workers != next->cfg->server.workers)
    log::warn("reload: listen addresses and workers change only on restart");
  rt_ = next;
  limiter_->set_limits(upstream::fetch_limiter::from_config(next->cfg->limit));
  wan_->set(*next->cfg);
  prefetch_->reconfigure(next->cfg, next->upstream_tls);
  ledger_->set_limits(access::client_ledger::from_config(next->cfg->limit));
  access_->reconfigure(next->cfg->log);
  log::apply_config_level(static_cast<int>(next->cfg->log.level));
  for (auto& w : workers_)
    asio::post(w->io, [&w = *w, next] { w.rt = next; });
  log::notice("reloaded: {} site(s); open connections keep their settings until they close",
              next->cfg->sites.size());
  reloads_applied_.fetch_add(1, std::memory_order_relaxed);
  last_reload_failed_.store(false, std::memory_order_relaxed);
  sd_notify(0, "READY=1");
}

}  // namespace storecache::proxy
