// The store's metadata peek and its pins: a peek is not an access; eviction passes over
// pinned objects (every variant), the pins survive a reopen, an owner's set is replaced whole,
// removed owners go, and a store full of pinned objects refuses what does not fit.
#include "store_test_util.hpp"

#include <vector>

using namespace store_test;

namespace {

store_options tiny(const fs::path& dir) {
  auto o = small_options(dir);
  o.max_size = 2ull << 20;  // about 9 objects of 200 KiB
  return o;
}

// Inserts n objects of 200 KiB named prefix0.. in order, flushing recency after each.
void churn(store& s, const std::string& prefix, int n) {
  for (int i = 0; i < n; ++i) {
    REQUIRE_FALSE(insert(s, prefix + std::to_string(i), make_body(200000, 1000 + i)));
    REQUIRE_FALSE(s.flush_access());
  }
}

bool stored(const store& s, const std::string& key) {
  return s.peek(key).value().has_value();
}

}  // namespace

TEST_CASE("store: peek reads the metadata, opens no body and records no access", "[store]") {
  temp_dir dir("peek");
  auto s = open_store(tiny(dir.path));
  const std::string body = make_body(200000, 7);
  REQUIRE_FALSE(insert(s, "p/old", body));
  REQUIRE_FALSE(insert(s, "p/v", "a", "accept-language=fr"));
  auto m = s.peek("p/old").value();
  REQUIRE(m);
  CHECK(m->body_size == body.size());
  CHECK(m->head.status == 200);
  CHECK_FALSE(s.peek("p/none").value());
  CHECK_FALSE(s.peek("p/v").value());  // the plain entry of a varied key is absent
  CHECK(s.peek("p/v", "accept-language=fr").value());
  CHECK(s.counters().access_pending == 0);

  // Peeked again and again, the oldest object is still the first to go.
  for (int i = 0; i < 12; ++i) {
    REQUIRE(s.peek("p/old").has_value());  // no error, stored or not
    REQUIRE_FALSE(insert(s, "p/" + std::to_string(i), make_body(200000, 100 + i)));
    REQUIRE_FALSE(s.flush_access());
  }
  CHECK_FALSE(stored(s, "p/old"));
  // A lookup is an access: the same churn keeps a looked-up object.
  REQUIRE_FALSE(insert(s, "p/looked", body));
  for (int i = 20; i < 32; ++i) {
    REQUIRE(s.lookup("p/looked").value().status == lookup_status::hit);
    REQUIRE_FALSE(s.flush_access());
    REQUIRE_FALSE(insert(s, "p/" + std::to_string(i), make_body(200000, 100 + i)));
  }
  CHECK(stored(s, "p/looked"));
}

TEST_CASE("store: eviction passes over pinned objects and their variants", "[store]") {
  temp_dir dir("pins");
  const auto opts = tiny(dir.path);
  auto s = open_store(opts);
  REQUIRE_FALSE(insert(s, "c/a", make_body(200000, 1)));
  REQUIRE_FALSE(insert(s, "c/b", make_body(200000, 2), "accept-language=de"));
  REQUIRE_FALSE(insert(s, "c/b", make_body(200000, 3), "accept-language=fr"));
  REQUIRE_FALSE(insert(s, "c/unpinned", make_body(200000, 4)));
  const std::vector<std::string> course{"c/a", "c/b", "c/not-yet-stored"};
  REQUIRE_FALSE(s.set_pins("learn.example/course", course));
  CHECK(s.pinned("c/a"));
  CHECK(s.pinned("c/b"));
  CHECK_FALSE(s.pinned("c/unpinned"));
  CHECK(s.counters().pinned_keys == 3);

  std::uint64_t max_seen = 0;
  for (int i = 0; i < 40; ++i) {
    REQUIRE_FALSE(insert(s, "d/" + std::to_string(i), make_body(200000, 50 + i)));
    REQUIRE_FALSE(s.flush_access());
    max_seen = std::max(max_seen, s.counters().bytes);
  }
  CHECK(max_seen <= opts.max_size);
  CHECK(stored(s, "c/a"));
  CHECK(s.peek("c/b", "accept-language=de").value());
  CHECK(s.peek("c/b", "accept-language=fr").value());
  CHECK_FALSE(stored(s, "c/unpinned"));
  CHECK_FALSE(stored(s, "d/0"));
  CHECK(stored(s, "d/39"));
  // Passed-over objects move to the young end: not walked past once per eviction.
  CHECK(s.counters().pin_skips > 0);
  CHECK(s.counters().pin_skips < 40 * 3);
  auto hit = s.lookup("c/a").value();
  REQUIRE(hit.status == lookup_status::hit);
  CHECK(read_all(hit.body).value() == make_body(200000, 1));
}

TEST_CASE("store: pins survive a reopen; a set is replaced whole; removed owners go", "[store]") {
  temp_dir dir("pins-reopen");
  const auto opts = tiny(dir.path);
  {
    auto s = open_store(opts);
    REQUIRE_FALSE(insert(s, "c/a", make_body(200000, 1)));
    REQUIRE_FALSE(insert(s, "c/b", make_body(200000, 2)));
    const std::vector<std::string> one{"c/a", "c/b"};
    const std::vector<std::string> other{"c/b"};
    REQUIRE_FALSE(s.set_pins("site/one", one));
    REQUIRE_FALSE(s.set_pins("site/other", other));
    s.add_pin("site/one", "c/memory-only");  // not kept: no set_pins after it
  }
  {
    auto s = open_store(opts);
    CHECK(s.pinned("c/a"));
    CHECK(s.pinned("c/b"));
    CHECK_FALSE(s.pinned("c/memory-only"));
    CHECK(s.counters().pinned_keys == 2);
    churn(s, "d/", 30);
    CHECK(stored(s, "c/a"));
    CHECK(stored(s, "c/b"));

    // "one" now lists only c/b: c/a is evictable again; c/b stays pinned by both.
    const std::vector<std::string> now{"c/b"};
    REQUIRE_FALSE(s.set_pins("site/one", now));
    CHECK_FALSE(s.pinned("c/a"));
    // "other" was removed from the config: c/b stays, pinned by "one" alone.
    const std::vector<std::string> owners{"site/one"};
    REQUIRE_FALSE(s.retain_pins(owners));
    CHECK(s.pinned("c/b"));
    churn(s, "e/", 30);
    CHECK_FALSE(stored(s, "c/a"));
    CHECK(stored(s, "c/b"));
    REQUIRE_FALSE(s.set_pins("site/one", {}));
    CHECK_FALSE(s.pinned("c/b"));
    CHECK(s.counters().pinned_keys == 0);
  }
  auto s = open_store(opts);
  CHECK(s.counters().pinned_keys == 0);
}

TEST_CASE("store: an object that does not fit beside the pinned ones is refused", "[store]") {
  temp_dir dir("pins-full");
  auto s = open_store(tiny(dir.path));
  std::vector<std::string> all;
  for (int i = 0; i < 9; ++i) {
    const std::string key = "c/" + std::to_string(i);
    if (insert(s, key, make_body(200000, i))) break;
    all.push_back(key);
  }
  REQUIRE(all.size() >= 8);
  REQUIRE_FALSE(s.set_pins("site/all", all));
  const auto before = s.counters();
  CHECK(insert(s, "d/big", make_body(600000, 77)) == store_errc::too_big);
  for (const auto& k : all)
    CHECK(stored(s, k));
  CHECK(s.counters().objects == before.objects);
  CHECK(s.counters().bytes <= tiny(dir.path).max_size);
  CHECK_FALSE(s.set_pins("", all) == error_code{});  // an owner needs a name
}
