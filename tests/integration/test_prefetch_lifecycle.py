#!/usr/bin/env python3
"""Prefetch over a source's life: a window that closes mid-run and the run that resumes, a
listed object the upstream forbids storing, a reload that swaps sources, device misses that
hold every upstream slot, listings that name themselves or each other (issue 8).

Each test has a daemon of its own (real TLS, the test origin on loopback) and waits by polling
/metrics and the origin's request log, never by a fixed sleep it depends on."""

import os
import signal
import sys
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import harness  # noqa: E402
from test_prefetch import window_from_now, write_tree  # noqa: E402

SITE = harness.SITE


def samples_of(m, name, **labels):
    """The samples of a family that carry the given labels (present, whatever their value)."""
    want = set(labels.items())
    return {lab: v for (n, lab), v in m.items() if n == name and want <= set(lab)}


class LifecycleTest(unittest.TestCase):
    """Helpers; every test builds its own stack (their configs differ)."""

    def make_stack(self, files, overrides):
        stack = harness.Stack(overrides=overrides)
        self.addCleanup(self.close_stack, stack)
        root = os.path.join(stack.tmp, "www")
        write_tree(root, files)
        stack.origin.root = os.path.realpath(root)
        return stack

    def close_stack(self, stack):
        alive = stack.daemon is not None and stack.daemon.proc.poll() is None
        err = stack.daemon.stderr_text()[-4000:] if stack.daemon else ""
        code = stack.close()
        if stack.daemon is not None:
            self.assertTrue(alive, "daemon died; stderr:\n" + err)
            self.assertEqual(code, 0, "storecache did not stop cleanly; stderr:\n" + err)

    def metric(self, stack, name, **labels):
        return harness.metric_sum(stack.metrics(), name, **labels)

    def wait_for(self, stack, name, pred, timeout, **labels):
        value = harness.poll(lambda: self.metric(stack, name, **labels), pred, timeout,
                             interval=0.1)
        self.assertTrue(pred(value), f"{name}{labels} = {value} after {timeout}s")
        return value

    def wait_ready(self, stack, source, listed, timeout=20.0):
        self.wait_for(stack, "storecache_prefetch_objects", lambda v: v == listed, timeout,
                      site=SITE, source=source, state="fresh")
        self.wait_for(stack, "storecache_prefetch_running", lambda v: v == 0, timeout,
                      site=SITE, source=source)

    def reload(self, stack):
        stack.rewrite_config()
        stack.daemon.signal(signal.SIGHUP)


