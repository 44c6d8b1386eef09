// store::commit_batch: many finished bodies in one index transaction, each with its own outcome.
#include "store_test_util.hpp"

using namespace store_test;

namespace {

std::string key_of(int i) {
  return "https://batch/" + std::to_string(i);
}

// A finished body, not committed yet.
pending_commit written(store& s, std::string_view primary, std::string_view body,
                       std::optional<std::uint64_t> declared, std::string_view variant = {}) {
  auto h = s.begin_insert(primary, variant, declared);
  REQUIRE(h.has_value());
  for (std::size_t off = 0; off < body.size(); off += 16 * 1024)
    REQUIRE(!h->append(body.substr(off, 16 * 1024)));
  return pending_commit{std::move(*h), make_head(), {}};
}

std::size_t size_of(int i) {
  static constexpr std::size_t sizes[] = {700, 40000, 1024 * 1024 + 7, 16 * 1024, 3};
  return sizes[i % 5];
}

}  // namespace

TEST_CASE("store: commit_batch stores inline and file bodies in one go", "[store][batch]") {
  temp_dir dir("batch");
  auto opts = small_options(dir.path);
  std::vector<pending_commit> batch;
  {
    auto s = open_store(opts);
    for (int i = 0; i < 50; ++i) {
      const auto body = make_body(size_of(i), i + 1);
      batch.push_back(written(s, key_of(i), body, body.size()));
    }
    s.commit_batch(batch);
    for (auto& p : batch) {
      CHECK(!p.result);
      CHECK(p.insert.finished());
    }
    const auto c = s.counters();
    CHECK(c.inserts == 50);
    CHECK(c.objects == 50);
    CHECK(c.insert_failures == 0);
  }
  auto s = open_store(opts);  // durable, and nothing for recovery to repair
  CHECK(s.recovery().orphan_files_removed == 0);
  CHECK(s.recovery().objects == 50);
  std::size_t files = 0;
  for (int i = 0; i < 50; ++i) {
    auto l = s.lookup(key_of(i)).value();
    REQUIRE(l.status == lookup_status::hit);
    if (!l.body.is_inline()) ++files;
    CHECK(read_all(l.body).value() == make_body(size_of(i), i + 1));
  }
  CHECK(count_files(dir.path / "objects") == files);
  CHECK(count_files(dir.path / "objects" / "tmp") == 0);
}

TEST_CASE("store: commit_batch reports each object's own outcome", "[store][batch]") {
  temp_dir dir("batch-outcome");
  auto opts = small_options(dir.path);
  opts.max_object_size = 2 << 20;
  auto s = open_store(opts);
  std::vector<pending_commit> batch;
  const auto good_small = make_body(500, 1);
  const auto good_file = make_body(100000, 2);
  batch.push_back(written(s, key_of(0), good_small, good_small.size()));
  batch.push_back(written(s, key_of(1), make_body(1000, 3), 2000));  // short: size_mismatch
  batch.push_back(written(s, key_of(2), good_file, std::nullopt));
  batch.push_back(written(s, key_of(3), make_body(3 << 20, 4), std::nullopt));  // too big
  batch.push_back(written(s, key_of(4), make_body(50000, 5), 60000));           // short file
  batch.push_back(pending_commit{});  // a handle that was never started: finished
  s.commit_batch(batch);
  CHECK(!batch[0].result);
  CHECK(batch[1].result == store_errc::size_mismatch);
  CHECK(!batch[2].result);
  CHECK(batch[3].result == store_errc::too_big);
  CHECK(batch[4].result == store_errc::size_mismatch);
  CHECK(batch[5].result == store_errc::finished);
  for (auto& p : batch)
    CHECK(p.insert.finished());
  CHECK(s.lookup(key_of(0)).value().status == lookup_status::hit);
  CHECK(s.lookup(key_of(1)).value().status == lookup_status::miss);
  CHECK(s.lookup(key_of(2)).value().status == lookup_status::hit);
  CHECK(s.lookup(key_of(3)).value().status == lookup_status::miss);
  CHECK(s.lookup(key_of(4)).value().status == lookup_status::miss);
  CHECK(s.counters().objects == 2);
  CHECK(s.counters().inserts == 2);
  CHECK(count_files(dir.path / "objects") == 1);  // the one file body; no leftovers
}

