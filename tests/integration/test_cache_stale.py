#!/usr/bin/env python3
"""Stale content: served when the origin fails (stale-if-error, the store's WAN link is down)
and while one background refresh runs (stale-while-revalidate)."""

import os
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import harness  # noqa: E402
from origin import Origin, gen_bytes  # noqa: E402


def q(**params):
    return urllib.parse.urlencode(params)


def lower_headers(entry):
    return [[k.lower(), v] for k, v in entry["headers"]]


class StaleBase(harness.StackTest):
    stack_args = {"overrides": {"timeouts": {"upstream_first_byte": "1s",
                                             "upstream_connect": "1s"}}}

    def tearDown(self):
        self.assertHealthy()

    def store_then_expire(self, name, cc="max-age=1", size=5000, max_age=1):
        """Stores /gen/name (ETag and Cache-Control from a program, so later programs can
        change the origin's answers without changing the URL), stale from the start: the
        upstream's Age is a second past max_age, so no test waits for the clock. Returns once
        it is stored. The origin's log and programs are cleared: programs set after this
        replace them."""
        path = f"/gen/{name}?" + q(size=size)
        inserts = self.metric("storecache_cache_inserts_total")
        self.stack.origin.program(f"/gen/{name}", etag="s1", cc=cc, header=f"Age:{max_age + 1}")
        r = self.get(path)
        self.assertEqual(r.status, 200, r)
        self.wait_metric("storecache_cache_inserts_total", lambda v: v >= inserts + 1)
        self.stack.origin.reset()
        return path


class StaleIfErrorTest(StaleBase):
    def check_stale_served(self, name, path):
        before = self.metric("storecache_requests_total", cache_status="stale")
        t0 = time.monotonic()
        r = self.get(path)
        took = time.monotonic() - t0
        self.assertEqual((r.status, r.body), (200, gen_bytes(name, 5000)), r)
        cs = self.cs(r)
        self.assertEqual(cs.get("detail"), "stale-if-error", r.header("cache-status"))
        self.assertIn("hit", cs, r.header("cache-status"))
        self.assertIsNotNone(r.header("age"), r.headers)
        self.assertGreaterEqual(int(r.header("age")), 2)
        self.assertLess(took, 4.0, "the stale answer waited too long for the failing origin")
        self.assertEqual(self.metric("storecache_requests_total", cache_status="stale") - before,
                         1)
        return r

    def test_origin_5xx_serves_stale(self):
        name = "stale-503"
        path = self.store_then_expire(name)
        self.stack.origin.program(f"/gen/{name}", status=503)
        failed = self.metric("storecache_revalidations_total", outcome="failed")
        self.check_stale_served(name, path)
        log = self.stack.origin.requests(f"/gen/{name}")
        self.assertEqual(len(log), 1, "the origin was asked once")
        self.assertIn(["if-none-match", '"s1"'], lower_headers(log[0]))
        self.assertEqual(self.metric("storecache_revalidations_total", outcome="failed") - failed,
                         1)

    def test_silent_origin_serves_stale(self):
        name = "stale-silent"
        path = self.store_then_expire(name)
        self.stack.origin.program(f"/gen/{name}", silent=1)
        self.check_stale_served(name, path)

    def test_origin_drop_mid_body_never_a_short_complete_body(self):
        name = "stale-drop"
        path = self.store_then_expire(name)
        # a new ETag: the conditional request gets a 200, whose body is cut after 1000 bytes
        self.stack.origin.program(f"/gen/{name}", etag="s2", drop_after=1000)
        for http2 in (False, True):
            r = self.stack.curl(path, http2=http2)
            if r.exit == 0:  # complete as far as the client can tell: then it must be whole
                self.assertEqual((r.status, r.body), (200, gen_bytes(name, 5000)),
                                 "a short body was presented as complete")
        self.stack.origin.reset()
        self.stack.origin.program(f"/gen/{name}", etag="s3")
        r = self.get(path)
        self.assertEqual((r.status, r.body), (200, gen_bytes(name, 5000)), r)
        self.assertEqual(r.header("etag"), '"s3"', "a cut response was stored")

    def test_must_revalidate_not_served_stale(self):
        name = "stale-mustreval"
        path = self.store_then_expire(name, cc="max-age=1, must-revalidate")
        self.stack.origin.program(f"/gen/{name}", silent=1)
        r = self.get(path)
        self.assertEqual(r.status, 504, (r, r.headers))
        self.assertNotEqual(r.body, gen_bytes(name, 5000))


