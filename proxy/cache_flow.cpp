// The cache path of proxy_handler: GET and HEAD for sites with caching on.
//
//   lookup (a hit never takes a write transaction)
//     fresh / allowed stale   -> serve_stored (whole, 206 range, 304 to a conditional client)
//     stale-while-revalidate  -> serve_stored now + one background conditional fill
//     must revalidate         -> join or lead a conditional fill: 304 refreshes the stored head
//   miss                      -> join or lead a fill; every client, leader included, reads the
//                                body from the fill as it arrives (request collapsing)
//   cold range far from 0     -> answered by its own ranged upstream request while a
//                                background fill stores the whole object
// The fill's upstream side (lead, pump, background_fill) is in fill_flow.cpp.
#include <fmt/format.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "access/signed_requests.hpp"
#include "cache/cache_control.hpp"
#include "cache/cache_key.hpp"
#include "cache/cache_status.hpp"
#include "cache/range.hpp"
#include "cache/serve_plan.hpp"
#include "log/log.hpp"
#include "proxy/proxy_handler.hpp"
#include "proxy/tls.hpp"
#include "upstream/cache_service.hpp"

namespace storecache::proxy {

namespace {

using std::chrono::system_clock;
constexpr std::size_t chunk_size = 64 * 1024;
// A range starting this far past what a fill has (or from a cold start) gets its own ranged
// upstream request rather than waiting for the fill to get there.
constexpr std::uint64_t range_wait_window = 2 * 1024 * 1024;

// The site, kept alive by its config for as long as a fill started here runs.
// (made only off the hit path: copying the shared_ptr touches a count all workers share)
std::shared_ptr<const config::site> site_ref(const connection_context& ctx,
                                             const config::site& site) {
  return std::shared_ptr<const config::site>(ctx.cfg, &site);
}

}  // namespace

asio::awaitable<void> proxy_handler::cached(http::exchange& ex, connection_context& ctx,
                                            const config::site& site, std::string_view path,
                                            outcome& out) {
  const http::request_head& req = ex.request();
  auto& svc = *cache_;
  cache_lookup c;
  c.policy = cache::policy_for(site, path);
  auto& policy = c.policy;
  if (policy.bypass)
    co_return co_await forward(ex, ctx, site, path, out, cache::forward_reason::bypass);
  const cache::key_rules rules{site.cache.ignore_query_params};
  auto& primary = c.primary;
  primary = cache::primary_key("https", site.name(), path, rules);
  // Protected content: every use is authorized by the upstream first. A request carrying a
  // signature the key drops, on a site that cannot verify it, shares a copy only with other
  // signed requests (access/signed_requests.hpp).
  bool& authorize = c.authorize;
  authorize = policy.authorized_sharing;
  if (!authorize && site.signed_urls.scheme == config::signed_url_scheme::upstream &&
      access::any_signature_looking(cache::dropped_query_names(path, rules))) {
    primary = access::signed_variant(primary);
    authorize = true;
  }
  policy.store_success_only = authorize;
  const auto request_cc = cache::request_cache_control(req.headers);

  c.stored = cache::find_stored(svc.store(), primary, req.headers);
  auto& stored = c.stored;
  if (authorize && stored) {
    auto a = co_await authorize_with_upstream(ex, ctx, site, path, &stored->meta, out);
    if (a == authorization::answered) co_return;
    if (a == authorization::denied) co_return co_await serve_denied(ex, ctx, site, path, out);
    c.authorized = true;
  }
  std::optional<cache::reuse_decision> decision;
  if (stored) {
    const auto& h = stored->meta.head;
    decision = cache::decide_reuse(static_cast<int>(h.status), h.headers,
                                   {h.request_time, h.response_time}, req.headers,
                                   system_clock::now(), policy);
    switch (decision->action) {
      case cache::reuse_action::fresh:
      case cache::reuse_action::stale:
        co_return co_await serve_stored(ex, *stored, *decision, out,
                                        decision->action == cache::reuse_action::fresh
                                            ? stored_answer::hit
                                            : stored_answer::stale);
      case cache::reuse_action::stale_while_revalidate: {
        if (!svc.inflight().find(primary)) {
          svc.counters().background_fills.fetch_add(1, std::memory_order_relaxed);
          asio::co_spawn(ex_,
                         shared_from_this()->background_fill(req, std::string(path), ctx.rt,
                                                             site_ref(ctx, site), primary,
                                                             stored->meta, policy, ctx.stats),
                         asio::detached);
        }
        co_return co_await serve_stored(ex, *stored, *decision, out, stored_answer::swr);
      }
      case cache::reuse_action::gateway_timeout:
        out.why = "only-if-cached: the stored response will not do";
        out.status = 504;
        co_return co_await respond_local(ex, 504, out.why);
      case cache::reuse_action::revalidate:
        break;
    }
  } else if (request_cc.only_if_cached) {
    out.why = "only-if-cached: not in the cache";
    out.status = 504;
    co_return co_await respond_local(ex, 504, out.why);
  }
  // HEAD and no-store requests never start a fill; they are passed through.
  if (req.method == "HEAD" || request_cc.no_store)
    co_return co_await forward(
        ex, ctx, site, path, out,
        req.method == "HEAD" ? cache::forward_reason::uri_miss : cache::forward_reason::request);

  // Storing suspended (disk full, commit backlog): what is stored was served above; the rest
  // passes through unstored.
  if (svc.storing_paused())
    co_return co_await forward(
        ex, ctx, site, path, out,
        stored ? cache::forward_reason::stale : cache::forward_reason::uri_miss);
  co_return co_await join_or_lead(ex, ctx, site, path, c, out);
}

// A fill in flight for the key is joined (after this device's own authorization, where the
// content needs one); else this request leads one.
asio::awaitable<void> proxy_handler::join_or_lead(http::exchange& ex, connection_context& ctx,
                                                  const config::site& site, std::string_view path,
                                                  cache_lookup& c, outcome& out) {
  const http::request_head& req = ex.request();
  auto& svc = *cache_;
  const auto& stored = c.stored;
  const std::uint64_t start = cache::range_start(req.headers);
  auto joined = svc.inflight().join_or_create(c.primary, req.client_address);
  auto& f = joined.f;
  if (!joined.created && c.authorize && !c.authorized) {
    // A fill led by another device's request: this one must be allowed its own copy.
    auto a = co_await authorize_with_upstream(ex, ctx, site, path, nullptr, out);
    if (a != authorization::allowed) {
      joined.reader.reset();
      if (a == authorization::answered) co_return;
      co_return co_await serve_denied(ex, ctx, site, path, out);
    }
  }
  if (!joined.created) {
    auto snap = f->snapshot();
    if (!stored && start > snap.available + range_wait_window) {
      joined.reader.reset();
      svc.counters().cold_range_passthrough.fetch_add(1, std::memory_order_relaxed);
      co_return co_await forward(ex, ctx, site, path, out, cache::forward_reason::miss);
    }
    svc.counters().collapsed.fetch_add(1, std::memory_order_relaxed);
    co_return co_await serve_fill(ex, ctx, site, path, f, joined.reader, false, stored.has_value(),
                                  out);
  }
  co_return co_await lead_and_serve(ex, ctx, site, path, c, joined, out);
}

// This request leads the fill: may it use the WAN? Then the fill's upstream request, and this
// client served from the fill (or, not storable, the response passed through to it alone).
asio::awaitable<void> proxy_handler::lead_and_serve(http::exchange& ex, connection_context& ctx,
                                                    const config::site& site, std::string_view path,
                                                    cache_lookup& c,
                                                    upstream::inflight_table::joined& joined,
                                                    outcome& out) {
  const http::request_head& req = ex.request();
  auto& svc = *cache_;
  const auto& stored = c.stored;
  const auto& policy = c.policy;
  auto& f = joined.f;
  auto& counters = ctx.stats.site(site.name());
  const std::uint64_t start = cache::range_start(req.headers);
  auto ticket = co_await admit_fetch(ex, ctx, site,
                                     stored ? fetch_kind::refresh : fetch_kind::cold_miss, out);
  if (!ticket) {
    // Refused or gone (answered by admit_fetch): a client that joined meanwhile fetches alone.
    f->finish(fill::state::abandoned);
    svc.inflight().remove(f);
    co_return;
  }
  auto pool = pool_for(ctx.rt, site);
  const auto orphans = upstream::orphan_policy::from_config(ctx.cfg->cache);
  if (!stored && start > range_wait_window) {
    // A seek into an object nobody has fetched: this client gets its range from the origin
    // now; the whole object is fetched into the cache meanwhile. The fill counts this client
    // as its reader while its range is being sent: a seek that is abandoned stops it too.
    svc.counters().cold_range_passthrough.fetch_add(1, std::memory_order_relaxed);
    svc.counters().background_fills.fetch_add(1, std::memory_order_relaxed);
    asio::co_spawn(
        ex_,
        [self = shared_from_this(), f, req, p = std::string(path), site = site_ref(ctx, site), pool,
         &counters, policy, orphans, t = std::move(*ticket)]() mutable -> asio::awaitable<void> {
          auto r = co_await self->lead(f, req, p, site, pool, counters, std::nullopt, policy,
                                       orphans, std::move(t));
          // not_shared: nobody waits for it; dropping it closes it
          if (r.k == lead_result::not_shared) self->note_upstream(*site, p, {}, 0);
        },
        asio::detached);
    co_return co_await forward(ex, ctx, site, path, out, cache::forward_reason::miss);
  }

  std::optional<cache::object_meta> stored_meta;
  if (stored) stored_meta = stored->meta;
  auto t0 = std::chrono::steady_clock::now();
  auto led = co_await lead(f, req, std::string(path), site_ref(ctx, site), pool, counters,
                           stored_meta, policy, orphans, std::move(*ticket), &ex);
  out.upstream_time = std::chrono::steady_clock::now() - t0;
  out.upstream_status = led.status;
  switch (led.k) {
    case lead_result::not_shared: {
      // Not storable: this client gets the response as it is, nobody else joins it.
      out.cache = account::cache_outcome::pass;
      out.status = led.call->status();
      http::response_head rh;
      rh.status = led.call->status();
      cache::cache_status cs;
      cs.fwd = cache::forward_reason::uri_miss;
      cs.fwd_status = static_cast<int>(rh.status);
      rh.headers = cache::client_headers(led.call->response_headers(), std::nullopt,
                                         cache::format_cache_status(cs));
      rh.content_length = led.call->content_length();
      co_return co_await relay(ex, *led.call, rh, site, path, counters, out);
    }
    case lead_result::streaming:
    case lead_result::not_modified:
    case lead_result::failed:
      co_return co_await serve_fill(ex, ctx, site, path, f, joined.reader, true, stored.has_value(),
                                    out, std::move(led.own_headers));
  }
}

asio::awaitable<void> proxy_handler::serve_stored(http::exchange& ex, cache::lookup_result& found,
                                                  const cache::reuse_decision& d, outcome& out,
                                                  stored_answer kind) {
  const http::request_head& req = ex.request();
  const auto& head = found.meta.head;
  cache::cache_status cs;
  cs.ttl = d.ttl;
  if (kind == stored_answer::revalidated) {  // RFC 9211: forwarded because stale, 304 came
    cs.fwd = cache::forward_reason::stale;
    cs.fwd_status = 304;
  } else {
    cs.hit = true;
    if (kind == stored_answer::stale) cs.detail = "stale";
    if (kind == stored_answer::swr) cs.detail = "swr";
    if (kind == stored_answer::stale_if_error) cs.detail = "stale-if-error";
  }
  out.cache = kind == stored_answer::hit           ? account::cache_outcome::hit
              : kind == stored_answer::revalidated ? account::cache_outcome::revalidated
                                                   : account::cache_outcome::stale;
  if (out.cache == account::cache_outcome::stale)
    cache_->counters().stale_served.fetch_add(1, std::memory_order_relaxed);
  out.bytes_from_cache = true;
  const std::uint64_t size = found.body.size();
  auto headers = cache::client_headers(head.headers, d.age, cache::format_cache_status(cs));

  if (head.status == 200 && cache::client_not_modified(req.headers, head.headers))
    co_return co_await send_not_modified(ex, std::move(headers), out.status);
  auto plan = cache::plan_range(req.headers, head.headers, head.status, size);
  if (plan.status == 416) co_return co_await send_unsatisfiable(ex, plan, out.status);
  http::response_head rh;
  rh.status = plan.status;
  rh.headers = std::move(headers);
  if (plan.status == 206) rh.headers.push_back({"content-range", plan.content_range});
  // Ranges are served from a stored 200 only (plan_range): a stored 404 or 204 says nothing.
  if (head.status == 200) rh.headers.push_back({"accept-ranges", "bytes"});
  const std::uint64_t end = plan.end.value_or(size);
  rh.content_length = end - plan.first;
  out.status = rh.status;
  const bool head_only = req.method == "HEAD" || rh.content_length == 0;
  if (co_await ex.send_head(rh, head_only) || head_only) co_return;
  if (auto bytes = found.body.inline_bytes(); !bytes.empty()) {
    // Small bodies: straight from the copy the lookup made, no buffer, no second copy.
    auto part = bytes.substr(static_cast<std::size_t>(plan.first),
                             static_cast<std::size_t>(end - plan.first));
    if (co_await ex.send_body(asio::buffer(part.data(), part.size()))) co_return;
    out.bytes += part.size();
    co_await ex.finish();
    co_return;
  }
  // Not zero-filled: every byte sent is read into it first.
  const auto buf_size =
      static_cast<std::size_t>(std::min<std::uint64_t>(chunk_size, end - plan.first));
  std::unique_ptr<char[]> storage(new char[buf_size]);
  std::span<char> buf(storage.get(), buf_size);
  for (std::uint64_t pos = plan.first; pos < end;) {
    auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), end - pos));
    auto got = found.body.read(pos, std::span<char>(buf.data(), want));
    if (!got || *got == 0) {
      log::error("cache: stored body of {} unreadable at {}: {}", found.meta.primary_key, pos,
                 got ? "short" : got.error().message());
      out.why = "stored body damaged";
      ex.abort();
      co_return;
    }
    if (co_await ex.send_body(asio::buffer(buf.data(), *got))) co_return;
    pos += *got;
    out.bytes += *got;
  }
  co_await ex.finish();
}

