// Many readers look up and read while writers insert, replace and evict: a hit always carries
// exactly the bytes that were committed for it, and nothing is reported corrupt.
#include <atomic>
#include <thread>
#include <vector>

#include "store_test_util.hpp"

using namespace store_test;

namespace {

constexpr int keys = 24;

std::string key_of(int i) {
  return "https://conc/" + std::to_string(i);
}
std::size_t size_of(int i, unsigned version) {
  return (i % 3 == 0) ? 900 + version : 60000 + 997 * ((i + version) % 40);
}

stored_head head_for(unsigned version) {
  stored_head h = make_head();
  h.headers.push_back({"x-version", std::to_string(version)});
  return h;
}

}  // namespace

TEST_CASE("store: concurrent readers while writers insert and evict", "[store][threads]") {
  temp_dir dir("conc");
  auto opts = small_options(dir.path);
  opts.max_size = 1ull << 20;    // about 20 file bodies: constant eviction
  opts.access_flush_batch = 32;  // recency flushes race with inserts too
  auto s = open_store(opts);

  std::atomic<bool> done{false};
  std::atomic<long> hits{0}, misses{0}, bad{0}, errors{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&, t] {
      std::string buf(32768, '\0');
      for (int n = 0; !done.load(); ++n) {
        const int i = (n * 7 + t) % keys;
        auto r = s.lookup(key_of(i));
        if (!r) {
          ++errors;
          continue;
        }
        if (r->status == lookup_status::corrupt) ++bad;
        if (r->status != lookup_status::hit) {
          ++misses;
          continue;
        }
        ++hits;
        const auto v = find_header(r->meta.head.headers, "x-version");
        if (!v) {
          ++bad;
          continue;
        }
        const unsigned version = static_cast<unsigned>(std::stoul(std::string(*v)));
        const std::string want = make_body(size_of(i, version), i * 100000 + version);
        auto got = read_all(r->body, 8192 + 1000 * t);
        if (!got || *got != want) ++bad;
      }
    });
  }
  std::vector<std::thread> writers;
  std::atomic<long> write_errors{0};
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&, w] {
      for (unsigned version = 1 + w; version <= 120; version += 2) {
        const int i = static_cast<int>((version * 5) % keys);
        const std::string body = make_body(size_of(i, version), i * 100000 + version);
        if (insert(s, key_of(i), body, {}, 8192, head_for(version))) ++write_errors;
      }
    });
  }
  for (auto& t : writers)
    t.join();
  done = true;
  for (auto& t : readers)
    t.join();

  CHECK(write_errors == 0);
  CHECK(errors == 0);
  CHECK(bad == 0);
  CHECK(hits > 0);
  const auto c = s.counters();
  CHECK(c.inserts == 120);
  CHECK(c.evictions > 0);
  CHECK(c.corrupt_drops == 0);
  CHECK(c.bytes <= opts.max_size);
}
