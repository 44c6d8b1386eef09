#!/usr/bin/env python3
"""The cache on disk: objects survive a restart, a kill -9 mid-write never leaves a truncated
body to serve, and max_size holds under a stream of new objects (by eviction)."""

import os
import signal
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


class PersistBase(harness.StackTest):
    def tearDown(self):
        self.assertHealthy()

    def wait_inserts(self, at_least, timeout=10):
        deadline = time.monotonic() + timeout
        while self.metric("storecache_cache_inserts_total") < at_least:
            self.assertLess(time.monotonic(), deadline, "objects were not committed")
            time.sleep(0.02)

    def restart(self, kill=False):
        """Stops the daemon (SIGTERM, or SIGKILL) and starts a new one on the same config and
        cache dir. Returns the old daemon's stderr."""
        old = self.stack.daemon
        if kill:
            old.signal(signal.SIGKILL)
            old.wait(10)
            old.stop()
        else:
            self.assertEqual(old.stop(), 0, old.stderr_text()[-2000:])
        self.stack.start()
        return old.stderr_text()

    def fetch(self, path, **kw):
        return harness.curl_stream(self.stack.url(path), ca=self.stack.ca,
                                   resolve=self.stack.resolve(), **kw)


class RestartTest(PersistBase):
    def test_restart_keeps_objects(self):
        small = "/gen/persist-small?" + q(size=700, cc="max-age=600", etag="s")
        large = "/gen/persist-large?" + q(size=5 * MiB + 3, cc="max-age=600", etag="l")
        inserts = self.metric("storecache_cache_inserts_total")
        self.get(small)
        self.get(large)
        self.wait_inserts(inserts + 2)
        self.restart()
        m = self.stack.metrics()
        self.assertGreaterEqual(harness.metric_sum(m, "storecache_cache_objects"), 2)
        for http2 in (False, True):
            r = self.get(small, http2=http2)
            self.assertEqual((r.status, r.body), (200, gen_bytes("persist-small", 700)))
            self.assertIs(harness.our_cache_status(r).get("hit"), True, r.headers)
            r = self.get(large, http2=http2)
            self.assertEqual((r.status, r.body), (200, gen_bytes("persist-large", 5 * MiB + 3)))
            self.assertIs(harness.our_cache_status(r).get("hit"), True, r.headers)
            self.assertEqual(r.header("etag"), '"l"')
        self.assertEqual(self.stack.origin.count("/gen/persist-"), 2, "refetched after restart")

    def test_kill_9_mid_write_never_serves_a_truncated_body(self):
        size = 24 * MiB
        for i, kill_at in enumerate((0.15, 0.6, 0.95)):
            with self.subTest(kill_at=kill_at):
                self.stack.origin.reset()
                name = f"persist-kill{i}"
                path = f"/gen/{name}?" + q(size=size, cc="max-age=600", rate=12 * MiB)
                t = threading.Thread(target=self.fetch, args=(path,), kwargs={"timeout": 20})
                t.start()
                deadline = time.monotonic() + 15
                while self.stack.origin.sent_bytes(f"/gen/{name}") < kill_at * size:
                    self.assertLess(time.monotonic(), deadline, "the origin never got there")
                    time.sleep(0.01)
                self.restart(kill=True)
                t.join(30)
                self.check_whole_or_absent(path, name, size)

    def test_kill_9_right_after_the_last_byte(self):
        # the commit (fsync, rename, index write) races with the kill
        size = 8 * MiB
        for i in range(3):
            with self.subTest(i=i):
                self.stack.origin.reset()
                name = f"persist-killend{i}"
                path = f"/gen/{name}?" + q(size=size, cc="max-age=600")
                res = self.fetch(path)
                self.assertEqual((res["exit"], res["size"]), (0, size))
                time.sleep(0.005 * i)
                self.restart(kill=True)
                self.check_whole_or_absent(path, name, size)

    def check_whole_or_absent(self, path, name, size):
        want = gen_sha256(name, size)
        before = self.stack.origin.count(f"/gen/{name}")
        for http2 in (False, True):
            res = self.fetch(path, http2=http2, timeout=20)
            self.assertEqual((res["exit"], res["info"].get("response_code"), res["size"]),
                             (0, 200, size), res["stderr"][-500:])
            self.assertEqual(res["sha256"], want, "a damaged body was served")
        # at most one refetch (then it is stored): never a truncated stored body
        self.assertLessEqual(self.stack.origin.count(f"/gen/{name}") - before, 1)
        self.assertNotIn("stored body", self.stack.daemon.stderr_text(),
                         "a damaged stored body was found at serve time")


