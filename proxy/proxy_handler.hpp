// The request handler every exchange goes through, whatever its protocol:
//   route (Host/:authority -> site; 421 otherwise) -> refuse what a reverse proxy must not do
//   (CONNECT, absolute-form for foreign hosts) -> GET/HEAD of a caching site: the cache path
//   (cache_flow.cpp); anything else: forward upstream, streaming both bodies, and invalidate
//   what an unsafe method changed -> account (access log line, counters).
// One per worker thread; it owns that thread's upstream connection pools.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "access/authorization_cache.hpp"
#include "access/client_ledger.hpp"
#include "access/denial.hpp"
#include "access/signed_url.hpp"
#include "account/metrics.hpp"
#include "cache/cache_status.hpp"
#include "cache/policy.hpp"
#include "cache/store.hpp"
#include "proxy/local_answer.hpp"
#include "proxy/request_handler.hpp"
#include "upstream/client.hpp"
#include "upstream/counted_slot.hpp"
#include "upstream/fetch_limiter.hpp"
#include "upstream/fill.hpp"
#include "upstream/fill_job.hpp"
#include "upstream/orphan_policy.hpp"
#include "upstream/wan_budget.hpp"
#include "usage/recorder.hpp"

namespace storecache::upstream {
class cache_service;
}
namespace storecache::account {
class observed_exchange;
}

