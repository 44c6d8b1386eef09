// The body store on a real directory: insert, lookup, ranges, reopen, corruption, recovery,
// eviction, refusal, variants. Concurrency and crash tests: store_concurrency_test.cpp and
// store_crash_test.cpp.
#include "store_test_util.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <set>

#include "cache/body_checksum.hpp"
#include "cache/store_hash.hpp"

using namespace store_test;

namespace {

fs::path only_body_file(const fs::path& dir) {
  fs::path found;
  for (const auto& e : fs::recursive_directory_iterator(dir / "objects"))
    if (e.is_regular_file()) {
      REQUIRE(found.empty());
      found = e.path();
    }
  REQUIRE_FALSE(found.empty());
  return found;
}

}  // namespace

TEST_CASE("crc32c and siphash match their published test vectors", "[store]") {
  CHECK(crc32c("123456789") == 0xE3069283u);
  CHECK(crc32c_update(crc32c("12345"), "6789") == 0xE3069283u);
  CHECK(crc32c("") == 0u);
  // SipHash-2-4-128, key 00..0f, empty message (vectors_sip128[0] of the reference code).
  hash_secret k{0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull};
  const key_hash h = siphash128(k, "");
  const unsigned char expect[16] = {0xa3, 0x81, 0x7f, 0x04, 0xba, 0x25, 0xa8, 0xe6,
                                    0x6d, 0xf6, 0x72, 0x14, 0xc7, 0x55, 0x02, 0x93};
  CHECK(std::equal(h.bytes.begin(), h.bytes.end(), expect));
  CHECK(object_hash(k, "ab", "c") != object_hash(k, "a", "bc"));
}

TEST_CASE("store: insert then lookup, inline and file bodies", "[store]") {
  temp_dir dir("basic");
  auto s = open_store(small_options(dir.path));
  const std::string small = make_body(1000, 1);
  const std::string large = make_body(3 * 1024 * 1024 + 17, 2);
  REQUIRE_FALSE(insert(s, "https://a/small", small));
  REQUIRE_FALSE(insert(s, "https://a/large", large, {}, 100000));
  CHECK(count_files(dir.path / "objects") == 1);  // only the large body is a file

  auto miss = s.lookup("https://a/none").value();
  CHECK(miss.status == lookup_status::miss);

  auto a = s.lookup("https://a/small").value();
  REQUIRE(a.status == lookup_status::hit);
  CHECK(a.body.is_inline());
  CHECK(a.meta.body_size == small.size());
  CHECK(a.meta.head.status == 200);
  CHECK(same_headers(a.meta.head.headers, make_head().headers));
  CHECK(a.meta.head.request_time == make_head().request_time);
  CHECK(a.meta.head.response_time == make_head().response_time);
  CHECK(read_all(a.body).value() == small);

  auto b = s.lookup("https://a/large").value();
  REQUIRE(b.status == lookup_status::hit);
  CHECK_FALSE(b.body.is_inline());
  CHECK(b.meta.location == body_location::file);
  CHECK(read_all(b.body, 65536).value() == large);

  const auto c = s.counters();
  CHECK(c.objects == 2);
  CHECK(c.inserts == 2);
  CHECK(c.bytes >= small.size() + large.size());
  CHECK(c.index_file_bytes >= 4096);
  CHECK(c.index_file_bytes <= (1u << 20));  // the large body is not in the index
}

