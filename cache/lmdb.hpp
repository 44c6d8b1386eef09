// A thin, move-only LMDB wrapper that reports errors as error codes (after lmdbxx, minus the
// exceptions: the cache core runs on the request path).
//
// Rules the types enforce or document:
// - read_txn / write_txn abort in their destructor; a write_txn is kept only by commit().
// - get() returns a view into the memory map: valid until the transaction ends, not after.
// - cursors live inside their transaction and must be destroyed before it ends.
// - the env is opened with MDB_NOTLS, so a read_txn may be used by any (one) thread at a time;
//   a write_txn must begin, run and end on one thread (LMDB's writer mutex is per thread).
// - never hold a transaction across anything that may block (network, fsync of a body file).
#pragma once

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string_view>
#include <type_traits>

// LMDB's handles, declared here so that lmdb.h stays an implementation detail of lmdb.cpp.
struct MDB_env;
struct MDB_txn;
struct MDB_cursor;

namespace storecache::cache::lmdb {

using boost::system::error_code;
template <typename T>
using result = boost::system::result<T>;

// LMDB's own return codes (mdb.h), checked against lmdb.h in lmdb.cpp. System errors that
// LMDB passes through (ENOENT, EACCES, ENOSPC...) carry the same category; message() names them.
enum class errc : int {
  ok = 0,
  key_exist = -30799,
  not_found = -30798,
  page_not_found = -30797,
  corrupted = -30796,
  panic = -30795,
  version_mismatch = -30794,
  invalid = -30793,
  map_full = -30792,
  dbs_full = -30791,
  readers_full = -30790,
  tls_full = -30789,
  txn_full = -30788,
  cursor_full = -30787,
  page_full = -30786,
  map_resized = -30785,
  incompatible = -30784,
  bad_rslot = -30783,
  bad_txn = -30782,
  bad_valsize = -30781,
  bad_dbi = -30780,
};

const boost::system::error_category& category() noexcept;
inline error_code make_error_code(errc e) noexcept {
  return error_code(static_cast<int>(e), category());
}
// Any return code of an mdb_* call (0 gives a clear error_code).
inline error_code make_error(int rc) noexcept {
  return error_code(rc, category());
}

// A database handle inside an env. Plain value: LMDB keeps dbi handles for the env's lifetime.
struct dbi {
  unsigned int id = 0;
};

// Flags for env::open_db (values of MDB_CREATE, MDB_DUPSORT, MDB_DUPFIXED).
enum db_flags : unsigned {
  db_default = 0,
  db_create = 0x40000,
  db_dupsort = 0x04,
  db_dupfixed = 0x10,
};

// Flags for write_txn::put (values of MDB_NOOVERWRITE, MDB_NODUPDATA, MDB_APPEND).
enum put_flags : unsigned {
  put_default = 0,
  put_no_overwrite = 0x10,
  put_no_dup_data = 0x20,
  put_append = 0x20000,
};

struct env_options {
  std::size_t map_size = std::size_t{64} << 30;  // virtual; the file grows as pages are used
  unsigned max_dbs = 16;
  unsigned max_readers = 512;  // read txns open at once across the process (NOTLS: per txn)
  // Skip the fsync of the meta page on commit: a system crash may lose the last transaction but
  // never corrupts the database (LMDB's MDB_NOMETASYNC guarantee). A process crash loses nothing.
  bool no_meta_sync = true;
  // Open for reading only (MDB_RDONLY), for a process that inspects a daemon's env while it
  // runs: no write transactions, open_db never creates. LMDB still needs write access to
  // lock.mdb (its reader table), so the caller must be the env's owner (or root). A map_size
  // of 0 takes the size the env was created with.
  bool read_only = false;
};

struct env_info {
  std::size_t map_size = 0;
  std::size_t page_size = 0;
  std::size_t last_page = 0;  // highest page number in use: the file's high-water mark
  unsigned max_readers = 0;
  unsigned num_readers = 0;
};

class read_txn;
class write_txn;

class cursor {
 public:
  cursor() = default;
  cursor(cursor&& o) noexcept : c_(o.c_) { o.c_ = nullptr; }
  cursor& operator=(cursor&& o) noexcept;
  cursor(const cursor&) = delete;
  cursor& operator=(const cursor&) = delete;
  ~cursor();

