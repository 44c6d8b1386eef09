#!/usr/bin/env python3
"""The test origin on its own, with curl: every scripted behaviour the daemon tests rely on."""

import hashlib
import json
import os
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import harness  # noqa: E402
from origin import Origin, gen_bytes, gen_sha256  # noqa: E402


class OriginTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="origin-selftest-")
        cls.pki = harness.Pki(os.path.join(cls.tmp.name, "pki"))
        crt, key = cls.pki.leaf("origin.test")
        cls.root = os.path.join(cls.tmp.name, "root")
        os.makedirs(os.path.join(cls.root, "course"))
        with open(os.path.join(cls.root, "course", "index.html"), "w") as f:
            f.write("<h1>hello</h1>\n")
        with open(os.path.join(cls.root, "clip.mp4"), "wb") as f:
            f.write(gen_bytes("clip", 300000))
        cls.origin = Origin(crt, key, root=cls.root).start()

    @classmethod
    def tearDownClass(cls):
        cls.origin.stop()
        cls.tmp.cleanup()

    def setUp(self):
        self.origin.reset()

    def get(self, path, **kw):
        kw.setdefault("ca", self.pki.ca_cert)
        url = f"https://origin.test:{self.origin.port}{path}"
        return harness.curl(url, resolve=[f"origin.test:{self.origin.port}:127.0.0.1"], **kw)

    def test_gen_body_is_deterministic_and_sized(self):
        r = self.get("/gen/a?size=200000")
        self.assertEqual(r.exit, 0, r)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("content-length"), "200000")
        self.assertEqual(r.body, gen_bytes("a", 200000))
        self.assertNotEqual(gen_bytes("a", 1000), gen_bytes("b", 1000))
        # blocks differ from each other, so a shifted body does not compare equal
        self.assertNotEqual(gen_bytes("a", 65536), gen_bytes("a", 131072, 65536))

    def test_range_and_unsatisfiable(self):
        r = self.get("/gen/r?size=100000", headers=["Range: bytes=70000-70999"])
        self.assertEqual(r.status, 206)
        self.assertEqual(r.header("content-range"), "bytes 70000-70999/100000")
        self.assertEqual(r.body, gen_bytes("r", 100000, 70000, 71000))
        r = self.get("/gen/r?size=100000", headers=["Range: bytes=-10"])
        self.assertEqual(r.body, gen_bytes("r", 100000, 99990, 100000))
        r = self.get("/gen/r?size=100000", headers=["Range: bytes=100000-"])
        self.assertEqual(r.status, 416)
        self.assertEqual(r.header("content-range"), "bytes */100000")
        r = self.get("/gen/r?size=1000&ranges=0", headers=["Range: bytes=0-9"])
        self.assertEqual((r.status, len(r.body)), (200, 1000))

    def test_conditionals(self):
        r = self.get("/gen/c?size=10&etag=v1", headers=['If-None-Match: "v1"'])
        self.assertEqual(r.status, 304)
        self.assertEqual(r.header("etag"), '"v1"')
        r = self.get("/gen/c?size=10&etag=v2", headers=['If-None-Match: "v1"'])
        self.assertEqual(r.status, 200)
        lm = "Mon, 01 Jan 2024 00:00:00 GMT"
        r = self.get(f"/gen/c?size=10&lm={lm.replace(' ', '%20')}",
                     headers=[f"If-Modified-Since: {lm}"])
        self.assertEqual(r.status, 304)
        r = self.get("/gen/c?size=10&lm=1704067200",
                     headers=["If-Modified-Since: Sun, 31 Dec 2023 00:00:00 GMT"])
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("last-modified"), lm)

    def test_status_headers_and_head(self):
        r = self.get("/gen/s?size=5&status=404&header=X-Test:yes&cc=max-age%3D60")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.header("x-test"), "yes")
        self.assertEqual(r.header("cache-control"), "max-age=60")
        r = self.get("/gen/s?size=12345", method="HEAD")
        self.assertEqual((r.exit, r.status), (0, 200))
        self.assertEqual(r.header("content-length"), "12345")

    def test_echo_post_body(self):
        data = os.urandom(3 * 1024 * 1024 + 7)
        r = self.get("/echo?x=1", data=data, headers=["X-Client: abc"])
        self.assertEqual(r.status, 200, r)
        doc = json.loads(r.body)
        self.assertEqual(doc["method"], "POST")
        self.assertEqual(doc["target"], "/echo?x=1")
        self.assertEqual(doc["body_len"], len(data))
        self.assertEqual(doc["body_sha256"], hashlib.sha256(data).hexdigest())
        self.assertIn(["X-Client", "abc"], doc["headers"])

    def test_redirect_is_not_followed_by_origin(self):
        r = self.get("/redirect?to=https://elsewhere.example/x&status=301")
        self.assertEqual(r.status, 301)
        self.assertEqual(r.header("location"), "https://elsewhere.example/x")

    def test_drop_gives_short_body(self):
        r = self.get("/gen/d?size=1000000&drop_after=1000")
        self.assertEqual(r.exit, 18, r)  # partial file
        self.assertEqual(r.body, gen_bytes("d", 1000000, 0, 1000))

    def test_stall_and_silent_keep_socket_open(self):
        t0 = time.monotonic()
        r = self.get("/gen/st?size=100000&stall_after=5000", timeout=1)
        self.assertEqual(r.exit, 28, r)  # timed out, socket still open
        self.assertEqual(len(r.body), 5000)
        self.assertEqual(r.status, 200)
        r = self.get("/silent", timeout=1)
        self.assertEqual((r.exit, r.status), (28, 0))
        self.origin.program("/gen/quiet", silent=1)
        r = self.get("/gen/quiet?size=10", timeout=1)
        self.assertEqual((r.exit, r.status), (28, 0))
        self.assertLess(time.monotonic() - t0, 10)

    def test_delay_and_rate(self):
        t0 = time.monotonic()
        r = self.get("/gen/slow?size=200000&rate=200000&delay=0.3")
        took = time.monotonic() - t0
        self.assertEqual(r.body, gen_bytes("slow", 200000))
        self.assertGreater(took, 1.0)
        self.assertLess(took, 4.0)

    def test_chunked(self):
        r = self.get("/gen/ch?size=300000&chunked=1")
        self.assertEqual(r.header("transfer-encoding"), "chunked")
        self.assertEqual(r.body, gen_bytes("ch", 300000))
        r = self.get("/gen/ch?size=300000&chunked=1&drop_after=100")
        self.assertNotEqual(r.exit, 0, r)

    def test_request_log_keepalive_and_control_api(self):
        code, infos = harness.curl_many(
            [f"https://origin.test:{self.origin.port}/gen/k{i}?size=10" for i in range(5)],
            ca=self.pki.ca_cert, resolve=[f"origin.test:{self.origin.port}:127.0.0.1"])
        self.assertEqual(code, 0)
        self.assertEqual([i["response_code"] for i in infos], [200] * 5)
        self.assertEqual(self.origin.connections, 1)  # keep-alive: one connection
        self.assertEqual(self.origin.count("/gen/k"), 5)
        r = self.get("/__origin/requests")
        log = json.loads(r.body)
        self.assertEqual([e["path"] for e in log], [f"/gen/k{i}" for i in range(5)])
        self.get("/__origin/program?prefix=/gen/p&status=503")
        self.assertEqual(self.get("/gen/p1").status, 503)
        self.assertEqual(self.get("/gen/p1?status=201").status, 201)
        self.get("/__origin/reset")
        self.assertEqual(self.origin.count(), 0)
        self.assertEqual(self.get("/gen/p1").status, 200)

    def test_require_query_and_cookie(self):
        self.origin.program("/gen/acl", require_query="Signature:good|also",
                            require_cookie="session:alice|carol")
        ok = self.get("/gen/acl?size=100&Signature=good", headers=["Cookie: a=1; session=alice"])
        self.assertEqual((ok.status, ok.body), (200, gen_bytes("acl", 100)))
        for path, cookie, why in (
                ("/gen/acl?size=100&Signature=good", "session=bob", b"require_cookie session"),
                ("/gen/acl?size=100", "session=alice", b"require_query Signature"),
                ("/gen/acl?size=100&Signature=forged", "session=carol", b"require_query Signature"),
                ("/gen/acl?size=100&Signature=good&Signature=good", "session=carol",
                 b"require_query Signature")):
            r = self.get(path, headers=[f"Cookie: {cookie}"])
            self.assertEqual((r.status, r.body), (403, b"forbidden: " + why + b"\n"), path)
            self.assertEqual(r.header("cache-control"), "no-store")
        head = self.get("/gen/acl?size=100&Signature=also", method="HEAD",
                        headers=["Cookie: session=carol"])
        self.assertEqual((head.status, head.header("content-length")), (200, "100"))
        head = self.get("/gen/acl?size=100&Signature=also", method="HEAD")
        self.assertEqual(head.status, 403)
        self.assertEqual([bool(e.get("denied")) for e in self.origin.requests("/gen/acl")],
                         [False, True, True, True, True, False, True])
        # unprogrammed paths are unaffected
        self.assertEqual(self.get("/gen/free?size=10").status, 200)

    def test_static_root(self):
        r = self.get("/course/")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.header("content-type").startswith("text/html"))
        self.assertEqual(r.body, b"<h1>hello</h1>\n")
        r = self.get("/clip.mp4", headers=["Range: bytes=1000-1999"])
        self.assertEqual((r.status, r.header("content-type")), (206, "video/mp4"))
        self.assertEqual(r.body, gen_bytes("clip", 300000, 1000, 2000))
        etag = r.header("etag")
        r = self.get("/clip.mp4", headers=[f"If-None-Match: {etag}"])
        self.assertEqual(r.status, 304)
        self.assertIsNotNone(r.header("last-modified"))
        self.assertEqual(self.get("/../etc/passwd", extra=["--path-as-is"]).status, 403)
        self.assertEqual(self.get("/missing").status, 404)

    def test_big_body_streams_in_bounded_memory(self):
        size = 256 << 20
        with tempfile.NamedTemporaryFile() as out:
            before = harness.rss(os.getpid())
            r = self.get(f"/gen/big?size={size}", output=out.name, timeout=60)
            self.assertEqual(r.exit, 0, r)
            h = hashlib.sha256()
            with open(out.name, "rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
            self.assertEqual(h.hexdigest(), gen_sha256("big", size))
            self.assertLess(harness.rss(os.getpid()) - before, 64 << 20)


if __name__ == "__main__":
    harness.main()
