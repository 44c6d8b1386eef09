// Writing objects: the insert handle (steps 2 and 3 of the life cycle in store.cpp) and the
// one write transaction that makes a body visible, evicting least-recently-used objects to
// stay under max_size.
#include "cache/store_insert.hpp"

#include <fcntl.h>
#include <stdio.h>  // renameat2
#include <unistd.h>

#include "cache/body_checksum.hpp"
#include "cache/store_state.hpp"

namespace storecache::cache {

namespace {

std::uint64_t round_up(std::uint64_t v, std::uint64_t to) {
  return (v + to - 1) / to * to;
}

// What an object counts against max_size: its body as the disk holds it, its metadata, and
// the index entries around it.
std::uint64_t charge_for(const object_meta& m) {
  const std::uint64_t body =
      m.location == body_location::file ? round_up(m.body_size, detail::block_size) : m.body_size;
  return body + encode_meta(m).size() + detail::entry_overhead;
}

}  // namespace

insert_handle::insert_handle(std::shared_ptr<detail::store_state> state, std::string primary,
                             std::string variant, std::optional<std::uint64_t> declared)
    : state_(std::move(state)),
      primary_(std::move(primary)),
      variant_(std::move(variant)),
      declared_(declared),
      id_(state_->new_id()) {}

insert_handle::insert_handle(insert_handle&&) noexcept = default;

insert_handle& insert_handle::operator=(insert_handle&& o) noexcept {
  if (this != &o) {
    abandon();
    state_ = std::move(o.state_);
    primary_ = std::move(o.primary_);
    variant_ = std::move(o.variant_);
    declared_ = o.declared_;
    size_ = o.size_;
    crc_ = o.crc_;
    oversize_ = o.oversize_;
    buffer_ = std::move(o.buffer_);
    id_ = o.id_;
    file_ = std::move(o.file_);
  }
  return *this;
}

insert_handle::~insert_handle() {
  abandon();
}

void insert_handle::abandon() noexcept {
  if (!state_) return;
  if (file_) {
    file_->reset();
    ::unlink(state_->layout.temp_path(id_).c_str());
  }
  file_.reset();
  buffer_.clear();
  buffer_.shrink_to_fit();
  state_.reset();
}

error_code insert_handle::fail(error_code ec) {
  if (state_ && ec != store_errc::too_big && ec != store_errc::size_mismatch)
    ++state_->insert_failures;
  abandon();
  return ec;
}

error_code insert_handle::spill_to_file() {
  const auto path = state_->layout.temp_path(id_);
  detail::unique_fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640));
  if (!fd) return detail::last_error();
  file_ = std::make_unique<detail::unique_fd>(std::move(fd));
  if (auto ec = detail::write_all(file_->get(), buffer_)) return ec;
  buffer_.clear();
  buffer_.shrink_to_fit();
  return {};
}

int insert_handle::open_reader() const {
  if (!state_ || !file_) return -1;
  return ::open(state_->layout.temp_path(id_).c_str(), O_RDONLY | O_CLOEXEC);
}

error_code insert_handle::append(std::string_view bytes) {
  if (!state_) return store_errc::finished;
  if (declared_ && size_ + bytes.size() > *declared_) return fail(store_errc::size_mismatch);
  if (!oversize_ && bytes.size() > state_->opts.max_object_size - size_) {
    // Too big to keep, but readers of a collapsed fetch may be reading this very file:
    // go on writing it; commit() refuses and removes it.
    ++state_->too_big;
    oversize_ = true;
  }
  crc_ = crc32c_update(crc_, bytes);
  size_ += bytes.size();
  if (!file_ && !oversize_ && size_ <= state_->opts.inline_max) {
    buffer_.append(bytes);
    return {};
  }
  if (!file_) {
    if (auto ec = spill_to_file()) return fail(ec);
  }
  if (auto ec = detail::write_all(file_->get(), bytes)) return fail(ec);
  return {};
}

