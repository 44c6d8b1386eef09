#include "http/exchange.hpp"

namespace storecache::http {

std::string_view to_string(protocol p) {
  return p == protocol::http2 ? "h2" : "http/1.1";
}

}  // namespace storecache::http