TEST_CASE("store: a key twice in one batch keeps the later body and no orphan", "[store][batch]") {
  temp_dir dir("batch-dup");
  auto opts = small_options(dir.path);
  auto s = open_store(opts);
  REQUIRE(!insert(s, key_of(0), make_body(90000, 9)));  // an older stored version
  std::vector<pending_commit> batch;
  const auto first = make_body(80000, 1);
  const auto second = make_body(70000, 2);
  batch.push_back(written(s, key_of(0), first, first.size()));
  batch.push_back(written(s, key_of(0), second, second.size()));
  s.commit_batch(batch);
  CHECK(!batch[0].result);
  CHECK(!batch[1].result);
  auto l = s.lookup(key_of(0)).value();
  REQUIRE(l.status == lookup_status::hit);
  CHECK(read_all(l.body).value() == second);
  CHECK(s.counters().objects == 1);
  CHECK(count_files(dir.path / "objects") == 1);  // the older files are gone
}

TEST_CASE("store: a batch larger than the room left evicts for the whole batch", "[store][batch]") {
  temp_dir dir("batch-evict");
  auto opts = small_options(dir.path);
  opts.max_size = 2 << 20;
  auto s = open_store(opts);
  for (int i = 0; i < 10; ++i)
    REQUIRE(!insert(s, key_of(1000 + i), make_body(150000, i)));
  std::vector<pending_commit> batch;
  for (int i = 0; i < 10; ++i) {
    const auto body = make_body(150000, 100 + i);
    batch.push_back(written(s, key_of(i), body, body.size()));
  }
  s.commit_batch(batch);
  for (auto& p : batch)
    CHECK(!p.result);
  const auto c = s.counters();
  CHECK(c.bytes <= opts.max_size);
  CHECK(c.evictions >= 7);
  // the batch is the newest: all of it stays, the oldest objects went
  for (int i = 0; i < 10; ++i)
    CHECK(s.lookup(key_of(i)).value().status == lookup_status::hit);
  CHECK(s.lookup(key_of(1000)).value().status == lookup_status::miss);
  CHECK(count_files(dir.path / "objects") == c.objects);
}

TEST_CASE("store: when the batch transaction fails, each object is committed alone",
          "[store][batch]") {
  temp_dir dir("batch-full");
  auto opts = small_options(dir.path);
  opts.map_size = 1 << 20;  // the index map fills up part of the way through the batch
  auto s = open_store(opts);
  std::vector<pending_commit> batch;
  for (int i = 0; i < 150; ++i) {
    const auto body = make_body(12000, i + 1);  // inline: the bodies live in the map
    batch.push_back(written(s, key_of(i), body, body.size()));
  }
  s.commit_batch(batch);
  std::size_t ok = 0;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    CHECK(batch[i].insert.finished());
    auto l = s.lookup(key_of(static_cast<int>(i))).value();
    if (!batch[i].result) {
      ++ok;
      REQUIRE(l.status == lookup_status::hit);
      CHECK(read_all(l.body).value() == make_body(12000, static_cast<unsigned>(i) + 1));
    } else {
      CHECK(l.status == lookup_status::miss);
    }
  }
  CHECK(ok > 0);
  CHECK(ok < batch.size());  // the whole batch did not fit: the fallback ran
  CHECK(s.counters().objects == ok);
  CHECK(s.counters().inserts == ok);
  // A full index map is a full disk to the counters: no_space, not an I/O failure.
  CHECK(s.counters().no_space == batch.size() - ok);
  CHECK(s.counters().insert_failures == 0);
}
