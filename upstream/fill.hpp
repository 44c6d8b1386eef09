// A fill: one upstream fetch of a cacheable response that any number of clients read while it
// arrives (request collapsing). The body goes into the store's insert handle; readers pread
// the bytes written so far from the same temporary file (or from the in-memory prefix).
//
// Life cycle (one mutex guards it; waiters are woken on their own executors, waiter_list):
//   head_pending --publish_head--> streaming --finish_body--> body_done --complete--> complete
//        |                             |                        (every byte is here; the
//        |                             |                         commit is under way)
//        |                             +--fail--> failed (readers abort: never short)
//        |                             '--abandon_if_orphaned--> abandoned (no reader left)
//        '--fail / not_shared / not_modified / abandoned (terminal before any body: the
//                                                      leader was refused a fetch)
//
// Readers: every client that answers from the fill holds a `reader` (the leader included).
// A fill whose readers are all gone is an orphan: judge_orphan decides whether it
// goes on (small, mostly there, wanted by several devices, a background refresh) or stops.
// An abandoned fill takes no new reader; the in-flight table then starts a new fill instead.
//
// Unstored (pass_through): storing failed mid-body (disk full), but the readers already here
// still get the whole body from the upstream. What was written stays readable from the
// (unlinked) file; the bytes after it are kept in memory, at most window_limit of them beyond
// what the slowest reader still needs: the writer waits for readers (back-pressure on the
// upstream) and drops bytes only when a reader has not moved for `stall`. That reader's next
// read is `lost`: its response must end in error, never short.
#pragma once

#include <array>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <unordered_map>

#include "cache/store_meta.hpp"
#include "upstream/orphan_policy.hpp"
#include "upstream/upstream_error.hpp"
#include "upstream/waiter_list.hpp"

namespace storecache::upstream {

class fill {
 public:
  enum class state {
    head_pending,
    streaming,
    body_done,
    complete,
    failed,
    not_shared,
    not_modified,
    abandoned
  };

  struct view {  // a consistent snapshot for a reader
    state st = state::head_pending;
    std::uint64_t available = 0;
    std::optional<std::uint64_t> length;  // declared Content-Length
  };

  using cursor = std::multiset<std::uint64_t>::iterator;  // where a reader reads next

  struct read_result {
    std::size_t n = 0;  // bytes copied (0: none available yet)
    bool lost = false;  // the bytes at pos are gone (an unstored fill left this reader behind)
  };

  // A client reading (or about to read) the fill. Move-only; leaving is its destruction.
  class reader {
   public:
    reader() = default;
    reader(std::shared_ptr<fill> f, cursor c) : f_(std::move(f)), at_(c) {}
    reader(reader&& o) noexcept : f_(std::move(o.f_)), at_(o.at_) {}
    reader& operator=(reader&& o) noexcept {
      if (this != &o) {
        reset();
        f_ = std::move(o.f_);
        at_ = o.at_;
      }
      return *this;
    }
    ~reader() { reset(); }
    void reset() {
      if (f_) f_->detach(at_);
      f_.reset();
    }
    explicit operator bool() const { return f_ != nullptr; }
    // Copies bytes at [pos, pos + out.size()) that are available, and tells the fill that
    // this reader needs nothing before pos any more.
    read_result read(std::uint64_t pos, std::span<char> out) { return f_->read_at(at_, pos, out); }

   private:
    std::shared_ptr<fill> f_;
    cursor at_{};
  };

  // Bytes an unstored fill keeps in memory beyond what its slowest reader needs.
  static constexpr std::size_t window_limit = 2 * 1024 * 1024;

  fill(std::string primary, bool background, std::shared_ptr<const wake_gate> gate);
  ~fill();

  const std::string& primary() const { return primary_; }
  view snapshot() const;
  // Valid once the state left head_pending with streaming/body_done/complete.
  const cache::stored_head& head() const { return head_; }
  const std::string& variant() const { return variant_; }
  upstream_error error() const;
  unsigned upstream_status() const;
  bool body_arrived() const;  // body_done or complete

  // --- readers (through inflight_table::join_or_create) ---
  std::size_t readers() const;
  std::uint32_t requesters() const;

