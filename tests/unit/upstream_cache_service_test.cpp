// The daemon's committer: coroutines await cache_service::commit, everything waiting is
// committed together, each caller gets its own object's outcome on its own executor.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <thread>

#include "store_test_util.hpp"
#include "upstream/cache_service.hpp"

namespace asio = boost::asio;
using storecache::upstream::cache_service;

namespace {
std::shared_ptr<storecache::upstream::wake_gate> gate() {
  return std::make_shared<storecache::upstream::wake_gate>();
}
}  // namespace
using namespace store_test;

namespace {

storecache::config::cache_settings settings(const fs::path& dir) {
  storecache::config::cache_settings s;
  s.dir = dir;
  s.max_size = 256ull << 20;
  s.max_object_size = 16ull << 20;
  return s;
}

std::size_t size_of(int i) {
  static constexpr std::size_t sizes[] = {900, 30000, 5, 200000};
  return sizes[i % 4];
}

struct outcome {
  bool done = false;
  error_code ec;
  std::thread::id thread;
};

// One fill's end: its body written, then the commit awaited. Every 10th declares a longer body
// than it sends (a short upstream body): size_mismatch for that one alone.
asio::awaitable<void> fill_and_commit(cache_service& svc, int i, outcome& out) {
  const auto body = make_body(size_of(i), static_cast<unsigned>(i) + 1);
  const bool short_body = i % 10 == 7;
  auto h = svc.store().begin_insert("https://svc/" + std::to_string(i), {},
                                    body.size() + (short_body ? 1 : 0));
  REQUIRE(h.has_value());
  REQUIRE(!h->append(body));
  out.ec = co_await svc.commit(std::move(*h), make_head());
  out.thread = std::this_thread::get_id();
  out.done = true;
}

std::string metric_line(cache_service& svc, std::string_view name) {
  const std::string text = svc.render_metrics();
  const auto at = text.find("\n" + std::string(name) + " ");
  return at == std::string::npos ? "" : text.substr(at + 1, text.find('\n', at + 1) - at - 1);
}

}  // namespace

TEST_CASE("cache service: commits from many coroutines, batched, each with its outcome",
          "[storecache::upstream::cache_service]") {
  temp_dir dir("svc-commit");
  constexpr int n = 300;
  std::vector<outcome> outs(n);
  {
    storecache::upstream::cache_service svc(settings(dir.path), gate());
    asio::io_context io;
    for (int i = 0; i < n; ++i)
      asio::co_spawn(io, fill_and_commit(svc, i, outs[static_cast<std::size_t>(i)]),
                     asio::detached);
    io.run();  // returns only when every commit completed: a pending commit is outstanding work
    int stored = 0;
    for (int i = 0; i < n; ++i) {
      const auto& o = outs[static_cast<std::size_t>(i)];
      INFO("object " << i);
      REQUIRE(o.done);
      CHECK(o.thread == std::this_thread::get_id());  // resumed on its executor
      if (i % 10 == 7) {
        CHECK(o.ec == store_errc::size_mismatch);
        CHECK(svc.store().lookup("https://svc/" + std::to_string(i)).value().status ==
              lookup_status::miss);
      } else {
        CHECK(!o.ec);
        auto l = svc.store().lookup("https://svc/" + std::to_string(i)).value();
        REQUIRE(l.status == lookup_status::hit);
        CHECK(read_all(l.body).value() == make_body(size_of(i), static_cast<unsigned>(i) + 1));
        ++stored;
      }
    }
    CHECK(svc.store().counters().inserts == static_cast<std::uint64_t>(stored));
    CHECK(svc.backlog().objects == 0);
    CHECK(svc.backlog().bytes == 0);
    CHECK(metric_line(svc, "storecache_cache_commit_backlog_objects") ==
          "storecache_cache_commit_backlog_objects 0");
    // They were queued faster than one transaction with a sync takes: far fewer batches.
    const auto batches = metric_line(svc, "storecache_cache_commit_batches_total");
    REQUIRE(!batches.empty());
    CHECK(std::stoul(batches.substr(batches.find(' ') + 1)) <= n / 2);
  }
}

