// The usage history on a real LMDB env: key/value codecs, add and summarize, the asset cap,
// pruning, damaged values, and a read-only reader in another process beside a running store.
#include <sys/wait.h>
#include <unistd.h>

#include "store_test_util.hpp"
#include "usage/history.hpp"

using namespace store_test;
using namespace storecache::usage;
namespace lmdb = storecache::cache::lmdb;

namespace {

lmdb::env open_env(const fs::path& p) {
  lmdb::env_options o;
  o.map_size = std::size_t{1} << 30;
  auto e = lmdb::env::open(p, o);
  REQUIRE(e.has_value());
  return std::move(*e);
}

history open_history(lmdb::env& env) {
  auto h = history::open(env);
  REQUIRE(h.has_value());
  return std::move(*h);
}

usage_counts counts(std::uint64_t req, std::uint64_t hits, std::uint64_t from_cache,
                    std::uint64_t from_upstream, std::uint64_t up_bytes = 0,
                    std::uint64_t up_req = 0) {
  return usage_counts{req, hits, from_cache, from_upstream, up_bytes, up_req};
}

const std::uint32_t h0 = 480000;  // an hour in 2024

}  // namespace

TEST_CASE("usage history: key and value codecs", "[usage][history]") {
  const bucket_key k{h0, dimension::asset, "learn.example.com/v/intro.mp4"};
  const std::string e = encode_key(k);
  CHECK(e.size() == 5 + k.name.size());
  CHECK(decode_key(e) == k);
  // Big-endian hours: byte order is time order, across a byte boundary too.
  CHECK(encode_key({0x00FF, dimension::total, ""}) < encode_key({0x0100, dimension::total, ""}));
  CHECK(encode_key({h0, dimension::site, "a"}) < encode_key({h0 + 1, dimension::total, ""}));
  CHECK_FALSE(decode_key("abcd").has_value());                           // too short
  CHECK_FALSE(decode_key(std::string("\0\0\0\1\x08x", 6)).has_value());  // unknown dimension
  CHECK_FALSE(decode_key(std::string("\0\0\0\1\xff", 5)).has_value());   // the asset count key
  CHECK(decode_key(std::string("\0\0\0\1\0", 5)) == bucket_key{1, dimension::total, ""});

  // Long names are cut to 400 bytes, never inside a UTF-8 sequence.
  std::string longname(399, 'a');
  longname += "\xc3\xa9";  // é straddles byte 400
  longname += std::string(200, 'b');
  const auto cut = decode_key(encode_key({h0, dimension::asset, longname}));
  REQUIRE(cut.has_value());
  CHECK(cut->name == std::string(399, 'a'));
  CHECK(encode_key({h0, dimension::asset, std::string(1000, 'x')}).size() == 405);

  const usage_counts c = counts(1, 2, 3, 4, 0x0102030405060708ull, ~0ull);
  const std::string v = encode_counts(c);
  REQUIRE(v.size() == 48);
  CHECK(static_cast<unsigned char>(v[32]) == 0x08);  // little-endian
  CHECK(static_cast<unsigned char>(v[39]) == 0x01);
  CHECK(decode_counts(v) == c);
  CHECK_FALSE(decode_counts(v.substr(0, 47)).has_value());
  CHECK_FALSE(decode_counts(v + "x").has_value());
  CHECK_FALSE(decode_counts("").has_value());
}

