// Bounds the requests storecache has open towards its upstreams: at most `total` at once over
// all sites and `per_site` per site. A request over a cap waits in one FIFO queue (at most
// `queue` waiters, each for at most its timeout) and is then refused: the device gets 503.
//
// A permit is a move-only token: the fetch holds it until its upstream body ends, whichever
// thread or coroutine that happens on, and its destruction frees the slot for the next waiter
// that fits (the oldest waiter whose site is under its cap). Waiters wait through
// waiter_list slots, so a release never touches another thread's timer.
//
// Bounds: the queue by `queue` (plus waiters that gave up and are skipped lazily: compacted
// when the deque passes twice the limit); the site table by the number of distinct site names
// ever seen (the config's sites).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "upstream/waiter_list.hpp"

namespace storecache::upstream {

class fetch_limiter {
 public:
  struct limits {
    std::size_t total = 64;
    std::size_t per_site = 32;
    std::size_t queue = 1024;
  };
  static limits from_config(const config::limits& l);

  enum class refusal { none, queue_full, timed_out };

  struct stats {
    std::uint64_t active = 0;       // permits held now (gauge)
    std::uint64_t most_active = 0;  // the most ever held at once (high-water mark)
    std::uint64_t waiting = 0;      // requests in the queue now (gauge)
    std::uint64_t granted = 0;      // permits given, at once or after waiting
    std::uint64_t queued = 0;       // requests that had to wait
    std::uint64_t queue_full = 0;   // refused: the queue was full
    std::uint64_t timed_out = 0;    // refused: no slot within the timeout
  };

  struct state;
  struct site_slot;

  class permit {
   public:
    permit() = default;
    permit(permit&& o) noexcept;
    permit& operator=(permit&& o) noexcept;
    permit(const permit&) = delete;
    permit& operator=(const permit&) = delete;
    ~permit();
    explicit operator bool() const { return state_ != nullptr; }
    void reset();

   private:
    friend class fetch_limiter;
    permit(std::shared_ptr<state> s, site_slot* site) : state_(std::move(s)), site_(site) {}
    std::shared_ptr<state> state_;
    site_slot* site_ = nullptr;
  };

  fetch_limiter(limits l, std::shared_ptr<const wake_gate> gate);
  ~fetch_limiter();
  fetch_limiter(const fetch_limiter&) = delete;
  fetch_limiter& operator=(const fetch_limiter&) = delete;

  // On reload. Raised caps let waiters in at once; lowered ones apply as permits are returned.
  void set_limits(const limits& l);

  // A permit now, or after waiting at most `timeout` in the queue; an empty permit and the
  // reason when refused. Must run on a single-threaded executor (a worker's io_context).
  boost::asio::awaitable<permit> acquire(std::string_view site,
                                         std::chrono::steady_clock::duration timeout, refusal& why);
  // A permit only if one is free right now, without queueing.
  permit try_acquire(std::string_view site);

  stats snapshot() const;

 private:
  std::shared_ptr<state> state_;
};

std::string_view to_string(fetch_limiter::refusal r);

}  // namespace storecache::upstream
