// The Prometheus text exposition format (version 0.0.4), written in one place: each family's
// HELP and TYPE lines, label-value escaping, sample lines. Whoever owns counters writes its
// families through an exposition (account::metrics, the cache service, the watchdog, the
// server's own); the admin listener serves what they wrote, one after another.
#pragma once

#include <fmt/format.h>

#include <iterator>
#include <string>
#include <string_view>

namespace storecache::admin {

class exposition {
 public:
  explicit exposition(std::string& out) : out_(out) {}

  // Starts a family: "# HELP <name> <help>" and "# TYPE <name> <type>".
  void family(std::string_view name, std::string_view type, std::string_view help);
  // Sample lines of the current family, formatted as given; each line ends in '\n'. Label
  // values that are not fixed words go through escape_label().
  template <typename... Args>
  void sample(fmt::format_string<Args...> f, Args&&... args) {
    fmt::format_to(std::back_inserter(out_), f, std::forward<Args>(args)...);
  }
  std::string& text() { return out_; }

 private:
  std::string& out_;
};

// A label value with the three characters the format reserves escaped: \ " and newline.
std::string escape_label(std::string_view v);

}  // namespace storecache::admin
