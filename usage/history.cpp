// The usage history in LMDB: codecs, add with the per-hour asset cap, prune, summarize.
//
// Keys: hour (uint32 big-endian) + dimension byte + name. Besides the dimensions of
// history.hpp, each hour that has assets holds one bookkeeping key, hour + 0xFF + "", whose
// value is the number of distinct asset names stored for that hour (uint64 little-endian), so
// add() applies the cap with one lookup instead of counting the hour's asset keys. It sorts
// after every bucket of its hour and is skipped by summarize().
// Values: usage_counts as uint64 little-endian in declaration order. The size is the format:
//   format 1 (48 bytes): requests, hits, bytes_from_cache, bytes_from_upstream, upstream_bytes,
//     upstream_requests. What every value was before denials were counted; read back with no
//     denials.
//   format 2 (80 bytes): format 1, then denied[network, client_cert, signature, upstream].
//   format 3 (96 bytes): format 2, then prefetch_bytes, prefetch_requests.
// encode_counts writes the smallest format that holds the counts: format 1 whenever no denial
// and no prefetch is counted (most buckets), so those stay readable by a daemon that predates
// format 2 or 3 (it skips values of the newer formats, and a later add to such a bucket starts
// it again from zero). Older formats read back with 0 for the fields they lack. A value of
// another size is refused by decode_counts and skipped by summarize (never misread).
//
// The prefetch readiness: database "usage_prefetch", one key ("sources"), its value
//   u8 version (1), i64 saved_unix, u32 count, then count records of
//   site, source, path, kind (each u32 length + bytes), listed, fresh, missing, failed, bytes,
//   pinned_objects, pinned_bytes, unpinned_objects, unpinned_bytes (u64 each), last_error
//   (u32 length + bytes), last_run_end, next_run (i64 each),
// integers little-endian. Replaced as a whole; deleted when the set is empty. A value that does
// not decode (damaged, or a later version) reads as no prefetch state.
#include "usage/history.hpp"

#include <algorithm>
#include <boost/system/errc.hpp>
#include <cstring>

namespace storecache::usage {

namespace lmdb = cache::lmdb;

namespace {

constexpr std::uint8_t asset_count_dim = 0xFF;
constexpr std::uint8_t max_dim = static_cast<std::uint8_t>(dimension::site);
constexpr std::size_t counts_v1_size = 6 * 8;
constexpr std::size_t counts_v2_size = counts_v1_size + access::denial_count * 8;
constexpr std::size_t counts_v3_size = counts_v2_size + 2 * 8;
constexpr std::string_view prefetch_db_name = "usage_prefetch";
constexpr std::string_view prefetch_key = "sources";
constexpr std::uint8_t prefetch_version = 1;
// Format 2's order is access::denial's: a reason added there needs a format 3 here.
static_assert(access::denial_count == 4 && static_cast<int>(access::denial::network) == 0 &&
              static_cast<int>(access::denial::client_cert) == 1 &&
              static_cast<int>(access::denial::signature) == 2 &&
              static_cast<int>(access::denial::upstream) == 3);
// summarize() allocates one entry per hour: refuse absurd periods instead.
constexpr std::uint32_t max_summary_hours = 100 * 24 * 366;

void put_u32_be(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((v >> shift) & 0xFF));
}

std::uint32_t get_u32_be(std::string_view b) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v = (v << 8) | static_cast<unsigned char>(b[static_cast<std::size_t>(i)]);
  return v;
}

void put_u64_le(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

std::uint64_t get_u64_le(std::string_view b) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i)
    v = (v << 8) | static_cast<unsigned char>(b[static_cast<std::size_t>(i)]);
  return v;
}

// s cut to at most n bytes, never inside a UTF-8 sequence.
std::string_view cut_utf8(std::string_view s, std::size_t n) {
  if (s.size() <= n) return s;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80)
    --n;
  return s.substr(0, n);
}

void put_text(std::string& out, std::string_view s) {
  s = cut_utf8(s, max_prefetch_text_bytes);
  const auto n = static_cast<std::uint32_t>(s.size());
  for (int i = 0; i < 4; ++i)
    out.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
  out.append(s);
}

// Reads from the front of b, advancing it; false when b is too short or the text too long.
bool take_u64(std::string_view& b, std::uint64_t& v) {
  if (b.size() < 8) return false;
  v = get_u64_le(b.substr(0, 8));
  b.remove_prefix(8);
  return true;
}

