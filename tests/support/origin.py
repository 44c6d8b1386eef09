#!/usr/bin/env python3
"""A programmable HTTP/1.1 test origin (HTTPS, or plain HTTP with --plain). Stdlib only.

Scripted per request through the path and query, so a test through the proxy needs no side
channel, or per path prefix through the control API (/__origin/program) or in-process
(Origin.program). Endpoints:

  /gen/<name>?size=N            deterministic body (see gen_range), streamed in chunks
      &status=200 &delay=S      wait S seconds before the head
      &stall_after=N            send the head and N body bytes, then hold the socket silently
      &drop_after=N             send N bytes of the declared body, then close
      &mid_chunk=1              with chunked and drop_after: the last chunk is announced whole
                                and cut after byte N (a body cut inside a chunk)
      &length=N                 declare Content-Length: N whatever the body's size (a lie:
                                all `size` bytes are sent in the same writes, then the
                                connection is closed)
      &rate=BYTES_PER_S         pace the body
      &header=Name:Value        extra response header (repeatable)
      &cc=max-age%3D60 &etag=x &lm=<http-date|epoch> &ct=<type>
      &chunked=1                Transfer-Encoding: chunked instead of Content-Length
      &ranges=0                 ignore Range (an origin without range support)
      &close=1                  Connection: close after this response
      &interim=103              an interim response before the final one (repeatable, in
                                order; any 1xx), each with every &interim_header=Name:Value;
      &interim_repeat=N         the list of interim responses sent N times (default 1)
  /echo                         the request (method, target, headers, body digest) as JSON
  /redirect?to=URL&status=302
  /silent (or silent=1 on any path): read the request, never answer
  /__origin/requests            the request log as JSON; /__origin/reset clears it and programs
  /__origin/program?prefix=/p&<params>  default params for paths under /p (query overrides)

Access checks, on any path, before anything else is answered (an origin that protects its
content; best programmed, so that the URL a device sends does not carry them):
      &require_query=Name:V1|V2   the request's query must hold Name exactly once, equal to one
                                  of the values (repeatable: every one must hold)
      &require_cookie=name:V1|V2  a Cookie field must hold name=one of the values (repeatable)
  A request that fails one gets 403 with the body "forbidden: <which>\n" (Cache-Control:
  no-store), GET and HEAD alike; its log entry has "denied": true.
  anything else, with --root DIR: static files (type by extension, ETag, Last-Modified, Range)

Range (one range -> 206, unsatisfiable -> 416) and conditionals (If-None-Match, then
If-Modified-Since -> 304) work on /gen and static files.

Command line: origin.py --port 0 --tls-cert C --tls-key K [--root DIR] [--plain]
prints "listening on PORT". In-process: Origin(cert, key).start(); .port; .requests().
"""

import argparse
import asyncio
import base64
import email.utils
import functools
import hashlib
import json
import mimetypes
import os
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.parse

BLOCK = 64 * 1024  # generator block; each block is stamped with its index
CHUNK = 256 * 1024  # write size for streamed bodies
MAX_HEAD = 1024 * 1024  # request head bytes the origin accepts
HOLD_SECONDS = 600  # how long stall/silent connections are held at most

REASONS = {
    100: "Continue", 101: "Switching Protocols", 102: "Processing", 103: "Early Hints",
    200: "OK", 204: "No Content", 206: "Partial Content",
    301: "Moved Permanently", 302: "Found", 303: "See Other", 304: "Not Modified",
    307: "Temporary Redirect", 308: "Permanent Redirect", 400: "Bad Request",
    403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 410: "Gone",
    412: "Precondition Failed", 416: "Range Not Satisfiable", 429: "Too Many Requests",
    500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Gateway Timeout",
}

