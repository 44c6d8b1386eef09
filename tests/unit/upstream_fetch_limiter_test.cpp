// The fetch limiter on real io_contexts: caps in total and per site, FIFO hand-over, bounded
// queue, timeouts, waiters on other threads, and nothing left behind by a destroyed waiter.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>
#include <thread>
#include <vector>

#include "upstream/fetch_limiter.hpp"

using namespace storecache::upstream;
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

std::shared_ptr<wake_gate> gate() {
  return std::make_shared<wake_gate>();
}

// Runs one acquire on io and stores its result.
struct attempt {
  fetch_limiter::permit permit;
  fetch_limiter::refusal why = fetch_limiter::refusal::none;
  bool done = false;
};

void spawn_acquire(asio::io_context& io, fetch_limiter& l, std::string site,
                   std::chrono::milliseconds timeout, attempt& a) {
  asio::co_spawn(
      io,
      [&l, site, timeout, &a]() -> asio::awaitable<void> {
        a.permit = co_await l.acquire(site, timeout, a.why);
        a.done = true;
      },
      asio::detached);
}

}  // namespace

TEST_CASE("caps in total and per site") {
  fetch_limiter l({.total = 3, .per_site = 2, .queue = 10}, gate());
  auto a1 = l.try_acquire("a");
  auto a2 = l.try_acquire("a");
  CHECK(a1);
  CHECK(a2);
  CHECK_FALSE(l.try_acquire("a"));  // site cap
  auto b1 = l.try_acquire("b");
  CHECK(b1);
  CHECK_FALSE(l.try_acquire("b"));  // total cap
  CHECK(l.snapshot().active == 3);
  a1.reset();
  CHECK(l.snapshot().active == 2);
  CHECK(l.try_acquire("b"));  // released again at once (temporary)
  CHECK(l.snapshot().active == 2);
}

TEST_CASE("a released slot goes to the oldest waiter that fits") {
  asio::io_context io;
  fetch_limiter l({.total = 2, .per_site = 1, .queue = 10}, gate());
  auto a = l.try_acquire("a");
  auto b = l.try_acquire("b");
  attempt wa1, wb, wa2;
  spawn_acquire(io, l, "a", 5s, wa1);
  spawn_acquire(io, l, "b", 5s, wb);
  spawn_acquire(io, l, "a", 5s, wa2);
  io.poll();
  CHECK(l.snapshot().waiting == 3);
  b.reset();  // only a "b" waiter fits (site a is at its cap)
  io.poll();
  CHECK(wb.done);
  CHECK(wb.permit);
  CHECK_FALSE(wa1.done);
  a.reset();
  io.poll();
  CHECK(wa1.done);
  CHECK_FALSE(wa2.done);  // FIFO within the site
  wa1.permit.reset();
  io.poll();
  CHECK(wa2.done);
  const auto s = l.snapshot();
  CHECK(s.waiting == 0);
  CHECK(s.queued == 3);
  CHECK(s.active == 2);
}

TEST_CASE("the queue is bounded and waits time out") {
  asio::io_context io;
  fetch_limiter l({.total = 1, .per_site = 1, .queue = 2}, gate());
  auto held = l.try_acquire("a");
  attempt w1, w2, w3;
  spawn_acquire(io, l, "a", 50ms, w1);
  spawn_acquire(io, l, "a", 50ms, w2);
  spawn_acquire(io, l, "a", 50ms, w3);
  io.poll();
  CHECK(w3.done);
  CHECK_FALSE(w3.permit);
  CHECK(w3.why == fetch_limiter::refusal::queue_full);
  io.run_for(500ms);
  CHECK(w1.done);
  CHECK(w2.done);
  CHECK(w1.why == fetch_limiter::refusal::timed_out);
  CHECK(w2.why == fetch_limiter::refusal::timed_out);
  auto s = l.snapshot();
  CHECK(s.waiting == 0);
  CHECK(s.queue_full == 1);
  CHECK(s.timed_out == 2);
  // The timed-out waiters hold nothing: the slot passes straight on.
  held.reset();
  CHECK(l.snapshot().active == 0);
}

TEST_CASE("a waiter destroyed while queued leaves no slot behind") {
  fetch_limiter l({.total = 1, .per_site = 1, .queue = 4}, gate());
  auto held = l.try_acquire("a");
  {
    asio::io_context io;
    attempt w;
    spawn_acquire(io, l, "a", 10s, w);
    io.poll();
    CHECK(l.snapshot().waiting == 1);
  }  // io destroyed with the waiting frame
  CHECK(l.snapshot().waiting == 0);
  held.reset();
  CHECK(l.snapshot().active == 0);
  CHECK(l.try_acquire("a"));
}

TEST_CASE("a slot granted to a waiter destroyed before it resumed goes back") {
  auto g = gate();
  fetch_limiter l({.total = 1, .per_site = 1, .queue = 4}, g);
  auto held = l.try_acquire("a");
  {
    asio::io_context io;
    attempt w;
    spawn_acquire(io, l, "a", 10s, w);
    io.poll();
    held.reset();  // granted to w; its wake-up is queued on io, never run
    CHECK(l.snapshot().active == 1);
    g->close();  // as the server does before destroying the io_contexts
  }
  CHECK(l.snapshot().active == 0);
}

TEST_CASE("waiters on other threads, past 10,000 acquisitions") {
  // Four threads with an io_context each; 40 workers each take a slot 250 times through a
  // limiter of 3, holding it for one hop. The cap is never exceeded, nothing is lost.
  fetch_limiter l({.total = 3, .per_site = 3, .queue = 100}, gate());
  std::atomic<int> inside{0}, most{0}, done{0};
  std::vector<std::unique_ptr<asio::io_context>> ios;
  for (int i = 0; i < 4; ++i)
    ios.push_back(std::make_unique<asio::io_context>(1));
  for (int w = 0; w < 40; ++w) {
    auto& io = *ios[static_cast<std::size_t>(w % 4)];
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          for (int k = 0; k < 250; ++k) {
            fetch_limiter::refusal why{};
            auto p = co_await l.acquire("s", 10s, why);
            REQUIRE(p);
            int now = ++inside;
            int seen = most.load();
            while (now > seen && !most.compare_exchange_weak(seen, now)) {
            }
            co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
            --inside;
          }
          ++done;
        },
        asio::detached);
  }
  std::vector<std::thread> threads;
  for (auto& io : ios)
    threads.emplace_back([&io] { io->run(); });
  for (auto& t : threads)
    t.join();
  CHECK(done == 40);
  CHECK(most <= 3);
  const auto s = l.snapshot();
  CHECK(s.active == 0);
  CHECK(s.waiting == 0);
  CHECK(s.granted == 10000);
  CHECK(s.most_active == static_cast<std::uint64_t>(most.load()));
  CHECK(s.most_active <= 3);
}
