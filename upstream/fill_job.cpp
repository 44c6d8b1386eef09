#include "upstream/fill_job.hpp"

#include <fmt/format.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <vector>

#include "cache/cache_control.hpp"
#include "cache/cache_key.hpp"
#include "log/log.hpp"
#include "upstream/request_head.hpp"

namespace storecache::upstream {

namespace asio = boost::asio;
using cache::header_list;

namespace {

using std::chrono::system_clock;
constexpr std::size_t chunk_size = 64 * 1024;

// Everything the pump needs, owned: it outlives the request that started it.
struct fill_job {
  cache_service* cache;  // the server destroys its workers (and this frame) before the cache
  std::shared_ptr<fill> f;
  std::unique_ptr<upstream_call> call;
  std::shared_ptr<upstream_pool> pool;  // outlives the call, which returns its connection to it
  std::shared_ptr<const config::site> site;
  std::string path;
  std::shared_ptr<fetch_report> report;
  cache::insert_handle insert;
  cache::stored_head head;
  std::shared_ptr<void> hold;
  orphan_policy orphans;
  // Unstored: how long the slowest client may read nothing before it is cut (upstream_idle).
  std::chrono::milliseconds stall;
};

// The body's bytes, reported as they arrive and once more when the body ends, however it ends.
class body_tally {
 public:
  body_tally(std::shared_ptr<fetch_report> report, header_list headers)
      : report_(std::move(report)), headers_(std::move(headers)) {}
  body_tally(const body_tally&) = delete;
  body_tally& operator=(const body_tally&) = delete;
  ~body_tally() { report_->exchange_done(headers_, bytes_); }
  void add(std::size_t n) {
    bytes_ += n;
    report_->body(n);
  }

