#!/usr/bin/env python3
"""The WAN budget ([wan] rate): upstream reads paced to the cap (a device's cold miss arrives at
the cap's rate, byte for byte, while a hit is not paced), a site's own cap ([site.wan]), device
reads before background ones (a device miss during a prefetch that saturates the cap), and a
reload that lifts the cap, and a [[wan.window]] whose end lifts the cap mid-transfer (the
daemon runs in a time zone shifted so that its local minute ends seconds after the start:
harness.ShiftedZone)."""

import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import harness  # noqa: E402
from origin import gen_sha256  # noqa: E402

SITE = harness.SITE
RATE = 1_000_000  # bytes/s: "8Mbit/s"


class WanBudgetTest(unittest.TestCase):
    def setUp(self):
        self.stack = None

    def tearDown(self):
        if self.stack:
            self.assertEqual(self.stack.close(), 0)

    def start(self, overrides):
        self.stack = harness.Stack(overrides=overrides)
        self.stack.start()
        return self.stack

    def metric(self, name, **labels):
        return harness.metric_sum(self.stack.metrics(), name, **labels)

    def get_sha(self, path):
        code, info, sha, size = harness.curl_sha256(self.stack.url(path), ca=self.stack.ca,
                                                    resolve=self.stack.resolve(), timeout=60)
        self.assertEqual(code, 0, info)
        self.assertEqual(info.get("response_code"), 200)
        return info, sha, size

    def test_a_cold_miss_arrives_at_the_cap_and_a_hit_at_lan_speed(self):
        self.start({"wan": {"rate": "8Mbit/s"}})
        self.assertEqual(self.metric("storecache_wan_rate_limit_bytes_per_second"), RATE)
        size = 10 * RATE  # ten seconds' worth
        path = "/gen/capped?size=%d&cc=max-age=600" % size
        t0 = time.monotonic()
        info, sha, got = self.get_sha(path)
        took = time.monotonic() - t0
        self.assertEqual((got, sha), (size, gen_sha256("capped", size)))
        # measured over 10 s: within 10 % of the cap (the bucket holds a tenth of a second)
        rate = size / took
        self.assertGreater(rate, 0.9 * RATE, f"{took:.2f} s")
        self.assertLess(rate, 1.1 * RATE, f"{took:.2f} s")
        self.assertEqual(self.metric("storecache_wan_bytes_total", **{"class": "device"}), size)
        self.assertGreater(self.metric("storecache_wan_throttled_seconds_total",
                                       **{"class": "device"}), 5)
        # the same object again is a hit: no upstream read, not paced
        t0 = time.monotonic()
        info, sha, got = self.get_sha(path)
        self.assertLess(time.monotonic() - t0, 3.0)
        self.assertEqual(sha, gen_sha256("capped", size))
        self.assertEqual(self.metric("storecache_wan_bytes_total", **{"class": "device"}), size)

    def test_a_sites_own_cap_paces_that_site(self):
        # all sites 8 Mbit/s; this site 4 Mbit/s: its miss arrives at 500 kB/s
        self.start({"wan": {"rate": "8Mbit/s"}, "site": [{"wan": {"rate": "4Mbit/s"}}]})
        self.assertEqual(self.metric("storecache_wan_site_rate_limit_bytes_per_second",
                                     site=SITE), RATE / 2)
        size = 2 * RATE
        t0 = time.monotonic()
        _, sha, got = self.get_sha("/gen/site-capped?size=%d&cc=max-age=600" % size)
        took = time.monotonic() - t0
        self.assertEqual((got, sha), (size, gen_sha256("site-capped", size)))
        self.assertGreater(size / took, 0.85 * RATE / 2, f"{took:.2f} s")
        self.assertLess(size / took, 1.15 * RATE / 2, f"{took:.2f} s")

    def test_a_device_miss_goes_before_prefetch_and_a_reload_lifts_the_cap(self):
        big = "/gen/night-video?size=%d&cc=max-age=600" % (8 * RATE)
        stack = harness.Stack(overrides={"wan": {"rate": "8Mbit/s"},
                                         "site": [{"prefetch": [
                                             {"url": "/lists/night.txt", "name": "night"}]}]})
        self.stack = stack
        root = os.path.join(stack.tmp, "www", "lists")
        os.makedirs(root)
        with open(os.path.join(root, "night.txt"), "w") as f:
            f.write(big + "\n")
        stack.origin.root = os.path.realpath(os.path.join(stack.tmp, "www"))
        stack.origin.program("/lists/", cc="max-age=600")
        stack.start()
        # prefetch reads the big object in the background, at the cap
        harness.poll(lambda: self.metric("storecache_wan_bytes_total", **{"class": "background"}),
                     lambda v: v > 0.5 * RATE, 15)
        # a device's cold miss of 1 MB meanwhile: alone at the cap it takes about a second;
        # sharing the cap with the prefetch it would take two
        size = RATE
        t0 = time.monotonic()
        info, sha, got = self.get_sha("/gen/shift-start?size=%d&cc=max-age=600" % size)
        took = time.monotonic() - t0
        self.assertEqual(sha, gen_sha256("shift-start", size))
        self.assertLess(took, 1.6, "the device's miss shared the cap with the prefetch")
        self.assertLess(info.get("time_starttransfer", 9), 0.5, info)
        self.assertGreater(self.metric("storecache_wan_throttled_total",
                                       **{"class": "background"}), 0)
        self.assertEqual(self.metric("storecache_prefetch_running", site=SITE, source="night"), 1,
                         "the prefetch is still going: it did wait for the device")

        # lifting the cap on reload: the rest of the prefetch arrives at loopback speed
        del stack.config["wan"]
        stack.rewrite_config()
        stack.daemon.signal(signal.SIGHUP)
        harness.poll(lambda: self.metric("storecache_wan_rate_limit_bytes_per_second"),
                     lambda v: v == 0, 10)
        harness.poll(lambda: self.metric("storecache_prefetch_ready_ratio", site=SITE,
                                         source="night"), lambda v: v == 1, 10)
        self.assertEqual(self.metric("storecache_prefetch_ready_ratio", site=SITE,
                                     source="night"), 1)
        self.assertIn("wan: upstream rate cap now 1000000 B/s (8 Mbit/s)",
                      stack.daemon.stderr_text())
        self.assertIn("wan: no upstream rate cap in force", stack.daemon.stderr_text())


    def test_a_window_caps_until_its_local_end_and_then_lets_go(self):
        # 4 Mbit/s in a window that ends with the daemon's local minute, 8 s from now; no cap
        # outside it. A miss that would take 20 s at the window's rate is paced until the
        # window ends, then arrives at loopback speed.
        zone = harness.ShiftedZone(8)
        self.stack = harness.Stack(overrides={"wan": {"window": [
            {"hours": zone.window(0, 1), "rate": "4Mbit/s"}]}})
        self.stack.start(env=zone.env)
        self.assertEqual(self.metric("storecache_wan_rate_limit_bytes_per_second"), RATE / 2)
        size = 10 * RATE
        t0 = time.time()
        _, sha, got = self.get_sha("/gen/windowed?size=%d&cc=max-age=600" % size)
        done = time.time()
        self.assertEqual((got, sha), (size, gen_sha256("windowed", size)))
        # paced while the window lasted: at RATE/2 it could not have finished before its end
        self.assertGreater(done, zone.boundary - 1, f"done {done - t0:.1f} s after the start")
        self.assertGreater(t0 + size / (RATE / 2), zone.boundary + 5, "the window was too long")
        # and let go within a second or two of the end (the rate is re-read every second)
        self.assertLess(done, zone.boundary + 3, f"done {done - zone.boundary:.1f} s after")
        self.assertEqual(self.metric("storecache_wan_rate_limit_bytes_per_second"), 0)
        self.assertIn("wan: no upstream rate cap in force", self.stack.daemon.stderr_text())


if __name__ == "__main__":
    harness.main()