error_code insert_handle::commit(const stored_head& head) {
  if (!state_) return store_errc::finished;
  if (oversize_) return fail(store_errc::too_big);
  if (declared_ && size_ != *declared_) return fail(store_errc::size_mismatch);
  auto& s = *state_;
  object_meta m;
  m.primary_key = primary_;
  m.variant_key = variant_;
  m.head = head;
  m.body_size = size_;
  m.checksum = crc_;
  m.location = file_ ? body_location::file : body_location::inline_value;
  m.object_id = id_;
  if (file_) {
    // Durable body first: after a crash the index may only ever name complete files.
    if (::fsync(file_->get()) != 0) return fail(detail::last_error());
    file_->reset();
    const auto tmp = s.layout.temp_path(id_);
    for (int attempt = 0;; ++attempt) {
      const auto final_path = s.layout.body_path(m.object_id);
      if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, final_path.c_str(), RENAME_NOREPLACE) == 0)
        break;
      // EEXIST: a live file has this id (ids start at a random point each run); take another.
      if (errno != EEXIST || attempt == 8) {
        const error_code ec = detail::last_error();
        ::unlink(tmp.c_str());
        file_.reset();
        return fail(ec);
      }
      m.object_id = s.new_id();
    }
    file_.reset();  // the temporary name is gone; abandon() must not unlink it
    if (auto ec = detail::fsync_dir(s.layout.fan_dir(m.object_id))) {
      ::unlink(s.layout.body_path(m.object_id).c_str());
      return fail(ec);
    }
  }
  const bool is_file = m.location == body_location::file;
  const std::uint64_t object_id = m.object_id;
  const std::string body = std::move(buffer_);
  const key_hash h = object_hash(s.secret, primary_, variant_);
  if (auto ec = s.commit_object(h, std::move(m), body)) {
    if (is_file) ::unlink(s.layout.body_path(object_id).c_str());
    return fail(ec);
  }
  ++s.inserts;
  state_.reset();
  return {};
}

namespace detail {

error_code store_state::commit_object(const key_hash& h, object_meta m,
                                      std::string_view inline_body) {
  m.access_tick = tick();
  m.charge = charge_for(m);
  if (m.charge > opts.max_size) {
    ++too_big;
    return store_errc::too_big;
  }
  const std::string encoded = encode_meta(m);

  auto txn = env.begin_write();
  if (!txn) return txn.error();

  // The previous version of this key, replaced below.
  std::optional<object_meta> old;
  if (const auto v = txn->get(objects, h.view())) {
    old = decode_meta(*v);
    if (!old) {  // undecodable: remove the raw entries; lru leftovers are swept at open
      txn->del(objects, h.view());
      txn->del(bodies, h.view());
    } else if (auto ec = erase_entries(*this, *txn, h, *old)) {
      return ec;
    }
  }
  std::uint64_t total = bytes.load() - (old ? old->charge : 0);
  std::uint64_t count = objects_count.load() - (old ? 1 : 0);

  // Evict least recently used objects (by the flushed ticks) until the new one fits.
  std::vector<object_meta> victims;
  if (total + m.charge > opts.max_size) {
    std::vector<std::pair<key_hash, object_meta>> chosen;
    {
      auto cur = txn->open_cursor(lru);
      if (!cur) return cur.error();
      std::uint64_t freed = 0;
      for (auto e = cur->first(); e && total - freed + m.charge > opts.max_size; e = cur->next()) {
        if (e->key.size() != 24) continue;
        const key_hash vh = key_hash::from(e->key.substr(8));
        if (vh == h) continue;
        const auto v = txn->get(objects, vh.view());
        auto vm = v ? decode_meta(*v) : std::nullopt;
        if (!vm) continue;  // stale lru entry; swept at open
        freed += vm->charge;
        chosen.emplace_back(vh, std::move(*vm));
      }
    }  // the cursor must close before entries are deleted under it
    for (auto& [vh, vm] : chosen) {
      if (auto ec = erase_entries(*this, *txn, vh, vm)) return ec;
      total -= vm.charge;
      --count;
      victims.push_back(std::move(vm));
    }
    if (total + m.charge > opts.max_size) return store_errc::too_big;  // cannot happen
  }

  if (auto ec = txn->put(objects, h.view(), encoded)) return ec;
  if (m.location == body_location::inline_value) {
    if (auto ec = txn->put(bodies, h.view(), inline_body)) return ec;
  }
  if (auto ec = txn->put(lru, lru_key(m.access_tick, h), {})) return ec;
  const key_hash p = primary_hash(secret, m.primary_key);
  if (auto ec = txn->put(variants, p.view(), h.view(), lmdb::put_no_dup_data);
      ec && ec != lmdb::errc::key_exist)
    return ec;

  const std::uint64_t old_bytes = bytes.exchange(total + m.charge);
  const std::uint64_t old_count = objects_count.exchange(count + 1);
  if (auto ec = txn->commit()) {
    bytes = old_bytes;
    objects_count = old_count;
    return ec;
  }
  evictions += victims.size();
  // Files go only after the index no longer names them.
  if (old && old->location == body_location::file && old->object_id != m.object_id)
    ::unlink(layout.body_path(old->object_id).c_str());
  for (const auto& vm : victims)
    if (vm.location == body_location::file) ::unlink(layout.body_path(vm.object_id).c_str());
  return {};
}

}  // namespace detail

}  // namespace storecache::cache
