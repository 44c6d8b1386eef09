#include "prefetch/runner.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <ctime>
#include <unordered_set>

#include "log/log.hpp"
#include "prefetch/runner_parts.hpp"
#include "upstream/cache_service.hpp"
#include "upstream/client.hpp"
#include "usage/recorder.hpp"

namespace storecache::prefetch {

// The start of the local minute t is in (the windows count whole minutes).
system_clock::time_point minute_start(system_clock::time_point t) {
  std::time_t tt = system_clock::to_time_t(t);
  std::tm lt{};
  localtime_r(&tt, &lt);
  return system_clock::from_time_t(tt - lt.tm_sec);
}

asio::awaitable<void> sleep_for(steady::duration d) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  t.expires_after(d);
  co_await t.async_wait(asio::as_tuple(use_awaitable));
}

http::request_head request_for(const config::site& site, std::string_view path) {
  http::request_head req;
  req.method = "GET";
  req.scheme = "https";
  req.authority = site.name();
  req.target = std::string(path);
  req.client_address = asio::ip::address_v4::loopback();
  return req;
}

bool window_open(const config::prefetch_source& src) {
  return config::inside(src.windows, local_minute(system_clock::now()));
}

std::string pin_owner(const std::string& key) {
  if (key.size() <= 256) return key;
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a: stable across builds and restarts
  for (const unsigned char c : key) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return fmt::format("{}\n#{:016x}", key.substr(0, 200), h);
}

namespace {

std::optional<source_kind> configured_kind(config::prefetch_kind k) {
  switch (k) {
    case config::prefetch_kind::detect:
      return std::nullopt;
    case config::prefetch_kind::url_list:
      return source_kind::url_list;
    case config::prefetch_kind::ims_manifest:
      return source_kind::ims_manifest;
    case config::prefetch_kind::hls:
      return source_kind::hls;
    case config::prefetch_kind::cmi5:
      return source_kind::cmi5;
  }
  return std::nullopt;
}

}  // namespace

runner::runner(upstream::cache_service& cache, upstream::fetch_limiter& limiter,
               upstream::wan_budget& budget, account::metrics& stats, usage::recorder* usage)
    : cache_(cache), limiter_(limiter), budget_(budget), stats_(stats), usage_(usage) {}

runner::~runner() {
  stop();
  destroy();
}

void runner::start(std::shared_ptr<const config::config> cfg, upstream_tls_map tls) {
  io_ = std::make_unique<asio::io_context>(1);
  cfg_ = std::move(cfg);
  tls_ = std::move(tls);
  slots_ = std::make_unique<slots>(cfg_->prefetch.connections);
  pin_ceiling_ = cfg_->prefetch.max_pinned;
  asio::post(*io_, [this] {
    retain_pins();
    spawn_missing_loops();
  });
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "sc-prefetch");
    auto guard = asio::make_work_guard(*io_);
    io_->run();
  });
}

void runner::reconfigure(std::shared_ptr<const config::config> cfg, upstream_tls_map tls) {
  if (!io_) return;
  asio::post(*io_, [this, cfg = std::move(cfg), tls = std::move(tls)]() mutable {
    cfg_ = std::move(cfg);
    tls_ = std::move(tls);
    pools_.clear();  // calls in flight hold their pool
    slots_->resize(cfg_->prefetch.connections);
    pin_ceiling_ = cfg_->prefetch.max_pinned;
    retain_pins();
    for (auto& [key, run] : runs_) {
      // A changed kind or site reads afresh, from the next run on: a run under way holds
      // views of its listings.
      run->forget_listings = true;
      run->next_due = {};
      bool listed = false;
      for (const auto& site : cfg_->sites)
        if (site.name() == run->site)
          for (const auto& src : site.prefetch)
            listed = listed || src.name == run->source;
      run->removed = !listed;
      if (run->wake) run->wake->cancel();  // the loop looks at the new config now
    }
    spawn_missing_loops();
  });
}

void runner::stop() {
  stopping_ = true;
  if (io_) io_->stop();
  if (thread_.joinable()) thread_.join();
}

