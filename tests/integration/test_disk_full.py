#!/usr/bin/env python3
"""The cache disk fills up: storing may fail, serving must not.

The cache directory is a 40 MiB tmpfs (cache.max_size 1 GiB: eviction cannot prevent it), and a
filler file takes the space a test wants gone. As root the tmpfs is mounted here; otherwise the
daemon runs in a user+mount namespace (`unshare -rm`) that mounts it, and the test reaches its
files through /proc/<pid>/root.

- A fill that hits ENOSPC mid-body goes on unstored: its leader and every follower already
  joined get the whole body (h1 and h2); a follower that reads nothing for
  timeouts.upstream_idle while the fill's memory window is full is cut (its connection ends in
  error, never a short body presented as complete), and counted.
- While storing is suspended, what is stored is served as hits, misses pass through unstored,
  the log says so once, /metrics says so; when space returns, new objects are stored again.
"""

import os
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import harness  # noqa: E402
from origin import gen_sha256  # noqa: E402

MiB = 1 << 20
DISK = "40m"
SIZE = 20 * MiB
SUSPENDED = "cache: storing suspended"
RESUMED = "cache: storing again"


def read_until_closed(sock):
    """One HTTP/1.1 response with a Content-Length, read until the peer closes: (status,
    declared length, body bytes received)."""
    chunks = []
    while data := sock.recv(1 << 20):
        chunks.append(data)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(int(v) for k, _, v in (line.partition(":") for line in lines[1:])
                  if k.strip().lower() == "content-length")
    return int(lines[0].split(" ")[1]), length, len(body)


