// The HTTP/2 response state machine as a table: every (state, event) pair, so a change to
// the legal order of exchange calls shows up here first.
#include <catch2/catch.hpp>

#include "proxy/http2_stream_state.hpp"

using namespace storecache::proxy;
using st = h2_response_state;
using ev = h2_response_event;

namespace {

struct row {
  st from;
  ev event;
  std::optional<st> to;
};

// clang-format off
const row table[] = {
    {st::idle, ev::head, st::streaming},
    {st::idle, ev::head_end_stream, st::complete},
    {st::idle, ev::body, std::nullopt},
    {st::idle, ev::finish, std::nullopt},
    {st::idle, ev::abort, st::reset},
    {st::idle, ev::closed, st::reset},

    {st::streaming, ev::head, std::nullopt},
    {st::streaming, ev::head_end_stream, std::nullopt},
    {st::streaming, ev::body, st::streaming},
    {st::streaming, ev::finish, st::complete},
    {st::streaming, ev::abort, st::reset},
    {st::streaming, ev::closed, st::reset},

    {st::complete, ev::head, std::nullopt},
    {st::complete, ev::head_end_stream, std::nullopt},
    {st::complete, ev::body, std::nullopt},
    {st::complete, ev::finish, std::nullopt},
    {st::complete, ev::abort, st::complete},   // too late to cut: queued bytes must go out
    {st::complete, ev::closed, st::complete},

    {st::reset, ev::head, st::reset},
    {st::reset, ev::head_end_stream, st::reset},
    {st::reset, ev::body, st::reset},
    {st::reset, ev::finish, st::reset},
    {st::reset, ev::abort, st::reset},
    {st::reset, ev::closed, st::reset},
};
// clang-format on

}  // namespace

TEST_CASE("h2 response state: every transition", "[http2][state]") {
  for (const auto& r : table) {
    INFO(to_string(r.from) << " + event " << static_cast<int>(r.event));
    CHECK(next_state(r.from, r.event) == r.to);
  }
}

TEST_CASE("h2 response state: the table covers every pair", "[http2][state]") {
  CHECK(std::size(table) == 4 * 6);
}

TEST_CASE("h2 response state: a normal streamed response", "[http2][state]") {
  auto s = st::idle;
  for (ev e : {ev::head, ev::body, ev::body, ev::finish, ev::closed}) {
    auto n = next_state(s, e);
    REQUIRE(n);
    s = *n;
  }
  CHECK(s == st::complete);
}

TEST_CASE("h2 response state: usable at compile time", "[http2][state]") {
  static_assert(next_state(st::idle, ev::head_end_stream) == st::complete);
  static_assert(!next_state(st::idle, ev::body));
  SUCCEED();
}
