#include "upstream/fill.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace storecache::upstream {

namespace {
// Readers get the first bytes from memory: the store keeps small bodies in memory until they
// outgrow its inline limit (16 KiB), and only then does a file exist to read from.
constexpr std::size_t prefix_limit = 256 * 1024;

bool terminal(fill::state s) {
  return s != fill::state::head_pending && s != fill::state::streaming;
}
}  // namespace

fill::fill(std::string primary, bool background, std::shared_ptr<const wake_gate> gate)
    : primary_(std::move(primary)), background_(background), gate_(std::move(gate)) {}

fill::~fill() {
  if (fd_ >= 0) ::close(fd_);
}

fill::view fill::snapshot() const {
  std::lock_guard lock(mutex_);
  return {state_, available_, length_};
}

upstream_error fill::error() const {
  std::lock_guard lock(mutex_);
  return error_;
}

unsigned fill::upstream_status() const {
  std::lock_guard lock(mutex_);
  return upstream_status_;
}

bool fill::body_arrived() const {
  std::lock_guard lock(mutex_);
  return state_ == state::body_done || state_ == state::complete;
}

std::size_t fill::readers() const {
  std::lock_guard lock(mutex_);
  return readers_;
}

std::uint32_t fill::requesters() const {
  std::lock_guard lock(mutex_);
  return requester_count_;
}

std::optional<fill::cursor> fill::try_attach(const boost::asio::ip::address& client) {
  std::unique_lock lock(mutex_);
  // An unstored fill's beginning may be gone from memory: a newcomer fetches on its own.
  if (state_ == state::abandoned || passthrough_) return std::nullopt;
  ++readers_;
  auto known = requesters_.begin() + requester_count_;
  if (requester_count_ < max_requesters && std::find(requesters_.begin(), known, client) == known)
    requesters_[requester_count_++] = client;
  auto c = cursors_.insert(0);
  set_state_and_wake(lock, state_);  // a paused writer resumes
  return c;
}

void fill::detach(cursor c) {
  std::unique_lock lock(mutex_);
  --readers_;
  cursors_.erase(c);
  if (!passthrough_) return;
  auto woken = writer_waiters_.take();  // the window may have room now
  lock.unlock();
  waiter_list::wake(woken, gate_.get());
}

void fill::set_state_and_wake(std::unique_lock<std::mutex>& lock, state s) {
  state_ = s;
  auto woken = waiters_.take();
  lock.unlock();
  waiter_list::wake(woken, gate_.get());
}

void fill::publish_head(cache::stored_head head, std::string variant,
                        std::optional<std::uint64_t> length) {
  std::unique_lock lock(mutex_);
  upstream_status_ = head.status;
  head_ = std::move(head);
  variant_ = std::move(variant);
  length_ = length;
  set_state_and_wake(lock, state::streaming);
}

void fill::advance(std::string_view bytes) {
  std::unique_lock lock(mutex_);
  if (available_ < prefix_limit)
    prefix_.append(bytes.substr(0, std::min<std::size_t>(bytes.size(), prefix_limit - available_)));
  if (passthrough_ && !bytes.empty()) {
    memory_.emplace_back(bytes);
    memory_bytes_ += bytes.size();
  }
  available_ += bytes.size();
  set_state_and_wake(lock, state_);
}

void fill::pass_through() {
  std::lock_guard lock(mutex_);
  if (passthrough_) return;
  passthrough_ = true;
  file_end_ = available_;
  window_base_ = available_;
}

bool fill::passing_through() const {
  std::lock_guard lock(mutex_);
  return passthrough_;
}

std::uint64_t fill::memory_bytes() const {
  std::lock_guard lock(mutex_);
  return memory_bytes_;
}

void fill::trim_locked() {
  // The oldest byte any reader still needs from memory (readers below file_end_ will need
  // file_end_ next); with no reader, none. Readers already left behind (the bytes they need
  // next are gone) hold nothing back.
  const auto alive = cursors_.lower_bound(window_base_ > file_end_ ? window_base_ : 0);
  const std::uint64_t need = alive == cursors_.end() ? available_ : std::max(*alive, file_end_);
  while (!memory_.empty() && window_base_ + memory_.front().size() <= need) {
    window_base_ += memory_.front().size();
    memory_bytes_ -= memory_.front().size();
    memory_.pop_front();
  }
}

boost::asio::awaitable<bool> fill::wait_for_room(std::chrono::milliseconds stall) {
  const auto deadline = std::chrono::steady_clock::now() + stall;
  for (;;) {
    const auto left = deadline - std::chrono::steady_clock::now();
    auto slot = co_await make_wake_slot(std::max(left, decltype(left){}));
    {
      std::lock_guard lock(mutex_);
      trim_locked();
      if (memory_bytes_ < window_limit) co_return true;
      if (left <= decltype(left){}) {
        // The slowest reader has not moved for `stall`: it is left behind, the others go on.
        while (!memory_.empty() && memory_bytes_ >= window_limit) {
          window_base_ += memory_.front().size();
          memory_bytes_ -= memory_.front().size();
          memory_.pop_front();
        }
        co_return false;
      }
      writer_waiters_.add(slot);  // a reader moving on, or leaving, wakes it
    }
    co_await wait_on(*slot);
  }
}

