#!/usr/bin/env python3
"""Usage history and `storecache report`: a scripted workload, then the report's figures.

The expected figures are computed from the workload table below (what each request is, its
size, whether it must be a hit), and every response's Cache-Status is checked against the table
as it runs, so the report is compared with what really happened, request by request.
"""

import json
import os
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import harness  # noqa: E402
from harness import SITE  # noqa: E402

UA = {
    "iphone": ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
               "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1", "ios/safari",
               "ios 17"),
    "android": ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
                "Chrome/124.0.0.0 Mobile Safari/537.36", "android/chrome", "android 14"),
    "samsung": ("Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like "
                "Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
                "android/samsung", "android 13"),
    "edge": ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51", "windows/edge", "windows 10"),
}

CC = "max-age=3600"
# name -> (size, content type sent by the origin or None (octet-stream), content class, cacheable)
ASSETS = {
    "intro.mp4": (300_000, "video/mp4", "video", True),
    "logo.png": (20_000, "image/png", "image", True),
    "index.html": (5_000, "text/html; charset=utf-8", "web", True),
    "quiz.json": (1_000, "application/json", "data", True),
    "manual.pdf": (50_000, None, "document", True),  # class from the extension
    "live.json": (700, "application/json", "data", False),  # no-store: passed through
}

# (asset, device, http2, expected cache outcome)
WORKLOAD = [
    ("intro.mp4", "iphone", False, "miss"),
    ("intro.mp4", "android", True, "hit"),
    ("intro.mp4", "samsung", False, "hit"),
    ("logo.png", "edge", False, "miss"),
    ("logo.png", "edge", False, "hit"),
    ("logo.png", "iphone", True, "hit"),
    ("logo.png", "iphone", True, "hit"),
    ("index.html", "android", True, "miss"),
    ("index.html", "samsung", False, "hit"),
    ("quiz.json", "iphone", False, "miss"),
    ("manual.pdf", "edge", True, "miss"),
    ("manual.pdf", "android", False, "hit"),
    ("live.json", "iphone", False, "pass"),
    ("live.json", "edge", True, "pass"),
]


def asset_path(name):
    size, ctype, _, cacheable = ASSETS[name]
    params = {"size": size, "cc": CC if cacheable else "no-store"}
    if ctype:
        params["ct"] = ctype
    return f"/gen/{name}?" + urllib.parse.urlencode(params)


def counts():
    return {"requests": 0, "hits": 0, "bytes_served": 0, "bytes_from_cache": 0,
            "bytes_from_upstream": 0, "upstream_bytes": 0, "upstream_requests": 0}


def expected(workload):
    """The report's figures for a workload, from first principles."""
    total = counts()
    by = {"content": {}, "devices": {}, "os_versions": {}, "protocols": {}, "assets": {}}

    def add(group, key, **delta):
        c = total if group is None else by[group].setdefault(key, counts())
        for k, v in delta.items():
            c[k] += v

    for name, dev, h2, outcome in workload:
        size, _, cls, _ = ASSETS[name]
        hit = outcome == "hit"
        served = dict(requests=1, hits=int(hit), bytes_served=size,
                      bytes_from_cache=size if hit else 0,
                      bytes_from_upstream=0 if hit else size)
        up = {} if hit else dict(upstream_bytes=size, upstream_requests=1)
        asset = SITE + "/gen/" + name
        for group, key in ((None, None), ("content", cls), ("assets", asset)):
            add(group, key, **served)
            add(group, key, **up)
        add("devices", UA[dev][1], **served)
        add("os_versions", UA[dev][2], **served)
        add("protocols", "h2" if h2 else "http/1.1", **served)
    return total, by


# Requests refused by the signature check: /private/* must carry an HMAC-signed URL (the key's
# secret is in a file); these carry none, or a forged one. Answered 403 "denied: signature ...",
# counted in the history by reason and site, and never among the served requests.
SECRET = "reporting-test-secret-0123456789abcdef"
FORGED = "sc_sig=forgedSIGNATUREvalue"
DENIED = [
    "/private/exam.pdf",
    f"/private/exam.pdf?sc_exp=4102444800&sc_kid=k1&{FORGED}",
]


