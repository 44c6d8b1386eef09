// The client ledger and its event window, with a fake clock: the reset budget and its window,
// the penalty, miss slots (the cap, release from other threads and after the ledger is gone),
// address forms (IPv4, IPv6, IPv4-mapped IPv6), and the table's bound past 10,000 addresses.
// Links storecache_access only (tests/CMakeLists.txt): access/ must not need proxy/.
#include <array>
#include <atomic>
#include <boost/asio/ip/address.hpp>
#include <catch2/catch.hpp>
#include <thread>
#include <vector>

#include "access/client_ledger.hpp"
#include "access/event_window.hpp"

using namespace storecache::access;
using namespace std::chrono_literals;
using clock_type = client_ledger::clock;
namespace ip = boost::asio::ip;

namespace {

// Aligned to the 1.25 s buckets of a 10 s window, so "within the window" is exact here.
const clock_type::time_point t0 = clock_type::time_point{} + 1000s;

client_ledger::limits small_limits() {
  client_ledger::limits l;
  l.misses_per_client = 4;
  l.resets = 100;
  l.reset_window = 10s;
  l.penalty = 30s;
  return l;
}

ip::address v4(std::uint32_t n) {
  return ip::address_v4(0x0a000000u + n);  // 10.x.y.z
}
ip::address v6(std::uint32_t n) {
  ip::address_v6::bytes_type b{};
  b[0] = 0xfd;
  b[12] = static_cast<unsigned char>(n >> 24);
  b[13] = static_cast<unsigned char>(n >> 16);
  b[14] = static_cast<unsigned char>(n >> 8);
  b[15] = static_cast<unsigned char>(n);
  return ip::address_v6(b);
}

}  // namespace

TEST_CASE("event_window counts the last window in eight buckets") {
  event_window w;
  CHECK(w.count(t0, 10s) == 0);
  for (int i = 1; i <= 5; ++i)
    CHECK(w.add(t0, 10s) == static_cast<std::uint32_t>(i));
  CHECK(w.add(t0 + 5s, 10s) == 6);
  CHECK(w.count(t0 + 9s, 10s) == 6);   // t0's bucket still within (t0+9s - 10s, t0+9s]
  CHECK(w.count(t0 + 10s, 10s) == 1);  // t0's bucket gone, t0+5s's still there
  CHECK(w.count(t0 + 15s, 10s) == 0);
  CHECK(w.add(t0 + 100s, 10s) == 1);  // a long gap empties every bucket
  w.clear();
  CHECK(w.count(t0 + 100s, 10s) == 0);
}

TEST_CASE("event_window: a time before the newest bucket counts into it") {
  event_window w;
  w.add(t0 + 5s, 10s);
  CHECK(w.add(t0, 10s) == 2);
  CHECK(w.count(t0 + 5s, 10s) == 2);
}

TEST_CASE("a client over its reset budget is penalized once, for the penalty") {
  client_ledger ledger(small_limits());
  const auto a = v4(1);
  for (int i = 0; i < 100; ++i)
    REQUIRE_FALSE(ledger.note_reset(a, t0));
  CHECK_FALSE(ledger.penalized(a, t0));
  CHECK(ledger.note_reset(a, t0 + 1s));  // the 101st within 10 s
  CHECK(ledger.penalized(a, t0 + 1s));
  CHECK(ledger.penalized(a, t0 + 30s));
  CHECK_FALSE(ledger.penalized(a, t0 + 31s));  // penalty: 30 s from the 101st
  // While penalized, further resets are counted but start no second penalty.
  for (int i = 0; i < 150; ++i)
    CHECK_FALSE(ledger.note_reset(a, t0 + 2s));
  const auto c = ledger.totals();
  CHECK(c.over_budget == 1);
  CHECK(c.resets_noted == 251);
  // Another address is unaffected.
  CHECK_FALSE(ledger.penalized(v4(2), t0 + 1s));
}

TEST_CASE("resets older than the window do not count") {
  client_ledger ledger(small_limits());
  const auto a = v4(1);
  for (int i = 0; i < 100; ++i)
    REQUIRE_FALSE(ledger.note_reset(a, t0));
  // A window later the first hundred are gone: another hundred stay within the budget.
  for (int i = 0; i < 100; ++i)
    REQUIRE_FALSE(ledger.note_reset(a, t0 + 10s));
  CHECK_FALSE(ledger.penalized(a, t0 + 10s));
  // ... but within the window they add up.
  CHECK(ledger.note_reset(a, t0 + 15s));
}