class WindowClosesMidRunTest(LifecycleTest):
    """A window that closes while objects are still being fetched stops the run between two
    objects; what was not reached stays missing; the next window fetches only that."""

    N = 8
    SIZE = 40_000

    def obj(self, i):
        return "/gen/win-%02d?size=%d&cc=max-age=600" % (i, self.SIZE)

    def test_window_end_stops_the_run_and_the_next_window_resumes(self):
        listing = "".join(self.obj(i) + "\n" for i in range(self.N))
        source = {"url": "/lists/win.txt", "name": "win", "interval": "1h"}
        stack = self.make_stack({"/lists/win.txt": listing.encode()},
                                {"prefetch": {"connections": 1}, "site": [{"prefetch": [source]}]})
        stack.origin.program("/lists/", cc="max-age=600")

        # The window runs from the daemon's local minute to the next, which ends 16 s from now:
        # its time zone is shifted so (harness.ShiftedZone), not the real clock waited for.
        zone = harness.ShiftedZone(16)
        boundary = zone.boundary
        left = boundary - time.time()
        source["windows"] = [zone.window(0, 1)]
        # Each object takes about a quarter of what is left of the window: about four are
        # fetched before it closes, the rest are not reached.
        per_object = left / 4
        stack.origin.program("/gen/win-", rate=int(self.SIZE / per_object))
        stack.rewrite_config()
        stack.start(env=zone.env)

        self.wait_for(stack, "storecache_prefetch_running", lambda v: v == 1, 10, site=SITE,
                      source="win")
        time.sleep(max(0.0, boundary - time.time()))  # the end of the window
        # the object in flight at the boundary ends; no other starts
        self.wait_for(stack, "storecache_prefetch_running", lambda v: v == 0, per_object + 10,
                      site=SITE, source="win")
        first = stack.origin.requests("/gen/win-")
        late = [(e["path"], round(e["time"] - boundary, 2)) for e in first
                if e["time"] > boundary + 0.3]
        self.assertEqual(late, [], "objects requested after the window closed")
        self.assertGreaterEqual(len(first), 2, "the run did not get going before the boundary")
        self.assertLess(len(first), self.N, "the run was not cut: it fetched everything")
        for e in first:
            self.assertIn("done_time", e, f"{e['path']}: cut mid-body, not between objects")
        m = stack.metrics()
        got = {state: harness.metric_sum(m, "storecache_prefetch_objects", site=SITE,
                                         source="win", state=state)
               for state in ("fresh", "missing", "failed")}
        # the listing and every object fetched are fresh; the others missing
        self.assertEqual(got, {"fresh": 1 + len(first), "missing": self.N - len(first),
                               "failed": 0})
        self.assertEqual(harness.metric_sum(m, "storecache_prefetch_runs_total", site=SITE,
                                            source="win"), 1)
        # its next run is the window's next opening, a day away
        nxt = self.wait_for(stack, "storecache_prefetch_next_run_timestamp_seconds",
                            lambda v: v - time.time() > 23 * 3600, 5, site=SITE, source="win")
        self.assertLess(nxt - time.time(), 24 * 3600)
        self.assertEqual(stack.origin.requests("/gen/win-"), first, "requests after running = 0")

        # The window opens again (a reload leaves it out: always): the run resumes, fast now.
        fetched_before = {e["path"] for e in first}
        stack.origin.reset()
        stack.origin.program("/lists/", cc="max-age=600")
        del source["windows"]
        reloaded = time.monotonic()
        self.reload(stack)
        self.wait_ready(stack, "win", self.N + 1, timeout=15)
        took = time.monotonic() - reloaded
        self.assertLess(took, 10, f"the reloaded source ran {took:.1f}s after the SIGHUP")
        second = [e["path"] for e in stack.origin.requests("/gen/win-")]
        self.assertEqual(sorted(second), sorted(set(second)), "an object requested twice")
        self.assertEqual(set(second), {"/gen/win-%02d" % i for i in range(self.N)} -
                         fetched_before)
        # (the listing is stored as an object too: fetched once, in the first run)
        self.assertEqual(self.metric(stack, "storecache_prefetch_fetched_objects_total",
                                     site=SITE, source="win"), self.N + 1)


class NotStorableTest(LifecycleTest):
    """A listed object the upstream marks no-store or private is reported failed, with why,
    and is not stored; the others are fresh."""

    OK = "/gen/ns-ok?size=3000&cc=max-age=600"
    NO_STORE = "/gen/ns-nostore?size=2000&cc=no-store"
    PRIVATE = "/gen/ns-private?size=1000&cc=private"

    def test_no_store_and_private_objects_fail_with_a_reason(self):
        listing = "\n".join([self.OK, self.NO_STORE, self.PRIVATE]) + "\n"
        stack = self.make_stack({"/lists/ns.txt": listing.encode()},
                                {"site": [{"prefetch": [{"url": "/lists/ns.txt", "name": "ns",
                                                         "interval": "1h"}]}]})
        stack.origin.program("/lists/", cc="max-age=600")
        stack.start()
        self.wait_for(stack, "storecache_prefetch_runs_total", lambda v: v >= 1, 20, site=SITE,
                      source="ns")
        m = stack.metrics()
        got = {state: harness.metric_sum(m, "storecache_prefetch_objects", site=SITE,
                                         source="ns", state=state)
               for state in ("fresh", "missing", "failed")}
        self.assertEqual(got, {"fresh": 2, "missing": 0, "failed": 2})  # listing + OK fresh
        self.assertEqual(harness.metric_sum(m, "storecache_prefetch_ready_ratio", site=SITE,
                                            source="ns"), 0.5)
        # stored: the OK object and the listing (read, then stored as an object too)
        self.assertEqual(harness.metric_sum(m, "storecache_prefetch_fetched_objects_total",
                                            site=SITE, source="ns"), 2)
        # one log line for the source, naming one of the two and why
        err = stack.daemon.stderr_text()
        lines = [l for l in err.splitlines() if "prefetch %s/ns:" % SITE in l]
        self.assertEqual(len(lines), 1, err[-3000:])
        self.assertRegex(lines[0], r"2 of 4 object\(s\) failed, e\.g\. GET "
                                   r"/gen/ns-(nostore|private)\?\S+: not storable")
        # the status page shows the last error
        with urllib.request.urlopen(f"http://127.0.0.1:{stack.admin_port}/", timeout=10) as r:
            page = r.read().decode()
        self.assertRegex(page, r"GET /gen/ns-(nostore|private)\?[^<]*: not storable")

        # devices: the two are misses that go upstream; the other is a hit
        for path in (self.NO_STORE, self.PRIVATE):
            before = stack.origin.count(path.split("?")[0])
            r = stack.curl(path)
            self.assertEqual((r.exit, r.status), (0, 200), r)
            self.assertNotEqual(harness.our_cache_status(r).get("hit"), True, r)
            self.assertEqual(stack.origin.count(path.split("?")[0]) - before, 1, path)
        before = stack.origin.count("/gen/ns-ok")
        r = stack.curl(self.OK)
        self.assertEqual((r.exit, r.status, len(r.body)), (0, 200, 3000), r)
        self.assertEqual(harness.our_cache_status(r).get("hit"), True, r)
        self.assertEqual(stack.origin.count("/gen/ns-ok"), before)