void fill::set_reader_fd(int fd) {
  std::lock_guard lock(mutex_);
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

void fill::finish_body() {
  std::unique_lock lock(mutex_);
  set_state_and_wake(lock, state::body_done);
}

void fill::complete() {
  finish(state::complete);
}

void fill::finish(state terminal_state, upstream_error err, unsigned status) {
  std::unique_lock lock(mutex_);
  error_ = err;
  if (status != 0) upstream_status_ = status;
  set_state_and_wake(lock, terminal_state);
}

std::optional<orphan_verdict> fill::orphan_verdict_locked(const orphan_policy& policy) const {
  if (readers_ > 0 || terminal(state_)) return std::nullopt;
  return judge_orphan(policy, {.length = length_,
                               .arrived = available_,
                               .requesters = requester_count_,
                               .background = background_});
}

void fill::unwanted() {
  std::lock_guard lock(mutex_);
  background_ = false;
}

std::optional<orphan_verdict> fill::judge_if_orphaned(const orphan_policy& policy) const {
  std::lock_guard lock(mutex_);
  return orphan_verdict_locked(policy);
}

boost::asio::awaitable<bool> fill::wait_for_reader(std::chrono::milliseconds grace) {
  const auto deadline = std::chrono::steady_clock::now() + grace;
  std::uint32_t requesters_before = 0;
  {
    std::lock_guard lock(mutex_);
    requesters_before = requester_count_;
  }
  for (;;) {
    const auto left = deadline - std::chrono::steady_clock::now();
    auto slot = co_await make_wake_slot(std::max(left, decltype(left){}));
    {
      std::lock_guard lock(mutex_);
      // A reader now, or one that came and went before this coroutine ran (a new address
      // that asked may change the verdict: wanted by several devices).
      if (readers_ > 0 || requester_count_ != requesters_before) co_return true;
      if (left <= decltype(left){}) co_return false;
      waiters_.add(slot);  // try_attach wakes it
    }
    co_await wait_on(*slot);
  }
}

bool fill::abandon_if_orphaned(const orphan_policy& policy) {
  std::unique_lock lock(mutex_);
  if (orphan_verdict_locked(policy) != orphan_verdict::stop) return false;
  set_state_and_wake(lock, state::abandoned);
  return true;
}

boost::asio::awaitable<void> fill::wait(std::uint64_t pos, std::chrono::milliseconds timeout) {
  // Between registering and waiting nothing suspends, and a wake-up is posted to this very
  // (single-threaded) executor: it cannot run before the wait has begun.
  auto slot = co_await make_wake_slot(timeout);
  {
    std::lock_guard lock(mutex_);
    if (available_ > pos || terminal(state_) || state_ == state::body_done) co_return;
    waiters_.add(slot);
  }
  co_await wait_on(*slot);
}

fill::read_result fill::read_at(cursor& c, std::uint64_t pos, std::span<char> out) {
  std::unique_lock lock(mutex_);
  if (*c != pos) {
    // (a multiset node re-keyed in place: no allocation per read)
    auto node = cursors_.extract(c);
    node.value() = pos;
    c = cursors_.insert(std::move(node));
    if (passthrough_ && writer_waiters_.size() > 0) {
      auto woken = writer_waiters_.take();
      lock.unlock();
      waiter_list::wake(woken, gate_.get());
      lock.lock();
    }
  }
  if (!passthrough_ || pos < file_end_) {
    const std::uint64_t end = passthrough_ ? file_end_ : available_;
    lock.unlock();
    if (pos >= end) return {};
    return {
        read(pos,
             out.first(static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), end - pos)))),
        false};
  }
  if (pos >= available_) return {};
  if (pos < window_base_) return {0, true};
  std::uint64_t at = window_base_;
  for (const auto& piece : memory_) {
    if (pos < at + piece.size()) {
      const auto off = static_cast<std::size_t>(pos - at);
      const std::size_t n = std::min(out.size(), piece.size() - off);
      std::memcpy(out.data(), piece.data() + off, n);
      return {n, false};
    }
    at += piece.size();
  }
  return {};
}

std::size_t fill::read(std::uint64_t pos, std::span<char> out) const {
  std::unique_lock lock(mutex_);
  if (pos >= available_) return 0;
  std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), available_ - pos));
  if (pos < prefix_.size()) {
    n = std::min<std::size_t>(n, prefix_.size() - static_cast<std::size_t>(pos));
    std::memcpy(out.data(), prefix_.data() + pos, n);
    return n;
  }
  const int fd = fd_;
  lock.unlock();  // the bytes below `available_` never change: read them without the lock
  if (fd < 0) return 0;
  ssize_t got = ::pread(fd, out.data(), n, static_cast<off_t>(pos));
  return got > 0 ? static_cast<std::size_t>(got) : 0;
}

inflight_table::joined inflight_table::join_or_create(const std::string& primary,
                                                      const boost::asio::ip::address& client,
                                                      bool background) {
  std::lock_guard lock(mutex_);
  auto& slot = fills_[primary];
  if (slot) {
    if (background) return {slot, {}, false};  // a fetch is on its way already
    if (auto c = slot->try_attach(client)) return {slot, fill::reader(slot, *c), false};
    // Abandoned (its pump is stopping) or unstored: a new fill takes its place for this client.
  }
  slot = std::make_shared<fill>(primary, background, gate_);
  if (background) return {slot, {}, true};
  auto c = slot->try_attach(client);
  return {slot, fill::reader(slot, *c), true};
}

std::shared_ptr<fill> inflight_table::find(const std::string& primary) {
  std::lock_guard lock(mutex_);
  auto it = fills_.find(primary);
  return it == fills_.end() ? nullptr : it->second;
}

void inflight_table::remove(const std::shared_ptr<fill>& f) {
  std::lock_guard lock(mutex_);
  auto it = fills_.find(f->primary());
  if (it != fills_.end() && it->second == f) fills_.erase(it);
}

std::size_t inflight_table::size() const {
  std::lock_guard lock(mutex_);
  return fills_.size();
}

}  // namespace storecache::upstream
