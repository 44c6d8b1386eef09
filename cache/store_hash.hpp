// Index keys: a keyed 128-bit SipHash-2-4 of the cache key. The key (a per-cache random secret
// kept in the index) stops anyone who can choose URLs from crafting colliding keys; the full
// key string is also stored with each object, so a collision is detected and acts as a miss.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string_view>

namespace storecache::cache {

struct key_hash {
  std::array<unsigned char, 16> bytes{};

  std::string_view view() const {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
  }
  static key_hash from(std::string_view v) {  // v.size() must be 16
    key_hash h;
    std::memcpy(h.bytes.data(), v.data(), h.bytes.size());
    return h;
  }
  friend bool operator==(const key_hash&, const key_hash&) = default;
};

struct hash_secret {
  std::uint64_t k0 = 0;
  std::uint64_t k1 = 0;
};

// SipHash-2-4 with 128-bit output (Aumasson & Bernstein, reference siphash.c with outlen 16).
key_hash siphash128(const hash_secret& secret, std::string_view data) noexcept;

// The index key of one stored variant: primary (URL) key plus secondary (Vary) key,
// length-prefixed so that ("ab", "c") and ("a", "bc") differ.
key_hash object_hash(const hash_secret& secret, std::string_view primary, std::string_view variant);
// The key under which all variants of one primary key are listed.
key_hash primary_hash(const hash_secret& secret, std::string_view primary);

}  // namespace storecache::cache

template <>
struct std::hash<storecache::cache::key_hash> {
  std::size_t operator()(const storecache::cache::key_hash& h) const noexcept {
    std::size_t v;  // already uniformly distributed
    std::memcpy(&v, h.bytes.data(), sizeof v);
    return v;
  }
};
