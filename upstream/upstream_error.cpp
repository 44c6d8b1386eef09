#include "upstream/upstream_error.hpp"

namespace storecache::upstream {

std::string_view to_string(upstream_error e) {
  switch (e) {
    case upstream_error::none:
      return "none";
    case upstream_error::resolve:
      return "resolve";
    case upstream_error::connect:
      return "connect";
    case upstream_error::tls:
      return "tls";
    case upstream_error::timeout:
      return "timeout";
    case upstream_error::reset:
      return "reset";
    case upstream_error::bad_response:
      return "bad_response";
    case upstream_error::client:
      return "client";
  }
  return "unknown";
}

unsigned status_for(upstream_error e) {
  return e == upstream_error::timeout ? 504 : 502;
}

}  // namespace storecache::upstream