class SizeBoundTest(PersistBase):
    MAX = 20 * MiB
    stack_args = {"overrides": {"cache": {"max_size": "20MiB", "max_object_size": "4MiB"}}}

    def test_max_size_holds_under_new_objects(self):
        ev0 = self.metric("storecache_cache_evictions_total")
        worst = 0
        for i in range(45):
            r = self.get(f"/gen/bound{i}?" + q(size=MiB, cc="max-age=600"), output=os.devnull)
            self.assertEqual(r.status, 200, r)
            b = self.metric("storecache_cache_bytes")
            worst = max(worst, b)
            self.assertLessEqual(b, self.MAX, f"after object {i}: {b} bytes cached")
        time.sleep(0.5)
        self.assertLessEqual(self.metric("storecache_cache_bytes"), self.MAX)
        evictions = self.metric("storecache_cache_evictions_total") - ev0
        self.assertGreater(evictions, 0)
        objects = self.metric("storecache_cache_objects")
        self.assertLess(objects, 20)
        self.assertGreater(worst, 15 * MiB, "the cache never filled: the bound was not tested")
        # the disk agrees: bodies under the cache dir stay under max_size
        used = 0
        for root, _, files in os.walk(self.stack.config["cache"]["dir"]):
            for f in files:
                used += os.stat(os.path.join(root, f)).st_blocks * 512
        self.assertLessEqual(used, self.MAX + 2 * MiB, f"{used} bytes on disk")
        # the newest object is still there; the oldest was evicted
        n = self.stack.origin.count("/gen/bound44")
        r = self.get("/gen/bound44?" + q(size=MiB, cc="max-age=600"))
        self.assertIs(harness.our_cache_status(r).get("hit"), True, r.headers)
        self.assertEqual(self.stack.origin.count("/gen/bound44"), n)
        r = self.get("/gen/bound0?" + q(size=MiB, cc="max-age=600"))
        self.assertEqual(r.body, gen_bytes("bound0", MiB))
        self.assertNotIn("hit", harness.our_cache_status(r), "the oldest object was kept")
        self.assertEqual(self.stack.origin.count("/gen/bound0"), 2)

    def test_object_over_max_object_size_passed_through(self):
        name = "bound-big"
        path = f"/gen/{name}?" + q(size=5 * MiB, cc="max-age=600")
        for _ in range(2):
            res = self.fetch(path)
            self.assertEqual((res["exit"], res["size"], res["sha256"]),
                             (0, 5 * MiB, gen_sha256(name, 5 * MiB)))
        self.assertEqual(self.stack.origin.count(f"/gen/{name}"), 2)
        # also when the origin does not say the length up front (chunked)
        name = "bound-big-chunked"
        path = f"/gen/{name}?" + q(size=5 * MiB, cc="max-age=600", chunked=1)
        for _ in range(2):
            res = self.fetch(path)
            self.assertEqual((res["exit"], res["size"], res["sha256"]),
                             (0, 5 * MiB, gen_sha256(name, 5 * MiB)))
        self.assertEqual(self.stack.origin.count(f"/gen/{name}"), 2)
        self.assertLessEqual(self.metric("storecache_cache_bytes"), self.MAX)


if __name__ == "__main__":
    harness.main()