TEST_CASE("store: byte ranges from inline and file bodies", "[store]") {
  temp_dir dir("ranges");
  auto s = open_store(small_options(dir.path));
  const std::string small = make_body(16 * 1024, 3);  // exactly inline_max: inline
  const std::string large = make_body(1 << 20, 4);
  REQUIRE_FALSE(insert(s, "k/small", small, {}, 1000));
  REQUIRE_FALSE(insert(s, "k/large", large, {}, 4096));
  for (const char* key : {"k/small", "k/large"}) {
    auto r = s.lookup(key).value();
    REQUIRE(r.status == lookup_status::hit);
    const std::string& body = std::string_view(key) == "k/small" ? small : large;
    CHECK(r.body.is_inline() == (std::string_view(key) == "k/small"));
    std::string buf(4096, '\0');
    // Safari's probe, a middle range, the tail, past the end.
    CHECK(r.body.read(0, std::span<char>(buf.data(), 2)).value() == 2);
    CHECK(buf.substr(0, 2) == body.substr(0, 2));
    CHECK(r.body.read(1234, buf).value() == 4096);
    CHECK(buf == body.substr(1234, 4096));
    const std::uint64_t tail = body.size() - 100;
    CHECK(r.body.read(tail, buf).value() == 100);
    CHECK(buf.substr(0, 100) == body.substr(tail));
    CHECK(r.body.read(body.size(), buf).value() == 0);
    CHECK(r.body.read(body.size() + 5, buf).value() == 0);
  }
}

TEST_CASE("store: objects survive close and reopen", "[store]") {
  temp_dir dir("reopen");
  const auto opts = small_options(dir.path);
  const std::string small = make_body(500, 5);
  const std::string large = make_body(200000, 6);
  {
    auto s = open_store(opts);
    REQUIRE_FALSE(insert(s, "p/1", small));
    REQUIRE_FALSE(insert(s, "p/2", large));
  }
  auto s = open_store(opts);
  const auto& rep = s.recovery();
  CHECK(rep.objects == 2);
  CHECK(rep.temp_files_removed == 0);
  CHECK(rep.orphan_files_removed == 0);
  CHECK(rep.missing_bodies == 0);
  CHECK(s.counters().objects == 2);
  auto a = s.lookup("p/1").value();
  REQUIRE(a.status == lookup_status::hit);
  CHECK(read_all(a.body).value() == small);
  auto b = s.lookup("p/2").value();
  REQUIRE(b.status == lookup_status::hit);
  CHECK(read_all(b.body).value() == large);
}

TEST_CASE("store: a second process or instance cannot open the same directory", "[store]") {
  temp_dir dir("lock");
  auto s = open_store(small_options(dir.path));
  auto second = store::open(small_options(dir.path));
  CHECK_FALSE(second.has_value());
}

TEST_CASE("store: a truncated body file is never served and its entry is dropped", "[store]") {
  temp_dir dir("corrupt");
  auto s = open_store(small_options(dir.path));
  const std::string body = make_body(300000, 7);
  REQUIRE_FALSE(insert(s, "c/1", body));
  const fs::path file = only_body_file(dir.path);
  fs::resize_file(file, body.size() - 1);

  auto r = s.lookup("c/1").value();
  CHECK(r.status == lookup_status::corrupt);
  CHECK_FALSE(r.body);
  CHECK(s.counters().corrupt_drops == 1);
  CHECK(s.counters().objects == 0);
  CHECK_FALSE(fs::exists(file));  // dropped entry, then unlinked file
  CHECK(s.lookup("c/1").value().status == lookup_status::miss);
}

TEST_CASE("store: a body truncated while being read fails the read", "[store]") {
  temp_dir dir("shrink");
  auto s = open_store(small_options(dir.path));
  const std::string body = make_body(300000, 8);
  REQUIRE_FALSE(insert(s, "c/2", body));
  auto r = s.lookup("c/2").value();
  REQUIRE(r.status == lookup_status::hit);
  fs::resize_file(only_body_file(dir.path), 1000);
  std::string buf(500, '\0');
  CHECK(r.body.read(0, buf).value() == 500);  // still there
  CHECK(buf == body.substr(0, 500));
  auto tail = r.body.read(250000, buf);
  REQUIRE_FALSE(tail.has_value());
  CHECK(tail.error() == store_errc::corrupt_body);
  CHECK(s.lookup("c/2").value().status == lookup_status::miss);
}

