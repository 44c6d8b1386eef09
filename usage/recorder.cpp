// The recorder: per-thread shards of per-hour windows. Bounded dimensions are fixed arrays
// indexed by enum (device: os x browser; os_version: os x major 0..99), so a record touches a
// few array slots and two hash maps (asset, site) under its shard's mutex. Workers map to
// shards by a hash of their thread id; with N workers and 8 shards two workers rarely share
// one, and sharing only costs a short wait. take() swaps each shard's windows out under its
// mutex and builds the usage_delta (string keys) outside it.
#include "usage/recorder.hpp"

#include <functional>
#include <map>
#include <string>
#include <thread>
#include <unordered_map>

namespace storecache::usage {

namespace {

constexpr int os_major_slots = 100;  // device::os_major is 0..99
constexpr std::string_view protocol_names[2] = {"http/1.1", "h2"};

struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using name_map = std::unordered_map<std::string, usage_counts, string_hash, std::equal_to<>>;

usage_counts& slot(name_map& m, std::string_view name) {
  auto it = m.find(name);
  if (it == m.end()) it = m.emplace(std::string(name), usage_counts{}).first;
  return it->second;
}

void count_request(usage_counts& c, const request_facts& r) {
  c.requests += 1;
  if (r.from_cache) {
    c.hits += 1;
    c.bytes_from_cache += r.bytes;
  } else {
    c.bytes_from_upstream += r.bytes;
  }
}

void count_upstream(usage_counts& c, const upstream_facts& u) {
  c.upstream_bytes += u.bytes;
  c.upstream_requests += 1;
  if (u.prefetch) {
    c.prefetch_bytes += u.bytes;
    c.prefetch_requests += 1;
  }
}

// "<site><path>" without query or fragment, cut like history keys; in a per-thread buffer so
// that a record allocates only when it adds a new name.
std::string_view asset_name(std::string_view site, std::string_view path) {
  thread_local std::string buf;
  path = path.substr(0, path.find_first_of("?#"));
  buf.assign(site);
  buf.append(path);
  return truncate_name(buf);
}

// One hour's counts in one shard.
struct window {
  usage_counts total;
  std::array<usage_counts, content_class_count> content{};
  std::array<usage_counts, os_family_count * browser_family_count> device{};
  std::array<usage_counts, os_family_count * os_major_slots> os_version{};
  std::array<usage_counts, tls_version_count> tls{};
  std::array<usage_counts, 2> protocol{};
  name_map assets;
  name_map sites;

  usage_counts& asset(std::string_view name) {
    if (assets.size() >= max_assets_per_window && assets.find(name) == assets.end())
      return slot(assets, other_assets);  // one over the cap: the overflow bucket itself
    return slot(assets, name);
  }
};

}  // namespace

struct recorder::shard {
  std::mutex m;
  std::map<std::uint32_t, window> windows;  // by hour; usually one, two around the hour

