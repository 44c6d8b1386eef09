// The one request path both protocols share: route, admit, forward (later: cache), account.
#pragma once

#include <boost/asio/awaitable.hpp>

#include "proxy/connection_context.hpp"
#include "proxy/exchange.hpp"

namespace storecache::proxy {

class request_handler {
 public:
  virtual ~request_handler() = default;
  // Answers one exchange completely (or aborts it). Never throws.
  virtual boost::asio::awaitable<void> handle(exchange& ex, connection_context& ctx) = 0;
};

}  // namespace storecache::proxy
