// Everything known about one answered request when it is accounted (DESIGN step 7): the
// counters and histograms (metrics::record), the access log line (access_log::write) and the
// usage history (usage::recorder) all read this one record.
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

#include "account/metrics.hpp"
#include "config/config.hpp"
#include "http/exchange.hpp"
#include "usage/content_class.hpp"
#include "usage/device.hpp"

namespace storecache::account {

struct request_record {
  const http::request_head& req;
  const config::site* site = nullptr;  // null: no site matched (421, 400, 405)
  std::string_view path;               // as routed, query included (redact before logging)

  unsigned status = 0;
  std::uint64_t bytes = 0;  // response body bytes sent
  cache_outcome cache = cache_outcome::local;
  bool bytes_from_cache = false;
  unsigned upstream_status = 0;  // 0: no upstream response
  std::chrono::steady_clock::duration upstream_time{};
  std::string_view why;  // reason for local answers and failures ("" otherwise)

  // Durations from the moment the request head was handed to the handler.
  std::chrono::steady_clock::duration ttfb{};   // until the response head was sent (0: never)
  std::chrono::steady_clock::duration total{};  // until the response ended
  std::chrono::system_clock::time_point end_time;

  usage::content_class content = usage::content_class::other;
  usage::device dev;
  usage::tls_version tls = usage::tls_version::other;
  // The connection's verified device certificate as log_client_cert shows it ("": none).
  std::string_view client_cert{};
};

}  // namespace storecache::account