bool take_i64(std::string_view& b, std::int64_t& v) {
  std::uint64_t u = 0;
  if (!take_u64(b, u)) return false;
  v = static_cast<std::int64_t>(u);
  return true;
}

bool take_u32(std::string_view& b, std::uint32_t& v) {
  if (b.size() < 4) return false;
  v = 0;
  for (int i = 3; i >= 0; --i)
    v = (v << 8) | static_cast<unsigned char>(b[static_cast<std::size_t>(i)]);
  b.remove_prefix(4);
  return true;
}

bool take_text(std::string_view& b, std::string& s) {
  std::uint32_t n = 0;
  if (!take_u32(b, n) || n > max_prefetch_text_bytes || b.size() < n) return false;
  s.assign(b.substr(0, n));
  b.remove_prefix(n);
  return true;
}

std::string hour_prefix(std::uint32_t hour) {
  std::string k;
  put_u32_be(k, hour);
  return k;
}

std::string asset_count_key(std::uint32_t hour) {
  std::string k = hour_prefix(hour);
  k.push_back(static_cast<char>(asset_count_dim));
  return k;
}

error_code invalid_argument() {
  return make_error_code(boost::system::errc::invalid_argument);
}

// Read-modify-write of one bucket inside txn.
error_code add_to(lmdb::write_txn& txn, lmdb::dbi db, const std::string& key,
                  const usage_counts& c) {
  error_code ec;
  usage_counts sum = c;
  if (auto old = txn.get(db, key, ec)) {
    if (auto prev = decode_counts(*old)) sum += *prev;  // a damaged value is replaced
  } else if (ec) {
    return ec;
  }
  return txn.put(db, key, encode_counts(sum));
}

bool better_asset(const std::pair<std::string, usage_counts>& a,
                  const std::pair<std::string, usage_counts>& b) {
  if (a.second.upstream_bytes != b.second.upstream_bytes)
    return a.second.upstream_bytes > b.second.upstream_bytes;
  if (a.second.requests != b.second.requests) return a.second.requests > b.second.requests;
  return a.first < b.first;
}

}  // namespace

// ---- counts and codecs

std::string_view truncate_name(std::string_view name) {
  // Back off over continuation bytes (10xxxxxx) to the start of the cut character.
  return cut_utf8(name, max_name_bytes);
}

usage_counts& usage_counts::operator+=(const usage_counts& o) {
  requests += o.requests;
  hits += o.hits;
  bytes_from_cache += o.bytes_from_cache;
  bytes_from_upstream += o.bytes_from_upstream;
  upstream_bytes += o.upstream_bytes;
  upstream_requests += o.upstream_requests;
  for (std::size_t i = 0; i < denied.size(); ++i)
    denied[i] += o.denied[i];
  prefetch_bytes += o.prefetch_bytes;
  prefetch_requests += o.prefetch_requests;
  return *this;
}

std::uint64_t usage_counts::denied_total() const {
  std::uint64_t n = 0;
  for (std::uint64_t d : denied)
    n += d;
  return n;
}

std::string encode_key(const bucket_key& k) {
  const std::string_view name = truncate_name(k.name);
  std::string out;
  out.reserve(5 + name.size());
  put_u32_be(out, k.hour);
  out.push_back(static_cast<char>(k.dim));
  out.append(name);
  return out;
}

std::optional<bucket_key> decode_key(std::string_view bytes) {
  if (bytes.size() < 5 || bytes.size() > 5 + max_name_bytes) return std::nullopt;
  const auto dim = static_cast<std::uint8_t>(bytes[4]);
  if (dim > max_dim) return std::nullopt;
  return bucket_key{get_u32_be(bytes), static_cast<dimension>(dim), std::string(bytes.substr(5))};
}

std::string encode_counts(const usage_counts& c) {
  const bool with_prefetch = c.prefetch_bytes != 0 || c.prefetch_requests != 0;
  const bool with_denials = with_prefetch || c.denied != decltype(c.denied){};
  std::string out;
  out.reserve(with_prefetch ? counts_v3_size : with_denials ? counts_v2_size : counts_v1_size);
  for (std::uint64_t v : {c.requests, c.hits, c.bytes_from_cache, c.bytes_from_upstream,
                          c.upstream_bytes, c.upstream_requests})
    put_u64_le(out, v);
  if (with_denials)
    for (std::uint64_t v : c.denied)
      put_u64_le(out, v);
  if (with_prefetch) {
    put_u64_le(out, c.prefetch_bytes);
    put_u64_le(out, c.prefetch_requests);
  }
  return out;
}

