#!/usr/bin/env python3
"""The watchdog: systemd is pinged (WATCHDOG=1) only while every worker's event loop turns.

The daemon runs as systemd would run it with WatchdogSec=: NOTIFY_SOCKET names a datagram
socket this test reads, WATCHDOG_USEC the interval. One worker thread is then frozen for real
with ptrace (PTRACE_SEIZE + PTRACE_INTERRUPT stop that one thread; the others, the control
thread included, keep running): the pings must stop, the log must name the worker, /metrics
must show its lag, and pings must resume when the thread is let go.
"""

import ctypes
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import harness  # noqa: E402

PTRACE_DETACH = 17
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
WALL = 0x40000000

libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
libc.ptrace.restype = ctypes.c_long


def ptrace(request, tid):
    if libc.ptrace(request, tid, None, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"ptrace({request:#x}, {tid}): {os.strerror(err)}")


def thread_ids(pid, name):
    found = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/comm") as f:
            if f.read().strip() == name:
                found.append(int(tid))
    return found


class NotifySocket:
    """The receiving end of sd_notify: a datagram socket in the test's directory."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)

    def messages(self, seconds):
        """Every datagram that arrives within `seconds`, each as (monotonic time, text)."""
        out = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                break
            out.append((time.monotonic(), data.decode()))
        return out

    def pings(self, seconds):
        return [t for t, m in self.messages(seconds) if "WATCHDOG=1" in m.split("\n")]

    def close(self):
        self.sock.close()


class WatchdogTest(unittest.TestCase):
    WATCHDOG_USEC = 800_000  # beats every 200 ms

    def setUp(self):
        self.stack = harness.Stack()
        self.notify = NotifySocket(self.stack.tmp)
        self.stack.start(env={"NOTIFY_SOCKET": self.notify.path,
                              "WATCHDOG_USEC": str(self.WATCHDOG_USEC)})

    def tearDown(self):
        self.notify.close()
        self.stack.close()

    def lag(self, worker):
        return harness.metric_sum(self.stack.metrics(), "storecache_worker_loop_lag_seconds",
                                  worker=str(worker))

    def test_pings_stop_while_one_worker_is_frozen_and_resume_after(self):
        pid = self.stack.daemon.pid
        pings = self.notify.pings(1.5)
        self.assertGreaterEqual(len(pings), 4, "pings every 200 ms while all loops turn")
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        self.assertLess(max(gaps), 0.5, gaps)

        workers = thread_ids(pid, "sc-worker-1")
        self.assertEqual(len(workers), 1, "two workers, named sc-worker-0 and sc-worker-1")
        tid = workers[0]
        ptrace(PTRACE_SEIZE, tid)
        try:
            ptrace(PTRACE_INTERRUPT, tid)
            os.waitpid(tid, WALL)  # the thread is in ptrace-stop now; its siblings run on
            self.notify.messages(0.5)  # at most the beats already answered may still ping
            frozen_pings = self.notify.pings(2.0)
            self.assertEqual(frozen_pings, [], "no ping while a worker's loop is stuck")
            # The control thread is alive: the admin listener answers, and says which worker.
            self.assertGreater(self.lag(1), 1.5)
            self.assertLess(self.lag(0), 0.5)
            self.assertEqual(harness.metric_sum(self.stack.metrics(),
                                                "storecache_watchdog_stalls_total"), 1)
            # A device is still served by the other worker (SO_REUSEPORT may hand a connection
            # to the frozen one: it then waits; retry on new connections).
            served = False
            for _ in range(10):
                r = self.stack.curl("/gen/watchdog?size=1000", timeout=1)
                if r.exit == 0 and r.status == 200:
                    served = True
                    break
            self.assertTrue(served)
        finally:
            ptrace(PTRACE_DETACH, tid)
        resumed = self.notify.pings(1.0)
        self.assertGreaterEqual(len(resumed), 2, "pings resume once the worker turns again")
        self.assertLess(self.lag(1), 0.5)
        log = self.stack.daemon.stderr_text()
        self.assertIn("watchdog: worker 1 has not run its event loop", log)
        self.assertIn("watchdog: worker 1 turns again", log)
        self.assertEqual(log.count("watchdog: worker 1 has not run"), 1, "said once per stall")

    def test_a_frozen_prefetch_loop_stops_the_pings_too(self):
        pid = self.stack.daemon.pid
        self.assertGreaterEqual(len(self.notify.pings(1.0)), 3)
        threads = thread_ids(pid, "sc-prefetch")
        self.assertEqual(len(threads), 1, "the prefetch runner's thread, sc-prefetch")
        tid = threads[0]
        ptrace(PTRACE_SEIZE, tid)
        try:
            ptrace(PTRACE_INTERRUPT, tid)
            os.waitpid(tid, WALL)
            self.notify.messages(0.5)
            self.assertEqual(self.notify.pings(2.0), [], "no ping while prefetch's loop is stuck")
            self.assertGreater(self.lag("prefetch"), 1.5)
            self.assertLess(self.lag(0), 0.5)
            self.assertLess(self.lag(1), 0.5)
            r = self.stack.curl("/gen/watchdog-prefetch?size=1000", timeout=5)
            self.assertEqual((r.exit, r.status), (0, 200))  # devices are served meanwhile
        finally:
            ptrace(PTRACE_DETACH, tid)
        self.assertGreaterEqual(len(self.notify.pings(1.0)), 2, "pings resume")
        log = self.stack.daemon.stderr_text()
        self.assertIn("watchdog: prefetch has not run its event loop", log)
        self.assertIn("watchdog: prefetch turns again", log)


class NoSystemdWatchdogTest(harness.StackTest):
    def test_no_pings_without_watchdog_usec_but_the_lag_gauge_is_there(self):
        samples = self.stack.metrics()
        lags = {dict(labels)["worker"]: v for (name, labels), v in samples.items()
                if name == "storecache_worker_loop_lag_seconds"}
        self.assertEqual(sorted(lags), ["0", "1", "prefetch"])
        for lag in lags.values():
            self.assertGreaterEqual(lag, 0)
            self.assertLess(lag, 0.5)
        self.assertEqual(harness.metric_sum(samples, "storecache_watchdog_stalls_total"), 0)


if __name__ == "__main__":
    unittest.main()
