// Streams one response body into the store (see the object life cycle at the top of
// store.cpp). Obtained from store::begin_insert(); one thread at a time.
//
//   append(bytes)*  -> commit(head)   the object becomes visible to lookups, atomically
//                   -> abandon()      nothing of it remains (also what the destructor does)
//
// A body that grows past max_object_size is still written (collapsed readers may be reading
// the file as it grows: see open_reader) and counted as too_big at once; commit() then
// refuses it with store_errc::too_big and nothing of it remains. append() and commit() do blocking
// disk I/O (commit fsyncs): run them off the network threads. Back-pressure is the caller's: append
// returns when the bytes are written.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "cache/store_error.hpp"
#include "cache/store_hash.hpp"
#include "cache/store_meta.hpp"

namespace storecache::cache {

namespace detail {
struct store_state;
class unique_fd;
}  // namespace detail

class insert_handle {
 public:
  insert_handle();  // finished, holds nothing
  insert_handle(insert_handle&&) noexcept;
  insert_handle& operator=(insert_handle&&) noexcept;
  ~insert_handle();

  error_code append(std::string_view bytes);
  // Makes the object visible. Fails with size_mismatch if a size was declared and not met
  // (a short upstream body is never stored as complete). The handle is finished either way.
  // Many handles at once: store::commit_batch (one index transaction, one flush).
  error_code commit(const stored_head& head);
  void abandon() noexcept;

  std::uint64_t size() const { return size_; }
  bool finished() const { return state_ == nullptr; }

  // A new read-only descriptor on the body being written, once it lives in a file (-1 before
  // that, or on error): collapsed readers pread() the bytes appended so far. It stays valid
  // after commit renames the file and after abandon unlinks it.
  int open_reader() const;

 private:
  friend class store;
  friend struct detail::store_state;  // commits batches of handles (store_commit.cpp)
  insert_handle(std::shared_ptr<detail::store_state> state, std::string primary,
                std::string variant, std::optional<std::uint64_t> declared);
  error_code spill_to_file();
  error_code fail(error_code ec);

  std::shared_ptr<detail::store_state> state_;  // null once finished
  std::string primary_;
  std::string variant_;
  std::optional<std::uint64_t> declared_;
  std::uint64_t size_ = 0;
  std::uint32_t crc_ = 0;
  bool oversize_ = false;  // past max_object_size: written for readers, never committed
  std::string buffer_;     // the body while it still fits inline
  std::uint64_t id_ = 0;   // object id; names the temporary and the final file
  std::unique_ptr<detail::unique_fd> file_;  // the temporary file, once the body spilled
};

}  // namespace storecache::cache
