// The body store: an LMDB index plus body files under one cache directory. No sockets; all
// calls are synchronous and thread-safe. Life cycle of an object: top of store.cpp.
//
//   <dir>/index/            LMDB env: objects, bodies (inline), lru, variants, meta + extra DBs
//   <dir>/objects/ab/<id>   body files larger than inline_max
//   <dir>/objects/tmp/      bodies being written (removed at open)
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "cache/body_reader.hpp"
#include "cache/lmdb.hpp"
#include "cache/store_error.hpp"
#include "cache/store_insert.hpp"
#include "cache/store_meta.hpp"

namespace storecache::cache {

struct store_options {
  std::filesystem::path dir;
  std::uint64_t max_size = 10ull << 30;  // bodies + index entries, estimated (see charge)
  std::uint64_t max_object_size = 4ull << 30;
  std::size_t inline_max = 16 * 1024;            // bodies up to this size live in LMDB
  std::size_t map_size = std::size_t{64} << 30;  // LMDB virtual map
  std::size_t access_flush_batch = 4096;         // recency updates kept in memory before a flush
};

// What open() found and repaired.
struct recovery_report {
  std::uint64_t temp_files_removed = 0;    // half-written bodies
  std::uint64_t orphan_files_removed = 0;  // body files no index entry names
  std::uint64_t missing_bodies = 0;        // entries dropped: file gone
  std::uint64_t wrong_size_bodies = 0;     // entries dropped: file size disagrees
  std::uint64_t bad_entries = 0;           // entries dropped: undecodable metadata or inline body
  std::uint64_t objects = 0;               // what remains
  std::uint64_t bytes = 0;
};

// Counters for /metrics (a snapshot).
struct store_counters {
  std::uint64_t objects = 0;
  std::uint64_t bytes = 0;  // charged bytes, the figure kept under max_size
  std::uint64_t inserts = 0;
  std::uint64_t evictions = 0;
  std::uint64_t insert_failures = 0;  // I/O or index errors (not too_big, not abandon)
  std::uint64_t no_space = 0;         // the disk or the LMDB map was full (not in insert_failures)
  std::uint64_t too_big = 0;          // refused by max_object_size
  std::uint64_t corrupt_drops = 0;
  // The LMDB file's high-water mark. Not part of `bytes`, which charges each object an
  // estimate of its index share instead: LMDB never shrinks its file but reuses freed pages.
  std::uint64_t index_file_bytes = 0;
  std::uint64_t access_pending = 0;  // hits' recency kept in memory until the next flush
  std::uint64_t pinned_keys = 0;     // primary keys some owner pins (stored or not)
  std::uint64_t pin_skips = 0;       // eviction passed over a pinned object
};

// A finished body and the head to store with it, for store::commit_batch.
struct pending_commit {
  insert_handle insert;
  stored_head head;
  error_code result;  // set by commit_batch: this object's own outcome
};

enum class lookup_status {
  miss,     // not stored (or a different key with the same hash)
  hit,      // meta and body are valid
  corrupt,  // it was stored but its body is damaged: dropped now; treat as a miss
};

struct lookup_result {
  lookup_status status = lookup_status::miss;
  object_meta meta;  // when hit
  body_reader body;  // when hit
};

namespace detail {
struct store_state;
}

class store {
 public:
  // Opens or creates the store and runs start-up recovery. Errors are start-up failures.
  static result<store> open(store_options opts);

  store(store&&) noexcept;
  store& operator=(store&&) noexcept;
  ~store();  // flushes recency; handles and readers still out keep working

  // A hit never opens a write transaction; only a corrupt find does (to drop it).
  result<lookup_result> lookup(std::string_view primary, std::string_view variant = {}) const;
  // The metadata of every stored variant of a primary key (to pick one by its Vary fields).
  result<std::vector<object_meta>> variants(std::string_view primary) const;
  // The metadata alone, for a background check (is it stored, is it fresh): no body opened or
  // checked, and no recency recorded, so that checking an object does not keep it in cache.
  // nullopt: not stored (or undecodable; a lookup drops that).
  result<std::optional<object_meta>> peek(std::string_view primary,
                                          std::string_view variant = {}) const;

  // declared_size (Content-Length, when known) lets too_big be answered before any byte.
  result<insert_handle> begin_insert(std::string_view primary, std::string_view variant,
                                     std::optional<std::uint64_t> declared_size = {});
  // Group commit: makes every finished body in the batch visible at once, with the same
  // durability as insert_handle::commit. Bodies in files are renamed into place and flushed
  // together (one syncfs when there are several), then one write transaction indexes them all,
  // evicting for the whole batch. Each item's result is its own (too_big, size_mismatch, ...);
  // if the batch transaction fails, the items are retried one transaction each, so that one
  // bad object fails alone. Every handle is finished afterwards. Blocking disk I/O.
  void commit_batch(std::span<pending_commit> batch);
  // Replaces the stored head, keeping the body (RFC 9111 §4.3.4, freshening on 304).
  error_code update_head(std::string_view primary, std::string_view variant,
                         const stored_head& head);
  // Removes one variant (store_errc::not_found if absent) / all variants (the count removed).
  error_code remove(std::string_view primary, std::string_view variant);
  result<std::size_t> remove_all(std::string_view primary);

  // Writes the in-memory access recency into the index (the daemon calls it every few
  // seconds; it also happens every access_flush_batch hits and at close).
  error_code flush_access();
  // Recomputes the checksum of up to max_objects file bodies, oldest first, dropping those
  // that disagree. Reads whole files: run it in the background. Returns the number dropped.
  result<std::size_t> verify_bodies(std::size_t max_objects);

  // Pins: eviction passes over every variant of a pinned primary key (and moves it to the
  // young end of the recency order, so that the next eviction does not walk past it again).
  // Each owner (a prefetch source, "site/source") has one set. set_pins replaces the owner's
  // set and keeps it in the index, so that a restart keeps it; an empty set drops the owner.
  // add_pin adds one key in memory (kept in the index at the owner's next set_pins).
  // retain_pins drops every owner not named (sources removed from the config). The owners
  // keep pinned bytes below max_size: an object that does not fit beside the pinned ones
  // fails its commit with too_big.
  error_code set_pins(std::string_view owner, std::span<const std::string> primaries);
  void add_pin(std::string_view owner, std::string_view primary);
  error_code retain_pins(std::span<const std::string> owners);
  bool pinned(std::string_view primary) const;

  store_counters counters() const;
  const recovery_report& recovery() const;
  const store_options& options() const;
  // The LMDB env, for other modules' DBs (usage history): open them at start-up.
  lmdb::env& env();
  result<lmdb::dbi> open_db(std::string_view name, unsigned flags = lmdb::db_create);

 private:
  explicit store(std::shared_ptr<detail::store_state> s) : s_(std::move(s)) {}
  std::shared_ptr<detail::store_state> s_;
};

}  // namespace storecache::cache
