#!/usr/bin/env python3
"""bench/shift_report.py: the table of bench/shift_start.sh, from its work dir.

    shift_report.py --work DIR --devices N [--night-s S] [--ranges "a-b c-d"] [--about TEXT] LABEL...

Reads DIR/manifest.txt (path size sha256 of every module file), DIR/runs/night.json (origin
counters while storecache prefetched) and per LABEL DIR/runs/LABEL/: origin.json (origin
counters during the burst), burst_times (start end), devN/{times,log,files.sha256,video.sha256}.
Prints a markdown table; the ratio column is LABEL[0] / LABEL[1].
"""
import argparse
import json
import math
import os
import re
import sys

# One line per transfer, written by curl -w (another tool's progress output may precede it).
TRANSFER = re.compile(r"T (https?://\S+) (\d{3}) (\d+) (\d+) ([0-9.]+)$", re.M)


def pct(values, p):
    """Nearest-rank percentile (p95 of 40 devices is the 38th fastest)."""
    if not values:
        return float("nan")
    v = sorted(values)
    return v[max(0, math.ceil(p / 100 * len(v)) - 1)]


def load_manifest(work):
    files = []
    with open(os.path.join(work, "manifest.txt")) as f:
        for line in f:
            path, size, sha = line.split()
            files.append((path, int(size), sha))
    return files


def device(dirpath, files, video_path, n_ranges, t0):
    r = {"transfers": 0, "errors": 0, "bytes": 0, "ok": False, "page_s": None, "full_s": None,
         "video_s": None}
    try:
        with open(os.path.join(dirpath, "times")) as f:
            _, t_page, t_end = (float(x) for x in f.read().split())
        r["page_s"], r["full_s"] = t_page - t0, t_end - t0
    except (OSError, ValueError):
        pass
    want = len(files) - 1 + n_ranges
    try:
        with open(os.path.join(dirpath, "log")) as f:
            for m in TRANSFER.finditer(f.read()):
                url, status, size, code, took = m.groups()
                if url.endswith("#0-1048575") and r["page_s"] is not None:
                    r["video_s"] = r["page_s"] + float(took)  # the player has its first MiB
                r["transfers"] += 1
                r["bytes"] += int(size)
                expect = "206" if "#" in url else "200"
                if code != "0" or status != expect:
                    r["errors"] += 1
    except OSError:
        pass
    r["errors"] += max(0, want - r["transfers"])  # transfers that never happened
    got = {}
    try:
        with open(os.path.join(dirpath, "files.sha256")) as f:
            for line in f:
                sha, name = line.split(None, 1)
                got["/module/" + name.strip().lstrip("./")] = sha
        with open(os.path.join(dirpath, "video.sha256")) as f:
            got[video_path] = f.read().strip()
    except OSError:
        pass
    r["ok"] = all(got.get(p) == sha for p, _, sha in files)
    r["files_ok"] = sum(1 for p, _, sha in files if got.get(p) == sha)
    return r


