// Store commits per second (issue 14): N finished bodies of one size, committed the way the
// daemon did before group commit (insert_handle::commit, one per call, from a pool of 2
// threads) and with store::commit_batch (up to 1024 per batch, as the committer takes them
// when they are all waiting). The bodies are written before the clock starts: this measures
// the commit (flush, rename, index transaction), not the appends. Asserts nothing.
//   cmake --build build --target store_commit_bench && build/store_commit_bench [DIR]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "cache/store.hpp"

using namespace storecache;
using clock_type = std::chrono::steady_clock;

namespace {

cache::stored_head head() {
  cache::stored_head h;
  h.status = 200;
  h.headers = {{"content-type", "application/json"}, {"cache-control", "max-age=3600"}};
  h.request_time = std::chrono::system_clock::now();
  h.response_time = h.request_time;
  return h;
}

std::vector<cache::pending_commit> written(cache::store& s, const std::string& tag,
                                           std::size_t count, std::size_t size) {
  const std::string body(size, 'x');
  std::vector<cache::pending_commit> out;
  out.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    auto h = s.begin_insert("https://bench/" + tag + "/" + std::to_string(i), {}, size);
    if (!h || h->append(body)) {
      std::fprintf(stderr, "begin_insert/append failed\n");
      std::exit(1);
    }
    out.push_back({std::move(*h), head(), {}});
  }
  return out;
}

double run(const std::filesystem::path& dir, std::size_t count, std::size_t size, bool batched) {
  std::filesystem::remove_all(dir);
  cache::store_options o;
  o.dir = dir;
  o.max_size = 64ull << 30;
  auto s = cache::store::open(o);
  if (!s) {
    std::fprintf(stderr, "open: %s\n", s.error().message().c_str());
    std::exit(1);
  }
  auto items = written(*s, batched ? "b" : "s", count, size);
  const auto t0 = clock_type::now();
  if (batched) {
    for (std::size_t i = 0; i < items.size(); i += 1024) {
      const std::size_t n = std::min<std::size_t>(1024, items.size() - i);
      s->commit_batch(std::span<cache::pending_commit>(items.data() + i, n));
    }
  } else {
    std::atomic<std::size_t> next{0};
    auto worker = [&] {
      for (std::size_t i; (i = next.fetch_add(1)) < items.size();)
        items[i].result = items[i].insert.commit(items[i].head);
    };
    std::thread a(worker), b(worker);
    a.join();
    b.join();
  }
  const double secs = std::chrono::duration<double>(clock_type::now() - t0).count();
  std::size_t failed = 0;
  for (const auto& p : items)
    failed += p.result ? 1 : 0;
  if (failed) std::fprintf(stderr, "%zu commit(s) failed\n", failed);
  return static_cast<double>(count) / secs;
}

}  // namespace

int main(int argc, char** argv) {
  const std::filesystem::path dir = argc > 1 ? argv[1] : "/var/tmp/storecache-commit-bench";
  struct row {
    std::size_t size, count;
  };
  for (const row r : {row{1024, 20000}, row{16 * 1024 + 1, 5000}, row{1024 * 1024, 300}}) {
    const double single = run(dir, r.count, r.size, false);
    const double batch = run(dir, r.count, r.size, true);
    std::printf(
        "size %8zu B  objects %6zu  one per commit (2 threads) %8.0f/s  batched %8.0f/s  x%.1f\n",
        r.size, r.count, single, batch, batch / single);
  }
  std::filesystem::remove_all(dir);
}