void runner::destroy() {
  slots_.reset();
  pools_.clear();
  runs_.clear();
  io_.reset();
}

std::vector<readiness> runner::snapshot() const {
  std::lock_guard lock(mu_);
  std::vector<readiness> out;
  out.reserve(status_.size());
  for (const auto& [key, r] : status_)
    out.push_back(r);
  return out;
}

usage::prefetch_state usage_state(const readiness& r) {
  const auto unix_seconds = [](const std::optional<clock_time>& t) -> std::int64_t {
    return t ? std::chrono::duration_cast<seconds>(t->time_since_epoch()).count() : 0;
  };
  return {.site = r.site,
          .source = r.source,
          .path = r.path,
          .kind = r.kind,
          .listed = r.listed,
          .fresh = r.fresh,
          .missing = r.missing(),
          .failed = r.failed,
          .bytes = r.bytes,
          .pinned_objects = r.pinned_objects,
          .pinned_bytes = r.pinned_bytes,
          .unpinned_objects = r.unpinned_objects,
          .unpinned_bytes = r.unpinned_bytes,
          .last_error = r.last_error,
          .last_run_end = unix_seconds(r.last_end),
          .next_run = r.running ? 0 : unix_seconds(r.next_run)};
}

void runner::publish_usage() {
  if (usage_ == nullptr) return;
  std::vector<usage::prefetch_state> out;
  for (const auto& r : snapshot())
    out.push_back(usage_state(r));
  usage_->set_prefetch(std::move(out));
}

void runner::retain_pins() {
  std::vector<std::string> owners;
  for (const auto& site : cfg_->sites)
    for (const auto& src : site.prefetch)
      if (src.pin) owners.push_back(pin_owner(site.name() + "\n" + src.name));
  std::erase_if(pinned_bytes_, [&](const auto& e) {
    return std::find(owners.begin(), owners.end(), pin_owner(e.first)) == owners.end();
  });
  if (auto ec = cache_.store().retain_pins(owners))
    log::warn("prefetch: unpinning removed sources failed: {}", ec.message());
}

void runner::spawn_missing_loops() {
  for (const auto& site : cfg_->sites)
    for (const auto& src : site.prefetch) {
      std::string key = site.name() + "\n" + src.name;
      if (runs_.contains(key)) continue;
      auto run = std::make_shared<source_run>();
      run->site = site.name();
      run->source = src.name;
      run->key = key;
      runs_.emplace(key, run);
      {
        std::lock_guard lock(mu_);
        auto& r = status_[key];
        r.site = site.name();
        r.source = src.name;
        r.path = src.path;
      }
      asio::co_spawn(*io_, source_loop(run), asio::detached);
    }
}

std::shared_ptr<upstream::upstream_pool> runner::pool_for(const config::site& site) {
  auto it = pools_.find(site.name());
  if (it == pools_.end()) {
    std::shared_ptr<asio::ssl::context> tls;
    if (auto t = tls_.find(site.name()); t != tls_.end()) tls = t->second;
    it = pools_
             .emplace(site.name(),
                      std::make_shared<upstream::upstream_pool>(
                          io_->get_executor(), site, cfg_->timeout, std::move(tls), &budget_))
             .first;
  }
  return it->second;
}