  window& at(std::int64_t unix_seconds) { return windows[hour_of(unix_seconds)]; }
};

recorder::recorder() {
  for (auto& s : shards_)
    s = std::make_unique<shard>();
}

recorder::~recorder() = default;

recorder::shard& recorder::my_shard() {
  thread_local const std::size_t index =
      std::hash<std::thread::id>{}(std::this_thread::get_id()) % shard_count;
  return *shards_[index];
}

void recorder::record(const request_facts& r) {
  const auto os = static_cast<std::size_t>(r.dev.os);
  const auto major = static_cast<std::size_t>(
      r.dev.os_major >= 0 && r.dev.os_major < os_major_slots ? r.dev.os_major : 0);
  const std::string_view asset = asset_name(r.site, r.path);
  shard& s = my_shard();
  std::lock_guard lock(s.m);
  window& w = s.at(r.unix_seconds);
  count_request(w.total, r);
  count_request(w.content[static_cast<std::size_t>(r.content)], r);
  count_request(w.device[os * browser_family_count + static_cast<std::size_t>(r.dev.browser)], r);
  count_request(w.os_version[os * os_major_slots + major], r);
  count_request(w.tls[static_cast<std::size_t>(r.tls)], r);
  count_request(w.protocol[r.http2 ? 1 : 0], r);
  if (r.status < 400) count_request(w.asset(asset), r);
  count_request(slot(w.sites, r.site), r);
}

void recorder::record(const upstream_facts& u) {
  const std::string_view asset = asset_name(u.site, u.path);
  shard& s = my_shard();
  std::lock_guard lock(s.m);
  window& w = s.at(u.unix_seconds);
  count_upstream(w.total, u);
  count_upstream(w.content[static_cast<std::size_t>(u.content)], u);
  count_upstream(w.asset(asset), u);
  count_upstream(slot(w.sites, u.site), u);
}

void recorder::record(const denial_facts& d) {
  const auto reason = static_cast<std::size_t>(d.reason);
  if (reason >= access::denial_count) return;
  shard& s = my_shard();
  std::lock_guard lock(s.m);
  window& w = s.at(d.unix_seconds);
  w.total.denied[reason] += 1;
  if (!d.site.empty()) slot(w.sites, d.site).denied[reason] += 1;
}

usage_delta recorder::take() {
  usage_delta out;
  auto add = [&](std::uint32_t hour, dimension dim, std::string name, const usage_counts& c) {
    if (c == usage_counts{}) return;
    out[bucket_key{hour, dim, std::move(name)}] += c;
  };
  for (auto& sp : shards_) {
    std::map<std::uint32_t, window> windows;
    {
      std::lock_guard lock(sp->m);
      windows.swap(sp->windows);
    }
    for (const auto& [hour, w] : windows) {
      add(hour, dimension::total, "", w.total);
      for (int i = 0; i < content_class_count; ++i)
        add(hour, dimension::content, std::string(label(static_cast<content_class>(i))),
            w.content[static_cast<std::size_t>(i)]);
      for (int o = 0; o < os_family_count; ++o) {
        const std::string os(label(static_cast<os_family>(o)));
        for (int b = 0; b < browser_family_count; ++b)
          add(hour, dimension::device,
              os + "/" + std::string(label(static_cast<browser_family>(b))),
              w.device[static_cast<std::size_t>(o * browser_family_count + b)]);
        for (int m = 0; m < os_major_slots; ++m)
          add(hour, dimension::os_version, os + " " + std::to_string(m),
              w.os_version[static_cast<std::size_t>(o * os_major_slots + m)]);
      }
      for (int i = 0; i < tls_version_count; ++i)
        add(hour, dimension::tls, std::string(label(static_cast<tls_version>(i))),
            w.tls[static_cast<std::size_t>(i)]);
      for (std::size_t i = 0; i < 2; ++i)
        add(hour, dimension::protocol, std::string(protocol_names[i]), w.protocol[i]);
      for (const auto& [name, c] : w.assets)
        add(hour, dimension::asset, name, c);
      for (const auto& [name, c] : w.sites)
        add(hour, dimension::site, name, c);
    }
  }
  return out;
}

void recorder::set_prefetch(std::vector<prefetch_state> sources) {
  std::lock_guard lock(prefetch_mu_);
  prefetch_ = std::move(sources);
}

std::optional<prefetch_snapshot> recorder::take_prefetch(std::int64_t now_unix) {
  std::optional<std::vector<prefetch_state>> set;
  {
    std::lock_guard lock(prefetch_mu_);
    set.swap(prefetch_);
  }
  if (!set) return std::nullopt;
  return prefetch_snapshot{.saved_unix = now_unix, .sources = std::move(*set)};
}

void recorder::untake_prefetch(prefetch_snapshot taken) {
  std::lock_guard lock(prefetch_mu_);
  if (!prefetch_) prefetch_ = std::move(taken.sources);
}

}  // namespace storecache::usage
