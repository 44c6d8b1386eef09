#!/usr/bin/env python3
"""Memory and commit throughput against the number of stored objects (issue 14).

Starts the test origin and a fresh daemon (2 workers) through tests/support/harness.py, drives
N unique misses of one body size with h2load (unique query strings: every URL is its own
object), waits until all are committed, then runs a second pass over the same URLs. Prints, per
row: the daemon's anonymous memory (smaps_rollup) before, right after the burst, and settled;
the time until every object was committed and the resulting inserts per second; the upstream
requests of both passes.

  bench/mem_growth.py --objects 1000 10000 100000 --size 1024
  bench/mem_growth.py --objects 2000 --size 1048576 -m 8
  bench/mem_growth.py --objects 5000 --heaptrack /tmp/sc.heaptrack   # run under heaptrack

Everything is on loopback and bounded by --objects; the daemon's binary is $STORECACHE_BIN
(default build/proxy/storecache).
"""

import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "support"))
import harness  # noqa: E402


def anon_bytes(pid):
    """Anonymous memory of a process (heap, thread stacks, anonymous maps), in bytes."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Anonymous:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no smaps_rollup for {pid}")


def metric(stack, name):
    return harness.metric_sum(stack.metrics(), name)


def h2load(stack, urls_file, n, conns, streams, timeout):
    cmd = ["h2load", "-i", urls_file, "-n", str(n), "-c", str(conns), "-m", str(streams),
           f"--connect-to=127.0.0.1:{stack.port}"]
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    took = time.monotonic() - t0
    ok = failed = 0
    for line in p.stdout.splitlines():
        if line.startswith("requests:"):
            parts = line.replace(",", "").split()
            ok = int(parts[parts.index("succeeded") - 1])
            failed = int(parts[parts.index("failed") - 1])
    if p.returncode != 0 or failed:
        print(p.stdout[-2000:], p.stderr[-2000:], file=sys.stderr)
    return ok, failed, took


def wait_inserts(stack, want, timeout):
    """Seconds from now until storecache_cache_inserts_total >= want (None: not in time)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if metric(stack, "storecache_cache_inserts_total") >= want:
            return time.monotonic() - t0
        time.sleep(0.02)
    return None


def run_row(args, n):
    overrides = {"cache": {"max_size": args.max_size, "max_object_size": "512MiB"},
                 "server": {"workers": 2}}
    stack = harness.Stack(overrides=overrides)
    try:
        if args.heaptrack:
            binary = harness.storecache_bin()
            wrapper = os.path.join(stack.tmp, "under-heaptrack.sh")
            with open(wrapper, "w") as f:
                f.write(f"#!/bin/sh\nexec heaptrack -o {args.heaptrack} {binary} \"$@\"\n")
            os.chmod(wrapper, 0o755)
            stack.daemon = harness.Daemon(stack.config_path, stack.admin_port, stack.tmp,
                                          binary=wrapper).start(timeout=30)
        else:
            stack.start()
        pid = stack.daemon.pid
        if args.heaptrack:  # the daemon is a child of the heaptrack script, next to its reader
            binary = os.path.realpath(harness.storecache_bin())
            for kid in open(f"/proc/{pid}/task/{pid}/children").read().split():
                if os.path.realpath(f"/proc/{kid}/exe") == binary:
                    pid = int(kid)
        urls = os.path.join(stack.tmp, "urls.txt")
        host = harness.SITE
        with open(urls, "w") as f:
            for i in range(n):
                f.write(f"https://{host}:{stack.port}/gen/g?size={args.size}"
                        f"&cc=max-age%3D3600&u={i}\n")
        a0 = anon_bytes(pid)
        up0 = stack.origin.count()
        ok, failed, took = h2load(stack, urls, n, 1, args.streams, args.timeout)
        a_burst = anon_bytes(pid)
        committed = wait_inserts(stack, n, args.timeout)
        commit_time = took + committed if committed is not None else None
        time.sleep(args.settle)
        a_settled = anon_bytes(pid)
        up1 = stack.origin.count() - up0
        ok2, failed2, took2 = h2load(stack, urls, n, 1, args.streams, args.timeout)
        up2 = stack.origin.count() - up0 - up1
        a_end = anon_bytes(pid)
        rss = harness.rss(pid)
        samples = stack.metrics()
        heap_free = harness.metric_sum(samples, "storecache_process_heap_bytes", state="free")
        row = {
            "objects": n, "size": args.size, "streams": args.streams,
            "ok": ok, "failed": failed, "burst_s": round(took, 2),
            "committed_s": round(commit_time, 2) if commit_time else None,
            "inserts_per_s": round(n / commit_time) if commit_time else None,
            "anon_start_mib": round(a0 / 2**20, 1), "anon_burst_mib": round(a_burst / 2**20, 1),
            "anon_settled_mib": round(a_settled / 2**20, 1),
            "anon_after_hits_mib": round(a_end / 2**20, 1), "rss_end_mib": round(rss / 2**20, 1),
            "heap_free_mib": round(heap_free / 2**20, 1),
            "upstream_pass1": up1, "upstream_pass2": up2, "pass2_ok": ok2, "pass2_failed": failed2,
            "pass2_s": round(took2, 2),
        }
        return row
    finally:
        stack.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--objects", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("-m", "--streams", type=int, default=16, help="h2load streams (-m)")
    ap.add_argument("--max-size", default="2GiB")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--settle", type=float, default=1.0)
    ap.add_argument("--heaptrack", help="run the daemon under heaptrack, output to this file")
    args = ap.parse_args()
    rows = []
    for n in args.objects:
        row = run_row(args, n)
        rows.append(row)
        print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    print("\n| objects × size | anon. memory: start → after burst → settled → after hits "
          "(MiB) | burst (s) | all committed (s) | inserts/s | upstream requests: "
          "pass 1 / pass 2 |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['objects']:,} × {r['size']:,} B | {r['anon_start_mib']} → "
              f"{r['anon_burst_mib']} → {r['anon_settled_mib']} → {r['anon_after_hits_mib']} "
              f"| {r['burst_s']} | {r['committed_s']} | {r['inserts_per_s']} "
              f"| {r['upstream_pass1']:,} / {r['upstream_pass2']:,} |")


if __name__ == "__main__":
    main()
