// The runner's private parts, shared by its three source files: runner.cpp (life cycle, the
// source loop, a run), listing_fetch.cpp (reading one listing), object_fill.cpp (one object
// into the cache). Not for use outside prefetch/.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "http/exchange.hpp"
#include "prefetch/listing.hpp"
#include "prefetch/runner.hpp"

namespace storecache::prefetch {

namespace asio = boost::asio;
using asio::use_awaitable;
using std::chrono::minutes;
using std::chrono::seconds;
using std::chrono::system_clock;
using steady = std::chrono::steady_clock;

using config::local_minute;
// The start of the local minute t is in (the windows count whole minutes).
system_clock::time_point minute_start(system_clock::time_point t);
asio::awaitable<void> sleep_for(steady::duration d);
// The request prefetch makes for a path, as a device without any request fields would: an
// object that varies on request fields is fetched (and stored) as that request's variant.
http::request_head request_for(const config::site& site, std::string_view path);
// Whether the source may run now: inside one of its windows (local time), or it has none.
bool window_open(const config::prefetch_source& src);

// One source's loop state; the runner's thread only.
struct runner::source_run {
  std::string site;
  std::string source;
  std::string key;
  steady::time_point next_due{};  // epoch: due now
  // A listing as last read: its validators (the next read is conditional) and what it named.
  struct memo {
    bool valid = false;
    std::string etag;
    std::string last_modified;
    source_kind kind = source_kind::url_list;
    std::vector<std::string> objects;
    std::vector<std::string> sources;
    std::size_t rejected = 0;
    bool truncated = false;
  };
  std::map<std::string, memo> listings;
  std::set<std::string> logged;  // causes logged already; a cause that clears is logged again
  bool forget_listings = false;  // set by a reload: the next run reads every listing afresh
  bool published = false;        // a whole run's figures are in the readiness
  // Set by a reload that leaves the source out: its run stops between two objects, and its
  // loop ends (and its readiness goes) at once.
  bool removed = false;
  // The loop's wait between runs, while it waits: a reload cancels it, so that a changed
  // window or a removed source applies now, not up to a minute later.
  std::shared_ptr<asio::steady_timer> wake;
};

// At most n holders at once; the others wait in order. The runner's thread only.
class runner::slots {
 public:
  explicit slots(unsigned n) : free_(static_cast<int>(n)), total_(n) {}
  void resize(unsigned n) {
    free_ += static_cast<int>(n) - static_cast<int>(total_);
    total_ = n;
    wake();
  }
  asio::awaitable<void> acquire() {
    while (free_ <= 0) {
      auto t = std::make_shared<asio::steady_timer>(co_await asio::this_coro::executor,
                                                    steady::time_point::max());
      waiters_.push_back(t);
      co_await t->async_wait(asio::as_tuple(use_awaitable));
    }
    --free_;
  }
  void release() {
    ++free_;
    wake();
  }

 private:
  void wake() {
    for (int i = 0; i < free_ && !waiters_.empty(); ++i) {
      waiters_.front()->cancel();
      waiters_.pop_front();
    }
  }
  int free_;
  unsigned total_;
  std::deque<std::shared_ptr<asio::steady_timer>> waiters_;
};

// What one object's check came to.
struct runner::object_result {
  enum kind { fresh, fetched, revalidated, failed, cut } k = failed;
  std::uint64_t bytes = 0;
  std::string error;          // failed: why
  unsigned status = 0;        // failed on an upstream answer: its status
  bool not_storable = false;  // failed because the cache may not keep it (no-store, rules)
  bool too_large = false;     // failed: over object_bounds::max_bytes
  bool timed_out = false;     // failed: not whole by object_bounds::deadline
  std::uint64_t came = 0;     // too_large, timed_out: the bytes seen (or declared) by then
  std::string primary;        // its cache key (pins name it)
  // The body size of the copy the cache holds, fresh or not (what pinning it keeps).
  std::optional<std::uint64_t> stored_bytes;
};

// The pin owner of a source: "site\nsource" (long names hashed: an index key's limit).
std::string pin_owner(const std::string& key);

// What reading one listing came to; the listing itself is in the source's memo.
struct runner::listing_read {
  listing_problem problem = listing_problem::none;
  std::string error;
  bool not_modified = false;
  bool cut = false;  // not read: no upstream slot came free before the run had to stop
  // The listing as an object of the run, when it was read through the cache: the objects'
  // pass takes this instead of checking it again.
  std::optional<object_result> object;
};

template <typename F>
void runner::update(const source_run& s, F f) {
  std::lock_guard lock(mu_);
  f(status_[s.key]);
}

}  // namespace storecache::prefetch