class SmallDiskStack(harness.Stack):
    """A Stack whose cache directory is a DISK-sized tmpfs."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.cache_dir = self.config["cache"]["dir"]
        os.makedirs(self.cache_dir)
        self.own_mount = os.geteuid() == 0 and not os.environ.get("STORECACHE_TEST_UNSHARE")
        if self.own_mount:
            subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK},mode=0700", "tmpfs",
                            self.cache_dir], check=True)
        else:
            # The daemon in its own user+mount namespace, where it mounts the tmpfs first.
            wrapper = os.path.join(self.tmp, "in-small-disk.sh")
            with open(wrapper, "w") as f:
                f.write("#!/bin/sh\nexec unshare -rm sh -c 'mount -t tmpfs -o size=%s tmpfs \"$0\""
                        " && exec \"$@\"' %s %s \"$@\"\n" % (DISK, self.cache_dir,
                                                             harness.storecache_bin()))
            os.chmod(wrapper, 0o755)
            self.binary = wrapper

    def start(self):
        self.daemon = harness.Daemon(self.config_path, self.admin_port, self.tmp,
                                     binary=None if self.own_mount else self.binary).start()
        return self

    def disk_path(self, name=""):
        """A path on the small disk, as this process can reach it."""
        base = self.cache_dir if self.own_mount else f"/proc/{self.daemon.pid}/root{self.cache_dir}"
        return os.path.join(base, name)

    def free_bytes(self):
        st = os.statvfs(self.disk_path())
        return st.f_bavail * st.f_frsize

    def leave_free(self, nbytes):
        """Grows (or shrinks) the filler file until about nbytes are free."""
        path = self.disk_path("filler")
        have = os.path.getsize(path) if os.path.exists(path) else 0
        want = max(0, have + self.free_bytes() - nbytes)
        with open(path, "ab") as f:
            f.truncate(want)
            if want > have:  # tmpfs: a sparse file takes no space; write it
                f.seek(have)
                left = want - have
                block = b"\0" * MiB
                while left > 0:
                    f.write(block[:min(left, MiB)])
                    left -= min(left, MiB)

    def remove_filler(self):
        try:
            os.unlink(self.disk_path("filler"))
        except FileNotFoundError:
            pass

    def close(self):
        code = None
        if self.daemon:
            code = self.daemon.stop()
            self.daemon = None
        if self.own_mount:
            subprocess.run(["umount", self.cache_dir], check=False)
        super().close()
        return code


class DiskFullTest(harness.StackTest):
    @classmethod
    def setUpClass(cls):
        # upstream_idle: how long a client of an unstored fill may read nothing before it is cut
        cls.stack = SmallDiskStack(overrides={"timeouts": {"upstream_idle": "2s"}})
        try:
            cls.stack.start()
        except BaseException:
            cls.stack.close()
            raise

    def setUp(self):
        super().setUp()
        self.stack.remove_filler()

    def tearDown(self):
        self.stack.remove_filler()
        self.assertHealthy()

    def log_count(self, text):
        return self.stack.daemon.stderr_text().count(text)

    def wait_storing(self, timeout=80):
        """Until a new object is stored again (storing suspended at most 64 s between tries)."""
        deadline = time.monotonic() + timeout
        k = 0
        while time.monotonic() < deadline:
            k += 1
            self.get(f"/gen/probe-{time.monotonic_ns()}?size=1000&cc=max-age%3D600")
            if self.metric("storecache_cache_storing_suspended") == 0:
                return
            time.sleep(0.3)
        self.fail(f"storing still suspended after {timeout}s ({k} probes)")

    def fetch(self, path, http2, results, key):
        results[key] = harness.curl_stream(self.stack.url(path), ca=self.stack.ca,
                                           resolve=self.stack.resolve(), http2=http2, timeout=30)

    def test_full_disk_mid_fill_leader_and_followers_get_the_whole_body(self):
        for leader_h2 in (False, True):
            with self.subTest(leader_h2=leader_h2):
                name = f"full-{int(leader_h2)}"
                path = f"/gen/{name}?size={SIZE}&cc=max-age%3D600&rate={20 * MiB}"
                self.wait_storing()
                unstored = self.metric("storecache_cache_unstored_fills_total")
                collapsed = self.metric("storecache_collapsed_requests_total")
                self.stack.leave_free(10 * MiB)
                results = {}
                threads = [threading.Thread(target=self.fetch,
                                            args=(path, leader_h2, results, "leader"))]
                threads[0].start()
                time.sleep(0.15)  # the followers join while the first 10 MiB are being written
                for i, h2 in enumerate((False, False, True, True)):
                    threads.append(threading.Thread(target=self.fetch,
                                                    args=(path, h2, results, f"follower{i}")))
                    threads[-1].start()
                for t in threads:
                    t.join(60)
                want = gen_sha256(name, SIZE)
                for who, r in sorted(results.items()):
                    self.assertEqual((r["exit"], r["info"].get("response_code"), r["size"],
                                      r["sha256"]), (0, 200, SIZE, want),
                                     f"{who} (leader h2={leader_h2}): {r['stderr']}")
                self.assertEqual(len(results), 5)
                # It was a fill that failed to store, and clients were collapsed onto it.
                self.assertEqual(self.metric("storecache_cache_unstored_fills_total"),
                                 unstored + 1)
                self.assertGreaterEqual(self.metric("storecache_collapsed_requests_total"),
                                        collapsed + 1)
                self.assertEqual(self.stack.origin.count(f"/gen/{name}"), 1,
                                 "every client was served from the one upstream fetch")
                self.assertEqual(self.metric("storecache_cache_storing_suspended"), 1)
                self.assertGreaterEqual(
                    self.metric("storecache_cache_store_errors_total", kind="no_space"), 1)
                self.stack.remove_filler()

    def test_a_follower_that_stops_reading_is_cut_not_served_short(self):
        name = "full-stall"
        path = f"/gen/{name}?size={SIZE}&cc=max-age%3D600&rate={20 * MiB}"
        self.wait_storing()
        cut = self.metric("storecache_cache_unstored_clients_cut_total")
        self.stack.leave_free(10 * MiB)
        results = {}
        leader = threading.Thread(target=self.fetch, args=(path, False, results, "leader"))
        leader.start()
        time.sleep(0.15)
        # A device that asks and then reads nothing (its socket buffers fill up).
        with harness.tls_socket(self.stack.port, harness.SITE, self.stack.ca,
                                timeout=30) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {harness.SITE}\r\n\r\n".encode())
            leader.join(30)
            r = results["leader"]
            self.assertEqual((r["exit"], r["size"], r["sha256"]), (0, SIZE, gen_sha256(name, SIZE)),
                             "the leader waited for the stalled follower no longer than "
                             "upstream_idle, then went on")
            status, length, got = read_until_closed(s)
        self.assertEqual((status, length), (200, SIZE))
        self.assertLess(got, SIZE, "a cut follower got the whole length")
        self.assertEqual(self.metric("storecache_cache_unstored_clients_cut_total"), cut + 1)

    def test_disk_full_hits_served_misses_passed_through_then_storing_recovers(self):
        self.wait_storing()
        # Stored while there is space.
        hit_path = "/gen/kept?size=300000&cc=max-age%3D600"
        self.get(hit_path)
        harness.poll(lambda: self.cs(self.get(hit_path)).get("hit"), bool, timeout=5)
        self.assertTrue(self.cs(self.get(hit_path)).get("hit"))
        before = self.stack.origin.count("/gen/kept")
        suspended_lines = self.log_count(SUSPENDED)

        self.stack.leave_free(64 * 1024)
        for i in range(3):  # misses: whole bodies from the upstream, nothing stored
            size = 2 * MiB + i
            r = harness.curl_sha256(self.stack.url(f"/gen/miss{i}?size={size}&cc=max-age%3D600"),
                                    ca=self.stack.ca, resolve=self.stack.resolve(), http2=i == 1)
            self.assertEqual((r[0], r[3], r[2]), (0, size, gen_sha256(f"miss{i}", size)))
            if i == 1:
                time.sleep(1.2)  # past the first pause: the next miss tries to store again
        self.assertEqual(self.metric("storecache_cache_storing_suspended"), 1)
        self.assertGreaterEqual(self.metric("storecache_cache_store_errors_total",
                                            kind="no_space"), 1)
        # What is stored is still served from the cache, on both protocols.
        for h2 in (False, True):
            r = self.get(hit_path, http2=h2)
            self.assertTrue(self.cs(r).get("hit"), r)
        self.assertEqual(self.stack.origin.count("/gen/kept"), before,
                         "a stored object went upstream while storing was suspended")
        self.assertEqual(self.log_count(SUSPENDED), suspended_lines + 1,
                         "the suspension is logged once, not once per failure")

        resumed_lines = self.log_count(RESUMED)
        self.stack.remove_filler()
        t0 = time.monotonic()
        self.wait_storing()
        took = time.monotonic() - t0
        self.assertEqual(self.log_count(RESUMED), resumed_lines + 1)
        new_path = "/gen/after-full?size=3000000&cc=max-age%3D600"
        self.get(new_path)
        r = harness.poll(lambda: self.get(new_path), lambda r: self.cs(r).get("hit"), timeout=5)
        self.assertTrue(self.cs(r).get("hit"), f"stored again {took:.1f}s after space returned")
        self.assertEqual(self.stack.origin.count("/gen/after-full"), 1)


if __name__ == "__main__":
    harness.main()
