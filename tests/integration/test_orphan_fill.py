#!/usr/bin/env python3
"""Fills nobody reads (issue: one device can make storecache pull gigabytes over the WAN).

A device that asks for a large object and goes away must not leave storecache fetching the
rest over the store's WAN: the fill pauses for cache.orphan_grace, then stops and stores
nothing — unless the object is small, mostly there, or wanted by several devices. A device
back within the grace resumes the same fetch.
"""

import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import harness  # noqa: E402
from origin import gen_sha256  # noqa: E402

MiB = 1 << 20
GRACE = 2.0


def q(**params):
    return urllib.parse.urlencode(params)


class OrphanFillTest(harness.StackTest):
    stack_args = {"overrides": {"cache": {"orphan_grace": f"{int(GRACE * 1000)}ms"}}}

    def tearDown(self):
        self.assertHealthy()

    def open_and_leave(self, path, read_bytes, source=None, headers=()):
        """A device: asks for path over HTTP/1.1, reads the head and read_bytes of the body,
        then closes the connection. Returns the status."""
        s = harness.tls_socket(self.stack.port, harness.SITE, self.stack.ca, timeout=10,
                               source=source)
        try:
            extra = "".join(f"{h}\r\n" for h in headers)
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {harness.SITE}\r\n{extra}\r\n".encode())
            buf = b""
            while b"\r\n\r\n" not in buf:
                data = s.recv(65536)
                self.assertTrue(data, "closed before the response head")
                buf += data
            head, _, body = buf.partition(b"\r\n\r\n")
            got = len(body)
            while got < read_bytes:
                data = s.recv(65536)
                if not data:
                    break
                got += len(data)
            return int(head.split(b" ")[1])
        finally:
            s.close()

    def orphans(self, outcome):
        return self.metric("storecache_orphan_fills_total", outcome=outcome)

    def assert_finished_once(self, outcome, before, name, path, size, timeout):
        """The orphaned fill of /gen/name finished for `outcome`: the next device gets a hit
        and the origin was asked once."""
        self.wait_metric("storecache_orphan_fills_total", lambda v: v == before + 1,
                         timeout=timeout, outcome=outcome)
        r = self.get(path)
        self.assertEqual(len(r.body), size)
        self.assertIs(self.cs(r).get("hit"), True, r.headers)
        self.assertEqual(self.stack.origin.count(f"/gen/{name}"), 1)

    def test_big_object_left_alone_stops_and_stores_nothing(self):
        name, size = "orph-big", 20 * MiB
        path = f"/gen/{name}?" + q(size=size, cc="max-age=600", rate=8 * MiB)
        stopped = self.orphans("stop")
        inserts = self.metric("storecache_cache_inserts_total")
        read_before = self.metric("storecache_upstream_bytes_total")
        self.assertEqual(self.open_and_leave(path, 256 * 1024), 200)
        self.wait_metric("storecache_orphan_fills_total", lambda v: v == stopped + 1,
                         timeout=GRACE + 5, outcome="stop")
        time.sleep(0.5)  # anything still in flight would show in the origin's count now
        # What the fill read: it stopped reading soon after the device left.
        read = self.metric("storecache_upstream_bytes_total") - read_before
        self.assertLess(read, 2 * MiB, f"{read / MiB:.1f} MiB read for a device that left")
        # What the origin sent also counts what sat in the sockets' buffers when the fill
        # paused: the kernel grows a loopback receive buffer to several MiB (tcp_rmem), so
        # this bound is looser; both are far below the object's 20 MiB.
        sent = self.stack.origin.sent_bytes(f"/gen/{name}")
        self.assertLess(sent, 10 * MiB, f"{sent / MiB:.1f} MiB fetched for a device that left")
        log = self.stack.origin.requests(f"/gen/{name}")
        self.assertEqual(len(log), 1)
        self.assertNotIn("done_time", log[0])
        self.assertEqual(self.metric("storecache_cache_inserts_total"), inserts, "nothing stored")
        self.assertEqual(self.metric("storecache_cache_fills_in_flight"), 0)
        # the next device starts afresh and gets the whole, correct object
        res = harness.curl_stream(self.stack.url(path), ca=self.stack.ca,
                                  resolve=self.stack.resolve(), timeout=30)
        self.assertEqual((res["exit"], res["size"], res["sha256"]),
                         (0, size, gen_sha256(name, size)))
        self.assertEqual(self.stack.origin.count(f"/gen/{name}"), 2)

    def test_small_object_left_alone_is_finished(self):
        name, size = "orph-small", 512 * 1024
        path = f"/gen/{name}?" + q(size=size, cc="max-age=600", rate=256 * 1024)
        small = self.orphans("small")
        self.open_and_leave(path, 16 * 1024)
        self.assert_finished_once("small", small, name, path, size, timeout=10)

    def test_object_two_devices_asked_for_is_finished(self):
        name, size = "orph-wanted", 12 * MiB
        path = f"/gen/{name}?" + q(size=size, cc="max-age=600", rate=6 * MiB)
        wanted = self.orphans("wanted")
        self.open_and_leave(path, 64 * 1024, source="127.0.0.1")
        # the second device joins while the first still reads (the fill is paused at most
        # GRACE after the first left, and a join resumes it)
        self.open_and_leave(path, 64 * 1024, source="127.0.0.2")
        self.assert_finished_once("wanted", wanted, name, path, size, timeout=15)

    def test_device_back_within_the_grace_resumes_the_same_fetch(self):
        name, size = "orph-back", 16 * MiB
        path = f"/gen/{name}?" + q(size=size, cc="max-age=600", rate=8 * MiB)
        resumed = self.orphans("resumed")
        self.open_and_leave(path, 128 * 1024)
        self.wait_metric("storecache_orphan_fills_paused", lambda v: v == 1, timeout=GRACE)
        res = harness.curl_stream(self.stack.url(path), ca=self.stack.ca,
                                  resolve=self.stack.resolve(), timeout=30)
        self.assertEqual((res["exit"], res["size"], res["sha256"]),
                         (0, size, gen_sha256(name, size)))
        self.assertEqual(self.stack.origin.count(f"/gen/{name}"), 1)
        self.assertGreaterEqual(self.orphans("resumed"), resumed + 1)

    def test_cold_seek_left_alone_stops_the_background_fill(self):
        name, size = "orph-seek", 40 * MiB
        path = f"/gen/{name}?" + q(size=size, cc="max-age=600", etag="s1", rate=8 * MiB)
        stopped = self.orphans("stop")
        r = self.get(path, headers=[f"Range: bytes={size - MiB}-"])
        self.assertEqual(r.status, 206)
        self.wait_metric("storecache_orphan_fills_total", lambda v: v == stopped + 1,
                         timeout=GRACE + 5, outcome="stop")
        whole = [e for e in self.stack.origin.requests(f"/gen/{name}")
                 if not any(k.lower() == "range" for k, _ in e["headers"])]
        self.assertEqual(len(whole), 1, "one background fill")
        self.assertLess(whole[0].get("sent", 0), size / 2)


if __name__ == "__main__":
    harness.main()
