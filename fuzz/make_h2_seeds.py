#!/usr/bin/env python3
"""Writes the seed inputs of fuzz_http2_session (corpus/fuzz_http2_session/), in the target's
frame-list format: per frame type, flags, stream id (one byte), payload length (two bytes,
big-endian), payload. Run from anywhere; rewrites the seeds it names, leaves others alone."""
import os
import struct

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "fuzz_http2_session")
DATA, HEADERS, PRIORITY, RST, SETTINGS, PUSH, PING, GOAWAY, WINDOW, CONT = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIO = 1, 1, 4, 8, 0x20


def frame(t, flags, stream, payload=b""):
    return struct.pack(">BBBH", t, flags, stream, len(payload)) + payload


def lit(name, value):  # HPACK literal without indexing, new name (lengths < 127)
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def get(stream, path=b"/a", extra=b"", flags=END_HEADERS | END_STREAM, method=b"\x82"):
    # :method GET (static 2), :scheme https (7), :authority, :path
    block = method + b"\x87" + lit(b":authority", b"learn.example.com") + lit(b":path", path)
    return frame(HEADERS, flags, stream, block + extra)


seeds = {
    "get": get(1),
    "two_gets": get(1, b"/course/1/video.mp4") + get(3, b"/bb"),
    "post_body": get(1, b"/quiz", lit(b"content-length", b"5"), END_HEADERS, b"\x83")
    + frame(DATA, END_STREAM, 1, b"hello"),
    "padded_data": get(1, b"/quiz", b"", END_HEADERS, b"\x83")
    + frame(DATA, PADDED | END_STREAM, 1, b"\x03abc\0\0\0"),
    "continuation": frame(HEADERS, END_STREAM, 1, b"\x82\x87")
    + frame(CONT, END_HEADERS, 1, lit(b":authority", b"h") + b"\x84"),
    "trailers": get(1, b"/up", b"", END_HEADERS, b"\x83")
    + frame(DATA, 0, 1, b"x" * 10)
    + frame(HEADERS, END_HEADERS | END_STREAM, 1, lit(b"x-trailer", b"1")),
    "rst_after_get": get(1, b"/big") + frame(RST, 0, 1, struct.pack(">I", 8)) + get(3),
    "rapid_reset": b"".join(get(s) + frame(RST, 0, s, struct.pack(">I", 8)) for s in range(1, 60, 2)),
    "settings_ping_window": frame(SETTINGS, 0, 0, struct.pack(">HI", 4, 65535 * 4))
    + frame(SETTINGS, ACK, 0)
    + frame(PING, 0, 0, b"12345678")
    + frame(WINDOW, 0, 0, struct.pack(">I", 1 << 20))
    + get(1)
    + frame(WINDOW, 0, 1, struct.pack(">I", 0)),
    "priority": frame(PRIORITY, 0, 3, struct.pack(">IB", 1, 16)) + get(3, b"/p", b"", END_HEADERS | END_STREAM | PRIO),
    "lower_stream_id": get(5) + get(3),
    "goaway": get(1) + frame(GOAWAY, 0, 0, struct.pack(">II", 1, 0)),
    "no_path": frame(HEADERS, END_HEADERS | END_STREAM, 1, b"\x82\x87" + lit(b":authority", b"h")),
    "connect": frame(HEADERS, END_HEADERS | END_STREAM, 1, lit(b":method", b"CONNECT") + lit(b":authority", b"h:443")),
    "big_header": get(1, b"/x", lit(b"x-big", b"v" * 120) * 40),
    "bad_content_length": get(1, b"/quiz", lit(b"content-length", b"3"), END_HEADERS, b"\x83")
    + frame(DATA, END_STREAM, 1, b"hello"),
}
# The raw form: the same GET as bytes on the wire (9-byte frame header).
blk = b"\x82\x87" + lit(b":authority", b"h") + b"\x84"
seeds["raw_get"] = b"r" + struct.pack(">I", len(blk))[1:] + bytes([HEADERS, END_HEADERS | END_STREAM]) + struct.pack(">I", 1) + blk

os.makedirs(HERE, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)
