#include "account/upstream_report.hpp"

#include <ctime>

#include "usage/content_class.hpp"
#include "usage/recorder.hpp"

namespace storecache::account {

upstream_report::upstream_report(site_counters& counters, usage::recorder* usage, std::string site,
                                 std::string path, bool prefetch)
    : counters_(counters),
      usage_(usage),
      site_(std::move(site)),
      path_(std::move(path)),
      prefetch_(prefetch) {}

void upstream_report::response(unsigned status) {
  counters_.upstream_requests[static_cast<std::size_t>(code_class_index(status))].fetch_add(
      1, std::memory_order_relaxed);
}

void upstream_report::no_response(upstream::upstream_error e) {
  counters_.upstream_requests[5].fetch_add(1, std::memory_order_relaxed);
  count_upstream_error(counters_, e);
  exchange_done({}, 0);
}

void upstream_report::failed(upstream::upstream_error e) {
  count_upstream_error(counters_, e);
}

void upstream_report::body(std::size_t n) {
  counters_.upstream_bytes.fetch_add(n, std::memory_order_relaxed);
}

void upstream_report::exchange_done(const cache::header_list& response_headers,
                                    std::uint64_t bytes) {
  if (usage_ == nullptr) return;
  const auto content = usage::classify_content(
      cache::find_header(response_headers, "content-type").value_or(std::string_view{}), path_);
  usage_->record(usage::upstream_facts{.unix_seconds = std::time(nullptr),
                                       .site = site_,
                                       .path = path_,
                                       .content = content,
                                       .bytes = bytes,
                                       .prefetch = prefetch_});
}

}  // namespace storecache::account
