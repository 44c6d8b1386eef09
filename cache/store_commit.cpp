// Group commit: finished insert handles become stored objects (step 3 of the life cycle at the
// top of store.cpp), as many as are waiting in one write transaction.
//
//   1. stage    each body is checked (too_big, size_mismatch); a file body is closed and
//               renamed from objects/tmp/<id>.part to objects/ab/<id> (no-replace). No index
//               entry names it yet.
//   2. flush    one file: fsync it and its folder. Several: one syncfs() of the cache's file
//               system, which writes back every file's data and every rename at once; N fsyncs
//               would cost N journal commits and N cache flushes.
//   3. index    one write transaction: each object replaces its previous version and evicts
//               least recently used objects until it fits (running totals, so the batch as a
//               whole stays under max_size); LMDB syncs the index at its commit.
//   4. unlink   files the index no longer names (replaced, evicted), only after the commit.
//
// Killed before 3 commits: renamed files that no entry names, removed at open as orphans.
// Step 2 precedes step 3, so a committed entry never names a body a crash can lose. If the
// batch transaction fails (map full, I/O error), each object is retried in a transaction of
// its own so that one bad object fails alone.
#include <fcntl.h>
#include <stdio.h>  // renameat2
#include <unistd.h>

#include "cache/store.hpp"
#include "cache/store_state.hpp"

namespace storecache::cache::detail {

namespace {

std::uint64_t round_up(std::uint64_t v, std::uint64_t to) {
  return (v + to - 1) / to * to;
}

// What an object counts against max_size: its body as the disk holds it, its metadata, and
// the index entries around it.
std::uint64_t charge_for(const object_meta& m) {
  const std::uint64_t body =
      m.location == body_location::file ? round_up(m.body_size, block_size) : m.body_size;
  return body + encode_meta(m).size() + entry_overhead;
}

}  // namespace

struct store_state::staged_object {
  pending_commit* item = nullptr;
  key_hash hash;
  object_meta meta;
  std::string inline_body;
  bool in_file() const { return meta.location == body_location::file; }
};

void store_state::commit_batch(std::span<pending_commit> batch) {
  std::size_t files = 0;
  for (const auto& p : batch)
    if (p.insert.state_ && p.insert.file_ && !p.insert.oversize_) ++files;
  const bool flush_once = files > 1;

  std::vector<staged_object> staged;
  staged.reserve(batch.size());
  for (auto& p : batch)
    p.result = stage_body(p, !flush_once, staged);

  if (flush_once) {
    if (::syncfs(objects_dir.get()) != 0) {
      const error_code ec = last_error();
      for (auto& o : staged) {
        if (!o.in_file()) continue;
        ::unlink(layout.body_path(o.meta.object_id).c_str());
        o.item->result = o.item->insert.fail(ec);
        o.item = nullptr;
      }
      std::erase_if(staged, [](const staged_object& o) { return o.item == nullptr; });
    }
  }
  if (staged.empty()) return;

  const auto stored = [this](staged_object& o) {
    o.item->insert.state_.reset();  // finished: nothing of it is left to abandon
    ++inserts;
  };
  if (!index_objects(staged)) {
    for (auto& o : staged)
      stored(o);
    return;
  }
  for (auto& o : staged) {
    if (auto ec = index_objects({&o, 1})) {
      if (o.in_file()) ::unlink(layout.body_path(o.meta.object_id).c_str());
      o.item->result = o.item->insert.fail(ec);
    } else {
      stored(o);
    }
  }
}

error_code store_state::stage_body(pending_commit& p, bool fsync_each,
                                   std::vector<staged_object>& out) {
  auto& ins = p.insert;
  if (!ins.state_) return store_errc::finished;
  if (ins.oversize_) return ins.fail(store_errc::too_big);
  if (ins.declared_ && ins.size_ != *ins.declared_) return ins.fail(store_errc::size_mismatch);
  staged_object o;
  o.item = &p;
  object_meta& m = o.meta;
  m.primary_key = ins.primary_;
  m.variant_key = ins.variant_;
  m.head = p.head;
  m.body_size = ins.size_;
  m.checksum = ins.crc_;
  m.location = ins.file_ ? body_location::file : body_location::inline_value;
  m.object_id = ins.id_;
  m.access_tick = tick();
  m.charge = charge_for(m);
  if (m.charge > opts.max_size) {
    ++too_big;
    return ins.fail(store_errc::too_big);
  }
  if (ins.file_) {
    if (fsync_each && ::fsync(ins.file_->get()) != 0) return ins.fail(last_error());
    ins.file_->reset();
    const auto tmp = layout.temp_path(ins.id_);
    for (int attempt = 0;; ++attempt) {
      const auto final_path = layout.body_path(m.object_id);
      if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, final_path.c_str(), RENAME_NOREPLACE) == 0)
        break;
      // EEXIST: a live file has this id (ids start at a random point each run); take another.
      if (errno != EEXIST || attempt == 8) {
        const error_code ec = last_error();
        ::unlink(tmp.c_str());
        ins.file_.reset();
        return ins.fail(ec);
      }
      m.object_id = new_id();
    }
    ins.file_.reset();  // the temporary name is gone; abandon() must not unlink it
    if (fsync_each) {
      if (auto ec = fsync_dir(layout.fan_dir(m.object_id))) {
        ::unlink(layout.body_path(m.object_id).c_str());
        return ins.fail(ec);
      }
    }
    m.charge = charge_for(m);  // the id may have changed
  } else {
    o.inline_body = std::move(ins.buffer_);
  }
  o.hash = object_hash(secret, m.primary_key, m.variant_key);
  out.push_back(std::move(o));
  return {};
}

