#!/usr/bin/env python3
"""Byte ranges: served from stored objects (206 with Content-Range and Content-Length, 416,
If-Range), a cold seek into a large object answered without downloading it first, and a
player's sequence of ranges fetching the object upstream about once.

Multi-range requests: storecache answers them with the whole 200 (its documented choice).
"""

import os
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import harness  # noqa: E402
from origin import gen_bytes, gen_sha256  # noqa: E402

MiB = 1 << 20


def q(**params):
    return urllib.parse.urlencode(params)


class RangeTest(harness.StackTest):
    SIZE = 1000000

    def tearDown(self):
        self.assertHealthy()

    def stored(self, name, size=None, etag="r1"):
        size = size or self.SIZE
        path = f"/gen/{name}?" + q(size=size, cc="max-age=600", etag=etag)
        inserts = self.metric("storecache_cache_inserts_total")
        r = self.get(path)
        self.assertEqual((r.status, len(r.body)), (200, size))
        self.assertEqual(self.stack.origin.count(f"/gen/{name}"), 1)
        # committed (the client can have every byte a moment before the index write)
        deadline = time.monotonic() + 5
        while self.metric("storecache_cache_inserts_total") == inserts:
            self.assertLess(time.monotonic(), deadline, "the object was never committed")
            time.sleep(0.02)
        return path

    def wait_origin_done(self, prefix, n=None, timeout=40):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.stack.origin.requests(prefix)
            if log and all("done_time" in e for e in log) and (n is None or len(log) >= n):
                return log
            time.sleep(0.05)
        self.fail(f"origin did not finish {prefix} within {timeout}s")

    def assert_206(self, r, name, first, last, size):
        self.assertEqual(r.status, 206, (r, r.headers))
        self.assertEqual(r.header("content-range"), f"bytes {first}-{last}/{size}", r.headers)
        self.assertEqual(r.header("content-length"), str(last - first + 1), r.headers)
        self.assertIsNone(r.header("transfer-encoding"), "a 206 must not be chunked (iOS)")
        self.assertEqual(r.body, gen_bytes(name, size, first, last + 1))

    # --- from a stored object ---

    def test_ranges_from_cache(self):
        name = "rng-stored"
        path = self.stored(name)
        n = self.SIZE
        cases = [("bytes=100-199", 100, 199), ("bytes=999000-", 999000, n - 1),
                 ("bytes=-500", n - 500, n - 1), ("bytes=0-1", 0, 1),
                 ("bytes=999999-2000000", 999999, n - 1), ("bytes=65530-131080", 65530, 131080),
                 ("bytes=-2000000", 0, n - 1)]
        for http2 in (False, True):
            for rng, first, last in cases:
                with self.subTest(rng=rng, http2=http2):
                    r = self.get(path, headers=[f"Range: {rng}"], http2=http2)
                    self.assert_206(r, name, first, last, n)
                    self.assertIs(harness.our_cache_status(r).get("hit"), True, r.headers)
        self.assertEqual(self.stack.origin.count(f"/gen/{name}"), 1, "a range went upstream")

    def test_accept_ranges_sent_once(self):
        name = "rng-accept"
        path = self.stored(name)
        for headers in ([], ["Range: bytes=0-1"]):
            r = self.get(path, headers=headers)
            self.assertEqual(r.header_all("accept-ranges"), ["bytes"], r.headers)

    def test_unsatisfiable_range_is_416(self):
        name = "rng-416"
        path = self.stored(name)
        for http2 in (False, True):
            for rng in (f"bytes={self.SIZE}-", f"bytes={self.SIZE + 5}-{self.SIZE + 10}"):
                r = self.get(path, headers=[f"Range: {rng}"], http2=http2)
                self.assertEqual(r.status, 416, (rng, r.headers))
                self.assertEqual(r.header("content-range"), f"bytes */{self.SIZE}", r.headers)
        self.assertEqual(self.stack.origin.count(f"/gen/{name}"), 1)

    def test_if_range(self):
        name = "rng-ifrange"
        path = self.stored(name, etag="r1")
        r = self.get(path, headers=["Range: bytes=10-19", 'If-Range: "r1"'])
        self.assert_206(r, name, 10, 19, self.SIZE)
        r = self.get(path, headers=["Range: bytes=10-19", 'If-Range: "changed"'])
        self.assertEqual((r.status, r.body), (200, gen_bytes(name, self.SIZE)), r.headers)
        self.assertIsNone(r.header("content-range"))
        self.assertEqual(self.stack.origin.count(f"/gen/{name}"), 1)

    def test_multi_range_gets_whole_200(self):
        name = "rng-multi"
        path = self.stored(name)
        r = self.get(path, headers=["Range: bytes=0-9,20-29"])
        self.assertEqual((r.status, r.body), (200, gen_bytes(name, self.SIZE)), r.headers)
        self.assertEqual(r.header("content-length"), str(self.SIZE))

    def test_head_with_range(self):
        name = "rng-head"
        path = self.stored(name)
        r = self.get(path, method="HEAD", headers=["Range: bytes=0-1"])
        self.assertIn(r.status, (200, 206), r)
        if r.status == 206:
            self.assertEqual(r.header("content-range"), f"bytes 0-1/{self.SIZE}")
            self.assertEqual(r.header("content-length"), "2")

    # --- cold objects ---

    def test_safari_probe_on_cold_object(self):
        name = "rng-probe"
        size = 3 * MiB
        path = f"/gen/{name}?" + q(size=size, cc="max-age=600", etag="p1")
        for http2 in (False, True):
            r = self.get(path, headers=["Range: bytes=0-1"], http2=http2)
            self.assert_206(r, name, 0, 1, size)
        # Safari's playback follows its probe: it joins the fill the probe started (paused, not
        # stopped, while no client read it: cache.orphan_grace)
        r = self.get(path)
        self.assertEqual((r.status, r.body), (200, gen_bytes(name, size)))
        self.wait_origin_done(f"/gen/{name}")
        r = self.get(path)
        self.assertEqual((r.status, r.body), (200, gen_bytes(name, size)))
        self.assertIs(harness.our_cache_status(r).get("hit"), True, r.headers)
        log = self.stack.origin.requests(f"/gen/{name}")
        self.assertEqual(len(log), 1, [e["headers"] for e in log])
        self.assertEqual(log[0]["sent"], size)

    def test_cold_range_origin_without_range_support(self):
        # the origin ignores Range and sends the whole 200: the client still gets its 206
        name = "rng-noranges"
        size = 500000
        path = f"/gen/{name}?" + q(size=size, cc="max-age=600", ranges=0)
        inserts = self.metric("storecache_cache_inserts_total")
        r = self.get(path, headers=["Range: bytes=1000-1999"])
        self.assert_206(r, name, 1000, 1999, size)
        self.wait_metric("storecache_cache_inserts_total", lambda v: v >= inserts + 1)
        r = self.get(path)
        self.assertEqual((r.status, r.body), (200, gen_bytes(name, size)))
        self.assertEqual(self.stack.origin.count(f"/gen/{name}"), 1)

    def test_range_joins_fill_in_progress(self):
        # a range inside what a slow fill will soon have is answered from that fill
        name = "rng-join"
        size = 8 * MiB
        path = f"/gen/{name}?" + q(size=size, cc="max-age=600", rate=4 * MiB)
        first = {}
        t = threading.Thread(target=lambda: first.setdefault("r", harness.curl_stream(
            self.stack.url(path), ca=self.stack.ca, resolve=self.stack.resolve())))
        t.start()
        time.sleep(0.5)
        r = self.get(path, headers=[f"Range: bytes={MiB}-{2 * MiB - 1}"], http2=True)
        self.assert_206(r, name, MiB, 2 * MiB - 1, size)
        t.join(20)
        self.assertEqual((first["r"]["exit"], first["r"]["sha256"]), (0, gen_sha256(name, size)))
        self.assertEqual(self.stack.origin.count(f"/gen/{name}"), 1)
        self.assertLessEqual(self.stack.origin.sent_bytes(f"/gen/{name}"), size)

    def test_cold_last_mib_of_200mib_object(self):
        name = "rng-cold-big"
        size = 200 * MiB
        # paced at 64 MiB/s: fetching the whole object first would take > 3 s and 200 MiB
        path = f"/gen/{name}?" + q(size=size, cc="max-age=600", etag="b1", rate=64 * MiB)
        up0 = self.metric("storecache_upstream_bytes_total")
        inserts = self.metric("storecache_cache_inserts_total")
        r = self.get(path, headers=[f"Range: bytes={size - MiB}-"], timeout=60)
        sent_at_answer = self.stack.origin.sent_bytes(f"/gen/{name}")
        up_at_answer = self.metric("storecache_upstream_bytes_total") - up0
        self.assert_206(r, name, size - MiB, size - 1, size)
        self.assertLess(sent_at_answer, 40 * MiB,
                        f"{sent_at_answer / MiB:.1f} MiB came from the origin before the last "
                        "MiB was answered")
        self.assertLess(up_at_answer, 40 * MiB, f"upstream_bytes_total {up_at_answer / MiB:.1f}")
        # the device stays and plays the whole video: it joins the fill started with the seek
        # (a seek that is left alone stops that fill: test_orphan_fill.py), which stores it;
        # the partial answer is never stored as the whole object
        res = harness.curl_stream(self.stack.url(path), ca=self.stack.ca,
                                  resolve=self.stack.resolve(), timeout=60)
        self.assertEqual((res["exit"], res["size"], res["sha256"]),
                         (0, size, gen_sha256(name, size)))
        log = self.wait_origin_done(f"/gen/{name}", timeout=50)
        self.wait_metric("storecache_cache_inserts_total", lambda v: v >= inserts + 1)
        sent = self.stack.origin.sent_bytes(f"/gen/{name}")
        self.assertLessEqual(sent, size + 2 * MiB, f"{len(log)} upstream requests: {sent} bytes")
        r = self.get(path, headers=[f"Range: bytes={size - MiB}-"])
        self.assert_206(r, name, size - MiB, size - 1, size)
        self.assertIs(harness.our_cache_status(r).get("hit"), True, r.headers)
        res = harness.curl_stream(self.stack.url(path), ca=self.stack.ca,
                                  resolve=self.stack.resolve(), timeout=60)
        self.assertEqual((res["exit"], res["info"].get("response_code"), res["size"]),
                         (0, 200, size))
        self.assertEqual(res["sha256"], gen_sha256(name, size))
        self.assertEqual(self.stack.origin.sent_bytes(f"/gen/{name}"), sent, "not from cache")

    def play(self, path, name, size, chunk, http2=False):
        """A player: Safari's 0-1 probe, then consecutive ranges to the end. Returns the
        Cache-Status of each answer."""
        statuses = []
        r = self.get(path, headers=["Range: bytes=0-1"], http2=http2)
        self.assert_206(r, name, 0, 1, size)
        statuses.append(harness.our_cache_status(r))
        for first in range(0, size, chunk):
            last = min(first + chunk, size) - 1
            r = self.get(path, headers=[f"Range: bytes={first}-{last}"], http2=http2)
            self.assert_206(r, name, first, last, size)
            statuses.append(harness.our_cache_status(r))
        return statuses

    def test_playback_fetches_once_then_all_from_cache(self):
        name = "rng-play"
        size = 24 * MiB + 12345
        path = f"/gen/{name}?" + q(size=size, cc="max-age=600", etag="v1", ct="video/mp4")
        up0 = self.metric("storecache_upstream_bytes_total")
        self.play(path, name, size, 2 * MiB)
        self.wait_origin_done(f"/gen/{name}")
        sent = self.stack.origin.sent_bytes(f"/gen/{name}")
        self.assertLessEqual(sent, 1.05 * size,
                             f"first playback: {sent} bytes upstream for a {size}-byte video")
        self.assertLessEqual(self.metric("storecache_upstream_bytes_total") - up0, 1.05 * size)
        time.sleep(0.5)
        # the next device: nothing from upstream
        count = self.stack.origin.count(f"/gen/{name}")
        statuses = self.play(path, name, size, 3 * MiB, http2=True)
        self.assertEqual(self.stack.origin.count(f"/gen/{name}"), count)
        self.assertEqual(self.stack.origin.sent_bytes(f"/gen/{name}"), sent)
        self.assertTrue(all(s.get("hit") is True for s in statuses), statuses)


if __name__ == "__main__":
    harness.main()
