#!/usr/bin/env python3
"""Upstream concurrency is bounded (issue: one device can make storecache pull gigabytes):
at most limits.upstream_fetches requests towards the upstreams at once, and
limits.upstream_fetches_per_site per site; more wait in one bounded queue
(limits.upstream_queue, timeouts.upstream_queue) and are then answered 503 with Retry-After.
The origin counts the requests it answers at once, so the caps are checked where they matter.
"""

import os
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import harness  # noqa: E402

MiB = 1 << 20


def q(**params):
    return urllib.parse.urlencode(params)


class CapsTest(harness.StackTest):
    stack_args = {"two_sites": True,
                  "overrides": {"limits": {"upstream_fetches": 4,
                                           "upstream_fetches_per_site": 3}}}

    def tearDown(self):
        self.assertHealthy()

    def urls(self, site, name, n, size=MiB, rate=2 * MiB):
        return [f"https://{site}:{self.stack.port}/gen/{name}{i}?"
                + q(size=size, rate=rate, cc="max-age=600") for i in range(n)]

    def fetch_all(self, urls, site=harness.SITE):
        code, infos = harness.curl_many(urls, ca=self.stack.ca, resolve=self.stack.resolve(site),
                                        http2=True, parallel=True, timeout=60)
        self.assertEqual(code, 0)
        return infos

    def test_per_site_cap_queues_the_rest_and_serves_everyone(self):
        queued = self.metric("storecache_upstream_fetches_queued_total")
        infos = self.fetch_all(self.urls(harness.SITE, "cap-site", 12))
        self.assertEqual(sorted(i["response_code"] for i in infos), [200] * 12)
        self.assertEqual({i["size_download"] for i in infos}, {MiB})
        self.assertEqual(self.stack.origin.count("/gen/cap-site"), 12)
        self.assertLessEqual(self.stack.origin.max_active, 3)
        self.assertGreaterEqual(self.stack.origin.max_active, 2, "the cap was never reached")
        self.assertGreater(self.metric("storecache_upstream_fetches_queued_total"), queued)
        self.wait_metric("storecache_upstream_fetches", lambda v: v == 0)
        self.assertEqual(self.metric("storecache_upstream_fetch_queue"), 0)

    def test_total_cap_over_two_sites(self):
        results = {}
        threads = [threading.Thread(target=lambda s=s: results.setdefault(
            s, self.fetch_all(self.urls(s, "cap-total", 8), s)))
            for s in (harness.SITE, harness.OTHER_SITE)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        for s in (harness.SITE, harness.OTHER_SITE):
            self.assertEqual(sorted(i["response_code"] for i in results[s]), [200] * 8, s)
        self.assertLessEqual(self.stack.origin.max_active, 4)
        self.assertLessEqual(self.metric("storecache_upstream_fetches_max"), 4)
        self.assertGreaterEqual(self.stack.origin.max_active, 3, "the cap was never reached")


class QueueBoundTest(harness.StackTest):
    stack_args = {"overrides": {"limits": {"upstream_fetches": 1, "upstream_queue": 2},
                                "timeouts": {"upstream_queue": "1500ms"}}}

    def test_full_queue_and_queue_timeout_answer_503_with_retry_after(self):
        full = self.metric("storecache_upstream_fetches_refused_total", reason="queue_full")
        timed_out = self.metric("storecache_upstream_fetches_refused_total", reason="timeout")
        # one slow fetch holds the only slot for ~3 s; 2 wait (then time out), 5 are refused
        urls = [f"https://{harness.SITE}:{self.stack.port}/gen/qb{i}?"
                + q(size=3 * MiB, rate=MiB, cc="max-age=600") for i in range(8)]
        code, infos = harness.curl_many(urls, ca=self.stack.ca, resolve=self.stack.resolve(),
                                        http2=True, parallel=True, timeout=60)
        self.assertEqual(code, 0)
        codes = sorted(i["response_code"] for i in infos)
        self.assertEqual(codes, [200] + [503] * 7, codes)
        self.assertEqual(self.stack.origin.count("/gen/qb"), 1)
        self.assertLessEqual(self.stack.origin.max_active, 1)
        self.assertEqual(
            self.metric("storecache_upstream_fetches_refused_total", reason="queue_full"),
            full + 5)
        self.assertEqual(
            self.metric("storecache_upstream_fetches_refused_total", reason="timeout"),
            timed_out + 2)
        r = self.stack.curl(f"/gen/qb9?{q(size=10, cc='max-age=600')}")  # a free slot again
        self.assertEqual(r.status, 200)

    def test_a_response_not_stored_holds_its_slot_until_its_body_ends(self):
        # A no-store response is passed through as it arrives: the WAN carries it for as
        # long as its body takes, so it holds its upstream slot that long (it used to give
        # the slot back once its head had arrived).
        slow = f"/gen/ns-slow?{q(size=2 * MiB, rate=MiB, cc='no-store')}"
        t = threading.Thread(target=lambda: self.stack.curl(slow, timeout=30))
        t.start()
        harness.poll(lambda: self.stack.origin.count("/gen/ns-slow"), lambda n: n == 1, 5)
        time.sleep(0.5)  # the head is long there; the body has ~1.5 s to go
        self.assertEqual(self.metric("storecache_upstream_fetches"), 1)
        t.join(30)
        self.wait_metric("storecache_upstream_fetches", lambda v: v == 0)

    def test_503_carries_retry_after(self):
        slow = f"/gen/qr-slow?{q(size=2 * MiB, rate=MiB, cc='max-age=600')}"
        t = threading.Thread(target=lambda: self.stack.curl(slow, timeout=30))
        t.start()
        harness.poll(lambda: self.stack.origin.count("/gen/qr-slow"), lambda n: n == 1, 5)
        waiting = [subprocess.Popen(
            ["curl", "-sS", "--http1.1", "--cacert", self.stack.ca, "--resolve",
             self.stack.resolve()[0], "-o", "/dev/null", self.stack.url(f"/gen/qr-w{i}?size=10")])
            for i in range(2)]
        harness.poll(lambda: self.metric("storecache_upstream_fetch_queue"), lambda v: v == 2, 5)
        r = self.stack.curl(f"/gen/qr-over?{q(size=10)}")
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.header("retry-after"), "1")
        for w in waiting:
            w.wait(30)
        t.join(30)