TEST_CASE("usage history: add and summarize", "[usage][history]") {
  temp_dir dir("usage_history");
  auto env = open_env(dir.path);
  auto h = open_history(env);

  auto empty = h.summarize(h0, h0 + 23).value();
  CHECK(empty.hours.size() == 24);
  CHECK(empty.total == usage_counts{});
  CHECK_FALSE(empty.peak_upstream_hour().has_value());
  CHECK(empty.hit_ratio() == 0.0);
  CHECK(empty.byte_hit_ratio() == 0.0);
  CHECK(empty.wan_bytes_saved() == 0);
  CHECK_FALSE(h.span().value().has_value());

  usage_delta d;
  d[{h0, dimension::total, ""}] = counts(10, 6, 6000, 4000, 5000, 4);
  d[{h0 + 2, dimension::total, ""}] = counts(2, 2, 100, 0);
  d[{h0 + 5, dimension::total, ""}] = counts(1, 0, 0, 50, 7000, 1);  // outside the summary
  d[{h0, dimension::content, "video"}] = counts(4, 3, 5000, 1000, 1200, 1);
  d[{h0, dimension::content, "web"}] = counts(6, 3, 1000, 3000, 3800, 3);
  d[{h0, dimension::device, "ios/safari"}] = counts(7, 4, 1, 2);
  d[{h0 + 2, dimension::device, "ios/safari"}] = counts(1, 1, 0, 0);
  d[{h0, dimension::device, "android/chrome"}] = counts(3, 2, 0, 0);
  d[{h0, dimension::os_version, "ios 17"}] = counts(7, 4, 0, 0);
  d[{h0, dimension::tls, "TLSv1.3"}] = counts(10, 6, 0, 0);
  d[{h0, dimension::protocol, "h2"}] = counts(9, 6, 0, 0);
  d[{h0, dimension::protocol, "http/1.1"}] = counts(1, 0, 0, 0);
  d[{h0, dimension::site, "learn.example.com"}] = counts(10, 6, 6000, 4000, 5000, 4);
  d[{h0, dimension::asset, "s/b"}] = counts(3, 0, 0, 0, 900, 1);
  d[{h0, dimension::asset, "s/a"}] = counts(5, 0, 0, 0, 900, 1);
  d[{h0, dimension::asset, "s/c"}] = counts(1, 0, 0, 0, 3000, 1);
  d[{h0 + 2, dimension::asset, "s/c"}] = counts(1, 0, 0, 0, 100, 1);
  d[{h0, dimension::asset, "s/z"}] = counts(5, 0, 0, 0, 900, 1);
  d[{h0, dimension::asset, "s/small"}] = counts(9, 9, 0, 0, 0, 0);
  REQUIRE_FALSE(h.add(d));
  REQUIRE_FALSE(h.add({{{h0, dimension::total, ""}, counts(1, 1, 10, 0)}}));  // sums up
  REQUIRE_FALSE(h.add({}));

  auto s = h.summarize(h0, h0 + 3, 3).value();
  CHECK(s.from_hour == h0);
  CHECK(s.to_hour == h0 + 3);
  REQUIRE(s.hours.size() == 4);
  CHECK(s.hours[0] == counts(11, 7, 6010, 4000, 5000, 4));
  CHECK(s.hours[1] == usage_counts{});
  CHECK(s.hours[2] == counts(2, 2, 100, 0));
  CHECK(s.total == counts(13, 9, 6110, 4000, 5000, 4));
  CHECK(s.total.bytes_served() == 10110);
  CHECK(s.hit_ratio() == Approx(9.0 / 13));
  CHECK(s.byte_hit_ratio() == Approx(6110.0 / 10110));
  CHECK(s.wan_bytes_saved() == 5110);
  CHECK(s.peak_upstream_hour() == std::optional<std::uint32_t>(h0));
  CHECK(s.content[static_cast<int>(content_class::video)] == counts(4, 3, 5000, 1000, 1200, 1));
  CHECK(s.content[static_cast<int>(content_class::web)] == counts(6, 3, 1000, 3000, 3800, 3));
  CHECK(s.content[static_cast<int>(content_class::audio)] == usage_counts{});
  CHECK(s.devices.size() == 2);
  CHECK(s.devices["ios/safari"] == counts(8, 5, 1, 2));
  CHECK(s.os_versions["ios 17"].requests == 7);
  CHECK(s.tls["TLSv1.3"].hits == 6);
  CHECK(s.protocols.size() == 2);
  CHECK(s.sites["learn.example.com"].upstream_bytes == 5000);
  // upstream bytes desc, then requests desc, then name; top 3 of 5.
  REQUIRE(s.top_assets.size() == 3);
  CHECK(s.top_assets[0].first == "s/c");
  CHECK(s.top_assets[0].second.upstream_bytes == 3100);  // summed over hours
  CHECK(s.top_assets[1].first == "s/a");
  CHECK(s.top_assets[2].first == "s/z");

  CHECK(h.summarize(h0, h0 + 3, 100).value().top_assets.size() == 5);
  CHECK(h.summarize(h0, h0 + 3, 0).value().top_assets.empty());
  // One-hour period; and the hour after h0+2 only.
  CHECK(h.summarize(h0 + 2, h0 + 2).value().total == counts(2, 2, 100, 0));
  CHECK(h.summarize(h0 + 3, h0 + 4).value().total == usage_counts{});
  // Later hours: the peak moves.
  CHECK(h.summarize(h0, h0 + 5).value().peak_upstream_hour() ==
        std::optional<std::uint32_t>(h0 + 5));

  const auto sp = h.span().value();
  REQUIRE(sp.has_value());
  CHECK(sp->first == h0);
  CHECK(sp->second == h0 + 5);

  CHECK(h.summarize(h0 + 1, h0).error() == boost::system::errc::invalid_argument);
  CHECK(h.summarize(0, 0xFFFFFFFFu).error() == boost::system::errc::invalid_argument);
}