class ReloadSwapsSourcesTest(LifecycleTest):
    """A reload that removes source A and adds B: A's samples leave /metrics, its run stops
    between two objects and nothing of it is fetched afterwards; B runs."""

    def a_obj(self, i):
        return "/gen/swap-a-%d?size=20000&cc=max-age=600" % i

    def b_obj(self, i):
        return "/gen/swap-b-%d?size=2000&cc=max-age=600" % i

    def test_reload_removes_a_and_adds_b(self):
        files = {"/lists/a.txt": "".join(self.a_obj(i) + "\n" for i in range(8)).encode(),
                 "/lists/b.txt": "".join(self.b_obj(i) + "\n" for i in range(3)).encode()}
        a = {"url": "/lists/a.txt", "name": "A", "interval": "10s"}
        b = {"url": "/lists/b.txt", "name": "B", "interval": "1h"}
        stack = self.make_stack(files, {"prefetch": {"connections": 1},
                                        "site": [{"prefetch": [a]}]})
        stack.origin.program("/lists/", cc="max-age=600")
        # A's objects take 1.5 s each: A's run is still going when the reload comes
        stack.origin.program("/gen/swap-a-", rate=13_334)
        stack.start()
        harness.poll(lambda: len(stack.origin.requests("/gen/swap-a-")), lambda n: n >= 2, 15)
        self.assertGreaterEqual(len(stack.origin.requests("/gen/swap-a-")), 2)
        self.assertEqual(self.metric(stack, "storecache_prefetch_running", site=SITE,
                                     source="A"), 1)
        self.assertEqual(self.metric(stack, "storecache_prefetch_listed_objects", site=SITE,
                                     source="A"), 9)

        stack.config["site"][0]["prefetch"] = [b]
        reloaded = time.time()
        self.reload(stack)
        self.wait_ready(stack, "B", 4)
        # A is gone from /metrics (every family)
        m = harness.poll(stack.metrics,
                         lambda m: not any(("source", "A") in lab for (_, lab) in m), 10)
        gone = sorted({n for (n, lab) in m if ("source", "A") in lab})
        self.assertEqual(gone, [], "families still showing the removed source")
        self.assertEqual(harness.metric_sum(m, "storecache_prefetch_listed_objects", site=SITE,
                                            source="B"), 4)
        # nothing of A started after the reload (the object in flight may end): once that one
        # has ended, watch for a next one as long as an object takes and more
        def late_requests():
            return [(e["path"], round(e["time"] - reloaded, 2))
                    for e in stack.origin.requests()
                    if e["path"].startswith(("/gen/swap-a-", "/lists/a.txt"))
                    and e["time"] > reloaded + 0.3]
        harness.poll(lambda: [e for e in stack.origin.requests("/gen/swap-a-")
                              if "done_time" not in e], lambda v: not v, 5)
        late = harness.poll(late_requests, bool, 2.5, interval=0.1)
        self.assertEqual(late, [], "A fetched after the reload removed it")
        self.assertLess(len(stack.origin.requests("/gen/swap-a-")), 8)
        got = sorted(e["path"] for e in stack.origin.requests("/gen/swap-b-"))
        self.assertEqual(got, ["/gen/swap-b-%d" % i for i in range(3)])


