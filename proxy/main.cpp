// storecache: the command line.
//   storecache --config FILE         run the daemon
//   storecache --check-config FILE   validate FILE (syntax, keys, files, certificates); exit 0/1
//   storecache report [--config FILE | --cache-dir DIR] [--since 24h|7d|30d] [--json]
//                                    the usage history, read while the daemon runs
//   storecache --version
#include <malloc.h>

#include <cstdio>
#include <cstring>
#include <ctime>
#include <exception>
#include <string>
#include <string_view>

#include "access/site_verifier.hpp"
#include "account/build_info.hpp"
#include "config/config.hpp"
#include "log/log.hpp"
#include "proxy/server.hpp"
#include "proxy/tls.hpp"
#include "usage/history.hpp"
#include "usage/report.hpp"

namespace {

constexpr std::string_view usage =
    "usage: storecache --config FILE          run the daemon\n"
    "       storecache --check-config FILE    check a config file and exit 0 (good) or 1\n"
    "       storecache report [--config FILE | --cache-dir DIR] [--since 24h|7d|30d] [--json]\n"
    "                                         usage figures from the cache's history\n"
    "       storecache --version\n"
    "options: --log-level err|warning|notice|info|debug   (default info)\n";

int check_config(const char* file) {
  auto loaded = storecache::config::load(file);
  if (!loaded.ok()) {
    for (const auto& d : loaded.errors)
      std::fprintf(stderr, "%s\n", d.to_string().c_str());
    std::fprintf(stderr, "%s: %zu error(s)\n", file, loaded.errors.size());
    return 1;
  }
  try {
    storecache::proxy::runtime::build(loaded.cfg);  // loads certificates, keys and CA files
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", file, e.what());
    return 1;
  }
  std::printf("%s: configuration OK (%zu site(s))\n", file, loaded.cfg->sites.size());
  for (const auto& site : loaded.cfg->sites) {
    std::printf("site %s:\n", site.name().c_str());
    for (const auto& line : storecache::access::describe_protection(site))
      std::printf("  %s\n", line.c_str());
  }
  return 0;
}

int run(const char* file) {
  namespace log = storecache::log;
  auto loaded = storecache::config::load(file);
  if (!loaded.ok()) {
    for (const auto& d : loaded.errors)
      log::error("{}", d.to_string());
    log::error("{}: {} configuration error(s); not starting", file, loaded.errors.size());
    return 1;
  }
  log::apply_config_level(static_cast<int>(loaded.cfg->log.level));
  try {
    auto rt = storecache::proxy::runtime::build(loaded.cfg);
    storecache::proxy::server s(file, rt);
    return s.run();
  } catch (const std::exception& e) {
    log::error("cannot start: {}", e.what());
    return 1;
  }
}

constexpr std::string_view default_config = "/etc/storecache/storecache.toml";

// storecache report: opens the history read-only (no lock on the cache directory: LMDB readers
// never block the daemon) and prints one period.
int report(int argc, char** argv) {
  std::string config_file;
  std::string cache_dir;
  storecache::usage::report_options opts;
  for (int i = 2; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--config" && i + 1 < argc) {
      config_file = argv[++i];
    } else if (a == "--cache-dir" && i + 1 < argc) {
      cache_dir = argv[++i];
    } else if (a == "--since" && i + 1 < argc) {
      auto hours = storecache::usage::parse_period(argv[++i]);
      if (!hours) {
        std::fprintf(stderr, "storecache report: bad period '%s' (use 24h, 7d, 30d, ...)\n",
                     argv[i]);
        return 2;
      }
      opts.hours = *hours;
    } else if (a == "--json") {
      opts.json = true;
    } else {
      std::fprintf(stderr, "storecache report: unknown argument '%s'\n%s", argv[i], usage.data());
      return 2;
    }
  }
  if (cache_dir.empty()) {
    if (config_file.empty()) config_file = default_config;
    auto loaded = storecache::config::load(config_file);
    if (!loaded.ok()) {
      for (const auto& d : loaded.errors)
        std::fprintf(stderr, "%s\n", d.to_string().c_str());
      return 1;
    }
    cache_dir = loaded.cfg->cache.dir.string();
  }
  auto h = storecache::usage::history::open_read_only(cache_dir);
  if (!h) {
    std::fprintf(stderr,
                 "storecache report: cannot read the usage history in %s: %s\n"
                 "(has the daemon run yet? run this as root or as the storecache user)\n",
                 cache_dir.c_str(), h.error().message().c_str());
    return 1;
  }
  const std::time_t now = std::time(nullptr);
  opts.utc_offset_seconds = storecache::usage::local_utc_offset(now);
  auto summary = h->summarize_last(opts.hours, now, 10);
  if (!summary) {
    std::fprintf(stderr, "storecache report: reading the usage history failed: %s\n",
                 summary.error().message().c_str());
    return 1;
  }
  std::fputs(storecache::usage::render_report(*summary, opts).c_str(), stdout);
  return 0;
}

bool set_log_level(std::string_view v) {
  using storecache::log::level;
  static constexpr std::pair<std::string_view, level> names[] = {
      {"err", level::err},       {"error", level::err}, {"warning", level::warning},
      {"notice", level::notice}, {"info", level::info}, {"debug", level::debug}};
  for (const auto& [n, l] : names)
    if (v == n) {
      storecache::log::threshold = static_cast<int>(l);
      storecache::log::threshold_from_command_line = true;
      return true;
    }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  // Requests allocate and free 16-64 KiB buffers: without these, glibc trims the heap top and
  // maps large blocks afresh, and every request pays page faults and page zeroing for them.
  // The trim threshold must stay well below the 64 MiB heaps of glibc's per-thread arenas: at
  // 64 MiB a thread arena never shrinks or unmaps a heap, and a burst's peak stays resident
  // for good (issue 14: 1.4 GB held in one arena with 3 MB in use).
  mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 8 * 1024 * 1024);
  if (argc > 1 && std::string_view(argv[1]) == "report") return report(argc, argv);
  const char* config_file = nullptr;
  bool check = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if ((a == "--config" || a == "--check-config") && i + 1 < argc) {
      check = a == "--check-config";
      config_file = argv[++i];
    } else if (a == "--log-level" && i + 1 < argc && set_log_level(argv[i + 1])) {
      ++i;
    } else if (a == "--version") {
      std::printf("storecache %s (%s)\n", storecache::account::build_version,
                  storecache::account::build_commit);
      return 0;
    } else if (a == "--help" || a == "-h") {
      std::fputs(usage.data(), stdout);
      return 0;
    } else {
      std::fprintf(stderr, "storecache: unknown argument '%s'\n%s", argv[i], usage.data());
      return 2;
    }
  }
  if (config_file == nullptr) {
    std::fputs(usage.data(), stderr);
    return 2;
  }
  return check ? check_config(config_file) : run(config_file);
}
