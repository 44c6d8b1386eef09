// The recorder: what one request and one upstream body add, hours, the asset cap, exact totals
// under concurrent recording and taking, and the way into the history.
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "store_test_util.hpp"
#include "usage/recorder.hpp"

using namespace storecache::usage;
namespace lmdb = storecache::cache::lmdb;

namespace {

const std::int64_t t0 = 480000ll * 3600 + 120;  // two minutes into hour 480000
const std::uint32_t h0 = 480000;

request_facts iphone_hit(std::uint64_t bytes) {
  request_facts r;
  r.unix_seconds = t0;
  r.site = "learn.example.com";
  r.path = "/v/intro.mp4?X-Amz-Signature=secret";
  r.content = content_class::video;
  r.dev = device{os_family::ios, browser_family::safari, 17};
  r.tls = tls_version::tls1_3;
  r.http2 = true;
  r.from_cache = true;
  r.bytes = bytes;
  return r;
}

usage_counts get(const usage_delta& d, std::uint32_t hour, dimension dim, std::string name) {
  auto it = d.find(bucket_key{hour, dim, std::move(name)});
  return it == d.end() ? usage_counts{} : it->second;
}

}  // namespace

TEST_CASE("usage recorder: a request and an upstream body fill their buckets",
          "[usage][recorder]") {
  recorder rec;
  rec.record(iphone_hit(1000));
  request_facts miss = iphone_hit(300);
  miss.from_cache = false;
  miss.http2 = false;
  miss.tls = tls_version::tls1_2;
  miss.dev = device{os_family::android, browser_family::samsung, 0};
  miss.path = "/v/intro.mp4#t=3";
  rec.record(miss);
  upstream_facts up;
  up.unix_seconds = t0;
  up.site = "learn.example.com";
  up.path = "/v/intro.mp4?sig=1";
  up.content = content_class::video;
  up.bytes = 5000;
  rec.record(up);

  const usage_delta d = rec.take();
  const usage_counts both{2, 1, 1000, 300, 5000, 1};
  CHECK(get(d, h0, dimension::total, "") == both);
  CHECK(get(d, h0, dimension::content, "video") == both);
  CHECK(get(d, h0, dimension::site, "learn.example.com") == both);
  CHECK(get(d, h0, dimension::asset, "learn.example.com/v/intro.mp4") == both);
  CHECK(get(d, h0, dimension::device, "ios/safari") == usage_counts{1, 1, 1000, 0, 0, 0});
  CHECK(get(d, h0, dimension::device, "android/samsung") == usage_counts{1, 0, 0, 300, 0, 0});
  CHECK(get(d, h0, dimension::os_version, "ios 17") == usage_counts{1, 1, 1000, 0, 0, 0});
  CHECK(get(d, h0, dimension::os_version, "android 0") == usage_counts{1, 0, 0, 300, 0, 0});
  CHECK(get(d, h0, dimension::tls, "TLSv1.3").requests == 1);
  CHECK(get(d, h0, dimension::tls, "TLSv1.2").requests == 1);
  CHECK(get(d, h0, dimension::protocol, "h2").hits == 1);
  CHECK(get(d, h0, dimension::protocol, "http/1.1").bytes_from_upstream == 300);
  // Nothing else: no empty buckets, no query in any name.
  CHECK(d.size() == 12);
  for (const auto& [k, c] : d) {
    CHECK(k.name.find('?') == std::string::npos);
    CHECK(k.name.find("secret") == std::string::npos);
  }
  CHECK(rec.take().empty());  // take() resets
}