TEST_CASE("cache service: what is queued at stop is committed before the committer ends",
          "[storecache::upstream::cache_service]") {
  temp_dir dir("svc-stop");
  constexpr int n = 40;
  std::vector<outcome> outs(n);
  {
    storecache::upstream::cache_service svc(settings(dir.path), gate());
    asio::io_context io;
    for (int i = 0; i < n; ++i)
      asio::co_spawn(io, fill_and_commit(svc, i, outs[static_cast<std::size_t>(i)]),
                     asio::detached);
    io.poll();  // every coroutine has queued its commit and waits
    svc.finish_disk_work();
    CHECK(svc.backlog().objects == 0);  // committed, completions queued on io
    io.run();
    for (const auto& o : outs)
      CHECK(o.done);
  }
  // a restart finds them
  auto s = open_store(small_options(dir.path));
  int found = 0;
  for (int i = 0; i < n; ++i)
    found += s.lookup("https://svc/" + std::to_string(i)).value().status == lookup_status::hit;
  CHECK(found == n - n / 10);
}

TEST_CASE("cache service: over its bound the backlog pauses storing until it drained to half",
          "[storecache::upstream::cache_service]") {
  temp_dir dir("svc-bound");
  constexpr int n = 10;
  std::vector<outcome> outs(n);
  storecache::upstream::cache_service svc(settings(dir.path), gate(),
                                          {.objects = 6, .memory = 1ull << 30});
  asio::io_context io;
  {
    // Another index writer holds the write lock: the committer waits behind it.
    auto writer = svc.store().env().begin_write();
    REQUIRE(writer.has_value());
    for (int i = 0; i < n; ++i)
      if (i % 10 != 7)  // all of them complete bodies
        asio::co_spawn(io, fill_and_commit(svc, i, outs[static_cast<std::size_t>(i)]),
                       asio::detached);
    io.poll();
    CHECK(svc.backlog().objects == n - 1);
    CHECK(svc.storing_paused());
    CHECK(metric_line(svc, "storecache_cache_commit_backlog_full") ==
          "storecache_cache_commit_backlog_full 1");
    writer->abort();
  }
  io.run();
  CHECK(svc.backlog().objects == 0);
  CHECK(!svc.storing_paused());
  for (int i = 0; i < n; ++i)
    if (i % 10 != 7) CHECK(outs[static_cast<std::size_t>(i)].done);
  CHECK(svc.store().counters().inserts == n - 1);
}

TEST_CASE("cache service: a store error suspends storing, a store that succeeds resumes it",
          "[storecache::upstream::cache_service]") {
  temp_dir dir("svc-suspend");
  storecache::upstream::cache_service svc(settings(dir.path), gate());
  CHECK(!svc.storing_suspended());
  CHECK(metric_line(svc, "storecache_cache_storing_suspended") ==
        "storecache_cache_storing_suspended 0");
  const auto no_space = make_error_code(boost::system::errc::no_space_on_device);
  CHECK(storecache::cache::is_no_space(no_space));
  CHECK(!storecache::cache::is_no_space(make_error_code(boost::system::errc::io_error)));
  svc.storing_failed(no_space);
  CHECK(svc.storing_suspended());
  CHECK(svc.storing_paused());  // misses pass through for the first second
  CHECK(metric_line(svc, "storecache_cache_storing_suspended") ==
        "storecache_cache_storing_suspended 1");
  svc.storing_failed(no_space);  // again: still suspended (logged once), a longer pause
  CHECK(svc.storing_paused());
  svc.storing_succeeded();
  CHECK(!svc.storing_suspended());
  CHECK(!svc.storing_paused());
  CHECK(svc.counters().store_failures == 2);
}