class ReportTest(harness.StackTest):
    @classmethod
    def setUpClass(cls):
        cls.stack = harness.Stack()
        try:
            cls.stack.sign_urls_with_hmac(SECRET)
            cls.stack.start()
        except BaseException:
            cls.stack.close()
            raise

    def tearDown(self):
        self.assertHealthy()

    def report(self, *args):
        p = subprocess.run([harness.storecache_bin(), "report", "--config", self.stack.config_path,
                            *args], capture_output=True, text=True, timeout=30)
        return p

    def report_json(self, since="24h"):
        p = self.report("--since", since, "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)

    def wait_requests(self, n, denied=0, timeout=15):
        """The daemon flushes its usage counts every 5 s: wait until the report has n requests
        (and `denied` access denials)."""
        deadline = time.monotonic() + timeout
        rep = self.report_json()
        while (rep["requests"], sum(rep["denied"].values())) != (n, denied) \
                and time.monotonic() < deadline:
            time.sleep(0.5)
            rep = self.report_json()
        return rep

    def run_denied(self):
        for path in DENIED:
            r = self.get(path, headers=[f"User-Agent: {UA['iphone'][0]}"])
            self.assertEqual(r.status, 403, r)
            self.assertIn(b"denied: signature", r.body)

    def run_workload(self, workload):
        for name, dev, h2, outcome in workload:
            r = self.get(asset_path(name), http2=h2, headers=[f"User-Agent: {UA[dev][0]}"])
            self.assertEqual(r.status, 200, r)
            self.assertEqual(len(r.body), ASSETS[name][0])
            cs = self.cs(r)
            got = "hit" if cs.get("hit") else "pass" if cs.get("fwd") in ("bypass", "request") \
                or "stored" not in cs else "miss"
            self.assertEqual(got, outcome, (name, r.headers))

    def assert_counts(self, got, want, what):
        self.assertEqual({k: got[k] for k in want}, want, what)

    def test_report_agrees_with_the_workload_and_survives_restart_and_kill(self):
        self.run_workload(WORKLOAD)
        # A request for no site: answered 421 by storecache, not part of the usage figures.
        r = self.stack.curl("/gen/x", headers=["Host: unknown.example.com"])
        self.assertEqual(r.status, 421, r)

        self.run_denied()

        total, by = expected(WORKLOAD)
        self.assertEqual((total["requests"], total["hits"]), (14, 7))  # the table, read by hand
        rep = self.wait_requests(total["requests"], len(DENIED))
        self.check_report(rep, total, by)
        # The refusals: by reason, overall and for the site; not served requests.
        want_denied = {"network": 0, "client_cert": 0, "signature": len(DENIED), "upstream": 0}
        self.assertEqual(rep["denied"], want_denied)
        self.assertEqual(rep["sites"][SITE]["denied"], want_denied)
        self.assertFalse(any("/private/" in a["asset"] for a in rep["top_assets"]))
        self.assertEqual(rep["peak_upstream_hour"]["upstream_bytes"], total["upstream_bytes"])
        self.assertEqual(rep["period"]["hours"], 24)
        self.assertEqual(self.report_json("7d")["requests"], total["requests"])

        # The text report: the same headline, for people.
        p = self.report("--since", "24h")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("last 24 hours", p.stdout)
        self.assertRegex(p.stdout, r"Requests\s+14\b")
        self.assertIn(f"{total['upstream_bytes']:,} bytes", p.stdout)
        self.assertIn(SITE + "/gen/intro.mp4", p.stdout)
        self.assertRegex(p.stdout, r"Refused \(access\)\s+2\n")
        self.assertRegex(p.stdout, r"Refused\s+network\s+client_cert\s+signature\s+upstream\n"
                                   r"\s+all\s+0\s+0\s+2\s+0\n"
                                   rf"\s+{SITE}\s+0\s+0\s+2\s+0\n")
        # Nothing secret in either form: no query, no signature, no key material.
        for text in (p.stdout, self.report("--since", "24h", "--json").stdout):
            for secret in (FORGED, "sc_sig", "sc_exp", SECRET, "?"):
                self.assertNotIn(secret, text)

        # Restart: the history is on disk; new traffic adds to it.
        self.assertEqual(self.stack.daemon.stop(), 0)
        self.assertEqual(self.report_json(), rep, "the history changed across a stop")
        self.stack.daemon.start()
        after = self.report_json()
        self.check_report(after, total, by)
        more = [("logo.png", "android", False, "hit")]
        self.run_workload(more)
        self.run_denied()
        total2, by2 = expected(WORKLOAD + more)
        flushed = self.wait_requests(total2["requests"], 2 * len(DENIED))
        self.check_report(flushed, total2, by2)
        self.assertEqual(flushed["denied"]["signature"], 2 * len(DENIED))

        # kill -9 after a flush: what was flushed is committed in LMDB and stays.
        self.stack.daemon.kill()
        self.assertEqual(self.report_json(), flushed, "the history changed across kill -9")
        self.stack.daemon.start()
        self.check_report(self.report_json(), total2, by2)

    def check_report(self, rep, total, by):
        self.assert_counts(rep, {k: v for k, v in total.items() if k != "bytes_served"} | {
            "bytes_served": total["bytes_served"]}, "headline")
        self.assertEqual(rep["wan_bytes_saved"], total["bytes_served"] - total["upstream_bytes"])
        self.assertAlmostEqual(rep["hit_ratio"], total["hits"] / total["requests"], places=6)
        self.assertAlmostEqual(rep["byte_hit_ratio"],
                               total["bytes_from_cache"] / total["bytes_served"], places=6)
        self.assertEqual(rep["peak_upstream_hour"]["upstream_bytes"], total["upstream_bytes"])
        for cls, want in by["content"].items():
            self.assert_counts(rep["content"][cls], want, cls)
        for cls in ("audio", "other"):
            self.assertEqual(rep["content"][cls]["requests"], 0, cls)
        for group in ("devices", "os_versions", "protocols"):
            got = {k: {f: v[f] for f in ("requests", "hits", "bytes_served")}
                   for k, v in rep[group].items()}
            want = {k: {f: v[f] for f in ("requests", "hits", "bytes_served")}
                    for k, v in by[group].items()}
            self.assertEqual(got, want, group)
        self.assertEqual(set(rep["tls"]), {"TLSv1.3"})
        self.assertEqual(rep["tls"]["TLSv1.3"]["requests"], total["requests"])
        self.assertEqual(rep["sites"][SITE]["requests"], total["requests"])
        top = [(a["asset"], a["upstream_bytes"]) for a in rep["top_assets"]]
        want_top = sorted(((k, v["upstream_bytes"]) for k, v in by["assets"].items()),
                          key=lambda kv: -kv[1])
        self.assertEqual(top, want_top)
        # The query is not part of an asset's name (signed URLs are credentials).
        self.assertFalse(any("?" in a for a, _ in top), top)

    def test_bad_arguments(self):
        p = self.report("--since", "forever")
        self.assertEqual(p.returncode, 2)
        self.assertIn("bad period", p.stderr)
        p = subprocess.run([harness.storecache_bin(), "report", "--cache-dir",
                            os.path.join(self.stack.tmp, "nowhere")],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertIn("cannot read the usage history", p.stderr)


if __name__ == "__main__":
    harness.main()
