// Whether a fill that no client reads any more goes on (and is stored) or stops.
//
// A fill is started for the clients that asked; when the last of them has gone (a closed tab,
// a reset HTTP/2 stream, a skipped video) the rest of the body would cross the store's WAN for
// nobody — and a client that asks and resets at once could make storecache pull any amount.
// So an orphaned fill stops, discarding what it fetched, unless finishing is cheap or likely
// useful. Pure: the pump asks again with fresh facts after every chunk while it has no reader.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

#include "config/config.hpp"

namespace storecache::upstream {

struct orphan_policy {
  std::uint64_t finish_below = 1024 * 1024;  // declared (or, unknown, arrived) bytes
  double finish_after = 0.5;                 // fraction of the declared length arrived
  std::uint32_t wanted_by = 2;               // distinct client addresses; 0: never
  std::chrono::milliseconds grace{std::chrono::seconds(5)};  // pause before a stop
  static orphan_policy from_config(const config::cache_settings& c);
};

struct orphan_facts {
  std::optional<std::uint64_t> length;  // declared Content-Length
  std::uint64_t arrived = 0;
  std::uint32_t requesters = 0;  // distinct client addresses that asked for it
  bool background = false;       // started by storecache itself for a stored object
};

enum class orphan_verdict {
  stop,          // nobody wants it: stop the fetch, store nothing
  background,    // a refresh of what is stored (stale-while-revalidate)
  small,         // cheap to finish
  mostly_there,  // most of it has arrived
  wanted,        // several devices asked for it: another will soon
};

orphan_verdict judge_orphan(const orphan_policy& p, const orphan_facts& f);
std::string_view to_string(orphan_verdict v);

}  // namespace storecache::upstream
