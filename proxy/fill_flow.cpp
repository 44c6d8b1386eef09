// The handler's side of a fill (the upstream side is upstream/fill_job): what the request
// holds of the WAN and how the fetch reports go with it, and background refreshes.
#include <boost/asio/use_awaitable.hpp>

#include "account/upstream_report.hpp"
#include "proxy/proxy_handler.hpp"
#include "proxy/tls.hpp"
#include "upstream/cache_service.hpp"

namespace storecache::proxy {

asio::awaitable<proxy_handler::lead_result> proxy_handler::lead(
    std::shared_ptr<fill> f, const http::request_head& req, std::string path,
    std::shared_ptr<const config::site> site, std::shared_ptr<upstream::upstream_pool> pool,
    account::site_counters& counters, std::optional<cache::object_meta> stored,
    cache::site_policy policy, upstream::orphan_policy orphans, fetch_ticket ticket,
    http::exchange* interim_to) {
  auto report = std::make_shared<account::upstream_report>(counters, usage_, site->name(), path);
  // Built before the co_await, not as a temporary inside it: GCC 12 mishandles aggregate
  // temporaries in a co_await expression (the pump got a freed path string).
  upstream::fill_request request{.f = std::move(f),
                                 .path = std::move(path),
                                 .site = std::move(site),
                                 .pool = std::move(pool),
                                 .report = std::move(report),
                                 .stored = std::move(stored),
                                 .policy = policy,
                                 .orphans = orphans,
                                 .hold = std::make_shared<fetch_ticket>(std::move(ticket)),
                                 .interim_to = interim_to};
  co_return co_await upstream::lead_fill(*cache_, ex_, req, std::move(request));
}

asio::awaitable<void> proxy_handler::background_fill(
    http::request_head req, std::string path, std::shared_ptr<const runtime> rt,
    std::shared_ptr<const config::site> site, std::string primary,
    std::optional<cache::object_meta> stored, cache::site_policy policy, account::metrics& stats) {
  auto joined = cache_->inflight().join_or_create(primary, req.client_address, true);
  if (!joined.created) co_return;
  // A refresh nobody waits for: only with a free upstream slot, never queued; the next
  // request for the object tries again.
  fetch_ticket ticket{.permit = limiter_.try_acquire(site->name()),
                      .connection_miss = {},
                      .client_miss = {},
                      .queue_timeout = rt->cfg->timeout.upstream_queue};
  if (!ticket.permit) {
    joined.f->finish(fill::state::abandoned);
    cache_->inflight().remove(joined.f);
    co_return;
  }
  auto pool = pool_for(rt, *site);
  auto& counters = stats.site(site->name());
  auto r =
      co_await lead(joined.f, req, path, std::move(site), pool, counters, std::move(stored), policy,
                    upstream::orphan_policy::from_config(rt->cfg->cache), std::move(ticket));
  (void)r;
}

}  // namespace storecache::proxy
