#!/usr/bin/env python3
"""A burst of 20,000 unique misses (issue 14): the daemon's memory does not grow with the number
of objects, every object is committed soon after the burst, and a second pass over the same
URLs is served from the cache without one upstream request.

Before group commit and the pump buffer fix, this burst left ~1.2 GB of anonymous memory and
took up to 40 s to commit."""

import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import harness  # noqa: E402

MiB = 1 << 20
OBJECTS = 20000
SIZE = 1024
# The bound on growth: what the burst may leave behind in anonymous memory (heap, stacks). It
# is not per object: 20,000 objects at even 2 KiB each would exceed it; the fixed daemon stays
# near 10 MiB (thread arenas, malloc's retained top, the recency map), the old one grew ~1.2 GB.
GROWTH_BOUND = 40 * MiB
# Under AddressSanitizer (scripts/test.sh sets ASAN_OPTIONS) freed blocks wait in its
# quarantine (quarantine_size_mb=16) and its allocator keeps its own size-class caches: one CI
# run measured 45.7 MiB after the hits where the same daemon stays near 13 MiB in Release.
# The bound grows by the quarantine there; the Release run keeps the 40 MiB one.
if "quarantine_size_mb" in os.environ.get("ASAN_OPTIONS", ""):
    GROWTH_BOUND += 16 * MiB
# Every object committed within this time after the burst's last response (group commit
# takes milliseconds; one transaction per object took 28-44 s on a loaded 2-core machine).
COMMIT_WITHIN = 10.0


def anon_bytes(pid):
    """The process's own memory: anonymous pages (smaps_rollup). RSS also counts the pages of
    the LMDB index file read through its map, which grow with the index by design."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Anonymous:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no smaps_rollup for {pid}")


class MemoryBurstTest(harness.StackTest):
    stack_args = {"overrides": {"server": {"workers": 2},
                                "cache": {"max_size": "2GiB"}}}

    def tearDown(self):
        self.assertHealthy()

    def h2load(self, urls_file, n, streams=16):
        """n requests over one HTTP/2 connection, streams at a time: (2xx count, output)."""
        p = subprocess.run(["h2load", "-i", urls_file, "-n", str(n), "-c", "1", "-m", str(streams),
                            f"--connect-to=127.0.0.1:{self.stack.port}"],
                           capture_output=True, text=True, timeout=60)
        m = re.search(r"status codes: (\d+) 2xx", p.stdout)
        return (int(m.group(1)) if m else 0), p.stdout + p.stderr

    def wait_metric(self, name, at_least, timeout):
        """Seconds until metric >= at_least, polling /metrics; fails after timeout."""
        t0 = time.monotonic()
        while True:
            value = self.metric(name)
            if value >= at_least:
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                self.fail(f"{name} = {value} after {timeout}s, want >= {at_least}")
            time.sleep(0.05)

    def urls(self, tag, n):
        path = os.path.join(self.stack.tmp, f"urls-{tag}.txt")
        with open(path, "w") as f:
            for i in range(n):
                f.write(f"https://{harness.SITE}:{self.stack.port}/gen/{tag}?size={SIZE}"
                        f"&cc=max-age%3D3600&u={i}\n")
        return path

    def test_burst_of_unique_misses(self):
        pid = self.stack.daemon.pid
        # Warm up: connections, TLS, thread arenas and the index exist before the baseline.
        warm = self.urls("warm", 500)
        ok, out = self.h2load(warm, 500)
        self.assertEqual(ok, 500, out)
        self.wait_metric("storecache_cache_inserts_total", 500, COMMIT_WITHIN)
        base_anon = anon_bytes(pid)
        base_inserts = self.metric("storecache_cache_inserts_total")

        urls = self.urls("burst", OBJECTS)
        up0 = self.stack.origin.count("/gen/burst")
        t0 = time.monotonic()
        ok, out = self.h2load(urls, OBJECTS)
        burst_s = time.monotonic() - t0
        self.assertEqual(ok, OBJECTS, out)
        commit_s = self.wait_metric("storecache_cache_inserts_total", base_inserts + OBJECTS,
                                    COMMIT_WITHIN)
        self.assertEqual(self.metric("storecache_cache_commit_backlog_objects"), 0)
        self.assertEqual(self.metric("storecache_cache_fills_in_flight"), 0)
        self.assertEqual(self.metric("storecache_cache_commit_backlog_full"), 0)
        self.assertEqual(self.stack.origin.count("/gen/burst") - up0, OBJECTS)
        growth = anon_bytes(pid) - base_anon
        print(f"\n{OBJECTS} misses in {burst_s:.1f}s, all committed {commit_s:.2f}s later, "
              f"anonymous memory +{growth / MiB:.1f} MiB", file=sys.stderr)
        self.assertLess(growth, GROWTH_BOUND,
                        f"anonymous memory grew {growth / MiB:.1f} MiB over {OBJECTS} objects")
        # /metrics reports the same resident memory the kernel does (to a scrape's drift)
        rss = harness.rss(pid)
        reported = self.metric("storecache_process_resident_memory_bytes")
        self.assertLess(abs(reported - rss), 16 * MiB, (reported, rss))

        # Immediately again: all hits, not one upstream request.
        hits0 = self.metric("storecache_requests_total", cache_status="hit")
        up1 = self.stack.origin.count("/gen/burst")
        ok, out = self.h2load(urls, OBJECTS)
        self.assertEqual(ok, OBJECTS, out)
        self.assertEqual(self.stack.origin.count("/gen/burst") - up1, 0,
                         "the second pass went upstream")
        self.assertEqual(self.metric("storecache_requests_total", cache_status="hit") - hits0,
                         OBJECTS)
        growth = anon_bytes(pid) - base_anon
        self.assertLess(growth, GROWTH_BOUND,
                        f"after the hits, anonymous memory grew {growth / MiB:.1f} MiB")


if __name__ == "__main__":
    harness.main()