std::optional<usage_counts> decode_counts(std::string_view b) {
  if (b.size() != counts_v1_size && b.size() != counts_v2_size && b.size() != counts_v3_size)
    return std::nullopt;
  usage_counts c;
  std::uint64_t* fields[] = {&c.requests,         &c.hits,
                             &c.bytes_from_cache, &c.bytes_from_upstream,
                             &c.upstream_bytes,   &c.upstream_requests};
  for (std::size_t i = 0; i < 6; ++i)
    *fields[i] = get_u64_le(b.substr(8 * i, 8));
  if (b.size() >= counts_v2_size)
    for (std::size_t i = 0; i < c.denied.size(); ++i)
      c.denied[i] = get_u64_le(b.substr(counts_v1_size + 8 * i, 8));
  if (b.size() == counts_v3_size) {
    c.prefetch_bytes = get_u64_le(b.substr(counts_v2_size, 8));
    c.prefetch_requests = get_u64_le(b.substr(counts_v2_size + 8, 8));
  }
  return c;
}

std::string encode_prefetch(const prefetch_snapshot& p) {
  const std::size_t n = std::min(p.sources.size(), max_prefetch_sources);
  std::string out;
  out.reserve(13 + n * 256);
  out.push_back(static_cast<char>(prefetch_version));
  put_u64_le(out, static_cast<std::uint64_t>(p.saved_unix));
  for (int i = 0; i < 4; ++i)
    out.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
  for (std::size_t i = 0; i < n; ++i) {
    const prefetch_state& s = p.sources[i];
    for (std::string_view t : {std::string_view(s.site), std::string_view(s.source),
                               std::string_view(s.path), std::string_view(s.kind)})
      put_text(out, t);
    for (std::uint64_t v : {s.listed, s.fresh, s.missing, s.failed, s.bytes, s.pinned_objects,
                            s.pinned_bytes, s.unpinned_objects, s.unpinned_bytes})
      put_u64_le(out, v);
    put_text(out, s.last_error);
    put_u64_le(out, static_cast<std::uint64_t>(s.last_run_end));
    put_u64_le(out, static_cast<std::uint64_t>(s.next_run));
  }
  return out;
}

std::optional<prefetch_snapshot> decode_prefetch(std::string_view b) {
  if (b.empty() || static_cast<std::uint8_t>(b[0]) != prefetch_version) return std::nullopt;
  b.remove_prefix(1);
  prefetch_snapshot p;
  std::uint32_t n = 0;
  if (!take_i64(b, p.saved_unix) || !take_u32(b, n) || n > max_prefetch_sources)
    return std::nullopt;
  // Each record is at least 5 lengths and 11 integers: a count the bytes cannot hold is refused
  // before anything is allocated for it.
  if (b.size() / (5 * 4 + 11 * 8) < n) return std::nullopt;
  p.sources.resize(n);
  for (prefetch_state& s : p.sources) {
    for (std::string* t : {&s.site, &s.source, &s.path, &s.kind})
      if (!take_text(b, *t)) return std::nullopt;
    for (std::uint64_t* v :
         {&s.listed, &s.fresh, &s.missing, &s.failed, &s.bytes, &s.pinned_objects, &s.pinned_bytes,
          &s.unpinned_objects, &s.unpinned_bytes})
      if (!take_u64(b, *v)) return std::nullopt;
    if (!take_text(b, s.last_error) || !take_i64(b, s.last_run_end) || !take_i64(b, s.next_run))
      return std::nullopt;
  }
  if (!b.empty()) return std::nullopt;
  return p;
}

std::size_t prefetch_snapshot::ready_count() const {
  return static_cast<std::size_t>(
      std::count_if(sources.begin(), sources.end(), [](const auto& s) { return s.ready(); }));
}

// ---- summary

double usage_summary::hit_ratio() const {
  return total.requests == 0
             ? 0.0
             : static_cast<double>(total.hits) / static_cast<double>(total.requests);
}

double usage_summary::byte_hit_ratio() const {
  const std::uint64_t served = total.bytes_served();
  return served == 0 ? 0.0
                     : static_cast<double>(total.bytes_from_cache) / static_cast<double>(served);
}

std::uint64_t usage_summary::wan_bytes_saved() const {
  const std::uint64_t served = total.bytes_served();
  return served > total.upstream_bytes ? served - total.upstream_bytes : 0;
}