TEST_CASE("usage history: wan_bytes_saved never goes below zero", "[usage][history]") {
  usage_summary s;
  s.total = counts(1, 0, 0, 100, 5000, 1);  // fills larger than what was served
  CHECK(s.wan_bytes_saved() == 0);
  s.total = counts(2, 1, 100, 100, 150, 1);
  CHECK(s.wan_bytes_saved() == 50);
}

TEST_CASE("usage history: distinct assets per hour are capped", "[usage][history]") {
  temp_dir dir("usage_cap");
  auto env = open_env(dir.path);
  auto h = open_history(env);
  auto asset = [](std::uint32_t hour, std::size_t i) {
    return bucket_key{hour, dimension::asset, "s/a" + std::to_string(i)};
  };
  // Two flushes: 600 names, then 600 more of which 200 are repeats.
  usage_delta first, second;
  for (std::size_t i = 0; i < 600; ++i)
    first[asset(h0, i)] = counts(1, 0, 0, 0, 10, 1);
  for (std::size_t i = 400; i < 1000 + 5 + 100; ++i)
    second[asset(h0, i)] = counts(1, 0, 0, 0, 10, 1);
  second[{h0, dimension::asset, std::string(other_assets)}] = counts(1, 0, 0, 0, 1, 1);
  second[asset(h0 + 1, 5000)] = counts(1, 0, 0, 0, 10, 1);  // another hour: its own budget
  REQUIRE_FALSE(h.add(first));
  REQUIRE_FALSE(h.add(second));
  // A name stored before the cap was reached keeps counting under its own name.
  REQUIRE_FALSE(h.add({{asset(h0, 3), counts(1, 0, 0, 0, 10, 1)}}));
  // A new name now goes to (other assets).
  REQUIRE_FALSE(h.add({{asset(h0, 9999), counts(1, 0, 0, 0, 10, 1)}}));

  auto s = h.summarize(h0, h0, 100000).value();
  std::size_t named = 0;
  usage_counts other;
  for (const auto& [name, c] : s.top_assets) {
    if (name == other_assets)
      other = c;
    else
      ++named;
  }
  CHECK(named == max_assets_per_hour);
  // 105 of the second flush's 505 new names and 9999 overflowed, plus the explicit bucket.
  CHECK(other.requests == 105 + 1 + 1);
  CHECK(other.upstream_bytes == 106 * 10 + 1);
  const auto a3 = std::find_if(s.top_assets.begin(), s.top_assets.end(),
                               [](const auto& p) { return p.first == "s/a3"; });
  REQUIRE(a3 != s.top_assets.end());
  CHECK(a3->second.requests == 2);
  CHECK(h.summarize(h0 + 1, h0 + 1, 10).value().top_assets.size() == 1);
  // (other assets) sorts by its bytes like any asset: here it is first.
  CHECK(s.top_assets.front().first == other_assets);
}