  struct entry {
    std::string_view key;
    std::string_view value;
  };
  // Positioning; nullopt at the end (or on error, with ec set when given).
  std::optional<entry> first(error_code* ec = nullptr);
  std::optional<entry> next(error_code* ec = nullptr);
  std::optional<entry> last(error_code* ec = nullptr);
  // First entry whose key is >= key.
  std::optional<entry> lower_bound(std::string_view key, error_code* ec = nullptr);
  // Duplicates of the current key (dupsort databases).
  std::optional<entry> next_dup(error_code* ec = nullptr);
  // Deletes the entry under the cursor (write transactions only).
  error_code del();

 private:
  friend class txn_base;
  explicit cursor(MDB_cursor* c) : c_(c) {}
  std::optional<entry> move(int op, std::string_view key, error_code* ec);
  MDB_cursor* c_ = nullptr;
};

// What read and write transactions share.
class txn_base {
 public:
  txn_base(const txn_base&) = delete;
  txn_base& operator=(const txn_base&) = delete;

  // The value under key, or nullopt when absent. The view dies with the transaction.
  std::optional<std::string_view> get(dbi db, std::string_view key) const;
  // Same, telling a real failure (ec set) from absence (ec clear).
  std::optional<std::string_view> get(dbi db, std::string_view key, error_code& ec) const;
  result<cursor> open_cursor(dbi db) const;
  // Number of entries in a database.
  result<std::size_t> count(dbi db) const;

  bool valid() const { return t_ != nullptr; }
  MDB_txn* handle() const { return t_; }

 protected:
  txn_base() = default;
  explicit txn_base(MDB_txn* t) : t_(t) {}
  txn_base(txn_base&& o) noexcept : t_(o.t_) { o.t_ = nullptr; }
  ~txn_base() = default;
  void abort_now();
  MDB_txn* t_ = nullptr;
};

class read_txn : public txn_base {
 public:
  read_txn() = default;
  read_txn(read_txn&& o) noexcept = default;
  read_txn& operator=(read_txn&& o) noexcept;
  ~read_txn() { abort_now(); }
  void abort() { abort_now(); }

 private:
  friend class env;
  explicit read_txn(MDB_txn* t) : txn_base(t) {}
};

class write_txn : public txn_base {
 public:
  write_txn() = default;
  write_txn(write_txn&& o) noexcept = default;
  write_txn& operator=(write_txn&& o) noexcept;
  ~write_txn() { abort_now(); }

  error_code put(dbi db, std::string_view key, std::string_view value,
                 unsigned flags = put_default);
  // Deletes key (all its duplicates in a dupsort database); errc::not_found if absent.
  error_code del(dbi db, std::string_view key);
  // Deletes one key/value pair of a dupsort database.
  error_code del(dbi db, std::string_view key, std::string_view value);
  // Ends the transaction either way: on error nothing was written.
  error_code commit();
  void abort() { abort_now(); }

 private:
  friend class env;
  explicit write_txn(MDB_txn* t) : txn_base(t) {}
};

class env {
 public:
  // Opens (creating if needed) the environment in directory dir, which must exist. Clears
  // reader slots left by dead processes.
  static result<env> open(const std::filesystem::path& dir, const env_options& opts = {});

  env() = default;
  env(env&& o) noexcept : e_(o.e_) { o.e_ = nullptr; }
  env& operator=(env&& o) noexcept;
  env(const env&) = delete;
  env& operator=(const env&) = delete;
  ~env();

  result<read_txn> begin_read() const;
  result<write_txn> begin_write();
  // Opens a named database in a write transaction of its own (do it at start-up: LMDB shares
  // new dbi handles only after that transaction commits). Never call it while this thread
  // holds a write_txn: it would wait for itself. In a read-only env it uses a read
  // transaction, ignores db_create and gives errc::not_found for a database that is not there.
  result<dbi> open_db(std::string_view name, unsigned flags = db_create);
  result<env_info> info() const;
  // Forces buffered meta pages to disk (useful with no_meta_sync before a clean shutdown).
  error_code sync();

  bool valid() const { return e_ != nullptr; }
  bool read_only() const;
  MDB_env* handle() const { return e_; }

 private:
  explicit env(MDB_env* e) : e_(e) {}
  MDB_env* e_ = nullptr;
};

}  // namespace storecache::cache::lmdb

namespace boost::system {
template <>
struct is_error_code_enum<storecache::cache::lmdb::errc> : std::true_type {};
}  // namespace boost::system
