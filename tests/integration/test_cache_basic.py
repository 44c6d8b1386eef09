#!/usr/bin/env python3
"""The HTTP cache, one behaviour at a time (RFC 9111 as a shared cache, site policy).

Each test uses its own URL, so the shared daemon's stored objects never meet; the origin's
request log (cleared before each test) says what reached the origin."""

import json
import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import harness  # noqa: E402
from origin import gen_bytes  # noqa: E402

CACHE = {
    "default_ttl": "0s",
    "rule": [
        {"path": "/gen/forced-*", "ttl": "1h"},
        {"path": "/gen/bypass-*", "bypass": True},
    ],
}


def lower_headers(entry):
    """An origin log entry's request headers as [name lower-case, value]."""
    return [[k.lower(), v] for k, v in entry["headers"]]


def q(**params):
    return urllib.parse.urlencode(params)


class CacheBasicTest(harness.StackTest):
    stack_args = {"site_extra": {"cache": CACHE}}

    def tearDown(self):
        self.assertHealthy()

    def origin_hits(self, name):
        return self.stack.origin.count(f"/gen/{name}")

    # --- miss, hit, HEAD ---

    def check_miss_then_hit(self, name, http2):
        path = f"/gen/{name}?" + q(size=5000, cc="max-age=300")
        body = gen_bytes(name, 5000)
        r1 = self.get(path, http2=http2)
        self.assertEqual((r1.status, r1.body), (200, body), r1)
        self.assertEqual(r1.http_version, "2" if http2 else "1.1")
        cs1 = self.cs(r1)
        self.assertNotIn("hit", cs1, r1.headers)
        self.assertEqual(cs1.get("fwd"), "uri-miss", r1.headers)
        self.assertIn("stored", cs1, r1.headers)
        self.assertEqual(self.origin_hits(name), 1)

        r2 = self.get(path, http2=http2)
        self.assertEqual((r2.status, r2.body), (200, body), r2)
        self.assertEqual(self.origin_hits(name), 1, "a fresh stored response went upstream")
        cs2 = self.cs(r2)
        self.assertIs(cs2.get("hit"), True, r2.headers)
        self.assertNotIn("fwd", cs2, r2.headers)
        age = r2.header("age")
        self.assertIsNotNone(age, r2.headers)
        self.assertTrue(age.isdigit() and int(age) <= 5, age)
        self.assertEqual(r2.header("content-length"), "5000")

    def test_age_from_upstream_is_kept_on_a_miss(self):
        # RFC 9111 §4.2.3, §5.1: a response two hours old upstream (Age: 7200, max-age=3600)
        # is stored stale, and the device is told its age on the miss too, not "Age: 0".
        name = "age-upstream"
        path = f"/gen/{name}?" + q(size=500, cc="max-age=3600", header="Age:7200")
        for http2 in (False, True):
            r = self.get(path, http2=http2)
            self.assertEqual(r.status, 200, r)
            self.assertGreaterEqual(int(r.header("age")), 7200, r.headers)
            self.assertLess(int(r.header("age")), 7200 + 30, r.headers)

    def test_miss_then_hit_h1(self):
        self.check_miss_then_hit("basic-h1", http2=False)

    def test_miss_then_hit_h2(self):
        self.check_miss_then_hit("basic-h2", http2=True)

    def test_h1_fill_h2_hit(self):
        path = "/gen/basic-mixed?" + q(size=70000, cc="max-age=300")
        self.get(path)
        r = self.get(path, http2=True)
        self.assertEqual((r.status, r.body), (200, gen_bytes("basic-mixed", 70000)))
        self.assertIs(self.cs(r).get("hit"), True, r.headers)
        self.assertEqual(self.origin_hits("basic-mixed"), 1)

    def test_head_answered_from_stored_get(self):
        path = "/gen/basic-head?" + q(size=12345, cc="max-age=300", etag="h1")
        self.get(path)
        for http2 in (False, True):
            r = self.get(path, method="HEAD", http2=http2)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.header("content-length"), "12345", r.headers)
            self.assertEqual(r.header("etag"), '"h1"', r.headers)
            self.assertIs(self.cs(r).get("hit"), True, r.headers)
        self.assertEqual([x["method"] for x in self.stack.origin.requests("/gen/basic-head")],
                         ["GET"])

    # --- expiry and revalidation ---

    def test_expiry_revalidates_with_if_none_match_and_304_refreshes(self):
        name = "basic-reval"
        path = f"/gen/{name}?" + q(size=3000, cc="max-age=1", etag="v1")
        before = self.metric("storecache_revalidations_total", outcome="not_modified")
        # Stored already stale: the upstream says the response is 2 s old (Age), max-age is 1.
        self.stack.origin.program(f"/gen/{name}", header="Age:2")
        self.get(path)
        self.stack.origin.program(f"/gen/{name}", header="X-Age-Gone:1")  # replaces the Age
        r = self.get(path)
        self.assertEqual((r.status, r.body), (200, gen_bytes(name, 3000)), r)
        log = self.stack.origin.requests(f"/gen/{name}")
        self.assertEqual(len(log), 2, "a stale response must be revalidated upstream")
        hdrs = {k.lower(): v for k, v in log[1]["headers"]}
        self.assertEqual(hdrs.get("if-none-match"), '"v1"', log[1]["headers"])
        # RFC 9211 §2.2: forwarded because stale, and the origin's answer was 304.
        cs = self.cs(r)
        self.assertEqual((cs.get("fwd"), cs.get("fwd-status")), ("stale", "304"),
                         r.header("cache-status"))
        self.assertNotIn("hit", cs, "a revalidated response was forwarded: not a hit "
                         f"(RFC 9211 §2.1): {r.header('cache-status')}")
        self.assertEqual(
            self.metric("storecache_revalidations_total", outcome="not_modified") - before, 1)
        # the 304 refreshed the stored head: fresh again, no further upstream request
        r3 = self.get(path)
        self.assertIs(self.cs(r3).get("hit"), True, r3.headers)
        self.assertEqual(self.origin_hits(name), 2)

    def test_expiry_revalidation_with_new_content_stores_it(self):
        name = "basic-reval-new"
        path = f"/gen/{name}?" + q(size=3000, cc="max-age=1")
        # the ETag comes from a program (not the query), so the entity can change under the URL
        self.stack.origin.program(f"/gen/{name}", etag="a", header="Age:2")  # stored stale
        self.get(path)
        self.stack.origin.reset()
        self.stack.origin.program(f"/gen/{name}", etag="b")
        r = self.get(path)
        self.assertEqual((r.status, r.body), (200, gen_bytes(name, 3000)))
        self.assertEqual(r.header("etag"), '"b"')
        log = self.stack.origin.requests(f"/gen/{name}")
        self.assertEqual(len(log), 1)
        self.assertIn(["if-none-match", '"a"'], lower_headers(log[0]))
        cs = self.cs(r)
        self.assertEqual((cs.get("fwd"), cs.get("fwd-status")), ("stale", "200"),
                         r.header("cache-status"))
        r2 = self.get(path)
        self.assertEqual(r2.header("etag"), '"b"', "the new response was not stored")
        self.assertIs(self.cs(r2).get("hit"), True, r2.headers)
        self.assertEqual(self.stack.origin.count(f"/gen/{name}"), 1)

    # --- not storable ---

    def assert_not_stored(self, name, path, headers=()):
        for i in range(2):
            r = self.get(path, headers=headers)
            self.assertEqual(r.status, 200, r)
            self.assertNotIn("hit", self.cs(r), r.headers)
        self.assertEqual(self.origin_hits(name), 2, f"{path} was served from the cache")

    def test_no_store_response_not_stored(self):
        self.assert_not_stored("basic-nostore",
                               "/gen/basic-nostore?" + q(size=100, cc="no-store"))

    def test_private_response_not_stored(self):
        self.assert_not_stored("basic-private",
                               "/gen/basic-private?" + q(size=100, cc="private, max-age=300"))

    def test_authorization_request_not_stored(self):
        name = "basic-auth"
        path = f"/gen/{name}?" + q(size=100, cc="max-age=300")
        self.assert_not_stored(name, path, headers=["Authorization: Bearer secret"])
        # and an anonymous request is not answered with the authorized response either
        r = self.get(path)
        self.assertNotIn("hit", self.cs(r), r.headers)
        self.assertEqual(self.origin_hits(name), 3)

    def test_authorization_with_public_is_stored(self):
        # RFC 9111 §3.5: "public" (or s-maxage / must-revalidate) allows a shared cache to store
        name = "basic-auth-public"
        path = f"/gen/{name}?" + q(size=100, cc="public, max-age=300")
        self.get(path, headers=["Authorization: Bearer secret"])
        r = self.get(path, headers=["Authorization: Bearer secret"])
        self.assertIs(self.cs(r).get("hit"), True, r.headers)
        self.assertEqual(self.origin_hits(name), 1)

    # --- Vary ---

    def echo_path(self, tag, vary, cc="max-age=300"):
        return "/echo?" + q(tag=tag) + "&" + "&".join(
            "header=" + urllib.parse.quote(h, safe="") for h in
            (f"Cache-Control:{cc}", f"Vary:{vary}"))

    def echoed(self, r, name):
        doc = json.loads(r.body)
        return [v for k, v in doc["headers"] if k.lower() == name]

    def test_vary_two_variants_stored_separately(self):
        path = self.echo_path("vary2", "Accept-Language")
        en = self.get(path, headers=["Accept-Language: en"])
        fr = self.get(path, headers=["Accept-Language: fr"])
        self.assertEqual(self.stack.origin.count("/echo"), 2, "fr must not be served en's copy")
        for lang in ("en", "fr", "en", "fr"):
            r = self.get(path, headers=[f"Accept-Language: {lang}"])
            self.assertEqual(r.status, 200, r)
            self.assertIs(self.cs(r).get("hit"), True, (lang, r.headers))
            self.assertEqual(self.echoed(r, "accept-language"), [lang])
            self.assertEqual(r.body, en.body if lang == "en" else fr.body)
        self.assertEqual(self.stack.origin.count("/echo"), 2)

    def test_vary_star_never_served_from_cache(self):
        path = self.echo_path("varystar", "*")
        for _ in range(3):
            r = self.get(path)
            self.assertEqual(r.status, 200, r)
            self.assertNotIn("hit", self.cs(r), r.headers)
        self.assertEqual(self.stack.origin.count("/echo"), 3)

    # --- the cache key ---

    def test_signed_url_params_dropped_from_key(self):
        name = "basic-signed"
        base = f"/gen/{name}?" + q(size=2000, cc="max-age=300")
        r1 = self.get(base + "&" + q(Expires=1700000000, Signature="abc", **{"Key-Pair-Id": "K1"}))
        r2 = self.get(base + "&" + q(Expires=1700000999, Signature="xyz", **{"Key-Pair-Id": "K1"}))
        r3 = self.get(base + "&" + q(**{"X-Amz-Signature": "s3", "X-Amz-Date": "20260101"}))
        for r in (r1, r2, r3):
            self.assertEqual((r.status, r.body), (200, gen_bytes(name, 2000)), r)
        # One body from the origin; each later signed request was authorized by a HEAD with
        # its own URL first ([site.signed_urls] scheme = "upstream", the default).
        methods = [e["method"] for e in self.stack.origin.requests(f"/gen/{name}")]
        self.assertEqual(methods, ["GET", "HEAD", "HEAD"], "differing signatures made separate keys")
        self.assertIs(self.cs(r2).get("hit"), True, r2.headers)
        self.assertIs(self.cs(r3).get("hit"), True, r3.headers)
        # the origin got the signed URL it was asked for (parameters are dropped from the key,
        # not from the request)
        self.assertIn("Signature=abc", self.stack.origin.requests(f"/gen/{name}")[0]["target"])
        # a parameter that is not in the ignore list is part of the key
        self.get(base + "&lang=de")
        self.assertEqual(self.origin_hits(name), 4)

    # --- site rules ---

    def test_forced_ttl_rule_overrides_origin(self):
        name = "forced-a"
        path = f"/gen/{name}?" + q(size=500, cc="max-age=0")
        self.get(path)
        r = self.get(path)
        self.assertIs(self.cs(r).get("hit"), True, r.headers)
        self.assertEqual(self.origin_hits(name), 1)
        ttl = self.cs(r).get("ttl")
        self.assertIsNotNone(ttl, r.headers)
        self.assertTrue(3500 <= int(ttl) <= 3600, ttl)
        # control: the same response outside the rule is revalidated every time
        ctl = "basic-notforced"
        cpath = f"/gen/{ctl}?" + q(size=500, cc="max-age=0")
        self.get(cpath)
        self.get(cpath)
        self.assertEqual(self.origin_hits(ctl), 2)

    def test_bypass_rule(self):
        name = "bypass-a"
        path = f"/gen/{name}?" + q(size=500, cc="max-age=300")
        for _ in range(2):
            r = self.get(path)
            self.assertEqual((r.status, r.body), (200, gen_bytes(name, 500)))
        self.assertEqual(self.origin_hits(name), 2, "a bypass path was served from the cache")
        # the response still says what the cache did (RFC 9211 fwd=bypass)
        self.assertEqual(self.cs(r).get("fwd"), "bypass", r.headers)

    # --- CDN-Cache-Control (RFC 9213) ---

    def test_cdn_cache_control_overrides_cache_control(self):
        name = "basic-cdn"
        path = f"/gen/{name}?" + q(size=800, cc="no-cache", header="CDN-Cache-Control:max-age=600")
        r1 = self.get(path)
        self.assertEqual(r1.header("cache-control"), "no-cache", "browsers keep Cache-Control")
        r2 = self.get(path)
        self.assertEqual((r2.status, r2.body), (200, gen_bytes(name, 800)))
        self.assertIs(self.cs(r2).get("hit"), True, r2.headers)
        self.assertEqual(self.origin_hits(name), 1)
        self.assertEqual(r2.header("cache-control"), "no-cache")

    def test_cdn_cache_control_no_store_wins_over_max_age(self):
        name = "basic-cdn-nostore"
        path = f"/gen/{name}?" + q(size=800, cc="max-age=600", header="CDN-Cache-Control:no-store")
        self.assert_not_stored(name, path)

    # --- request directives ---

    def test_only_if_cached_miss_is_504(self):
        name = "basic-oic"
        path = f"/gen/{name}?" + q(size=100, cc="max-age=300")
        r = self.get(path, headers=["Cache-Control: only-if-cached"])
        self.assertEqual(r.status, 504, r)
        self.assertEqual(self.origin_hits(name), 0)
        self.get(path)
        r = self.get(path, headers=["Cache-Control: only-if-cached"])
        self.assertEqual((r.status, r.body), (200, gen_bytes(name, 100)))
        self.assertEqual(self.origin_hits(name), 1)

    def test_request_no_cache_revalidates(self):
        name = "basic-reqnocache"
        path = f"/gen/{name}?" + q(size=100, cc="max-age=300", etag="n1")
        self.get(path)
        r = self.get(path, headers=["Cache-Control: no-cache"])
        self.assertEqual((r.status, r.body), (200, gen_bytes(name, 100)))
        log = self.stack.origin.requests(f"/gen/{name}")
        self.assertEqual(len(log), 2, "no-cache must go to the origin")
        self.assertIn(["if-none-match", '"n1"'], lower_headers(log[1]))

    # --- invalidation ---

    def test_post_invalidates_stored_get(self):
        name = "basic-inval"
        path = f"/gen/{name}?" + q(size=300, cc="max-age=300")
        self.get(path)
        self.assertIs(self.cs(self.get(path)).get("hit"), True)
        self.assertEqual(self.origin_hits(name), 1)
        p = self.get(path, data=b"answer=42")
        self.assertEqual(p.status, 200, p)
        self.assertEqual(self.origin_hits(name), 2)
        r = self.get(path)
        self.assertNotIn("hit", self.cs(r), "the POST did not invalidate the stored GET")
        self.assertEqual(self.origin_hits(name), 3)
        self.assertEqual([x["method"] for x in self.stack.origin.requests(f"/gen/{name}")],
                         ["GET", "POST", "GET"])

    # --- conditional clients ---

    def test_client_if_none_match_on_hit_is_304(self):
        name = "basic-inm"
        path = f"/gen/{name}?" + q(size=4000, cc="max-age=300", etag="t7")
        self.get(path)
        for http2 in (False, True):
            r = self.get(path, headers=['If-None-Match: "t7"'], http2=http2)
            self.assertEqual(r.status, 304, r)
            self.assertEqual(r.body, b"")
            self.assertEqual(r.header("etag"), '"t7"')
            self.assertIs(self.cs(r).get("hit"), True, r.headers)
        r = self.get(path, headers=['If-None-Match: "other"'])
        self.assertEqual((r.status, r.body), (200, gen_bytes(name, 4000)))
        self.assertEqual(self.origin_hits(name), 1)

    def test_hit_metrics(self):
        name = "basic-metrics"
        path = f"/gen/{name}?" + q(size=10000, cc="max-age=300")
        time.sleep(0.3)  # earlier tests' fills commit after their clients are done
        m0 = self.stack.metrics()
        self.get(path)
        self.get(path)
        self.get(path)
        m1 = self.stack.metrics()

        def delta(metric, **labels):
            return (harness.metric_sum(m1, metric, **labels) -
                    harness.metric_sum(m0, metric, **labels))

        self.assertEqual(delta("storecache_requests_total", cache_status="hit"), 2)
        self.assertEqual(delta("storecache_requests_total", cache_status="miss"), 1)
        self.assertEqual(delta("storecache_upstream_bytes_total"), 10000)
        self.assertEqual(delta("storecache_cache_inserts_total"), 1)
        self.assertEqual(delta("storecache_cache_objects"), 1)


if __name__ == "__main__":
    harness.main()