def fmt_ratio(a, b):
    if a is None or b is None or (isinstance(a, float) and math.isnan(a)):
        return ""
    if b == 0:
        return "×1.00" if a == 0 else "n/a (÷0)"
    return "×%.2f" % (a / b)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--devices", type=int, required=True)
    ap.add_argument("--night-s", default="")
    ap.add_argument("--rate-mbit", default="")
    ap.add_argument("--rtt-ms", default="")
    ap.add_argument("--ranges", default="")
    ap.add_argument("--about", default="")
    ap.add_argument("--device-rate", default="none")
    ap.add_argument("labels", nargs="+")
    a = ap.parse_args()
    files = load_manifest(a.work)
    module = sum(s for _, s, _ in files)
    video_path = next(p for p, _, _ in files if p.endswith(".mp4"))
    n_ranges = len(a.ranges.split()) or 1
    mib = 1048576.0

    res = {}
    for label in a.labels:
        d = os.path.join(a.work, "runs", label)
        with open(os.path.join(d, "origin.json")) as f:
            o = json.load(f)[label]
        with open(os.path.join(d, "burst_times")) as f:
            t0, t1 = (float(x) for x in f.read().split())
        devs = [device(os.path.join(d, "dev%d" % i), files, video_path, n_ranges, t0)
                for i in range(1, a.devices + 1)]
        full = [x["full_s"] for x in devs if x["full_s"] is not None]
        page = [x["page_s"] for x in devs if x["page_s"] is not None]
        video = [x["video_s"] for x in devs if x["video_s"] is not None]
        res[label] = {
            "origin_requests": o["requests"],
            "origin_bytes": o["body_bytes"],
            "wan_over_module": o["body_bytes"] / module,
            "video_requests": o["paths"].get(video_path, [0, 0])[0],
            "max_per_object": max((v[0] for v in o["paths"].values()), default=0),
            "page": (pct(page, 50), pct(page, 95), max(page) if page else float("nan")),
            "full": (pct(full, 50), pct(full, 95), max(full) if full else float("nan")),
            "video": (pct(video, 50), pct(video, 95), max(video) if video else float("nan")),
            "errors": sum(x["errors"] for x in devs),
            "transfers": a.devices * (len(files) - 1 + n_ranges),
            "devices_ok": sum(1 for x in devs if x["ok"]),
            "files_ok": sum(x["files_ok"] for x in devs),
            "bytes": sum(x["bytes"] for x in devs),
            "burst_s": t1 - t0,
        }
    night = {}
    try:
        with open(os.path.join(a.work, "runs", "night.json")) as f:
            night = json.load(f).get(a.labels[0], {})
    except OSError:
        pass

    A, B = a.labels[0], a.labels[1] if len(a.labels) > 1 else None
    cols = [A] + ([B] if B else [])
    head = ["figure"] + ["%s (%s)" % (c, "prefetch" if c == "storecache" else "cold") for c in cols]
    if B:
        head.append("%s/%s" % (A, B))
    rows = []

    def row(name, key, fmt, ratio=True, idx=None):
        vals = [res[c][key] if idx is None else res[c][key][idx] for c in cols]
        line = [name] + [fmt(v) for v in vals]
        if B:
            line.append(fmt_ratio(vals[0], vals[1]) if ratio else "")
        rows.append(line)

    row("origin requests during the burst", "origin_requests", str)
    row("origin body bytes during the burst (MiB)", "origin_bytes", lambda v: "%.1f" % (v / mib))
    row("WAN bytes / module size", "wan_over_module", lambda v: "%.2f" % v)
    row("origin requests for the video", "video_requests", str)
    row("most origin requests for one object", "max_per_object", str)
    for i, p in enumerate(("p50", "p95", "max")):
        row("page ready (HTML + 28 files), %s (s)" % p, "page", lambda v: "%.2f" % v, idx=i)
    for i, p in enumerate(("p50", "p95", "max")):
        row("video's first MiB there (player starts), %s (s)" % p, "video", lambda v: "%.2f" % v, idx=i)
    for i, p in enumerate(("p50", "p95", "max")):
        row("whole module incl. video, %s (s)" % p, "full", lambda v: "%.2f" % v, idx=i)
    row("errors (failed transfers or wrong status)", "errors", lambda v: str(v), ratio=False)
    line = ["transfers per run"] + [str(res[c]["transfers"]) for c in cols] + ([""] if B else [])
    rows.append(line)
    line = ["devices with every byte right (sha256)"] + \
        ["%d / %d" % (res[c]["devices_ok"], a.devices) for c in cols] + ([""] if B else [])
    rows.append(line)
    line = ["files right (sha256)"] + \
        ["%d / %d" % (res[c]["files_ok"], a.devices * len(files)) for c in cols] + ([""] if B else [])
    rows.append(line)
    row("bytes the devices received (MiB)", "bytes", lambda v: "%.1f" % (v / mib), ratio=False)
    if night:
        rows.append(["night before: prefetch origin requests / MiB / s to ready",
                     "%d / %.1f / %s" % (night["requests"], night["body_bytes"] / mib, a.night_s)]
                    + (["none (no prefetch)", ""] if B else []))

    out = []
    out.append("Shift start: %d devices at once, module %d files, %.1f MiB (video %.1f MiB, fetched as %d "
               "ranges); origin %s Mbit/s total per proxy, %s ms before headers; device rate limit per transfer: %s"
               % (a.devices, len(files), module / mib, next(s for p, s, _ in files if p == video_path) / mib,
                  n_ranges, a.rate_mbit, a.rtt_ms, a.device_rate))
    if a.about:
        out.append(a.about)
    out.append("")
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * len(head))
    for r in rows:
        out.append("| " + " | ".join(r) + " |")
    warn = []
    for c in cols:
        if res[c]["errors"] or res[c]["devices_ok"] != a.devices:
            warn.append("WARNING: %s: %d errors, %d of %d devices got every byte right"
                        % (c, res[c]["errors"], res[c]["devices_ok"], a.devices))
    if "storecache" in res and res["storecache"]["origin_requests"]:
        warn.append("WARNING: storecache sent %d requests to the origin during the burst: the module was "
                    "not (all) in its cache" % res["storecache"]["origin_requests"])
    if warn:
        out.append("")
        out.extend(warn)
    print("\n".join(out))
    return 1 if warn else 0


if __name__ == "__main__":
    sys.exit(main())
