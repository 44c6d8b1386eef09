// Upstream authorization: before a stored copy of protected content is served, the upstream
// is asked, with the device's own URL (signature parameters included) and its credentials
// (Cookie, Authorization), whether this device may have it. A HEAD: the WAN carries headers
// only, whatever the object's size. 2xx and 304 allow; any other answer denies (the caller
// then passes the device's own request through, unchanged and unstored); no answer fails
// closed (502/504). Used by path rules with authorize_with_upstream and by signed requests on
// sites without a verifier ([site.signed_urls] scheme = "upstream").
#include <fmt/format.h>

#include "log/log.hpp"
#include "proxy/proxy_handler.hpp"
#include "proxy/tls.hpp"
#include "upstream/request_head.hpp"

namespace storecache::proxy {

namespace {

enum : std::size_t { allowed_i, denied_i, failed_i, remembered_i };

std::string joined(const header_list& headers, std::string_view name) {
  std::string out;
  for (const auto& h : headers)
    if (h.name == name) {
      if (!out.empty()) out += "; ";
      out += h.value;
    }
  return out;
}

}  // namespace

asio::awaitable<proxy_handler::authorization> proxy_handler::authorize_with_upstream(
    http::exchange& ex, connection_context& ctx, const config::site& site, std::string_view path,
    const cache::object_meta* stored, outcome& out) {
  const http::request_head& req = ex.request();
  auto& counters = ctx.stats.site(site.name());
  auto count = [&](std::size_t i) {
    counters.authorizations[i].fetch_add(1, std::memory_order_relaxed);
  };

  const auto remember_for = site.cache.authorize_cache;
  access::authorization_cache::digest key{};
  if (remember_for.count() > 0) {
    key = access::authorization_cache::key(
        {site.name(), path, joined(req.headers, "cookie"), joined(req.headers, "authorization")});
    if (authorizations_.allowed(key, access::authorization_cache::clock::now())) {
      count(remembered_i);
      co_return authorization::allowed;
    }
  }

  // Counted as a cold miss of this connection and address (limits.misses_per_connection,
  // misses_per_client): a device flooding forged or rotating signatures gets no more
  // upstream authorizations at once than it could have cold misses.
  auto ticket = co_await admit_fetch(ex, ctx, site, fetch_kind::cold_miss, out);
  if (!ticket) co_return authorization::answered;
  auto pool = pool_for(ctx.rt, site);
  header_list validators;
  if (stored != nullptr) {
    if (auto etag = find_header(stored->head.headers, "etag"))
      validators.push_back({"if-none-match", std::string(*etag)});
    if (auto lm = find_header(stored->head.headers, "last-modified"))
      validators.push_back({"if-modified-since", std::string(*lm)});
  }
  auto head =
      upstream::build_upstream_head(req, "HEAD", path, pool->host_header(), true, validators);
  upstream::upstream_call call(*pool);
  const auto t0 = std::chrono::steady_clock::now();
  const upstream_error err = co_await call.start(std::move(head.text), nullptr, false, true);
  out.upstream_time += std::chrono::steady_clock::now() - t0;
  if (err != upstream_error::none) {
    count(failed_i);
    counters.upstream_requests[5].fetch_add(1, std::memory_order_relaxed);
    if (err == upstream_error::client) {
      out.why = "client gone during upstream authorization";
      ex.abort();
      co_return authorization::answered;
    }
    account::count_upstream_error(counters, err);
    out.cache = account::cache_outcome::local;
    out.status = status_for(err);
    out.why = fmt::format("upstream authorization {}: {}", to_string(err), call.error_detail());
    log::warn("site={} upstream authorization failed ({}): {}", site.name(), to_string(err),
              call.error_detail());
    co_await respond_local(ex, out.status,
                           "cannot authorize with the upstream: " + std::string(to_string(err)));
    co_return authorization::answered;
  }
  const unsigned status = call.status();
  counters.upstream_requests[static_cast<std::size_t>(account::code_class_index(status))].fetch_add(
      1, std::memory_order_relaxed);
  call.done();
  out.upstream_status = status;
  if ((status >= 200 && status < 300) || status == 304) {
    count(allowed_i);
    if (remember_for.count() > 0)
      authorizations_.remember(key, access::authorization_cache::clock::now() + remember_for);
    co_return authorization::allowed;
  }
  count(denied_i);
  co_return authorization::denied;
}

// Denied by the upstream: the device's own request goes to the upstream and its answer back,
// unstored.
asio::awaitable<void> proxy_handler::serve_denied(http::exchange& ex, connection_context& ctx,
                                                  const config::site& site, std::string_view path,
                                                  outcome& out) {
  ctx.stats.access_denied(site.name(), access::denial::upstream);
  co_await forward(ex, ctx, site, path, out, cache::forward_reason::request);
  out.why = "denied: upstream";
  out.denied = access::denial::upstream;
}

}  // namespace storecache::proxy