TEST_CASE("usage history: prune drops old hours only", "[usage][history]") {
  temp_dir dir("usage_prune");
  auto env = open_env(dir.path);
  auto h = open_history(env);
  usage_delta d;
  for (std::uint32_t i = 0; i < 5; ++i) {
    d[{h0 + i, dimension::total, ""}] = counts(1, 0, 0, 1);
    d[{h0 + i, dimension::site, "s"}] = counts(1, 0, 0, 1);
    d[{h0 + i, dimension::asset, "s/x"}] = counts(1, 0, 0, 1);  // + the hour's asset count key
  }
  REQUIRE_FALSE(h.add(d));
  CHECK(h.prune(h0).value() == 0);
  CHECK(h.prune(h0 + 2).value() == 2 * 4);
  CHECK(h.span().value()->first == h0 + 2);
  CHECK(h.summarize(h0, h0 + 4).value().total.requests == 3);
  CHECK(h.prune(h0 + 100).value() == 3 * 4);
  CHECK_FALSE(h.span().value().has_value());
  CHECK(h.prune(h0 + 100).value() == 0);
}

TEST_CASE("usage history: damaged values are skipped and replaced", "[usage][history]") {
  temp_dir dir("usage_damaged");
  auto env = open_env(dir.path);
  auto h = open_history(env);
  auto db = env.open_db("usage").value();
  {
    auto w = env.begin_write().value();
    REQUIRE_FALSE(w.put(db, encode_key({h0, dimension::total, ""}), "short"));
    REQUIRE_FALSE(
        w.put(db, encode_key({h0, dimension::site, "s"}), encode_counts(counts(2, 1, 1, 1))));
    REQUIRE_FALSE(w.put(db, std::string("\0\0", 2), encode_counts(counts(9, 9, 9, 9))));
    REQUIRE_FALSE(w.commit());
  }
  auto s = h.summarize(h0, h0).value();
  CHECK(s.total == usage_counts{});
  CHECK(h.prune(h0).value() == 1);  // the key too short to carry an hour goes first
  CHECK(s.sites["s"] == counts(2, 1, 1, 1));
  REQUIRE_FALSE(h.add({{{h0, dimension::total, ""}, counts(1, 0, 0, 5)}}));
  CHECK(h.summarize(h0, h0).value().total == counts(1, 0, 0, 5));
}

// The daemon's layout: the store's env at <dir>/index, the store holding <dir>/lock. A second
// process (storecache report) opens the history read-only while the store stays open and writes.
TEST_CASE("usage history: read-only beside a running store", "[usage][history]") {
  temp_dir dir("usage_ro");
  // No cache directory at all yet, then an index without a usage database.
  CHECK_FALSE(history::open_read_only(dir.path / "none").has_value());
  auto st = open_store(small_options(dir.path));
  CHECK(history::open_read_only(dir.path).error() == lmdb::errc::not_found);

  auto h = open_history(st.env());
  REQUIRE_FALSE(h.add({{{h0, dimension::total, ""}, counts(3, 2, 200, 100, 100, 1)}}));
  REQUIRE_FALSE(insert(st, "https://a/x", make_body(1000, 1)));  // the store keeps working

  int to_parent[2], to_child[2];
  REQUIRE(::pipe(to_parent) == 0);
  REQUIRE(::pipe(to_child) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    auto step = [&]() -> int {
      char c = 0;
      auto ro = history::open_read_only(dir.path);
      if (!ro) return 1;
      auto s = ro->summarize(h0, h0 + 1);
      if (!s || s->total.requests != 3 || s->total.bytes_from_cache != 200) return 2;
      if (::write(to_parent[1], "r", 1) != 1 || ::read(to_child[0], &c, 1) != 1) return 3;
      s = ro->summarize(h0, h0 + 1);  // sees the daemon's later flush
      if (!s || s->total.requests != 4 || s->hours[1].requests != 1) return 4;
      if (!ro->add({{{h0, dimension::total, ""}, counts(1, 0, 0, 0)}})) return 5;  // no writes
      if (ro->prune(h0 + 10).has_value()) return 6;
      return 0;
    };
    ::_exit(step());
  }
  char c = 0;
  REQUIRE(::read(to_parent[0], &c, 1) == 1);
  REQUIRE_FALSE(h.add({{{h0 + 1, dimension::total, ""}, counts(1, 0, 0, 0)}}));
  REQUIRE(::write(to_child[1], "w", 1) == 1);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  for (int fd : {to_child[0], to_child[1], to_parent[0], to_parent[1]})
    ::close(fd);
  CHECK(h.summarize(h0, h0 + 1).value().total.requests == 4);
}

