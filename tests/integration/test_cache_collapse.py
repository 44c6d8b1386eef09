#!/usr/bin/env python3
"""Request collapsing: many clients on one cold object cause one upstream request, and every
client gets the body as it arrives, not after the fetch completes."""

import os
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import harness  # noqa: E402
from origin import gen_sha256  # noqa: E402

MiB = 1 << 20


def q(**params):
    return urllib.parse.urlencode(params)


class CollapseTest(harness.StackTest):
    def tearDown(self):
        self.assertHealthy()

    def fetch_all(self, path, n, http2_every=2, timeout=50):
        """n concurrent curl processes (every http2_every-th one over h2) streaming the body
        through sha256: harness.curl_stream dicts (first_byte: when the first body byte came)."""
        results = [None] * n
        url = self.stack.url(path)

        def one(i):
            results[i] = harness.curl_stream(url, ca=self.stack.ca, resolve=self.stack.resolve(),
                                             http2=(i % http2_every == 1), timeout=timeout)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout + 15)
        return results

    def wait_origin_done(self, prefix, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.stack.origin.requests(prefix)
            if log and all("done_time" in e for e in log):
                return log
            time.sleep(0.05)
        self.fail(f"origin did not finish {prefix} within {timeout}s")

    def test_50_clients_one_upstream_request(self):
        name = "collapse-50"
        size = 20 * MiB
        rate = 3 * MiB  # the origin needs ~7 s for the body: time for 50 curl processes to start
        path = f"/gen/{name}?" + q(size=size, rate=rate, cc="max-age=600")
        collapsed0 = self.metric("storecache_collapsed_requests_total")
        up0 = self.metric("storecache_upstream_bytes_total")
        results = self.fetch_all(path, 50)
        log = self.wait_origin_done(f"/gen/{name}")
        self.assertEqual(len(log), 1, f"{len(log)} upstream requests for one cold object")
        done = log[0]["done_time"]
        want = gen_sha256(name, size)
        for i, r in enumerate(results):
            self.assertEqual((r["exit"], r["info"].get("response_code"), r["size"], r["sha256"]),
                             (0, 200, size, want), f"client {i}: {r['info'].get('http_version')}")
        # every client had its first body byte before the one upstream fetch completed
        late = [(i, round(r["first_byte"] - done, 2)) for i, r in enumerate(results)
                if r["first_byte"] >= done]
        self.assertEqual(late, [], "clients whose first byte came after the fetch completed "
                         "(seconds after): a follower waited for the whole object")
        fetch_time = done - log[0]["time"]
        self.assertGreater(fetch_time, 3.0, "the origin was not slow: the test proves nothing")
        self.assertEqual(self.metric("storecache_collapsed_requests_total") - collapsed0, 49)
        self.assertEqual(self.metric("storecache_upstream_bytes_total") - up0, size)
        # and it is stored: one more client is a hit
        r = self.stack.curl(f"/gen/{name}?" + q(size=size, rate=rate, cc="max-age=600"),
                            output=os.devnull)
        self.assertEqual(r.status, 200, r)
        self.assertIs(harness.our_cache_status(r).get("hit"), True, r.headers)
        self.assertEqual(self.stack.origin.count(f"/gen/{name}"), 1)

    def test_leader_disconnect_does_not_stop_the_fill(self):
        name = "collapse-leader-gone"
        size = 8 * MiB
        path = f"/gen/{name}?" + q(size=size, rate=4 * MiB, cc="max-age=600")
        url = self.stack.url(path)
        # the leader reads for 0.6 s and goes away; a follower joins meanwhile
        leader = subprocess.Popen(
            ["curl", "-sS", "--http1.1", "--cacert", self.stack.ca, "--resolve",
             self.stack.resolve()[0], "-o", os.devnull, "--max-time", "0.6", url],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)
        follower = {}

        def follow():
            follower["r"] = harness.curl_stream(url, ca=self.stack.ca,
                                                resolve=self.stack.resolve(), http2=True)

        t = threading.Thread(target=follow)
        t.start()
        self.assertEqual(leader.wait(10), 28, "the leader should have timed out mid-body")
        t.join(30)
        r = follower["r"]
        self.assertEqual((r["exit"], r["size"], r["sha256"]), (0, size, gen_sha256(name, size)),
                         "the follower's body was cut when the leader left")
        log = self.wait_origin_done(f"/gen/{name}")
        self.assertEqual(len(log), 1)
        self.assertEqual(log[0]["sent"], size)
        r = self.stack.curl(path, output=os.devnull)
        self.assertIs(harness.our_cache_status(r).get("hit"), True, r.headers)
        self.assertEqual(self.stack.origin.count(f"/gen/{name}"), 1)

    def test_leader_alone_disconnects_fill_completes(self):
        name = "collapse-leader-alone"
        size = 6 * MiB
        path = f"/gen/{name}?" + q(size=size, rate=6 * MiB, cc="max-age=600")
        inserts = self.metric("storecache_cache_inserts_total")
        r = self.stack.curl(path, timeout=0.5, output=os.devnull)
        self.assertEqual(r.exit, 28, r)
        log = self.wait_origin_done(f"/gen/{name}")
        self.assertEqual(log[0]["sent"], size, "the fetch stopped with its only client")
        # committed (body made durable, then the index) after the last byte
        self.wait_metric("storecache_cache_inserts_total", lambda v: v >= inserts + 1, 30)
        code, info, digest, got = harness.curl_sha256(self.stack.url(path), ca=self.stack.ca,
                                                      resolve=self.stack.resolve())
        self.assertEqual((code, got, digest), (0, size, gen_sha256(name, size)))
        self.assertEqual(self.stack.origin.count(f"/gen/{name}"), 1, "refetched: not stored")

    def test_stale_object_revalidated_once_for_many_clients(self):
        name = "collapse-stale"
        size = 300000
        path = f"/gen/{name}?" + q(size=size)
        self.stack.origin.program(f"/gen/{name}", etag="c1", cc="max-age=1", header="Age:2")
        r = self.stack.curl(path)  # stored already stale (Age above max-age)
        self.assertEqual(r.status, 200, r)
        self.stack.origin.reset()
        # the revalidation takes 1 s at the origin; 20 clients arrive meanwhile
        self.stack.origin.program(f"/gen/{name}", etag="c1", cc="max-age=600", delay=1)
        results = self.fetch_all(path, 20, timeout=20)
        want = gen_sha256(name, size)
        for i, r in enumerate(results):
            self.assertEqual((r["exit"], r["info"].get("response_code"), r["sha256"]),
                             (0, 200, want), f"client {i}")
        log = self.stack.origin.requests(f"/gen/{name}")
        self.assertEqual(len(log), 1, f"{len(log)} upstream requests to revalidate one object")
        self.assertIn(["if-none-match", '"c1"'], [[k.lower(), v] for k, v in log[0]["headers"]])

    def test_upstream_cut_mid_body_every_client_sees_it_and_nothing_stored(self):
        name = "collapse-cut"
        size = 6 * MiB
        path = f"/gen/{name}?" + q(size=size, cc="max-age=600")
        # (not on a 256 KiB boundary: the origin's drop_after there stops without closing)
        self.stack.origin.program(f"/gen/{name}", rate=4 * MiB, drop_after=3 * MiB + 1000)
        results = self.fetch_all(path, 6, timeout=20)
        for i, r in enumerate(results):
            self.assertNotEqual(r["exit"], 0,
                                f"client {i} got a cut body as complete ({r['size']} bytes)")
            self.assertLess(r["size"], size)
        self.assertEqual(self.stack.origin.count(f"/gen/{name}"), 1)
        self.stack.origin.reset()
        code, info, digest, got = harness.curl_sha256(self.stack.url(path), ca=self.stack.ca,
                                                      resolve=self.stack.resolve())
        self.assertEqual((code, got, digest), (0, size, gen_sha256(name, size)))
        self.assertEqual(self.stack.origin.count(f"/gen/{name}"), 1, "the cut body was stored")


if __name__ == "__main__":
    harness.main()