class WaitsForUpstreamSlotsTest(LifecycleTest):
    """[limits] upstream_fetches = 1 and a device's slow fill holds it: prefetch fetches
    nothing (neither its listing nor the object) until the device's fill ends, then does."""

    DEVICE = "/gen/slot-device?size=300000&rate=75000&cc=max-age=600"  # ~4 s
    LISTED = "/gen/slot-listed?size=5000&cc=max-age=600"

    def test_prefetch_waits_for_the_devices_upstream_slot(self):
        source = {"url": "/lists/slot.txt", "name": "slot", "interval": "1h",
                  "windows": [window_from_now(120, 180)]}
        stack = self.make_stack({"/lists/slot.txt": (self.LISTED + "\n").encode()},
                                {"limits": {"upstream_fetches": 1,
                                            "upstream_fetches_per_site": 1},
                                 "site": [{"prefetch": [source]}]})
        stack.origin.program("/lists/", cc="max-age=600")
        stack.start()
        result = {}
        device = threading.Thread(target=lambda: result.update(
            r=harness.curl_stream(stack.url(self.DEVICE), ca=stack.ca,
                                  resolve=stack.resolve(), timeout=30)))
        device.start()
        try:
            harness.poll(lambda: stack.origin.requests("/gen/slot-device"), bool, 10)
            self.assertEqual(self.metric(stack, "storecache_upstream_fetches"), 1)
            # the window opens now: the source runs while the device holds the one slot
            del source["windows"]
            self.reload(stack)
            self.wait_for(stack, "storecache_prefetch_running", lambda v: v == 1, 10, site=SITE,
                          source="slot")
            self.assertNotIn("done_time", stack.origin.requests("/gen/slot-device")[0],
                             "the device's fill ended before prefetch ran: nothing was tested")
        finally:
            device.join(40)
        self.assertEqual((result["r"]["exit"], result["r"]["size"]), (0, 300_000), result)
        self.wait_ready(stack, "slot", 2)
        dev = stack.origin.requests("/gen/slot-device")
        self.assertEqual(len(dev), 1)
        ended = dev[0]["done_time"]
        prefetch = [e for e in stack.origin.requests()
                    if e["path"] in ("/lists/slot.txt", "/gen/slot-listed")]
        # the listing (read and stored as an object by one request), then the object
        self.assertEqual(sorted(e["path"] for e in prefetch),
                         ["/gen/slot-listed", "/lists/slot.txt"])
        early = [(e["path"], round(e["time"] - ended, 2)) for e in prefetch if e["time"] < ended]
        self.assertEqual(early, [], "prefetch took an upstream slot a device held")
        self.assertLessEqual(self.metric(stack, "storecache_upstream_fetches_max"), 1)


class ListingLoopsTest(LifecycleTest):
    """A listing that names itself, and two that name each other: each read once per run, the
    run ends, the source is whole."""

    SELF = "\n".join(["/loop/self.m3u8", "/gen/loop-self?size=500&cc=max-age=600"]) + "\n"
    A = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=100000\nb.m3u8\n"
    B = ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=100000\na.m3u8\n"
         "#EXT-X-STREAM-INF:BANDWIDTH=200000\nmedia.m3u8\n")
    MEDIA = ("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-PLAYLIST-TYPE:VOD\n"
             "#EXTINF:6.0,\n/gen/loop-seg?size=700&cc=max-age=600\n#EXT-X-ENDLIST\n")

    def test_listings_that_name_themselves_or_each_other(self):
        files = {"/loop/self.m3u8": self.SELF.encode(), "/loop/a.m3u8": self.A.encode(),
                 "/loop/b.m3u8": self.B.encode(), "/loop/media.m3u8": self.MEDIA.encode()}
        sources = [{"url": "/loop/self.m3u8", "name": "self", "kind": "url_list",
                    "interval": "10s"},
                   {"url": "/loop/a.m3u8", "name": "pair", "interval": "10s"}]
        stack = self.make_stack(files, {"site": [{"prefetch": sources}]})
        stack.origin.program("/loop/", cc="max-age=600")
        stack.start()
        for name, fresh in (("self", 2), ("pair", 4)):  # listings included
            self.wait_for(stack, "storecache_prefetch_runs_total", lambda v: v >= 2, 30,
                          site=SITE, source=name)
            self.wait_ready(stack, name, fresh)
            m = stack.metrics()
            self.assertEqual(harness.metric_sum(m, "storecache_prefetch_listing_ok", site=SITE,
                                                source=name), 1, name)
            self.assertEqual(harness.metric_sum(m, "storecache_prefetch_listed_objects",
                                                site=SITE, source=name), fresh, name)
        runs = {name: self.metric(stack, "storecache_prefetch_runs_total", site=SITE,
                                  source=name) for name in ("self", "pair")}
        # each listing read once a run (a run under way may have read it once more): the
        # first read stores it as an object, the later ones are conditional, through the cache
        for path, name in (("/loop/self.m3u8", "self"), ("/loop/a.m3u8", "pair"),
                           ("/loop/b.m3u8", "pair"), ("/loop/media.m3u8", "pair")):
            n = stack.origin.count(path)
            self.assertIn(n, (runs[name], runs[name] + 1), f"{path}: {n} reads in "
                          f"{runs[name]} runs")
        self.assertEqual(stack.origin.count("/gen/loop-self"), 1)
        self.assertEqual(stack.origin.count("/gen/loop-seg"), 1)



