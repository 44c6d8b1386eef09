// One listed object into the cache, exactly as a device's miss would bring it: the same key
// and policy, a fresh copy left alone, a fill in flight waited for (never a second fetch), else
// a background fill through upstream::lead_fill holding a fetch-limiter permit taken only if
// one is free (device misses first).
#include <fmt/format.h>

#include <functional>

#include "account/metrics.hpp"
#include "account/upstream_report.hpp"
#include "cache/cache_key.hpp"
#include "cache/serve_plan.hpp"
#include "prefetch/runner_parts.hpp"
#include "upstream/cache_service.hpp"
#include "upstream/fetch_limiter.hpp"
#include "upstream/fill_job.hpp"

namespace storecache::prefetch {

namespace {

bool terminal(upstream::fill::state s) {
  using st = upstream::fill::state;
  return s != st::head_pending && s != st::streaming && s != st::body_done;
}

const cache::header_list no_request_fields;

// The fill's upstream body bytes counted for the source too (prefetch's own WAN use), on top
// of the site's upstream counters and the usage history (account::upstream_report).
class counted_report final : public upstream::fetch_report {
 public:
  counted_report(std::shared_ptr<upstream::fetch_report> inner,
                 std::function<void(std::size_t)> on_body)
      : inner_(std::move(inner)), on_body_(std::move(on_body)) {}
  void response(unsigned status) override { inner_->response(status); }
  void no_response(upstream::upstream_error e) override { inner_->no_response(e); }
  void failed(upstream::upstream_error e) override { inner_->failed(e); }
  void body(std::size_t n) override {
    inner_->body(n);
    on_body_(n);
  }
  void exchange_done(const cache::header_list& h, std::uint64_t bytes) override {
    inner_->exchange_done(h, bytes);
  }

