// Liveness of the event loops, for systemd's watchdog (WatchdogSec=) and for ops.
//
// Each beat the control thread posts a small handler to every watched io_context (the workers'
// and the prefetch runner's) and pings systemd (WATCHDOG=1) only if every one ran the handler
// it posted one beat earlier. A
// worker stuck in a loop, a lock or a blocking call stops the pings, and systemd restarts the
// service; a live control thread alone is not enough. The time a beat waited in a worker's
// queue is that worker's loop lag: /metrics shows it whether or not systemd watches.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

namespace storecache::proxy {

class loop_watchdog {
 public:
  using clock = std::chrono::steady_clock;

  // systemd's WATCHDOG_USEC for this process (sd_watchdog_enabled), if it watches us.
  static std::optional<std::chrono::microseconds> systemd_interval();
  // A beat every quarter of systemd's interval (so three late beats still ping in time), at
  // most every second (the lag gauge stays current without systemd too).
  static clock::duration beat_for(std::optional<std::chrono::microseconds> systemd);

  // A watched event loop: its label in metrics and logs ("0", "1", ... for workers;
  // "prefetch").
  struct watched {
    std::string name;
    boost::asio::io_context* io = nullptr;
  };
  // The io_contexts must outlive run(); it ends when the control io_context stops.
  loop_watchdog(std::vector<watched> loops, clock::duration beat, bool ping_systemd);

  boost::asio::awaitable<void> run();

  // storecache_worker_loop_lag_seconds{worker} and storecache_watchdog_stalls_total.
  std::string render_metrics() const;

 private:
  struct worker_beat {
    std::string name;
    boost::asio::io_context* io;
    std::atomic<std::uint64_t> answered{0};  // the last beat this worker ran
    std::atomic<std::int64_t> lag_ns{0};     // how long that beat waited in its queue
    std::atomic<std::int64_t> posted_ns{0};  // when the beat now waiting was posted
    std::atomic<bool> reported_stuck{false};
  };
  void check_and_ping(std::uint64_t sent);
  void post_beat(std::uint64_t seq);

  std::vector<std::unique_ptr<worker_beat>> workers_;
  clock::duration beat_;
  bool ping_systemd_;
  std::atomic<std::uint64_t> sent_{0};  // the last beat posted
  std::atomic<std::uint64_t> stalls_{0};
};

}  // namespace storecache::proxy