error_code store_state::index_objects(std::span<staged_object> objs) {
  auto txn = env.begin_write();
  if (!txn) return txn.error();
  std::uint64_t total = bytes.load();
  std::uint64_t count = objects_count.load();
  std::vector<std::uint64_t> unlink_after;
  std::uint64_t evicted = 0;
  for (auto& o : objs)
    if (auto ec = index_one(*txn, o, total, count, unlink_after, evicted)) return ec;
  const std::uint64_t old_bytes = bytes.exchange(total);
  const std::uint64_t old_count = objects_count.exchange(count);
  if (auto ec = txn->commit()) {
    bytes = old_bytes;
    objects_count = old_count;
    return ec;
  }
  evictions += evicted;
  // Files go only after the index no longer names them.
  for (const std::uint64_t id : unlink_after)
    ::unlink(layout.body_path(id).c_str());
  return {};
}

error_code store_state::index_one(lmdb::write_txn& txn, staged_object& o, std::uint64_t& total,
                                  std::uint64_t& count, std::vector<std::uint64_t>& unlink_after,
                                  std::uint64_t& evicted) {
  const key_hash& h = o.hash;
  const object_meta& m = o.meta;
  // The previous version of this key (stored before, or earlier in this batch), replaced.
  if (const auto v = txn.get(objects, h.view())) {
    const auto old = decode_meta(*v);
    if (!old) {  // undecodable: remove the raw entries; lru leftovers are swept at open
      txn.del(objects, h.view());
      txn.del(bodies, h.view());
    } else {
      if (auto ec = erase_entries(*this, txn, h, *old)) return ec;
      total -= old->charge;
      --count;
      if (old->location == body_location::file && old->object_id != m.object_id)
        unlink_after.push_back(old->object_id);
    }
  }

  // Evict least recently used objects (by the flushed ticks) until this one fits. Pinned ones
  // are passed over and moved to the young end, so that the next eviction does not walk past
  // them again.
  if (total + m.charge > opts.max_size) {
    std::vector<std::pair<key_hash, object_meta>> chosen;
    std::vector<key_hash> passed;
    {
      auto cur = txn.open_cursor(lru);
      if (!cur) return cur.error();
      std::uint64_t freed = 0;
      for (auto e = cur->first(); e && total - freed + m.charge > opts.max_size; e = cur->next()) {
        if (e->key.size() != 24) continue;
        const key_hash vh = key_hash::from(e->key.substr(8));
        if (vh == h) continue;
        const auto v = txn.get(objects, vh.view());
        auto vm = v ? decode_meta(*v) : std::nullopt;
        if (!vm) continue;  // stale lru entry; swept at open
        if (is_pinned(primary_hash(secret, vm->primary_key))) {
          passed.push_back(vh);
          continue;
        }
        freed += vm->charge;
        chosen.emplace_back(vh, std::move(*vm));
      }
    }  // the cursor must close before entries are deleted under it
    for (auto& [vh, vm] : chosen) {
      if (auto ec = erase_entries(*this, txn, vh, vm)) return ec;
      total -= vm.charge;
      --count;
      ++evicted;
      if (vm.location == body_location::file) unlink_after.push_back(vm.object_id);
    }
    for (const auto& ph : passed) {
      const auto v = txn.get(objects, ph.view());
      if (!v) continue;
      const std::uint64_t old_tick = encoded_access_tick(*v);
      const std::uint64_t t = tick();
      const std::string updated = with_access_tick(*v, t);  // copy before the map changes
      if (auto ec = txn.del(lru, lru_key(old_tick, ph)); ec && ec != lmdb::errc::not_found)
        return ec;
      if (auto ec = txn.put(lru, lru_key(t, ph), {})) return ec;
      if (auto ec = txn.put(objects, ph.view(), updated)) return ec;
    }
    pin_skips += passed.size();
    // Pinned objects fill what is left: the owners keep them below max_size, but an object
    // bigger than the room beside them cannot be stored.
    if (total + m.charge > opts.max_size) return store_errc::too_big;
  }

  if (auto ec = txn.put(objects, h.view(), encode_meta(m))) return ec;
  if (m.location == body_location::inline_value) {
    if (auto ec = txn.put(bodies, h.view(), o.inline_body)) return ec;
  }
  if (auto ec = txn.put(lru, lru_key(m.access_tick, h), {})) return ec;
  const key_hash p = primary_hash(secret, m.primary_key);
  if (auto ec = txn.put(variants, p.view(), h.view(), lmdb::put_no_dup_data);
      ec && ec != lmdb::errc::key_exist)
    return ec;
  total += m.charge;
  ++count;
  return {};
}

}  // namespace storecache::cache::detail

namespace storecache::cache {

void store::commit_batch(std::span<pending_commit> batch) {
  s_->commit_batch(batch);
}

}  // namespace storecache::cache
