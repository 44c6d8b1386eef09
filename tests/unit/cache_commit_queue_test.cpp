// cache::commit_queue on its own: every commit's outcome reaches its caller, commits from
// several threads are batched, the bound reports full and caught up, stop() commits what is
// queued. Links storecache_cache alone.
#include <thread>

#include "cache/commit_queue.hpp"
#include "store_test_util.hpp"

using namespace store_test;

namespace {

pending_commit written(store& s, const std::string& primary, std::string_view body,
                       std::optional<std::uint64_t> declared) {
  auto h = s.begin_insert(primary, {}, declared);
  REQUIRE(h.has_value());
  REQUIRE(!h->append(body));
  return pending_commit{std::move(*h), make_head(), {}};
}

}  // namespace

TEST_CASE("commit_queue: 4 threads x 500 commits, each outcome to its caller, in batches",
          "[commit_queue]") {
  temp_dir dir("cq-many");
  auto s = open_store(small_options(dir.path));
  std::atomic<int> ok{0}, short_body{0};
  {
    commit_queue q(s, {});
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
      threads.emplace_back([&, t] {
        for (int i = 0; i < 500; ++i) {
          const auto body = make_body(700, i + 1);
          // every 50th declares more than it has: size_mismatch for that one alone
          const bool lie = i % 50 == 0;
          q.enqueue(written(s, "https://cq/" + std::to_string(t) + "/" + std::to_string(i), body,
                            lie ? body.size() + 1 : body.size()),
                    1000, [&, lie](error_code ec) {
                      if (lie && ec == store_errc::size_mismatch) ++short_body;
                      if (!lie && !ec) ++ok;
                    });
        }
      });
    for (auto& th : threads)
      th.join();
    q.stop();
    CHECK(q.batches() < 2000);  // batched, not one transaction each
    CHECK(q.snapshot().objects == 0);
  }
  CHECK(ok == 4 * 490);
  CHECK(short_body == 4 * 10);
  CHECK(s.counters().inserts == 4 * 490);
}

TEST_CASE("commit_queue: the bound reports full, then caught up at half", "[commit_queue]") {
  temp_dir dir("cq-bound");
  auto s = open_store(small_options(dir.path));
  std::vector<bool> changes;
  std::mutex mu;
  commit_queue q(s, {.objects = 1000000, .memory = 3000}, [&](bool full, const auto&) {
    std::lock_guard lock(mu);
    changes.push_back(full);
  });
  {
    // Hold the index's write lock so the committer cannot drain while we fill the queue.
    auto txn = s.env().begin_write();
    REQUIRE(txn.has_value());
    for (int i = 0; i < 4; ++i)
      q.enqueue(written(s, "https://cqb/" + std::to_string(i), make_body(10, i), 10), 1000,
                [](error_code) {});
    CHECK(q.full());
    CHECK(q.snapshot().memory == 4000);
  }
  q.stop();
  CHECK_FALSE(q.full());
  std::lock_guard lock(mu);
  CHECK(changes == std::vector<bool>{true, false});
}

TEST_CASE("commit_queue: after stop() a commit happens on the caller's thread", "[commit_queue]") {
  temp_dir dir("cq-stop");
  auto s = open_store(small_options(dir.path));
  commit_queue q(s, {});
  q.stop();
  std::thread::id where;
  q.enqueue(written(s, "https://cqs/1", "body", 4), 0, [&](error_code ec) {
    CHECK(!ec);
    where = std::this_thread::get_id();
  });
  CHECK(where == std::this_thread::get_id());
  CHECK(s.lookup("https://cqs/1").value().status == lookup_status::hit);
}
