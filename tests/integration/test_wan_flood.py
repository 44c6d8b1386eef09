#!/usr/bin/env python3
"""The attack of issue 15, end to end: one device must not make storecache pull gigabytes over
the store's WAN. A raw HTTP/2 client sends 5,000 HEADERS + RST_STREAM pairs for cold URLs of a
20 MiB video (one connection, as fast as it can); HTTP/1.1 clients open a connection, send a
request for a cold video and close at once. The origin serves at loopback speed. Checked where
it matters: bytes the origin sent and storecache received, requests the origin answered at
once, the GOAWAY, and another device served normally meanwhile.

Default limits and orphan policy, except upstream_fetches (16, so the cap is observable).
"""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import h2raw  # noqa: E402
import harness  # noqa: E402
from harness import SITE  # noqa: E402
from origin import gen_sha256  # noqa: E402

MiB = 1 << 20
CAP = 16
BOUND = 64 * MiB
GOOD = "127.0.0.2"


class WanFloodTest(harness.StackTest):
    stack_args = {"overrides": {"limits": {"upstream_fetches": CAP, "upstream_fetches_per_site": CAP},
                                "timeouts": {"shutdown_grace": "2s"}}}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # What the origin counts as sent is then what left it, as over a real WAN: bytes in
        # its own socket buffer never crossed the link.
        cls.stack.origin.sndbuf = 128 * 1024

    def tearDown(self):
        self.assertHealthy()

    def good_device(self, tag, results, stop):
        """Another device meanwhile: a cold object of its own and then the same again (a hit),
        until told to stop."""
        i = 0
        while not stop.is_set() and i < 20:
            path = f"/gen/good-{tag}-{i}?size=1500000&cc=max-age%3D600"
            for _ in range(2):
                r = self.stack.curl(path, http2=True, extra=["--interface", GOOD], timeout=30)
                results.append((r.exit, r.status, len(r.body or b"")))
            i += 1

    def settle(self):
        """Waits until every fill the flood started has stopped or finished."""
        self.wait_metric("storecache_cache_fills_in_flight", lambda v: v == 0, timeout=30)
        time.sleep(0.5)

    def check_wan(self, prefix, up0, what):
        sent = self.stack.origin.sent_bytes(prefix)
        # storecache's own count, less what the well-behaved device fetched meanwhile
        received = (self.metric("storecache_upstream_bytes_total") - up0
                    - self.stack.origin.sent_bytes("/gen/good-"))
        print(f"\n  {what}: origin answered {self.stack.origin.count(prefix)} requests, sent "
              f"{sent / MiB:.1f} MiB; storecache received {received / MiB:.1f} MiB; at most "
              f"{self.stack.origin.max_active} at once; orphans "
              f"{ {o: self.metric('storecache_orphan_fills_total', outcome=o) for o in ('stop', 'resumed', 'small', 'mostly_there', 'wanted')} }",
              file=sys.stderr)
        self.assertLess(sent, BOUND, f"{what}: the origin sent {sent / MiB:.1f} MiB")
        self.assertLess(received, BOUND, f"{what}: storecache received {received / MiB:.1f} MiB")
        # Enforced where the slots are given out...
        self.assertLessEqual(self.metric("storecache_upstream_fetches_max"), CAP)
        # ... and seen at the origin, which notices a connection storecache closed (a stopped
        # orphan) only at its next write: by then that slot may already serve the next fetch.
        self.assertLessEqual(self.stack.origin.max_active, CAP + 1)

    def run_good_device_during(self, tag, attack):
        results, stop = [], threading.Event()
        t = threading.Thread(target=self.good_device, args=(tag, results, stop))
        t.start()
        try:
            out = attack()
        finally:
            time.sleep(0.5)
            stop.set()
            t.join(120)
        self.assertGreater(len(results), 0)
        self.assertEqual([r for r in results if r != (0, 200, 1500000)], [], results)
        return out

    def test_h2_reset_flood_on_cold_video_urls(self):
        up0 = self.metric("storecache_upstream_bytes_total")
        paths = [f"/gen/video?size=20MiB&rx={i}" for i in range(5000)]
        res = self.run_good_device_during("h2", lambda: h2raw.reset_flood(
            self.stack.port, SITE, self.stack.ca, paths, source="127.0.0.21"))
        print(f"\n  flood: {res}", file=sys.stderr)
        self.assertIsNotNone(res.goaway, res)
        self.assertEqual(res.goaway.error_code, h2raw.ENHANCE_YOUR_CALM, res)
        self.settle()
        self.check_wan("/gen/video", up0, "h2 flood")
        # The same video, asked for properly, still arrives whole.
        res = harness.curl_stream(self.stack.url("/gen/video?size=20MiB&rx=7"), ca=self.stack.ca,
                                  resolve=self.stack.resolve(), timeout=60,
                                  extra=["--interface", GOOD])
        self.assertEqual((res["exit"], res["size"]), (0, 20 * MiB))

    def test_h1_open_and_close_clients_on_cold_video_urls(self):
        up0 = self.metric("storecache_upstream_bytes_total")

        def attack():
            for i in range(300):
                with harness.tls_socket(self.stack.port, SITE, self.stack.ca,
                                        source="127.0.0.22") as s:
                    s.sendall(f"GET /gen/h1video?size=20MiB&rx={i} HTTP/1.1\r\n"
                              f"Host: {SITE}\r\n\r\n".encode())
            return None

        self.run_good_device_during("h1", attack)
        self.settle()
        self.check_wan("/gen/h1video", up0, "h1 open-and-close")


if __name__ == "__main__":
    harness.main()
