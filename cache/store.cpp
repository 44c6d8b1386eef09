// The body store: index, lookups, removal, recency.
//
// Life cycle of one object (one primary + variant key):
//
//  1. absent       No index entry. Lookups miss.
//  2. being written begin_insert() gives an insert_handle. The body collects in memory while it
//                  fits inline (<= inline_max), then streams into objects/tmp/<id>.part.
//                  Nothing in the index names it; lookups still miss (or see the previous
//                  version, which stays served until step 3 replaces it). abandon(), a
//                  too_big refusal, or destroying the handle deletes the temporary file. A
//                  crash leaves the .part file, which the next open() removes.
//  3. complete     commit() or commit_batch() (store_commit.cpp): rename the file to
//                  objects/ab/<id> (no-replace), make it durable (fsync it and the folder, or
//                  one syncfs for a batch), and only THEN one write transaction evicts what
//                  must go, writes the objects, bodies (inline), lru and variants entries, and
//                  replaces any previous version. Killed before that commit: an orphan file,
//                  removed at open. After: a durable, complete object. Lookups hit from the
//                  next read transaction on.
//  4. stale        The store keeps request/response times and headers; freshness is the
//                  policy layer's business. update_head() freshens the head after a 304.
//  5. evicted /    Index entries deleted first (one transaction), the file unlinked after the
//     removed      commit. Readers holding the file's descriptor finish their reads. Killed in
//                  between: an orphan file, removed at open.
//
//  At any step a body whose size (at lookup) or checksum (on a full read, or verify_bodies())
//  disagrees with the index is dropped and never served; open() drops entries whose file is
//  missing or has the wrong size.
//
// Recency: hits do not write. They record (hash, tick) in memory; flush_access() moves those
// ticks into the lru DB in one transaction, every access_flush_batch hits or when asked.
#include "cache/store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

#include "cache/body_checksum.hpp"
#include "cache/store_state.hpp"

namespace storecache::cache {

namespace {

class store_category_impl final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "storecache.store"; }
  std::string message(int ev) const override {
    switch (static_cast<store_errc>(ev)) {
      case store_errc::ok:
        return "ok";
      case store_errc::too_big:
        return "object larger than the cache accepts";
      case store_errc::size_mismatch:
        return "body size differs from the declared size";
      case store_errc::corrupt_body:
        return "stored body is damaged";
      case store_errc::finished:
        return "insert already committed or abandoned";
      case store_errc::bad_format:
        return "cache index has an incompatible format";
      case store_errc::not_found:
        return "no such object";
    }
    return "unknown store error";
  }
};

error_code sys_error(const std::error_code& ec) {
  return error_code(ec.value(), boost::system::system_category());
}

std::uint64_t random64() {
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}

void unlink_body(const detail::store_state& s, std::uint64_t id) {
  ::unlink(s.layout.body_path(id).c_str());  // ENOENT is fine: it is gone either way
}

// Reads or creates the meta DB: format version and the hash secret.
error_code init_meta(detail::store_state& s) {
  auto txn = s.env.begin_write();
  if (!txn) return txn.error();
  const auto format = txn->get(s.meta, "format");
  const auto secret = txn->get(s.meta, "secret");
  if (format) {
    if (*format != std::string_view("1") || !secret || secret->size() != 16)
      return store_errc::bad_format;
    const key_hash k = key_hash::from(*secret);
    std::memcpy(&s.secret.k0, k.bytes.data(), 8);
    std::memcpy(&s.secret.k1, k.bytes.data() + 8, 8);
    return {};
  }
  s.secret = {random64(), random64()};
  char raw[16];
  std::memcpy(raw, &s.secret.k0, 8);
  std::memcpy(raw + 8, &s.secret.k1, 8);
  if (auto ec = txn->put(s.meta, "format", "1")) return ec;
  if (auto ec = txn->put(s.meta, "secret", std::string_view(raw, 16))) return ec;
  return txn->commit();
}

}  // namespace

const boost::system::error_category& store_category() noexcept {
  static const store_category_impl c;
  return c;
}

bool is_no_space(const error_code& ec) noexcept {
  return ec == boost::system::errc::no_space_on_device || ec == lmdb::errc::map_full ||
         (ec.value() == EDQUOT && ec.category() == boost::system::system_category());
}

