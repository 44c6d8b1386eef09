#!/usr/bin/env python3
"""HTTP/2 conformance on streams storecache answers early (issue 11): RFC 9113 5.1, 5.1.1, 6.1,
6.9 and 8.1 with hand-written frames (tests/support/h2raw.py) against the real daemon.

A stream answered before its request ended (421 for a name that is not a site, here) stays
half-closed(local) while the client finishes the request, so what the client sends next still
gets the RFC's checks: bad padding, a WINDOW_UPDATE of 0 or one that overflows the window,
trailers with pseudo-headers, a body that disagrees with content-length, DATA after the
request ended. Before, storecache reset such a stream at once (RST_STREAM NO_ERROR), after
which every one of those frames had to be ignored. A client that does not finish its request
is still asked to stop: RST_STREAM(NO_ERROR) after 256 KiB or 2 s.

And a HEADERS frame that opens a stream with an identifier lower than one already used is a
connection error PROTOCOL_ERROR (5.1.1); nghttp2 ignored it and the client waited forever.

Each error is counted: storecache_h2_connection_errors_total{code} (GOAWAY) and
storecache_h2_stream_errors_total{code} (RST_STREAM).
"""

import os
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import h2raw  # noqa: E402
import harness  # noqa: E402
from h2raw import (DATA, END_HEADERS, END_STREAM, GOAWAY, HEADERS, MAX_WINDOW,  # noqa: E402
                   RST_STREAM, frame, hpack_literal)
from harness import SITE  # noqa: E402

NOT_A_SITE = "not-a-site.example.net"


def ends_stream(sid):
    return lambda f: f[2] == sid and f[0] in (HEADERS, DATA) and f[1] & END_STREAM