namespace {

usage_counts with_denials(usage_counts c, std::uint64_t network, std::uint64_t client_cert,
                          std::uint64_t signature, std::uint64_t upstream) {
  c.denied = {network, client_cert, signature, upstream};
  return c;
}

// A value as every daemon before format 2 wrote it: six uint64 little-endian, 48 bytes.
std::string format1_value(std::initializer_list<std::uint64_t> fields) {
  std::string out;
  for (std::uint64_t v : fields)
    for (int i = 0; i < 8; ++i)
      out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  return out;
}

}  // namespace

TEST_CASE("usage history: denial counts in the value codec", "[usage][history]") {
  // No denial: format 1, byte for byte what older daemons wrote (and can still read).
  const usage_counts plain = counts(1, 2, 3, 4, 5, 6);
  CHECK(encode_counts(plain) == format1_value({1, 2, 3, 4, 5, 6}));
  // Any denial: format 2, 80 bytes, the reasons in access::denial's order after format 1.
  const usage_counts d = with_denials(plain, 7, 0, 0x0102030405060708ull, ~0ull);
  const std::string v = encode_counts(d);
  REQUIRE(v.size() == 80);
  CHECK(v.substr(0, 48) == format1_value({1, 2, 3, 4, 5, 6}));
  CHECK(static_cast<unsigned char>(v[48]) == 7);     // network
  CHECK(static_cast<unsigned char>(v[64]) == 0x08);  // signature, little-endian
  CHECK(static_cast<unsigned char>(v[71]) == 0x01);
  CHECK(decode_counts(v) == d);
  CHECK(decode_counts(v)->denied_total() == 6 + 0x0102030405060708ull);  // wraps like any sum
  CHECK(decode_counts(encode_counts(with_denials({}, 0, 0, 0, 1))) == with_denials({}, 0, 0, 0, 1));
  // Sizes between or beyond the two formats are refused, never misread.
  CHECK_FALSE(decode_counts(v.substr(0, 79)).has_value());
  CHECK_FALSE(decode_counts(v.substr(0, 56)).has_value());
  CHECK_FALSE(decode_counts(v + "x").has_value());
  CHECK_FALSE(decode_counts(v + std::string(8, '\0')).has_value());
}

TEST_CASE("usage history: an old-format record reads back with no denials", "[usage][history]") {
  temp_dir dir("usage_format1");
  auto env = open_env(dir.path);
  auto h = open_history(env);
  auto db = env.open_db("usage").value();
  {
    // What a daemon before format 2 left in the database.
    auto w = env.begin_write().value();
    REQUIRE_FALSE(w.put(db, encode_key({h0, dimension::total, ""}),
                        format1_value({10, 4, 400, 600, 700, 3})));
    REQUIRE_FALSE(w.put(db, encode_key({h0, dimension::site, "learn.example.com"}),
                        format1_value({10, 4, 400, 600, 700, 3})));
    REQUIRE_FALSE(w.commit());
  }
  auto s = h.summarize(h0, h0).value();
  CHECK(s.total == counts(10, 4, 400, 600, 700, 3));
  CHECK(s.total.denied_total() == 0);
  CHECK(s.sites["learn.example.com"] == counts(10, 4, 400, 600, 700, 3));

  // Denials added on top of an old record: the sum is stored in format 2 and read back whole.
  REQUIRE_FALSE(
      h.add({{{h0, dimension::total, ""}, with_denials({}, 1, 0, 2, 0)},
             {{h0, dimension::site, "learn.example.com"}, with_denials({}, 0, 0, 2, 0)}}));
  s = h.summarize(h0, h0).value();
  CHECK(s.total == with_denials(counts(10, 4, 400, 600, 700, 3), 1, 0, 2, 0));
  CHECK(s.sites["learn.example.com"] == with_denials(counts(10, 4, 400, 600, 700, 3), 0, 0, 2, 0));
  auto r = env.begin_read().value();
  CHECK(r.get(db, encode_key({h0, dimension::total, ""}))->size() == 80);
}