TEST_CASE("usage recorder: hours, unknown versions and a failed upstream request",
          "[usage][recorder]") {
  recorder rec;
  request_facts r = iphone_hit(10);
  r.dev = device{};  // unknown UA
  r.unix_seconds = t0 + 3600;
  rec.record(r);
  r.unix_seconds = t0;
  r.dev.os_major = 250;  // not believed: counted as version 0
  rec.record(r);
  upstream_facts failed;
  failed.unix_seconds = t0;
  failed.site = "s";
  failed.path = "/x";
  rec.record(failed);
  const auto d = rec.take();
  CHECK(get(d, h0, dimension::total, "").requests == 1);
  CHECK(get(d, h0 + 1, dimension::total, "").requests == 1);
  CHECK(get(d, h0, dimension::device, "other/other").requests == 1);
  CHECK(get(d, h0, dimension::os_version, "other 0").requests == 1);
  CHECK(get(d, h0, dimension::content, "other") == usage_counts{0, 0, 0, 0, 0, 1});
  CHECK(get(d, h0, dimension::asset, "s/x") == usage_counts{0, 0, 0, 0, 0, 1});
  CHECK(get(d, h0, dimension::total, "").upstream_requests == 1);
}

TEST_CASE("usage recorder: distinct assets per window are capped", "[usage][recorder]") {
  recorder rec;
  std::vector<std::string> paths;
  for (std::size_t i = 0; i < max_assets_per_window + 10; ++i)
    paths.push_back("/p/" + std::to_string(i));
  for (const auto& p : paths) {
    request_facts r = iphone_hit(1);
    r.path = p;
    rec.record(r);
  }
  request_facts again = iphone_hit(1);  // a name from before the cap still counts as itself
  again.path = paths[0];
  rec.record(again);
  // Long names are cut like history keys.
  const std::string long_path = "/" + std::string(1000, 'x');
  auto d = rec.take();
  std::size_t assets = 0;
  for (const auto& [k, c] : d)
    if (k.dim == dimension::asset) ++assets;
  CHECK(assets == max_assets_per_window + 1);
  CHECK(get(d, h0, dimension::asset, std::string(other_assets)).requests == 10);
  CHECK(get(d, h0, dimension::asset, "learn.example.com/p/0").requests == 2);
  CHECK(get(d, h0, dimension::total, "").requests == max_assets_per_window + 11);

  request_facts r = iphone_hit(1);  // the next window starts with a fresh budget
  r.path = long_path;
  rec.record(r);
  d = rec.take();
  const std::string cut = ("learn.example.com" + long_path).substr(0, max_name_bytes);
  CHECK(get(d, h0, dimension::asset, cut).requests == 1);
}

TEST_CASE("usage recorder: error answers are not assets", "[usage][recorder]") {
  recorder rec;
  for (int i = 0; i < 3000; ++i) {  // a scanner: 3000 random paths, all 404
    const std::string path = "/probe/" + std::to_string(i);
    request_facts probe = iphone_hit(10);
    probe.from_cache = false;
    probe.status = 404;
    probe.path = path;
    rec.record(probe);
  }
  rec.record(iphone_hit(1000));
  const usage_delta d = rec.take();
  CHECK(get(d, h0, dimension::total, "").requests == 3001);
  CHECK(get(d, h0, dimension::site, "learn.example.com").requests == 3001);
  CHECK(get(d, h0, dimension::device, "ios/safari").requests == 3001);
  CHECK(get(d, h0, dimension::asset, "learn.example.com/v/intro.mp4").requests == 1);
  CHECK(get(d, h0, dimension::asset, std::string(other_assets)).requests == 0);
  std::size_t assets = 0;
  for (const auto& [k, c] : d)
    assets += k.dim == dimension::asset ? 1 : 0;
  CHECK(assets == 1);
}