class ConnectionMissesTest(harness.StackTest):
    """limits.misses_per_connection: a page load's burst of cold assets on one connection
    waits its turn (bounded by timeouts.upstream_queue), then gets 503."""
    stack_args = {"overrides": {"limits": {"misses_per_connection": 2},
                                "timeouts": {"upstream_queue": "3s"}}}

    def burst(self, name, n, size, rate):
        urls = [f"https://{harness.SITE}:{self.stack.port}/gen/{name}{i}?"
                + q(size=size, rate=rate, cc="max-age=600") for i in range(n)]
        code, infos = harness.curl_many(urls, ca=self.stack.ca, resolve=self.stack.resolve(),
                                        http2=True, parallel=True, timeout=60)
        self.assertEqual(code, 0)
        return sorted(i["response_code"] for i in infos)

    def test_burst_on_one_connection_waits_its_turn(self):
        # 6 objects of 0.25 s each, 2 at a time: ~0.75 s, well within the 3 s wait
        self.assertEqual(self.burst("cm-ok", 6, 256 * 1024, MiB), [200] * 6)
        self.assertEqual(self.stack.origin.count("/gen/cm-ok"), 6)
        self.assertLessEqual(self.stack.origin.max_active, 2)
        self.assertEqual(self.metric("storecache_connection_misses_refused_total"), 0)

    def test_burst_past_the_wait_gets_503(self):
        # 4 objects of 4 s each, 2 at a time: the last two wait 3 s for a slot, then 503
        refused = self.metric("storecache_connection_misses_refused_total")
        self.assertEqual(self.burst("cm-slow", 4, 4 * MiB, MiB), [200, 200, 503, 503])
        self.assertEqual(self.stack.origin.count("/gen/cm-slow"), 2)
        self.assertEqual(self.metric("storecache_connection_misses_refused_total"), refused + 2)


if __name__ == "__main__":
    harness.main()
