#!/usr/bin/env python3
"""Soak: a mixed workload at saturation for minutes, then errors and memory (issue 11).

Starts the test origin and a fresh daemon (2 workers, a 256 MiB cache so eviction runs) through
tests/support/harness.py and runs, all at once, for --minutes:

  hits h2     h2load, HTTP/2, 8 connections x 10 streams over 200 warmed objects (1-256 KiB)
  hits h1     h2load --h1, 8 connections over the same objects
  revalidate  h2load, HTTP/2, 2 connections over 50 objects with max-age=1 and an ETag, so
              nearly every request is a conditional request upstream (304) or a refresh
  misses      a thread of curl fetches of new objects (1-512 KiB; h1 and h2 alternately),
              every body checked against the origin's sha256
  ranges      a thread of curl range requests into a stored 20 MiB object, every byte checked
  flapping    every 20 s the origin answers 503 for 5 s on the revalidated objects' prefix and
              on one miss prefix: revalidations must be answered from the stale copy
              (stale_if_error), new objects under the flapping prefix get the 503 (the only
              errors the workload causes, counted apart)

The daemon's RSS is sampled every 5 s. Printed at the end: per load, requests and errors; the
RSS after warm-up (the first fifth of the run) as first, min, max, last and the least-squares
slope in MiB per minute; the daemon's own counters. Exit status 1 when a load saw an error it
did not cause, a body or range was wrong, or the daemon died.

  bench/soak.py                     # 10 minutes
  bench/soak.py --minutes 1         # a quick check that it works

Everything runs on loopback and is bounded by --minutes; the daemon is $STORECACHE_BIN (default
build/proxy/storecache).
"""

import argparse
import hashlib
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "support"))
import harness  # noqa: E402
import origin as origin_mod  # noqa: E402

FLAP_EVERY, FLAP_FOR = 20.0, 5.0


def rss_bytes(pid):
    """(VmRSS, RssAnon) in bytes: resident in all, and not backed by a file (the LMDB index is a
    file mapping: its pages count in RSS as the index grows, and the kernel may drop them)."""
    got = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key = line.split(":")[0]
            if key in ("VmRSS", "RssAnon"):
                got[key] = int(line.split()[1]) * 1024
    return got["VmRSS"], got["RssAnon"]