TEST_CASE("store: flipped bytes fail the checksum on a full read and in verify_bodies", "[store]") {
  temp_dir dir("flip");
  auto s = open_store(small_options(dir.path));
  const std::string body = make_body(200000, 9);
  REQUIRE_FALSE(insert(s, "f/1", body));
  REQUIRE_FALSE(insert(s, "f/2", make_body(200000, 10)));
  CHECK(s.verify_bodies(10).value() == 0);

  auto r = s.lookup("f/1").value();
  REQUIRE(r.status == lookup_status::hit);
  const fs::path file = fs::path(dir.path) / "objects";
  // Damage f/1 in place (same size): find it by content.
  for (const auto& e : fs::recursive_directory_iterator(file)) {
    if (!e.is_regular_file()) continue;
    std::string first(16, '\0');
    std::ifstream(e.path(), std::ios::binary).read(first.data(), 16);
    if (first != body.substr(0, 16)) continue;
    std::fstream f(e.path(), std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(100000);
    f.put(static_cast<char>(~body[100000]));
  }
  // A full, in-order read notices at the end and withholds the last piece.
  std::string buf(65536, '\0');
  std::uint64_t off = 0;
  error_code last;
  for (;;) {
    auto n = r.body.read(off, buf);
    if (!n) {
      last = n.error();
      break;
    }
    if (*n == 0) break;
    off += *n;
  }
  CHECK(last == store_errc::corrupt_body);
  CHECK(off < body.size());
  CHECK(s.lookup("f/1").value().status == lookup_status::miss);

  // verify_bodies finds the same damage without a reader.
  REQUIRE_FALSE(insert(s, "f/1", body));
  int damaged = 0;
  for (const auto& e : fs::recursive_directory_iterator(file)) {
    if (!e.is_regular_file()) continue;
    std::string first(16, '\0');
    std::ifstream(e.path(), std::ios::binary).read(first.data(), 16);
    if (first != body.substr(0, 16)) continue;
    std::fstream f(e.path(), std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(5);
    f.put(static_cast<char>(~body[5]));
    ++damaged;
  }
  REQUIRE(damaged == 1);
  CHECK(s.verify_bodies(10).value() == 1);
  CHECK(s.lookup("f/1").value().status == lookup_status::miss);
  CHECK(s.lookup("f/2").value().status == lookup_status::hit);
}

TEST_CASE("store: open removes temporary and orphan files and drops broken entries", "[store]") {
  temp_dir dir("recover");
  const auto opts = small_options(dir.path);
  const std::string body = make_body(100000, 11);
  fs::path crash_name;
  std::string crash_bytes;
  {
    auto s = open_store(opts);
    REQUIRE_FALSE(insert(s, "r/keep", body));
    REQUIRE_FALSE(insert(s, "r/missing", make_body(100000, 12)));
    REQUIRE_FALSE(insert(s, "r/short", make_body(100000, 13)));
    REQUIRE_FALSE(insert(s, "r/inline", "tiny"));
    // A body still being written when the process died.
    auto h = s.begin_insert("r/partial", "", std::nullopt).value();
    REQUIRE_FALSE(h.append(make_body(50000, 14)));
    CHECK(count_files(dir.path / "objects" / "tmp") == 1);
    // A crash would leave this file behind: keep a copy to put back later.
    for (const auto& e : fs::directory_iterator(dir.path / "objects" / "tmp")) {
      crash_name = e.path().filename();
      std::ifstream in(e.path(), std::ios::binary);
      crash_bytes.assign(std::istreambuf_iterator<char>(in), {});
    }
  }
  // Break things behind the store's back.
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(dir.path / "objects"))
    if (e.is_regular_file() && e.path().parent_path().filename() != "tmp")
      files.push_back(e.path());
  REQUIRE(files.size() == 3);
  {
    auto s = open_store(opts);  // find which file is which through lookups
    auto miss = s.lookup("r/missing").value();
    auto shrt = s.lookup("r/short").value();
    REQUIRE(miss.status == lookup_status::hit);
    REQUIRE(shrt.status == lookup_status::hit);
    (void)s.flush_access();
    for (const auto& f : files) {
      std::string first(16, '\0');
      std::ifstream(f, std::ios::binary).read(first.data(), 16);
      if (first == make_body(100000, 12).substr(0, 16)) fs::remove(f);
      if (first == make_body(100000, 13).substr(0, 16)) fs::resize_file(f, 99999);
    }
  }
  std::ofstream(dir.path / "objects" / "7f" / "00000000deadbe7f") << "orphan";
  std::ofstream(dir.path / "objects" / "tmp" / "0000000000000001.part") << "partial";
  REQUIRE(crash_bytes.size() == 50000);
  std::ofstream(dir.path / "objects" / "tmp" / crash_name, std::ios::binary) << crash_bytes;

  auto s = open_store(opts);
  const auto& rep = s.recovery();
  CHECK(rep.temp_files_removed == 2);
  CHECK(rep.orphan_files_removed == 2);  // the stray file and r/short's dropped body
  CHECK(rep.missing_bodies == 1);
  CHECK(rep.wrong_size_bodies == 1);
  CHECK(rep.objects == 2);
  CHECK(count_files(dir.path / "objects") == 1);
  CHECK(s.lookup("r/missing").value().status == lookup_status::miss);
  CHECK(s.lookup("r/short").value().status == lookup_status::miss);
  CHECK(s.lookup("r/partial").value().status == lookup_status::miss);
  auto k = s.lookup("r/keep").value();
  REQUIRE(k.status == lookup_status::hit);
  CHECK(read_all(k.body).value() == body);
  CHECK(s.lookup("r/inline").value().status == lookup_status::hit);
}

TEST_CASE("store: objects over max_object_size are refused early", "[store]") {
  temp_dir dir("toobig");
  auto opts = small_options(dir.path);
  opts.max_object_size = 100000;
  auto s = open_store(opts);
  // Declared too big: refused before any byte.
  auto h = s.begin_insert("t/1", "", 100001);
  REQUIRE_FALSE(h.has_value());
  CHECK(h.error() == store_errc::too_big);
  // Unknown length: the bytes past the limit are still written (collapsed readers read the
  // file), commit refuses, and nothing stays behind.
  auto h2 = s.begin_insert("t/2", "", std::nullopt).value();
  CHECK_FALSE(h2.append(make_body(60000, 1)));
  CHECK_FALSE(h2.append(make_body(40001, 2)));
  CHECK(h2.size() == 100001);
  CHECK(h2.commit(make_head()) == store_errc::too_big);
  CHECK(h2.finished());
  CHECK(h2.append("x") == store_errc::finished);
  CHECK(count_files(dir.path / "objects") == 0);
  // Exactly the limit is fine.
  CHECK_FALSE(insert(s, "t/3", make_body(100000, 3)));
  CHECK(s.counters().too_big == 2);
  CHECK(s.counters().insert_failures == 0);
  CHECK(s.lookup("t/2").value().status == lookup_status::miss);
}

TEST_CASE("store: a body shorter than declared is not stored; abandon leaves nothing", "[store]") {
  temp_dir dir("short");
  auto s = open_store(small_options(dir.path));
  {
    auto h = s.begin_insert("s/1", "", 200000).value();
    REQUIRE_FALSE(h.append(make_body(150000, 1)));
    CHECK(h.commit(make_head()) == store_errc::size_mismatch);
  }
  {
    auto h = s.begin_insert("s/2", "", std::nullopt).value();
    REQUIRE_FALSE(h.append(make_body(150000, 2)));
    h.abandon();
  }
  {
    auto h = s.begin_insert("s/3", "", std::nullopt).value();
    REQUIRE_FALSE(h.append(make_body(150000, 3)));
  }  // destroyed without commit
  CHECK(count_files(dir.path / "objects") == 0);
  for (const char* k : {"s/1", "s/2", "s/3"})
    CHECK(s.lookup(k).value().status == lookup_status::miss);
  CHECK(s.counters().objects == 0);
}

TEST_CASE("store: eviction keeps the total under max_size, least recently used first", "[store]") {
  temp_dir dir("evict");
  auto opts = small_options(dir.path);
  opts.max_size = 2ull << 20;  // room for about 9 objects of 200 KiB
  auto s = open_store(opts);
  const std::string hot = make_body(200000, 99);
  REQUIRE_FALSE(insert(s, "e/hot", hot));
  std::uint64_t max_seen = 0;
  for (int i = 0; i < 60; ++i) {
    REQUIRE_FALSE(insert(s, "e/" + std::to_string(i), make_body(200000 + i * 100, i)));
    REQUIRE_FALSE(insert(s, "e/i" + std::to_string(i), make_body(100 + i, i)));  // inline
    // Keep the hot object hot; its recency reaches the index on flush.
    REQUIRE(s.lookup("e/hot").value().status == lookup_status::hit);
    REQUIRE_FALSE(s.flush_access());
    max_seen = std::max(max_seen, s.counters().bytes);
  }
  const auto c = s.counters();
  CHECK(max_seen <= opts.max_size);
  CHECK(c.evictions > 0);
  CHECK(c.objects < 40);
  // The files on disk agree with the index: no leftovers of evicted objects.
  std::uint64_t file_bytes = 0;
  std::size_t files = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir.path / "objects"))
    if (e.is_regular_file()) {
      file_bytes += e.file_size();
      ++files;
    }
  CHECK(file_bytes <= opts.max_size);
  auto hit = s.lookup("e/hot").value();
  REQUIRE(hit.status == lookup_status::hit);
  CHECK(read_all(hit.body).value() == hot);
  CHECK(s.lookup("e/0").value().status == lookup_status::miss);  // oldest went first
  CHECK(s.lookup("e/59").value().status == lookup_status::hit);  // newest stays
}