 private:
  std::shared_ptr<fetch_report> report_;
  header_list headers_;
  std::uint64_t bytes_ = 0;
};

asio::awaitable<void> pump(fill_job job);

}  // namespace

asio::awaitable<lead_result> lead_fill(cache_service& svc, asio::any_io_executor ex,
                                       const http::request_head& req, fill_request r) {
  auto& f = r.f;
  auto& site = r.site;
  auto& path = r.path;
  auto& pool = r.pool;
  auto& stored = r.stored;
  const auto& policy = r.policy;
  auto& report = *r.report;
  lead_result res;
  header_list validators;
  if (stored) validators = cache::validation_headers(stored->head.headers);
  auto head = build_upstream_head(req, "GET", path, pool->host_header(), true, validators);
  auto call = std::make_unique<upstream_call>(*pool);
  call->forward_interim_to(r.interim_to);  // the leading device's 103s; never stored
  // Under the WAN budget a fill reads for devices while one reads it (its leader, or a device
  // that joined a prefetch or a background refresh), else in the background.
  call->classify(
      [f = r.f] { return f->readers() > 0 ? fetch_class::device : fetch_class::background; });
  const auto request_time = system_clock::now();
  res.err = co_await call->start(std::move(head.text), nullptr, false, false);
  const auto response_time = system_clock::now();
  if (res.err != upstream_error::none) {
    report.no_response(res.err);
    if (stored) svc.counters().revalidation_failed.fetch_add(1, std::memory_order_relaxed);
    log::warn("site={} upstream {} failed ({}): {}", site->name(), site->upstream,
              to_string(res.err), call->error_detail());
    f->finish(fill::state::failed, res.err);
    svc.inflight().remove(f);
    res.k = lead_result::failed;
    co_return res;
  }
  res.status = call->status();
  report.response(res.status);
  header_list headers = call->response_headers();

  if (stored && res.status == 304 && cache::not_modified_matches(stored->head.headers, headers)) {
    call->done();
    r.hold.reset();  // the upstream exchange is over
    report.exchange_done(headers, 0);
    cache::stored_head fresh = stored->head;
    cache::apply_not_modified(fresh.headers, headers, policy.use_cdn_cache_control,
                              policy.authorized_sharing);
    fresh.request_time = request_time;
    fresh.response_time = response_time;
    // An index write: on the disk pool, off this worker.
    co_await asio::co_spawn(
        svc.disk(),
        [&svc, &stored, &fresh]() -> asio::awaitable<void> {
          if (auto ec = svc.store().update_head(stored->primary_key, stored->variant_key, fresh))
            log::warn("cache: refreshing a stored head failed: {}", ec.message());
          co_return;
        },
        asio::use_awaitable);
    svc.counters().revalidated_not_modified.fetch_add(1, std::memory_order_relaxed);
    f->finish(fill::state::not_modified, upstream_error::none, 304);
    svc.inflight().remove(f);
    res.k = lead_result::not_modified;
    co_return res;
  }
  if (stored && res.status >= 500) {
    svc.counters().revalidation_failed.fetch_add(1, std::memory_order_relaxed);
    report.exchange_done(headers, 0);
    // The origin is failing: readers may serve the stale copy (stale-if-error).
    f->finish(fill::state::failed, upstream_error::none, res.status);
    svc.inflight().remove(f);
    res.k = lead_result::failed;
    co_return res;
  }
  if (stored) svc.counters().revalidated_modified.fetch_add(1, std::memory_order_relaxed);

  auto decision =
      cache::check_storable("GET", req.headers, static_cast<int>(res.status), headers, policy);
  const auto length = call->content_length();
  const bool too_big = length && *length > svc.store().options().max_object_size;
  std::optional<cache::insert_handle> insert;
  std::string variant;
  // An empty body (a 204, Content-Length: 0) is stored too: pump finds its end at once.
  if (decision.storable && !too_big) {
    variant = cache::secondary_key(headers, req.headers).value_or("");
    auto ins = svc.store().begin_insert(f->primary(), variant, length);
    if (ins) insert = std::move(*ins);
  }
  if (!insert) {
    log::debug("site={} not stored: {}", site->name(),
               too_big ? "larger than max_object_size" : decision.reason);
    f->finish(fill::state::not_shared, upstream_error::none, res.status);
    svc.inflight().remove(f);
    res.k = lead_result::not_shared;
    call->classify({});  // from now on a device's pass-through (the fill is over)
    res.call = std::move(call);
    res.hold = std::move(r.hold);  // its body still crosses the WAN
    co_return res;
  }
  if (policy.authorized_sharing)  // never stored, but the device that asked still gets it
    for (const auto& h : headers)
      if (h.name == "set-cookie") res.own_headers.push_back(h);
  cache::stored_head sh{
      res.status,
      cache::headers_to_store(headers, policy.use_cdn_cache_control, policy.authorized_sharing),
      request_time, response_time};
  f->publish_head(sh, variant, length);
  const auto stall = pool->timeouts().upstream_idle;
  asio::co_spawn(ex,
                 pump(fill_job{.cache = &svc,
                               .f = f,
                               .call = std::move(call),
                               .pool = std::move(pool),
                               .site = std::move(site),
                               .path = std::move(path),
                               .report = std::move(r.report),
                               .insert = std::move(*insert),
                               .head = std::move(sh),
                               .hold = std::move(r.hold),
                               .orphans = r.orphans,
                               .stall = stall}),
                 asio::detached);
  res.k = lead_result::streaming;
  co_return res;
}

namespace {

asio::awaitable<void> pump(fill_job job) {
  auto& svc = *job.cache;
  fill& f = *job.f;
  std::vector<char> buf(chunk_size);
  bool have_fd = false;
  // What the policy last said while no client read the fill (counted when it ends).
  std::optional<orphan_verdict> orphaned;
  body_tally tally(job.report, job.head.headers);
  auto end_failed = [&](upstream_error err) {
    job.insert.abandon();
    f.finish(fill::state::failed, err);
    svc.inflight().remove(job.f);
  };
  bool unstored = false;  // storing failed: the readers already here are served from memory
  for (;;) {
    if (unstored && f.readers() == 0) {
      // Nothing to store and nobody to serve: the rest would cross the WAN for nobody.
      log::debug("site={} {}: every client of an unstored fill left; fetch stopped",
                 job.site->name(), job.path);
      f.finish(fill::state::abandoned);
      co_return;
    }
    // Asked before every read, the first included: a leader gone before the body started
    // costs no more than what the upstream has already pushed into the socket.
    if (auto verdict = unstored ? std::nullopt : f.judge_if_orphaned(job.orphans)) {
      orphaned = verdict;
      if (*verdict == orphan_verdict::stop) {
        // Every client left and nothing argues for finishing: the rest of the body would
        // cross the WAN for nobody. Pause (TCP back-pressure holds the upstream) in case a
        // client comes back, then stop: closing the connection (call not done) ends the
        // transfer. The fill keeps its upstream slot meanwhile, so the caps count every open
        // upstream request; misses_per_client bounds what one device can park here.
        svc.counters().orphan_fills_paused.fetch_add(1, std::memory_order_relaxed);
        const bool back = co_await f.wait_for_reader(job.orphans.grace);
        svc.counters().orphan_fills_paused.fetch_sub(1, std::memory_order_relaxed);
        if (!back && f.abandon_if_orphaned(job.orphans)) {
          svc.counters().orphan_fills[0].fetch_add(1, std::memory_order_relaxed);
          log::debug("site={} {}: every client left after {} bytes; fetch stopped, nothing stored",
                     job.site->name(), job.path, f.snapshot().available);
          job.insert.abandon();
          svc.inflight().remove(job.f);
          co_return;
        }
        svc.counters().orphan_fills[5].fetch_add(1, std::memory_order_relaxed);
        orphaned.reset();
      }
    }
    upstream_error err = upstream_error::none;
    std::size_t n = co_await job.call->read_body(asio::buffer(buf), err);
    if (err != upstream_error::none) {
      job.report->failed(err);
      log::warn("upstream failed mid-body after {} bytes ({}): {}; nothing stored",
                job.insert.size(), to_string(err), job.call->error_detail());
      end_failed(err);
      co_return;
    }
    if (n == 0) break;
    tally.add(n);
    std::string_view bytes(buf.data(), n);
    if (unstored) {
      // Storing may fail; serving must not: what was written stays readable, the rest is
      // kept in memory for the readers, bounded (fill::window_limit), paced by the slowest.
    } else if (auto ec = job.insert.append(bytes)) {
      if (ec == cache::store_errc::size_mismatch) {  // more than the declared length
        job.report->failed(upstream_error::reset);
        log::warn("upstream sent more than the {} declared bytes of {}; nothing stored",
                  f.snapshot().length.value_or(0), f.primary());
        end_failed(upstream_error::reset);
        co_return;
      }
      svc.storing_failed(ec);
      log::debug("cache: storing {} failed after {} bytes: {}; passing it through", f.primary(),
                 f.snapshot().available, ec.message());
      f.pass_through();
      svc.inflight().remove(job.f);  // a newcomer fetches on its own
      svc.counters().unstored_fills.fetch_add(1, std::memory_order_relaxed);
      unstored = true;
    } else if (!have_fd) {
      int fd = job.insert.open_reader();
      if (fd >= 0) {
        f.set_reader_fd(fd);
        have_fd = true;
      }
    }
    f.advance(bytes);
    if (unstored && !co_await f.wait_for_room(job.stall))
      log::debug("site={} {}: a client of an unstored fill stalled for {} ms; it is cut",
                 job.site->name(), job.path, job.stall.count());
  }
  job.call->done();
  job.call.reset();
  job.hold.reset();  // the upstream exchange is over: its slots go to the next fetch
  // The commit may wait behind others: a fill waiting for it must not hold its 64 KiB buffer
  // (issue 14: a burst of misses kept thousands of them, 1.2 GB).
  std::vector<char>().swap(buf);
  if (const auto snap = f.snapshot(); snap.length && *snap.length != snap.available) {
    log::warn("upstream sent {} of {} declared bytes of {}; nothing stored", snap.available,
              *snap.length, f.primary());
    end_failed(upstream_error::reset);  // a short body is never presented as complete
    co_return;
  }
  if (unstored) {
    f.finish_body();  // every reader can end its response; nothing to commit
    f.complete();
    co_return;
  }
  if (orphaned)
    svc.counters().orphan_fills[static_cast<std::size_t>(*orphaned)].fetch_add(
        1, std::memory_order_relaxed);
  f.finish_body();  // every reader can end its response now; the commit follows
  // Group commit on the committer thread (rename, flush, index write, together with whatever
  // else is waiting); readers already have every byte.
  auto ec = co_await svc.commit(std::move(job.insert), job.head);
  if (!ec) {
    svc.storing_succeeded();
  } else if (ec != cache::store_errc::too_big && ec != cache::store_errc::size_mismatch) {
    log::debug("cache: committing {} failed: {}", f.primary(), ec.message());
    svc.storing_failed(ec);  // logged once while storing stays suspended
  } else {
    log::warn("cache: committing {} failed: {}", f.primary(), ec.message());
  }
  f.complete();
  svc.inflight().remove(job.f);
}

}  // namespace

}  // namespace storecache::upstream