def slope(points):
    """Least-squares slope of [(t, y)]: y per unit of t."""
    n = len(points)
    if n < 2:
        return 0.0
    mt = sum(t for t, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    return sum((t - mt) * (y - my) for t, y in points) / var if var else 0.0


def parse_h2load(text):
    out = {}
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored, (\d+) timeout", text)
    if m:
        out.update(zip(("total", "started", "done", "succeeded", "failed", "errored",
                        "timeout"), map(int, m.groups())))
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    if m:
        out.update(zip(("2xx", "3xx", "4xx", "5xx"), map(int, m.groups())))
    return out


class Soak:
    def __init__(self, args):
        self.args = args
        self.stop = threading.Event()
        self.problems = []
        self.lock = threading.Lock()
        self.counts = {"misses": 0, "misses_caused_503": 0, "ranges": 0}
        self.stack = harness.Stack(overrides={
            "cache": {"max_size": "256MiB", "max_object_size": "64MiB"},
            "limits": {"misses_per_client": 64, "misses_per_connection": 64},
        })
        self.flapping = False

    def problem(self, text):
        with self.lock:
            if len(self.problems) < 50:
                self.problems.append(text)
            print("PROBLEM:", text, file=sys.stderr)

    def url(self, path):
        return self.stack.url(path)

    def write_urls(self, name, paths):
        path = os.path.join(self.stack.tmp, name)
        with open(path, "w") as f:
            f.write("".join(self.url(p) + "\n" for p in paths))
        return path

    def h2load(self, name, urls_file, seconds, conns, streams, h1=False):
        cmd = ["h2load", "-i", urls_file, "-D", str(int(seconds)), "-c", str(conns),
               "-m", str(streams), f"--connect-to=127.0.0.1:{self.stack.port}"]
        if h1:
            cmd.insert(1, "--h1")
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
        r = parse_h2load(p.stdout)
        r["exit"] = p.returncode
        if not r.get("total"):
            self.problem(f"{name}: h2load printed no figures: {p.stdout[-500:]} {p.stderr[-500:]}")
        return r

    def misses(self):
        rng = random.Random(1)
        n = 0
        while not self.stop.is_set():
            n += 1
            size = rng.randint(1024, 512 * 1024)
            flap_path = n % 5 == 0
            prefix = "/gen/flapnew/" if flap_path else "/gen/new/"
            name = f"{prefix[len('/gen/'):]}soak-{n}"  # the origin's name is the path after /gen/
            flapping_before = self.flapping
            r = self.stack.curl(f"/gen/{name}?size={size}&cc=max-age%3D600",
                                http2=n % 2 == 0, timeout=30)
            flapping_after = self.flapping
            with self.lock:
                self.counts["misses"] += 1
            if flap_path and r.status == 503 and (flapping_before or flapping_after):
                with self.lock:
                    self.counts["misses_caused_503"] += 1
                continue
            if r.exit != 0 or r.status != 200:
                self.problem(f"miss {name}: exit {r.exit} status {r.status}")
            elif hashlib.sha256(r.body).hexdigest() != origin_mod.gen_sha256(name, size):
                self.problem(f"miss {name}: wrong body ({len(r.body)} of {size} bytes)")

    def ranges(self, video, size):
        rng = random.Random(2)
        while not self.stop.is_set():
            start = rng.randrange(size)
            end = min(size - 1, start + rng.randint(0, 2 * 1024 * 1024))
            r = self.stack.curl(video, headers=[f"Range: bytes={start}-{end}"],
                                http2=rng.random() < 0.5, timeout=30)
            with self.lock:
                self.counts["ranges"] += 1
            if r.exit != 0 or r.status != 206:
                self.problem(f"range {start}-{end}: exit {r.exit} status {r.status}")
            elif r.body != origin_mod.gen_bytes("soak-video", size, start, end + 1):
                self.problem(f"range {start}-{end}: wrong bytes")

    def flapper(self):
        while not self.stop.wait(FLAP_EVERY - FLAP_FOR):
            self.flapping = True
            for prefix in ("/gen/reval/", "/gen/flapnew/"):
                self.stack.origin.program(prefix, status=503)
            self.stop.wait(FLAP_FOR)
            for prefix in ("/gen/reval/", "/gen/flapnew/"):
                self.stack.origin.program(prefix, status=200)  # later programs win
            time.sleep(0.5)  # answers already on their way still carry the 503
            self.flapping = False

    def run(self):
        seconds = self.args.minutes * 60
        self.stack.start()
        pid = self.stack.daemon.pid
        rng = random.Random(0)
        hit_paths = [f"/gen/hit-{i}?size={rng.choice([1024, 16384, 65536, 262144])}"
                     "&cc=max-age%3D86400" for i in range(200)]
        reval_paths = [f"/gen/reval/r-{i}?size=4096&cc=max-age%3D1&etag=e{i}" for i in range(50)]
        video_size = 20 * 1024 * 1024
        video = f"/gen/soak-video?size={video_size}&cc=max-age%3D86400&ct=video/mp4"
        for p in hit_paths + reval_paths + [video]:
            r = self.stack.curl(p, timeout=60)
            if r.status != 200:
                raise SystemExit(f"warm-up {p}: {r.status}")
        hits = self.write_urls("hits.txt", hit_paths)
        reval = self.write_urls("reval.txt", reval_paths)

        results = {}

        def load(name, *a, **kw):
            results[name] = self.h2load(name, *a, **kw)

        threads = [
            threading.Thread(target=load, args=("hits h2", hits, seconds, 8, 10)),
            threading.Thread(target=load, args=("hits h1", hits, seconds, 8, 1), kwargs={"h1": True}),
            threading.Thread(target=load, args=("revalidate h2", reval, seconds, 2, 4)),
        ]
        side = [threading.Thread(target=self.misses), threading.Thread(target=self.ranges,
                                                                        args=(video, video_size)),
                threading.Thread(target=self.flapper)]
        for t in threads + side:
            t.start()
        samples = []
        t0 = time.monotonic()
        while any(t.is_alive() for t in threads):
            if self.stack.daemon.proc.poll() is not None:
                self.problem("the daemon died")
                break
            heap = self.stack.metrics()
            samples.append((time.monotonic() - t0, rss_bytes(pid) + tuple(
                harness.metric_sum(heap, "storecache_process_heap_bytes", state=s)
                for s in ("in_use", "free"))))
            time.sleep(5)
        self.stop.set()
        for t in threads + side:
            t.join(timeout=180)
        m = self.stack.metrics()
        alive = self.stack.daemon.proc.poll() is None
        code = self.stack.close()
        return results, samples, m, alive, code, seconds

    def report(self, results, samples, m, alive, code, seconds):
        mib = 1024 * 1024
        print(f"soak: {seconds / 60:.1f} min, storecache {self.stack.daemon.binary}")
        print(f"{'load':<16}{'requests':>10}{'2xx':>10}{'3xx':>8}{'4xx':>6}{'5xx':>6}"
              f"{'failed':>8}{'errored':>8}{'timeout':>8}{'req/s':>9}")
        errors = 0
        for name, r in results.items():
            print(f"{name:<16}{r.get('total', 0):>10}{r.get('2xx', 0):>10}{r.get('3xx', 0):>8}"
                  f"{r.get('4xx', 0):>6}{r.get('5xx', 0):>6}{r.get('failed', 0):>8}"
                  f"{r.get('errored', 0):>8}{r.get('timeout', 0):>8}"
                  f"{r.get('total', 0) / seconds:>9.0f}")
            errors += r.get("4xx", 0) + r.get("5xx", 0) + r.get("failed", 0) + \
                r.get("errored", 0) + r.get("timeout", 0)
        print(f"misses: {self.counts['misses']} (of which {self.counts['misses_caused_503']} "
              f"503 from the flapping origin, caused by the workload); ranges: "
              f"{self.counts['ranges']}")
        for label, k in (("RSS", 0), ("anonymous RSS", 1), ("heap in use", 2),
                         ("heap free (kept by malloc)", 3)):
            warm = [(t, y[k]) for t, y in samples if t >= seconds / 5]
            if not warm:
                continue
            ys = [y for _, y in warm]
            print(f"{label} after warm-up ({len(warm)} samples): first {ys[0] / mib:.1f} MiB, "
                  f"min {min(ys) / mib:.1f}, max {max(ys) / mib:.1f}, last {ys[-1] / mib:.1f}; "
                  f"slope {slope(warm) * 60 / mib:+.2f} MiB/min")
        for name in ("storecache_requests_total", "storecache_cache_evictions_total",
                     "storecache_upstream_requests_total", "storecache_cache_inserts_total"):
            print(f"{name} {harness.metric_sum(m, name):.0f}")
        print(f"stale served during flaps: "
              f"{harness.metric_sum(m, 'storecache_requests_total', cache_status='stale'):.0f}")
        print(f"daemon: {'alive' if alive else 'DEAD'} at the end, exit {code} on SIGTERM")
        bad = errors or self.problems or not alive or code != 0
        for p in self.problems:
            print("problem:", p)
        print("RESULT:", "FAIL" if bad else "OK")
        return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10)
    args = ap.parse_args()
    s = Soak(args)
    sys.exit(s.report(*s.run()))


if __name__ == "__main__":
    main()
