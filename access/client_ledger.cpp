// The client ledger: see client_ledger.hpp for the life cycle and the bound.
#include "access/client_ledger.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <mutex>
#include <random>
#include <unordered_map>

#include "access/event_window.hpp"

namespace storecache::access {

namespace {

using clock = client_ledger::clock;
constexpr std::size_t shard_count = 16;  // the top 4 bits of a 64-bit hash pick one
static_assert(sizeof(std::size_t) == 8);

struct entry {
  std::uint32_t misses = 0;  // miss slots held
  event_window resets;
  clock::time_point quiet_after{};    // no reset counts any more from here (last reset + window)
  clock::time_point penalty_until{};  // penalized while now < this
  bool idle(clock::time_point now) const {
    return misses == 0 && now >= quiet_after && now >= penalty_until;
  }
};

}  // namespace

struct client_ledger::state {
  struct key_hash {
    std::uint64_t seed;
    std::size_t operator()(const key& k) const noexcept {
      // Keyed per process: addresses are chosen by clients (an IPv6 /64 is theirs to spray),
      // so a fixed hash would let them aim every address at one bucket.
      std::uint64_t a = 0, b = 0;
      std::memcpy(&a, k.b, 8);
      std::memcpy(&b, k.b + 8, 8);
      return static_cast<std::size_t>(mix(mix(seed ^ a) ^ b));
    }
    static std::uint64_t mix(std::uint64_t h) {  // MurmurHash3's 64-bit finalizer
      h ^= h >> 33;
      h *= 0xff51afd7ed558ccdull;
      h ^= h >> 33;
      h *= 0xc4ceb9fe1a85ec53ull;
      h ^= h >> 33;
      return h;
    }
  };
  struct key_eq {
    bool operator()(const key& x, const key& y) const noexcept {
      return std::memcmp(x.b, y.b, 16) == 0;
    }
  };
  struct shard {
    mutable std::mutex mutex;
    std::unordered_map<key, entry, key_hash, key_eq> table;
    clock::time_point latest{};      // the latest time this shard was told
    clock::time_point next_sweep{};  // note_reset drops expired entries once this has passed
    // A full shard is swept for room at most once per window/8 of its time, so a client
    // spraying new addresses at the bound does not buy a walk of the shard per address.
    clock::time_point full_sweep_after{};
    explicit shard(std::uint64_t seed) : table(16, key_hash{seed}) {}
  };

  // Limits as atomics: set_limits() on the control thread, readers on every worker.
  std::atomic<std::size_t> misses_per_client;
  std::atomic<std::size_t> resets;
  std::atomic<clock::rep> window;
  std::atomic<clock::rep> penalty;
  std::atomic<std::size_t> per_shard;

  std::atomic<std::size_t> entries{0};
  std::atomic<std::uint64_t> misses_refused{0};
  std::atomic<std::uint64_t> resets_noted{0};
  std::atomic<std::uint64_t> over_budget{0};
  std::atomic<std::uint64_t> untracked{0};

  std::uint64_t seed;
  std::array<std::unique_ptr<shard>, shard_count> shards;

  state() : seed(std::random_device{}() * 0x100000001B3ull ^ std::random_device{}()) {
    for (auto& s : shards)
      s = std::make_unique<shard>(seed);
  }

  void set(const limits& l) {
    misses_per_client.store(l.misses_per_client, std::memory_order_relaxed);
    resets.store(l.resets, std::memory_order_relaxed);
    window.store(l.reset_window.count(), std::memory_order_relaxed);
    penalty.store(l.penalty.count(), std::memory_order_relaxed);
    per_shard.store(std::max<std::size_t>(1, l.max_clients / shard_count),
                    std::memory_order_relaxed);
  }
  clock::duration window_d() const { return clock::duration(window.load(relaxed)); }

  // The hash's top bits pick the shard; the table's buckets use its low bits.
  shard& shard_of(const key& k) { return *shards[key_hash{seed}(k) >> 60]; }
  const shard& shard_of(const key& k) const { return *shards[key_hash{seed}(k) >> 60]; }

  // Under s.mutex.
  void drop_idle(shard& s, clock::time_point now) {
    for (auto it = s.table.begin(); it != s.table.end();) {
      if (it->second.idle(now)) {
        it = s.table.erase(it);
        entries.fetch_sub(1, relaxed);
      } else {
        ++it;
      }
    }
  }
  // Under s.mutex: the entry for k, created if there is room; null at the bound.
  entry* find_or_add(shard& s, const key& k) {
    if (auto it = s.table.find(k); it != s.table.end()) return &it->second;
    if (s.table.size() >= per_shard.load(relaxed) && s.latest >= s.full_sweep_after) {
      drop_idle(s, s.latest);
      s.full_sweep_after = s.latest + window_d() / event_window::bucket_count;
    }
    if (s.table.size() >= per_shard.load(relaxed)) {
      untracked.fetch_add(1, relaxed);
      return nullptr;
    }
    entries.fetch_add(1, relaxed);
    return &s.table.emplace(k, entry{}).first->second;
  }
  void release(const key& k) {
    auto& s = shard_of(k);
    std::lock_guard lock(s.mutex);
    auto it = s.table.find(k);
    if (it == s.table.end()) return;
    if (it->second.misses > 0) --it->second.misses;
    if (it->second.idle(s.latest)) {
      s.table.erase(it);
      entries.fetch_sub(1, relaxed);
    }
  }

