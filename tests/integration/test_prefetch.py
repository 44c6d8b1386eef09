#!/usr/bin/env python3
"""Prefetch: [[site.prefetch]] sources read inside their windows, every object they list
brought into the cache through the same fill as a device's miss, readiness in /metrics.

The origin serves a static tree: a URL list naming a SCORM 2004 manifest (with xml:base) and an
HLS ladder (master, two media playlists with EXT-X-MAP), images, an off-site URL; a source
outside its window; a listing that answers 404; a malformed manifest."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import harness  # noqa: E402
from origin import gen_sha256  # noqa: E402

SITE = harness.SITE
MiB = 1 << 20

WEEK = """# week 49: what the stores need before Monday
/img/a.png
/img/b.png
https://%s/img/c.png
https://evil.example.net/x.mp4

/course/imsmanifest.xml
/hls/master.m3u8
""" % SITE

MANIFEST = """<?xml version="1.0" encoding="UTF-8"?>
<manifest identifier="safety" version="1.0"
    xmlns="http://www.imsglobal.org/xsd/imscp_v1p1"
    xmlns:adlcp="http://www.adlnet.org/xsd/adlcp_v1p3">
  <organizations default="org"><organization identifier="org"><title>Safety</title>
    <item identifier="i1" identifierref="r1"><title>Lesson 1</title></item>
  </organization></organizations>
  <resources xml:base="content/">
    <resource identifier="r1" type="webcontent" adlcp:scormType="sco" href="index.html">
      <file href="index.html"/>
      <file href="app.js"/>
      <file href="media/v.mp4"/>
    </resource>
  </resources>
</manifest>
"""

MASTER = """#EXTM3U
#EXT-X-STREAM-INF:BANDWIDTH=400000,RESOLUTION=640x360
low/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=2400000,RESOLUTION=1280x720
high/index.m3u8
"""

MEDIA = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:6
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-MAP:URI="init.mp4"
#EXTINF:6.0,
seg1.m4s
#EXTINF:6.0,
seg2.m4s
#EXT-X-ENDLIST
"""

# Every object the "week" source lists, listings included, and its size in the tree.
FILES = {
    "/lists/week.txt": WEEK.encode(),
    "/img/a.png": os.urandom(3000),
    "/img/b.png": os.urandom(5000),
    "/img/c.png": os.urandom(7000),
    "/course/imsmanifest.xml": MANIFEST.encode(),
    "/course/content/index.html": b"<html><body>lesson</body></html>\n",
    "/course/content/app.js": b"console.log('scorm');\n" * 50,
    "/course/content/media/v.mp4": os.urandom(300_000),
    "/hls/master.m3u8": MASTER.encode(),
}
for rung in ("low", "high"):
    FILES[f"/hls/{rung}/index.m3u8"] = MEDIA.encode()
    FILES[f"/hls/{rung}/init.mp4"] = os.urandom(800)
    FILES[f"/hls/{rung}/seg1.m4s"] = os.urandom(40_000 if rung == "low" else 120_000)
    FILES[f"/hls/{rung}/seg2.m4s"] = os.urandom(40_000 if rung == "low" else 120_000)
OTHER_FILES = {
    "/course2/imsmanifest.xml": MANIFEST.encode(),
    "/bad/imsmanifest.xml": b"<manifest><resources><resource href='a.html'></resources>",
    # over [prefetch] max_listing_size (4 KiB in this test): refused, nothing of it fetched
    "/lists/huge.txt": b"".join(b"/huge/%05d.png\n" % i for i in range(1000)),
}