EXTRA_TYPES = {
    ".mp4": "video/mp4", ".m4v": "video/mp4", ".webm": "video/webm", ".m3u8":
    "application/vnd.apple.mpegurl", ".ts": "video/mp2t", ".vtt": "text/vtt",
    ".json": "application/json", ".js": "text/javascript", ".mjs": "text/javascript",
    ".css": "text/css", ".svg": "image/svg+xml", ".webp": "image/webp",
    ".woff2": "font/woff2", ".pdf": "application/pdf", ".html": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8", ".xml": "application/xml",
}


# --- deterministic bodies -------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _base_block(name):
    return hashlib.shake_256(("storecache-origin:" + name).encode()).digest(BLOCK)


def _block(name, k):
    # The index stamp makes every block distinct, so an offset error of whole blocks shows.
    return k.to_bytes(8, "big") + _base_block(name)[8:]


def gen_range(name, start, end):
    """Yields the bytes [start, end) of the body named `name`, in chunks of at most CHUNK."""
    pos = start
    while pos < end:
        stop = min(end, pos + CHUNK)
        parts = []
        p = pos
        while p < stop:
            k, off = divmod(p, BLOCK)
            take = min(BLOCK - off, stop - p)
            blk = _block(name, k)
            parts.append(blk if (off == 0 and take == BLOCK) else blk[off:off + take])
            p += take
        yield b"".join(parts)
        pos = stop


def gen_bytes(name, size, start=0, end=None):
    """The body (or bytes [start, end)) that /gen/<name>?size=size serves."""
    return b"".join(gen_range(name, start, size if end is None else end))


def gen_sha256(name, size, start=0, end=None):
    h = hashlib.sha256()
    for chunk in gen_range(name, start, size if end is None else end):
        h.update(chunk)
    return h.hexdigest()


def parse_size(text):
    """'1024', '64K', '20M', '1G', '1GiB' -> bytes (binary units)."""
    t = text.strip().upper().removesuffix("IB").removesuffix("B")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(t[-1:], 1)
    return int(float(t[:-1] if mult > 1 else t) * mult)


# --- HTTP helpers ---------------------------------------------------------------------------


def http_date(ts):
    return email.utils.formatdate(ts, usegmt=True)


def parse_http_date(text):
    try:
        dt = email.utils.parsedate_to_datetime(text)
        return dt.timestamp() if dt is not None else None
    except (TypeError, ValueError, IndexError):
        return None


def parse_range(value, size):
    """One 'bytes=' range -> (start, end) half-open; 'unsat'; or None to ignore the header."""
    if not value or not value.strip().lower().startswith("bytes="):
        return None
    spec = value.split("=", 1)[1].strip()
    if "," in spec:
        return None  # multiple ranges: answering 200 with the whole body is allowed
    first, sep, last = spec.partition("-")
    if not sep:
        return None
    try:
        if first == "":
            n = int(last)
            if n <= 0:
                return "unsat"
            return (max(0, size - n), size)
        a = int(first)
        b = int(last) if last else size - 1
    except ValueError:
        return None
    if a >= size:
        return "unsat"
    if a < 0 or b < a:
        return None
    return (a, min(b, size - 1) + 1)


def etag_matches(header_value, etag):
    """Weak comparison, as If-None-Match uses."""
    if etag is None:
        return False
    tags = [t.strip() for t in header_value.split(",")]
    strip = lambda t: t[2:] if t.startswith("W/") else t
    return "*" in tags or strip(etag) in [strip(t) for t in tags]


class Request:
    def __init__(self, method, target, version, headers):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers  # list of (name, value) as received
        parsed = urllib.parse.urlsplit(target)
        self.path = urllib.parse.unquote(parsed.path) if parsed.path else "/"
        self.query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
        self.body = b""
        self.body_len = 0
        self.body_sha256 = hashlib.sha256(b"").hexdigest()

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]


