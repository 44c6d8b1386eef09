// The WAN budget's arithmetic (token_bucket: refill, capacity, overdraw, who waits and how
// long) and the budget itself on a real io_context: a capped reader is paced to the rate, a
// device read goes before background reads, no cap means no wait.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>
#include <chrono>

#include "upstream/wan_budget.hpp"

using namespace storecache::upstream;
using namespace std::chrono_literals;
namespace asio = boost::asio;

TEST_CASE("token bucket: refill up to a tenth of a second, overdraw, waits by class", "[wan]") {
  token_bucket b;
  const std::uint64_t rate = 1'000'000;  // 1 MB/s
  CHECK(token_bucket::capacity(rate) == 100'000.0);
  CHECK(token_bucket::capacity(1000) == 16384.0);  // a slow link still reads 16 KiB at once
  // empty: a device waits for one byte's worth
  CHECK(b.wait(rate, fetch_class::device, 0) > 0ns);
  b.refill(50ms, rate);
  CHECK(b.level() == Approx(50'000));
  CHECK(b.wait(rate, fetch_class::device, 0) == 0ns);
  CHECK(b.wait(rate, fetch_class::background, 0) == 0ns);
  // a device waiting: background readers wait, however full the bucket
  CHECK(b.wait(rate, fetch_class::background, 1) >= 5ms);
  b.refill(10s, rate);  // an idle link saves up no more than the capacity
  CHECK(b.level() == Approx(100'000));
  // a read may overdraw; the next waits until the debt is paid
  b.charge(300'000);
  CHECK(b.level() == Approx(-200'000));
  const auto w = b.wait(rate, fetch_class::device, 0);
  CHECK(w >= 199ms);
  CHECK(w <= 201ms);
  b.refill(200ms, rate);
  CHECK(b.wait(rate, fetch_class::device, 0) <= 1ms);
  // no cap: nobody waits
  b.charge(10'000'000);
  CHECK(b.wait(0, fetch_class::background, 5) == 0ns);
}

namespace {

// Reads `total` bytes in reads of `chunk` through the budget; returns how long it took.
double paced_read(wan_budget& budget, std::uint64_t total, std::size_t chunk, fetch_class c) {
  asio::io_context io;
  const auto start = std::chrono::steady_clock::now();
  double took = 0;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        for (std::uint64_t done = 0; done < total; done += chunk) {
          co_await budget.admit(c);
          budget.charge(chunk, c);
        }
        took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      },
      asio::detached);
  io.run();
  return took;
}

}  // namespace

TEST_CASE("wan budget: reads are paced to the cap; without one they are not", "[wan]") {
  wan_budget budget;
  storecache::config::wan_settings s;
  s.rate = 2'000'000;            // 2 MB/s
  CHECK_FALSE(budget.capped());  // nothing set: readers do not ask
  budget.set(s);
  CHECK(budget.capped());
  CHECK(budget.rate_now() == 2'000'000);
  // 3 MB in 64 KiB reads: the first 16 KiB..200 kB come from the empty bucket's refill, the
  // rest at the rate: about 1.5 s.
  const double took = paced_read(budget, 3'000'000, 65536, fetch_class::device);
  CHECK(took > 1.3);
  CHECK(took < 2.0);
  budget.set(storecache::config::wan_settings{});
  CHECK_FALSE(budget.capped());
  CHECK(budget.rate_now() == 0);
  CHECK(paced_read(budget, 100'000'000, 65536, fetch_class::background) < 0.5);
  const std::string m = budget.render_metrics();
  CHECK(m.find("storecache_wan_rate_limit_bytes_per_second 0\n") != std::string::npos);
  CHECK(m.find("storecache_wan_bytes_total{class=\"device\"} 3014656\n") != std::string::npos);
  CHECK(m.find("storecache_wan_throttled_total{class=\"device\"} ") != std::string::npos);
}

TEST_CASE("wan budget: a device read goes before waiting background reads", "[wan]") {
  wan_budget budget;
  storecache::config::wan_settings s;
  s.rate = 1'000'000;
  budget.set(s);
  asio::io_context io;
  const auto start = std::chrono::steady_clock::now();
  double device_done = 0, background_done = 0;
  // Background saturates the link in 64 KiB reads for 2 MB; a device asks for 200 kB 100 ms in.
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        for (int i = 0; i < 31; ++i) {
          co_await budget.admit(fetch_class::background);
          budget.charge(65536, fetch_class::background);
        }
        background_done =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      },
      asio::detached);
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        asio::steady_timer t(io, 100ms);
        co_await t.async_wait(asio::use_awaitable);
        for (int i = 0; i < 4; ++i) {
          co_await budget.admit(fetch_class::device);
          budget.charge(50'000, fetch_class::device);
        }
        device_done =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      },
      asio::detached);
  io.run();
  // The device's 200 kB take about 0.2 s at 1 MB/s after at most one background read's debt:
  // it is done long before the background's 2 MB (about 2.1 s).
  CHECK(device_done < 0.6);
  CHECK(background_done > 1.8);
}

TEST_CASE("wan budget: a site's own cap paces that site alone", "[wan]") {
  storecache::config::config cfg;
  cfg.sites.resize(2);
  cfg.sites[0].hosts = {"a.example"};
  cfg.sites[1].hosts = {"b.example"};
  cfg.sites[0].wan.rate = 1'000'000;  // 1 MB/s for a; no cap for b, none for all
  wan_budget budget;
  budget.set(cfg);
  CHECK(budget.capped());  // a site's cap alone
  CHECK(budget.rate_now() == 0);
  CHECK(budget.site_rate_now("a.example") == 1'000'000);
  CHECK(budget.site_rate_now("b.example") == 0);
  auto read = [&](std::string_view site, std::uint64_t total) {
    asio::io_context io;
    const auto start = std::chrono::steady_clock::now();
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          for (std::uint64_t done = 0; done < total; done += 65536) {
            co_await budget.admit(fetch_class::device, site);
            budget.charge(65536, fetch_class::device, site);
          }
        },
        asio::detached);
    io.run();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  const double a = read("a.example", 1'000'000);
  CHECK(a > 0.7);
  CHECK(a < 1.3);
  CHECK(read("b.example", 50'000'000) < 0.5);
  const std::string m = budget.render_metrics();
  CHECK(m.find("storecache_wan_site_rate_limit_bytes_per_second{site=\"a.example\"} 1000000\n") !=
        std::string::npos);
  CHECK(m.find("site=\"b.example\"") == std::string::npos);
}