std::optional<std::uint32_t> usage_summary::peak_upstream_hour() const {
  std::optional<std::uint32_t> peak;
  std::uint64_t best = 0;
  for (std::size_t i = 0; i < hours.size(); ++i)
    if (hours[i].upstream_bytes > best) {  // ties: the earliest hour
      best = hours[i].upstream_bytes;
      peak = from_hour + static_cast<std::uint32_t>(i);
    }
  return peak;
}

// ---- history

struct history::state {
  std::optional<lmdb::env> owned;  // open_read_only's own env
  lmdb::env* env = nullptr;
  lmdb::dbi db;
  std::optional<lmdb::dbi> prefetch_db;  // none: a read-only env written by an older daemon
};

history::history(std::unique_ptr<state> s) : s_(std::move(s)) {}
history::history(history&&) noexcept = default;
history& history::operator=(history&&) noexcept = default;
history::~history() = default;

result<history> history::open(lmdb::env& env) {
  auto db = env.open_db("usage", lmdb::db_create);
  if (!db) return db.error();
  auto pdb = env.open_db(prefetch_db_name, lmdb::db_create);
  if (!pdb) return pdb.error();
  auto s = std::make_unique<state>();
  s->env = &env;
  s->db = *db;
  s->prefetch_db = *pdb;
  return history(std::move(s));
}

result<history> history::open_read_only(const std::filesystem::path& cache_dir) {
  lmdb::env_options o;
  o.read_only = true;
  o.map_size = 0;  // the daemon's
  auto env = lmdb::env::open(cache_dir / "index", o);
  if (!env) return env.error();
  auto s = std::make_unique<state>();
  s->owned = std::move(*env);
  s->env = &*s->owned;
  auto db = s->env->open_db("usage", lmdb::db_default);
  if (!db) return db.error();
  s->db = *db;
  if (auto pdb = s->env->open_db(prefetch_db_name, lmdb::db_default))
    s->prefetch_db = *pdb;
  else if (pdb.error() != lmdb::errc::not_found)
    return pdb.error();
  return history(std::move(s));
}

error_code history::add(const usage_delta& delta) {
  return add(delta, std::nullopt);
}

error_code history::add(const usage_delta& delta,
                        const std::optional<prefetch_snapshot>& prefetch) {
  if (delta.empty() && !prefetch) return {};
  auto txn = s_->env->begin_write();
  if (!txn) return txn.error();
  // Distinct asset names per hour touched by this delta, read once, written back at the end.
  std::map<std::uint32_t, std::uint64_t> asset_counts;
  error_code ec;
  for (const auto& [key, counts] : delta) {
    std::string k = encode_key(key);
    if (key.dim == dimension::asset && key.name != other_assets) {
      const bool known = txn->get(s_->db, k, ec).has_value();
      if (ec) return ec;
      if (!known) {
        auto it = asset_counts.find(key.hour);
        if (it == asset_counts.end()) {
          std::uint64_t n = 0;
          const auto v = txn->get(s_->db, asset_count_key(key.hour), ec);
          if (ec) return ec;
          if (v && v->size() == 8) n = get_u64_le(*v);
          it = asset_counts.emplace(key.hour, n).first;
        }
        if (it->second < max_assets_per_hour) {
          ++it->second;
        } else {
          k = encode_key(bucket_key{key.hour, dimension::asset, std::string(other_assets)});
        }
      }
    }
    if (auto e = add_to(*txn, s_->db, k, counts)) return e;
  }
  for (const auto& [hour, n] : asset_counts) {
    std::string v;
    put_u64_le(v, n);
    if (auto e = txn->put(s_->db, asset_count_key(hour), v)) return e;
  }
  if (prefetch && s_->prefetch_db) {
    if (prefetch->sources.empty()) {
      if (auto e = txn->del(*s_->prefetch_db, prefetch_key); e && e != lmdb::errc::not_found)
        return e;
    } else if (auto e = txn->put(*s_->prefetch_db, prefetch_key, encode_prefetch(*prefetch))) {
      return e;
    }
  }
  return txn->commit();
}

result<std::size_t> history::prune(std::uint32_t oldest_kept) {
  auto txn = s_->env->begin_write();
  if (!txn) return txn.error();
  std::size_t deleted = 0;
  {
    auto c = txn->open_cursor(s_->db);
    if (!c) return c.error();
    error_code ec;
    // Keys sort by hour first: the old ones are always at the front (with any key too short
    // to carry an hour, which is not ours and would otherwise stop pruning for good).
    for (auto e = c->first(&ec); e && (e->key.size() < 4 || get_u32_be(e->key) < oldest_kept);
         e = c->first(&ec)) {
      if (auto d = c->del()) return d;
      ++deleted;
    }
    if (ec) return ec;
  }
  if (auto ec = txn->commit()) return ec;
  return deleted;
}