  // --- writer side (the coroutine that pumps the upstream body) ---
  void publish_head(cache::stored_head head, std::string variant,
                    std::optional<std::uint64_t> length);
  // Bytes [available, available + bytes.size()) were appended to the insert handle.
  void advance(std::string_view bytes);
  void set_reader_fd(int fd);  // takes ownership
  void finish_body();          // every byte arrived; readers may end their responses
  // Storing failed: the bytes advanced so far stay readable from the file (or the prefix),
  // the ones advanced from now on are kept in memory (see the top of this file).
  void pass_through();
  bool passing_through() const;
  std::uint64_t memory_bytes() const;  // held for readers of an unstored fill
  // Unstored: returns once the memory window has room again (true), or after `stall` without
  // any (false: the oldest bytes were dropped; readers that needed them are lost).
  boost::asio::awaitable<bool> wait_for_room(std::chrono::milliseconds stall);
  void complete();  // committed (or not storable after all): it leaves the table
  void finish(state terminal, upstream_error err = upstream_error::none, unsigned status = 0);
  // The background fetch that started it no longer wants it (prefetch gave up a listing over
  // its size or time bound): from now on it is judged as any fill with no reader, so a small
  // body finishes and is stored, a large one pauses and stops (orphan_policy).
  void unwanted();
  // With no reader left: what the policy says (nullopt while someone reads).
  std::optional<orphan_verdict> judge_if_orphaned(const orphan_policy& policy) const;
  // The writer, paused on a `stop` verdict: true as soon as a reader is back (or a new
  // address asked meanwhile), false when `grace` passed without one.
  boost::asio::awaitable<bool> wait_for_reader(std::chrono::milliseconds grace);
  // Stops the fill if it still has no reader and the policy still says stop (state
  // abandoned); true when it stopped. Judged under the lock, so no joiner slips in between.
  bool abandon_if_orphaned(const orphan_policy& policy);

  // --- reader side ---
  // Returns when the fill has more than `pos` bytes, changed state, or `timeout` passed.
  boost::asio::awaitable<void> wait(std::uint64_t pos, std::chrono::milliseconds timeout);
  // Copies bytes at [pos, pos + out.size()) that are available; returns how many (0: none yet).
  // Without a reader's cursor: for a fill that is stored (not pass_through).
  std::size_t read(std::uint64_t pos, std::span<char> out) const;

 private:
  friend class inflight_table;
  std::optional<cursor> try_attach(const boost::asio::ip::address& client);
  void detach(cursor c);
  read_result read_at(cursor& c, std::uint64_t pos, std::span<char> out);
  void trim_locked();  // drops memory no reader needs any more
  void set_state_and_wake(std::unique_lock<std::mutex>& lock, state s);
  // nullopt while someone reads (or the fill has ended); under mutex_.
  std::optional<orphan_verdict> orphan_verdict_locked(const orphan_policy& policy) const;

  const std::string primary_;
  bool background_;  // under mutex_ (unwanted() clears it)
  const std::shared_ptr<const wake_gate> gate_;
  mutable std::mutex mutex_;
  state state_ = state::head_pending;
  cache::stored_head head_;
  std::string variant_;
  std::optional<std::uint64_t> length_;
  std::uint64_t available_ = 0;
  std::string prefix_;  // the first prefix_limit bytes, for readers before the file exists
  int fd_ = -1;
  std::multiset<std::uint64_t> cursors_;  // one per reader
  bool passthrough_ = false;
  std::uint64_t file_end_ = 0;     // pass_through: bytes below are read from the file/prefix
  std::uint64_t window_base_ = 0;  // pass_through: offset of memory_.front()
  std::uint64_t memory_bytes_ = 0;
  std::deque<std::string> memory_;  // pass_through: the bytes from window_base_ on
  waiter_list writer_waiters_;      // the writer waiting for room (readers wake it)
  upstream_error error_ = upstream_error::none;
  unsigned upstream_status_ = 0;
  waiter_list waiters_;
  std::size_t readers_ = 0;
  // Distinct client addresses that asked, up to the most any policy needs.
  static constexpr std::size_t max_requesters = 8;
  std::array<boost::asio::ip::address, max_requesters> requesters_{};
  std::uint32_t requester_count_ = 0;
};

// Primary key -> the fill in flight for it. Shared by all workers.
class inflight_table {
 public:
  explicit inflight_table(std::shared_ptr<const wake_gate> gate) : gate_(std::move(gate)) {}

  struct joined {
    std::shared_ptr<fill> f;
    fill::reader reader;   // empty for a background fill that no client reads
    bool created = false;  // the caller leads it: it must run or end it
  };
  // Joins the fill in flight for this key as a reader, or creates one (replacing an abandoned
  // fill). background: a fill storecache starts for itself, with no reader.
  joined join_or_create(const std::string& primary, const boost::asio::ip::address& client,
                        bool background = false);
  std::shared_ptr<fill> find(const std::string& primary);
  void remove(const std::shared_ptr<fill>& f);
  std::size_t size() const;

 private:
  std::shared_ptr<const wake_gate> gate_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<fill>> fills_;
};

}  // namespace storecache::upstream