asio::awaitable<void> runner::source_loop(std::shared_ptr<source_run> s) {
  while (!stopping_) {
    auto cfg = cfg_;
    const config::site* site = nullptr;
    const config::prefetch_source* src = nullptr;
    for (const auto& st : cfg->sites)
      if (st.name() == s->site)
        for (const auto& p : st.prefetch)
          if (p.name == s->source) {
            site = &st;
            src = &p;
          }
    if (src == nullptr) {  // removed by a reload
      {
        std::lock_guard lock(mu_);
        status_.erase(s->key);
        runs_.erase(s->key);
      }
      publish_usage();
      co_return;
    }
    {
      std::lock_guard lock(mu_);
      status_[s->key].path = src->path;
    }
    const auto now = system_clock::now();
    const int minute = local_minute(now);
    system_clock::time_point next;
    if (!config::inside(src->windows, minute)) {
      next = minute_start(now) + minutes(config::minutes_until_open(src->windows, minute));
    } else if (steady::now() < s->next_due) {
      next = now + std::chrono::duration_cast<system_clock::duration>(s->next_due - steady::now());
    } else {
      const bool done = co_await run_once(*s, cfg, *site, *src);
      // A run cut short, or with failures, is tried again sooner than the interval.
      bool failures = false;
      {
        std::lock_guard lock(mu_);
        failures = status_[s->key].failed > 0;
      }
      auto after = std::chrono::duration_cast<steady::duration>(src->interval);
      if (!done || failures) after = std::min<steady::duration>(after, minutes(5));
      s->next_due = steady::now() + after;
      continue;
    }
    bool changed = false;
    {
      std::lock_guard lock(mu_);
      auto& r = status_[s->key];
      // (to the minute: a wait inside the interval recomputes it every minute)
      changed = !r.next_run || std::chrono::abs(*r.next_run - next) > minutes(1);
      r.next_run = next;
    }
    if (changed) publish_usage();
    // Wake at least every minute: the local clock may jump (DST, NTP) and a reload may change
    // the windows.
    auto wake = std::make_shared<asio::steady_timer>(co_await asio::this_coro::executor);
    wake->expires_after(std::clamp<steady::duration>(next - now, seconds(1), seconds(60)));
    s->wake = wake;
    co_await wake->async_wait(asio::as_tuple(use_awaitable));
    s->wake.reset();
  }
}

void runner::log_once(source_run& s, const std::string& cause, const std::string& text) {
  if (s.logged.insert(cause).second) log::warn("prefetch {}/{}: {}", s.site, s.source, text);
}

void runner::clear_cause(source_run& s, const std::string& prefix) {
  std::erase_if(s.logged, [&](const std::string& c) { return c.starts_with(prefix); });
}

void runner::forget_unlisted(source_run& s, const std::set<std::string>& visited) {
  // A weekly list names new manifests: the old ones' memos and log causes go with them, so
  // that a source's memory follows what it lists now, not everything it ever listed.
  for (auto it = s.listings.begin(); it != s.listings.end();) {
    if (visited.contains(it->first)) {
      ++it;
      continue;
    }
    clear_cause(s, "listing " + it->first + " ");
    it = s.listings.erase(it);
  }
}

