#include "cache/lmdb.hpp"

#include <lmdb.h>

#include <string>

namespace storecache::cache::lmdb {

static_assert(static_cast<int>(errc::key_exist) == MDB_KEYEXIST);
static_assert(static_cast<int>(errc::not_found) == MDB_NOTFOUND);
static_assert(static_cast<int>(errc::map_full) == MDB_MAP_FULL);
static_assert(static_cast<int>(errc::bad_dbi) == MDB_BAD_DBI);
static_assert(static_cast<unsigned>(db_create) == MDB_CREATE);
static_assert(static_cast<unsigned>(db_dupsort) == MDB_DUPSORT);
static_assert(static_cast<unsigned>(db_dupfixed) == MDB_DUPFIXED);
static_assert(static_cast<unsigned>(put_no_overwrite) == MDB_NOOVERWRITE);
static_assert(static_cast<unsigned>(put_no_dup_data) == MDB_NODUPDATA);
static_assert(static_cast<unsigned>(put_append) == MDB_APPEND);

namespace {

class lmdb_category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "storecache.lmdb"; }
  std::string message(int ev) const override { return ::mdb_strerror(ev); }
};

MDB_val to_val(std::string_view s) {
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}
std::string_view from_val(const MDB_val& v) {
  return {static_cast<const char*>(v.mv_data), v.mv_size};
}

}  // namespace

const boost::system::error_category& category() noexcept {
  static const lmdb_category c;
  return c;
}

// ---- cursor

cursor& cursor::operator=(cursor&& o) noexcept {
  if (this != &o) {
    if (c_) ::mdb_cursor_close(c_);
    c_ = o.c_;
    o.c_ = nullptr;
  }
  return *this;
}

cursor::~cursor() {
  if (c_) ::mdb_cursor_close(c_);
}

std::optional<cursor::entry> cursor::move(int op, std::string_view key, error_code* ec) {
  if (ec) ec->clear();
  MDB_val k = to_val(key);
  MDB_val v{0, nullptr};
  const int rc = ::mdb_cursor_get(c_, &k, &v, static_cast<MDB_cursor_op>(op));
  if (rc == 0) return entry{from_val(k), from_val(v)};
  if (rc != MDB_NOTFOUND && ec) *ec = make_error(rc);
  return std::nullopt;
}

std::optional<cursor::entry> cursor::first(error_code* ec) {
  return move(MDB_FIRST, {}, ec);
}
std::optional<cursor::entry> cursor::next(error_code* ec) {
  return move(MDB_NEXT, {}, ec);
}
std::optional<cursor::entry> cursor::last(error_code* ec) {
  return move(MDB_LAST, {}, ec);
}
std::optional<cursor::entry> cursor::next_dup(error_code* ec) {
  return move(MDB_NEXT_DUP, {}, ec);
}
std::optional<cursor::entry> cursor::lower_bound(std::string_view key, error_code* ec) {
  return move(MDB_SET_RANGE, key, ec);
}

error_code cursor::del() {
  return make_error(::mdb_cursor_del(c_, 0));
}

// ---- transactions

void txn_base::abort_now() {
  if (t_) ::mdb_txn_abort(t_);
  t_ = nullptr;
}

std::optional<std::string_view> txn_base::get(dbi db, std::string_view key) const {
  error_code ec;
  return get(db, key, ec);
}

std::optional<std::string_view> txn_base::get(dbi db, std::string_view key, error_code& ec) const {
  ec.clear();
  MDB_val k = to_val(key);
  MDB_val v{0, nullptr};
  const int rc = ::mdb_get(t_, db.id, &k, &v);
  if (rc == 0) return from_val(v);
  if (rc != MDB_NOTFOUND) ec = make_error(rc);
  return std::nullopt;
}

result<cursor> txn_base::open_cursor(dbi db) const {
  MDB_cursor* c = nullptr;
  if (const int rc = ::mdb_cursor_open(t_, db.id, &c); rc != 0) return make_error(rc);
  return cursor(c);
}

result<std::size_t> txn_base::count(dbi db) const {
  MDB_stat st{};
  if (const int rc = ::mdb_stat(t_, db.id, &st); rc != 0) return make_error(rc);
  return static_cast<std::size_t>(st.ms_entries);
}

read_txn& read_txn::operator=(read_txn&& o) noexcept {
  if (this != &o) {
    abort_now();
    t_ = o.t_;
    o.t_ = nullptr;
  }
  return *this;
}

write_txn& write_txn::operator=(write_txn&& o) noexcept {
  if (this != &o) {
    abort_now();
    t_ = o.t_;
    o.t_ = nullptr;
  }
  return *this;
}

