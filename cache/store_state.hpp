// Internal: the state store, insert_handle and body_reader share. Not for use outside cache/.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "cache/lmdb.hpp"
#include "cache/store.hpp"
#include "cache/store_files.hpp"
#include "cache/store_hash.hpp"
#include "cache/store_meta.hpp"

namespace storecache::cache::detail {

// Index overhead charged per object on top of its body: LMDB node headers, the lru and
// variants entries, page slack. An estimate; the exact figure is not observable per object.
inline constexpr std::uint64_t entry_overhead = 128;
inline constexpr std::uint64_t block_size = 4096;  // file bodies occupy whole blocks

struct store_state {
  store_state(store_options o) : opts(std::move(o)), layout(opts.dir) {}

  store_options opts;
  object_layout layout;
  lmdb::env env;
  lmdb::dbi objects;   // object hash -> encoded object_meta
  lmdb::dbi bodies;    // object hash -> inline body bytes
  lmdb::dbi lru;       // big-endian access tick + object hash -> "" (oldest first)
  lmdb::dbi variants;  // primary hash -> object hash (dupsort)
  lmdb::dbi meta;      // "format", "secret"
  lmdb::dbi pins;      // owner -> its pinned primary hashes, 16 bytes each
  hash_secret secret;

  std::atomic<std::uint64_t> clock{1};  // logical access clock, > every tick in the index
  std::atomic<std::uint64_t> next_id{1};

  // Totals change only inside a write transaction (before its commit, undone if the commit
  // fails): writers are serialized by LMDB, so eviction decisions see exact figures.
  std::atomic<std::uint64_t> objects_count{0};
  std::atomic<std::uint64_t> bytes{0};
  std::atomic<std::uint64_t> inserts{0};
  std::atomic<std::uint64_t> evictions{0};
  std::atomic<std::uint64_t> insert_failures{0};
  std::atomic<std::uint64_t> no_space{0};  // disk or index map full (not in insert_failures)
  std::atomic<std::uint64_t> too_big{0};
  std::atomic<std::uint64_t> corrupt_drops{0};

  std::mutex access_mu;
  std::unordered_map<key_hash, std::uint64_t> access;  // hash -> newest tick not yet flushed

  // Pins (store.hpp). Taken inside write transactions (eviction): never open one under it.
  mutable std::mutex pins_mu;
  std::unordered_map<std::string, std::unordered_set<key_hash>> pin_owners;
  std::unordered_map<key_hash, std::uint32_t> pinned;  // primary hash -> owners pinning it
  std::atomic<std::uint64_t> pin_skips{0};
  bool is_pinned(const key_hash& primary) const;

  recovery_report recovery;
  unique_fd dir_lock;  // flock on <dir>/lock: one process per cache directory

  std::mutex verify_mu;
  std::string verify_next;  // verify_bodies() resumes at this object hash

  std::uint64_t tick() { return clock.fetch_add(1, std::memory_order_relaxed); }
  std::uint64_t new_id() { return next_id.fetch_add(1, std::memory_order_relaxed); }

  void touch(const key_hash& h);
  error_code flush_access();
  // Drops the object if the index still holds this very body (object_id); unlinks its file.
  void drop_corrupt(const key_hash& h, std::uint64_t object_id);
  unique_fd objects_dir;  // <dir>/objects: syncfs() through it flushes a batch's bodies

  // store::commit_batch and insert_handle::commit (store_commit.cpp).
  void commit_batch(std::span<pending_commit> batch);

 private:
  struct staged_object;
  // Step 1 of a commit: checks the body, renames a file body into place. On error the handle
  // is finished and the error returned.
  error_code stage_body(pending_commit& p, bool fsync_each, std::vector<staged_object>& out);
  // Steps 3 and 4: one write transaction for all of objs, then unlinks what it replaced.
  error_code index_objects(std::span<staged_object> objs);
  error_code index_one(lmdb::write_txn& txn, staged_object& o, std::uint64_t& total,
                       std::uint64_t& count, std::vector<std::uint64_t>& unlink_after,
                       std::uint64_t& evicted);
};

std::string lru_key(std::uint64_t tick, const key_hash& h);

// Deletes every index entry of one object in txn (not its file).
error_code erase_entries(store_state& s, lmdb::write_txn& txn, const key_hash& h,
                         const object_meta& m);

// Runs at open: removes temporary and orphan files, drops entries whose body is missing or
// has the wrong size, rebuilds the lru DB where it disagrees, and sets the totals.
error_code recover(store_state& s);

// Runs at open, after recover: the owners' pins from the index into memory.
error_code load_pins(store_state& s);

}  // namespace storecache::cache::detail
