// The fill on its own: readers and the orphan decision, the in-flight table replacing an
// abandoned fill, body_done before the commit, and waiters on other threads' io_contexts.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <thread>

#include "upstream/fill.hpp"

using namespace storecache;
using namespace storecache::upstream;
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

const auto client1 = asio::ip::make_address("192.0.2.1");
const auto client2 = asio::ip::make_address("192.0.2.2");
constexpr std::uint64_t MiB = 1024 * 1024;
const orphan_policy policy{.finish_below = MiB, .finish_after = 0.5, .wanted_by = 2};

cache::stored_head head200() {
  cache::stored_head h;
  h.status = 200;
  return h;
}

// A fill of a big object whose leader (client1) has left.
inflight_table::joined orphaned_fill(inflight_table& table) {
  auto j = table.join_or_create("k", client1);
  j.f->publish_head(head200(), "", 20 * MiB);
  j.reader.reset();
  return j;
}

// The writer's pause, as the pump runs it: `back` gets wait_for_reader's answer.
void pause_writer(asio::io_context& io, fill& f, std::chrono::milliseconds grace,
                  std::optional<bool>& back) {
  asio::co_spawn(
      io, [&f, grace]() -> asio::awaitable<bool> { co_return co_await f.wait_for_reader(grace); },
      [&back](std::exception_ptr, bool b) { back = b; });
}

}  // namespace

TEST_CASE("a fill with a reader is never judged; without one the policy decides") {
  inflight_table table(std::make_shared<wake_gate>());
  auto j = table.join_or_create("k", client1);
  REQUIRE(j.created);
  j.f->publish_head(head200(), "", 20 * MiB);
  j.f->advance(std::string(64 * 1024, 'x'));
  CHECK(j.f->readers() == 1);
  CHECK_FALSE(j.f->judge_if_orphaned(policy));
  j.reader.reset();
  CHECK(j.f->readers() == 0);
  auto v = j.f->judge_if_orphaned(policy);
  REQUIRE(v);
  CHECK(*v == orphan_verdict::stop);
  CHECK(j.f->snapshot().st == fill::state::streaming);  // judging changes nothing
  CHECK(j.f->abandon_if_orphaned(policy));
  CHECK(j.f->snapshot().st == fill::state::abandoned);

  SECTION("a client arriving now gets a new fill, not the abandoned one") {
    auto k = table.join_or_create("k", client2);
    CHECK(k.created);
    CHECK(k.f != j.f);
    table.remove(j.f);  // the old pump's remove leaves the new fill in place
    CHECK(table.find("k") == k.f);
  }
}

TEST_CASE("two devices asking make an orphan worth finishing") {
  inflight_table table(std::make_shared<wake_gate>());
  auto a = table.join_or_create("k", client1);
  auto b = table.join_or_create("k", client2);
  auto c = table.join_or_create("k", client2);  // same address again: still two requesters
  CHECK_FALSE(b.created);
  CHECK(a.f == b.f);
  CHECK(a.f->readers() == 3);
  CHECK(a.f->requesters() == 2);
  a.f->publish_head(head200(), "", 20 * MiB);
  a.reader.reset();
  b.reader.reset();
  c.reader.reset();
  auto v = a.f->judge_if_orphaned(policy);
  REQUIRE(v);
  CHECK(*v == orphan_verdict::wanted);
  CHECK(a.f->snapshot().st == fill::state::streaming);
}

TEST_CASE("a paused writer resumes when a reader comes back, or gives up after the grace") {
  inflight_table table(std::make_shared<wake_gate>());
  auto j = orphaned_fill(table);
  asio::io_context io;
  std::optional<bool> back;
  pause_writer(io, *j.f, 5s, back);
  io.poll();
  CHECK_FALSE(back);
  auto k = table.join_or_create("k", client1);  // the same player's next range
  CHECK_FALSE(k.created);
  io.run_for(1s);
  REQUIRE(back);
  CHECK(*back);
  CHECK_FALSE(j.f->abandon_if_orphaned(policy));  // it has a reader

  k.reader.reset();
  back.reset();
  pause_writer(io, *j.f, 50ms, back);
  io.restart();
  io.run_for(1s);
  REQUIRE(back);
  CHECK_FALSE(*back);
  CHECK(j.f->abandon_if_orphaned(policy));
}