class StaleWhileRevalidateTest(StaleBase):
    stack_args = {}  # default timeouts: the 2 s refresh below must not time out

    def test_swr_serves_stale_now_and_refreshes_once(self):
        name = "swr"
        path = self.store_then_expire(name, cc="max-age=2, stale-while-revalidate=60", max_age=2)
        # the refresh will take 2 s at the origin: clients must not wait for it; its 304
        # gives the object a long lifetime
        self.stack.origin.program(f"/gen/{name}", etag="s1", cc="max-age=300", delay=2)
        before = self.metric("storecache_background_fills_total")
        nm_before = self.metric("storecache_revalidations_total", outcome="not_modified")
        results, times = [], []
        lock = threading.Lock()

        def one():
            t0 = time.monotonic()
            r = self.stack.curl(path)
            with lock:
                results.append(r)
                times.append(time.monotonic() - t0)

        # five clients at once, then three more one after the other, all inside the delay
        threads = [threading.Thread(target=one) for _ in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        for _ in range(3):
            one()
        for r in results:
            self.assertEqual((r.exit, r.status, r.body), (0, 200, gen_bytes(name, 5000)), r)
            self.assertIn("hit", self.cs(r), r.header("cache-status"))
            self.assertTrue(self.cs(r).get("detail"), r.header("cache-status"))
        self.assertLess(max(times), 1.5, f"stale-while-revalidate waited for the origin: {times}")
        # exactly one background refresh, conditional; it ends with a 304
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.metric(
                "storecache_revalidations_total", outcome="not_modified") - nm_before < 1:
            time.sleep(0.05)
        log = self.stack.origin.requests(f"/gen/{name}")
        self.assertEqual(len(log), 1, f"{len(log)} upstream requests for one stale object")
        self.assertIn(["if-none-match", '"s1"'], lower_headers(log[0]))
        self.assertEqual(self.metric("storecache_background_fills_total") - before, 1)
        # the refresh (a 304) made the object fresh again: a plain hit, nothing upstream
        r = self.get(path)
        cs = self.cs(r)
        self.assertIn("hit", cs, r.header("cache-status"))
        self.assertNotIn("detail", cs, r.header("cache-status"))
        self.assertLessEqual(int(r.header("age")), 4)  # the 2 s response delay counts
        self.assertEqual(r.header("cache-control"), "max-age=300", "the 304's fields not applied")
        self.assertEqual(self.stack.origin.count(f"/gen/{name}"), 1)


class OriginStoppedTest(StaleBase):
    """The origin process is gone (connection refused), then comes back on the same port."""

    def test_origin_down_serves_stale_then_recovers(self):
        name = "stale-down"
        path = self.store_then_expire(name)
        port = self.stack.origin.port
        self.stack.origin.stop()
        try:
            for http2 in (False, True):
                r = self.get(path, http2=http2)
                self.assertEqual((r.status, r.body), (200, gen_bytes(name, 5000)), r)
                self.assertEqual(self.cs(r).get("detail"), "stale-if-error",
                                 r.header("cache-status"))
            # an object never stored cannot be served: an error, not a hang
            r = self.get("/gen/stale-never?size=10")
            self.assertEqual(r.status, 502, r)
        finally:
            crt, key = self.stack.origin.cert, self.stack.origin.key
            self.stack.origin = Origin(crt, key, port=port).start()
        self.stack.origin.program(f"/gen/{name}", etag="s1")
        r = self.get(path)
        self.assertEqual((r.status, r.body), (200, gen_bytes(name, 5000)))
        self.assertNotEqual(self.cs(r).get("detail"), "stale-if-error", r.header("cache-status"))
        self.assertEqual(self.stack.origin.count(f"/gen/{name}"), 1)


if __name__ == "__main__":
    harness.main()
