// Coroutines on any worker thread wait for a change that any thread signals, and no thread
// ever holds, cancels or destroys a timer of another thread's io_context.
//
// A waiter owns its wake_slot (and the timer in it) in its own coroutine frame; the list keeps
// only the waiter's executor and a weak reference. wake() posts to each waiter's executor a
// handler that, there, cancels the timer if the waiter still exists. A waiter that timed out or
// was destroyed simply expires from the list. After the server closes the wake_gate (its
// workers are joined, their io_contexts about to be destroyed), nothing is posted any more.
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <vector>

namespace storecache::upstream {

namespace asio = boost::asio;

// Open while the workers' io_contexts run. Closed by the server after it joined the worker
// threads and before it destroys their io_contexts: a coroutine frame destroyed then may
// release a permit or leave a fill, and must not post to an io_context already gone.
class wake_gate {
 public:
  void close() { open_.store(false, std::memory_order_release); }
  bool is_open() const { return open_.load(std::memory_order_acquire); }

 private:
  std::atomic<bool> open_{true};
};

struct wake_slot {
  explicit wake_slot(const asio::any_io_executor& ex) : timer(ex) {}
  asio::steady_timer timer;
};

// Not thread-safe by itself: its owner guards it with its own mutex, takes the entries out
// under that mutex and calls wake() after unlocking.
class waiter_list {
 public:
  struct entry {
    asio::any_io_executor ex;
    std::weak_ptr<wake_slot> slot;
  };

  // Registers the calling coroutine's slot (under the owner's lock).
  void add(const std::shared_ptr<wake_slot>& slot);
  // Every waiter, taken out (under the owner's lock).
  std::vector<entry> take();
  std::size_t size() const { return entries_.size(); }

  // Posts a wake-up to each entry's own executor (outside the owner's lock).
  static void wake(std::vector<entry>& entries, const wake_gate* gate);

 private:
  std::vector<entry> entries_;
};

// A new slot on the calling coroutine's executor, its timer set to expire after `timeout`.
asio::awaitable<std::shared_ptr<wake_slot>> make_wake_slot(
    std::chrono::steady_clock::duration timeout);
// Waits until the slot is woken or its timer expires.
asio::awaitable<void> wait_on(wake_slot& slot);

}  // namespace storecache::upstream