TEST_CASE("a device that joins and leaves during the pause still counts (wanted)") {
  inflight_table table(std::make_shared<wake_gate>());
  auto j = orphaned_fill(table);
  asio::io_context io;
  std::optional<bool> back;
  pause_writer(io, *j.f, 5s, back);
  io.poll();
  table.join_or_create("k", client2);  // joins and leaves before the writer runs
  io.run_for(1s);
  REQUIRE(back);
  CHECK(*back);
  CHECK(*j.f->judge_if_orphaned(policy) == orphan_verdict::wanted);
  CHECK_FALSE(j.f->abandon_if_orphaned(policy));
}

TEST_CASE("a background fill has no reader and always finishes") {
  inflight_table table(std::make_shared<wake_gate>());
  auto j = table.join_or_create("k", client1, true);
  CHECK(j.created);
  CHECK(j.f->readers() == 0);
  j.f->publish_head(head200(), "", 20 * MiB);
  CHECK(*j.f->judge_if_orphaned(policy) == orphan_verdict::background);
  auto again = table.join_or_create("k", client1, true);
  CHECK_FALSE(again.created);  // one refresh at a time
}

TEST_CASE("a background fill its starter gave up is judged as any fill nobody reads") {
  inflight_table table(std::make_shared<wake_gate>());
  auto big = table.join_or_create("big", client1, true);
  big.f->publish_head(head200(), "", 30 * MiB);  // a "listing" that is a video
  CHECK(*big.f->judge_if_orphaned(policy) == orphan_verdict::background);
  big.f->unwanted();
  CHECK(*big.f->judge_if_orphaned(policy) == orphan_verdict::stop);
  CHECK(big.f->abandon_if_orphaned(policy));

  auto small = table.join_or_create("small", client1, true);
  small.f->publish_head(head200(), "", 3000);  // a listing that trickles: cheap to finish
  small.f->unwanted();
  CHECK(*small.f->judge_if_orphaned(policy) == orphan_verdict::small);
}

TEST_CASE("readers on other threads are woken by the writer and see body_done") {
  auto gate = std::make_shared<wake_gate>();
  inflight_table table(gate);
  auto j = table.join_or_create("k", client1);
  const std::string body(300 * 1024, 'b');  // past the in-memory prefix: only its start is kept
  std::atomic<int> finished{0};
  std::vector<std::unique_ptr<asio::io_context>> ios;
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    ios.push_back(std::make_unique<asio::io_context>(1));
    auto r = table.join_or_create("k", client2);
    asio::co_spawn(
        *ios.back(),
        [f = r.f, rd = std::move(r.reader), &finished]() mutable -> asio::awaitable<void> {
          std::uint64_t pos = 0;
          for (;;) {
            auto snap = f->snapshot();
            if (snap.st == fill::state::body_done && pos >= snap.available) break;
            if (snap.available > pos) {
              pos = snap.available;
              continue;
            }
            co_await f->wait(pos, 5s);
          }
          ++finished;
        },
        asio::detached);
    threads.emplace_back([io = ios.back().get()] { io->run(); });
  }
  std::this_thread::sleep_for(20ms);
  j.f->publish_head(head200(), "", body.size());
  for (std::size_t off = 0; off < body.size(); off += 16 * 1024)
    j.f->advance(std::string_view(body).substr(off, 16 * 1024));
  j.f->finish_body();
  for (auto& t : threads)
    t.join();
  CHECK(finished == 3);
  CHECK(j.f->snapshot().available == body.size());
}

