#include "upstream/waiter_list.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace storecache::upstream {

void waiter_list::add(const std::shared_ptr<wake_slot>& slot) {
  // Waiters that timed out leave expired entries; drop them before the list doubles, so it
  // stays bounded by the live waiters.
  if (entries_.size() >= 64 && entries_.size() == entries_.capacity())
    std::erase_if(entries_, [](const entry& e) { return e.slot.expired(); });
  entries_.push_back({slot->timer.get_executor(), slot});
}

std::vector<waiter_list::entry> waiter_list::take() {
  std::vector<entry> out;
  out.swap(entries_);
  return out;
}

void waiter_list::wake(std::vector<entry>& entries, const wake_gate* gate) {
  if (gate != nullptr && !gate->is_open()) return;
  for (auto& e : entries) {
    if (e.slot.expired()) continue;
    // Locked and cancelled on the waiter's own thread; the handler holds no strong reference,
    // so the timer is only ever destroyed by its own coroutine.
    asio::post(e.ex, [w = std::move(e.slot)] {
      if (auto s = w.lock()) s->timer.cancel();
    });
  }
}

asio::awaitable<std::shared_ptr<wake_slot>> make_wake_slot(
    std::chrono::steady_clock::duration timeout) {
  auto slot = std::make_shared<wake_slot>(co_await asio::this_coro::executor);
  slot->timer.expires_after(timeout);
  co_return slot;
}

asio::awaitable<void> wait_on(wake_slot& slot) {
  co_await slot.timer.async_wait(asio::as_tuple(asio::use_awaitable));
}

}  // namespace storecache::upstream