def window_from_now(start_min, end_min):
    """A "HH:MM-HH:MM" window in local time, start_min..end_min minutes from now."""
    now = time.localtime()
    base = now.tm_hour * 60 + now.tm_min

    def hhmm(m):
        m %= 24 * 60
        return "%02d:%02d" % (m // 60, m % 60)

    return f"{hhmm(base + start_min)}-{hhmm(base + end_min)}"


def write_tree(root, files):
    for path, data in files.items():
        full = os.path.join(root, path.lstrip("/"))
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(data)


class PrefetchTest(unittest.TestCase):
    """One daemon; its sources start as it starts."""

    @classmethod
    def setUpClass(cls):
        cls.later = window_from_now(120, 180)
        prefetch = [
            {"url": "/lists/week.txt", "name": "week", "interval": "10s"},
            {"url": "/course2/imsmanifest.xml", "name": "later", "windows": [cls.later]},
            {"url": "/lists/missing.txt", "name": "missing", "interval": "10s"},
            {"url": "/bad/imsmanifest.xml", "name": "bad", "kind": "ims_manifest"},
            {"url": "/lists/huge.txt", "name": "huge"},
            # 3 KiB at 300 B/s: each read well within the read timeout, the whole past 2 s
            {"url": "/gen/trickle.txt?size=3000&rate=300", "name": "trickle", "kind": "url_list"},
        ]
        cls.stack = harness.Stack(overrides={"prefetch": {"max_listing_size": "4KiB",
                                                          "listing_timeout": "2s"},
                                             "site": [{"prefetch": prefetch}]})
        try:
            root = os.path.join(cls.stack.tmp, "www")
            write_tree(root, FILES)
            write_tree(root, OTHER_FILES)
            cls.root = os.path.realpath(root)
            cls.stack.origin.root = cls.root
            cls.stack.origin.program("/", cc="max-age=3600")
            cls.stack.start()
        except BaseException:
            cls.stack.close()
            raise

    @classmethod
    def tearDownClass(cls):
        code = cls.stack.close()
        if code != 0:  # a clean stop with prefetch fills in flight, under ASan too
            raise AssertionError(f"storecache exited with {code}")

    def tearDown(self):
        self.assertIsNone(self.stack.daemon.proc.poll(),
                          "daemon died; stderr:\n" + self.stack.daemon.stderr_text()[-4000:])

    def metric(self, name, **labels):
        return harness.metric_sum(self.stack.metrics(), name, **labels)

    def wait_for(self, name, pred, timeout=30.0, **labels):
        value = harness.poll(lambda: self.metric(name, **labels), pred, timeout, interval=0.1)
        self.assertTrue(pred(value), f"{name}{labels} = {value} after {timeout}s")
        return value

    def wait_ready(self, source, listed, timeout=30.0):
        self.wait_for("storecache_prefetch_objects", lambda v: v == listed, timeout,
                      site=SITE, source=source, state="fresh")
        self.wait_for("storecache_prefetch_running", lambda v: v == 0, timeout, site=SITE,
                      source=source)

    def test_1_everything_listed_is_stored_before_any_device_asks(self):
        self.wait_ready("week", len(FILES))
        m = self.stack.metrics()
        got = {state: harness.metric_sum(m, "storecache_prefetch_objects", site=SITE,
                                         source="week", state=state)
               for state in ("fresh", "missing", "failed")}
        self.assertEqual(got, {"fresh": len(FILES), "missing": 0, "failed": 0})
        self.assertEqual(harness.metric_sum(m, "storecache_prefetch_listed_objects", site=SITE,
                                            source="week"), len(FILES))
        self.assertEqual(harness.metric_sum(m, "storecache_prefetch_ready_ratio", site=SITE,
                                            source="week"), 1.0)
        self.assertEqual(harness.metric_sum(m, "storecache_prefetch_bytes", site=SITE,
                                            source="week"),
                         sum(len(d) for d in FILES.values()))
        # the off-site URL is rejected, never fetched
        self.assertEqual(harness.metric_sum(m, "storecache_prefetch_rejected_references",
                                            site=SITE, source="week"), 1)
        self.assertEqual(harness.metric_sum(m, "storecache_prefetch_listing_ok", site=SITE,
                                            source="week"), 1)
        # each object crossed the WAN once (the listings: once more each, to be read)
        for path in FILES:
            if path.endswith((".txt", ".xml", ".m3u8")):
                continue
            n = len([e for e in self.stack.origin.requests(path) if e["path"] == path])
            self.assertEqual(n, 1, f"{path}: {n} upstream requests")
        # now the devices: every object is a hit, byte for byte, and the origin sees nothing
        before = self.stack.origin.count()
        for i, (path, data) in enumerate(FILES.items()):
            r = self.stack.curl(path, http2=(i % 2 == 1))
            self.assertEqual((r.exit, r.status), (0, 200), r)
            self.assertEqual(r.body, data, path)
            self.assertEqual(harness.our_cache_status(r).get("hit"), True, f"{path}: {r}")
        # (the sources' own listing re-reads, every 10 s, may fall in between: not devices')
        new = [e["path"] for e in self.stack.origin.requests()[before:]
               if not e["path"].endswith((".txt", ".xml", ".m3u8"))]
        self.assertEqual(new, [], "device requests that reached the origin")

    def test_2_unchanged_listings_cost_a_304_and_nothing_is_refetched(self):
        self.wait_ready("week", len(FILES))
        runs = self.metric("storecache_prefetch_runs_total", site=SITE, source="week")
        nm = self.metric("storecache_prefetch_listing_not_modified_total", site=SITE,
                         source="week")
        self.stack.origin.reset()
        self.stack.origin.program("/", cc="max-age=3600")
        self.wait_for("storecache_prefetch_runs_total", lambda v: v >= runs + 1, 30, site=SITE,
                      source="week")
        self.wait_ready("week", len(FILES))
        # the five listings (list, manifest, master, two media playlists) answered 304
        self.assertGreaterEqual(
            self.metric("storecache_prefetch_listing_not_modified_total", site=SITE,
                        source="week") - nm, 5)
        log = [e for e in self.stack.origin.requests()
               if not e["path"].startswith(("/lists/missing", "/bad/"))]
        paths = sorted(e["path"] for e in log)
        self.assertEqual(paths, sorted(["/lists/week.txt", "/course/imsmanifest.xml",
                                        "/hls/master.m3u8", "/hls/low/index.m3u8",
                                        "/hls/high/index.m3u8"]),
                         "a run over unchanged listings fetched objects")
        for e in log:
            names = {h[0].lower() for h in e["headers"]}
            self.assertIn("if-none-match", names, f"{e['path']}: not a conditional request")

    def test_3_a_changed_listing_fetches_only_what_is_new(self):
        self.wait_ready("week", len(FILES))
        fetched = self.metric("storecache_prefetch_fetched_objects_total", site=SITE,
                              source="week")
        new_png = os.urandom(4321)
        write_tree(self.root, {"/img/d.png": new_png})
        self.stack.origin.reset()
        self.stack.origin.program("/", cc="max-age=3600")
        with open(os.path.join(self.root, "lists/week.txt"), "a") as f:
            f.write("/img/d.png\n")
        self.wait_ready("week", len(FILES) + 1, timeout=40)
        # the changed listing (stored anew) and the new object
        self.assertEqual(self.metric("storecache_prefetch_fetched_objects_total", site=SITE,
                                     source="week") - fetched, 2)
        objects = [e["path"] for e in self.stack.origin.requests("/img/")]
        self.assertEqual(objects, ["/img/d.png"])
        # one request for the changed listing, and the cache holds its new text: a device
        # that reads the list gets the new one from the cache, not the copy stored before
        self.assertEqual(self.stack.origin.count("/lists/week.txt"), 1)
        r = self.stack.curl("/lists/week.txt")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.body.endswith(b"/img/d.png\n"), r.body[-200:])
        self.assertEqual(harness.our_cache_status(r).get("hit"), True, r)
        r = self.stack.curl("/img/d.png")
        self.assertEqual((r.status, r.body), (200, new_png))
        self.assertEqual(harness.our_cache_status(r).get("hit"), True, r)

    def test_6_the_prefetch_families_pass_promtool(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.stack.admin_port}/metrics",
                                    timeout=10) as resp:
            text = resp.read().decode()
        self.assertIn("storecache_prefetch_ready_ratio{", text)
        p = subprocess.run(["/usr/bin/promtool", "check", "metrics"], input=text.encode(),
                           capture_output=True, timeout=20)
        out = (p.stdout + p.stderr).decode("utf-8", "replace")
        self.assertEqual((p.returncode, out), (0, ""))

    def test_4_outside_its_window_a_source_fetches_nothing(self):
        # (the daemon has run for a while: "week" has run several times meanwhile)
        self.assertGreaterEqual(self.metric("storecache_prefetch_runs_total", site=SITE,
                                            source="week"), 2)
        self.assertEqual(self.stack.origin.count("/course2/"), 0)
        m = self.stack.metrics()
        self.assertEqual(harness.metric_sum(m, "storecache_prefetch_runs_total", site=SITE,
                                            source="later"), 0)
        self.assertEqual(harness.metric_sum(m, "storecache_prefetch_listed_objects", site=SITE,
                                            source="later"), 0)
        # its next run is the opening of its window, two hours from now
        nxt = harness.metric_sum(m, "storecache_prefetch_next_run_timestamp_seconds", site=SITE,
                                 source="later")
        self.assertAlmostEqual(nxt - time.time(), 120 * 60, delta=120)

    def test_5_bad_listings_are_reported_once_and_stop_nothing_else(self):
        self.wait_for("storecache_prefetch_runs_total", lambda v: v >= 2, 40, site=SITE,
                      source="missing")
        m = self.stack.metrics()
        self.wait_for("storecache_prefetch_runs_total", lambda v: v >= 1, 20, site=SITE,
                      source="trickle")
        m = self.stack.metrics()
        for source in ("missing", "bad", "huge", "trickle"):
            self.assertEqual(harness.metric_sum(m, "storecache_prefetch_listing_ok", site=SITE,
                                                source=source), 0, source)
            self.assertEqual(harness.metric_sum(m, "storecache_prefetch_listed_objects",
                                                site=SITE, source=source), 0, source)
        err = self.stack.daemon.stderr_text()
        lines = [l for l in err.splitlines() if "listing /lists/missing.txt" in l]
        self.assertEqual(len(lines), 1, "\n".join(lines))
        self.assertIn("answered 404", lines[0])
        bad = [l for l in err.splitlines() if "listing /bad/imsmanifest.xml" in l]
        self.assertEqual(len(bad), 1, err[-3000:])
        self.assertIn("not a valid ims_manifest", bad[0])
        huge = [l for l in err.splitlines() if "listing /lists/huge.txt" in l]
        self.assertEqual(len(huge), 1, err[-3000:])
        self.assertIn("over [prefetch] max_listing_size", huge[0])
        self.assertEqual(self.stack.origin.count("/huge/"), 0)
        trickle = [l for l in err.splitlines() if "listing /gen/trickle.txt" in l]
        self.assertEqual(len(trickle), 1, err[-3000:])
        self.assertIn("not read whole within [prefetch] listing_timeout (2 s", trickle[0])

        # and the good source is still whole
        self.assertEqual(harness.metric_sum(m, "storecache_prefetch_ready_ratio", site=SITE,
                                            source="week"), 1.0)
        # the status page's Prefetch section says the same
        with urllib.request.urlopen(f"http://127.0.0.1:{self.stack.admin_port}/",
                                    timeout=10) as resp:
            page = resp.read().decode()
        self.assertIn('<section id="prefetch">', page)
        rows = re.findall(r"<tr( class=\"problem\")?><td class=\"asset\">([^<]*)</td>"
                          r"<td class=\"num\">([^<]*)</td>", page)
        by_source = {name.split(" · ")[1]: (bool(problem), ready)
                     for problem, name, ready in rows if " · " in name}
        self.assertEqual(by_source["week"], (False, "100.0 %"))
        self.assertEqual(by_source["missing"], (True, "—"))
        self.assertEqual(by_source["bad"], (True, "—"))
        self.assertEqual(by_source["huge"], (True, "—"))
        self.assertEqual(by_source["trickle"], (True, "—"))
        self.assertIn("listing /lists/missing.txt: the upstream answered 404", page)

    def test_7_the_usage_history_counts_prefetch_apart(self):
        """storecache report: the WAN bytes prefetch fetched (every listed object and listing,
        at least once) are counted apart from the device-driven ones. (Runs last: test_1 saw
        them all fetched, and test_3 changed the listing.)"""
        listed_bytes = sum(len(d) for d in FILES.values())

        def report(*args):
            p = subprocess.run([harness.storecache_bin(), "report", "--config",
                                self.stack.config_path, *args],
                               capture_output=True, text=True, timeout=30)
            return p

        def prefetch_bytes():
            p = report("--json")
            return json.loads(p.stdout)["prefetch_bytes"] if p.returncode == 0 else 0

        # the daemon flushes its usage counts every 5 s
        harness.poll(prefetch_bytes, lambda v: v >= listed_bytes, 20, interval=0.5)
        p = report("--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        rep = json.loads(p.stdout)
        self.assertGreaterEqual(rep["prefetch_bytes"], listed_bytes)
        self.assertGreaterEqual(rep["prefetch_requests"], len(FILES))
        self.assertGreaterEqual(rep["upstream_bytes"], rep["prefetch_bytes"])
        self.assertGreaterEqual(rep["upstream_requests"], rep["prefetch_requests"])
        site = rep["sites"][SITE]
        self.assertEqual((site["prefetch_bytes"], site["prefetch_requests"]),
                         (rep["prefetch_bytes"], rep["prefetch_requests"]))
        self.assertEqual(rep["devices"], {k: v for k, v in rep["devices"].items()
                                          if v["prefetch_bytes"] == 0})
        # the runner's readiness, as the daemon last stored it
        sources = {s["source"]: s for s in rep["prefetch"]["sources"]}
        self.assertEqual(set(sources), {"week", "later", "missing", "bad", "huge", "trickle"})
        week = sources["week"]
        self.assertTrue(week["ready"], week)
        self.assertEqual(week["fresh"], week["listed"])
        self.assertGreaterEqual(week["listed"], len(FILES))
        self.assertEqual(sources["missing"]["listed"], 0)
        self.assertIn("answered 404", sources["missing"]["last_error"])
        self.assertEqual(rep["prefetch"]["sources_total"], 6)
        self.assertGreaterEqual(rep["prefetch"]["sources_ready"], 1)
        p = report()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"\n    device-driven +\S+ \S+ +[\d,]+ bytes +[\d,]+ requests\n")
        self.assertRegex(p.stdout, r"\n    prefetch +\S+ \S+ +[\d,]+ bytes +[\d,]+ requests\n")
        self.assertRegex(p.stdout, r"prefetch: \d of 6 sources ready")


