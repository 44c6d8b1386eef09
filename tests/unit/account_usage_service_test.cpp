// The daemon's usage history service: what a flush keeps, the 35-day retention applied by the
// flush itself, history that a reopened store still has, and the prefetch readiness the flush
// writes.
#include <ctime>

#include "account/usage_service.hpp"
#include "store_test_util.hpp"

using storecache::account::usage_service;
using namespace storecache::usage;
using store_test::open_store;
using store_test::small_options;
using store_test::temp_dir;

namespace {

request_facts hit_at(std::int64_t unix_seconds, std::uint64_t bytes) {
  request_facts r;
  r.unix_seconds = unix_seconds;
  r.site = "learn.example.com";
  r.path = "/v/intro.mp4";
  r.content = content_class::video;
  r.from_cache = true;
  r.bytes = bytes;
  return r;
}

}  // namespace

TEST_CASE("usage service: the flush keeps 35 days and drops what is older", "[usage][service]") {
  temp_dir dir("usage_service");
  const std::int64_t now = std::time(nullptr);
  const std::int64_t day = 24 * 3600;
  {
    auto st = open_store(small_options(dir.path));
    usage_service svc(st);
    svc.recorder().record(hit_at(now, 100));
    svc.recorder().record(hit_at(now - 30 * day, 200));  // inside the 35 days
    svc.recorder().record(hit_at(now - 34 * day, 400));  // inside, near the edge
    svc.recorder().record(hit_at(now - 36 * day, 800));  // past the retention
    svc.flush();
    CHECK(svc.errors() == 0);

    auto all = svc.last_hours(history_retention_hours);
    REQUIRE(all.has_value());
    CHECK(all->total.requests == 3);
    CHECK(all->total.bytes_from_cache == 700);
    auto month = svc.last_hours(31 * 24);
    REQUIRE(month.has_value());
    CHECK(month->total.bytes_from_cache == 300);
    auto today = svc.last_hours(1);
    REQUIRE(today.has_value());
    CHECK(today->total.bytes_from_cache == 100);

    // Nothing recorded since: a flush adds nothing.
    svc.flush();
    CHECK(svc.last_hours(history_retention_hours)->total.requests == 3);
  }
  // The history is in the store's LMDB: a reopened store (a restart) has it.
  auto st = open_store(small_options(dir.path));
  usage_service svc(st);
  auto again = svc.last_hours(history_retention_hours);
  REQUIRE(again.has_value());
  CHECK(again->total.requests == 3);
  CHECK(again->total.bytes_from_cache == 700);
}

TEST_CASE("usage service: the flush writes the prefetch readiness", "[usage][service]") {
  temp_dir dir("usage_service_prefetch");
  const std::int64_t now = std::time(nullptr);
  prefetch_state videos{.site = "learn.example.com",
                        .source = "videos",
                        .path = "/lists/videos.txt",
                        .kind = "url_list",
                        .listed = 4,
                        .fresh = 4,
                        .bytes = 4000,
                        .last_run_end = now - 60};
  {
    auto st = open_store(small_options(dir.path));
    usage_service svc(st);
    svc.recorder().set_prefetch({videos});
    // Not written before the flush.
    CHECK(svc.last_hours(1)->prefetch.sources.empty());
    // With prefetch traffic in the same flush.
    svc.recorder().record(upstream_facts{.unix_seconds = now,
                                         .site = "learn.example.com",
                                         .path = "/v/a.mp4",
                                         .content = content_class::video,
                                         .bytes = 4000,
                                         .prefetch = true});
    svc.flush();
    CHECK(svc.errors() == 0);
    auto s = svc.last_hours(1);
    REQUIRE(s.has_value());
    CHECK(s->total.prefetch_bytes == 4000);
    CHECK(s->total.upstream_bytes == 4000);
    REQUIRE(s->prefetch.sources.size() == 1);
    CHECK(s->prefetch.sources[0] == videos);
    CHECK(s->prefetch.saved_unix >= now);
    CHECK(s->prefetch.ready_count() == 1);
    // A flush without a new set keeps it.
    svc.flush();
    CHECK(svc.last_hours(1)->prefetch.sources.size() == 1);
  }
  {
    // `storecache report` reads it from the store's environment, read-only.
    auto ro = history::open_read_only(dir.path);
    REQUIRE(ro.has_value());
    auto p = ro->prefetch();
    REQUIRE(p.has_value());
    REQUIRE(p->sources.size() == 1);
    CHECK(p->sources[0] == videos);
  }
  // An empty set clears it at the next flush.
  auto st = open_store(small_options(dir.path));
  usage_service svc(st);
  CHECK(svc.last_hours(1)->prefetch.sources.size() == 1);
  svc.recorder().set_prefetch({});
  svc.flush();
  CHECK(svc.last_hours(1)->prefetch.sources.empty());
}
