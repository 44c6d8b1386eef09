// Upstream authorizations remembered for a short, configured time ([site.cache]
// authorize_cache; default 0: off): "the upstream said yes to these credentials for this URL".
// The key is a SHA-256 over the site, the URL with its query and every credential the device
// sent (Cookie, Authorization), so an entry never answers for other credentials. Bounded:
// at capacity, expired entries go first, then the ones closest to expiry. Thread-safe.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <initializer_list>
#include <map>
#include <mutex>
#include <string_view>
#include <unordered_map>

namespace storecache::access {

class authorization_cache {
 public:
  using clock = std::chrono::steady_clock;
  using digest = std::array<unsigned char, 32>;

  explicit authorization_cache(std::size_t capacity = 16384) : capacity_(capacity) {}

  // SHA-256 of the parts, each length-prefixed (so ("ab","c") and ("a","bc") differ).
  static digest key(std::initializer_list<std::string_view> parts);

  bool allowed(const digest& k, clock::time_point now);
  void remember(const digest& k, clock::time_point until);
  std::size_t size() const;

 private:
  struct digest_hash {
    std::size_t operator()(const digest& d) const noexcept;
  };
  void make_room(clock::time_point now);

  const std::size_t capacity_;
  mutable std::mutex mu_;
  std::unordered_map<digest, clock::time_point, digest_hash> until_;
};

}  // namespace storecache::access