TEST_CASE("usage history: denials sum over hours and sites", "[usage][history]") {
  temp_dir dir("usage_denials");
  auto env = open_env(dir.path);
  auto h = open_history(env);
  usage_delta d;
  // Refusals before any site was known are in the total only.
  d[{h0, dimension::total, ""}] = with_denials(counts(5, 1, 10, 20), 3, 1, 2, 1);
  d[{h0, dimension::site, "a.example"}] = with_denials(counts(5, 1, 10, 20), 0, 1, 2, 0);
  d[{h0 + 1, dimension::total, ""}] = with_denials({}, 0, 0, 4, 1);
  d[{h0 + 1, dimension::site, "b.example"}] = with_denials({}, 0, 0, 4, 1);
  REQUIRE_FALSE(h.add(d));
  REQUIRE_FALSE(h.add({{{h0 + 1, dimension::total, ""}, with_denials({}, 0, 0, 1, 0)},
                       {{h0 + 1, dimension::site, "b.example"}, with_denials({}, 0, 0, 1, 0)}}));
  auto s = h.summarize(h0, h0 + 1).value();
  CHECK(s.total == with_denials(counts(5, 1, 10, 20), 3, 1, 7, 2));
  CHECK(s.total.denied_total() == 13);
  CHECK(s.hours[0].denied == std::array<std::uint64_t, 4>{3, 1, 2, 1});
  CHECK(s.hours[1].denied == std::array<std::uint64_t, 4>{0, 0, 5, 1});
  CHECK(s.sites["a.example"].denied == std::array<std::uint64_t, 4>{0, 1, 2, 0});
  CHECK(s.sites["b.example"] == with_denials({}, 0, 0, 5, 1));
  CHECK(s.sites["b.example"].requests == 0);
}

namespace {

usage_counts with_prefetch(usage_counts c, std::uint64_t bytes, std::uint64_t requests) {
  c.prefetch_bytes = bytes;
  c.prefetch_requests = requests;
  return c;
}

prefetch_state source_state(std::string source, std::uint64_t listed, std::uint64_t fresh) {
  return prefetch_state{.site = "learn.example.com",
                        .source = std::move(source),
                        .path = "/lists/all.txt",
                        .kind = "url_list",
                        .listed = listed,
                        .fresh = fresh,
                        .missing = listed - fresh,
                        .failed = 0,
                        .bytes = 123456789,
                        .pinned_objects = fresh,
                        .pinned_bytes = 100000,
                        .unpinned_objects = 1,
                        .unpinned_bytes = 23456789,
                        .last_error = "",
                        .last_run_end = 1733300000,
                        .next_run = 1733386400};
}

}  // namespace

TEST_CASE("usage history: prefetch counts in the value codec (format 3)", "[usage][history]") {
  // Prefetch counted: format 3, 96 bytes: format 2 (denials, zero or not), then the prefetch
  // bytes and requests.
  const usage_counts p = with_prefetch(counts(1, 2, 3, 4, 5000, 6), 4000, 5);
  const std::string v = encode_counts(p);
  REQUIRE(v.size() == 96);
  CHECK(v.substr(0, 48) == format1_value({1, 2, 3, 4, 5000, 6}));
  CHECK(v.substr(48, 32) == std::string(32, '\0'));  // no denials
  CHECK(v.substr(80) == format1_value({4000, 5}));
  CHECK(decode_counts(v) == p);
  const usage_counts pd = with_denials(p, 1, 2, 3, 4);
  CHECK(decode_counts(encode_counts(pd)) == pd);
  CHECK(encode_counts(pd).size() == 96);
  CHECK(decode_counts(encode_counts(with_prefetch({}, 0, 1))) == with_prefetch({}, 0, 1));
  // No prefetch: the older formats, unchanged.
  CHECK(encode_counts(counts(1, 2, 3, 4, 5, 6)).size() == 48);
  CHECK(encode_counts(with_denials({}, 1, 0, 0, 0)).size() == 80);
  // Other sizes are still refused.
  CHECK_FALSE(decode_counts(v.substr(0, 95)).has_value());
  CHECK_FALSE(decode_counts(v.substr(0, 88)).has_value());
  CHECK_FALSE(decode_counts(v + "x").has_value());
  // The split: device-driven is what prefetch did not fetch.
  CHECK(p.device_upstream_bytes() == 1000);
  CHECK(p.device_upstream_requests() == 1);
  CHECK(with_prefetch(counts(0, 0, 0, 0, 10, 1), 20, 2).device_upstream_bytes() == 0);
}

