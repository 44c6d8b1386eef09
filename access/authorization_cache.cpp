#include "access/authorization_cache.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace storecache::access {

authorization_cache::digest authorization_cache::key(
    std::initializer_list<std::string_view> parts) {
  digest out{};
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr) throw std::bad_alloc();
  bool ok = EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) == 1;
  for (auto p : parts) {
    const std::uint64_t n = p.size();
    unsigned char len[8];
    for (int i = 0; i < 8; ++i)
      len[i] = static_cast<unsigned char>(n >> (8 * i));
    ok = ok && EVP_DigestUpdate(ctx, len, sizeof len) == 1;
    ok = ok && EVP_DigestUpdate(ctx, p.data(), p.size()) == 1;
  }
  unsigned int got = 0;
  ok = ok && EVP_DigestFinal_ex(ctx, out.data(), &got) == 1 && got == out.size();
  EVP_MD_CTX_free(ctx);
  if (!ok) throw std::runtime_error("SHA-256 failed");
  return out;
}

std::size_t authorization_cache::digest_hash::operator()(const digest& d) const noexcept {
  std::size_t h;
  std::memcpy(&h, d.data(), sizeof h);  // already uniformly distributed
  return h;
}

bool authorization_cache::allowed(const digest& k, clock::time_point now) {
  std::lock_guard lock(mu_);
  auto it = until_.find(k);
  if (it == until_.end()) return false;
  if (it->second > now) return true;
  until_.erase(it);
  return false;
}

void authorization_cache::remember(const digest& k, clock::time_point until) {
  if (capacity_ == 0) return;
  std::lock_guard lock(mu_);
  if (until_.size() >= capacity_ && !until_.contains(k)) make_room(clock::now());
  until_[k] = until;
}

std::size_t authorization_cache::size() const {
  std::lock_guard lock(mu_);
  return until_.size();
}

void authorization_cache::make_room(clock::time_point now) {
  std::erase_if(until_, [&](const auto& e) { return e.second <= now; });
  if (until_.size() < capacity_) return;
  // Still full of live entries: drop the half closest to expiry (each asks the upstream again).
  std::vector<clock::time_point> times;
  times.reserve(until_.size());
  for (const auto& e : until_)
    times.push_back(e.second);
  auto mid = times.begin() + static_cast<std::ptrdiff_t>(times.size() / 2);
  std::nth_element(times.begin(), mid, times.end());
  const auto cut = *mid;
  std::erase_if(until_, [&](const auto& e) { return e.second <= cut; });
}

}  // namespace storecache::access