TEST_CASE("a waiter whose io_context is gone is skipped, and a closed gate posts nothing") {
  auto gate = std::make_shared<wake_gate>();
  inflight_table table(gate);
  auto j = table.join_or_create("k", client1);
  {
    asio::io_context io;
    asio::co_spawn(
        io, [f = j.f]() -> asio::awaitable<void> { co_await f->wait(0, 10s); }, asio::detached);
    io.poll();  // waiting now
    gate->close();
  }                                      // io destroyed with the waiting frame; its slot expired
  j.f->publish_head(head200(), "", 10);  // wakes nobody, posts nowhere
  j.f->finish(fill::state::failed);
  CHECK(j.f->snapshot().st == fill::state::failed);
}

TEST_CASE("an unstored fill serves its readers from memory, paced by the slowest one") {
  inflight_table table(std::make_shared<wake_gate>());
  auto a = table.join_or_create("k", client1);
  auto b = table.join_or_create("k", client2);
  auto& f = *a.f;
  f.publish_head(head200(), "", 8 * MiB);
  const std::uint64_t stored = 100 * 1024;  // written before storing failed (here: the prefix)
  f.advance(std::string(stored, 'a'));
  f.pass_through();
  CHECK(f.passing_through());
  // A newcomer does not join a fill whose middle may be gone: it gets a fetch of its own.
  auto c = table.join_or_create("k", client1);
  CHECK(c.created);
  CHECK(c.f != a.f);

  const std::string chunk(64 * 1024, 'm');
  std::uint64_t available = stored;
  while (f.memory_bytes() < fill::window_limit) {
    f.advance(chunk);
    available += chunk.size();
  }
  CHECK(f.memory_bytes() == fill::window_limit);  // bounded: the writer waits from here on
  std::vector<char> out(128 * 1024);
  auto got = a.reader.read(0, out);
  CHECK(got.n == stored);  // from what was written
  CHECK_FALSE(got.lost);
  got = a.reader.read(stored, out);  // from memory
  CHECK(got.n == chunk.size());
  CHECK(out[0] == 'm');

  asio::io_context io;
  std::optional<bool> room;
  auto wait_for_room = [&](std::chrono::milliseconds stall) {
    room.reset();
    asio::co_spawn(
        io, [&f, stall]() -> asio::awaitable<bool> { co_return co_await f.wait_for_room(stall); },
        [&room](std::exception_ptr, bool r) { room = r; });
  };
  wait_for_room(10s);
  io.run_for(50ms);
  CHECK_FALSE(room);              // b still needs the first byte kept in memory
  a.reader.read(available, out);  // a is at the front: it holds nothing back
  io.restart();
  io.run_for(50ms);
  CHECK_FALSE(room);
  b.reader.read(stored + chunk.size(), out);  // b moves past the first chunk: it can go
  io.restart();
  io.run_for(1s);
  REQUIRE(room);
  CHECK(*room);
  CHECK(f.memory_bytes() == fill::window_limit - chunk.size());

  // b stops reading: after `stall` the writer goes on without it, and b's next read is lost.
  f.advance(chunk);
  available += chunk.size();
  wait_for_room(20ms);
  io.restart();
  io.run_for(2s);
  REQUIRE(room);
  CHECK_FALSE(*room);
  CHECK(f.memory_bytes() < fill::window_limit);
  got = b.reader.read(stored + chunk.size(), out);
  CHECK(got.lost);
  CHECK(got.n == 0);
  got = a.reader.read(available - chunk.size(), out);  // a, near the front, goes on
  CHECK_FALSE(got.lost);
  CHECK(got.n == chunk.size());

  // b, left behind, holds nothing back any more: a alone paces the writer.
  while (f.memory_bytes() < fill::window_limit) {
    f.advance(chunk);
    available += chunk.size();
  }
  a.reader.read(available - chunk.size(), out);
  wait_for_room(10s);
  io.restart();
  io.run_for(1s);
  REQUIRE(room);
  CHECK(*room);

  // Readers below the written part still read it; and when every reader has gone, nothing
  // is held for them.
  got = b.reader.read(10, out);
  CHECK(got.n == stored - 10);
  a.reader.reset();
  b.reader.reset();
  wait_for_room(10s);
  io.restart();
  io.run_for(1s);
  REQUIRE(room);
  CHECK(*room);
  CHECK(f.memory_bytes() == 0);
}