namespace detail {

std::string lru_key(std::uint64_t tick, const key_hash& h) {
  std::string k(8, '\0');
  for (int i = 0; i < 8; ++i)
    k[i] = static_cast<char>(tick >> (8 * (7 - i)));  // big-endian
  k.append(h.view());
  return k;
}

error_code erase_entries(store_state& s, lmdb::write_txn& txn, const key_hash& h,
                         const object_meta& m) {
  if (auto ec = txn.del(s.objects, h.view())) return ec;
  if (m.location == body_location::inline_value) {
    if (auto ec = txn.del(s.bodies, h.view()); ec && ec != lmdb::errc::not_found) return ec;
  }
  if (auto ec = txn.del(s.lru, lru_key(m.access_tick, h)); ec && ec != lmdb::errc::not_found)
    return ec;
  const key_hash p = primary_hash(s.secret, m.primary_key);
  if (auto ec = txn.del(s.variants, p.view(), h.view()); ec && ec != lmdb::errc::not_found)
    return ec;
  return {};
}

void store_state::touch(const key_hash& h) {
  const std::uint64_t t = tick();
  bool full;
  {
    std::lock_guard lock(access_mu);
    auto& v = access[h];
    if (t > v) v = t;
    full = access.size() >= opts.access_flush_batch;
  }
  if (full) flush_access();
}

error_code store_state::flush_access() {
  std::unordered_map<key_hash, std::uint64_t> batch;
  {
    std::lock_guard lock(access_mu);
    batch.swap(access);
  }
  if (batch.empty()) return {};
  auto txn = env.begin_write();
  if (!txn) return txn.error();  // recency is advisory: losing one batch only ages objects
  for (const auto& [h, t] : batch) {
    const auto v = txn->get(objects, h.view());
    if (!v) continue;  // evicted or removed since
    const std::uint64_t old = encoded_access_tick(*v);
    if (t <= old) continue;
    const std::string updated = with_access_tick(*v, t);  // copy before the map changes
    if (auto ec = txn->del(lru, lru_key(old, h)); ec && ec != lmdb::errc::not_found) return ec;
    if (auto ec = txn->put(lru, lru_key(t, h), {})) return ec;
    if (auto ec = txn->put(objects, h.view(), updated)) return ec;
  }
  return txn->commit();
}

void store_state::drop_corrupt(const key_hash& h, std::uint64_t object_id) {
  auto txn = env.begin_write();
  if (!txn) return;
  const auto v = txn->get(objects, h.view());
  if (!v) return;
  const auto m = decode_meta(*v);
  if (m && m->object_id != object_id) return;  // replaced meanwhile by a new body
  if (m) {
    if (erase_entries(*this, *txn, h, *m)) return;
    bytes -= m->charge;
    --objects_count;
  } else {
    txn->del(objects, h.view());  // its lru entry is swept at the next open
    txn->del(bodies, h.view());
  }
  if (txn->commit()) {
    if (m) {
      bytes += m->charge;
      ++objects_count;
    }
    return;
  }
  ++corrupt_drops;
  if (m && m->location == body_location::file) unlink_body(*this, m->object_id);
}

bool store_state::is_pinned(const key_hash& primary) const {
  std::lock_guard lock(pins_mu);
  return pinned.contains(primary);
}

namespace {

// Under pins_mu: the owner's set becomes keys, the counts follow.
void replace_owner(store_state& s, const std::string& owner, std::unordered_set<key_hash> keys) {
  if (auto it = s.pin_owners.find(owner); it != s.pin_owners.end()) {
    for (const auto& k : it->second)
      if (auto p = s.pinned.find(k); p != s.pinned.end() && --p->second == 0) s.pinned.erase(p);
    s.pin_owners.erase(it);
  }
  if (keys.empty()) return;
  for (const auto& k : keys)
    ++s.pinned[k];
  s.pin_owners.emplace(owner, std::move(keys));
}

std::string encode_pins(const std::unordered_set<key_hash>& keys) {
  std::string out;
  out.reserve(keys.size() * 16);
  for (const auto& k : keys)
    out.append(k.view());
  return out;
}

}  // namespace

error_code load_pins(store_state& s) {
  auto txn = s.env.begin_read();
  if (!txn) return txn.error();
  auto cur = txn->open_cursor(s.pins);
  if (!cur) return cur.error();
  std::lock_guard lock(s.pins_mu);
  for (auto e = cur->first(); e; e = cur->next()) {
    if (e->value.size() % 16 != 0) continue;  // not ours: ignored, replaced at the next set
    std::unordered_set<key_hash> keys;
    keys.reserve(e->value.size() / 16);
    for (std::size_t i = 0; i < e->value.size(); i += 16)
      keys.insert(key_hash::from(e->value.substr(i, 16)));
    replace_owner(s, std::string(e->key), std::move(keys));
  }
  return {};
}

}  // namespace detail