class H2ConformanceTest(harness.StackTest):
    stack_args = {"overrides": {"timeouts": {"shutdown_grace": "2s"}}}

    def tearDown(self):
        self.assertHealthy()
        # Another device is served whatever the last test did to its connection.
        r = h2raw.get(self.stack.port, SITE, self.stack.ca, "/gen/other?size=1000",
                      source="127.0.0.2")
        self.assertEqual((r.status, r.complete, len(r.body)), (200, True, 1000), r)

    # --- helpers ---------------------------------------------------------------------------

    def conn(self):
        return h2raw.H2Conn(self.stack.port, SITE, self.stack.ca)

    def errors(self):
        m = self.stack.metrics()
        out = {}
        for fam in ("connection", "stream"):
            for (n, lab), v in m.items():
                if n == f"storecache_h2_{fam}_errors_total":
                    out[(fam, dict(lab)["code"])] = v
        return out

    def assert_counted(self, before, fam, code):
        after = harness.poll(self.errors, lambda e: e.get((fam, code), 0) > before.get((fam, code), 0),
                             timeout=5)
        self.assertEqual(after.get((fam, code), 0) - before.get((fam, code), 0), 1,
                         f"{fam} {code}: {before} -> {after}")

    def answered_early(self, c, extra=()):
        """A POST whose body is still to come, to a name that is not a site: 421 at once."""
        sid = c.open_stream()
        block = b"".join(hpack_literal(k, v) for k, v in (
            (":method", "POST"), (":scheme", "https"), (":authority", NOT_A_SITE),
            (":path", "/upload"), *extra))
        c.send(frame(HEADERS, END_HEADERS, sid, block))
        frames = c.read_frames(until=ends_stream(sid))
        self.assertEqual(h2raw.statuses(frames, sid), [421], frames)
        # Half-closed(local): no RST_STREAM yet, the request may go on.
        frames += c.read_frames(quiet=0.3)
        self.assertEqual(h2raw.rst_codes(frames, sid), [], frames)
        return sid

    def assert_goaway(self, c, frames, code, last_stream_id=None):
        self.assertIsNotNone(c.goaway, frames)
        self.assertEqual(c.goaway.error_code, code, c.goaway)
        if last_stream_id is not None:
            self.assertEqual(c.goaway.last_stream_id, last_stream_id, c.goaway)
        c.read_frames(quiet=3)
        self.assertTrue(c.closed, "the connection is still open after its GOAWAY")

    def assert_stream_or_connection_error(self, c, frames, sid, code):
        """A stream error, or the connection error an endpoint may make of it (5.4.1)."""
        rst = h2raw.rst_codes(frames, sid)
        if rst:
            self.assertEqual(rst, [code], frames)
        else:
            self.assertIsNotNone(c.goaway, frames)
            self.assertEqual(c.goaway.error_code, code, c.goaway)

    # --- the request goes on after an early answer ----------------------------------------

    def test_early_answer_reads_the_rest_of_the_request(self):
        with self.conn() as c:
            sid = self.answered_early(c)
            c.send(h2raw.data_frame(sid, b"x" * 1000), h2raw.data_frame(sid, b"y", end_stream=True))
            frames = c.read_frames(quiet=0.5)
            self.assertEqual(h2raw.rst_codes(frames, sid), [], frames)
            self.assertIsNone(c.goaway, frames)
            r = c.get("/gen/after-early?size=100")  # the connection is fine
            self.assertEqual((r.status, r.complete), (200, True), r)

    def test_data_after_the_request_ended_is_stream_closed(self):
        # 5.1: half-closed(remote) then closed; DATA there is STREAM_CLOSED.
        before = self.errors()
        with self.conn() as c:
            sid = self.answered_early(c)
            c.send(h2raw.data_frame(sid, b"done", end_stream=True))
            self.assertEqual(h2raw.rst_codes(c.read_frames(quiet=0.3), sid), [])
            c.send(h2raw.data_frame(sid, b"more"))
            frames = c.read_frames(quiet=1)
            self.assert_stream_or_connection_error(c, frames, sid, h2raw.STREAM_CLOSED)
        fam = "stream" if h2raw.rst_codes(frames, sid) else "connection"
        self.assert_counted(before, fam, "stream_closed")

    def test_padding_longer_than_the_frame_is_a_connection_error(self):
        # 6.1: Pad Length >= the payload's length: connection error PROTOCOL_ERROR.
        before = self.errors()
        with self.conn() as c:
            sid = self.answered_early(c)
            c.send(h2raw.data_frame(sid, b"x" * 10, pad_length=20, padding=0))
            frames = c.read_frames(quiet=1)
            self.assert_goaway(c, frames, h2raw.PROTOCOL_ERROR)
        self.assert_counted(before, "connection", "protocol_error")

    def test_window_update_of_zero_on_the_stream(self):
        # 6.9: increment 0 on a stream: stream error PROTOCOL_ERROR (nghttp2 makes it a
        # connection error, which 5.4.1 allows).
        before = self.errors()
        with self.conn() as c:
            sid = self.answered_early(c)
            c.send(h2raw.window_update(sid, 0))
            frames = c.read_frames(quiet=1)
            self.assert_stream_or_connection_error(c, frames, sid, h2raw.PROTOCOL_ERROR)
        fam = "stream" if h2raw.rst_codes(frames, sid) else "connection"
        self.assert_counted(before, fam, "protocol_error")

    def test_window_update_overflowing_the_stream_window(self):
        # 6.9.1: a stream's window beyond 2^31-1: stream error FLOW_CONTROL_ERROR.
        before = self.errors()
        with self.conn() as c:
            sid = self.answered_early(c)
            c.send(h2raw.window_update(sid, MAX_WINDOW))
            frames = c.read_frames(quiet=1)
            self.assert_stream_or_connection_error(c, frames, sid, h2raw.FLOW_CONTROL_ERROR)
        fam = "stream" if h2raw.rst_codes(frames, sid) else "connection"
        self.assert_counted(before, fam, "flow_control_error")

    def test_trailers_with_a_pseudo_header(self):
        # 8.1: pseudo-headers in trailers make the request malformed: PROTOCOL_ERROR.
        before = self.errors()
        with self.conn() as c:
            sid = self.answered_early(c)
            c.send(frame(HEADERS, END_HEADERS | END_STREAM, sid, hpack_literal(":path", "/x")))
            frames = c.read_frames(quiet=1)
            self.assert_stream_or_connection_error(c, frames, sid, h2raw.PROTOCOL_ERROR)
        fam = "stream" if h2raw.rst_codes(frames, sid) else "connection"
        self.assert_counted(before, fam, "protocol_error")

    def test_body_shorter_than_content_length(self):
        # 8.1.1: DATA that disagrees with content-length: malformed, PROTOCOL_ERROR.
        before = self.errors()
        with self.conn() as c:
            sid = self.answered_early(c, extra=[("content-length", "10")])
            c.send(h2raw.data_frame(sid, b"abc", end_stream=True))
            frames = c.read_frames(quiet=1)
            self.assert_stream_or_connection_error(c, frames, sid, h2raw.PROTOCOL_ERROR)
        fam = "stream" if h2raw.rst_codes(frames, sid) else "connection"
        self.assert_counted(before, fam, "protocol_error")

    def test_body_longer_than_content_length(self):
        before = self.errors()
        with self.conn() as c:
            sid = self.answered_early(c, extra=[("content-length", "2")])
            c.send(h2raw.data_frame(sid, b"abcdef"))
            frames = c.read_frames(quiet=1)
            self.assert_stream_or_connection_error(c, frames, sid, h2raw.PROTOCOL_ERROR)
        fam = "stream" if h2raw.rst_codes(frames, sid) else "connection"
        self.assert_counted(before, fam, "protocol_error")

    # --- a client that does not finish its request is asked to stop -----------------------

    def test_a_request_that_never_ends_is_reset_after_the_drain_time(self):
        with self.conn() as c:
            sid = self.answered_early(c)
            t0 = time.monotonic()
            frames = c.read_frames(quiet=4, until=lambda f: f[0] == RST_STREAM)
            took = time.monotonic() - t0
            self.assertEqual(h2raw.rst_codes(frames, sid), [h2raw.NO_ERROR], frames)
            self.assertLess(took, 4, frames)
            # After our RST_STREAM, frames in flight on the stream are ignored (5.1).
            c.send(h2raw.data_frame(sid, b"late"), h2raw.window_update(sid, 0))
            frames = c.read_frames(quiet=0.5)
            self.assertIsNone(c.goaway, frames)
            r = c.get("/gen/after-drain?size=100")
            self.assertEqual((r.status, r.complete), (200, True), r)

    def test_a_large_body_is_reset_after_the_drain_limit(self):
        with self.conn() as c:
            sid = self.answered_early(c)
            chunk = b"z" * 16384
            for _ in range(24):  # 384 KiB: over the 256 KiB drained at most
                c.send(h2raw.data_frame(sid, chunk))
            frames = c.read_frames(quiet=1, until=lambda f: f[0] == RST_STREAM)
            self.assertEqual(h2raw.rst_codes(frames, sid), [h2raw.NO_ERROR], frames)
            self.assertIsNone(c.goaway, frames)
            r = c.get("/gen/after-limit?size=100")
            self.assertEqual((r.status, r.complete), (200, True), r)

    # --- stream identifiers (5.1.1) and the connection's own window (6.9) -----------------

    def test_a_new_stream_with_a_lower_identifier_is_a_connection_error(self):
        before = self.errors()
        with self.conn() as c:
            c.send(h2raw.headers_frame(5, "/gen/five?size=10", SITE))
            frames = c.read_frames(until=ends_stream(5))
            self.assertEqual(h2raw.statuses(frames, 5), [200], frames)
            c.send(h2raw.headers_frame(3, "/gen/three?size=10", SITE))
            frames = c.read_frames(quiet=1)
            self.assertEqual(h2raw.statuses(frames, 3), [], frames)
            self.assert_goaway(c, frames, h2raw.PROTOCOL_ERROR, last_stream_id=5)
        self.assert_counted(before, "connection", "protocol_error")

    def test_a_closed_stream_reopened_is_a_connection_error(self):
        before = self.errors()
        with self.conn() as c:
            c.send(h2raw.headers_frame(1, "/gen/one?size=10", SITE))
            c.read_frames(until=ends_stream(1))
            c.send(h2raw.headers_frame(1, "/gen/one?size=10", SITE))
            frames = c.read_frames(quiet=1)
            self.assert_goaway(c, frames, h2raw.STREAM_CLOSED)
        self.assert_counted(before, "connection", "stream_closed")

    def test_an_even_identifier_from_the_client_is_a_connection_error(self):
        with self.conn() as c:
            c.send(h2raw.headers_frame(2, "/gen/even?size=10", SITE))
            frames = c.read_frames(quiet=1)
            self.assert_goaway(c, frames, h2raw.PROTOCOL_ERROR)

    def test_connection_window_update_of_zero_and_overflow(self):
        before = self.errors()
        with self.conn() as c:
            c.send(h2raw.window_update(0, 0))
            self.assert_goaway(c, c.read_frames(quiet=1), h2raw.PROTOCOL_ERROR, last_stream_id=0)
        with self.conn() as c:  # our window is already 2^31-1 wide: any increment overflows
            c.send(h2raw.window_update(0, MAX_WINDOW))
            self.assert_goaway(c, c.read_frames(quiet=1), h2raw.FLOW_CONTROL_ERROR)
        self.assert_counted(before, "connection", "protocol_error")
        self.assert_counted(before, "connection", "flow_control_error")


if __name__ == "__main__":
    harness.main()