class NoStoreListingTest(LifecycleTest):
    """A listing the upstream marks no-store is not kept by the cache: it is read by a request
    of its own (after the fill that learnt it may not be stored), and what it lists is stored."""

    def test_a_no_store_listing_is_read_and_its_objects_stored(self):
        obj = "/gen/nsl-obj?size=5000&cc=max-age=600"
        stack = self.make_stack({"/lists/nsl.txt": (obj + "\n").encode()},
                                {"site": [{"prefetch": [{"url": "/lists/nsl.txt",
                                                          "name": "nsl"}]}]})
        stack.origin.program("/lists/", cc="no-store")
        stack.start()
        self.wait_for(stack, "storecache_prefetch_runs_total", lambda v: v >= 1, 20, site=SITE,
                      source="nsl")
        m = stack.metrics()
        self.assertEqual(harness.metric_sum(m, "storecache_prefetch_listing_ok", site=SITE,
                                            source="nsl"), 1)
        # the object is stored; the listing itself is reported failed (not storable)
        self.assertEqual(harness.metric_sum(m, "storecache_prefetch_objects", site=SITE,
                                            source="nsl", state="fresh"), 1)
        self.assertEqual(stack.origin.count("/gen/nsl-obj"), 1)
        # the cost named in the note: two requests for a no-store listing in a run
        self.assertEqual(stack.origin.count("/lists/nsl.txt"), 2)
        r = stack.curl("/gen/nsl-obj?size=5000&cc=max-age=600")
        self.assertEqual(harness.our_cache_status(r).get("hit"), True, r)

class WrongListingTest(LifecycleTest):
    """A listing URL that names a 30 MB video by mistake: refused at its declared size, and the
    fetch the cache had started for it is left to the orphan rules (large, nobody reading: it
    pauses, then stops), so the WAN carries a few socket buffers of it, not 30 MB."""

    def test_a_listing_that_is_a_video_costs_little(self):
        source = {"url": "/gen/wrong.mp4?size=30000000&cc=max-age=600", "name": "wrong",
                  "kind": "url_list"}
        stack = self.make_stack({}, {"site": [{"prefetch": [source]}]})
        stack.start()
        self.wait_for(stack, "storecache_prefetch_runs_total", lambda v: v >= 1, 20, site=SITE,
                      source="wrong")
        self.wait_for(stack, "storecache_orphan_fills_total", lambda v: v >= 1, 20,
                      outcome="stop")
        m = stack.metrics()
        self.assertEqual(harness.metric_sum(m, "storecache_prefetch_listing_ok", site=SITE,
                                            source="wrong"), 0)
        self.assertEqual(harness.metric_sum(m, "storecache_cache_objects"), 0)
        lines = [l for l in stack.daemon.stderr_text().splitlines()
                 if "listing /gen/wrong.mp4" in l]
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("30000000 bytes, over [prefetch] max_listing_size", lines[0])
        self.assertEqual(stack.origin.count("/gen/wrong.mp4"), 1)
        sent = stack.origin.sent_bytes("/gen/wrong.mp4")
        self.assertLess(sent, 8_000_000, f"{sent} bytes of the 30 MB crossed the WAN")

if __name__ == "__main__":
    harness.main()
