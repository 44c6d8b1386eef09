#!/usr/bin/env python3
"""ratios.py RESULTS [COLLAPSE] [BASE=nginx] [NEW=storecache]

The short table bench/run.sh prints after the shared summary: for the figures that matter to
storecache, the median of BASE and NEW over the rounds and the median of the per-round ratio
NEW / BASE (both measured in the same round, so they share that round's machine noise).

Input: the files bench-all.sh writes, one 'rN LABEL metric value' line per figure
(results.txt: run-bench.sh figures; collapse.txt: collapse-test.sh figures, prefixed slow_/hdel_).
Python 3 stdlib only.
"""
import sys
from collections import defaultdict
from statistics import median

# (metric, what it is, which way is better)
ROWS = [
    ("small_h1_rps", "1 KiB hit, HTTP/1.1 over TLS (wrk -c64), req/s", "higher"),
    ("page_h1_rps", "16 KiB hit, HTTP/1.1 over TLS (wrk -c64), req/s", "higher"),
    ("small_h2_rps", "1 KiB hit, HTTP/2 (h2load -c64 -m10), req/s", "higher"),
    ("page_h2_rps", "16 KiB hit, HTTP/2 (h2load -c64 -m10), req/s", "higher"),
    ("video_h1_mibps", "20 MiB object, HTTP/1.1 (wrk -c8), MiB/s", "higher"),
    ("newconn_small_cps", "new TLS connections/s (one request each)", "higher"),
    ("rss_peak_small_mib", "peak RSS during the 1 KiB tests, MiB", "lower"),
    ("pss_peak_small_mib", "peak PSS during the 1 KiB tests, MiB", "lower"),
    ("slow_cf_origin_fetches", "origin fetches, 50 cold clients, slow body", "lower"),
    ("hdel_cf_origin_fetches", "origin fetches, 50 cold clients, 2 s header delay", "lower"),
    ("origin_reqs_after_warmup", "origin requests during the hit runs (0 = all hits)", "lower"),
]


def load(path, data):
    """data[metric][label][round] = float; 'NA' values are skipped."""
    try:
        lines = open(path).read().splitlines()
    except OSError:
        return
    for line in lines:
        f = line.split()
        if len(f) != 4:
            continue
        rnd, label, metric, val = f
        try:
            data[metric][label][rnd] = float(val)
        except ValueError:
            pass


def fmt(x):
    if x is None:
        return "NA"
    if x == int(x):
        return str(int(x))
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def cell(data, metric, label):
    v = data.get(metric, {}).get(label, {})
    return median(v.values()) if v else None


def ratio(data, metric, base, new):
    b = data.get(metric, {}).get(base, {})
    n = data.get(metric, {}).get(new, {})
    rs = [n[r] / b[r] for r in n if r in b and b[r]]
    return median(rs) if rs else None


def warnings(data, new):
    """Things that make NEW's figures mean something other than what the table says."""
    out = []
    o = data.get("origin_reqs_after_warmup", {}).get(new, {})
    if o and max(o.values()) > 0:
        out.append(f"{new} sent {fmt(median(o.values()))} requests (median per round) to the origin "
                   "during the hit runs: its 'hit' figures include origin fetches (cache off, "
                   "or misses).")
    for m, v in sorted(data.items()):
        if m.endswith("_errors") and v.get(new) and max(v[new].values()) > 0:
            out.append(f"{new} {m} = {fmt(max(v[new].values()))} in some round (failed or non-2xx "
                       "responses; those req/s are not all successes).")
        if m.startswith("range_") and v.get(new) and min(v[new].values()) < 1:
            out.append(f"{new} {m} failed in some round (range not 206 or bytes differ).")
        if m.endswith("cf_clients_ok") and v.get(new) and min(v[new].values()) < 50:
            out.append(f"{new} {m} = {fmt(min(v[new].values()))} in some round (clients that "
                       "did not get the complete, identical object).")
    return out


def main(argv):
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    data = defaultdict(lambda: defaultdict(dict))
    load(argv[1], data)
    base = argv[3] if len(argv) > 3 else "nginx"
    new = argv[4] if len(argv) > 4 else "storecache"
    rounds = max((len(v.get(new, {})) for v in data.values()), default=0)  # hit-path rounds
    if len(argv) > 2:
        load(argv[2], data)  # collapse tests: always 3 rounds (bench-all.sh)
    print(f"## {new} / {base}: median per-round ratio, {rounds} hit-path round(s), "
          "3 collapse rounds\n")
    print(f"| figure | what | {base} | {new} | {new}/{base} | better |")
    print("|---|---|---|---|---|---|")
    for metric, what, better in ROWS:
        if metric not in data:
            continue
        r = ratio(data, metric, base, new)
        print(f"| {metric} | {what} | {fmt(cell(data, metric, base))} | "
              f"{fmt(cell(data, metric, new))} | {'NA' if r is None else f'×{r:.2f}'} | {better} |")
    load_avg = data.get("loadavg_1m_at_start", {})
    if load_avg:
        vals = [x for lab in load_avg.values() for x in lab.values()]
        print(f"\nload average (1 min) at the start of each proxy's round: "
              f"{fmt(min(vals))}–{fmt(max(vals))} (2 cores; above ~1 the figures are noisy)")
    for w in warnings(data, new):
        print(f"\nWARNING: {w}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
