// Logging to stderr in the form journald understands: "<N>" priority prefix per line
// (sd-daemon(3)), one write(2) per line so lines from several threads never interleave.
#pragma once

#include <fmt/format.h>

#include <atomic>
#include <cstdint>
#include <string_view>

namespace storecache::log {

enum class level : int { err = 3, warning = 4, notice = 5, info = 6, debug = 7 };

// Lines above this level are dropped before they are formatted.
inline std::atomic<int> threshold{static_cast<int>(level::info)};
// Set when --log-level gave the threshold: the config's [log] level then does not change it.
inline std::atomic<bool> threshold_from_command_line{false};

// The config's level, unless the command line chose one.
inline void apply_config_level(int config_level) {
  if (!threshold_from_command_line.load(std::memory_order_relaxed))
    threshold.store(config_level, std::memory_order_relaxed);
}

inline bool enabled(level l) {
  return static_cast<int>(l) <= threshold.load(std::memory_order_relaxed);
}

void write_line(level l, std::string_view text);

// At most per_second lines a second pass one gate; the rest are dropped and counted, and the
// next line let through says how many. For lines any client can cause at will (refusals).
class rate_limit {
 public:
  explicit rate_limit(unsigned per_second) : per_second_(per_second) {}
  // Whether to write a line now; suppressed: the lines dropped since the last one let through.
  bool allow(std::uint64_t& suppressed);

 private:
  unsigned per_second_;
  std::atomic<std::int64_t> second_{0};
  std::atomic<unsigned> in_second_{0};
  std::atomic<std::uint64_t> dropped_{0};
};

template <typename... Args>
void emit(level l, fmt::format_string<Args...> f, Args&&... args) {
  if (!enabled(l)) return;
  write_line(l, fmt::format(f, std::forward<Args>(args)...));
}

template <typename... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
  emit(level::err, f, std::forward<Args>(args)...);
}
template <typename... Args>
void warn(fmt::format_string<Args...> f, Args&&... args) {
  emit(level::warning, f, std::forward<Args>(args)...);
}
template <typename... Args>
void notice(fmt::format_string<Args...> f, Args&&... args) {
  emit(level::notice, f, std::forward<Args>(args)...);
}
template <typename... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
  emit(level::info, f, std::forward<Args>(args)...);
}
template <typename... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
  emit(level::debug, f, std::forward<Args>(args)...);
}

}  // namespace storecache::log
