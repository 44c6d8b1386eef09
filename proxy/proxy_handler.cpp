#include "proxy/proxy_handler.hpp"

#include <fmt/format.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <ctime>

#include "account/access_log.hpp"
#include "account/metrics.hpp"
#include "account/observed_exchange.hpp"
#include "account/request_record.hpp"
#include "log/log.hpp"
#include "proxy/admission.hpp"
#include "proxy/local_answer.hpp"
#include "proxy/tls.hpp"
#include "upstream/cache_service.hpp"
#include "upstream/request_head.hpp"
#include "usage/recorder.hpp"

namespace storecache::proxy {

namespace {

using steady = std::chrono::steady_clock;

bool iequals_prefix(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  return true;
}

// The device behind a request, from its User-Agent; remembered per connection.
usage::device device_of(connection_context& ctx, const header_list& headers) {
  std::string_view ua = find_header(headers, "user-agent").value_or(std::string_view{});
  if (ua != ctx.last_user_agent) {
    ctx.last_user_agent.assign(ua);
    ctx.last_device = usage::classify_user_agent(ua);
  }
  return ctx.last_device;
}

}  // namespace

std::shared_ptr<upstream::upstream_pool> proxy_handler::pool_for(
    const std::shared_ptr<const runtime>& rtp, const config::site& site) {
  const runtime& rt = *rtp;
  // Pools are rebuilt when the runtime (config) changes: a reload may move an upstream.
  if (pools_runtime_ != rtp) {
    pools_.clear();  // in-flight calls hold their pool; it goes when they end
    pools_runtime_ = rtp;
  }
  auto it = pools_.find(site.name());
  if (it == pools_.end()) {
    std::shared_ptr<asio::ssl::context> tls;
    if (auto t = rt.upstream_tls.find(site.name()); t != rt.upstream_tls.end()) tls = t->second;
    it = pools_
             .emplace(site.name(), std::make_shared<upstream::upstream_pool>(
                                       ex_, site, rt.cfg->timeout, std::move(tls), &budget_))
             .first;
  }
  return it->second;
}

asio::awaitable<void> proxy_handler::handle(http::exchange& client_ex, connection_context& ctx) {
  const auto start = steady::now();
  account::observed_exchange obs(client_ex, ctx.cfg->limit.max_request_body);
  http::exchange& ex = obs;
  ctx.stats.request_started();
  struct in_flight_guard {
    account::metrics& m;
    ~in_flight_guard() { m.request_finished(); }
  } guard{ctx.stats};
  const http::request_head& req = ex.request();
  const config::config& cfg = *ctx.cfg;
  outcome out;
  const config::site* site = nullptr;
  std::string_view path = req.target;
  std::string authority = req.authority;

  // Limits of our own, before anything else looks at the request (HTTP/1.1 met the target's
  // already in the session; HTTP/2's :path and declared lengths meet them here).
  if (req.target.size() > cfg.limit.max_uri_bytes) {
    out.refused = access::refusal::uri_too_long;
    out.why = fmt::format("request-target of {} bytes, over limits.max_uri_bytes ({})",
                          req.target.size(), cfg.limit.max_uri_bytes);
  } else if (req.content_length && *req.content_length > cfg.limit.max_request_body) {
    // Expect: 100-continue is not answered: the body is never asked for, never read.
    out.refused = access::refusal::body_too_large;
    out.why = fmt::format("request body of {} bytes, over limits.max_request_body ({})",
                          *req.content_length, cfg.limit.max_request_body);
  }
  if (out.refused) {
    out.status = access::status_of(*out.refused);
  } else if (req.method == "CONNECT") {
    out.status = 405;
    out.why = "CONNECT refused: storecache is a reverse proxy, not a forward proxy";
  } else {
    if (iequals_prefix(path, "https://") || iequals_prefix(path, "http://")) {
      // Absolute form: the authority in the target wins (RFC 9112 §3.2.2).
      auto rest = path.substr(path.find("//") + 2);
      auto slash = rest.find('/');
      authority = std::string(rest.substr(0, slash));
      path = slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash);
    }
    std::string host = config::normalize_host(authority);
    if (path.empty() || path.front() != '/') {
      out.status = 400;
      out.why = "request target is not a path";
    } else if (host.empty()) {
      out.status = 400;
      out.why = "no Host";
    } else if (site = cfg.find_site(host); site == nullptr) {
      out.status = 421;
      out.why = fmt::format("no site serves host '{}': refused (not an open proxy)", host);
    } else if (const config::site* by_sni =
                   req.sni.empty() ? nullptr : cfg.find_site(config::normalize_host(req.sni));
               by_sni != nullptr && by_sni != site) {
      // A TLS name of one site with the Host of another (domain fronting). A TLS name that is
      // no site's (some clients send an IP literal) got the default certificate: Host decides.
      out.status = 421;
      out.why = fmt::format("TLS name '{}' and host '{}' belong to different sites", req.sni, host);
      site = nullptr;
    }
  }