  static constexpr auto relaxed = std::memory_order_relaxed;
};

client_ledger::key client_ledger::key_of(const boost::asio::ip::address& a) {
  client_ledger::key k{};
  const auto v6 = a.is_v4()
                      ? boost::asio::ip::make_address_v6(boost::asio::ip::v4_mapped, a.to_v4())
                      : a.to_v6();
  const auto bytes = v6.to_bytes();  // the scope id of a link-local address is not part of it
  std::memcpy(k.b, bytes.data(), 16);
  return k;
}

client_ledger::limits client_ledger::from_config(const config::limits& l) {
  limits out;
  out.misses_per_client = l.misses_per_client;
  out.resets = l.client_resets;
  out.reset_window = l.client_reset_window;
  out.penalty = l.reset_penalty;
  return out;
}

client_ledger::client_ledger(limits l) : state_(std::make_shared<state>()) {
  state_->set(l);
}

client_ledger::~client_ledger() = default;

void client_ledger::set_limits(const limits& l) {
  state_->set(l);
}

client_ledger::limits client_ledger::current_limits() const {
  const auto& s = *state_;
  limits l;
  l.misses_per_client = s.misses_per_client.load(state::relaxed);
  l.resets = s.resets.load(state::relaxed);
  l.reset_window = s.window_d();
  l.penalty = clock::duration(s.penalty.load(state::relaxed));
  l.max_clients = s.per_shard.load(state::relaxed) * shard_count;
  return l;
}

boost::asio::ip::address client_ledger::canonical(const boost::asio::ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped())
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, a.to_v6());
  return a;
}

// --- misses ---------------------------------------------------------------------------------

client_ledger::miss_slot::miss_slot(miss_slot&& o) noexcept
    : state_(std::move(o.state_)), key_(o.key_) {}

client_ledger::miss_slot& client_ledger::miss_slot::operator=(miss_slot&& o) noexcept {
  if (this != &o) {
    release();
    state_ = std::move(o.state_);
    key_ = o.key_;
  }
  return *this;
}

client_ledger::miss_slot::~miss_slot() {
  release();
}

void client_ledger::miss_slot::release() {
  if (!state_) return;
  state_->release(key_);
  state_.reset();
}

client_ledger::miss_slot client_ledger::begin_miss(const boost::asio::ip::address& client) {
  auto slot = try_begin_miss(client);
  if (!slot) note_miss_refused();
  return slot;
}

void client_ledger::note_miss_refused() {
  state_->misses_refused.fetch_add(1, state::relaxed);
}

client_ledger::miss_slot client_ledger::try_begin_miss(const boost::asio::ip::address& client) {
  const key k = key_of(client);
  auto& s = state_->shard_of(k);
  {
    std::lock_guard lock(s.mutex);
    const std::size_t cap = state_->misses_per_client.load(state::relaxed);
    auto it = s.table.find(k);
    entry* e = it != s.table.end() ? &it->second : nullptr;
    if ((e == nullptr || e->misses < cap) && cap > 0) {
      if (e == nullptr) e = state_->find_or_add(s, k);
      if (e != nullptr) {
        ++e->misses;
        return miss_slot(state_, k);
      }
    }
  }
  return {};
}

client_ledger::miss_slot client_ledger::begin_miss(const boost::asio::ip::address& client,
                                                   clock::time_point now) {
  {
    const key k = key_of(client);
    auto& s = state_->shard_of(k);
    std::lock_guard lock(s.mutex);
    s.latest = std::max(s.latest, now);
  }
  return begin_miss(client);
}

// --- resets ---------------------------------------------------------------------------------

bool client_ledger::note_reset(const boost::asio::ip::address& client, clock::time_point now) {
  auto& st = *state_;
  const key k = key_of(client);
  auto& s = st.shard_of(k);
  const auto window = st.window_d();
  std::lock_guard lock(s.mutex);
  s.latest = std::max(s.latest, now);
  if (now >= s.next_sweep) {  // so quiet addresses leave even if sweep() is never called
    st.drop_idle(s, now);
    s.next_sweep = now + window;
  }
  entry* e = st.find_or_add(s, k);
  if (e == nullptr) return false;
  st.resets_noted.fetch_add(1, state::relaxed);
  const std::uint32_t n = e->resets.add(now, window);
  e->quiet_after = std::max(e->quiet_after, now + window);
  if (now < e->penalty_until || n <= st.resets.load(state::relaxed)) return false;
  e->penalty_until = now + clock::duration(st.penalty.load(state::relaxed));
  e->resets.clear();
  st.over_budget.fetch_add(1, state::relaxed);
  return true;
}

bool client_ledger::penalized(const boost::asio::ip::address& client, clock::time_point now) const {
  const key k = key_of(client);
  const auto& s = state_->shard_of(k);
  std::lock_guard lock(s.mutex);
  auto it = s.table.find(k);
  return it != s.table.end() && now < it->second.penalty_until;
}

void client_ledger::sweep(clock::time_point now) {
  for (auto& sp : state_->shards) {
    std::lock_guard lock(sp->mutex);
    sp->latest = std::max(sp->latest, now);
    state_->drop_idle(*sp, now);
  }
}

std::size_t client_ledger::entries() const {
  return state_->entries.load(state::relaxed);
}

client_ledger::counters client_ledger::totals() const {
  const auto& s = *state_;
  return {s.misses_refused.load(state::relaxed), s.resets_noted.load(state::relaxed),
          s.over_budget.load(state::relaxed), s.untracked.load(state::relaxed)};
}

}  // namespace storecache::access