namespace {

result<prefetch_snapshot> read_prefetch(lmdb::read_txn& txn, const std::optional<lmdb::dbi>& db) {
  if (!db) return prefetch_snapshot{};
  error_code ec;
  const auto v = txn.get(*db, prefetch_key, ec);
  if (ec) return ec;
  if (!v) return prefetch_snapshot{};
  return decode_prefetch(*v).value_or(prefetch_snapshot{});  // damaged or newer: none
}

}  // namespace

result<usage_summary> history::summarize(std::uint32_t from_hour, std::uint32_t to_hour,
                                         std::size_t top_n) const {
  if (to_hour < from_hour || to_hour - from_hour >= max_summary_hours) return invalid_argument();
  usage_summary s;
  s.from_hour = from_hour;
  s.to_hour = to_hour;
  s.hours.resize(std::size_t{to_hour - from_hour} + 1);
  std::map<std::string, usage_counts, std::less<>> assets;

  auto txn = s_->env->begin_read();
  if (!txn) return txn.error();
  auto c = txn->open_cursor(s_->db);
  if (!c) return c.error();
  error_code ec;
  for (auto e = c->lower_bound(hour_prefix(from_hour), &ec); e; e = c->next(&ec)) {
    if (e->key.size() < 4 || get_u32_be(e->key) > to_hour) break;
    const auto key = decode_key(e->key);          // nullopt: the asset count, or not ours
    const auto counts = decode_counts(e->value);  // nullopt: damaged, skipped
    if (!key || !counts) continue;
    auto add_named = [&](std::map<std::string, usage_counts, std::less<>>& m) {
      auto it = m.find(key->name);
      if (it == m.end()) it = m.emplace(key->name, usage_counts{}).first;
      it->second += *counts;
    };
    switch (key->dim) {
      case dimension::total:
        s.total += *counts;
        s.hours[key->hour - from_hour] += *counts;
        break;
      case dimension::content: {
        int i = 0;
        while (i < content_class_count - 1 && label(static_cast<content_class>(i)) != key->name)
          ++i;  // an unknown name lands in the last class, other
        s.content[static_cast<std::size_t>(i)] += *counts;
        break;
      }
      case dimension::device:
        add_named(s.devices);
        break;
      case dimension::os_version:
        add_named(s.os_versions);
        break;
      case dimension::tls:
        add_named(s.tls);
        break;
      case dimension::protocol:
        add_named(s.protocols);
        break;
      case dimension::asset:
        add_named(assets);
        break;
      case dimension::site:
        add_named(s.sites);
        break;
    }
  }
  if (ec) return ec;
  auto pre = read_prefetch(*txn, s_->prefetch_db);
  if (!pre) return pre.error();
  s.prefetch = std::move(*pre);

  s.top_assets.assign(std::make_move_iterator(assets.begin()),
                      std::make_move_iterator(assets.end()));
  const std::size_t n = std::min(top_n, s.top_assets.size());
  std::partial_sort(s.top_assets.begin(), s.top_assets.begin() + static_cast<std::ptrdiff_t>(n),
                    s.top_assets.end(), better_asset);
  s.top_assets.resize(n);
  return s;
}

result<prefetch_snapshot> history::prefetch() const {
  auto txn = s_->env->begin_read();
  if (!txn) return txn.error();
  return read_prefetch(*txn, s_->prefetch_db);
}

result<std::optional<std::pair<std::uint32_t, std::uint32_t>>> history::span() const {
  auto txn = s_->env->begin_read();
  if (!txn) return txn.error();
  auto c = txn->open_cursor(s_->db);
  if (!c) return c.error();
  error_code ec;
  auto first = c->first(&ec);
  if (ec) return ec;
  if (!first) return std::optional<std::pair<std::uint32_t, std::uint32_t>>();
  const std::uint32_t lo = first->key.size() >= 4 ? get_u32_be(first->key) : 0;
  auto last = c->last(&ec);
  if (ec) return ec;
  const std::uint32_t hi = last && last->key.size() >= 4 ? get_u32_be(last->key) : lo;
  return std::optional<std::pair<std::uint32_t, std::uint32_t>>(std::pair{lo, hi});
}

}  // namespace storecache::usage