TEST_CASE("a client still flooding when its penalty ends is penalized again") {
  client_ledger ledger(small_limits());
  const auto a = v6(7);
  for (int i = 0; i < 101; ++i)
    ledger.note_reset(a, t0);
  REQUIRE(ledger.penalized(a, t0));
  // The window restarted with the penalty: resets during the penalty's last 10 s count.
  for (int i = 0; i < 101; ++i)
    REQUIRE_FALSE(ledger.note_reset(a, t0 + 25s));
  CHECK(ledger.note_reset(a, t0 + 31s));
  CHECK(ledger.penalized(a, t0 + 60s));
  CHECK(ledger.totals().over_budget == 2);
}

TEST_CASE("IPv4, IPv6 and IPv4-mapped IPv6 addresses") {
  client_ledger ledger(small_limits());
  const auto plain = ip::make_address("192.0.2.7");
  const auto mapped = ip::make_address("::ffff:192.0.2.7");
  const auto six = ip::make_address("2001:db8::7");
  for (int i = 0; i < 60; ++i)
    ledger.note_reset(plain, t0);
  for (int i = 0; i < 40; ++i)
    ledger.note_reset(mapped, t0);
  CHECK(ledger.entries() == 1);  // one client
  CHECK(ledger.note_reset(mapped, t0));
  CHECK(ledger.penalized(plain, t0));
  CHECK_FALSE(ledger.penalized(six, t0));
  ledger.note_reset(six, t0);
  CHECK(ledger.entries() == 2);
  CHECK(client_ledger::canonical(mapped) == plain);
  CHECK(client_ledger::canonical(mapped).to_string() == "192.0.2.7");
  CHECK(client_ledger::canonical(six) == six);
}

TEST_CASE("miss slots: the cap per client, release, and the entry dropped when idle") {
  client_ledger ledger(small_limits());
  const auto a = v4(1);
  std::vector<client_ledger::miss_slot> held;
  for (int i = 0; i < 4; ++i) {
    auto s = ledger.begin_miss(a);
    REQUIRE(s);
    held.push_back(std::move(s));
  }
  CHECK_FALSE(ledger.begin_miss(a));
  CHECK(ledger.begin_miss(v4(2)));  // another client has its own cap (released at once)
  CHECK(ledger.totals().misses_refused == 1);
  CHECK(ledger.entries() == 1);
  held.pop_back();
  auto again = ledger.begin_miss(a);
  CHECK(again);
  client_ledger::miss_slot moved = std::move(again);
  CHECK(moved);
  CHECK_FALSE(again);  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  moved.release();
  CHECK_FALSE(moved);
  held.clear();
  CHECK(ledger.entries() == 0);  // nothing in flight, no resets: forgotten
}

TEST_CASE("an entry with resets stays for the window, then goes") {
  client_ledger ledger(small_limits());
  const auto a = v4(1);
  {
    auto s = ledger.begin_miss(a);
    ledger.note_reset(a, t0);
  }
  CHECK(ledger.entries() == 1);
  ledger.sweep(t0 + 5s);
  CHECK(ledger.entries() == 1);
  ledger.sweep(t0 + 10s);
  CHECK(ledger.entries() == 0);
  // A penalized entry stays for its penalty.
  for (int i = 0; i < 101; ++i)
    ledger.note_reset(a, t0 + 20s);
  ledger.sweep(t0 + 45s);
  CHECK(ledger.entries() == 1);
  CHECK(ledger.penalized(a, t0 + 45s));
  ledger.sweep(t0 + 50s);
  CHECK(ledger.entries() == 0);
}

