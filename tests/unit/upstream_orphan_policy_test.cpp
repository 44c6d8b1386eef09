// The orphan-fill policy as a table: what an orphaned fill does for each kind of object.
#include <catch2/catch.hpp>

#include "upstream/orphan_policy.hpp"

using namespace storecache::upstream;
using v = orphan_verdict;

namespace {

constexpr std::uint64_t MiB = 1024 * 1024;

struct row {
  std::optional<std::uint64_t> length;
  std::uint64_t arrived;
  std::uint32_t requesters;
  bool background;
  v expected;
};

}  // namespace

TEST_CASE("orphaned fills: stop unless small, mostly there, wanted or background") {
  const orphan_policy p{.finish_below = 1 * MiB, .finish_after = 0.5, .wanted_by = 2};
  // clang-format off
  const row table[] = {
      {20 * MiB, 64 * 1024, 1, false, v::stop},          // the attack: a big video, reset at once
      {20 * MiB, 0,         1, false, v::stop},
      {20 * MiB, 10 * MiB - 1, 1, false, v::stop},       // just under half
      {20 * MiB, 10 * MiB,  1, false, v::mostly_there},
      {20 * MiB, 64 * 1024, 2, false, v::wanted},        // two devices asked
      {20 * MiB, 64 * 1024, 8, false, v::wanted},
      {1 * MiB,  0,         1, false, v::small},         // at the bound
      {1 * MiB + 1, 0,      1, false, v::stop},
      {0,        0,         1, false, v::small},
      {std::nullopt, 512 * 1024, 1, false, v::small},    // chunked, still under the bound
      {std::nullopt, 1 * MiB + 1, 1, false, v::stop},    // chunked, past it
      {20 * MiB, 0,         0, true,  v::background},    // a stale-while-revalidate refresh
  };
  // clang-format on
  for (const auto& r : table) {
    INFO("length " << (r.length ? std::to_string(*r.length) : "unknown") << " arrived " << r.arrived
                   << " requesters " << r.requesters << " background " << r.background);
    CHECK(judge_orphan(p, {r.length, r.arrived, r.requesters, r.background}) == r.expected);
  }
}

TEST_CASE("orphan policy switches") {
  const orphan_facts big{.length = 100 * MiB, .arrived = 99 * MiB, .requesters = 5};
  SECTION("finish_after = 1 and wanted_by = 0 turn those reasons off") {
    const orphan_policy p{.finish_below = 0, .finish_after = 1.0, .wanted_by = 0};
    CHECK(judge_orphan(p, big) == v::stop);
  }
  SECTION("finish_after = 0 finishes every fill") {
    const orphan_policy p{.finish_below = 0, .finish_after = 0.0, .wanted_by = 0};
    CHECK(judge_orphan(p, {.length = 100 * MiB, .arrived = 0, .requesters = 1}) == v::mostly_there);
  }
  SECTION("from the config's defaults") {
    storecache::config::cache_settings c;
    auto p = orphan_policy::from_config(c);
    CHECK(p.finish_below == 1 * MiB);
    CHECK(p.finish_after == 0.5);
    CHECK(p.wanted_by == 2);
  }
}
