// The LMDB wrapper against a real environment in a temporary directory.
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "cache/lmdb.hpp"

namespace lmdb = storecache::cache::lmdb;
namespace fs = std::filesystem;

namespace {

struct temp_dir {
  fs::path path;
  temp_dir() {
    path = fs::temp_directory_path() /
           ("lmdb_test." + std::to_string(::getpid()) + "." + std::to_string(counter()++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~temp_dir() { fs::remove_all(path); }
  static int& counter() {
    static int n = 0;
    return n;
  }
};

lmdb::env open_env(const fs::path& p) {
  lmdb::env_options o;
  o.map_size = std::size_t{1} << 30;
  auto e = lmdb::env::open(p, o);
  REQUIRE(e.has_value());
  return std::move(*e);
}

}  // namespace

TEST_CASE("lmdb: committed writes are visible, aborted ones are not", "[lmdb]") {
  temp_dir dir;
  auto env = open_env(dir.path);
  auto db = env.open_db("t");
  REQUIRE(db.has_value());
  {
    auto w = env.begin_write();
    REQUIRE(w.has_value());
    REQUIRE_FALSE(w->put(*db, "a", "1"));
    REQUIRE_FALSE(w->put(*db, "b", "2"));
    REQUIRE_FALSE(w->commit());
    REQUIRE_FALSE(w->valid());
  }
  {
    auto w = env.begin_write();
    REQUIRE_FALSE(w->put(*db, "c", "3"));
    // destroyed without commit: aborted
  }
  {
    auto w = env.begin_write();
    REQUIRE_FALSE(w->put(*db, "d", "4"));
    w->abort();
    CHECK(w->commit() == lmdb::errc::bad_txn);
  }
  auto r = env.begin_read();
  REQUIRE(r.has_value());
  CHECK(r->get(*db, "a") == std::optional<std::string_view>("1"));
  CHECK(r->get(*db, "b") == std::optional<std::string_view>("2"));
  CHECK_FALSE(r->get(*db, "c").has_value());
  CHECK_FALSE(r->get(*db, "d").has_value());
  CHECK(r->count(*db).value() == 2);
}

TEST_CASE("lmdb: errors carry the lmdb category", "[lmdb]") {
  temp_dir dir;
  auto env = open_env(dir.path);
  auto db = env.open_db("t").value();
  auto missing = env.open_db("nope", lmdb::db_default);
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error() == lmdb::errc::not_found);
  auto w = env.begin_write().value();
  CHECK(w.del(db, "missing") == lmdb::errc::not_found);
  REQUIRE_FALSE(w.put(db, "k", "v"));
  const auto ec = w.put(db, "k", "w", lmdb::put_no_overwrite);
  CHECK(ec == lmdb::errc::key_exist);
  CHECK(std::string(ec.category().name()) == "storecache.lmdb");
  CHECK(ec.message().find("MDB_KEYEXIST") != std::string::npos);
  // A key longer than LMDB's limit (511 bytes by default).
  CHECK(w.put(db, std::string(600, 'x'), "v") == lmdb::errc::bad_valsize);
}

TEST_CASE("lmdb: cursors iterate in key order and seek", "[lmdb]") {
  temp_dir dir;
  auto env = open_env(dir.path);
  auto db = env.open_db("t").value();
  {
    auto w = env.begin_write().value();
    for (const char* k : {"m", "c", "x", "a"})
      REQUIRE_FALSE(w.put(db, k, k));
    REQUIRE_FALSE(w.commit());
  }
  auto r = env.begin_read().value();
  auto c = r.open_cursor(db).value();
  std::string order;
  for (auto e = c.first(); e; e = c.next())
    order += e->key;
  CHECK(order == "acmx");
  auto e = c.lower_bound("d");
  REQUIRE(e);
  CHECK(e->key == "m");
  CHECK_FALSE(c.lower_bound("y"));
  CHECK(c.last()->key == "x");
}

TEST_CASE("lmdb: cursor delete and dupsort databases", "[lmdb]") {
  temp_dir dir;
  auto env = open_env(dir.path);
  auto db = env.open_db("d", lmdb::db_create | lmdb::db_dupsort).value();
  {
    auto w = env.begin_write().value();
    REQUIRE_FALSE(w.put(db, "k", "1"));
    REQUIRE_FALSE(w.put(db, "k", "2"));
    REQUIRE_FALSE(w.put(db, "k", "3"));
    REQUIRE_FALSE(w.put(db, "l", "9"));
    CHECK(w.put(db, "k", "2", lmdb::put_no_dup_data) == lmdb::errc::key_exist);
    REQUIRE_FALSE(w.del(db, "k", "2"));
    {
      auto c = w.open_cursor(db).value();
      auto e = c.lower_bound("l");
      REQUIRE(e);
      REQUIRE_FALSE(c.del());
    }
    REQUIRE_FALSE(w.commit());
  }
  auto r = env.begin_read().value();
  auto c = r.open_cursor(db).value();
  std::string dups;
  for (auto e = c.lower_bound("k"); e && e->key == "k"; e = c.next_dup())
    dups += e->value;
  CHECK(dups == "13");
  CHECK_FALSE(r.get(db, "l").has_value());
}

TEST_CASE("lmdb: a read txn sees its snapshot and can move between threads", "[lmdb]") {
  temp_dir dir;
  auto env = open_env(dir.path);
  auto db = env.open_db("t").value();
  {
    auto w = env.begin_write().value();
    REQUIRE_FALSE(w.put(db, "k", "old"));
    REQUIRE_FALSE(w.commit());
  }
  auto r = env.begin_read().value();
  {
    auto w = env.begin_write().value();
    REQUIRE_FALSE(w.put(db, "k", "new"));
    REQUIRE_FALSE(w.commit());
  }
  std::string seen;
  // MDB_NOTLS: the transaction is not tied to the thread that began it.
  std::thread t([&] { seen = std::string(r.get(db, "k").value_or("?")); });
  t.join();
  CHECK(seen == "old");
  r.abort();
  CHECK(std::string(env.begin_read().value().get(db, "k").value_or("?")) == "new");
}

TEST_CASE("lmdb: many concurrent readers and one writer", "[lmdb]") {
  temp_dir dir;
  auto env = open_env(dir.path);
  auto db = env.open_db("t").value();
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::atomic<long> reads{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < 4; ++i) {
    readers.emplace_back([&] {
      while (!stop) {
        auto r = env.begin_read();
        if (!r) {
          ++bad;
          continue;
        }
        // Invariant the writer keeps: "a" and "b" always hold the same value.
        auto a = r->get(db, "a");
        auto b = r->get(db, "b");
        if (a.has_value() != b.has_value() || (a && *a != *b)) ++bad;
        ++reads;
      }
    });
  }
  for (int i = 0; i < 300; ++i) {
    auto w = env.begin_write().value();
    const std::string v = std::to_string(i);
    REQUIRE_FALSE(w.put(db, "a", v));
    REQUIRE_FALSE(w.put(db, "b", v));
    REQUIRE_FALSE(w.commit());
  }
  stop = true;
  for (auto& t : readers)
    t.join();
  CHECK(bad == 0);
  CHECK(reads > 0);
}

TEST_CASE("lmdb: data survives closing and reopening the env", "[lmdb]") {
  temp_dir dir;
  {
    auto env = open_env(dir.path);
    auto db = env.open_db("t").value();
    auto w = env.begin_write().value();
    REQUIRE_FALSE(w.put(db, "k", "v"));
    REQUIRE_FALSE(w.commit());
    auto info = env.info().value();
    CHECK(info.page_size >= 4096);
    CHECK(info.last_page > 0);
  }
  auto env = open_env(dir.path);
  auto db = env.open_db("t", lmdb::db_default).value();
  CHECK(env.begin_read().value().get(db, "k") == std::optional<std::string_view>("v"));
}

// LMDB forbids opening one env twice in one process (its POSIX locks are per process), so the
// read-only env lives in a child, as `storecache report` lives beside the daemon. The child
// reports by exit code: 0 = all good, otherwise the number of the failed step.
TEST_CASE("lmdb: a read-only env in another process reads while the writer writes", "[lmdb]") {
  temp_dir dir;
  lmdb::env_options ro;
  ro.read_only = true;
  ro.map_size = 0;  // the writer's size
  // Nothing there yet: a reader cannot create the env.
  CHECK_FALSE(lmdb::env::open(dir.path, ro).has_value());

  auto writer = open_env(dir.path);
  auto wdb = writer.open_db("t").value();
  CHECK_FALSE(writer.read_only());
  auto put = [&](const char* v) {
    auto w = writer.begin_write().value();
    REQUIRE_FALSE(w.put(wdb, "k", v));
    REQUIRE_FALSE(w.commit());
  };
  put("1");
  int to_child[2], to_parent[2];
  REQUIRE(::pipe(to_child) == 0);
  REQUIRE(::pipe(to_parent) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    auto step = [&]() -> int {
      char c = 0;
      auto reader = lmdb::env::open(dir.path, ro);
      if (!reader || !reader->read_only()) return 1;
      // db_create is ignored: a missing database stays missing.
      if (reader->open_db("absent").error() != lmdb::errc::not_found) return 2;
      auto db = reader->open_db("t");
      if (!db) return 3;
      auto r = reader->begin_read();
      if (!r || r->get(*db, "k") != std::optional<std::string_view>("1")) return 4;
      if (::write(to_parent[1], "r", 1) != 1 || ::read(to_child[0], &c, 1) != 1) return 5;
      // The parent committed "2" while this snapshot was open: not seen here...
      if (r->get(*db, "k") != std::optional<std::string_view>("1")) return 6;
      r->abort();
      // ...but by the next transaction, through the handle opened before.
      auto r2 = reader->begin_read();
      if (!r2 || r2->get(*db, "k") != std::optional<std::string_view>("2")) return 7;
      r2->abort();
      if (reader->begin_write().has_value()) return 8;
      return 0;
    };
    ::_exit(step());
  }
  char c = 0;
  REQUIRE(::read(to_parent[0], &c, 1) == 1);
  put("2");  // the child's open read txn must not block this
  REQUIRE(::write(to_child[1], "w", 1) == 1);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  for (int fd : {to_child[0], to_child[1], to_parent[0], to_parent[1]})
    ::close(fd);
}
