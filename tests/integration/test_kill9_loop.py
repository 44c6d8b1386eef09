#!/usr/bin/env python3
"""kill -9 in a loop during fills under load: no wrong or short body is ever served.

Each cycle starts the daemon on the same cache directory, runs HTTP/1.1 and HTTP/2 clients
against a mix of objects (inline-sized and file-sized, Content-Length and chunked upstream
bodies, some paced so that the kill lands inside fills and commits; half the requests are new
keys, so fills keep starting), and SIGKILLs the daemon at a random moment. Every response a
client received as complete is compared (sha256) with the origin's body; a response cut by the
kill must be visibly incomplete. After the last cycle every object is fetched once more.

STORECACHE_KILL_CYCLES sets the number of cycles (default 100); scripts/kill9-loop.sh runs
longer loops.
"""

import hashlib
import os
import random
import re
import ssl
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import h2raw  # noqa: E402
import harness  # noqa: E402
from origin import gen_sha256  # noqa: E402

KiB, MiB = 1 << 10, 1 << 20
CYCLES = int(os.environ.get("STORECACHE_KILL_CYCLES", "100"))
SEED = int(os.environ.get("STORECACHE_KILL_SEED", str(int(time.time()))))
# name -> (size, extra query)
OBJECTS = {
    "k-tiny": (900, ""),
    "k-inline": (16 * KiB, ""),
    "k-file": (20 * KiB, ""),
    "k-200k": (200 * KiB, "&chunked=1"),
    "k-1m": (MiB, ""),
    "k-1m-paced": (MiB, f"&rate={4 * MiB}"),
    "k-3m-paced": (3 * MiB, f"&rate={12 * MiB}"),
    "k-2m-chunked": (2 * MiB, f"&chunked=1&rate={8 * MiB}"),
}
DIGESTS = {name: gen_sha256(name, size) for name, (size, _) in OBJECTS.items()}
# What a client sees when the daemon dies under it (the connection reset or closed mid-frame).
CUT_BY_KILL = (ConnectionError, ssl.SSLError, OSError, EOFError, AssertionError, ValueError)


def path_of(name, key=""):
    size, extra = OBJECTS[name]
    return f"/gen/{name}?size={size}&cc=max-age%3D600{extra}{key}"


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.complete = 0
        self.cut = 0
        self.wrong = []

    def add(self, kind, detail=None):
        with self.lock:
            if kind == "complete":
                self.complete += 1
            elif kind == "cut":
                self.cut += 1
            else:
                self.wrong.append(detail)


class KillNineLoopTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = harness.Stack(overrides={"server": {"workers": 2}})

    @classmethod
    def tearDownClass(cls):
        cls.stack.close()

    def start_daemon(self):
        st = self.stack
        st.daemon = harness.Daemon(st.config_path, st.admin_port, st.tmp).start(timeout=20)

    def check_body(self, tally, proto, name, status, complete, body_len, digest, framed=True):
        if not complete:
            tally.add("cut")
            return
        size = OBJECTS[name][0]
        if status != 200 or body_len != size or digest != DIGESTS[name] or not framed:
            tally.add("wrong", f"{proto} {name}: status {status}, {body_len} of {size} bytes, "
                               f"sha256 {'ok' if digest == DIGESTS[name] else 'WRONG'}, "
                               f"framed={framed}")
        else:
            tally.add("complete")

    def h1_client(self, rng, stop, tally, cycle):
        try:
            sock = harness.tls_socket(self.stack.port, harness.SITE, self.stack.ca, timeout=10)
        except CUT_BY_KILL:
            return
        with sock:
            while not stop.is_set():
                name = rng.choice(list(OBJECTS))
                key = f"&v={cycle}-{rng.randrange(4)}" if rng.random() < 0.5 else ""
                try:
                    sock.sendall(f"GET {path_of(name, key)} HTTP/1.1\r\n"
                                 f"Host: {harness.SITE}\r\n\r\n".encode())
                    r = harness.read_response(sock)
                except CUT_BY_KILL:  # (AssertionError: closed inside the head)
                    tally.add("cut")
                    return
                if r is None:
                    tally.add("cut")
                    return
                framed = r.header("content-length") is not None or \
                    "chunked" in (r.header("transfer-encoding") or "")
                self.check_body(tally, "h1", name, r.status, r.complete, len(r.body),
                                hashlib.sha256(r.body).hexdigest(), framed)
                if not r.complete:
                    return

    def h2_client(self, rng, stop, tally, cycle):
        try:
            conn = h2raw.H2Conn(self.stack.port, harness.SITE, self.stack.ca, timeout=10)
        except CUT_BY_KILL:
            return
        with conn:
            while not stop.is_set():
                name = rng.choice(list(OBJECTS))
                key = f"&v={cycle}-{rng.randrange(4)}" if rng.random() < 0.5 else ""
                try:
                    r = conn.get(path_of(name, key), timeout=10)
                except CUT_BY_KILL:
                    tally.add("cut")
                    return
                self.check_body(tally, "h2", name, r.status, r.complete, len(r.body),
                                hashlib.sha256(r.body).hexdigest())
                if not r.complete:
                    return

    def test_kill9_loop_never_serves_a_wrong_or_short_body(self):
        rng = random.Random(SEED)
        tally = Tally()
        t0 = time.monotonic()
        for cycle in range(CYCLES):
            self.start_daemon()
            stop = threading.Event()
            clients = [threading.Thread(target=fn, args=(random.Random(rng.random()), stop,
                                                         tally, cycle))
                       for fn in (self.h1_client, self.h1_client, self.h1_client,
                                  self.h2_client, self.h2_client, self.h2_client)]
            for c in clients:
                c.start()
            time.sleep(rng.uniform(0.02, 0.3))
            self.stack.daemon.kill()  # SIGKILL
            self.stack.daemon.stop()  # (only closes its log file now)
            stop.set()
            for c in clients:
                c.join(20)
                self.assertFalse(c.is_alive(), "a client hung after the kill")
            self.assertEqual(tally.wrong, [], f"cycle {cycle} (seed {SEED})")
        took = time.monotonic() - t0

        # Afterwards: every object, stored or not, is whole on both protocols.
        self.start_daemon()
        stop = threading.Event()
        for name in OBJECTS:
            for key in ("", f"&v={CYCLES - 1}-0"):
                r = harness.curl_sha256(self.stack.url(path_of(name, key)), ca=self.stack.ca,
                                        resolve=self.stack.resolve())
                self.assertEqual((r[0], r[3], r[2]), (0, OBJECTS[name][0], DIGESTS[name]),
                                 f"{name}{key} after the loop")
                h = h2raw.get(self.stack.port, harness.SITE, self.stack.ca, path_of(name, key))
                self.assertTrue(h.complete, f"h2 {name}{key}: {h}")
                self.assertEqual(hashlib.sha256(h.body).hexdigest(), DIGESTS[name])
        # The kills landed inside fills: restarts found half-written bodies and removed them.
        temp_removed = 0
        for f in os.listdir(self.stack.tmp):
            if f.endswith(".stderr"):
                with open(os.path.join(self.stack.tmp, f), errors="replace") as log:
                    temp_removed += sum(int(m) for m in re.findall(
                        r"recovery removed (\d+) temporary", log.read()))
        self.assertGreater(temp_removed, 0, "no kill landed inside a fill")
        hits = harness.metric_sum(self.stack.metrics(), "storecache_requests_total",
                                  cache_status="hit")
        self.assertGreater(hits, 0, "nothing stored survived the kills")
        self.assertEqual(self.stack.daemon.stop(), 0)
        self.stack.daemon = None
        print(f"\n{CYCLES} kill -9 cycles in {took:.1f}s (seed {SEED}): {tally.complete} "
              f"complete responses checked, {tally.cut} cut by a kill, {temp_removed} "
              "half-written bodies removed at restarts", file=sys.stderr)
        self.assertGreater(tally.complete, CYCLES, "too little load to mean anything")


if __name__ == "__main__":
    harness.main()
