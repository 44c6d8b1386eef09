// The HTTP/1.1 front end (proxy/http1_session.cpp) on any bytes a device may send after the
// TLS handshake: Beast's parser with our header limits, then our own checks (exactly one
// Host, the field count, the framing of the body) and keep-alive, pipelining, body draining
// and the session's own refusals (400, 408, 431). The input is the byte stream, as is.
#include <cstdint>

#include "fuzz/session_harness.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static storecache::fuzz::session_harness harness;
  harness.run(storecache::proxy::run_http1_session, storecache::fuzz::as_text(data, size));
  return 0;
}