  // Admit: the site's networks, device certificates and signed URLs (proxy/admission.hpp).
  if (site != nullptr && !out.refused)
    if (auto refused = admit(ctx, *site, req, authority, path)) {
      out.status = 403;
      out.why = std::move(refused->why);
      out.denied = refused->reason;
    }
  obs.set_path(path.substr(0, path.find('?')));
  if (site != nullptr && ctx.rt && out.status == 0) {
    if (cache_ && site->cache.enabled && (req.method == "GET" || req.method == "HEAD"))
      co_await cached(ex, ctx, *site, path, out);
    else
      co_await forward(ex, ctx, *site, path, out);
  } else {
    header_list extra;
    if (out.status == 405)
      extra.push_back({"allow", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"});
    // A refused signature tells the device what it needs, and which check failed.
    const std::string message = out.denied == access::denial::signature
                                    ? fmt::format("a valid signed URL is required ({})", out.why)
                                    : out.why;
    co_await respond_local(ex, out.status, message, std::move(extra));
  }

  account(ctx, obs, site, path, out, start);
}

asio::awaitable<void> proxy_handler::refuse(http::exchange& client_ex, connection_context& ctx,
                                            access::refusal why, std::string detail) {
  const auto start = steady::now();
  account::observed_exchange obs(client_ex);
  outcome out;
  out.status = access::status_of(why);
  out.refused = why;
  out.why = std::move(detail);
  co_await respond_local(obs, out.status, out.why);
  account(ctx, obs, nullptr, obs.request().target, out, start);
}

void proxy_handler::account(connection_context& ctx, const account::observed_exchange& obs,
                            const config::site* site, std::string_view path, const outcome& out,
                            steady::time_point start) {
  const http::request_head& req = obs.request();
  account::request_record rec{
      .req = req,
      .site = site,
      .path = path,
      .status = out.status,
      .bytes = out.bytes,
      .cache = out.cache,
      .bytes_from_cache = out.bytes_from_cache,
      .upstream_status = out.upstream_status,
      .upstream_time = out.upstream_time,
      .why = out.why,
      .ttfb = obs.head_sent() ? obs.head_time() - start : steady::duration{},
      .total = steady::now() - start,
      .end_time = std::chrono::system_clock::now(),
      .content = obs.content(),
      .dev = device_of(ctx, req.headers),
      .tls = ctx.tls,
      .client_cert = ctx.client_cert.log_id};
  ctx.stats.record(rec);
  if (out.refused) ctx.stats.request_refused(req.proto, *out.refused);
  if (usage_ && site != nullptr && out.cache != account::cache_outcome::local)
    usage_->record(
        usage::request_facts{.unix_seconds = std::chrono::system_clock::to_time_t(rec.end_time),
                             .site = site->name(),
                             .path = path,
                             .content = rec.content,
                             .dev = rec.dev,
                             .tls = rec.tls,
                             .http2 = req.proto == http::protocol::http2,
                             .from_cache = out.bytes_from_cache,
                             .bytes = out.bytes,
                             .status = out.status});
  if (usage_ && site != nullptr && out.denied)
    usage_->record(
        usage::denial_facts{.unix_seconds = std::chrono::system_clock::to_time_t(rec.end_time),
                            .site = site->name(),
                            .reason = *out.denied});
  if (ctx.access) ctx.access->write(rec);
}

asio::awaitable<std::optional<proxy_handler::fetch_ticket>> proxy_handler::admit_fetch(
    http::exchange& ex, connection_context& ctx, const config::site& site, fetch_kind kind,
    outcome& out) {
  const auto& limit = ctx.cfg->limit;
  const auto deadline = steady::now() + ctx.cfg->timeout.upstream_queue;
  // Refused: 503 with Retry-After. Gone (HEADERS + RST_STREAM, or reset while waiting):
  // nothing to answer, and no WAN used for it.
  auto refuse = [&](std::string why) -> asio::awaitable<std::optional<fetch_ticket>> {
    out.cache = account::cache_outcome::local;
    out.status = 503;
    out.why = std::move(why);
    header_list extra;
    extra.push_back({"retry-after", "1"});
    co_await respond_local(ex, 503, out.why, std::move(extra));
    co_return std::nullopt;
  };
  auto gone = [&] {
    out.cache = account::cache_outcome::local;
    out.why = "client gone before the upstream fetch";
    return std::nullopt;
  };
  if (ex.client_gone()) co_return gone();
  const auto& client = ex.request().client_address;
  if (ctx.ledger && ctx.ledger->penalized(client, steady::now()))
    co_return co_await refuse("client over its reset budget (limits.reset_penalty)");
  fetch_ticket ticket;
  ticket.queue_timeout = ctx.cfg->timeout.upstream_queue;
  if (kind == fetch_kind::cold_miss) {
    // Over a cap a page load's burst waits for its own earlier misses (they end at LAN
    // speed), a client that resets its requests leaves at once. Slots are released as fills
    // end, mostly on this worker: a short poll costs nothing measurable.
    for (;;) {
      if (!ticket.connection_miss)
        ticket.connection_miss =
            upstream::counted_slot::try_take(ctx.misses_led, limit.misses_per_connection);
      if (ticket.connection_miss && !ticket.client_miss && ctx.ledger)
        ticket.client_miss = ctx.ledger->try_begin_miss(client);
      if (ticket.connection_miss && (ticket.client_miss || !ctx.ledger)) break;
      if (ex.client_gone()) co_return gone();
      if (steady::now() >= deadline) {
        if (!ticket.connection_miss) {
          ctx.stats.connection_miss_refused();
          co_return co_await refuse(
              fmt::format("over limits.misses_per_connection ({}) for timeouts.upstream_queue",
                          limit.misses_per_connection));
        }
        ctx.ledger->note_miss_refused();
        co_return co_await refuse(
            fmt::format("over limits.misses_per_client ({}) for timeouts.upstream_queue",
                        limit.misses_per_client));
      }
      asio::steady_timer pause(ex_, std::chrono::milliseconds(20));
      co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }
  upstream::fetch_limiter::refusal why{};
  ticket.permit = co_await limiter_.acquire(
      site.name(), std::max(deadline - steady::now(), steady::duration{}), why);
  if (!ticket.permit)
    co_return co_await refuse(
        fmt::format("no upstream slot: {} (limits.upstream_fetches)", upstream::to_string(why)));
  if (ex.client_gone()) co_return gone();  // it left while queued
  co_return ticket;
}

asio::awaitable<void> proxy_handler::forward(http::exchange& ex, connection_context& ctx,
                                             const config::site& site, std::string_view path,
                                             outcome& out, cache::forward_reason why) {
  const http::request_head& req = ex.request();
  auto ticket = co_await admit_fetch(ex, ctx, site, fetch_kind::pass, out);
  if (!ticket) co_return;
  auto pool = pool_for(ctx.rt, site);
  auto& counters = ctx.stats.site(site.name());
  out.cache = account::cache_outcome::pass;

  auto head = upstream::build_upstream_head(req, req.method, path, pool->host_header(), false);
  const bool chunked = head.chunked;
  const bool head_request = req.method == "HEAD";
  upstream::upstream_call call(*pool);
  call.forward_interim_to(&ex);
  auto t0 = steady::now();
  upstream_error err = co_await call.start(std::move(head.text), req.has_body ? &ex : nullptr,
                                           chunked, head_request);
  out.upstream_time = steady::now() - t0;
  if (err != upstream_error::none) {
    counters.upstream_requests[5].fetch_add(1, std::memory_order_relaxed);
    if (err != upstream_error::client) account::count_upstream_error(counters, err);
    note_upstream(site, path, {}, 0);
    out.cache = account::cache_outcome::local;
    out.status = status_for(err);
    out.why = fmt::format("upstream {}: {}", to_string(err), call.error_detail());
    if (err == upstream_error::client) {
      // A body that broke its framing, stalled or went over the limit gets its answer; a
      // client that went away mid-body gets none.
      if (auto refused = ex.body_refusal(); refused && !ex.head_sent()) {
        out.refused = refused;
        out.status = access::status_of(*refused);
        out.why = fmt::format("request body refused: {}", call.error_detail());
        co_await respond_local(ex, out.status,
                               fmt::format("request body: {}", access::to_string(*refused)));
        co_return;
      }
      ex.abort();
      co_return;
    }
    log::warn("site={} upstream {} failed ({}): {}", site.name(), site.upstream, to_string(err),
              call.error_detail());
    co_await respond_local(ex, out.status, "upstream " + std::string(to_string(err)));
    co_return;
  }
  out.upstream_status = call.status();
  counters.upstream_requests[static_cast<std::size_t>(account::code_class_index(call.status()))]
      .fetch_add(1, std::memory_order_relaxed);

  http::response_head rh;
  rh.status = call.status();
  rh.headers = call.response_headers();
  bool via_done = false;
  for (auto& h : rh.headers)
    if (h.name == "via") {
      h.value += ", 1.1 storecache";
      via_done = true;
    }
  if (!via_done) rh.headers.push_back({"via", "1.1 storecache"});
  if (cache_ && site.cache.enabled) {
    cache::cache_status cs;
    cs.fwd = why;
    cs.fwd_status = static_cast<int>(rh.status);
    rh.headers.push_back({"cache-status", cache::format_cache_status(cs)});
  }
  rh.content_length = call.content_length();
  out.status = rh.status;
  if (cache_ && !cache::method_is_safe(req.method))
    co_await invalidate(site, req.method, rh.status, path, rh.headers);

  co_await relay(ex, call, rh, site, path, counters, out);
}

namespace {

usage::content_class content_of(const header_list& response_headers, std::string_view path) {
  return usage::classify_content(
      find_header(response_headers, "content-type").value_or(std::string_view{}), path);
}

void record_upstream(usage::recorder* usage, std::string_view site, std::string_view path,
                     usage::content_class content, std::uint64_t bytes) {
  if (usage == nullptr) return;
  usage->record(usage::upstream_facts{.unix_seconds = std::time(nullptr),
                                      .site = site,
                                      .path = path,
                                      .content = content,
                                      .bytes = bytes});
}

}  // namespace

void proxy_handler::note_upstream(const config::site& site, std::string_view path,
                                  const header_list& response_headers, std::uint64_t bytes) {
  record_upstream(usage_, site.name(), path, content_of(response_headers, path), bytes);
}

proxy_handler::upstream_tally::upstream_tally(usage::recorder* usage, const config::site& site,
                                              std::string_view path,
                                              const header_list& response_headers,
                                              account::site_counters& counters)
    : usage_(usage),
      site_(usage ? site.name() : std::string()),
      path_(usage ? path.substr(0, path.find('?')) : std::string_view{}),
      content_(content_of(response_headers, path)),
      counters_(counters) {}

proxy_handler::upstream_tally::~upstream_tally() {
  record_upstream(usage_, site_, path_, content_, bytes_);
}

asio::awaitable<void> proxy_handler::relay(http::exchange& ex, upstream::upstream_call& call,
                                           const http::response_head& rh, const config::site& site,
                                           std::string_view path, account::site_counters& counters,
                                           outcome& out) {
  upstream_tally tally(usage_, site, path, rh.headers, counters);
  const bool no_body = !call.body_expected();
  if (co_await ex.send_head(rh, no_body)) co_return;  // client gone
  if (no_body) {
    call.done();
    co_return;
  }
  std::vector<char> buf(64 * 1024);
  for (;;) {
    upstream_error berr = upstream_error::none;
    std::size_t n = co_await call.read_body(asio::buffer(buf), berr);
    if (berr != upstream_error::none) {
      // Never present a short body as complete: the client sees a reset / truncated transfer.
      log::warn("site={} upstream {} failed mid-body after {} bytes ({}): {}", site.name(),
                site.upstream, out.bytes, to_string(berr), call.error_detail());
      out.why = fmt::format("upstream {} mid-body", to_string(berr));
      if (berr != upstream_error::client) account::count_upstream_error(counters, berr);
      ex.abort();
      co_return;
    }
    if (n == 0) break;
    tally.add(n);
    if (co_await ex.send_body(asio::buffer(buf.data(), n))) co_return;
    out.bytes += n;
  }
  call.done();
  co_await ex.finish();
}

}  // namespace storecache::proxy
