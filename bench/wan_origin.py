#!/usr/bin/env python3
"""bench/wan_origin.py: the LMS behind a thin WAN, for bench/shift_start.sh.

    wan_origin.py --root DIR --listen LABEL:PORT [--listen LABEL:PORT ...] --control PORT
                  [--rate-mbit 40] [--rtt-ms 30]

Serves the files under DIR (plain HTTP/1.1, keep-alive, GET/HEAD, one byte range, ETag and
Last-Modified with If-None-Match / If-Modified-Since) with `Cache-Control: max-age=3600`.

Each --listen port is one store's WAN link, used by one proxy (LABEL): every response body sent
on that port, over all its connections together, is paced by one token bucket at --rate-mbit
(a total cap on the link, not per connection; no burst credit is kept while idle). Each request
also waits --rtt-ms before its response headers (the WAN round trip). Requests and body bytes
are counted per port, and per path.

The control port (plain HTTP, loopback) answers `GET /stats` (JSON: per label requests,
body_bytes, paths {path: [requests, body_bytes]}) and `GET /reset` (zeroes the counters).
"""
import argparse
import asyncio
import email.utils
import hashlib
import json
import os
import re
import sys
import urllib.parse

CHUNK = 32 * 1024


class Pace:
    """A strict total-rate cap shared by all connections of one port: each chunk reserves its
    transmission time after the previous reservation (FIFO), so the port never sends faster than
    `rate` bytes/s on average over any chunk, and idle time earns no burst."""

    def __init__(self, rate_bytes):
        self.rate = float(rate_bytes)
        self.next_free = 0.0

    async def take(self, n):
        loop = asyncio.get_running_loop()
        now = loop.time()
        start = max(now, self.next_free)
        self.next_free = start + n / self.rate
        delay = self.next_free - now
        if delay > 0:
            await asyncio.sleep(delay)


class Link:
    def __init__(self, label, rate_bytes):
        self.label = label
        self.pace = Pace(rate_bytes)
        self.reset()

    def reset(self):
        self.requests = 0
        self.body_bytes = 0
        self.paths = {}

    def stats(self):
        return {"requests": self.requests, "body_bytes": self.body_bytes, "paths": self.paths}


def load_files(root):
    files = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            full = os.path.join(dirpath, n)
            rel = "/" + os.path.relpath(full, root).replace(os.sep, "/")
            with open(full, "rb") as f:
                body = f.read()
            mtime = int(os.stat(full).st_mtime)
            files[rel] = {
                "body": body,
                "etag": '"' + hashlib.sha256(body).hexdigest()[:16] + '"',
                "last_modified": email.utils.formatdate(mtime, usegmt=True),
                "ctype": ctype(rel),
            }
    return files


def ctype(path):
    ext = path.rsplit(".", 1)[-1].lower()
    return {
        "html": "text/html",
        "css": "text/css",
        "js": "application/javascript",
        "json": "application/json",
        "txt": "text/plain",
        "jpg": "image/jpeg",
        "png": "image/png",
        "mp4": "video/mp4",
    }.get(ext, "application/octet-stream")


async def read_request(reader):
    line = await reader.readline()
    if not line:
        return None
    headers = {}
    while True:
        h = await reader.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        k, _, v = h.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    parts = line.decode("latin-1").split()
    if len(parts) != 3:
        raise ValueError("bad request line")
    return parts[0], parts[1], parts[2], headers


def head_bytes(status, reason, fields):
    out = "HTTP/1.1 %d %s\r\n" % (status, reason)
    out += "".join("%s: %s\r\n" % kv for kv in fields)
    return (out + "\r\n").encode("latin-1")


