#include "prefetch/runner.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <ctime>
#include <deque>
#include <set>
#include <unordered_set>

#include "account/metrics.hpp"
#include "account/upstream_report.hpp"
#include "cache/cache_key.hpp"
#include "cache/serve_plan.hpp"
#include "log/log.hpp"
#include "prefetch/listing.hpp"
#include "upstream/cache_service.hpp"
#include "upstream/client.hpp"
#include "upstream/fetch_limiter.hpp"
#include "upstream/fill_job.hpp"
#include "upstream/request_head.hpp"

namespace storecache::prefetch {

namespace asio = boost::asio;
using asio::use_awaitable;
using std::chrono::minutes;
using std::chrono::seconds;
using std::chrono::system_clock;
using steady = std::chrono::steady_clock;

namespace {

int local_minute(system_clock::time_point t) {
  std::time_t tt = system_clock::to_time_t(t);
  std::tm lt{};
  localtime_r(&tt, &lt);
  return lt.tm_hour * 60 + lt.tm_min;
}

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

// The request prefetch makes for a path, as a device without any request fields would: an
// object that varies on request fields is fetched (and stored) as that request's variant.
http::request_head request_for(const config::site& site, const std::string& path) {
  http::request_head req;
  req.method = "GET";
  req.scheme = "https";
  req.authority = site.name();
  req.target = path;
  req.client_address = asio::ip::address_v4::loopback();
  return req;
}

bool terminal(upstream::fill::state s) {
  using st = upstream::fill::state;
  return s != st::head_pending && s != st::streaming && s != st::body_done;
}

const cache::header_list no_request_fields;

}  // namespace

// One source's loop state; the runner's thread only.
struct runner::source_run {
  std::string site;
  std::string source;
  std::string key;
  steady::time_point next_due{};  // epoch: due now
  // A listing as last read: its validators (the next read is conditional) and what it named.
  struct memo {
    bool valid = false;
    std::string etag;
    std::string last_modified;
    source_kind kind = source_kind::url_list;
    std::vector<std::string> objects;
    std::vector<std::string> sources;
    std::size_t rejected = 0;
    bool truncated = false;
  };
  std::map<std::string, memo> listings;
  std::set<std::string> logged;  // causes logged already; a cause that clears is logged again
  bool published = false;        // a whole run's figures are in the readiness
};

// At most n holders at once; the others wait in order. The runner's thread only.
class runner::slots {
 public:
  explicit slots(unsigned n) : free_(static_cast<int>(n)), total_(n) {}
  void resize(unsigned n) {
    free_ += static_cast<int>(n) - static_cast<int>(total_);
    total_ = n;
    wake();
  }
  asio::awaitable<void> acquire() {
    while (free_ <= 0) {
      auto t = std::make_shared<asio::steady_timer>(co_await asio::this_coro::executor,
                                                    steady::time_point::max());
      waiters_.push_back(t);
      co_await t->async_wait(asio::as_tuple(use_awaitable));
    }
    --free_;
  }
  void release() {
    ++free_;
    wake();
  }

 private:
  void wake() {
    for (int i = 0; i < free_ && !waiters_.empty(); ++i) {
      waiters_.front()->cancel();
      waiters_.pop_front();
    }
  }
  int free_;
  unsigned total_;
  std::deque<std::shared_ptr<asio::steady_timer>> waiters_;
};

namespace {

// The fill's upstream body bytes counted for the source too (prefetch's own WAN use), on top
// of the site's upstream counters and the usage history (account::upstream_report).
class counted_report final : public upstream::fetch_report {
 public:
  counted_report(std::shared_ptr<upstream::fetch_report> inner,
                 std::function<void(std::size_t)> on_body)
      : inner_(std::move(inner)), on_body_(std::move(on_body)) {}
  void response(unsigned status) override { inner_->response(status); }
  void no_response(upstream::upstream_error e) override { inner_->no_response(e); }
  void failed(upstream::upstream_error e) override { inner_->failed(e); }
  void body(std::size_t n) override {
    inner_->body(n);
    on_body_(n);
  }
  void exchange_done(const cache::header_list& h, std::uint64_t bytes) override {
    inner_->exchange_done(h, bytes);
  }

