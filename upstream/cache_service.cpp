#include "upstream/cache_service.hpp"

#include "admin/exposition.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <stdexcept>

#include "log/log.hpp"

namespace storecache::upstream {

namespace {

// What a waiting commit holds: it keeps its fill alive, with up to 256 KiB of body prefix
// (fill.cpp, prefix_limit), a small body's inline copy in the insert handle (<= 16 KiB), the
// head, the pump coroutine's frame (~6 KiB with heaptrack).
constexpr std::uint64_t fill_prefix_limit = 256 * 1024;
constexpr std::uint64_t per_commit_overhead = 8 * 1024;

std::uint64_t held_by_commit(std::uint64_t body_size, std::uint64_t inline_max) {
  return std::min(body_size, fill_prefix_limit) + (body_size <= inline_max ? body_size : 0) +
         per_commit_overhead;
}

cache::store open_store(const config::cache_settings& s) {
  cache::store_options opts;
  opts.dir = s.dir;
  opts.max_size = s.max_size;
  opts.max_object_size = s.max_object_size;
  auto st = cache::store::open(opts);
  if (!st)
    throw std::runtime_error("cannot open the cache in " + s.dir.string() + ": " +
                             st.error().message());
  const auto& r = st->recovery();
  log::notice(
      "cache {}: {} object(s), {} bytes; recovery removed {} temporary and {} orphan "
      "file(s), dropped {} missing, {} wrong-size and {} bad entr(ies)",
      s.dir.string(), r.objects, r.bytes, r.temp_files_removed, r.orphan_files_removed,
      r.missing_bodies, r.wrong_size_bodies, r.bad_entries);
  return std::move(*st);
}

}  // namespace

cache_service::cache_service(const config::cache_settings& settings,
                             std::shared_ptr<const wake_gate> gate, commit_limits limits)
    : store_(open_store(settings)),
      inflight_(std::move(gate)),
      committer_(store_, limits, [](bool full, const commit_backlog& b) {
        if (full)
          log::warn(
              "cache: {} commits ({} bytes) waiting: passing new misses through until the "
              "disk catches up",
              b.objects, b.bytes);
        else
          log::notice("cache: commits caught up ({} waiting): storing again", b.objects);
      }) {}

cache_service::~cache_service() {
  finish_disk_work();
  store_.flush_access();
}

void cache_service::finish_disk_work() {
  disk_.join();
  committer_.stop();
}

asio::awaitable<cache::error_code> cache_service::commit(cache::insert_handle insert,
                                                         cache::stored_head head) {
  const std::uint64_t holds = held_by_commit(insert.size(), store_.options().inline_max);
  cache::pending_commit item{std::move(insert), std::move(head), {}};
  auto token = asio::as_tuple(asio::use_awaitable);
  auto [ec] = co_await asio::async_initiate<decltype(token), void(cache::error_code)>(
      [this, &item, holds](auto handler) {
        // The waiting coroutine's completion and its executor, holding outstanding work so
        // that its io_context does not run out of work while the commit is pending. Resumed
        // by post on that executor: never on the committer thread, never inside this call.
        using handler_t = asio::any_completion_handler<void(cache::error_code)>;
        struct waiter {
          handler_t done;
          asio::any_io_executor ex;
        };
        asio::any_io_executor ex = asio::prefer(asio::get_associated_executor(handler),
                                                asio::execution::outstanding_work.tracked);
        auto w = std::make_shared<waiter>(waiter{handler_t(std::move(handler)), std::move(ex)});
        committer_.enqueue(std::move(item), holds, [w](cache::error_code ec) {
          auto ex = std::move(w->ex);
          asio::post(ex, [w, ec]() mutable { std::move(w->done)(ec); });
        });
      },
      token);
  co_return ec;
}

commit_backlog cache_service::backlog() const {
  return committer_.snapshot();
}

void cache_service::storing_failed(const cache::error_code& ec) {
  counters_.store_failures.fetch_add(1, std::memory_order_relaxed);
  constexpr auto first = std::chrono::seconds(1);
  constexpr auto most = std::chrono::seconds(64);
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(suspend_mu_);
  const bool already = suspended_.load(std::memory_order_relaxed);
  backoff_ = already ? std::min(backoff_ * 2, std::chrono::seconds(most)) : first;
  paused_until_.store((now + backoff_).time_since_epoch().count(), std::memory_order_relaxed);
  if (already) {
    log::debug("cache: storing failed again: {}; next try in {} s", ec.message(), backoff_.count());
    return;
  }
  suspended_.store(true, std::memory_order_relaxed);
  suspended_since_ = now;
  log::error(
      "cache: storing suspended: {} ({}); hits are served, misses pass through unstored; "
      "trying again from time to time (at most every {} s)",
      ec.message(), cache::is_no_space(ec) ? "the cache disk or the index is full" : "I/O error",
      most.count());
}

void cache_service::storing_succeeded() {
  if (!suspended_.load(std::memory_order_relaxed)) return;
  std::lock_guard lock(suspend_mu_);
  if (!suspended_.load(std::memory_order_relaxed)) return;
  suspended_.store(false, std::memory_order_relaxed);
  backoff_ = std::chrono::seconds(0);
  paused_until_.store(0, std::memory_order_relaxed);
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(
      std::chrono::steady_clock::now() - suspended_since_);
  log::notice("cache: storing again (suspended for {} s)", secs.count());
}

bool cache_service::storing_paused() const {
  return committer_.full() || std::chrono::steady_clock::now().time_since_epoch().count() <
                                  paused_until_.load(std::memory_order_relaxed);
}

std::string cache_service::render_metrics() {
  std::string out;
  admin::exposition x(out);
  const auto c = store_.counters();
  x.family("storecache_cache_objects", "gauge", "Objects stored in the cache.");
  x.sample("storecache_cache_objects {}\n", c.objects);
  x.family("storecache_cache_bytes", "gauge",
           "Bytes the cache holds (bodies and index entries), kept under cache.max_size.");
  x.sample("storecache_cache_bytes {}\n", c.bytes);
  x.family("storecache_cache_evictions_total", "counter",
           "Objects evicted to stay under cache.max_size.");
  x.sample("storecache_cache_evictions_total {}\n", c.evictions);
  x.family("storecache_cache_pinned_keys", "gauge",
           "Cache keys prefetch sources with pin = true keep from eviction (stored or not).");
  x.sample("storecache_cache_pinned_keys {}\n", c.pinned_keys);
  x.family("storecache_cache_eviction_pinned_skips_total", "counter",
           "Pinned objects eviction passed over (each is then moved to the young end).");
  x.sample("storecache_cache_eviction_pinned_skips_total {}\n", c.pin_skips);
  x.family("storecache_cache_inserts_total", "counter", "Objects written to the cache.");
  x.sample("storecache_cache_inserts_total {}\n", c.inserts);
  x.family("storecache_cache_store_errors_total", "counter",
           "Objects that could not be stored (I/O errors, too big, damaged bodies dropped).");
  x.sample(
      "storecache_cache_store_errors_total{{kind=\"io\"}} {}\n"
      "storecache_cache_store_errors_total{{kind=\"no_space\"}} {}\n"
      "storecache_cache_store_errors_total{{kind=\"too_big\"}} {}\n"
      "storecache_cache_store_errors_total{{kind=\"corrupt\"}} {}\n",
      c.insert_failures, c.no_space, c.too_big, c.corrupt_drops);
  x.family("storecache_cache_storing_suspended", "gauge",
           "1 while storing is suspended after a store error (disk or index full, I/O error): "
           "hits are served, misses pass through unstored, until a store succeeds again.");
  x.sample("storecache_cache_storing_suspended {}\n", storing_suspended() ? 1 : 0);
  x.family("storecache_cache_unstored_fills_total", "counter",
           "Fills that could not be stored mid-body (disk full): their clients got the rest of "
           "the body from the upstream through memory.");
  x.sample("storecache_cache_unstored_fills_total {}\n", counters_.unstored_fills.load());
  x.family("storecache_cache_unstored_clients_cut_total", "counter",
           "Clients of an unstored fill whose response ended in error because they read nothing "
           "for timeouts.upstream_idle while the fill's memory window was full.");
  x.sample("storecache_cache_unstored_clients_cut_total {}\n",
           counters_.unstored_readers_cut.load());
  x.family("storecache_collapsed_requests_total", "counter",
           "Requests that joined another request's upstream fetch instead of making their own.");
  x.sample("storecache_collapsed_requests_total {}\n", counters_.collapsed.load());
  x.family("storecache_revalidations_total", "counter",
           "Conditional requests to the origin for stale objects, by outcome.");
  x.sample(
      "storecache_revalidations_total{{outcome=\"not_modified\"}} {}\n"
      "storecache_revalidations_total{{outcome=\"modified\"}} {}\n"
      "storecache_revalidations_total{{outcome=\"failed\"}} {}\n",
      counters_.revalidated_not_modified.load(), counters_.revalidated_modified.load(),
      counters_.revalidation_failed.load());
  const auto b = backlog();
  x.family("storecache_cache_commit_backlog_objects", "gauge",
           "Fetched objects waiting for their commit to the index.");
  x.sample("storecache_cache_commit_backlog_objects {}\n", b.objects);
  x.family("storecache_cache_commit_backlog_bytes", "gauge",
           "Body bytes of the objects waiting for their commit.");
  x.sample("storecache_cache_commit_backlog_bytes {}\n", b.bytes);
  x.family("storecache_cache_commit_batches_total", "counter",
           "Index transactions that committed fetched objects (each commits all that wait).");
  x.sample("storecache_cache_commit_batches_total {}\n", committer_.batches());
  x.family("storecache_cache_commit_backlog_full", "gauge",
           "1 while the commit backlog is over its bound and new misses pass through unstored.");
  x.sample("storecache_cache_commit_backlog_full {}\n", committer_.full() ? 1 : 0);
  x.family("storecache_cache_fills_in_flight", "gauge",
           "Upstream fetches that clients can join (request collapsing), until committed.");
  x.sample("storecache_cache_fills_in_flight {}\n", inflight_.size());
  x.family("storecache_cache_access_pending", "gauge",
           "Hit recency entries kept in memory until the next flush to the index.");
  x.sample("storecache_cache_access_pending {}\n", c.access_pending);
  x.family("storecache_background_fills_total", "counter",
           "Fetches started without a waiting client (stale-while-revalidate, cold ranges).");
  x.sample("storecache_background_fills_total {}\n", counters_.background_fills.load());
  x.family("storecache_orphan_fills_total", "counter",
           "Fills whose every client went away, by what happened: stop (paused for "
           "cache.orphan_grace, then stopped: nothing more fetched, nothing stored), resumed (a "
           "client came back during the pause), or finished because the object was small, mostly "
           "there, wanted by several devices, or a background refresh.");
  for (std::size_t v = 0; v < counters_.orphan_fills.size(); ++v)
    x.sample("storecache_orphan_fills_total{{outcome=\"{}\"}} {}\n",
             v == 5 ? std::string_view("resumed")
                    : upstream::to_string(static_cast<upstream::orphan_verdict>(v)),
             counters_.orphan_fills[v].load());
  x.family("storecache_orphan_fills_paused", "gauge",
           "Fills paused now because no client reads them (they stop after cache.orphan_grace).");
  x.sample("storecache_orphan_fills_paused {}\n", counters_.orphan_fills_paused.load());
  return out;
}

}  // namespace storecache::upstream
