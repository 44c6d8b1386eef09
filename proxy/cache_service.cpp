#include "proxy/cache_service.hpp"

#include <fmt/format.h>

#include <stdexcept>

#include "proxy/log.hpp"

namespace storecache::proxy {

namespace {

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
                             std::shared_ptr<const upstream::wake_gate> gate)
    : store_(open_store(settings)), inflight_(std::move(gate)) {}

cache_service::~cache_service() {
  disk_.join();
  store_.flush_access();
}

void cache_service::storing_failed() {
  counters_.store_failures.fetch_add(1, std::memory_order_relaxed);
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  paused_until_.store(until.time_since_epoch().count(), std::memory_order_relaxed);
  log::error("cache: storing failed (disk full or I/O error?): passing requests through for 30 s");
}

bool cache_service::storing_paused() const {
  return std::chrono::steady_clock::now().time_since_epoch().count() <
         paused_until_.load(std::memory_order_relaxed);
}

std::string cache_service::render_metrics() const {
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
  family("storecache_fills_in_flight", "gauge",
         "Upstream fetches into the cache in progress (the in-flight table).");
  fmt::format_to(std::back_inserter(out), "storecache_fills_in_flight {}\n", inflight_.size());
  return out;
}

}  // namespace storecache::proxy