TEST_CASE("store: totals recomputed at open agree with the running totals", "[store]") {
  temp_dir dir("totals");
  auto opts = small_options(dir.path);
  opts.max_size = 1ull << 20;
  store_counters before;
  {
    auto s = open_store(opts);
    for (int i = 0; i < 30; ++i)
      REQUIRE_FALSE(insert(s, "t/" + std::to_string(i), make_body(i % 2 ? 90000 : 900, i)));
    REQUIRE_FALSE(s.remove("t/29", ""));
    before = s.counters();
    CHECK(before.bytes <= opts.max_size);
  }
  auto s = open_store(opts);
  CHECK(s.counters().objects == before.objects);
  CHECK(s.counters().bytes == before.bytes);
  std::size_t file_hits = 0;
  for (int i = 0; i < 30; ++i)
    if (auto r = s.lookup("t/" + std::to_string(i)).value();
        r.status == lookup_status::hit && !r.body.is_inline())
      ++file_hits;
  CHECK(count_files(dir.path / "objects") == file_hits);
}

TEST_CASE("store: replacing, removing, updating heads and variants", "[store]") {
  temp_dir dir("variants");
  auto s = open_store(small_options(dir.path));
  REQUIRE_FALSE(insert(s, "v/page", make_body(100000, 1), "accept-encoding=gzip"));
  REQUIRE_FALSE(insert(s, "v/page", make_body(200, 2), "accept-encoding=br"));
  REQUIRE_FALSE(insert(s, "v/other", make_body(200, 3)));
  auto vs = s.variants("v/page").value();
  REQUIRE(vs.size() == 2);
  std::set<std::string> keys;
  for (const auto& m : vs)
    keys.insert(m.variant_key);
  CHECK(keys == std::set<std::string>{"accept-encoding=gzip", "accept-encoding=br"});
  CHECK(s.lookup("v/page").value().status == lookup_status::miss);  // no "" variant
  CHECK(s.lookup("v/page", "accept-encoding=br").value().status == lookup_status::hit);

  // Replace one variant with a new body: the old file goes.
  const std::string v2 = make_body(150000, 4);
  REQUIRE_FALSE(insert(s, "v/page", v2, "accept-encoding=gzip"));
  CHECK(count_files(dir.path / "objects") == 1);
  auto r = s.lookup("v/page", "accept-encoding=gzip").value();
  REQUIRE(r.status == lookup_status::hit);
  CHECK(read_all(r.body).value() == v2);
  CHECK(s.counters().objects == 3);

  // A 304 freshens the head and keeps the body.
  stored_head fresh = make_head();
  fresh.headers.push_back({"cache-control", "max-age=600"});
  fresh.response_time += std::chrono::hours(1);
  REQUIRE_FALSE(s.update_head("v/page", "accept-encoding=gzip", fresh));
  auto u = s.lookup("v/page", "accept-encoding=gzip").value();
  REQUIRE(u.status == lookup_status::hit);
  CHECK(same_headers(u.meta.head.headers, fresh.headers));
  CHECK(u.meta.head.response_time == fresh.response_time);
  CHECK(read_all(u.body).value() == v2);
  CHECK(s.update_head("v/none", "", fresh) == store_errc::not_found);

  // Invalidation removes every variant; the reader opened before keeps working.
  CHECK(s.remove_all("v/page").value() == 2);
  CHECK(s.variants("v/page").value().empty());
  CHECK(s.lookup("v/page", "accept-encoding=gzip").value().status == lookup_status::miss);
  CHECK(count_files(dir.path / "objects") == 0);
  CHECK(read_all(u.body).value() == v2);
  CHECK(s.remove("v/other", "x") == store_errc::not_found);
  CHECK_FALSE(s.remove("v/other", ""));
  CHECK(s.counters().objects == 0);
}

