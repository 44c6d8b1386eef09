// A fill: one upstream fetch of a cacheable response that any number of clients read while it
// arrives (request collapsing). The body goes into the store's insert handle; readers pread
// the bytes written so far from the same temporary file (or from the in-memory prefix).
//
// Life cycle (one mutex guards it; waiters are woken by posting to their own executor):
//   head_pending --publish_head--> streaming --complete--> complete
//        |                             '------fail------> failed (readers abort: never short)
//        '--fail / not_shared / not_modified (terminal before any body)
// The fill is found through the in-flight table until it ends; readers keep it alive with a
// shared_ptr until they have read what they need.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "cache/store_meta.hpp"
#include "proxy/upstream.hpp"

namespace storecache::proxy {

class fill {
 public:
  enum class state { head_pending, streaming, complete, failed, not_shared, not_modified };

  struct view {  // a consistent snapshot for a reader
    state st = state::head_pending;
    std::uint64_t available = 0;
    std::optional<std::uint64_t> length;  // declared Content-Length
  };

  explicit fill(std::string primary) : primary_(std::move(primary)) {}
  ~fill();

  const std::string& primary() const { return primary_; }
  view snapshot() const;
  // Valid once the state left head_pending with streaming/complete.
  const cache::stored_head& head() const { return head_; }
  const std::string& variant() const { return variant_; }
  upstream_error error() const;
  unsigned upstream_status() const;

  // --- writer side (the coroutine that pumps the upstream body) ---
  void publish_head(cache::stored_head head, std::string variant,
                    std::optional<std::uint64_t> length);
  // Bytes [available, available + bytes.size()) were appended to the insert handle.
  void advance(std::string_view bytes);
  void set_reader_fd(int fd);  // takes ownership
  void complete();
  void finish(state terminal, upstream_error err = upstream_error::none, unsigned status = 0);

  // --- reader side ---
  // Returns when the fill has more than `pos` bytes, changed state, or `timeout` passed.
  boost::asio::awaitable<void> wait(std::uint64_t pos, std::chrono::milliseconds timeout);
  // Copies bytes at [pos, pos + out.size()) that are available; returns how many (0: none yet).
  std::size_t read(std::uint64_t pos, std::span<char> out) const;

 private:
  void wake_locked(std::vector<std::shared_ptr<boost::asio::steady_timer>>& out);
  static void wake(std::vector<std::shared_ptr<boost::asio::steady_timer>>& timers);

  const std::string primary_;
  mutable std::mutex mutex_;
  state state_ = state::head_pending;
  cache::stored_head head_;
  std::string variant_;
  std::optional<std::uint64_t> length_;
  std::uint64_t available_ = 0;
  std::string prefix_;  // the first prefix_limit bytes, for readers before the file exists
  int fd_ = -1;
  upstream_error error_ = upstream_error::none;
  unsigned upstream_status_ = 0;
  std::vector<std::shared_ptr<boost::asio::steady_timer>> waiters_;
};

// Primary key -> the fill in flight for it. Shared by all workers.
class inflight_table {
 public:
  // The fill for this key, and whether the caller created it (and must run it).
  std::pair<std::shared_ptr<fill>, bool> join_or_create(const std::string& primary);
  std::shared_ptr<fill> find(const std::string& primary);
  void remove(const std::shared_ptr<fill>& f);
  std::size_t size();  // fills in flight, for /metrics

 private:
  std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<fill>> fills_;
};

}  // namespace storecache::proxy