 private:
  std::shared_ptr<upstream::fetch_report> inner_;
  std::function<void(std::size_t)> on_body_;
};

}  // namespace

// What one object's check came to.
struct runner::object_result {
  enum kind { fresh, fetched, revalidated, failed, cut } k = failed;
  std::uint64_t bytes = 0;
  std::string error;  // failed: why
};

// What reading one listing came to; the listing itself is in the source's memo.
struct runner::listing_read {
  listing_problem problem = listing_problem::none;
  std::string error;
  bool not_modified = false;
};

runner::runner(upstream::cache_service& cache, upstream::fetch_limiter& limiter,
               account::metrics& stats, usage::recorder* usage)
    : cache_(cache), limiter_(limiter), stats_(stats), usage_(usage) {}

runner::~runner() {
  stop();
  destroy();
}

void runner::start(std::shared_ptr<const config::config> cfg, upstream_tls_map tls) {
  io_ = std::make_unique<asio::io_context>(1);
  cfg_ = std::move(cfg);
  tls_ = std::move(tls);
  slots_ = std::make_unique<slots>(cfg_->prefetch.connections);
  asio::post(*io_, [this] { spawn_missing_loops(); });
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
    for (auto& [key, run] : runs_) {
      run->listings.clear();  // a changed kind or site reads afresh
      run->next_due = {};
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
             .emplace(site.name(), std::make_shared<upstream::upstream_pool>(
                                       io_->get_executor(), site, cfg_->timeout, std::move(tls)))
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
      std::lock_guard lock(mu_);
      status_.erase(s->key);
      runs_.erase(s->key);
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
    {
      std::lock_guard lock(mu_);
      status_[s->key].next_run = next;
    }
    // Wake at least every minute: the local clock may jump (DST, NTP) and a reload may change
    // the windows.
    co_await sleep_for(std::clamp<steady::duration>(next - now, seconds(1), seconds(60)));
  }
}

template <typename F>
void runner::update(const source_run& s, F f) {
  std::lock_guard lock(mu_);
  f(status_[s.key]);
}

void runner::log_once(source_run& s, const std::string& cause, const std::string& text) {
  if (s.logged.insert(cause).second) log::warn("prefetch {}/{}: {}", s.site, s.source, text);
}

void runner::clear_cause(source_run& s, const std::string& prefix) {
  std::erase_if(s.logged, [&](const std::string& c) { return c.starts_with(prefix); });
}

asio::awaitable<bool> runner::run_once(source_run& s, std::shared_ptr<const config::config> cfg,
                                       const config::site& site,
                                       const config::prefetch_source& src) {
  const auto& limits = cfg->prefetch;
  update(s, [](readiness& r) {
    r.running = true;
    r.last_start = system_clock::now();
    r.next_run.reset();
  });
  auto window_open = [&] {
    return !stopping_ && config::inside(src.windows, local_minute(system_clock::now()));
  };

  // The listings, breadth first from the source's own, each read once per run. The listings
  // themselves are objects too: a player asks for its playlist or manifest first.
  std::vector<std::string> objects{src.path};
  std::unordered_set<std::string> seen{src.path};
  std::set<std::string> visited{src.path};
  std::deque<std::pair<std::string, unsigned>> todo{{src.path, 0}};
  std::uint64_t rejected = 0;
  bool truncated = false;
  listing_problem problem = listing_problem::none;
  std::string error, kind;
  auto add = [&](const std::string& path) {
    if (seen.contains(path)) return;
    if (seen.size() >= limits.max_entries) {
      truncated = true;
      return;
    }
    seen.insert(path);
    objects.push_back(path);
  };
  while (!todo.empty() && window_open()) {
    auto [path, depth] = todo.front();
    todo.pop_front();
    const std::optional<source_kind> as = depth == 0 ? configured_kind(src.kind) : std::nullopt;
    auto read = co_await read_listing(s, site, path, as, src, limits);
    if (read.problem != listing_problem::none && problem == listing_problem::none) {
      problem = read.problem;
      error = read.error;
    }
    // A listing that cannot be read now is taken as it was last read, if it was.
    const auto& memo = s.listings[path];
    if (!memo.valid) continue;
    if (depth == 0) kind = std::string(to_string(memo.kind));
    rejected += memo.rejected;
    truncated = truncated || memo.truncated;
    for (const auto& o : memo.objects)
      add(o);
    for (const auto& nested : memo.sources) {
      add(nested);
      if (!visited.insert(nested).second) continue;  // read already: a loop, or listed twice
      if (depth + 1 > limits.max_depth)
        truncated = true;
      else
        todo.emplace_back(nested, depth + 1);
    }
  }
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
  std::string last_failure;
  asio::steady_timer all_done(co_await asio::this_coro::executor, steady::time_point::max());
  auto worker = [&]() -> asio::awaitable<void> {
    while (next < objects.size()) {
      if (!window_open()) {
        cut = true;
        break;
      }
      const std::string& path = objects[next++];
      co_await slots_->acquire();
      auto res = co_await ensure_object(s, site, cfg, path);
      slots_->release();
      const bool is_fresh = res.k == object_result::fresh || res.k == object_result::fetched ||
                            res.k == object_result::revalidated;
      if (is_fresh) {
        ++fresh;
        bytes += res.bytes;
      } else if (res.k == object_result::failed) {
        ++failed;
        last_failure = "GET " + path + ": " + res.error;
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

  if (failed > 0)
    log_once(
        s, "objects",
        fmt::format("{} of {} object(s) failed, e.g. {}", failed, objects.size(), last_failure));
  else
    clear_cause(s, "objects");
  update(s, [&](readiness& r) {
    if (!cut) {  // a cut run leaves the last whole run's figures (or its own progress)
      r.listed = objects.size();
      r.fresh = fresh;
      r.failed = failed;
      r.bytes = bytes;
    }
    r.running = false;
    r.last_end = system_clock::now();
    ++r.runs;
  });
  if (!cut) s.published = true;
  co_return !cut;
}

asio::awaitable<runner::listing_read> runner::read_listing(
    source_run& s, const config::site& site, const std::string& path,
    std::optional<source_kind> kind, const config::prefetch_source& src,
    const config::prefetch_settings& limits) {
  listing_read out;
  auto& memo = s.listings[path];
  auto pool = pool_for(site);
  auto report = std::make_shared<account::upstream_report>(stats_.site(site.name()), usage_,
                                                           site.name(), path);
  cache::header_list validators;
  if (memo.valid && !memo.etag.empty()) validators.push_back({"if-none-match", memo.etag});
  if (memo.valid && !memo.last_modified.empty())
    validators.push_back({"if-modified-since", memo.last_modified});
  auto head = upstream::build_upstream_head(request_for(site, path), "GET", path,
                                            pool->host_header(), true, validators);
  upstream::upstream_call call(*pool);
  const std::string cause = "listing " + path;
  auto fail = [&](listing_problem p, std::string text) {
    out.problem = p;
    out.error = "listing " + path + ": " + text;
    log_once(s, cause + " " + std::string(to_string(p)), out.error);
  };
  auto err = co_await call.start(std::move(head.text), nullptr, false, false);
  if (err != upstream::upstream_error::none) {
    report->no_response(err);
    fail(listing_problem::unreachable,
         fmt::format("upstream {}: {}", upstream::to_string(err), call.error_detail()));
    co_return out;
  }
  const unsigned status = call.status();
  report->response(status);
  const auto headers = call.response_headers();
  if (status == 304 && memo.valid) {
    call.done();
    report->exchange_done(headers, 0);
    out.not_modified = true;
    update(s, [](readiness& r) { ++r.listing_not_modified; });
    clear_cause(s, cause);
    co_return out;
  }
  if (status != 200) {
    report->exchange_done(headers, 0);
    fail(listing_problem::status, fmt::format("the upstream answered {}", status));
    co_return out;
  }
  if (auto len = call.content_length(); len && *len > limits.max_listing_size) {
    report->exchange_done(headers, 0);
    fail(listing_problem::too_large,
         fmt::format("{} bytes, over [prefetch] max_listing_size ({} bytes)", *len,
                     limits.max_listing_size));
    co_return out;
  }
  std::string body;
  std::array<char, 16384> buf;
  for (;;) {
    upstream::upstream_error e = upstream::upstream_error::none;
    std::size_t n = co_await call.read_body(asio::buffer(buf), e);
    if (e != upstream::upstream_error::none) {
      report->failed(e);
      report->exchange_done(headers, body.size());
      fail(listing_problem::unreachable,
           fmt::format("upstream {} mid-body: {}", upstream::to_string(e), call.error_detail()));
      co_return out;
    }
    if (n == 0) break;
    report->body(n);
    update(s, [n](readiness& r) { r.fetched_bytes += n; });
    if (body.size() + n > limits.max_listing_size) {
      report->exchange_done(headers, body.size() + n);
      fail(listing_problem::too_large,
           fmt::format("over [prefetch] max_listing_size ({} bytes)", limits.max_listing_size));
      co_return out;
    }
    body.append(buf.data(), n);
  }
  call.done();
  report->exchange_done(headers, body.size());

  const auto content_type = cache::find_header(headers, "content-type").value_or("");
  const source_kind k = kind ? *kind : detect_kind(body, content_type, path);
  parse_options options;
  options.source_path = path;
  options.site_name = site.name();
  options.max_entries = limits.max_entries;
  options.variants =
      src.hls_lowest_and_highest ? hls_variants::lowest_and_highest : hls_variants::all;
  listing l = parse(k, body, options);
  if (!l.error.empty()) {
    memo.valid = false;
    fail(listing_problem::malformed, fmt::format("not a valid {}: {}", to_string(k), l.error));
    co_return out;
  }
  if (l.rejected_count > 0 && !l.rejected.empty())
    log_once(s, cause + " rejected",
             fmt::format("listing {}: {} reference(s) not fetched, e.g. {}", path, l.rejected_count,
                         l.rejected.front()));
  clear_cause(s, cause + " ");
  memo.valid = true;
  memo.etag = std::string(cache::find_header(headers, "etag").value_or(""));
  memo.last_modified = std::string(cache::find_header(headers, "last-modified").value_or(""));
  memo.kind = k;
  memo.objects = std::move(l.objects);
  memo.sources = std::move(l.sources);
  memo.rejected = l.rejected_count;
  memo.truncated = l.truncated;
  co_return out;
}

asio::awaitable<runner::object_result> runner::ensure_object(
    source_run& s, const config::site& site, std::shared_ptr<const config::config> cfg,
    const std::string& path) {
  object_result out;
  auto policy = cache::policy_for(site, path);
  if (policy.bypass) {
    out.error = "the site's cache rules never store it";
    co_return out;
  }
  policy.store_success_only = policy.authorized_sharing;
  const cache::key_rules rules{site.cache.ignore_query_params};
  const std::string primary = cache::primary_key("https", site.name(), path, rules);
  auto ex = co_await asio::this_coro::executor;

  // Waits for a fill someone else leads (a device, another source) to end.
  auto wait_for = [this](std::shared_ptr<upstream::fill> f) -> asio::awaitable<void> {
    while (!stopping_) {
      auto v = f->snapshot();
      if (terminal(v.st)) break;
      if (v.st == upstream::fill::state::body_done)  // the commit is under way: no wake-up
        co_await sleep_for(std::chrono::milliseconds(10));
      else
        co_await f->wait(v.available, std::chrono::seconds(1));
    }
  };
  bool fetched = false, revalidated = false;
  for (int attempt = 0; attempt < 20; ++attempt) {
    if (stopping_) {
      out.k = object_result::cut;
      co_return out;
    }
    auto stored = cache::find_stored(cache_.store(), primary, no_request_fields);
    std::optional<cache::object_meta> meta;
    if (stored) {
      const auto& h = stored->meta.head;
      auto d = cache::decide_reuse(static_cast<int>(h.status), h.headers,
                                   {h.request_time, h.response_time}, no_request_fields,
                                   system_clock::now(), policy);
      if (d.action == cache::reuse_action::fresh) {
        if (h.status != 200) {
          out.error = fmt::format("the upstream answered {}", h.status);
          co_return out;
        }
        out.k = fetched       ? object_result::fetched
                : revalidated ? object_result::revalidated
                              : object_result::fresh;
        out.bytes = stored->meta.body_size;
        co_return out;
      }
      meta = stored->meta;
    }
    if (fetched || revalidated) {  // stored, yet not fresh (or not stored at all)
      out.error = "fetched, but not stored fresh (its Cache-Control, or storing is paused)";
      co_return out;
    }
    // Never fetch what a device's request is fetching: wait for it, then look again.
    if (auto f = cache_.inflight().find(primary)) {
      co_await wait_for(f);
      continue;
    }
    auto joined = cache_.inflight().join_or_create(primary, asio::ip::address_v4::loopback(), true);
    if (!joined.created) {
      co_await wait_for(joined.f);
      continue;
    }
    // Device misses first: a slot only if one is free now, never queued before them.
    auto permit = limiter_.try_acquire(site.name());
    if (!permit) {
      joined.f->finish(upstream::fill::state::abandoned);
      cache_.inflight().remove(joined.f);
      co_await sleep_for(std::chrono::milliseconds(500));
      --attempt;  // waiting for room is not a failed attempt
      continue;
    }
    auto on_body = [this, key = s.key](std::size_t n) {
      std::lock_guard lock(mu_);
      status_[key].fetched_bytes += n;
    };
    auto report =
        std::make_shared<counted_report>(std::make_shared<account::upstream_report>(
                                             stats_.site(site.name()), usage_, site.name(), path),
                                         std::move(on_body));
    const auto req = request_for(site, path);
    // Built before the co_await, not as a temporary inside it (GCC 12, see proxy/fill_flow.cpp).
    upstream::fill_request request{
        .f = joined.f,
        .path = path,
        .site = std::shared_ptr<const config::site>(cfg, &site),
        .pool = pool_for(site),
        .report = std::move(report),
        .stored = std::move(meta),
        .policy = policy,
        .orphans = upstream::orphan_policy::from_config(cfg->cache),
        .hold = std::make_shared<upstream::fetch_limiter::permit>(std::move(permit)),
        .interim_to = nullptr};
    auto r = co_await upstream::lead_fill(cache_, ex, req, std::move(request));
    switch (r.k) {
      case upstream::lead_result::streaming:
        co_await wait_for(joined.f);
        if (joined.f->snapshot().st != upstream::fill::state::complete) {
          out.error = fmt::format("the upstream failed mid-body ({})",
                                  upstream::to_string(joined.f->error()));
          co_return out;
        }
        fetched = true;
        break;
      case upstream::lead_result::not_modified:
        revalidated = true;
        break;
      case upstream::lead_result::not_shared:
        out.error =
            fmt::format("not storable (the upstream answered {} that may not be stored)", r.status);
        co_return out;
      case upstream::lead_result::failed:
        out.error = r.status != 0 ? fmt::format("the upstream answered {}", r.status)
                                  : fmt::format("upstream {}", upstream::to_string(r.err));
        co_return out;
    }
  }
  out.error = "other fetches of it kept failing";
  co_return out;
}

}  // namespace storecache::prefetch