class PrefetchJoinTest(unittest.TestCase):
    """A device asking for an object prefetch is fetching joins that fetch: one upstream
    request, and the device gets the body as it arrives."""

    SLOW = "/gen/slow-course-video?size=%d&rate=%d&cc=max-age=600" % (4 * MiB, 768 * 1024)

    def test_device_joins_the_running_prefetch(self):
        stack = harness.Stack(overrides={"site": [{"prefetch": [
            {"url": "/lists/slow.txt", "name": "slow"}]}]})
        try:
            root = os.path.join(stack.tmp, "www")
            write_tree(root, {"/lists/slow.txt": (self.SLOW + "\n").encode()})
            stack.origin.root = os.path.realpath(root)
            stack.origin.program("/lists/", cc="max-age=600")
            stack.start()
            # the prefetch's request is under way at the origin
            harness.poll(lambda: stack.origin.requests("/gen/slow-course-video"), bool, 15)
            log = stack.origin.requests("/gen/slow-course-video")
            self.assertEqual(len(log), 1)
            self.assertNotIn("done_time", log[0], "the origin was too fast: nothing to join")
            collapsed = harness.metric_sum(stack.metrics(), "storecache_collapsed_requests_total")
            r = harness.curl_stream(stack.url(self.SLOW), ca=stack.ca, resolve=stack.resolve())
            self.assertEqual((r["exit"], r["size"], r["sha256"]),
                             (0, 4 * MiB, gen_sha256("slow-course-video", 4 * MiB)))
            self.assertEqual(len(stack.origin.requests("/gen/slow-course-video")), 1,
                             "the device's request went upstream besides the prefetch's")
            self.assertEqual(harness.metric_sum(stack.metrics(),
                                                "storecache_collapsed_requests_total") -
                             collapsed, 1)
            harness.poll(lambda: harness.metric_sum(stack.metrics(), "storecache_prefetch_objects",
                                                    site=SITE, source="slow", state="fresh"),
                         lambda v: v == 2, 20)
            self.assertEqual(harness.metric_sum(stack.metrics(), "storecache_prefetch_objects",
                                                site=SITE, source="slow", state="fresh"), 2)
        finally:
            self.assertEqual(stack.close(), 0)