TEST_CASE("store: additional named databases share the env", "[store]") {
  temp_dir dir("extra");
  auto s = open_store(small_options(dir.path));
  auto db = s.open_db("usage").value();
  {
    auto w = s.env().begin_write().value();
    REQUIRE_FALSE(w.put(db, "2024-01-01", "42"));
    REQUIRE_FALSE(w.commit());
  }
  CHECK(s.env().begin_read().value().get(db, "2024-01-01") ==
        std::optional<std::string_view>("42"));
}

TEST_CASE("store: disk errors while writing fail the insert and leave nothing", "[store]") {
  temp_dir dir("ioerr");
  auto s = open_store(small_options(dir.path));
  const fs::path tmp = dir.path / "objects" / "tmp";
  const std::string body = make_body(100000, 21);

  // The temporary file cannot be created (tmp/ is not a folder): the spilling append fails.
  fs::remove_all(tmp);
  std::ofstream(tmp) << "not a folder";
  {
    auto h = s.begin_insert("io/1", "", std::nullopt).value();
    CHECK_FALSE(h.append(body.substr(0, 10000)));  // still in memory
    CHECK(h.append(body.substr(10000)));           // spills: fails
    CHECK(h.finished());
  }
  CHECK(s.counters().insert_failures == 1);
  fs::remove(tmp);
  fs::create_directory(tmp);

  // The final folder is unusable: the rename fails, the temporary file is removed.
  auto h = s.begin_insert("io/2", "", std::nullopt).value();
  REQUIRE_FALSE(h.append(body));
  std::vector<fs::path> fans;
  for (const auto& e : fs::directory_iterator(dir.path / "objects"))
    if (e.path().filename() != "tmp") fans.push_back(e.path());
  for (const auto& f : fans) {
    fs::remove_all(f);
    std::ofstream(f) << "x";
  }
  CHECK(h.commit(make_head()));
  CHECK(s.counters().insert_failures == 2);
  CHECK(count_files(tmp) == 0);
  CHECK(s.lookup("io/1").value().status == lookup_status::miss);
  CHECK(s.lookup("io/2").value().status == lookup_status::miss);
  CHECK(s.counters().objects == 0);
  for (const auto& f : fans) {
    fs::remove(f);
    fs::create_directory(f);
  }
  // And the store works again once the disk does.
  REQUIRE_FALSE(insert(s, "io/3", body));
  auto hit = s.lookup("io/3").value();
  REQUIRE(hit.status == lookup_status::hit);
  CHECK(read_all(hit.body).value() == body);
}
