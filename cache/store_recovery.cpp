// Start-up recovery (open) and background body verification.
//
// After a crash the directory may hold: temporary files of bodies being written (step 2 of the
// life cycle in store.cpp), renamed bodies whose index commit never happened, and files of
// evicted objects not yet unlinked. The index itself is consistent (LMDB), but a file it names
// may be missing or damaged if someone touched the directory. recover() makes the two agree.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <unordered_set>

#include "cache/body_checksum.hpp"
#include "cache/store_state.hpp"

namespace storecache::cache {

namespace detail {

namespace {

// Calls f(name) for every entry of dir except "." and "..".
template <typename F>
void for_each_name(const std::filesystem::path& dir, F&& f) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  while (const dirent* e = ::readdir(d)) {
    const std::string_view name(e->d_name);
    if (name == "." || name == "..") continue;
    f(name);
  }
  ::closedir(d);
}

struct dropped {
  key_hash hash;
  std::optional<object_meta> meta;  // nullopt: undecodable
};

}  // namespace

error_code recover(store_state& s) {
  recovery_report& r = s.recovery;
  // 1. Half-written bodies.
  for_each_name(s.layout.tmp_dir(), [&](std::string_view name) {
    if (::unlink((s.layout.tmp_dir() / name).c_str()) == 0) ++r.temp_files_removed;
  });

  auto txn = s.env.begin_write();
  if (!txn) return txn.error();
  std::unordered_set<std::uint64_t> live_files;
  std::vector<dropped> drop;
  std::vector<std::pair<key_hash, std::uint64_t>> live;  // hash, tick
  std::uint64_t bytes = 0;
  std::uint64_t max_tick = 0;
  {
    auto cur = txn->open_cursor(s.objects);
    if (!cur) return cur.error();
    for (auto e = cur->first(); e; e = cur->next()) {
      if (e->key.size() != 16) continue;  // not ours; leave it
      const key_hash h = key_hash::from(e->key);
      auto m = decode_meta(e->value);
      if (!m) {
        ++r.bad_entries;
        drop.push_back({h, std::nullopt});
        continue;
      }
      if (m->location == body_location::inline_value) {
        const auto b = txn->get(s.bodies, h.view());
        if (!b || b->size() != m->body_size) {
          ++r.bad_entries;
          drop.push_back({h, std::move(m)});
          continue;
        }
      } else {
        struct stat st {};
        if (::stat(s.layout.body_path(m->object_id).c_str(), &st) != 0) {
          ++r.missing_bodies;
          drop.push_back({h, std::move(m)});
          continue;
        }
        if (static_cast<std::uint64_t>(st.st_size) != m->body_size) {
          ++r.wrong_size_bodies;
          drop.push_back({h, std::move(m)});
          continue;
        }
        live_files.insert(m->object_id);
      }
      bytes += m->charge;
      max_tick = std::max(max_tick, m->access_tick);
      live.emplace_back(h, m->access_tick);
    }
  }
  for (const auto& d : drop) {
    if (d.meta) {
      if (auto ec = erase_entries(s, *txn, d.hash, *d.meta)) return ec;
    } else {
      txn->del(s.objects, d.hash.view());
      txn->del(s.bodies, d.hash.view());
    }
  }
  // 2. The lru DB must hold exactly one entry per object, at its tick.
  std::vector<std::string> stale;
  {
    auto cur = txn->open_cursor(s.lru);
    if (!cur) return cur.error();
    for (auto e = cur->first(); e; e = cur->next()) {
      bool ok = false;
      if (e->key.size() == 24) {
        const auto v = txn->get(s.objects, e->key.substr(8));
        ok = v && lru_key(encoded_access_tick(*v), key_hash::from(e->key.substr(8))) == e->key;
      }
      if (!ok) stale.emplace_back(e->key);
    }
  }  // the cursor closes before entries are deleted under it
  for (const auto& k : stale)
    txn->del(s.lru, k);
  for (const auto& [h, t] : live) {
    if (auto ec = txn->put(s.lru, lru_key(t, h), {})) return ec;
  }
  if (auto ec = txn->commit()) return ec;

  // 3. Body files that no entry names: committed-never or evicted-not-yet-unlinked.
  for (std::uint64_t fan = 0; fan < 256; ++fan) {
    const auto dir = s.layout.fan_dir(fan);
    for_each_name(dir, [&](std::string_view name) {
      const auto id = object_layout::parse_name(name);
      if (!id || live_files.count(*id)) return;
      if (::unlink((dir / name).c_str()) == 0) ++r.orphan_files_removed;
    });
  }
  r.objects = live.size();
  r.bytes = bytes;
  s.objects_count = live.size();
  s.bytes = bytes;
  s.clock = max_tick + 1;
  return {};
}

}  // namespace detail

result<std::size_t> store::verify_bodies(std::size_t max_objects) {
  struct item {
    key_hash hash;
    std::uint64_t id, size;
    std::uint32_t crc;
  };
  std::vector<item> items;
  {
    std::lock_guard lock(s_->verify_mu);
    auto txn = s_->env.begin_read();
    if (!txn) return txn.error();
    auto cur = txn->open_cursor(s_->objects);
    if (!cur) return cur.error();
    error_code ec;
    // LMDB refuses an empty key to seek with: start from the top instead.
    auto e = s_->verify_next.empty() ? cur->first(&ec) : cur->lower_bound(s_->verify_next, &ec);
    if (ec) return ec;
    std::string last;
    for (; e && items.size() < max_objects; e = cur->next()) {
      last.assign(e->key);
      if (e->key.size() != 16) continue;
      const auto m = decode_meta(e->value);
      if (m && m->location == body_location::file)
        items.push_back({key_hash::from(e->key), m->object_id, m->body_size, m->checksum});
    }
    // Resume after the last key looked at; wrap around at the end.
    s_->verify_next = e ? last + '\0' : std::string();
  }
  std::size_t dropped = 0;
  std::string buf(1 << 20, '\0');
  for (const auto& it : items) {
    detail::unique_fd fd(::open(s_->layout.body_path(it.id).c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) continue;  // evicted meanwhile (a lost file is caught by lookup or open)
    std::uint32_t crc = 0;
    std::uint64_t off = 0;
    error_code ec;
    for (;;) {
      const std::size_t got = detail::pread_full(fd.get(), buf.data(), buf.size(), off, ec);
      if (ec || got == 0) break;
      crc = crc32c_update(crc, std::string_view(buf.data(), got));
      off += got;
    }
    if (ec) continue;
    if (off != it.size || crc != it.crc) {
      s_->drop_corrupt(it.hash, it.id);
      ++dropped;
    }
  }
  return dropped;
}

}  // namespace storecache::cache