class PrefetchResumeTest(unittest.TestCase):
    """A run cut by a stop (SIGTERM mid-fetch) resumes after the restart where it stopped:
    what was stored is not fetched again."""

    def test_restart_mid_run_resumes(self):
        slow = "/gen/resume-b?size=%d&rate=%d&cc=max-age=600" % (3 * MiB, 512 * 1024)
        listing = "\n".join(["/gen/resume-a?size=20000&cc=max-age=600", slow,
                             "/gen/resume-c?size=30000&cc=max-age=600"]) + "\n"
        stack = harness.Stack(overrides={"prefetch": {"connections": 1},
                                         "timeouts": {"shutdown_grace": "1s"},
                                         "site": [{"prefetch": [
                                             {"url": "/lists/resume.txt", "name": "resume"}]}]})
        try:
            root = os.path.join(stack.tmp, "www")
            write_tree(root, {"/lists/resume.txt": listing.encode()})
            stack.origin.root = os.path.realpath(root)
            stack.origin.program("/lists/", cc="max-age=600")
            stack.start()
            harness.poll(lambda: stack.origin.requests("/gen/resume-b"), bool, 15)
            self.assertEqual(len(stack.origin.requests("/gen/resume-a")), 1)
            self.assertEqual(stack.origin.requests("/gen/resume-c"), [])
            # stopped while b streams (it needs ~6 s): the daemon exits cleanly
            self.assertEqual(stack.daemon.stop(), 0, stack.daemon.stderr_text()[-3000:])
            stack.origin.reset()
            stack.origin.program("/lists/", cc="max-age=600")
            stack.start()
            harness.poll(lambda: harness.metric_sum(stack.metrics(), "storecache_prefetch_objects",
                                                    site=SITE, source="resume", state="fresh"),
                         lambda v: v == 4, 30)
            m = stack.metrics()
            self.assertEqual(harness.metric_sum(m, "storecache_prefetch_objects", site=SITE,
                                                source="resume", state="fresh"), 4)
            # after the restart: b and c fetched, a (stored before the stop) and the listing not
            got = sorted(e["path"] for e in stack.origin.requests("/gen/"))
            self.assertEqual(got, ["/gen/resume-b", "/gen/resume-c"])
            self.assertEqual(harness.metric_sum(m, "storecache_prefetch_fetched_objects_total",
                                                site=SITE, source="resume"), 2)
        finally:
            self.assertEqual(stack.close(), 0)