asio::awaitable<void> proxy_handler::serve_fill(http::exchange& ex, connection_context& ctx,
                                                const config::site& site, std::string_view path,
                                                std::shared_ptr<fill> f, fill::reader& reader,
                                                bool owner, bool revalidating, outcome& out,
                                                header_list own_headers) {
  const http::request_head& req = ex.request();
  const auto& t = ctx.cfg->timeout;
  // Wait for the head: as long as the leader may take to connect and get a first byte.
  const auto head_deadline = std::chrono::steady_clock::now() + t.upstream_connect +
                             t.upstream_first_byte + std::chrono::seconds(1);
  auto snap = f->snapshot();
  while (snap.st == fill::state::head_pending) {
    if (std::chrono::steady_clock::now() > head_deadline) {
      out.why = "timed out waiting for a collapsed fetch";
      out.status = 504;
      co_return co_await respond_local(ex, 504, out.why);
    }
    co_await f->wait(0, t.upstream_first_byte);
    snap = f->snapshot();
  }
  const cache::site_policy policy = cache::policy_for(site, path);
  switch (snap.st) {
    case fill::state::not_modified:
    case fill::state::failed: {
      // Refreshed by a 304, or the origin failed: what is stored may answer.
      const cache::key_rules rules{site.cache.ignore_query_params};
      auto stored = cache::find_stored(cache_->store(), f->primary(), req.headers);
      if (stored) {
        const auto& h = stored->meta.head;
        auto d = cache::decide_reuse(static_cast<int>(h.status), h.headers,
                                     {h.request_time, h.response_time}, req.headers,
                                     system_clock::now(), policy);
        if (snap.st == fill::state::not_modified)
          co_return co_await serve_stored(ex, *stored, d, out, stored_answer::revalidated);
        if (d.stale_on_error && snap.available == 0)
          co_return co_await serve_stored(ex, *stored, d, out, stored_answer::stale_if_error);
      }
      if (snap.st == fill::state::failed && snap.available == 0) {
        unsigned st = f->upstream_status();
        if (st >= 500) {  // the origin's own error, with no stale copy to serve instead
          co_return co_await forward(ex, ctx, site, path, out, cache::forward_reason::miss);
        }
        out.status = status_for(f->error());
        out.why = fmt::format("upstream {}", to_string(f->error()));
        co_return co_await respond_local(ex, out.status, out.why);
      }
      if (snap.st == fill::state::not_modified)
        co_return co_await forward(ex, ctx, site, path, out, cache::forward_reason::miss);
      break;  // failed mid-body: fall through to abort below
    }
    case fill::state::not_shared:
    case fill::state::abandoned:  // its leader was refused or left before fetching
      co_return co_await forward(ex, ctx, site, path, out, cache::forward_reason::miss);
    default:
      break;
  }
  if (snap.st == fill::state::failed) {
    out.why = "upstream failed mid-body";
    ex.abort();
    co_return;
  }
  // Vary: a follower whose varying fields differ from the leader's needs its own response.
  if (!f->variant().empty() &&
      cache::secondary_key(f->head().headers, req.headers).value_or("") != f->variant())
    co_return co_await forward(ex, ctx, site, path, out, cache::forward_reason::miss);

  out.cache = account::cache_outcome::miss;
  out.bytes_from_cache = !owner;
  out.upstream_status = f->upstream_status();
  cache::cache_status cs;
  if (!owner && (snap.st == fill::state::complete || snap.st == fill::state::body_done)) {
    // The whole body is here already (its commit is still under way): a hit in all but name.
    cs.hit = true;
    out.cache = account::cache_outcome::hit;
  } else {
    cs.fwd = revalidating ? cache::forward_reason::stale : cache::forward_reason::uri_miss;
    cs.fwd_status = static_cast<int>(f->upstream_status());
    cs.stored = true;
    cs.collapsed = !owner;
  }
  const auto& head = f->head();
  // RFC 9111 §4.2.3, §5.1: the Age sent includes the age the upstream's response came with.
  const auto age = cache::current_age(head.headers, {head.request_time, head.response_time},
                                      system_clock::now());
  if (head.status == 200 && cache::client_not_modified(req.headers, head.headers)) {
    auto headers = cache::client_headers(head.headers, age, cache::format_cache_status(cs));
    headers.insert(headers.end(), own_headers.begin(), own_headers.end());  // Set-Cookie only
    co_return co_await send_not_modified(ex, std::move(headers), out.status);
  }
  auto plan = cache::plan_range(req.headers, head.headers, head.status, snap.length);
  if (plan.status == 416) co_return co_await send_unsatisfiable(ex, plan, out.status);
  // A client gone already (HTTP/1.1: its FIN is here) is not a reader: leaving now lets an
  // orphaned fill pause before it reads more.
  if (ex.client_gone()) {
    out.why = "client gone before the response";
    co_return;
  }
  http::response_head rh;
  rh.status = plan.status;
  rh.headers = cache::client_headers(head.headers, age, cache::format_cache_status(cs));
  if (plan.status == 206) rh.headers.push_back({"content-range", plan.content_range});
  if (snap.length && head.status == 200) rh.headers.push_back({"accept-ranges", "bytes"});
  rh.headers.insert(rh.headers.end(), own_headers.begin(), own_headers.end());
  if (plan.end) rh.content_length = *plan.end - plan.first;
  out.status = rh.status;
  if (co_await ex.send_head(rh, rh.content_length == 0)) co_return;
  if (rh.content_length == 0) co_return;
  co_await send_fill_body(ex, *f, reader, plan.first, plan.end, ctx.cfg->timeout.upstream_idle,
                          out);
}