error_code write_txn::put(dbi db, std::string_view key, std::string_view value, unsigned flags) {
  MDB_val k = to_val(key);
  MDB_val v = to_val(value);
  return make_error(::mdb_put(t_, db.id, &k, &v, flags));
}

error_code write_txn::del(dbi db, std::string_view key) {
  MDB_val k = to_val(key);
  return make_error(::mdb_del(t_, db.id, &k, nullptr));
}

error_code write_txn::del(dbi db, std::string_view key, std::string_view value) {
  MDB_val k = to_val(key);
  MDB_val v = to_val(value);
  return make_error(::mdb_del(t_, db.id, &k, &v));
}

error_code write_txn::commit() {
  if (!t_) return make_error_code(errc::bad_txn);
  const int rc = ::mdb_txn_commit(t_);  // frees the txn even when it fails
  t_ = nullptr;
  return make_error(rc);
}

// ---- env

result<env> env::open(const std::filesystem::path& dir, const env_options& opts) {
  MDB_env* e = nullptr;
  if (const int rc = ::mdb_env_create(&e); rc != 0) return make_error(rc);
  env owner(e);  // closes on every early return below
  if (const int rc = ::mdb_env_set_mapsize(e, opts.map_size); rc != 0) return make_error(rc);
  if (const int rc = ::mdb_env_set_maxdbs(e, opts.max_dbs); rc != 0) return make_error(rc);
  if (const int rc = ::mdb_env_set_maxreaders(e, opts.max_readers); rc != 0) return make_error(rc);
  unsigned flags = MDB_NOTLS;
  if (opts.no_meta_sync) flags |= MDB_NOMETASYNC;
  if (opts.read_only) flags |= MDB_RDONLY;
  if (const int rc = ::mdb_env_open(e, dir.c_str(), flags, 0640); rc != 0) return make_error(rc);
  int dead = 0;
  ::mdb_reader_check(e, &dead);  // slots of killed processes would pin old pages forever
  return owner;
}

env& env::operator=(env&& o) noexcept {
  if (this != &o) {
    if (e_) ::mdb_env_close(e_);
    e_ = o.e_;
    o.e_ = nullptr;
  }
  return *this;
}

env::~env() {
  if (e_) ::mdb_env_close(e_);
}

result<read_txn> env::begin_read() const {
  MDB_txn* t = nullptr;
  if (const int rc = ::mdb_txn_begin(e_, nullptr, MDB_RDONLY, &t); rc != 0) return make_error(rc);
  return read_txn(t);
}

result<write_txn> env::begin_write() {
  MDB_txn* t = nullptr;
  if (const int rc = ::mdb_txn_begin(e_, nullptr, 0, &t); rc != 0) return make_error(rc);
  return write_txn(t);
}

bool env::read_only() const {
  unsigned flags = 0;
  return e_ && ::mdb_env_get_flags(e_, &flags) == 0 && (flags & MDB_RDONLY) != 0;
}

result<dbi> env::open_db(std::string_view name, unsigned flags) {
  if (read_only()) {
    // A read txn that commits keeps the dbi handle for the env (mdb_dbi_open's contract).
    MDB_txn* t = nullptr;
    if (const int rc = ::mdb_txn_begin(e_, nullptr, MDB_RDONLY, &t); rc != 0) return make_error(rc);
    const std::string n(name);
    MDB_dbi id = 0;
    if (const int rc = ::mdb_dbi_open(t, n.c_str(), flags & ~unsigned{MDB_CREATE}, &id); rc != 0) {
      ::mdb_txn_abort(t);
      return make_error(rc);
    }
    if (const int rc = ::mdb_txn_commit(t); rc != 0) return make_error(rc);
    return dbi{id};
  }
  auto txn = begin_write();
  if (!txn) return txn.error();
  const std::string n(name);
  MDB_dbi id = 0;
  if (const int rc = ::mdb_dbi_open(txn->handle(), n.c_str(), flags, &id); rc != 0)
    return make_error(rc);
  if (auto ec = txn->commit()) return ec;
  return dbi{id};
}

result<env_info> env::info() const {
  MDB_envinfo in{};
  MDB_stat st{};
  if (const int rc = ::mdb_env_info(e_, &in); rc != 0) return make_error(rc);
  if (const int rc = ::mdb_env_stat(e_, &st); rc != 0) return make_error(rc);
  return env_info{in.me_mapsize, st.ms_psize, in.me_last_pgno, in.me_maxreaders, in.me_numreaders};
}

error_code env::sync() {
  return make_error(::mdb_env_sync(e_, 1));
}

}  // namespace storecache::cache::lmdb