TEST_CASE("usage recorder: exact totals with concurrent writers and takes", "[usage][recorder]") {
  recorder rec;
  constexpr int threads = 4;
  constexpr int per_thread = 20000;
  std::atomic<bool> done{false};
  usage_delta sum;
  std::thread taker([&] {
    while (!done) {
      for (const auto& [k, c] : rec.take())
        sum[k] += c;
      std::this_thread::yield();
    }
  });
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t)
    workers.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        request_facts r = iphone_hit(static_cast<std::uint64_t>(i % 7));
        r.from_cache = (i % 3) != 0;
        r.unix_seconds = t0 + (i % 2) * 3600;  // two hours
        const std::string path = "/t" + std::to_string(t) + "/" + std::to_string(i % 50);
        r.path = path;
        rec.record(r);
        upstream_facts u;
        u.unix_seconds = r.unix_seconds;
        u.site = r.site;
        u.path = path;
        u.bytes = 2;
        rec.record(u);
      }
    });
  for (auto& w : workers)
    w.join();
  done = true;
  taker.join();
  for (const auto& [k, c] : rec.take())
    sum[k] += c;

  usage_counts expect;
  for (int i = 0; i < per_thread; ++i) {
    const bool hit = (i % 3) != 0;
    expect.requests += threads;
    expect.hits += hit ? threads : 0;
    (hit ? expect.bytes_from_cache : expect.bytes_from_upstream) += threads * (i % 7);
    expect.upstream_bytes += threads * 2;
    expect.upstream_requests += threads;
  }
  usage_counts total = get(sum, h0, dimension::total, "");
  total += get(sum, h0 + 1, dimension::total, "");
  CHECK(total == expect);
  usage_counts site = get(sum, h0, dimension::site, "learn.example.com");
  site += get(sum, h0 + 1, dimension::site, "learn.example.com");
  CHECK(site == expect);
  CHECK(get(sum, h0, dimension::total, "").requests == threads * per_thread / 2);
  std::uint64_t asset_requests = 0;
  for (const auto& [k, c] : sum)
    if (k.dim == dimension::asset) asset_requests += c.requests;
  CHECK(asset_requests == expect.requests);
}

TEST_CASE("usage recorder: a taken delta goes into the history and sums up", "[usage][recorder]") {
  store_test::temp_dir dir("usage_rec");
  lmdb::env_options o;
  o.map_size = std::size_t{1} << 30;
  auto env = lmdb::env::open(dir.path, o).value();
  auto h = history::open(env).value();
  recorder rec;
  for (int flush = 0; flush < 3; ++flush) {
    rec.record(iphone_hit(100));
    REQUIRE_FALSE(h.add(rec.take()));
  }
  auto s = h.summarize(h0, h0).value();
  CHECK(s.total == usage_counts{3, 3, 300, 0, 0, 0});
  CHECK(s.devices["ios/safari"].requests == 3);
  CHECK(s.os_versions["ios 17"].requests == 3);
  CHECK(s.protocols["h2"].requests == 3);
  REQUIRE(s.top_assets.size() == 1);
  CHECK(s.top_assets[0].first == "learn.example.com/v/intro.mp4");
}

TEST_CASE("usage recorder: denials go to the total and their site only", "[usage][recorder]") {
  recorder rec;
  using storecache::access::denial;
  rec.record(denial_facts{t0, "learn.example.com", denial::signature});
  rec.record(denial_facts{t0 + 5, "learn.example.com", denial::signature});
  rec.record(denial_facts{t0, "learn.example.com", denial::upstream});
  rec.record(denial_facts{t0, "", denial::network});  // refused at accept: no site
  rec.record(denial_facts{t0 + 3600, "other.example.com", denial::client_cert});
  rec.record(iphone_hit(100));
  const auto d = rec.take();
  auto denied = [](std::uint64_t n, std::uint64_t c, std::uint64_t s, std::uint64_t u) {
    usage_counts x;
    x.denied = {n, c, s, u};
    return x;
  };
  usage_counts total = denied(1, 0, 2, 1);
  total.requests = 1;
  total.hits = 1;
  total.bytes_from_cache = 100;
  CHECK(get(d, h0, dimension::total, "") == total);
  usage_counts site = total;
  site.denied = {0, 0, 2, 1};
  CHECK(get(d, h0, dimension::site, "learn.example.com") == site);
  CHECK(get(d, h0 + 1, dimension::total, "") == denied(0, 1, 0, 0));
  CHECK(get(d, h0 + 1, dimension::site, "other.example.com") == denied(0, 1, 0, 0));
  CHECK(d.count(bucket_key{h0, dimension::site, ""}) == 0);
  // No other bucket carries a denial.
  for (const auto& [k, c] : d)
    if (k.dim != dimension::total && k.dim != dimension::site) CHECK(c.denied_total() == 0);
  CHECK(rec.take().empty());
}

