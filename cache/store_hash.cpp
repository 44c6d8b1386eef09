#include "cache/store_hash.hpp"

#include <bit>
#include <string>

namespace storecache::cache {

namespace {

std::uint64_t load_le64(const unsigned char* p) noexcept {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i)
    v = (v << 8) | p[i];
  return v;
}

void store_le64(unsigned char* p, std::uint64_t v) noexcept {
  for (int i = 0; i < 8; ++i)
    p[i] = static_cast<unsigned char>(v >> (8 * i));
}

struct sip_state {
  std::uint64_t v0, v1, v2, v3;

  void round() noexcept {
    v0 += v1;
    v1 = std::rotl(v1, 13);
    v1 ^= v0;
    v0 = std::rotl(v0, 32);
    v2 += v3;
    v3 = std::rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = std::rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = std::rotl(v1, 17);
    v1 ^= v2;
    v2 = std::rotl(v2, 32);
  }
  void compress(std::uint64_t m) noexcept {
    v3 ^= m;
    round();
    round();
    v0 ^= m;
  }
};

}  // namespace

key_hash siphash128(const hash_secret& secret, std::string_view data) noexcept {
  sip_state s{0x736f6d6570736575ull ^ secret.k0, 0x646f72616e646f6dull ^ secret.k1,
              0x6c7967656e657261ull ^ secret.k0, 0x7465646279746573ull ^ secret.k1};
  s.v1 ^= 0xee;
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  const std::size_t n = data.size();
  const std::size_t full = n - n % 8;
  for (std::size_t i = 0; i < full; i += 8)
    s.compress(load_le64(p + i));
  std::uint64_t b = static_cast<std::uint64_t>(n) << 56;
  for (std::size_t i = full; i < n; ++i)
    b |= static_cast<std::uint64_t>(p[i]) << (8 * (i - full));
  s.compress(b);
  s.v2 ^= 0xee;
  for (int i = 0; i < 4; ++i)
    s.round();
  key_hash out;
  store_le64(out.bytes.data(), s.v0 ^ s.v1 ^ s.v2 ^ s.v3);
  s.v1 ^= 0xdd;
  for (int i = 0; i < 4; ++i)
    s.round();
  store_le64(out.bytes.data() + 8, s.v0 ^ s.v1 ^ s.v2 ^ s.v3);
  return out;
}

key_hash object_hash(const hash_secret& secret, std::string_view primary,
                     std::string_view variant) {
  std::string buf;
  buf.reserve(9 + primary.size() + variant.size());
  buf.push_back('o');
  unsigned char len[8];
  store_le64(len, primary.size());
  buf.append(reinterpret_cast<const char*>(len), 8);
  buf.append(primary);
  buf.append(variant);
  return siphash128(secret, buf);
}

key_hash primary_hash(const hash_secret& secret, std::string_view primary) {
  std::string buf;
  buf.reserve(1 + primary.size());
  buf.push_back('p');  // a different domain than object_hash
  buf.append(primary);
  return siphash128(secret, buf);
}

}  // namespace storecache::cache