 private:
  std::shared_ptr<upstream::fetch_report> inner_;
  std::function<void(std::size_t)> on_body_;
};

}  // namespace

asio::awaitable<runner::object_result> runner::ensure_object(
    source_run& s, const config::site& site, const config::prefetch_source& src,
    std::shared_ptr<const config::config> cfg, std::string_view path, const object_bounds& bounds) {
  const bool revalidate = bounds.revalidate;
  object_result out;
  auto policy = cache::policy_for(site, path);
  if (policy.bypass) {
    out.error = "the site's cache rules never store it";
    out.not_storable = true;
    co_return out;
  }
  policy.store_success_only = policy.authorized_sharing;
  const cache::key_rules rules{site.cache.ignore_query_params};
  const std::string primary = cache::primary_key("https", site.name(), path, rules);
  out.primary = primary;
  auto ex = co_await asio::this_coro::executor;

  // Waits for a fill (ours, a device's, another source's) to end; false when it passed the
  // bounds first (out says which).
  auto wait_for = [this, &bounds,
                   &out](std::shared_ptr<upstream::fill> f) -> asio::awaitable<bool> {
    while (!stopping_) {
      auto v = f->snapshot();
      if (terminal(v.st)) break;
      const std::uint64_t size = std::max(v.available, v.length.value_or(0));
      if (size > bounds.max_bytes) {
        out.too_large = true;
        out.came = size;
        co_return false;
      }
      const auto now = steady::now();
      if (now >= bounds.deadline) {
        out.timed_out = true;
        out.came = v.available;
        co_return false;
      }
      const auto step = std::min<steady::duration>(std::chrono::seconds(1), bounds.deadline - now);
      if (v.st == upstream::fill::state::body_done)  // the commit is under way: no wake-up
        co_await sleep_for(std::chrono::milliseconds(10));
      else
        co_await f->wait(v.available,
                         std::max(std::chrono::milliseconds(1),
                                  std::chrono::duration_cast<std::chrono::milliseconds>(step)));
    }
    co_return true;
  };
  auto gave_up = [&out] {
    out.error = out.too_large ? fmt::format("{} bytes, over the size bound", out.came)
                              : fmt::format("not whole in time ({} bytes came)", out.came);
  };
  bool fetched = false, revalidated = false;
  bool waited = false;  // for a fill someone else led
  for (int attempt = 0; attempt < 20; ++attempt) {
    if (stopping_) {
      out.k = object_result::cut;
      co_return out;
    }
    // The metadata only: checking an object opens no body and is not an access (or every
    // listed object would stay young in the recency order, pinned by accident).
    auto stored = cache::find_stored_meta(cache_.store(), primary, no_request_fields);
    std::optional<cache::object_meta> meta;
    // (a stored error answer is not kept for the source)
    out.stored_bytes = stored && stored->head.status == 200
                           ? std::optional<std::uint64_t>(stored->body_size)
                           : std::nullopt;
    if (stored) {
      const auto& h = stored->head;
      auto d = cache::decide_reuse(static_cast<int>(h.status), h.headers,
                                   {h.request_time, h.response_time}, no_request_fields,
                                   system_clock::now(), policy);
      // Checked with the upstream just now: current, fresh or not.
      const bool checked = fetched || revalidated || waited;
      if (revalidate ? checked : d.action == cache::reuse_action::fresh) {
        if (h.status != 200) {
          out.error = fmt::format("the upstream answered {}", h.status);
          out.status = h.status;
          co_return out;
        }
        out.k = fetched       ? object_result::fetched
                : revalidated ? object_result::revalidated
                              : object_result::fresh;
        out.bytes = stored->body_size;
        co_return out;
      }
      meta = std::move(stored);
    }
    if (fetched || revalidated) {  // stored, yet not fresh (or not stored at all)
      out.error = "fetched, but not stored fresh (its Cache-Control, or storing is paused)";
      co_return out;
    }
    // Never fetch what a device's request is fetching: wait for it, then look again.
    if (auto f = cache_.inflight().find(primary)) {
      if (!co_await wait_for(f)) {
        gave_up();
        co_return out;
      }
      waited = true;
      continue;
    }
    auto joined = cache_.inflight().join_or_create(primary, asio::ip::address_v4::loopback(), true);
    if (!joined.created) {
      if (!co_await wait_for(joined.f)) {
        gave_up();
        co_return out;
      }
      waited = true;
      continue;
    }
    // Device misses first: a slot only if one is free now, never queued before them.
    auto permit = limiter_.try_acquire(site.name());
    if (!permit) {
      joined.f->finish(upstream::fill::state::abandoned);
      cache_.inflight().remove(joined.f);
      if (!window_open(src) || s.removed) {  // devices kept every slot until it closed
        out.k = object_result::cut;
        co_return out;
      }
      co_await sleep_for(std::chrono::milliseconds(500));
      --attempt;  // waiting for room is not a failed attempt
      continue;
    }
    auto on_body = [this, key = s.key](std::size_t n) {
      std::lock_guard lock(mu_);
      // (a fill may end after a reload removed the source: its readiness stays gone)
      if (auto it = status_.find(key); it != status_.end()) it->second.fetched_bytes += n;
    };
    auto report = std::make_shared<counted_report>(
        std::make_shared<account::upstream_report>(stats_.site(site.name()), usage_, site.name(),
                                                   std::string(path), /*prefetch=*/true),
        std::move(on_body));
    const auto req = request_for(site, path);
    // Built before the co_await, not as a temporary inside it (GCC 12, see proxy/fill_flow.cpp).
    upstream::fill_request request{
        .f = joined.f,
        .path = std::string(path),
        .site = std::shared_ptr<const config::site>(cfg, &site),
        .pool = pool_for(site),
        .report = std::move(report),
        .stored = std::move(meta),
        .policy = policy,
        .orphans = upstream::orphan_policy::from_config(cfg->cache),
        .hold = std::make_shared<upstream::fetch_limiter::permit>(std::move(permit)),
        .interim_to = nullptr};
    auto r = co_await upstream::lead_fill(cache_, ex, req, std::move(request));
    switch (r.k) {
      case upstream::lead_result::streaming:
        if (!co_await wait_for(joined.f)) {  // ours: no longer a background fetch
          joined.f->unwanted();
          gave_up();
          co_return out;
        }
        if (joined.f->snapshot().st != upstream::fill::state::complete) {
          out.error = fmt::format("the upstream failed mid-body ({})",
                                  upstream::to_string(joined.f->error()));
          co_return out;
        }
        fetched = true;
        break;
      case upstream::lead_result::not_modified:
        revalidated = true;
        break;
      case upstream::lead_result::not_shared:
        out.error =
            fmt::format("not storable (the upstream answered {} that may not be stored)", r.status);
        out.not_storable = true;
        co_return out;
      case upstream::lead_result::failed:
        out.error = r.status != 0 ? fmt::format("the upstream answered {}", r.status)
                                  : fmt::format("upstream {}", upstream::to_string(r.err));
        out.status = r.status;
        co_return out;
    }
  }
  out.error = "other fetches of it kept failing";
  co_return out;
}

}  // namespace storecache::prefetch