TEST_CASE("usage recorder: prefetch bodies count as upstream and as prefetch",
          "[usage][recorder]") {
  recorder rec;
  upstream_facts device_fill{.unix_seconds = t0,
                             .site = "learn.example.com",
                             .path = "/v/intro.mp4",
                             .content = content_class::video,
                             .bytes = 300};
  upstream_facts prefetched = device_fill;
  prefetched.path = "/v/next.mp4";
  prefetched.bytes = 5000;
  prefetched.prefetch = true;
  upstream_facts failed = prefetched;  // a prefetch request that got no body
  failed.bytes = 0;
  rec.record(device_fill);
  rec.record(prefetched);
  rec.record(failed);
  const usage_delta d = rec.take();
  usage_counts all{0, 0, 0, 0, 5300, 3};
  all.prefetch_bytes = 5000;
  all.prefetch_requests = 2;
  CHECK(get(d, h0, dimension::total, "") == all);
  CHECK(get(d, h0, dimension::content, "video") == all);
  CHECK(get(d, h0, dimension::site, "learn.example.com") == all);
  CHECK(get(d, h0, dimension::asset, "learn.example.com/v/intro.mp4") ==
        usage_counts{0, 0, 0, 0, 300, 1});
  usage_counts next{0, 0, 0, 0, 5000, 2};
  next.prefetch_bytes = 5000;
  next.prefetch_requests = 2;
  CHECK(get(d, h0, dimension::asset, "learn.example.com/v/next.mp4") == next);
  CHECK(all.device_upstream_bytes() == 300);
  CHECK(all.device_upstream_requests() == 1);
}

TEST_CASE("usage recorder: the prefetch readiness waits for the flush", "[usage][recorder]") {
  recorder rec;
  CHECK_FALSE(rec.take_prefetch(100).has_value());  // never set: nothing to write
  prefetch_state a{.site = "learn.example.com", .source = "videos", .listed = 3, .fresh = 3};
  prefetch_state b{.site = "learn.example.com", .source = "course", .listed = 3, .fresh = 1};
  rec.set_prefetch({a});
  rec.set_prefetch({a, b});  // the latest set wins
  const auto p = rec.take_prefetch(1234);
  REQUIRE(p.has_value());
  CHECK(p->saved_unix == 1234);
  CHECK(p->sources == std::vector<prefetch_state>{a, b});
  CHECK_FALSE(rec.take_prefetch(1235).has_value());  // taken
  rec.set_prefetch({});                              // cleared: an empty set to write
  const auto cleared = rec.take_prefetch(1236);
  REQUIRE(cleared.has_value());
  CHECK(cleared->sources.empty());

  // A set that could not be written goes back, unless a newer one came meanwhile.
  rec.set_prefetch({a});
  auto failed = rec.take_prefetch(1300);
  REQUIRE(failed.has_value());
  rec.untake_prefetch(std::move(*failed));
  auto again = rec.take_prefetch(1305);
  REQUIRE(again.has_value());
  CHECK(again->saved_unix == 1305);
  CHECK(again->sources == std::vector<prefetch_state>{a});
  rec.set_prefetch({b});
  rec.untake_prefetch(std::move(*again));  // older than {b}: dropped
  CHECK(rec.take_prefetch(1310)->sources == std::vector<prefetch_state>{b});
}