// ---- store

result<store> store::open(store_options opts) {
  if (opts.dir.empty()) return make_error_code(boost::system::errc::invalid_argument);
  auto s = std::make_shared<detail::store_state>(std::move(opts));
  std::error_code fec;
  std::filesystem::create_directories(s->opts.dir / "index", fec);
  if (fec) return sys_error(fec);
  if (auto ec = s->layout.create_dirs()) return ec;
  s->objects_dir = detail::unique_fd(
      ::open(s->layout.objects_dir().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!s->objects_dir) return detail::last_error();
  // Two processes on one directory would delete each other's temporary files at open.
  s->dir_lock =
      detail::unique_fd(::open((s->opts.dir / "lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640));
  if (!s->dir_lock) return detail::last_error();
  if (::flock(s->dir_lock.get(), LOCK_EX | LOCK_NB) != 0) return detail::last_error();
  lmdb::env_options eo;
  eo.map_size = s->opts.map_size;
  auto env = lmdb::env::open(s->opts.dir / "index", eo);
  if (!env) return env.error();
  s->env = std::move(*env);
  struct named {
    const char* name;
    unsigned flags;
    lmdb::dbi* out;
  };
  const named dbs[] = {
      {"objects", lmdb::db_create, &s->objects},
      {"bodies", lmdb::db_create, &s->bodies},
      {"lru", lmdb::db_create, &s->lru},
      {"variants", lmdb::db_create | lmdb::db_dupsort | lmdb::db_dupfixed, &s->variants},
      {"meta", lmdb::db_create, &s->meta},
      {"pins", lmdb::db_create, &s->pins},
  };
  for (const auto& d : dbs) {
    auto id = s->env.open_db(d.name, d.flags);
    if (!id) return id.error();
    *d.out = *id;
  }
  if (auto ec = init_meta(*s)) return ec;
  if (auto ec = detail::recover(*s)) return ec;
  if (auto ec = detail::load_pins(*s)) return ec;
  s->next_id = random64() | 1;  // ids only need to be unique among live files; rename checks
  return store(std::move(s));
}

store::store(store&&) noexcept = default;
store& store::operator=(store&& o) noexcept {
  if (this != &o) {
    if (s_) s_->flush_access();
    s_ = std::move(o.s_);
  }
  return *this;
}
store::~store() {
  if (s_) s_->flush_access();
}

result<lookup_result> store::lookup(std::string_view primary, std::string_view variant) const {
  const key_hash h = object_hash(s_->secret, primary, variant);
  lookup_result out;
  std::optional<object_meta> m;
  std::shared_ptr<std::string> inline_body;
  {
    auto txn = s_->env.begin_read();
    if (!txn) return txn.error();
    error_code ec;
    const auto v = txn->get(s_->objects, h.view(), ec);
    if (ec) return ec;
    if (!v) return out;
    m = decode_meta(*v);
    if (m) {
      if (m->primary_key != primary || m->variant_key != variant) return out;  // collision
      if (m->location == body_location::inline_value) {
        if (const auto b = txn->get(s_->bodies, h.view()))
          inline_body = std::make_shared<std::string>(*b);
      }
    }
  }
  const auto corrupt = [&](std::uint64_t id) {
    s_->drop_corrupt(h, id);
    lookup_result r;
    r.status = lookup_status::corrupt;
    return r;
  };
  if (!m) return corrupt(0);
  if (m->location == body_location::inline_value) {
    // Inline bodies are small: checking the checksum on every hit costs less than the copy.
    if (!inline_body || inline_body->size() != m->body_size || crc32c(*inline_body) != m->checksum)
      return corrupt(m->object_id);
    out.body = body_reader(s_, h, m->object_id, m->body_size, m->checksum);
    out.body.inline_ = std::move(inline_body);
    out.body.verified_ = true;
  } else {
    auto fd = std::make_shared<detail::unique_fd>(
        ::open(s_->layout.body_path(m->object_id).c_str(), O_RDONLY | O_CLOEXEC));
    if (!*fd) {
      const int err = errno;
      if (err != ENOENT) return error_code(err, boost::system::system_category());
      // Gone: evicted after our read transaction (a miss), or lost (corrupt)?
      auto txn = s_->env.begin_read();
      if (!txn) return txn.error();
      const auto v = txn->get(s_->objects, h.view());
      const auto now = v ? decode_meta(*v) : std::nullopt;
      txn->abort();
      if (now && now->object_id == m->object_id) return corrupt(m->object_id);
      return out;
    }
    struct stat st {};
    if (::fstat(fd->get(), &st) != 0 || static_cast<std::uint64_t>(st.st_size) != m->body_size)
      return corrupt(m->object_id);
    out.body = body_reader(s_, h, m->object_id, m->body_size, m->checksum);
    out.body.file_ = std::move(fd);
  }
  s_->touch(h);
  out.status = lookup_status::hit;
  out.meta = std::move(*m);
  return out;
}

result<std::vector<object_meta>> store::variants(std::string_view primary) const {
  const key_hash p = primary_hash(s_->secret, primary);
  std::vector<object_meta> out;
  auto txn = s_->env.begin_read();
  if (!txn) return txn.error();
  auto cur = txn->open_cursor(s_->variants);
  if (!cur) return cur.error();
  for (auto e = cur->lower_bound(p.view()); e && e->key == p.view(); e = cur->next_dup()) {
    if (e->value.size() != 16) continue;
    const auto v = txn->get(s_->objects, e->value);
    if (!v) continue;
    auto m = decode_meta(*v);
    if (m && m->primary_key == primary) out.push_back(std::move(*m));
  }
  return out;
}

result<std::optional<object_meta>> store::peek(std::string_view primary,
                                               std::string_view variant) const {
  const key_hash h = object_hash(s_->secret, primary, variant);
  auto txn = s_->env.begin_read();
  if (!txn) return txn.error();
  error_code ec;
  const auto v = txn->get(s_->objects, h.view(), ec);
  if (ec) return ec;
  if (!v) return std::optional<object_meta>{};
  auto m = decode_meta(*v);
  if (!m || m->primary_key != primary || m->variant_key != variant)
    return std::optional<object_meta>{};
  return m;
}

error_code store::set_pins(std::string_view owner, std::span<const std::string> primaries) {
  if (owner.empty() || owner.size() > 400)
    return make_error_code(boost::system::errc::invalid_argument);
  std::unordered_set<key_hash> keys;
  keys.reserve(primaries.size());
  for (const auto& p : primaries)
    keys.insert(primary_hash(s_->secret, p));
  std::string encoded;
  {
    std::lock_guard lock(s_->pins_mu);
    detail::replace_owner(*s_, std::string(owner), std::move(keys));
    if (auto it = s_->pin_owners.find(std::string(owner)); it != s_->pin_owners.end())
      encoded = detail::encode_pins(it->second);
  }
  // Kept in the index after the memory changed: pins_mu is taken inside write transactions.
  auto txn = s_->env.begin_write();
  if (!txn) return txn.error();
  if (encoded.empty()) {
    if (auto ec = txn->del(s_->pins, owner); ec && ec != lmdb::errc::not_found) return ec;
  } else if (auto ec = txn->put(s_->pins, owner, encoded)) {
    return ec;
  }
  return txn->commit();
}

void store::add_pin(std::string_view owner, std::string_view primary) {
  const key_hash k = primary_hash(s_->secret, primary);
  std::lock_guard lock(s_->pins_mu);
  if (s_->pin_owners[std::string(owner)].insert(k).second) ++s_->pinned[k];
}

error_code store::retain_pins(std::span<const std::string> owners) {
  std::vector<std::string> gone;
  {
    std::lock_guard lock(s_->pins_mu);
    for (const auto& [o, keys] : s_->pin_owners)
      if (std::find(owners.begin(), owners.end(), o) == owners.end()) gone.push_back(o);
  }
  for (const auto& o : gone)
    if (auto ec = set_pins(o, {})) return ec;
  return {};
}

bool store::pinned(std::string_view primary) const {
  return s_->is_pinned(primary_hash(s_->secret, primary));
}

result<insert_handle> store::begin_insert(std::string_view primary, std::string_view variant,
                                          std::optional<std::uint64_t> declared_size) {
  if (declared_size && *declared_size > s_->opts.max_object_size) {
    ++s_->too_big;
    return store_errc::too_big;
  }
  return insert_handle(s_, std::string(primary), std::string(variant), declared_size);
}

error_code store::update_head(std::string_view primary, std::string_view variant,
                              const stored_head& head) {
  const key_hash h = object_hash(s_->secret, primary, variant);
  auto txn = s_->env.begin_write();
  if (!txn) return txn.error();
  const auto v = txn->get(s_->objects, h.view());
  if (!v) return store_errc::not_found;
  auto m = decode_meta(*v);
  if (!m || m->primary_key != primary || m->variant_key != variant) return store_errc::not_found;
  const std::uint64_t old_charge = m->charge;
  const std::uint64_t old_meta_size = v->size();
  m->head = head;
  std::string enc = encode_meta(*m);
  m->charge = old_charge - old_meta_size + enc.size();
  enc = encode_meta(*m);
  if (auto ec = txn->put(s_->objects, h.view(), enc)) return ec;
  s_->bytes += m->charge - old_charge;  // unsigned wrap-around adds a negative delta
  if (auto ec = txn->commit()) {
    s_->bytes -= m->charge - old_charge;
    return ec;
  }
  return {};
}

error_code store::remove(std::string_view primary, std::string_view variant) {
  const key_hash h = object_hash(s_->secret, primary, variant);
  auto txn = s_->env.begin_write();
  if (!txn) return txn.error();
  const auto v = txn->get(s_->objects, h.view());
  if (!v) return store_errc::not_found;
  const auto m = decode_meta(*v);
  if (!m || m->primary_key != primary || m->variant_key != variant) return store_errc::not_found;
  if (auto ec = detail::erase_entries(*s_, *txn, h, *m)) return ec;
  s_->bytes -= m->charge;
  --s_->objects_count;
  if (auto ec = txn->commit()) {
    s_->bytes += m->charge;
    ++s_->objects_count;
    return ec;
  }
  if (m->location == body_location::file) unlink_body(*s_, m->object_id);
  return {};
}

result<std::size_t> store::remove_all(std::string_view primary) {
  const key_hash p = primary_hash(s_->secret, primary);
  auto txn = s_->env.begin_write();
  if (!txn) return txn.error();
  std::vector<key_hash> hashes;
  {
    auto cur = txn->open_cursor(s_->variants);
    if (!cur) return cur.error();
    for (auto e = cur->lower_bound(p.view()); e && e->key == p.view(); e = cur->next_dup())
      if (e->value.size() == 16) hashes.push_back(key_hash::from(e->value));
  }
  std::vector<object_meta> gone;
  for (const auto& h : hashes) {
    const auto v = txn->get(s_->objects, h.view());
    if (!v) continue;
    auto m = decode_meta(*v);
    if (!m || m->primary_key != primary) continue;
    if (auto ec = detail::erase_entries(*s_, *txn, h, *m)) return ec;
    gone.push_back(std::move(*m));
  }
  txn->del(s_->variants, p.view());  // dangling duplicates, if any
  std::uint64_t freed = 0;
  for (const auto& m : gone)
    freed += m.charge;
  s_->bytes -= freed;
  s_->objects_count -= gone.size();
  if (auto ec = txn->commit()) {
    s_->bytes += freed;
    s_->objects_count += gone.size();
    return ec;
  }
  for (const auto& m : gone)
    if (m.location == body_location::file) unlink_body(*s_, m.object_id);
  return gone.size();
}

error_code store::flush_access() {
  return s_->flush_access();
}

store_counters store::counters() const {
  store_counters c;
  c.objects = s_->objects_count.load();
  c.bytes = s_->bytes.load();
  c.inserts = s_->inserts.load();
  c.evictions = s_->evictions.load();
  c.insert_failures = s_->insert_failures.load();
  c.no_space = s_->no_space.load();
  c.too_big = s_->too_big.load();
  c.corrupt_drops = s_->corrupt_drops.load();
  {
    std::lock_guard lock(s_->access_mu);
    c.access_pending = s_->access.size();
  }
  {
    std::lock_guard lock(s_->pins_mu);
    c.pinned_keys = s_->pinned.size();
  }
  c.pin_skips = s_->pin_skips.load();
  if (const auto info = s_->env.info())
    c.index_file_bytes = (info->last_page + 1) * info->page_size;
  return c;
}

const recovery_report& store::recovery() const {
  return s_->recovery;
}
const store_options& store::options() const {
  return s_->opts;
}
lmdb::env& store::env() {
  return s_->env;
}
result<lmdb::dbi> store::open_db(std::string_view name, unsigned flags) {
  return s_->env.open_db(name, flags);
}

}  // namespace storecache::cache
