#include "proxy/fill.hpp"

#include <unistd.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstring>

namespace storecache::proxy {

namespace {
// Readers get the first bytes from memory: the store keeps small bodies in memory until they
// outgrow its inline limit (16 KiB), and only then does a file exist to read from.
constexpr std::size_t prefix_limit = 256 * 1024;
}  // namespace

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

void fill::publish_head(cache::stored_head head, std::string variant,
                        std::optional<std::uint64_t> length) {
  std::vector<std::shared_ptr<asio::steady_timer>> timers;
  {
    std::lock_guard lock(mutex_);
    upstream_status_ = head.status;
    head_ = std::move(head);
    variant_ = std::move(variant);
    length_ = length;
    state_ = state::streaming;
    wake_locked(timers);
  }
  wake(timers);
}

void fill::advance(std::string_view bytes) {
  std::vector<std::shared_ptr<asio::steady_timer>> timers;
  {
    std::lock_guard lock(mutex_);
    if (available_ < prefix_limit)
      prefix_.append(
          bytes.substr(0, std::min<std::size_t>(bytes.size(), prefix_limit - available_)));
    available_ += bytes.size();
    wake_locked(timers);
  }
  wake(timers);
}

void fill::set_reader_fd(int fd) {
  std::lock_guard lock(mutex_);
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

void fill::complete() {
  finish(state::complete);
}

void fill::finish(state terminal, upstream_error err, unsigned status) {
  std::vector<std::shared_ptr<asio::steady_timer>> timers;
  {
    std::lock_guard lock(mutex_);
    state_ = terminal;
    error_ = err;
    if (status != 0) upstream_status_ = status;
    wake_locked(timers);
  }
  wake(timers);
}

void fill::wake_locked(std::vector<std::shared_ptr<asio::steady_timer>>& out) {
  out.swap(waiters_);
}

void fill::wake(std::vector<std::shared_ptr<asio::steady_timer>>& timers) {
  // Each waiter's timer lives on its reader's executor: cancel it there, never from here.
  for (auto& t : timers)
    asio::post(t->get_executor(), [t] { t->cancel(); });
}

asio::awaitable<void> fill::wait(std::uint64_t pos, std::chrono::milliseconds timeout) {
  auto timer = std::make_shared<asio::steady_timer>(co_await asio::this_coro::executor, timeout);
  {
    std::lock_guard lock(mutex_);
    const bool ready =
        available_ > pos || (state_ != state::head_pending && state_ != state::streaming);
    if (ready) co_return;
    waiters_.push_back(timer);
  }
  co_await timer->async_wait(asio::as_tuple(asio::use_awaitable));
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

std::pair<std::shared_ptr<fill>, bool> inflight_table::join_or_create(const std::string& primary) {
  std::lock_guard lock(mutex_);
  auto [it, fresh] = fills_.try_emplace(primary);
  if (fresh) it->second = std::make_shared<fill>(primary);
  return {it->second, fresh};
}

std::shared_ptr<fill> inflight_table::find(const std::string& primary) {
  std::lock_guard lock(mutex_);
  auto it = fills_.find(primary);
  return it == fills_.end() ? nullptr : it->second;
}

std::size_t inflight_table::size() {
  std::lock_guard lock(mutex_);
  return fills_.size();
}

void inflight_table::remove(const std::shared_ptr<fill>& f) {
  std::lock_guard lock(mutex_);
  auto it = fills_.find(f->primary());
  if (it != fills_.end() && it->second == f) fills_.erase(it);
}

}  // namespace storecache::proxy
