#!/usr/bin/env python3
"""An upstream that truncates a cacheable body or lies about its length: nothing is stored, and
every device reading the fill (its leader and the followers joined to it, HTTP/1.1 and HTTP/2)
sees its response end in error: HTTP/1.1 closes the connection before the declared length is
complete, HTTP/2 resets the stream with INTERNAL_ERROR and never sends END_STREAM. Never a short
body presented as complete.

The faults (tests/support/origin.py): Content-Length larger than what is sent, then close
(drop_after); Content-Length smaller than what is sent (length); a chunked body cut inside a
chunk (mid_chunk) or after a whole chunk without the last chunk.
"""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import h2raw  # noqa: E402
import harness  # noqa: E402

MiB = 1 << 20
SIZE = 3 * MiB
CUT = 3 * MiB // 2 + 1001  # inside a chunk, a TLS record and a 64 KiB read
INTERNAL_ERROR = 2

FAULTS = {
    # name: (query, what the device is told the length is; None: chunked)
    "short": (f"drop_after={CUT}", SIZE),
    "long": (f"length={CUT}", CUT),
    "midchunk": (f"chunked=1&drop_after={CUT}&mid_chunk=1", None),
    "nolast": (f"chunked=1&drop_after={CUT}", None),
}


class UpstreamTruncationTest(harness.StackTest):
    def tearDown(self):
        self.assertHealthy()

    def h1(self, path, results, key):
        results[key] = harness.curl_stream(self.stack.url(path), ca=self.stack.ca,
                                           resolve=self.stack.resolve(), timeout=20)

    def h2(self, path, results, key):
        results[key] = h2raw.get(self.stack.port, harness.SITE, self.stack.ca, path,
                                 timeout=20, keep_body=False)

    def check_h1(self, who, r, declared):
        self.assertNotEqual(r["exit"], 0, f"{who}: a cut body ended as complete: {r}")
        self.assertIn(r["exit"], (18, 56, 92), f"{who}: {r}")
        self.assertLess(r["size"], declared or SIZE, who)

    def check_h2(self, who, r, declared):
        self.assertFalse(r.complete, f"{who}: END_STREAM after {r.body_size} bytes of a cut body")
        self.assertEqual(r.reset, INTERNAL_ERROR, f"{who}: {r}")
        self.assertLess(r.body_size, declared or SIZE, who)

    def run_fault(self, fault, leader_h2, tag=""):
        query, declared = FAULTS[fault]
        name = f"{fault}{tag}-{int(leader_h2)}"
        # rate: the followers join while the first half is arriving
        path = f"/gen/{name}?size={SIZE}&cc=max-age%3D600&rate={2 * MiB}&{query}"
        results = {}
        fetch = {False: self.h1, True: self.h2}
        threads = [threading.Thread(target=fetch[leader_h2], args=(path, results, "leader"))]
        threads[0].start()
        time.sleep(0.2)
        for i, h2 in enumerate((False, True, False, True)):
            threads.append(threading.Thread(target=fetch[h2], args=(path, results, f"f{i}")))
            threads[-1].start()
        for t in threads:
            t.join(30)
        self.assertEqual(len(results), 5)
        for who, r in sorted(results.items()):
            h2 = leader_h2 if who == "leader" else who in ("f1", "f3")
            with self.subTest(fault=fault, leader_h2=leader_h2, client=who, h2=h2):
                (self.check_h2 if h2 else self.check_h1)(who, r, declared)
        self.assertEqual(self.stack.origin.count(f"/gen/{name}"), 1,
                         f"the followers did not join the leader's fill: "
                         f"{[(e.get('time'), e.get('sent')) for e in self.stack.origin.requests(f'/gen/{name}')]}"
                         f" {[(w, getattr(r, 'body_size', None) or r['size']) for w, r in results.items()]}")
        # Nothing was stored: the next request goes upstream again, and fails again.
        again = {}
        self.h1(path, again, "again")
        self.check_h1("again", again["again"], declared)
        self.assertEqual(self.stack.origin.count(f"/gen/{name}"), 2, "a cut body was stored")

    def test_content_length_longer_than_the_body(self):
        for leader_h2 in (False, True):
            self.run_fault("short", leader_h2)

    def test_content_length_shorter_than_the_body(self):
        for leader_h2 in (False, True):
            self.run_fault("long", leader_h2)

    def test_chunked_body_cut_inside_a_chunk(self):
        for leader_h2 in (False, True):
            self.run_fault("midchunk", leader_h2)

    def test_chunked_body_without_its_last_chunk(self):
        for leader_h2 in (False, True):
            self.run_fault("nolast", leader_h2)

    def test_pooled_connection_after_a_lying_response_is_not_reused(self):
        # The bytes past a short Content-Length must not be read as the next response.
        self.run_fault("long", False, tag="-pool")
        r = self.get("/gen/after-lie?size=100000&cc=max-age%3D600")
        self.assertEqual((r.status, len(r.body)), (200, 100000))


if __name__ == "__main__":
    harness.main()
