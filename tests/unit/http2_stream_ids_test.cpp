// client_stream_ids: which lower HEADERS frames open a stream that was never used (RFC 9113
// 5.1.1), within a bounded memory.
#include "proxy/http2_stream_ids.hpp"

#include <catch2/catch.hpp>

using storecache::proxy::client_stream_ids;
using kind = client_stream_ids::kind;

TEST_CASE("a higher identifier is a new stream, a lower one unused unless it was opened") {
  client_stream_ids ids;
  CHECK(ids.classify(1) == kind::new_stream);
  ids.opened(1);
  ids.opened(5);  // 3 skipped: implicitly closed, never used
  CHECK(ids.highest() == 5);
  CHECK(ids.classify(7) == kind::new_stream);
  CHECK(ids.classify(5) == kind::used);
  CHECK(ids.classify(3) == kind::lower_unused);
  CHECK(ids.classify(1) == kind::used);
}

TEST_CASE("opening a lower or equal identifier again changes nothing") {
  client_stream_ids ids;
  ids.opened(9);
  ids.opened(3);
  CHECK(ids.highest() == 9);
  CHECK(ids.classify(3) == kind::lower_unused);
  CHECK(ids.classify(9) == kind::used);
}

TEST_CASE("memory is bounded: identifiers more than 1,024 streams back count as unused") {
  client_stream_ids ids;
  for (std::int32_t id = 1; id <= 2 * 5000 + 1; id += 2)
    ids.opened(id);
  const std::int32_t top = 2 * 5000 + 1;
  CHECK(ids.classify(top) == kind::used);
  CHECK(ids.classify(top - 2 * 1023) == kind::used);
  CHECK(ids.classify(top - 2 * 1024) == kind::lower_unused);
  CHECK(ids.classify(1) == kind::lower_unused);
}

TEST_CASE("a jump past the remembered range forgets everything below it") {
  client_stream_ids ids;
  ids.opened(1);
  ids.opened(3);
  ids.opened(3 + 2 * 2000);
  CHECK(ids.classify(3) == kind::lower_unused);
  CHECK(ids.classify(3 + 2 * 2000) == kind::used);
  CHECK(ids.classify(3 + 2 * 1999) == kind::lower_unused);
  // The largest identifier a client may use (2^31 - 1) does not overflow.
  ids.opened(0x7fffffff);
  CHECK(ids.classify(0x7fffffff) == kind::used);
  CHECK(ids.classify(0x7fffffff - 2) == kind::lower_unused);
}
