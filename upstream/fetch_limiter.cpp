#include "upstream/fetch_limiter.hpp"

#include <algorithm>
#include <deque>
#include <map>
#include <mutex>

namespace storecache::upstream {

struct fetch_limiter::site_slot {
  std::size_t active = 0;
};

namespace {

// One queued request. Shared by the waiter's frame and the queue; guarded by state::mutex.
struct ticket {
  fetch_limiter::site_slot* site = nullptr;
  bool granted = false;    // a slot was counted for it: the waiter must take it or give it back
  bool abandoned = false;  // the waiter left (timed out or destroyed): skip it
};

}  // namespace

struct fetch_limiter::state {
  explicit state(limits l, std::shared_ptr<const wake_gate> g) : lim(l), gate(std::move(g)) {}

  mutable std::mutex mutex;
  limits lim;
  std::shared_ptr<const wake_gate> gate;
  std::map<std::string, std::unique_ptr<site_slot>, std::less<>> sites;
  std::size_t active = 0;
  struct queued {
    std::shared_ptr<ticket> t;
    waiter_list wake;  // the one waiter of this ticket
  };
  std::deque<queued> queue;
  std::size_t waiting = 0;  // live (not abandoned) entries of queue
  stats counts;

  site_slot* site_locked(std::string_view name) {
    auto it = sites.find(name);
    if (it == sites.end())
      it = sites.emplace(std::string(name), std::make_unique<site_slot>()).first;
    return it->second.get();
  }
  bool fits_locked(const site_slot& s) const {
    return active < lim.total && s.active < lim.per_site;
  }
  void take_locked(site_slot& s) {
    ++active;
    counts.most_active = std::max<std::uint64_t>(counts.most_active, active);
    ++s.active;
    ++counts.granted;
  }
  // Grants slots to the oldest waiters that fit; collects their wake-ups.
  void grant_locked(std::vector<waiter_list::entry>& wakes) {
    for (auto it = queue.begin(); it != queue.end() && active < lim.total;) {
      ticket& t = *it->t;
      if (t.abandoned) {
        it = queue.erase(it);
        continue;
      }
      if (!fits_locked(*t.site)) {
        ++it;
        continue;
      }
      take_locked(*t.site);
      t.granted = true;
      --waiting;
      auto w = it->wake.take();
      wakes.insert(wakes.end(), w.begin(), w.end());
      it = queue.erase(it);
    }
  }
  void release(site_slot* s) {
    std::vector<waiter_list::entry> wakes;
    {
      std::lock_guard lock(mutex);
      --active;
      --s->active;
      grant_locked(wakes);
    }
    waiter_list::wake(wakes, gate.get());
  }
};

fetch_limiter::limits fetch_limiter::from_config(const config::limits& l) {
  return {l.upstream_fetches, l.upstream_fetches_per_site, l.upstream_queue};
}

fetch_limiter::permit::permit(permit&& o) noexcept
    : state_(std::move(o.state_)), site_(std::exchange(o.site_, nullptr)) {}

fetch_limiter::permit& fetch_limiter::permit::operator=(permit&& o) noexcept {
  if (this != &o) {
    reset();
    state_ = std::move(o.state_);
    site_ = std::exchange(o.site_, nullptr);
  }
  return *this;
}

fetch_limiter::permit::~permit() {
  reset();
}

void fetch_limiter::permit::reset() {
  if (!state_) return;
  state_->release(site_);
  state_.reset();
  site_ = nullptr;
}

fetch_limiter::fetch_limiter(limits l, std::shared_ptr<const wake_gate> gate)
    : state_(std::make_shared<state>(l, std::move(gate))) {}

fetch_limiter::~fetch_limiter() = default;

void fetch_limiter::set_limits(const limits& l) {
  std::vector<waiter_list::entry> wakes;
  {
    std::lock_guard lock(state_->mutex);
    state_->lim = l;
    state_->grant_locked(wakes);
  }
  waiter_list::wake(wakes, state_->gate.get());
}

fetch_limiter::permit fetch_limiter::try_acquire(std::string_view site) {
  std::lock_guard lock(state_->mutex);
  site_slot* s = state_->site_locked(site);
  if (!state_->fits_locked(*s)) return {};
  state_->take_locked(*s);
  return permit(state_, s);
}

boost::asio::awaitable<fetch_limiter::permit> fetch_limiter::acquire(
    std::string_view site, std::chrono::steady_clock::duration timeout, refusal& why) {
  why = refusal::none;
  auto st = state_;
  auto slot = co_await make_wake_slot(timeout);
  auto t = std::make_shared<ticket>();
  {
    std::lock_guard lock(st->mutex);
    site_slot* s = st->site_locked(site);
    // Nobody overtakes the queue: a free slot goes to an older waiter of the same site first.
    if (st->fits_locked(*s) && st->waiting == 0) {
      st->take_locked(*s);
      co_return permit(st, s);
    }
    if (st->waiting >= st->lim.queue) {
      ++st->counts.queue_full;
      why = refusal::queue_full;
      co_return permit();
    }
    t->site = s;
    if (st->queue.size() >= 2 * st->lim.queue + 16)
      std::erase_if(st->queue, [](const state::queued& q) { return q.t->abandoned; });
    st->queue.push_back({t, {}});
    st->queue.back().wake.add(slot);
    ++st->waiting;
    ++st->counts.queued;
  }
  // Leaves the queue however this frame ends (timeout, or destroyed at shutdown): a slot
  // granted meanwhile and not taken goes back.
  struct leave_guard {
    state& st;
    ticket& t;
    bool taken = false;
    ~leave_guard() {
      if (taken) return;
      bool give_back = false;
      {
        std::lock_guard lock(st.mutex);
        if (t.granted) {
          give_back = true;
        } else if (!t.abandoned) {
          t.abandoned = true;
          --st.waiting;
        }
      }
      if (give_back) st.release(t.site);
    }
  } guard{*st, *t};
  co_await wait_on(*slot);
  std::lock_guard lock(st->mutex);
  if (t->granted) {
    guard.taken = true;
    co_return permit(st, t->site);
  }
  ++st->counts.timed_out;
  why = refusal::timed_out;
  co_return permit();  // the guard marks the ticket abandoned
}

fetch_limiter::stats fetch_limiter::snapshot() const {
  std::lock_guard lock(state_->mutex);
  stats s = state_->counts;
  s.active = state_->active;
  s.waiting = state_->waiting;
  return s;
}

std::string_view to_string(fetch_limiter::refusal r) {
  switch (r) {
    case fetch_limiter::refusal::none:
      return "none";
    case fetch_limiter::refusal::queue_full:
      return "queue_full";
    case fetch_limiter::refusal::timed_out:
      return "timeout";
  }
  return "none";
}

}  // namespace storecache::upstream
