// The usage history at its size cap: 35 days of hours, each with max_assets_per_hour distinct
// assets, then the summaries the status page (24 h, 7 d) and `storecache report --since 30d`
// make, and the page's rendering. Prints times and the index size; asserts nothing.
//   cmake --build build --target usage_history_bench && build/usage_history_bench [DIR]
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <string>

#include "cache/lmdb.hpp"
#include "usage/history.hpp"
#include "usage/status_page.hpp"

using namespace storecache;
using clock_type = std::chrono::steady_clock;

namespace {

double ms_since(clock_type::time_point t) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - t).count();
}

}  // namespace

int main(int argc, char** argv) {
  const std::filesystem::path dir = argc > 1 ? argv[1] : "/tmp/storecache-history-bench";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto env = cache::lmdb::env::open(dir);
  if (!env) return std::fprintf(stderr, "env: %s\n", env.error().message().c_str()), 1;
  auto h = usage::history::open(*env);
  if (!h) return std::fprintf(stderr, "history: %s\n", h.error().message().c_str()), 1;

  const std::uint32_t now = usage::hour_of(std::time(nullptr));
  const std::uint32_t hours = usage::history_retention_hours;
  auto t = clock_type::now();
  for (std::uint32_t hr = now - (hours - 1); hr <= now; ++hr) {
    usage::usage_delta d;  // one flush's worth per hour
    d[{hr, usage::dimension::total, ""}] = {1000, 900, 5'000'000, 100'000, 100'000, 100};
    for (std::size_t a = 0; a < usage::max_assets_per_hour; ++a)
      d[{hr, usage::dimension::asset,
         "learn.example.com/courses/module" + std::to_string(a) + "/media/video.mp4"}] = {
          1, 1, 5000, 100, 100, 1};
    if (auto ec = h->add(d)) return std::fprintf(stderr, "add: %s\n", ec.message().c_str()), 1;
  }
  std::printf("filled %u hours x %zu assets: %.0f ms\n", hours, usage::max_assets_per_hour,
              ms_since(t));

  t = clock_type::now();
  auto day = h->summarize(now - 23, now, 10);
  std::printf("summarize 24 h: %.1f ms\n", ms_since(t));
  t = clock_type::now();
  auto week = h->summarize(now - 167, now, 15);
  std::printf("summarize 7 d: %.1f ms\n", ms_since(t));
  t = clock_type::now();
  auto month = h->summarize(now - 719, now, 10);
  std::printf("summarize 30 d: %.1f ms\n", ms_since(t));
  if (!day || !week || !month) return std::fprintf(stderr, "summarize failed\n"), 1;
  t = clock_type::now();
  const std::string page = usage::render_status_page(
      {.day = *day, .week = *week, .host_name = "bench", .version = "bench"});
  std::printf("render status page: %.1f ms, %zu bytes\n", ms_since(t), page.size());
  if (auto info = env->info())
    std::printf("index file: %zu MiB\n", (info->last_page * info->page_size) >> 20);
  std::filesystem::remove_all(dir);
  return 0;
}