namespace storecache::proxy {

using upstream::fill;
using upstream::status_for;
using upstream::to_string;
using upstream::upstream_error;

struct runtime;

class proxy_handler final : public request_handler,
                            public std::enable_shared_from_this<proxy_handler> {
 public:
  // cache may be null: every site is then pass-through. usage may be null: no history.
  // The limiter bounds upstream requests over all workers; the server outlives its workers
  // with all three.
  proxy_handler(asio::any_io_executor ex, upstream::cache_service* cache, usage::recorder* usage,
                upstream::fetch_limiter& limiter, upstream::wan_budget& budget,
                access::authorization_cache& authorizations)
      : ex_(std::move(ex)),
        cache_(cache),
        usage_(usage),
        limiter_(limiter),
        budget_(budget),
        authorizations_(authorizations) {}
  asio::awaitable<void> handle(http::exchange& ex, connection_context& ctx) override;
  asio::awaitable<void> refuse(http::exchange& ex, connection_context& ctx, access::refusal why,
                               std::string detail) override;

  // What happened to one request, for the access log and the counters.
  struct outcome {
    unsigned status = 0;
    std::uint64_t bytes = 0;
    account::cache_outcome cache = account::cache_outcome::local;
    bool bytes_from_cache = false;
    unsigned upstream_status = 0;
    std::chrono::steady_clock::duration upstream_time{};
    std::string why;  // for local answers and failures: the reason, logged
    // Refused for an access reason (why says "denied: ..."): counted in the usage history.
    std::optional<access::denial> denied;
    // Refused on protocol grounds or limits (400, 408, 413, 414, 431, 501, 503 overloaded).
    std::optional<access::refusal> refused;
  };

 private:
  // Without the cache: one upstream request, both bodies streamed. Keeps Range and the
  // client's conditionals (the client's own cache talks to the origin).
  // `why` becomes the Cache-Status fwd parameter when the site caches (RFC 9211).
  asio::awaitable<void> forward(http::exchange& ex, connection_context& ctx,
                                const config::site& site, std::string_view path, outcome& out,
                                cache::forward_reason why = cache::forward_reason::method);

  // The accounting step of every answer (DESIGN step 7): counters and histograms, the usage
  // history, one access-log line.
  void account(connection_context& ctx, const account::observed_exchange& obs,
               const config::site* site, std::string_view path, const outcome& out,
               std::chrono::steady_clock::time_point start);

  // Sends a response head for an upstream response and streams its body after it; aborts the
  // client's response if the upstream fails mid-body.
  asio::awaitable<void> relay(http::exchange& ex, upstream::upstream_call& call,
                              const http::response_head& rh, const config::site& site,
                              std::string_view path, account::site_counters& counters,
                              outcome& out);
  // One upstream exchange for the usage history: its body bytes (0 for none or a failure).
  void note_upstream(const config::site& site, std::string_view path,
                     const header_list& response_headers, std::uint64_t bytes);

  // The bytes of one upstream body as they arrive: into the site's counter at once, and into
  // the usage history (per asset) when the body ends, however it ends. It owns what it records
  // and refers only to objects the server outlives its workers with (the recorder, the
  // counters): a detached fill's frame may be destroyed after this handler and the config,
  // when the daemon stops.
  class upstream_tally {
   public:
    upstream_tally(usage::recorder* usage, const config::site& site, std::string_view path,
                   const header_list& response_headers, account::site_counters& counters);
    upstream_tally(const upstream_tally&) = delete;
    upstream_tally& operator=(const upstream_tally&) = delete;
    ~upstream_tally();

    void add(std::size_t n) {
      bytes_ += n;
      counters_.upstream_bytes.fetch_add(n, std::memory_order_relaxed);
    }

   private:
    usage::recorder* usage_;
    std::string site_;
    std::string path_;
    usage::content_class content_;
    account::site_counters& counters_;
    std::uint64_t bytes_ = 0;
  };

  // What lets one request use the WAN: a slot of the fetch limiter and, for a cold miss, one
  // of its client connection's (and address's) misses. Held until the upstream body ends.
  struct fetch_ticket {
    upstream::fetch_limiter::permit permit;
    upstream::counted_slot connection_miss;
    access::client_ledger::miss_slot client_miss;
    // How long to wait for a slot again (timeouts.upstream_queue): a paused fill resuming.
    std::chrono::milliseconds queue_timeout{0};
  };
  enum class fetch_kind { pass, cold_miss, refresh };
  // May this request start an upstream fetch now? Waits for a limiter slot (bounded); on
  // refusal answers 503 with Retry-After (or nothing, if the client is gone) and returns
  // nothing.
  asio::awaitable<std::optional<fetch_ticket>> admit_fetch(http::exchange& ex,
                                                           connection_context& ctx,
                                                           const config::site& site,
                                                           fetch_kind kind, outcome& out);

  // cache_flow.cpp
  asio::awaitable<void> cached(http::exchange& ex, connection_context& ctx,
                               const config::site& site, std::string_view path, outcome& out);
  // What cached() found and decided, for the fill path after it.
  struct cache_lookup {
    std::string primary;
    cache::site_policy policy;
    std::optional<cache::lookup_result> stored;
    bool authorize = false;   // every use must be authorized by the upstream first
    bool authorized = false;  // ... and this request was
  };
  asio::awaitable<void> join_or_lead(http::exchange& ex, connection_context& ctx,
                                     const config::site& site, std::string_view path,
                                     cache_lookup& c, outcome& out);
  asio::awaitable<void> lead_and_serve(http::exchange& ex, connection_context& ctx,
                                       const config::site& site, std::string_view path,
                                       cache_lookup& c, upstream::inflight_table::joined& joined,
                                       outcome& out);
  asio::awaitable<void> serve_denied(http::exchange& ex, connection_context& ctx,
                                     const config::site& site, std::string_view path, outcome& out);
  using lead_result = upstream::lead_result;

  // fill_flow.cpp: leads the fill through upstream::lead_fill, which owns everything it needs
  // from here on; the ticket and a report on these counters go with it.
  asio::awaitable<lead_result> lead(std::shared_ptr<upstream::fill> f,
                                    const http::request_head& req, std::string path,
                                    std::shared_ptr<const config::site> site,
                                    std::shared_ptr<upstream::upstream_pool> pool,
                                    account::site_counters& counters,
                                    std::optional<cache::object_meta> stored,
                                    cache::site_policy policy, upstream::orphan_policy orphans,
                                    fetch_ticket ticket, http::exchange* interim_to = nullptr);
  asio::awaitable<void> background_fill(http::request_head req, std::string path,
                                        std::shared_ptr<const runtime> rt,
                                        std::shared_ptr<const config::site> site,
                                        std::string primary,
                                        std::optional<cache::object_meta> stored,
                                        cache::site_policy policy, account::metrics& stats);
  // Why a stored response answers: its Cache-Status (RFC 9211) and outcome follow from it.
  enum class stored_answer { hit, stale, swr, revalidated, stale_if_error };
  asio::awaitable<void> serve_stored(http::exchange& ex, cache::lookup_result& found,
                                     const cache::reuse_decision& d, outcome& out,
                                     stored_answer kind);
  asio::awaitable<void> serve_fill(http::exchange& ex, connection_context& ctx,
                                   const config::site& site, std::string_view path,
                                   std::shared_ptr<upstream::fill> f,
                                   upstream::fill::reader& reader, bool owner, bool revalidating,
                                   outcome& out, header_list own_headers = {});
  asio::awaitable<void> send_fill_body(http::exchange& ex, upstream::fill& f,
                                       upstream::fill::reader& reader, std::uint64_t first,
                                       std::optional<std::uint64_t> end,
                                       std::chrono::milliseconds upstream_idle, outcome& out);
  // authorize_flow.cpp: asks the upstream, with the device's own URL and credentials (a HEAD,
  // headers only), whether this device may have the stored copy. `stored` adds its validators.
  // answered: refused by admit_fetch or failed (502/504 sent); the caller only returns.
  enum class authorization { allowed, denied, answered };
  asio::awaitable<authorization> authorize_with_upstream(
      http::exchange& ex, connection_context& ctx, const config::site& site, std::string_view path,
      const cache::object_meta* stored, outcome& out);
  asio::awaitable<void> invalidate(const config::site& site, std::string_view method,
                                   unsigned status, std::string_view path,
                                   const header_list& response_headers);

  std::shared_ptr<upstream::upstream_pool> pool_for(const std::shared_ptr<const runtime>& rt,
                                                    const config::site& site);

  asio::any_io_executor ex_;
  upstream::cache_service* cache_;
  usage::recorder* usage_;
  upstream::fetch_limiter& limiter_;
  upstream::wan_budget& budget_;  // every upstream body read of this worker's pools
  access::authorization_cache& authorizations_;
  std::shared_ptr<const runtime> pools_runtime_;  // pools below belong to this runtime
  std::map<std::string, std::shared_ptr<upstream::upstream_pool>, std::less<>> pools_;
};

}  // namespace storecache::proxy
