// Reading one listing: a conditional GET on the runner's own upstream pool (an unchanged
// listing costs a 304 and its last parse is reused), the body capped at max_listing_size, then
// parsed (prefetch/listing.hpp). Each way it can fail is logged once per source and cause.
#include <fmt/format.h>

#include <array>

#include "account/metrics.hpp"
#include "account/upstream_report.hpp"
#include "cache/http_fields.hpp"
#include "prefetch/runner_parts.hpp"
#include "upstream/client.hpp"
#include "upstream/fetch_limiter.hpp"
#include "upstream/request_head.hpp"

namespace storecache::prefetch {

asio::awaitable<runner::listing_read> runner::read_listing(
    source_run& s, const config::site& site, const std::string& path,
    std::optional<source_kind> kind, const config::prefetch_source& src,
    const config::prefetch_settings& limits) {
  listing_read out;
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
      co_return out;
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
    co_return out;
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
    co_return out;
  }
  if (status != 200) {
    report->exchange_done(headers, 0);
    fail(listing_problem::status, fmt::format("the upstream answered {}", status));
    co_return out;
  }
  if (auto len = call.content_length(); len && *len > limits.max_listing_size) {
    report->exchange_done(headers, 0);
    fail(listing_problem::too_large,
         fmt::format("{} bytes, over [prefetch] max_listing_size ({} bytes)", *len,
                     limits.max_listing_size));
    co_return out;
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
      co_return out;
    }
    upstream::upstream_error e = upstream::upstream_error::none;
    std::size_t n = co_await call.read_body(asio::buffer(buf), e);
    if (e != upstream::upstream_error::none) {
      report->failed(e);
      report->exchange_done(headers, body.size());
      fail(listing_problem::unreachable,
           fmt::format("upstream {} mid-body: {}", upstream::to_string(e), call.error_detail()));
      co_return out;
    }
    if (n == 0) break;
    report->body(n);
    update(s, [n](readiness& r) { r.fetched_bytes += n; });
    if (body.size() + n > limits.max_listing_size) {
      report->exchange_done(headers, body.size() + n);
      fail(listing_problem::too_large,
           fmt::format("over [prefetch] max_listing_size ({} bytes)", limits.max_listing_size));
      co_return out;
    }
    body.append(buf.data(), n);
  }
  call.done();
  report->exchange_done(headers, body.size());

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
    fail(listing_problem::malformed, fmt::format("not a valid {}: {}", to_string(k), l.error));
    co_return out;
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
  co_return out;
}

}  // namespace storecache::prefetch