asio::awaitable<bool> runner::run_once(source_run& s, std::shared_ptr<const config::config> cfg,
                                       const config::site& site,
                                       const config::prefetch_source& src) {
  const auto& limits = cfg->prefetch;
  if (s.forget_listings) {
    s.listings.clear();
    s.forget_listings = false;
  }
  update(s, [](readiness& r) {
    r.running = true;
    r.last_start = system_clock::now();
    r.next_run.reset();
  });
  auto may_go_on = [&] { return !stopping_ && !s.removed && window_open(src); };

  // The listings, breadth first from the source's own, each read once per run. The listings
  // themselves are objects too: a player asks for its playlist or manifest first. The paths are
  // views of the listings' memos (and of the config for the source's own), which stay put
  // until the run ends: one copy of each path, however many objects a source lists.
  std::vector<std::string_view> objects{src.path};
  std::unordered_set<std::string_view> seen{src.path};
  std::set<std::string> visited{src.path};
  std::deque<std::pair<std::string, unsigned>> todo{{src.path, 0}};
  std::uint64_t rejected = 0;
  bool truncated = false;
  listing_problem problem = listing_problem::none;
  std::string error, kind;
  // What the listings' memos may hold in all, at most four times the largest listing: a
  // master that names a thousand playlists cannot make a run hold a thousand listings' worth.
  const std::uint64_t budget = 4 * limits.max_listing_size;
  std::uint64_t held = 0;
  // The listings read through the cache, as objects of the run: checked once, not again.
  std::map<std::string, object_result, std::less<>> listing_objects;
  // True when the path is (or already was) one of the run's objects.
  auto add = [&](std::string_view path) {
    if (seen.contains(path)) return true;
    if (seen.size() >= limits.max_entries) {
      truncated = true;
      return false;
    }
    seen.insert(path);
    objects.push_back(path);
    return true;
  };
  while (!todo.empty() && may_go_on()) {
    auto [path, depth] = todo.front();
    todo.pop_front();
    const std::optional<source_kind> as = depth == 0 ? configured_kind(src.kind) : std::nullopt;
    auto read = co_await read_listing(s, site, path, as, src, cfg);
    if (read.cut) {  // read again from the next run on: the run ends cut
      todo.emplace_front(path, depth);
      break;
    }
    if (read.object) listing_objects.emplace(path, std::move(*read.object));
    if (read.problem != listing_problem::none && problem == listing_problem::none) {
      problem = read.problem;
      error = read.error;
    }
    // A listing that cannot be read now is taken as it was last read, if it was.
    const auto& memo = s.listings[path];
    if (!memo.valid) continue;
    for (const auto& p : memo.objects)
      held += p.size();
    for (const auto& p : memo.sources)
      held += p.size();
    if (depth == 0) kind = std::string(to_string(memo.kind));
    rejected += memo.rejected;
    truncated = truncated || memo.truncated;
    for (const auto& o : memo.objects)
      add(o);
    for (const auto& nested : memo.sources) {
      if (!add(nested)) continue;                    // past max_entries: not read either
      if (!visited.insert(nested).second) continue;  // read already: a loop, or listed twice
      if (depth + 1 > limits.max_depth || held > budget)
        truncated = true;
      else
        todo.emplace_back(nested, depth + 1);
    }
  }
  if (todo.empty()) forget_unlisted(s, visited);
  if (!todo.empty()) {  // the window closed while listings were read
    update(s, [](readiness& r) {
      r.running = false;
      r.last_end = system_clock::now();
      ++r.runs;
    });
    co_return false;
  }
  const bool source_read = s.listings[src.path].valid;
  update(s, [&](readiness& r) {
    r.kind = kind;
    r.listing = problem;
    if (!error.empty()) r.last_error = error;
    r.rejected = rejected;
    r.truncated = truncated;
    // The first run shows its progress; later ones replace the figures when they end, so that
    // a source does not look unready every interval while it is checked again.
    if (!s.published) {
      r.listed = source_read ? objects.size() : 0;
      r.fresh = 0;
      r.failed = 0;
      r.bytes = 0;
    }
  });
  if (!source_read) {
    update(s, [](readiness& r) {
      r.running = false;
      r.last_end = system_clock::now();
      ++r.runs;
    });
    co_return false;
  }

  // The objects: at most [prefetch] connections at once over every source. Each worker takes
  // the next object until none is left or the window closes.
  std::size_t next = 0;
  std::size_t workers_left = std::min<std::size_t>(limits.connections, objects.size());
  bool cut = false;
  std::uint64_t fresh = 0, failed = 0, bytes = 0;
  // Pinning: the stored copies in listing order while every source's pinned bytes together
  // stay within the ceiling; the rest is counted (and logged), cached but evictable.
  // (Other sources' figures are read live: runs at the same time share it too.)
  const std::string owner = pin_owner(s.key);
  const std::uint64_t before = pinned_bytes_[s.key];  // the earlier run's pins stay until ours end
  std::vector<std::string> pins;
  std::uint64_t pinned_bytes = 0, unpinned = 0, unpinned_bytes = 0;
  auto pin = [&](const object_result& res) {
    if (!src.pin || !res.stored_bytes) return;
    const std::uint64_t n = *res.stored_bytes;
    std::uint64_t others = 0;
    for (const auto& [key, b] : pinned_bytes_)
      if (key != s.key) others += b;
    if (others + pinned_bytes + n > limits.max_pinned) {
      ++unpinned;
      unpinned_bytes += n;
      return;
    }
    cache_.store().add_pin(owner, res.primary);  // kept from now on, in memory
    pins.push_back(res.primary);
    pinned_bytes += n;
    pinned_bytes_[s.key] = std::max(before, pinned_bytes);
  };
  std::string last_failure;
  asio::steady_timer all_done(co_await asio::this_coro::executor, steady::time_point::max());
  auto worker = [&]() -> asio::awaitable<void> {
    while (next < objects.size()) {
      if (!may_go_on()) {
        cut = true;
        break;
      }
      const std::string_view path = objects[next++];
      object_result res;
      if (auto it = listing_objects.find(path); it != listing_objects.end()) {
        res = it->second;  // a listing: checked when it was read
      } else {
        co_await slots_->acquire();
        if (!may_go_on()) {  // closed (or removed) while it waited for a slot
          slots_->release();
          cut = true;
          break;
        }
        res = co_await ensure_object(s, site, src, cfg, path);
        slots_->release();
      }
      pin(res);
      const bool is_fresh = res.k == object_result::fresh || res.k == object_result::fetched ||
                            res.k == object_result::revalidated;
      if (is_fresh) {
        ++fresh;
        bytes += res.bytes;
      } else if (res.k == object_result::failed) {
        ++failed;
        last_failure = fmt::format("GET {}: {}", path, res.error);
      } else {
        cut = true;
      }
      update(s, [&](readiness& r) {
        if (res.k == object_result::fetched) ++r.fetched_objects;
        if (res.k == object_result::revalidated) ++r.revalidated;
        if (res.k == object_result::failed) r.last_error = last_failure;
        if (s.published) return;
        r.fresh += is_fresh ? 1 : 0;
        r.bytes += is_fresh ? res.bytes : 0;
        r.failed += res.k == object_result::failed ? 1 : 0;
        r.pinned_objects = pins.size();
        r.pinned_bytes = pinned_bytes;
        r.unpinned_objects = unpinned;
        r.unpinned_bytes = unpinned_bytes;
      });
    }
    if (--workers_left == 0) all_done.cancel();
  };
  // The workers share this frame's locals: it waits below until every one has ended (or the
  // loop is destroyed with all of them).
  const std::size_t started = workers_left;
  for (std::size_t i = 0; i < started; ++i)
    asio::co_spawn(co_await asio::this_coro::executor, worker(), asio::detached);
  // (co_spawn may run a worker to its end at once: wait only for those still going)
  if (workers_left > 0) co_await all_done.async_wait(asio::as_tuple(use_awaitable));

  if (src.pin) {
    if (!cut) {  // the whole list is known: the index keeps exactly it, across restarts
      if (auto ec = cache_.store().set_pins(owner, pins))
        log_once(s, "pins", fmt::format("keeping its pins in the index failed: {}", ec.message()));
      pinned_bytes_[s.key] = pinned_bytes;
    }  // else the earlier run's pins stay, with what this one added (counted as it went)
    if (unpinned > 0)
      log_once(s, "pin ceiling",
               fmt::format("{} object(s), {} bytes, do not fit under [prefetch] max_pinned ({} "
                           "bytes, all sources): cached, but not pinned",
                           unpinned, unpinned_bytes, limits.max_pinned));
    else if (!cut)
      clear_cause(s, "pin ceiling");
  }
  if (failed > 0)
    log_once(
        s, "objects",
        fmt::format("{} of {} object(s) failed, e.g. {}", failed, objects.size(), last_failure));
  else
    clear_cause(s, "objects");
  update(s, [&](readiness& r) {
    r.pin = src.pin;
    if (!cut) {  // a cut run leaves the last whole run's figures (or its own progress)
      r.listed = objects.size();
      r.fresh = fresh;
      r.failed = failed;
      r.bytes = bytes;
      r.pinned_objects = pins.size();
      r.pinned_bytes = pinned_bytes;
      r.unpinned_objects = unpinned;
      r.unpinned_bytes = unpinned_bytes;
    }
    r.running = false;
    r.last_end = system_clock::now();
    ++r.runs;
  });
  if (!cut) s.published = true;
  co_return !cut;
}

}  // namespace storecache::prefetch
