#include "proxy/cache_service.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <stdexcept>

#include "proxy/log.hpp"

namespace storecache::proxy {

namespace {

// A transaction of this many small objects takes a few milliseconds; larger ones would only
// make the other index writers (head refreshes, recency flushes) wait longer.
constexpr std::size_t max_batch_objects = 1024;

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
                             std::shared_ptr<const upstream::wake_gate> gate, commit_limits limits)
    : store_(open_store(settings)),
      inflight_(std::move(gate)),
      limits_(limits),
      committer_([this] { run_committer(); }) {}

cache_service::~cache_service() {
  finish_disk_work();
  store_.flush_access();
}

void cache_service::finish_disk_work() {
  disk_.join();
  {
    std::lock_guard lock(commit_mu_);
    committer_stop_ = true;
  }
  commit_cv_.notify_all();
  if (committer_.joinable()) committer_.join();
}

asio::awaitable<cache::error_code> cache_service::commit(cache::insert_handle insert,
                                                         cache::stored_head head) {
  cache::pending_commit item{std::move(insert), std::move(head), {}};
  auto token = asio::as_tuple(asio::use_awaitable);
  auto [ec] = co_await asio::async_initiate<decltype(token), void(cache::error_code)>(
      [this, &item](auto handler) {
        asio::any_io_executor ex = asio::prefer(asio::get_associated_executor(handler),
                                                asio::execution::outstanding_work.tracked);
        enqueue(std::move(item), {commit_handler(std::move(handler)), std::move(ex)});
      },
      token);
  co_return ec;
}

// Resumes the waiting coroutine on its own executor: never on the committer thread, and never
// inside the call that queued it.
void cache_service::complete(waiter w, cache::error_code ec) {
  auto ex = std::move(w.ex);
  asio::post(ex, [done = std::move(w.done), ec]() mutable { std::move(done)(ec); });
}

void cache_service::enqueue(cache::pending_commit item, waiter w) {
  const std::uint64_t size = item.insert.size();
  std::unique_lock lock(commit_mu_);
  if (committer_stop_) {  // stopping: nobody else will commit it
    lock.unlock();
    store_.commit_batch({&item, 1});
    complete(std::move(w), item.result);
    return;
  }
  ++backlog_.objects;
  backlog_.bytes += size;
  backlog_memory_ += held_by_commit(size, store_.options().inline_max);
  if (backlog_.objects >= limits_.objects || backlog_memory_ >= limits_.memory) {
    if (!backlog_full_.exchange(true))
      log::warn(
          "cache: {} commits ({} bytes) waiting: passing new misses through until the "
          "disk catches up",
          backlog_.objects, backlog_.bytes);
  }
  commit_queue_.push_back({std::move(item), std::move(w)});
  lock.unlock();
  commit_cv_.notify_one();
}

void cache_service::run_committer() {
  std::vector<cache::pending_commit> items;
  std::vector<waiter> waiters;
  for (;;) {
    {
      std::unique_lock lock(commit_mu_);
      commit_cv_.wait(lock, [this] { return committer_stop_ || !commit_queue_.empty(); });
      if (commit_queue_.empty()) return;  // stopping, and everything is committed
      while (!commit_queue_.empty() && items.size() < max_batch_objects) {
        items.push_back(std::move(commit_queue_.front().item));
        waiters.push_back(std::move(commit_queue_.front().w));
        commit_queue_.pop_front();
      }
    }
    store_.commit_batch(items);
    commit_batches_.fetch_add(1, std::memory_order_relaxed);
    std::uint64_t bytes = 0;
    std::uint64_t memory = 0;
    for (const auto& i : items) {
      bytes += i.insert.size();
      memory += held_by_commit(i.insert.size(), store_.options().inline_max);
    }
    {
      std::lock_guard lock(commit_mu_);
      backlog_.objects -= items.size();
      backlog_.bytes -= bytes;
      backlog_memory_ -= memory;
      if (backlog_full_ && backlog_.objects <= limits_.objects / 2 &&
          backlog_memory_ <= limits_.memory / 2) {
        backlog_full_ = false;
        log::notice("cache: commits caught up ({} waiting): storing again", backlog_.objects);
      }
    }
    for (std::size_t i = 0; i < items.size(); ++i)
      complete(std::move(waiters[i]), items[i].result);
    items.clear();
    waiters.clear();
  }
}

commit_backlog cache_service::backlog() const {
  std::lock_guard lock(commit_mu_);
  return backlog_;
}

void cache_service::storing_failed() {
  counters_.store_failures.fetch_add(1, std::memory_order_relaxed);
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  paused_until_.store(until.time_since_epoch().count(), std::memory_order_relaxed);
  log::error("cache: storing failed (disk full or I/O error?): passing requests through for 30 s");
}

bool cache_service::storing_paused() const {
  return backlog_full_.load(std::memory_order_relaxed) ||
         std::chrono::steady_clock::now().time_since_epoch().count() <
             paused_until_.load(std::memory_order_relaxed);
}

std::string cache_service::render_metrics() {
  std::string out;
  auto family = [&out](std::string_view name, std::string_view type, std::string_view help) {
    fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  const auto c = store_.counters();
  family("storecache_cache_objects", "gauge", "Objects stored in the cache.");
  fmt::format_to(std::back_inserter(out), "storecache_cache_objects {}\n", c.objects);
  family("storecache_cache_bytes", "gauge",
         "Bytes the cache holds (bodies and index entries), kept under cache.max_size.");
  fmt::format_to(std::back_inserter(out), "storecache_cache_bytes {}\n", c.bytes);
  family("storecache_cache_evictions_total", "counter",
         "Objects evicted to stay under cache.max_size.");
  fmt::format_to(std::back_inserter(out), "storecache_cache_evictions_total {}\n", c.evictions);
  family("storecache_cache_inserts_total", "counter", "Objects written to the cache.");
  fmt::format_to(std::back_inserter(out), "storecache_cache_inserts_total {}\n", c.inserts);
  family("storecache_cache_store_errors_total", "counter",
         "Objects that could not be stored (I/O errors, too big, damaged bodies dropped).");
  fmt::format_to(std::back_inserter(out),
                 "storecache_cache_store_errors_total{{kind=\"io\"}} {}\n"
                 "storecache_cache_store_errors_total{{kind=\"too_big\"}} {}\n"
                 "storecache_cache_store_errors_total{{kind=\"corrupt\"}} {}\n",
                 c.insert_failures, c.too_big, c.corrupt_drops);
  family("storecache_collapsed_requests_total", "counter",
         "Requests that joined another request's upstream fetch instead of making their own.");
  fmt::format_to(std::back_inserter(out), "storecache_collapsed_requests_total {}\n",
                 counters_.collapsed.load());
  family("storecache_revalidations_total", "counter",
         "Conditional requests to the origin for stale objects, by outcome.");
  fmt::format_to(std::back_inserter(out),
                 "storecache_revalidations_total{{outcome=\"not_modified\"}} {}\n"
                 "storecache_revalidations_total{{outcome=\"modified\"}} {}\n"
                 "storecache_revalidations_total{{outcome=\"failed\"}} {}\n",
                 counters_.revalidated_not_modified.load(), counters_.revalidated_modified.load(),
                 counters_.revalidation_failed.load());
  const auto b = backlog();
  family("storecache_cache_commit_backlog_objects", "gauge",
         "Fetched objects waiting for their commit to the index.");
  fmt::format_to(std::back_inserter(out), "storecache_cache_commit_backlog_objects {}\n",
                 b.objects);
  family("storecache_cache_commit_backlog_bytes", "gauge",
         "Body bytes of the objects waiting for their commit.");
  fmt::format_to(std::back_inserter(out), "storecache_cache_commit_backlog_bytes {}\n", b.bytes);
  family("storecache_cache_commit_batches_total", "counter",
         "Index transactions that committed fetched objects (each commits all that wait).");
  fmt::format_to(std::back_inserter(out), "storecache_cache_commit_batches_total {}\n",
                 commit_batches_.load());
  family("storecache_cache_commit_backlog_full", "gauge",
         "1 while the commit backlog is over its bound and new misses pass through unstored.");
  fmt::format_to(std::back_inserter(out), "storecache_cache_commit_backlog_full {}\n",
                 backlog_full_.load() ? 1 : 0);
  family("storecache_cache_fills_in_flight", "gauge",
         "Upstream fetches that clients can join (request collapsing), until committed.");
  fmt::format_to(std::back_inserter(out), "storecache_cache_fills_in_flight {}\n",
                 inflight_.size());
  family("storecache_cache_access_pending", "gauge",
         "Hit recency entries kept in memory until the next flush to the index.");
  fmt::format_to(std::back_inserter(out), "storecache_cache_access_pending {}\n", c.access_pending);
  family("storecache_background_fills_total", "counter",
         "Fetches started without a waiting client (stale-while-revalidate, cold ranges).");
  fmt::format_to(std::back_inserter(out), "storecache_background_fills_total {}\n",
                 counters_.background_fills.load());
  family("storecache_orphan_fills_total", "counter",
         "Fills whose every client went away, by what happened: stop (paused for "
         "cache.orphan_grace, then stopped: nothing more fetched, nothing stored), resumed (a "
         "client came back during the pause), or finished because the object was small, mostly "
         "there, wanted by several devices, or a background refresh.");
  for (std::size_t v = 0; v < counters_.orphan_fills.size(); ++v)
    fmt::format_to(std::back_inserter(out), "storecache_orphan_fills_total{{outcome=\"{}\"}} {}\n",
                   v == 5 ? std::string_view("resumed")
                          : upstream::to_string(static_cast<upstream::orphan_verdict>(v)),
                   counters_.orphan_fills[v].load());
  family("storecache_orphan_fills_paused", "gauge",
         "Fills paused now because no client reads them (they stop after cache.orphan_grace).");
  fmt::format_to(std::back_inserter(out), "storecache_orphan_fills_paused {}\n",
                 counters_.orphan_fills_paused.load());
  return out;
}

}  // namespace storecache::proxy
