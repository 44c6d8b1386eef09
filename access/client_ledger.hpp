// What each client address is doing right now, process-wide: the cold misses it leads, the
// requests it abandoned (HTTP/2 stream resets, HTTP/1.1 closes mid-response) and whether it is
// serving a penalty for abandoning too many. The sessions report resets; the request handler
// asks for a miss slot before it starts an upstream fetch, and asks penalized() first.
//
// Life cycle of an entry (one per address; IPv4-mapped IPv6 is the IPv4 address):
//   absent --begin_miss / note_reset--> tracked
//   tracked: misses in flight, resets within reset_window, maybe a penalty until some time
//   tracked --(no miss in flight, no reset within reset_window, no penalty)--> dropped
// Dropping happens when the last miss slot is released, on sweep() (the server calls it every
// few seconds) and when a shard is full. So the table holds only addresses active within
// max(reset_window, reset_penalty) or with a fetch in flight.
//
// Bound: at most limits::max_clients entries (16 shards of max_clients/16 each; a hash node of
// 88 bytes plus its bucket, under 10 MB at the default 65,536). At the bound, after dropping what
// has expired (a full shard looks at most once per reset_window/8), a new address is not tracked:
// its resets are not remembered (the HTTP/2 connection's own budget still ends a flood) and its
// begin_miss is refused, because a full table means tens of thousands of active addresses, which in
// a store is an attack on the WAN, not a busy day. Both are counted (counters::untracked).
//
// Thread-safe: any thread, any order; each shard has its own mutex, never held across a call
// out. Time is an argument (STYLE rule 4): tests drive it with a fake clock.
#pragma once

#include <atomic>
#include <boost/asio/ip/address.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "config/config.hpp"

namespace storecache::access {

class client_ledger {
 public:
  using clock = std::chrono::steady_clock;

  struct limits {
    std::size_t misses_per_client = 16;
    std::size_t resets = 100;
    clock::duration reset_window = std::chrono::seconds(10);
    clock::duration penalty = std::chrono::seconds(30);
    std::size_t max_clients = 65536;  // bound of the table (see the top of this file)
  };
  static limits from_config(const config::limits& l);

  explicit client_ledger(limits l);
  ~client_ledger();
  client_ledger(const client_ledger&) = delete;
  client_ledger& operator=(const client_ledger&) = delete;

  void set_limits(const limits& l);  // on reload; thread-safe
  limits current_limits() const;

 private:
  struct state;  // the shards and counters, shared with the miss slots
  struct key {   // the address as 16 bytes, IPv4 as IPv4-mapped IPv6
    unsigned char b[16];
  };

 public:
  // One cold miss led by a client: held until the fetch it started ends (it may outlive the
  // request and move between threads). Empty when the client already leads misses_per_client.
  class miss_slot {  // move-only; releases in its destructor, from any thread, in any order
   public:           // relative to the ledger's destruction (it holds a shared_ptr to the state)
    miss_slot() = default;
    miss_slot(miss_slot&& o) noexcept;
    miss_slot& operator=(miss_slot&& o) noexcept;
    miss_slot(const miss_slot&) = delete;
    miss_slot& operator=(const miss_slot&) = delete;
    ~miss_slot();
    explicit operator bool() const { return state_ != nullptr; }
    void release();  // early; the destructor then does nothing

   private:
    friend class client_ledger;
    miss_slot(std::shared_ptr<state> s, const key& k) : state_(std::move(s)), key_(k) {}
    std::shared_ptr<state> state_;
    key key_{};
  };

  miss_slot begin_miss(const boost::asio::ip::address& client);
  // The same without counting a refusal: for a caller that waits and tries again, and counts
  // its final refusal with note_miss_refused().
  miss_slot try_begin_miss(const boost::asio::ip::address& client);
  void note_miss_refused();
  // The same; `now` also lets a full shard drop what expired by then.
  miss_slot begin_miss(const boost::asio::ip::address& client, clock::time_point now);

  // A request the client abandoned before its response completed. True exactly when this
  // reset pushed the client over `resets` within `reset_window` (its penalty starts now; the
  // window starts afresh, so a client still abandoning when the penalty ends is penalized
  // again at its next reset over the budget).
  bool note_reset(const boost::asio::ip::address& client, clock::time_point now);
  // While penalized a client may start no upstream fetch (cached content is still served).
  bool penalized(const boost::asio::ip::address& client, clock::time_point now) const;

  // Drops entries that have nothing left to remember at `now`.
  void sweep(clock::time_point now);

  std::size_t entries() const;  // tracked addresses (a gauge)

  struct counters {
    std::uint64_t misses_refused = 0;  // begin_miss answered empty
    std::uint64_t resets_noted = 0;    // note_reset calls on tracked addresses
    std::uint64_t over_budget = 0;     // penalties started (note_reset answered true)
    std::uint64_t untracked = 0;       // new addresses turned away at max_clients
  };
  counters totals() const;

  // The address as the ledger keys it: IPv4-mapped IPv6 becomes the IPv4 address. For logs.
  static boost::asio::ip::address canonical(const boost::asio::ip::address& a);

 private:
  static key key_of(const boost::asio::ip::address& a);
  std::shared_ptr<state> state_;
};

}  // namespace storecache::access
