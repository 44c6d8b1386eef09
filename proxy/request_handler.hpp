// The one request path both protocols share: route, admit, forward (later: cache), account.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <string>

#include "access/request_framing.hpp"
#include "proxy/connection_context.hpp"
#include "proxy/http_names.hpp"

namespace storecache::proxy {

class request_handler {
 public:
  virtual ~request_handler() = default;
  // Answers one exchange completely (or aborts it). Never throws.
  virtual boost::asio::awaitable<void> handle(http::exchange& ex, connection_context& ctx) = 0;
  // Answers a request the front end refuses before handle() (a head that is malformed, too
  // large or too slow): the local answer, counted and logged as every other answer is.
  // ex.request() holds what is known of it (at least the protocol and the client).
  virtual boost::asio::awaitable<void> refuse(http::exchange& ex, connection_context& ctx,
                                              access::refusal why, std::string detail) = 0;
};

}  // namespace storecache::proxy
