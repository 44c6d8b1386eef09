// The HTTP/2 front end (proxy/http2_session.cpp, http2_stream.cpp) fed a client's frames:
// nghttp2's server session with our callbacks, stream table, request building (pseudo-header
// checks, header limits, 431), handler start and completion, request bodies and flow control,
// resets and the rapid-reset budget, GOAWAY and the connection's end.
//
// The client preface and an empty SETTINGS frame are always sent first. The input then is,
// when its first byte is 'r', the raw bytes that follow; otherwise a list of frames, each
// written as 5 bytes — type, flags, stream id (0..255), payload length (16-bit big-endian) —
// and its payload (cut short at the input's end, the length field following the cut), so the
// fuzzer spends its time on frame contents rather than on getting lengths right.
#include <cstdint>
#include <string>

#include "fuzz/session_harness.hpp"

namespace {

std::string frames_of(std::string_view in) {
  std::string out;
  while (in.size() >= 5) {
    const auto b = [&](std::size_t i) { return static_cast<std::uint8_t>(in[i]); };
    const std::uint8_t type = b(0), flags = b(1), stream = b(2);
    const std::size_t len = std::min<std::size_t>((std::size_t{b(3)} << 8) | b(4), in.size() - 5);
    out += static_cast<char>(len >> 16);
    out += static_cast<char>(len >> 8);
    out += static_cast<char>(len);
    out += static_cast<char>(type);
    out += static_cast<char>(flags);
    out += std::string("\0\0\0", 3);
    out += static_cast<char>(stream);
    out += in.substr(5, len);
    in.remove_prefix(5 + len);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static storecache::fuzz::session_harness harness;
  const std::string_view in = storecache::fuzz::as_text(data, size);
  std::string bytes = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  bytes += std::string("\0\0\0\x04\0\0\0\0\0", 9);  // SETTINGS, empty
  if (!in.empty() && in[0] == 'r')
    bytes += in.substr(1);
  else
    bytes += frames_of(in);
  harness.run(storecache::proxy::run_http2_session, bytes);
  return 0;
}