class PrefetchPinTest(unittest.TestCase):
    """pin = true: what a source lists stays through device traffic that evicts everything
    else, up to [prefetch] max_pinned for all sources together (the rest is counted and
    logged, cached but evictable); the pins survive a restart; a reload that drops pin = true
    unpins."""

    SIZE = 250_000

    def course(self, name, i):
        return "/gen/pin-%s-%d?size=%d&cc=max-age=3600" % (name, i, self.SIZE)

    def churn(self, stack, tag, n=20):
        paths = ["/gen/churn-%s-%d?size=%d&cc=max-age=3600" % (tag, i, self.SIZE)
                 for i in range(n)]
        code, infos = stack.curl_many(paths)
        self.assertEqual(code, 0)
        self.assertEqual([i["size_download"] for i in infos], [self.SIZE] * n)

    def assert_pinned_hits(self, stack, names):
        stack.origin.reset()
        for name in names:
            for i in range(5):
                r = stack.curl(self.course(name, i))
                self.assertEqual(r.exit, 0, r)
                self.assertEqual(r.status, 200)
                self.assertEqual(len(r.body), self.SIZE)
                self.assertEqual(harness.our_cache_status(r).get("hit"), True,
                                 (name, i, r.header("cache-status")))
        self.assertEqual(stack.origin.requests("/gen/pin-"), [])

    def test_pinned_objects_stay_within_the_ceiling_and_across_a_restart(self):
        # 4 MiB of cache; two pinned sources of 5 x 250 kB each (2.5 MB) under a 2 MiB ceiling:
        # 8 objects (and the two small listings) fit, 2 do not.
        sources = [{"url": "/lists/%s.txt" % name, "name": name, "pin": True, "interval": "1h"}
                   for name in ("course", "extra")]
        stack = harness.Stack(overrides={"cache": {"max_size": "4MiB", "max_object_size": "1MiB"},
                                         "prefetch": {"max_pinned": "2MiB"},
                                         "site": [{"prefetch": sources}]})
        try:
            root = os.path.join(stack.tmp, "www")
            write_tree(root, {"/lists/%s.txt" % name:
                              "".join(self.course(name, i) + "\n" for i in range(5)).encode()
                              for name in ("course", "extra")})
            stack.origin.root = os.path.realpath(root)
            stack.origin.program("/lists/", cc="max-age=3600")
            stack.start()

            def settled():
                m = stack.metrics()
                done = sum(harness.metric_sum(m, "storecache_prefetch_runs_total", site=SITE,
                                              source=n) for n in ("course", "extra"))
                return done, m
            _, m = harness.poll(settled, lambda v: v[0] >= 2, 30)
            for name in ("course", "extra"):
                self.assertEqual(harness.metric_sum(m, "storecache_prefetch_objects", site=SITE,
                                                    source=name, state="fresh"), 6)
            total = lambda fam: sum(harness.metric_sum(m, fam, site=SITE, source=n)
                                    for n in ("course", "extra"))
            self.assertEqual(total("storecache_prefetch_unpinned_objects"), 2)
            self.assertEqual(total("storecache_prefetch_unpinned_bytes"), 2 * self.SIZE)
            self.assertEqual(total("storecache_prefetch_pinned_objects"), 10)
            self.assertLessEqual(total("storecache_prefetch_pinned_bytes"), 2 * MiB)
            self.assertGreaterEqual(total("storecache_prefetch_pinned_bytes"), 8 * self.SIZE)
            self.assertEqual(harness.metric_sum(m, "storecache_prefetch_pinned_ceiling_bytes"),
                             2 * MiB)
            self.assertEqual(harness.metric_sum(m, "storecache_cache_pinned_keys"), 10)
            log = stack.daemon.stderr_text()
            self.assertEqual(len(re.findall(r"do not fit under \[prefetch\] max_pinned", log)), 1,
                             log[-3000:])

            # 5 MB of device traffic through a 4 MiB cache: everything else is evicted (when the
            # committer stores the last objects, a moment after their responses ended).
            self.churn(stack, "a")
            harness.poll(lambda: harness.metric_sum(stack.metrics(),
                                                    "storecache_cache_eviction_pinned_skips_total"),
                         lambda v: v > 0, 15)
            m = stack.metrics()
            self.assertGreater(harness.metric_sum(m, "storecache_cache_evictions_total"), 0)
            self.assertGreater(
                harness.metric_sum(m, "storecache_cache_eviction_pinned_skips_total"), 0)
            pinned_names = []
            for name in ("course", "extra"):
                if harness.metric_sum(m, "storecache_prefetch_unpinned_objects", site=SITE,
                                      source=name) == 0:
                    pinned_names.append(name)
            self.assertTrue(pinned_names)  # one source fit whole (5 + 5 > 8)
            self.assertLessEqual(harness.metric_sum(m, "storecache_cache_bytes"), 4 * MiB)
            self.assert_pinned_hits(stack, pinned_names)

            # Restart with the sources' windows hours away: no run re-pins, the index does.
            self.assertEqual(stack.daemon.stop(), 0)
            later = window_from_now(120, 180)
            for src in sources:
                src["windows"] = [later]
            stack.rewrite_config()
            stack.origin.reset()
            stack.origin.program("/lists/", cc="max-age=3600")
            stack.start()
            self.assertEqual(harness.metric_sum(stack.metrics(), "storecache_cache_pinned_keys"),
                             10)
            self.churn(stack, "b")
            self.assert_pinned_hits(stack, pinned_names)

            # A reload that drops pin = true from both unpins them at once.
            for src in sources:
                src["pin"] = False
            stack.rewrite_config()
            stack.daemon.signal(signal.SIGHUP)
            harness.poll(lambda: harness.metric_sum(stack.metrics(),
                                                    "storecache_cache_pinned_keys"),
                         lambda v: v == 0, 15)
            self.assertEqual(harness.metric_sum(stack.metrics(), "storecache_cache_pinned_keys"), 0)
            self.churn(stack, "c")
            stack.origin.reset()
            r = stack.curl(self.course(pinned_names[0], 0))
            self.assertEqual(r.status, 200)
            self.assertNotEqual(harness.our_cache_status(r).get("hit"), True)
        finally:
            self.assertEqual(stack.close(), 0)


if __name__ == "__main__":
    harness.main()