async def serve_file(link, files, rtt, method, target, headers, writer):
    path = urllib.parse.unquote(urllib.parse.urlsplit(target).path)
    link.requests += 1
    per = link.paths.setdefault(path, [0, 0])
    per[0] += 1
    if rtt > 0:
        await asyncio.sleep(rtt)
    f = files.get(path)
    if f is None or method not in ("GET", "HEAD"):
        status, reason = (404, "Not Found") if f is None else (405, "Method Not Allowed")
        writer.write(head_bytes(status, reason, [("Content-Length", "0")]))
        return
    common = [
        ("Cache-Control", "max-age=3600"),
        ("ETag", f["etag"]),
        ("Last-Modified", f["last_modified"]),
        ("Accept-Ranges", "bytes"),
    ]
    inm = headers.get("if-none-match")
    ims = headers.get("if-modified-since")
    if (inm is not None and f["etag"] in [t.strip() for t in inm.split(",")]) or (
        inm is None and ims == f["last_modified"]
    ):
        writer.write(head_bytes(304, "Not Modified", common))
        return
    body = f["body"]
    status, reason, lo, hi = 200, "OK", 0, len(body)
    fields = [("Content-Type", f["ctype"])] + common
    m = re.fullmatch(r"bytes=(\d*)-(\d*)", headers.get("range", ""))
    if m and (m.group(1) or m.group(2)) and headers.get("if-range") in (None, f["etag"]):
        if m.group(1):
            lo = int(m.group(1))
            hi = min(len(body), int(m.group(2)) + 1) if m.group(2) else len(body)
        else:
            lo, hi = max(0, len(body) - int(m.group(2))), len(body)
        if lo >= len(body) or lo >= hi:
            writer.write(
                head_bytes(416, "Range Not Satisfiable",
                           common + [("Content-Range", "bytes */%d" % len(body)), ("Content-Length", "0")]))
            return
        status, reason = 206, "Partial Content"
        fields.append(("Content-Range", "bytes %d-%d/%d" % (lo, hi - 1, len(body))))
    fields.append(("Content-Length", str(hi - lo)))
    writer.write(head_bytes(status, reason, fields))
    if method == "HEAD":
        return
    pos = lo
    while pos < hi:
        n = min(CHUNK, hi - pos)
        await link.pace.take(n)
        writer.write(body[pos:pos + n])
        await writer.drain()
        pos += n
        link.body_bytes += n
        per[1] += n


async def handle(reader, writer, link, files, rtt, links):
    try:
        while True:
            req = await read_request(reader)
            if req is None:
                break
            method, target, version, headers = req
            if link is None:  # control port
                if target.startswith("/reset"):
                    for lk in links.values():
                        lk.reset()
                    body = b"reset\n"
                else:
                    body = json.dumps({k: v.stats() for k, v in links.items()}).encode()
                writer.write(head_bytes(200, "OK", [("Content-Type", "application/json"),
                                                    ("Content-Length", str(len(body)))]) + body)
            else:
                await serve_file(link, files, rtt, method, target, headers, writer)
            await writer.drain()
            if headers.get("connection", "").lower() == "close" or version == "HTTP/1.0":
                break
    except (ConnectionError, ValueError, asyncio.IncompleteReadError):
        pass
    finally:
        try:
            writer.close()
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass


async def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", required=True)
    ap.add_argument("--listen", action="append", required=True, help="LABEL:PORT, one per proxy")
    ap.add_argument("--control", type=int, required=True)
    ap.add_argument("--rate-mbit", type=float, default=40.0)
    ap.add_argument("--rtt-ms", type=float, default=30.0)
    a = ap.parse_args()
    files = load_files(a.root)
    rate = a.rate_mbit * 1e6 / 8
    links = {}
    servers = []
    for spec in a.listen:
        label, port = spec.rsplit(":", 1)
        links[label] = lk = Link(label, rate)
        servers.append(await asyncio.start_server(
            lambda r, w, lk=lk: handle(r, w, lk, files, a.rtt_ms / 1000, links),
            "127.0.0.1", int(port), backlog=1024))
    servers.append(await asyncio.start_server(
        lambda r, w: handle(r, w, None, files, 0, links), "127.0.0.1", a.control))
    print("wan_origin: %d files, %.1f Mbit/s per link, rtt %.0f ms, links %s, control %d"
          % (len(files), a.rate_mbit, a.rtt_ms, " ".join(a.listen), a.control), file=sys.stderr, flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
