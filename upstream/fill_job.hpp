// The upstream side of a fill, owning what it needs. lead_fill() sends the request and decides
// from the response head (304, not storable, storable); from then on a detached pump owns the
// fill: it reads the body into the fill and the store, pausing or stopping when no client reads
// it (orphan_policy), then commits. Everything the pump uses is held by value or shared_ptr
// (the site through its config, the pool, the report, the WAN slots), never by reference to
// the request that started it: that request may end first, and a reload may drop the handler
// and the config. The cache service is the one exception, by pointer: the server destroys its
// workers, and with them every pump, before it.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "cache/policy.hpp"
#include "cache/store_meta.hpp"
#include "config/config.hpp"
#include "http/exchange.hpp"
#include "upstream/cache_service.hpp"
#include "upstream/client.hpp"
#include "upstream/fill.hpp"
#include "upstream/orphan_policy.hpp"
#include "upstream/upstream_error.hpp"

namespace storecache::upstream {

// What an upstream fetch reports as it goes, for the counters and the usage history. Held by
// the fetch (shared), so it outlives the request that started it; implemented above this layer
// (account::upstream_report).
class fetch_report {
 public:
  virtual ~fetch_report() = default;
  virtual void response(unsigned status) = 0;      // a response head arrived
  virtual void no_response(upstream_error e) = 0;  // the request failed before one
  virtual void failed(upstream_error e) = 0;       // the response failed mid-body
  virtual void body(std::size_t n) = 0;            // body bytes, as they arrive
  // The exchange is over, however it ended: its body bytes, for the usage history.
  virtual void exchange_done(const cache::header_list& response_headers, std::uint64_t bytes) = 0;
};

struct fill_request {
  std::shared_ptr<fill> f;
  std::string path;  // as routed, query included
  std::shared_ptr<const config::site> site;
  std::shared_ptr<upstream_pool> pool;
  std::shared_ptr<fetch_report> report;
  std::optional<cache::object_meta> stored;  // revalidating it: its validators are sent
  cache::site_policy policy;
  orphan_policy orphans;
  // The WAN slots this fetch holds (limiter permit, miss slots): released when its upstream
  // exchange ends. Opaque here: the front end decides what a request must hold.
  std::shared_ptr<void> hold;
  http::exchange* interim_to = nullptr;  // the leading device's 103s; never stored
};

struct lead_result {
  enum kind { streaming, not_shared, not_modified, failed } k = failed;
  std::unique_ptr<upstream_call> call;  // not_shared: the response to pass through
  std::shared_ptr<void> hold;           // not_shared: its WAN slots, kept while it is read
  upstream_error err = upstream_error::none;
  unsigned status = 0;
  // streaming: fields for the leading device only (its Set-Cookie on authorized content).
  cache::header_list own_headers;
};

// Leads the fill r.f: the upstream request, then (storable) the pump on `ex`. The fill is
// finished and leaves the in-flight table here unless it streams.
boost::asio::awaitable<lead_result> lead_fill(cache_service& svc, boost::asio::any_io_executor ex,
                                              const http::request_head& req, fill_request r);

}  // namespace storecache::upstream