TEST_CASE("usage history: old records read with no prefetch, and sum with new ones",
          "[usage][history]") {
  temp_dir dir("usage_format3");
  auto env = open_env(dir.path);
  auto h = open_history(env);
  auto db = env.open_db("usage").value();
  {
    // What daemons before format 3 left: a format 1 and a format 2 value.
    auto w = env.begin_write().value();
    REQUIRE_FALSE(w.put(db, encode_key({h0, dimension::total, ""}),
                        format1_value({10, 4, 400, 600, 700, 3})));
    REQUIRE_FALSE(w.put(db, encode_key({h0, dimension::site, "learn.example.com"}),
                        format1_value({10, 4, 400, 600, 700, 3, 0, 0, 1, 0})));
    REQUIRE_FALSE(w.commit());
  }
  auto s = h.summarize(h0, h0).value();
  CHECK(s.total == counts(10, 4, 400, 600, 700, 3));
  CHECK(s.total.prefetch_bytes == 0);
  CHECK(s.total.prefetch_requests == 0);
  CHECK(s.sites["learn.example.com"] == with_denials(counts(10, 4, 400, 600, 700, 3), 0, 0, 1, 0));

  // Prefetch added on top: stored in format 3, read back whole, old fields kept.
  const usage_counts pre = with_prefetch(counts(0, 0, 0, 0, 5000, 2), 5000, 2);
  REQUIRE_FALSE(
      h.add({{{h0, dimension::total, ""}, pre},
             {{h0, dimension::site, "learn.example.com"}, pre},
             {{h0 + 1, dimension::total, ""}, with_prefetch(counts(0, 0, 0, 0, 1, 1), 1, 1)}}));
  s = h.summarize(h0, h0 + 1).value();
  CHECK(s.total == with_prefetch(counts(10, 4, 400, 600, 5701, 6), 5001, 3));
  CHECK(s.hours[0] == with_prefetch(counts(10, 4, 400, 600, 5700, 5), 5000, 2));
  CHECK(s.sites["learn.example.com"] ==
        with_prefetch(with_denials(counts(10, 4, 400, 600, 5700, 5), 0, 0, 1, 0), 5000, 2));
  auto r = env.begin_read().value();
  CHECK(r.get(db, encode_key({h0, dimension::total, ""}))->size() == 96);
}

TEST_CASE("usage history: the prefetch readiness codec", "[usage][history]") {
  prefetch_snapshot p;
  p.saved_unix = 1733300123;
  p.sources.push_back(source_state("videos", 40, 40));
  p.sources.push_back(source_state("course \xc3\xa9", 10, 7));
  p.sources.back().failed = 2;
  p.sources.back().last_error = "HTTP 404 for /a\nb";
  p.sources.back().last_run_end = 0;
  p.sources.back().next_run = -1;  // any int64 round-trips
  CHECK(p.ready_count() == 1);
  CHECK(p.sources[0].ready());
  CHECK_FALSE(p.sources[1].ready());
  CHECK_FALSE(prefetch_state{}.ready());  // nothing listed: not ready

  const std::string v = encode_prefetch(p);
  CHECK(decode_prefetch(v) == p);
  CHECK(decode_prefetch(encode_prefetch({})) == prefetch_snapshot{});
  // Every truncation is refused, and so is trailing data or another version.
  for (std::size_t n = 0; n < v.size(); ++n)
    CHECK_FALSE(decode_prefetch(v.substr(0, n)).has_value());
  CHECK_FALSE(decode_prefetch(v + "x").has_value());
  std::string other = v;
  other[0] = 2;
  CHECK_FALSE(decode_prefetch(other).has_value());
  // A count the bytes cannot hold is refused before anything is allocated.
  std::string huge = v.substr(0, 9) + std::string("\xff\x0f\0\0", 4);
  CHECK_FALSE(decode_prefetch(huge).has_value());

  // Long text is cut on a UTF-8 boundary.
  prefetch_snapshot longp;
  longp.sources.push_back(source_state("s", 1, 1));
  longp.sources[0].last_error = std::string(max_prefetch_text_bytes - 1, 'e') + "\xc3\xa9tc";
  const auto back = decode_prefetch(encode_prefetch(longp));
  REQUIRE(back.has_value());
  CHECK(back->sources[0].last_error == std::string(max_prefetch_text_bytes - 1, 'e'));
}