class Params:
    """Query parameters merged over any programmed defaults for the path."""

    def __init__(self, query, defaults):
        self.q = {k: list(v) for k, v in defaults.items()}
        self.q.update(query)

    def get(self, key, default=None):
        v = self.q.get(key)
        return v[-1] if v else default

    def get_all(self, key):
        return self.q.get(key, [])

    def num(self, key, default=None, conv=float):
        v = self.get(key)
        return default if v is None or v == "" else conv(v)

    def flag(self, key):
        return self.get(key, "0").lower() in ("1", "true", "yes", "on")


class _Close(Exception):
    """Ends the connection without an answer (drop, peer gone)."""


# --- the server -----------------------------------------------------------------------------


class Origin:
    """The test origin. start() runs it on its own thread and event loop; port is then set."""

    def __init__(self, cert=None, key=None, plain=False, root=None, host="127.0.0.1", port=0):
        if not plain and not (cert and key):
            raise ValueError("TLS needs cert and key (or plain=True)")
        self.cert, self.key, self.plain, self.host = cert, key, plain, host
        self.root = os.path.realpath(root) if root else None
        self.port = port
        self._lock = threading.Lock()
        self._log = []
        self._programs = []  # (prefix, {param: [values]})
        self._conn_count = 0
        self._conn_resumed = {}  # connection number -> its TLS session was resumed
        self.sndbuf = None  # bytes: SO_SNDBUF of accepted connections (None: the system's)
        self._active = 0  # requests being answered now
        self.max_active = 0  # the most answered at once since reset()
        self._writers = set()
        self._loop = None
        self._server = None
        self._thread = None
        self._stopped = None

    # In-process API (thread-safe) ---------------------------------------------------------

    def start(self):
        ready = threading.Event()
        errors = []

        def run():
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self._open())
            except Exception as e:  # reported to the starting thread
                errors.append(e)
                ready.set()
                return
            ready.set()
            self._loop.run_until_complete(self._stopped.wait())
            self._loop.run_until_complete(self._close())
            self._loop.close()

        self._thread = threading.Thread(target=run, name="origin", daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors:
            raise errors[0]
        return self

    def stop(self):
        if self._loop and self._thread and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def scheme(self):
        return "http" if self.plain else "https"

    def url(self, path="/"):
        return f"{self.scheme}://{self.host}:{self.port}{path}"

    def requests(self, path_prefix=None):
        """The request log: dicts with method, target, path, headers, body_len, peer, conn."""
        with self._lock:
            log = list(self._log)
        return [r for r in log if path_prefix is None or r["path"].startswith(path_prefix)]

    def count(self, path_prefix=None):
        return len(self.requests(path_prefix))

    def sent_bytes(self, path_prefix=None):
        """Body bytes handed to the socket so far for requests under path_prefix (all of them:
        the count grows while bodies are still streaming)."""
        with self._lock:
            return sum(e.get("sent", 0) for e in self._log
                       if path_prefix is None or e["path"].startswith(path_prefix))

    @property
    def connections(self):
        """TCP connections accepted so far (for keep-alive and connection-reuse checks)."""
        with self._lock:
            return self._conn_count

    def reset(self):
        with self._lock:
            self._log.clear()
            self._programs.clear()
            self._conn_count = 0
            self.max_active = self._active

    def program(self, prefix, **params):
        """Default params for paths starting with prefix, e.g. program('/', silent=1)."""
        p = {k: (v if isinstance(v, list) else [str(v)]) for k, v in params.items()}
        with self._lock:
            self._programs.append((prefix, p))

    # Server ---------------------------------------------------------------------------------

    async def _open(self):
        self._stopped = asyncio.Event()
        ctx = None
        if not self.plain:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.cert, self.key)
            ctx.set_alpn_protocols(["http/1.1"])
        self._server = await asyncio.start_server(self._serve, self.host, self.port, ssl=ctx,
                                                  limit=MAX_HEAD, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self):
        self._server.close()
        for w in list(self._writers):
            w.transport.abort()
        await asyncio.sleep(0)

    def _defaults(self, path):
        merged = {}
        with self._lock:
            for prefix, p in self._programs:
                if path.startswith(prefix):
                    merged.update(p)
        return merged

    async def _serve(self, reader, writer):
        with self._lock:
            self._conn_count += 1
            conn = self._conn_count
            tls = writer.get_extra_info("ssl_object")
            self._conn_resumed[conn] = bool(tls and tls.session_reused)
        self._writers.add(writer)
        if self.sndbuf:
            # A small kernel send buffer: "sent" then means what left for the client, not what
            # waits in this host's socket buffer (loopback autotuning allows 4 MiB of it).
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.sndbuf)
        peer = writer.get_extra_info("peername")
        try:
            while True:
                req = await self._read_request(reader, writer)
                if req is None:
                    break
                with self._lock:
                    self._active += 1
                    self.max_active = max(self.max_active, self._active)
                try:
                    keep = await self._dispatch(req, reader, writer, peer, conn)
                finally:
                    with self._lock:
                        self._active -= 1
                if not keep:
                    break
        except (_Close, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ssl.SSLError, OSError):
            pass
        except asyncio.CancelledError:
            raise
        finally:
            self._writers.discard(writer)
            try:
                writer.close()
            except Exception:
                pass

    async def _read_request(self, reader, writer):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            await self._send_simple(writer, 400, b"bad request line\n", keep=False)
            return None
        headers = []
        for line in lines[1:]:
            if not line:
                continue
            name, sep, value = line.partition(":")
            if not sep:
                await self._send_simple(writer, 400, b"bad header\n", keep=False)
                return None
            headers.append((name.strip(), value.strip()))
        req = Request(parts[0], parts[1], parts[2], headers)
        if (req.header("expect", "").lower() == "100-continue"):
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()
        await self._read_body(req, reader)
        return req

    async def _read_body(self, req, reader):
        h = hashlib.sha256()
        kept = []
        total = 0

        def take(data):
            nonlocal total
            h.update(data)
            if total < 64 * 1024:
                kept.append(data[:64 * 1024 - total])
            total += len(data)

        if "chunked" in req.header("transfer-encoding", "").lower():
            while True:
                size_line = await reader.readuntil(b"\r\n")
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    while (await reader.readuntil(b"\r\n")) != b"\r\n":
                        pass  # trailers
                    break
                while size:
                    data = await reader.readexactly(min(size, CHUNK))
                    take(data)
                    size -= len(data)
                await reader.readexactly(2)
        else:
            left = int(req.header("content-length", "0") or 0)
            while left:
                data = await reader.readexactly(min(left, CHUNK))
                take(data)
                left -= len(data)
        req.body = b"".join(kept)
        req.body_len = total
        req.body_sha256 = h.hexdigest()

    def _record(self, req, peer, conn):
        entry = {
            "time": time.time(), "method": req.method, "target": req.target, "path": req.path,
            "version": req.version, "headers": [list(x) for x in req.headers],
            "body_len": req.body_len, "peer": list(peer[:2]) if peer else None, "conn": conn,
            "tls_resumed": self._conn_resumed.get(conn),
        }
        with self._lock:
            self._log.append(entry)
        return entry

    async def _dispatch(self, req, reader, writer, peer, conn):
        """Answers one request. Returns whether the connection stays open."""
        client_keep = req.header("connection", "").lower() != "close" and req.version == "HTTP/1.1"
        if req.path.startswith("/__origin/"):
            await self._control(req, writer)
            return client_keep
        req.log_entry = self._record(req, peer, conn)
        p = Params(req.query, self._defaults(req.path))
        keep = client_keep and not p.flag("close")
        refusal = self._refusal(req, p)
        if refusal is not None:
            req.log_entry["denied"] = True
            await self._send_simple(writer, 403, f"forbidden: {refusal}\n".encode(), keep,
                                    [("Content-Type", "text/plain"),
                                     ("Cache-Control", "no-store")], req.method)
            return keep
        if p.flag("silent") or req.path == "/silent":
            await self._hold(reader)
            return False
        delay = p.num("delay", 0.0)
        if delay:
            await asyncio.sleep(delay)
        await self._send_interim(writer, p)
        if req.path == "/echo":
            return await self._echo(req, writer, peer, p, keep)
        if req.path == "/redirect":
            status = int(p.get("status", "302"))
            hdrs = [("Location", p.get("to", "/"))] + self._extra_headers(p)
            await self._send_simple(writer, status, b"redirect\n", keep, hdrs, req.method)
            return keep
        if req.path.startswith("/gen/"):
            name = req.path[len("/gen/"):]
            size = parse_size(p.get("size", "1024"))
            body = lambda a, b: gen_range(name, a, b)
            return await self._resource(req, writer, reader, p, keep, size, body,
                                        "application/octet-stream", p.get("etag"), None)
        if self.root:
            return await self._static(req, writer, reader, p, keep)
        await self._send_simple(writer, 404, b"not found\n", keep, [], req.method)
        return keep

    @staticmethod
    def _refusal(req, p):
        """Why require_query / require_cookie refuse this request, or None."""
        for rule in p.get_all("require_query"):
            name, _, allowed = rule.partition(":")
            got = req.query.get(name, [])
            if len(got) != 1 or got[0] not in allowed.split("|"):
                return f"require_query {name}"
        cookies = {}
        for field in req.header_all("cookie"):
            for pair in field.split(";"):
                k, sep, v = pair.strip().partition("=")
                if sep:
                    cookies.setdefault(k, []).append(v)
        for rule in p.get_all("require_cookie"):
            name, _, allowed = rule.partition(":")
            if not any(v in allowed.split("|") for v in cookies.get(name, [])):
                return f"require_cookie {name}"
        return None

    async def _control(self, req, writer):
        what = req.path[len("/__origin/"):]
        if what == "requests":
            body = json.dumps(self.requests()).encode()
        elif what == "reset":
            self.reset()
            body = b'{"ok":true}'
        elif what == "program":
            q = dict(req.query)
            prefix = q.pop("prefix", ["/"])[-1]
            with self._lock:
                self._programs.append((prefix, q))
            body = b'{"ok":true}'
        elif what == "stats":
            body = json.dumps({"requests": self.count(), "connections": self.connections}).encode()
        else:
            await self._send_simple(writer, 404, b"unknown control endpoint\n", True)
            return
        await self._send_simple(writer, 200, body, True, [("Content-Type", "application/json")])

    async def _echo(self, req, writer, peer, p, keep):
        doc = {
            "method": req.method, "target": req.target, "path": req.path,
            "version": req.version, "headers": [list(x) for x in req.headers],
            "peer": list(peer[:2]) if peer else None, "body_len": req.body_len,
            "body_sha256": req.body_sha256,
            "body_b64": base64.b64encode(req.body).decode() if req.body_len <= 64 * 1024 else None,
        }
        hdrs = [("Content-Type", "application/json")] + self._extra_headers(p)
        status = int(p.get("status", "200"))
        await self._send_simple(writer, status, json.dumps(doc).encode(), keep, hdrs, req.method)
        return keep

    async def _static(self, req, writer, reader, p, keep):
        rel = req.path.lstrip("/")
        full = os.path.realpath(os.path.join(self.root, rel))
        if full != self.root and not full.startswith(self.root + os.sep):
            await self._send_simple(writer, 403, b"forbidden\n", keep, [], req.method)
            return keep
        if os.path.isdir(full):
            full = os.path.join(full, "index.html")
        try:
            st = os.stat(full)
        except OSError:
            await self._send_simple(writer, 404, b"not found\n", keep, [], req.method)
            return keep
        ext = os.path.splitext(full)[1].lower()
        ctype = EXTRA_TYPES.get(ext) or mimetypes.guess_type(full)[0] or "application/octet-stream"
        etag = '"%x-%x"' % (st.st_mtime_ns, st.st_size)

        def body(a, b):
            with open(full, "rb") as f:
                f.seek(a)
                left = b - a
                while left > 0:
                    data = f.read(min(CHUNK, left))
                    if not data:
                        return
                    left -= len(data)
                    yield data

        return await self._resource(req, writer, reader, p, keep, st.st_size, body, ctype, etag,
                                    int(st.st_mtime))

    def _extra_headers(self, p):
        out = []
        for h in p.get_all("header"):
            name, _, value = h.partition(":")
            out.append((name.strip(), value.strip()))
        return out

    async def _resource(self, req, writer, reader, p, keep, size, body, ctype, etag, mtime):
        """A GET/HEAD-able entity with validators, conditionals, Range, and failure modes."""
        status = int(p.get("status", "200"))
        etag = etag if etag is None or etag.startswith(('"', 'W/"')) else f'"{etag}"'
        lm = p.get("lm")
        if lm is not None:
            mtime = int(lm) if lm.isdigit() else parse_http_date(lm)
        hdrs = [("Content-Type", p.get("ct", ctype))]
        if etag:
            hdrs.append(("ETag", etag))
        if mtime is not None:
            hdrs.append(("Last-Modified", http_date(mtime)))
        if p.get("cc") is not None:
            hdrs.append(("Cache-Control", p.get("cc")))
        ranges_ok = status == 200 and p.get("ranges", "1") != "0"
        if ranges_ok:
            hdrs.append(("Accept-Ranges", "bytes"))
        hdrs += self._extra_headers(p)

        if status == 200 and req.method in ("GET", "HEAD"):
            inm = req.header("if-none-match")
            ims = req.header("if-modified-since")
            not_modified = False
            if inm is not None:
                not_modified = etag_matches(inm, etag)
            elif ims is not None and mtime is not None:
                t = parse_http_date(ims)
                not_modified = t is not None and int(mtime) <= t
            if not_modified:
                await self._write_head(writer, 304, hdrs, None, keep)
                return keep

        start, end = 0, size
        rng = req.header("range") if ranges_ok and req.method == "GET" else None
        if rng is not None:
            if_range = req.header("if-range")
            if if_range is not None:
                valid = (if_range == etag and not if_range.startswith("W/")) or (
                    mtime is not None and parse_http_date(if_range) == int(mtime))
                if not valid:
                    rng = None
        r = parse_range(rng, size) if rng is not None else None
        if r == "unsat":
            hdrs.append(("Content-Range", f"bytes */{size}"))
            await self._send_simple(writer, 416, b"", keep, hdrs, req.method)
            return keep
        if r is not None:
            start, end = r
            status = 206
            hdrs.append(("Content-Range", f"bytes {start}-{end - 1}/{size}"))

        chunked = p.flag("chunked")
        length = end - start
        declared = p.num("length", None, int)
        if status in (204, 304) or 100 <= status < 200:
            await self._write_head(writer, status, hdrs, None, keep)
            return keep
        await self._write_head(writer, status, hdrs,
                               None if chunked else declared if declared is not None else length,
                               keep, chunked)
        if req.method == "HEAD":
            return keep
        stall = p.num("stall_after", None, int)
        drop = p.num("drop_after", None, int)
        rate = p.num("rate", None, float)
        chunks = self._counted(req.log_entry, body(start, end))
        await self._stream(writer, reader, chunks, chunked, stall, drop, rate,
                           mid_chunk=p.flag("mid_chunk"))
        self._note_sent(req.log_entry, 0, done=True)
        if declared is not None and declared != length:
            raise _Close()  # the peer saw more or fewer bytes than declared
        return keep

    def _note_sent(self, entry, n, done=False):
        with self._lock:
            entry["sent"] = entry.get("sent", 0) + n
            entry["last_byte_time"] = time.time()
            if done:
                entry["done_time"] = entry["last_byte_time"]

    def _counted(self, entry, chunks):
        """Body chunks, counted into the request's log entry as they are handed to the writer
        ("sent": body bytes so far, "last_byte_time"; "done_time" once the body is complete)."""
        for data in chunks:
            self._note_sent(entry, len(data))
            yield data

    async def _stream(self, writer, reader, chunks, chunked, stall, drop, rate, mid_chunk=False):
        sent = 0
        began = time.monotonic()
        limits = [x for x in (stall, drop) if x is not None]
        limit = min(limits) if limits else None
        cut = False
        if rate:
            piece = max(1, min(CHUNK, int(rate / 20)))  # ~20 writes a second keeps pace smooth
            chunks = (c[i:i + piece] for c in chunks for i in range(0, len(c), piece))
        for data in chunks:
            if rate:
                ahead = sent / rate - (time.monotonic() - began)
                if ahead > 0:
                    await asyncio.sleep(ahead)
            announced = len(data)
            if limit is not None and sent + len(data) >= limit:
                cut = sent + len(data) > limit
                data = data[:limit - sent]
            if data:
                if chunked and mid_chunk and cut:  # announced whole; the rest never comes
                    writer.write(b"%x\r\n%s" % (announced, data))
                else:
                    writer.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
                await writer.drain()
                sent += len(data)
            if limit is not None and sent >= limit:
                break
        if cut and drop is not None and sent >= drop:
            raise _Close()  # the declared body was longer: the peer sees a short body
        if cut and stall is not None and sent >= stall:
            await self._hold(reader)
        if chunked:
            writer.write(b"0\r\n\r\n")
        await writer.drain()

    async def _hold(self, reader):
        """Keeps the connection open and silent until the peer closes it."""
        try:
            async with asyncio.timeout(HOLD_SECONDS):
                while await reader.read(65536):
                    pass
        except (TimeoutError, ConnectionError, ssl.SSLError, OSError):
            pass
        raise _Close()

    async def _send_interim(self, writer, p):
        """The interim (1xx) responses asked for with &interim=, before the final response."""
        statuses = [int(s) for s in p.get_all("interim")]
        if not statuses:
            return
        pairs = [h.partition(":")[::2] for h in p.get_all("interim_header")]
        fields = "".join(f"{k.strip()}: {v.strip()}\r\n" for k, v in pairs)
        for _ in range(p.num("interim_repeat", 1, int)):
            for status in statuses:
                writer.write(f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}\r\n{fields}\r\n"
                             .encode("latin-1"))
            await writer.drain()

    async def _write_head(self, writer, status, headers, length, keep, chunked=False):
        lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}", f"Date: {http_date(None)}",
                 "Server: storecache-test-origin"]
        lines += [f"{k}: {v}" for k, v in headers]
        if chunked:
            lines.append("Transfer-Encoding: chunked")
        elif length is not None:
            lines.append(f"Content-Length: {length}")
        if not keep:
            lines.append("Connection: close")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await writer.drain()

    async def _send_simple(self, writer, status, body, keep, headers=(), method="GET"):
        no_body = status in (204, 304) or status < 200
        await self._write_head(writer, status, list(headers), None if no_body else len(body),
                               keep)
        if method != "HEAD" and not no_body and body:
            writer.write(body)
            await writer.drain()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--root")
    ap.add_argument("--plain", action="store_true", help="plain HTTP instead of HTTPS")
    args = ap.parse_args(argv)
    if not args.plain and not (args.tls_cert and args.tls_key):
        ap.error("--tls-cert and --tls-key are required unless --plain")
    origin = Origin(args.tls_cert, args.tls_key, plain=args.plain, root=args.root,
                    host=args.host, port=args.port).start()
    print(f"listening on {origin.port}", flush=True)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    origin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