// The body from `first` to `end` (nullopt: the fill's end) as the fill has it: never a short
// body presented as complete. A client that falls behind an unstored fill, or a fill that fails
// or stalls for twice upstream_idle, ends in abort().
asio::awaitable<void> proxy_handler::send_fill_body(http::exchange& ex, fill& f,
                                                    fill::reader& reader, std::uint64_t first,
                                                    std::optional<std::uint64_t> end,
                                                    std::chrono::milliseconds upstream_idle,
                                                    outcome& out) {
  std::vector<char> buf(chunk_size);
  std::uint64_t pos = first;
  auto last_progress = std::chrono::steady_clock::now();
  for (;;) {
    if (end && pos >= *end) break;
    std::size_t want = buf.size();
    if (end) want = static_cast<std::size_t>(std::min<std::uint64_t>(want, *end - pos));
    const auto got = reader.read(pos, std::span<char>(buf.data(), want));
    if (got.lost) {
      // An unstored fill could not keep the bytes for this client any longer.
      cache_->counters().unstored_readers_cut.fetch_add(1, std::memory_order_relaxed);
      out.why = "fell behind an unstored fill";
      ex.abort();
      co_return;
    }
    const std::size_t n = got.n;
    if (n > 0 && ex.client_gone()) {
      out.why = "client gone mid-response";
      ex.abort();
      co_return;
    }
    if (n > 0) {
      if (co_await ex.send_body(asio::buffer(buf.data(), n))) co_return;  // the fill goes on
      pos += n;
      out.bytes += n;
      last_progress = std::chrono::steady_clock::now();
      continue;
    }
    const auto snap = f.snapshot();
    if ((snap.st == fill::state::complete || snap.st == fill::state::body_done) &&
        pos >= snap.available)
      break;
    if (snap.st == fill::state::failed ||
        std::chrono::steady_clock::now() - last_progress > 2 * upstream_idle) {
      out.why = "upstream failed mid-body";
      ex.abort();
      co_return;
    }
    co_await f.wait(pos, upstream_idle);
  }
  co_await ex.finish();
}

asio::awaitable<void> proxy_handler::invalidate(const config::site& site, std::string_view method,
                                                unsigned status, std::string_view path,
                                                const header_list& response_headers) {
  const std::string target = "https://" + site.name() + std::string(path);
  auto uris = cache::invalidated_uris(method, static_cast<int>(status), target, response_headers);
  if (uris.empty()) co_return;
  const cache::key_rules rules{site.cache.ignore_query_params};
  std::vector<std::string> keys;
  for (const auto& uri : uris) {
    auto rest = std::string_view(uri).substr(uri.find("://") + 3);
    auto slash = rest.find('/');
    std::string_view p = slash == std::string_view::npos ? "/" : rest.substr(slash);
    keys.push_back(cache::primary_key("https", site.name(), p, rules));
    keys.push_back(access::signed_variant(keys.back()));  // the copy signed requests share
  }
  auto& svc = *cache_;
  co_await asio::co_spawn(
      svc.disk(),
      [&svc, &keys]() -> asio::awaitable<void> {
        for (const auto& k : keys)
          (void)svc.store().remove_all(k);
        co_return;
      },
      asio::use_awaitable);
}

}  // namespace storecache::proxy