TEST_CASE("usage history: the prefetch readiness is stored, replaced and cleared",
          "[usage][history]") {
  temp_dir dir("usage_prefetch");
  auto env = open_env(dir.path);
  auto h = open_history(env);
  CHECK(h.prefetch().value() == prefetch_snapshot{});
  CHECK(h.summarize(h0, h0).value().prefetch == prefetch_snapshot{});

  prefetch_snapshot p;
  p.saved_unix = 1733300123;
  p.sources = {source_state("a", 5, 5), source_state("b", 5, 1)};
  // Alone (no counts in the delta), and with counts in the same transaction.
  REQUIRE_FALSE(h.add({}, p));
  CHECK(h.prefetch().value() == p);
  CHECK_FALSE(h.span().value().has_value());  // not a bucket: no hour is stored
  p.sources = {source_state("c", 2, 2)};
  REQUIRE_FALSE(h.add({{{h0, dimension::total, ""}, counts(1, 1, 10, 0)}}, p));
  CHECK(h.prefetch().value() == p);
  auto s = h.summarize(h0, h0).value();
  CHECK(s.prefetch == p);
  CHECK(s.total == counts(1, 1, 10, 0));
  // Adding counts without a set leaves it; pruning every hour leaves it.
  REQUIRE_FALSE(h.add({{{h0, dimension::total, ""}, counts(1, 1, 10, 0)}}));
  CHECK(h.prefetch().value() == p);
  CHECK(h.prune(h0 + 10).value() == 1);
  CHECK(h.prefetch().value() == p);
  CHECK(h.span().value() == std::nullopt);

  // A damaged value reads as none.
  {
    auto pdb = env.open_db("usage_prefetch").value();
    auto w = env.begin_write().value();
    REQUIRE_FALSE(w.put(pdb, "sources", "\x01garbage"));
    REQUIRE_FALSE(w.commit());
  }
  CHECK(h.prefetch().value() == prefetch_snapshot{});
  REQUIRE_FALSE(h.add({}, p));
  CHECK(h.prefetch().value() == p);

  // An empty set clears it (twice: clearing nothing is no error).
  REQUIRE_FALSE(h.add({}, prefetch_snapshot{.saved_unix = 5, .sources = {}}));
  CHECK(h.prefetch().value() == prefetch_snapshot{});
  REQUIRE_FALSE(h.add({}, prefetch_snapshot{}));
  CHECK(h.prefetch().value() == prefetch_snapshot{});
}

TEST_CASE("usage history: a read-only reader sees the prefetch readiness", "[usage][history]") {
  temp_dir dir("usage_prefetch_ro");
  prefetch_snapshot p;
  p.saved_unix = 1733300123;
  p.sources = {source_state("a", 5, 5)};
  {
    fs::create_directories(dir.path / "index");
    auto env = open_env(dir.path / "index");
    auto h = open_history(env);
    REQUIRE_FALSE(h.add({{{h0, dimension::total, ""}, counts(1, 1, 10, 0)}}, p));
  }
  auto ro = history::open_read_only(dir.path);
  REQUIRE(ro.has_value());
  CHECK(ro->prefetch().value() == p);
  CHECK(ro->summarize(h0, h0).value().prefetch == p);
}

TEST_CASE("usage history: a read-only reader of an env without prefetch readiness",
          "[usage][history]") {
  temp_dir dir("usage_prefetch_old");
  {
    // What a daemon before the prefetch readiness created: the "usage" database alone.
    fs::create_directories(dir.path / "index");
    auto env = open_env(dir.path / "index");
    auto db = env.open_db("usage").value();
    auto w = env.begin_write().value();
    REQUIRE_FALSE(
        w.put(db, encode_key({h0, dimension::total, ""}), format1_value({1, 1, 10, 0, 0, 0})));
    REQUIRE_FALSE(w.commit());
  }
  auto ro = history::open_read_only(dir.path);
  REQUIRE(ro.has_value());
  CHECK(ro->prefetch().value() == prefetch_snapshot{});
  auto s = ro->summarize(h0, h0).value();
  CHECK(s.total == counts(1, 1, 10, 0));
  CHECK(s.prefetch.sources.empty());
}
