// Reading one listing. A listing is an object of the run too (a player asks for its playlist
// or manifest first), so it is read through the cache: checked with the upstream every run
// (ensure_object with revalidate: an unchanged listing costs a 304 and its last parse is
// reused), then parsed from the stored copy, its size capped at max_listing_size. One upstream
// request per listing and run, not one to read it and one to store it. A listing the cache may
// not keep (no-store, the site's rules) is read by a conditional GET of its own. Each way it
// can fail is logged once per source and cause.
#include <fmt/format.h>

#include <array>
#include <span>

#include "account/metrics.hpp"
#include "account/upstream_report.hpp"
#include "cache/http_fields.hpp"
#include "cache/serve_plan.hpp"
#include "prefetch/runner_parts.hpp"
#include "upstream/client.hpp"
#include "upstream/fetch_limiter.hpp"
#include "upstream/request_head.hpp"

namespace storecache::prefetch {

namespace {

const cache::header_list no_request_fields;

}  // namespace

// The parse of a listing's body into its memo; false (and the memo invalid) when malformed.
bool runner::parse_listing(source_run& s, const config::site& site, const std::string& path,
                           std::optional<source_kind> kind, const config::prefetch_source& src,
                           const config::prefetch_settings& limits, std::string_view body,
                           const cache::header_list& headers, listing_read& out) {
  auto& memo = s.listings[path];
  const std::string cause = "listing " + path;
  const auto content_type = cache::find_header(headers, "content-type").value_or("");
  const source_kind k = kind ? *kind : detect_kind(body, content_type, path);
  parse_options options;
  options.source_path = path;
  options.site_name = site.name();
  options.max_entries = limits.max_entries;
  options.max_bytes = 4 * limits.max_listing_size;
  options.variants =
      src.hls_lowest_and_highest ? hls_variants::lowest_and_highest : hls_variants::all;
  listing l = parse(k, body, options);
  if (!l.error.empty()) {
    memo.valid = false;
    out.problem = listing_problem::malformed;
    out.error = fmt::format("listing {}: not a valid {}: {}", path, to_string(k), l.error);
    log_once(s, cause + " " + std::string(to_string(out.problem)), out.error);
    return false;
  }
  if (l.rejected_count > 0 && !l.rejected.empty())
    log_once(s, cause + " rejected",
             fmt::format("listing {}: {} reference(s) not fetched, e.g. {}", path, l.rejected_count,
                         l.rejected.front()));
  clear_cause(s, cause + " ");
  memo.valid = true;
  memo.etag = std::string(cache::find_header(headers, "etag").value_or(""));
  memo.last_modified = std::string(cache::find_header(headers, "last-modified").value_or(""));
  memo.kind = k;
  memo.objects = std::move(l.objects);
  memo.sources = std::move(l.sources);
  memo.rejected = l.rejected_count;
  memo.truncated = l.truncated;
  return true;
}

asio::awaitable<runner::listing_read> runner::read_listing(
    source_run& s, const config::site& site, const std::string& path,
    std::optional<source_kind> kind, const config::prefetch_source& src,
    std::shared_ptr<const config::config> cfg) {
  const auto& limits = cfg->prefetch;
  listing_read out;
  auto& memo = s.listings[path];
  const std::string cause = "listing " + path;
  auto fail = [&](listing_problem p, std::string text) {
    out.problem = p;
    out.error = "listing " + path + ": " + text;
    log_once(s, cause + " " + std::string(to_string(p)), out.error);
  };
  // A listing that trickles in (a byte now and then, each within the read timeout) is given up
  // after [prefetch] listing_timeout in all, so that it cannot hold the source's run for hours.
  const object_bounds bounds{.revalidate = true,
                             .max_bytes = limits.max_listing_size,
                             .deadline = steady::now() + limits.listing_timeout};
  auto res = co_await ensure_object(s, site, src, cfg, path, bounds);
  if (res.k == object_result::cut) {
    out.cut = true;
    co_return out;
  }
  out.object = res;  // (not storable: the objects' pass reports it so, and asks no more)
  if (res.k == object_result::failed && res.not_storable) {
    co_await read_listing_direct(s, site, path, kind, src, limits, out);
    co_return out;
  }
  if (res.too_large) {
    fail(listing_problem::too_large,
         fmt::format("{} bytes, over [prefetch] max_listing_size ({} bytes)", res.came,
                     limits.max_listing_size));
    co_return out;
  }
  if (res.timed_out) {
    fail(listing_problem::unreachable,
         fmt::format("not read whole within [prefetch] listing_timeout ({} s; {} bytes came)",
                     limits.listing_timeout.count(), res.came));
    co_return out;
  }
  if (res.k == object_result::failed) {
    fail(res.status != 0 ? listing_problem::status : listing_problem::unreachable, res.error);
    co_return out;
  }
  if (res.k == object_result::revalidated && memo.valid) {
    out.not_modified = true;
    update(s, [](readiness& r) { ++r.listing_not_modified; });
    clear_cause(s, cause);
    co_return out;
  }
  // The stored copy: just fetched, confirmed by a 304, or one a device's fill just brought.
  auto stored = cache::find_stored(cache_.store(), res.primary, no_request_fields);
  if (!stored) {  // evicted or replaced in between: the next run reads it again
    fail(listing_problem::unreachable, "its stored copy went before it was read");
    co_return out;
  }
  if (stored->meta.body_size > limits.max_listing_size) {
    fail(listing_problem::too_large,
         fmt::format("{} bytes, over [prefetch] max_listing_size ({} bytes)",
                     stored->meta.body_size, limits.max_listing_size));
    co_return out;
  }
  std::string body(stored->meta.body_size, '\0');
  std::size_t got = 0;
  while (got < body.size()) {
    auto n = stored->body.read(got, std::span<char>(body.data() + got, body.size() - got));
    if (!n || *n == 0) {
      fail(listing_problem::unreachable,
           fmt::format("its stored copy could not be read ({})",
                       n ? std::string("short") : n.error().message()));
      co_return out;
    }
    got += *n;
  }
  parse_listing(s, site, path, kind, src, limits, body, stored->meta.head.headers, out);
  co_return out;
}

asio::awaitable<void> runner::read_listing_direct(source_run& s, const config::site& site,
                                                  const std::string& path,
                                                  std::optional<source_kind> kind,
                                                  const config::prefetch_source& src,
                                                  const config::prefetch_settings& limits,
                                                  listing_read& out) {
  auto& memo = s.listings[path];
  auto pool = pool_for(site);
  auto report = std::make_shared<account::upstream_report>(stats_.site(site.name()), usage_,
                                                           site.name(), path, /*prefetch=*/true);
  cache::header_list validators;
  if (memo.valid && !memo.etag.empty()) validators.push_back({"if-none-match", memo.etag});
  if (memo.valid && !memo.last_modified.empty())
    validators.push_back({"if-modified-since", memo.last_modified});
  auto head = upstream::build_upstream_head(request_for(site, path), "GET", path,
                                            pool->host_header(), true, validators);
  // Device misses first, as for the objects: a slot of [limits] upstream_fetches only if one
  // is free now, never queued before them; else wait and try again while the run may go on.
  auto permit = limiter_.try_acquire(site.name());
  while (!permit) {
    if (stopping_ || s.removed || !window_open(src)) {
      out.cut = true;
      co_return;
    }
    co_await sleep_for(std::chrono::milliseconds(500));
    permit = limiter_.try_acquire(site.name());
  }
  upstream::upstream_call call(*pool);
  call.classify([] { return upstream::fetch_class::background; });
  const std::string cause = "listing " + path;
  auto fail = [&](listing_problem p, std::string text) {
    out.problem = p;
    out.error = "listing " + path + ": " + text;
    log_once(s, cause + " " + std::string(to_string(p)), out.error);
  };
  auto err = co_await call.start(std::move(head.text), nullptr, false, false);
  if (err != upstream::upstream_error::none) {
    report->no_response(err);
    fail(listing_problem::unreachable,
         fmt::format("upstream {}: {}", upstream::to_string(err), call.error_detail()));
    co_return;
  }
  const unsigned status = call.status();
  report->response(status);
  const auto headers = call.response_headers();
  if (status == 304 && memo.valid) {
    call.done();
    report->exchange_done(headers, 0);
    out.not_modified = true;
    update(s, [](readiness& r) { ++r.listing_not_modified; });
    clear_cause(s, cause);
    co_return;
  }
  if (status != 200) {
    report->exchange_done(headers, 0);
    fail(listing_problem::status, fmt::format("the upstream answered {}", status));
    co_return;
  }
  if (auto len = call.content_length(); len && *len > limits.max_listing_size) {
    report->exchange_done(headers, 0);
    fail(listing_problem::too_large,
         fmt::format("{} bytes, over [prefetch] max_listing_size ({} bytes)", *len,
                     limits.max_listing_size));
    co_return;
  }
  std::string body;
  std::array<char, 16384> buf;
  // A listing that trickles in (a byte now and then, each within the read timeout) gives up
  // after [prefetch] listing_timeout in all, so that it cannot hold the source's run for hours.
  const auto deadline = steady::now() + limits.listing_timeout;
  for (;;) {
    if (steady::now() > deadline || stopping_) {
      report->exchange_done(headers, body.size());
      fail(listing_problem::unreachable,
           fmt::format("not read whole within [prefetch] listing_timeout ({} s; {} bytes came)",
                       limits.listing_timeout.count(), body.size()));
      co_return;
    }
    upstream::upstream_error e = upstream::upstream_error::none;
    std::size_t n = co_await call.read_body(asio::buffer(buf), e);
    if (e != upstream::upstream_error::none) {
      report->failed(e);
      report->exchange_done(headers, body.size());
      fail(listing_problem::unreachable,
           fmt::format("upstream {} mid-body: {}", upstream::to_string(e), call.error_detail()));
      co_return;
    }
    if (n == 0) break;
    report->body(n);
    update(s, [n](readiness& r) { r.fetched_bytes += n; });
    if (body.size() + n > limits.max_listing_size) {
      report->exchange_done(headers, body.size() + n);
      fail(listing_problem::too_large,
           fmt::format("over [prefetch] max_listing_size ({} bytes)", limits.max_listing_size));
      co_return;
    }
    body.append(buf.data(), n);
  }
  call.done();
  report->exchange_done(headers, body.size());

  parse_listing(s, site, path, kind, src, limits, body, headers, out);
}

}  // namespace storecache::prefetch