TEST_CASE("slots are released from other threads, and after the ledger is gone") {
  auto ledger = std::make_unique<client_ledger>(small_limits());
  constexpr int threads = 8, clients = 64;
  std::vector<client_ledger::miss_slot> slots;
  for (int c = 0; c < clients; ++c)
    for (int i = 0; i < 4; ++i)
      slots.push_back(ledger->begin_miss(v4(static_cast<std::uint32_t>(c))));
  REQUIRE(ledger->entries() == clients);
  std::atomic<int> taken{0};
  std::vector<std::thread> pool;
  std::vector<std::vector<client_ledger::miss_slot>> parts(threads);
  for (std::size_t k = 0; k < slots.size(); ++k)
    parts[k % threads].push_back(std::move(slots[k]));
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      // Each thread releases its share and takes and releases more, racing the others.
      for (int round = 0; round < 200; ++round) {
        auto s = ledger->begin_miss(v4(static_cast<std::uint32_t>((t * 7 + round) % clients)));
        if (s) ++taken;
      }
      parts[static_cast<std::size_t>(t)].clear();
    });
  for (auto& th : pool)
    th.join();
  CHECK(ledger->entries() == 0);
  CHECK(taken.load() + static_cast<int>(ledger->totals().misses_refused) == threads * 200);

  // A slot that outlives its ledger releases into the state it shares.
  auto late = ledger->begin_miss(v4(1));
  REQUIRE(late);
  std::thread([&] { ledger.reset(); }).join();
  std::thread([s = std::move(late)]() mutable { s = {}; }).join();
  SUCCEED("released after the ledger was destroyed");
}

TEST_CASE("past 10,000 addresses the table stays within max_clients") {
  auto l = small_limits();
  l.max_clients = 4096;  // 16 shards of 256
  client_ledger ledger(l);
  constexpr std::uint32_t n = 20000;
  std::size_t tracked = 0;
  for (std::uint32_t i = 0; i < n; ++i) {
    const auto a = (i % 2 == 0) ? v4(i) : v6(i);
    ledger.note_reset(a, t0);
    CHECK(ledger.entries() <= 4096);
  }
  tracked = ledger.entries();
  CHECK(tracked <= 4096);
  CHECK(tracked > 3000);  // shards fill unevenly, but all of them fill
  const auto c = ledger.totals();
  CHECK(c.untracked == n - tracked);
  CHECK(c.resets_noted == tracked);
  // At the bound a new address gets no miss slot: counted as refused and untracked.
  std::size_t refused = 0;
  for (std::uint32_t i = n; i < n + 1000; ++i)
    if (!ledger.begin_miss(v4(i))) ++refused;
  CHECK(refused > 0);
  CHECK(ledger.totals().misses_refused == refused);
  CHECK(ledger.entries() <= 4096);

  // A window later the old entries have expired: new addresses are tracked again, and the
  // expired ones are dropped to make room rather than kept.
  for (std::uint32_t i = 0; i < n; ++i)
    ledger.note_reset(v6(100000 + i), t0 + 11s);
  CHECK(ledger.entries() <= 4096);
  CHECK(ledger.totals().resets_noted >= tracked + 3000);
  ledger.sweep(t0 + 30s);
  CHECK(ledger.entries() == 0);
}

TEST_CASE("the default bound holds 20,000 active addresses and forgets them when quiet") {
  client_ledger ledger(client_ledger::limits{});
  for (std::uint32_t i = 0; i < 20000; ++i)
    ledger.note_reset(v6(i), t0);
  CHECK(ledger.entries() == 20000);
  CHECK(ledger.totals().untracked == 0);
  // note_reset alone, without sweep(), drops what expired once a window has passed.
  ledger.note_reset(v6(0), t0 + 11s);
  ledger.sweep(t0 + 11s);
  CHECK(ledger.entries() == 1);
}

TEST_CASE("set_limits applies to what follows") {
  client_ledger ledger(small_limits());
  auto l = small_limits();
  l.resets = 3;
  l.misses_per_client = 1;
  ledger.set_limits(l);
  const auto a = v4(9);
  CHECK_FALSE(ledger.note_reset(a, t0));
  CHECK_FALSE(ledger.note_reset(a, t0));
  CHECK_FALSE(ledger.note_reset(a, t0));
  CHECK(ledger.note_reset(a, t0));
  auto s = ledger.begin_miss(v4(10));
  CHECK(s);
  CHECK_FALSE(ledger.begin_miss(v4(10)));
  CHECK(ledger.current_limits().resets == 3);
}

TEST_CASE("from_config maps the [limits] keys") {
  storecache::config::limits c;
  c.misses_per_client = 5;
  c.client_resets = 50;
  c.client_reset_window = 2s;
  c.reset_penalty = 7s;
  const auto l = client_ledger::from_config(c);
  CHECK(l.misses_per_client == 5);
  CHECK(l.resets == 50);
  CHECK(l.reset_window == 2s);
  CHECK(l.penalty == 7s);
  CHECK(l.max_clients == 65536);
}
