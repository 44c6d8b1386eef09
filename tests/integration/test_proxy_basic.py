#!/usr/bin/env python3
"""GET/HEAD through the daemon over HTTP/1.1 and HTTP/2, keep-alive, pass-through of status
codes, headers and redirects."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import harness  # noqa: E402
from origin import gen_bytes, gen_sha256  # noqa: E402


class ProxyBasicTest(harness.StackTest):
    def check_get(self, name, size, http2):
        r = self.stack.curl(f"/gen/{name}?size={size}", http2=http2)
        self.assertEqual(r.exit, 0, r)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.http_version, "2" if http2 else "1.1")
        self.assertEqual(len(r.body), size)
        self.assertEqual(r.body, gen_bytes(name, size), "body differs from the origin's")
        self.assertIn("1.1 storecache", r.header("via", ""))

    def test_get_1mib_h1(self):
        self.check_get("one-h1", 1 << 20, http2=False)

    def test_get_1mib_h2(self):
        self.check_get("one-h2", 1 << 20, http2=True)

    def test_get_20mib_h1(self):
        self.check_get("twenty-h1", 20 << 20, http2=False)

    def test_get_20mib_h2(self):
        self.check_get("twenty-h2", 20 << 20, http2=True)

    def test_same_resource_h1_then_h2_byte_identical(self):
        size = 3 * (1 << 20) + 17
        a = self.stack.curl(f"/gen/both?size={size}")
        b = self.stack.curl(f"/gen/both?size={size}", http2=True)
        self.assertEqual((a.status, b.status), (200, 200), (a, b))
        self.assertEqual(a.body, b.body)
        self.assertEqual(a.body, gen_bytes("both", size))

    def test_head(self):
        for http2 in (False, True):
            r = self.stack.curl("/gen/head?size=54321", method="HEAD", http2=http2)
            self.assertEqual((r.exit, r.status), (0, 200), r)
            self.assertEqual(r.header("content-length"), "54321")
        # no body bytes follow a HEAD response: the next response on the connection parses
        with harness.tls_socket(self.stack.port, harness.SITE, self.stack.ca) as s:
            host = f"Host: {harness.SITE}\r\n"
            s.sendall(f"HEAD /gen/head?size=54321 HTTP/1.1\r\n{host}\r\n"
                      f"GET /gen/next?size=7 HTTP/1.1\r\n{host}\r\n".encode())
            head = harness.read_response(s, head_only=True)
            self.assertEqual((head.status, head.header("content-length")), (200, "54321"))
            nxt = harness.read_response(s)
            self.assertEqual((nxt.status, nxt.body), (200, gen_bytes("next", 7)))

    def test_h1_keepalive_several_requests_one_connection(self):
        paths = [f"/gen/ka{i}?size={1000 * (i + 1)}" for i in range(6)]
        code, infos = self.stack.curl_many(paths)
        self.assertEqual(code, 0)
        self.assertEqual([i["response_code"] for i in infos], [200] * 6)
        self.assertEqual([i["size_download"] for i in infos], [1000 * (i + 1) for i in range(6)])
        self.assertEqual(sum(i["num_connects"] for i in infos), 1,
                         "curl had to open more than one connection")

    def test_h2_many_streams_one_connection(self):
        paths = [f"/gen/st{i}?size={20000 + i}" for i in range(40)]
        code, infos = self.stack.curl_many(paths, http2=True, parallel=True)
        self.assertEqual(code, 0)
        self.assertEqual(len(infos), 40)
        self.assertTrue(all(i["response_code"] == 200 for i in infos), infos)
        self.assertEqual(sorted(i["size_download"] for i in infos),
                         [20000 + i for i in range(40)])
        self.assertTrue(all(i["http_version"] == "2" for i in infos))
        self.assertEqual(sum(i["num_connects"] for i in infos), 1,
                         "streams were not multiplexed on one connection")

    def test_h2_streams_with_nghttp(self):
        # nghttp sends no SNI for an IP address: the default (first site's) certificate is
        # used and :authority routes. Bodies of concurrent streams interleave on stdout, so
        # check the per-stream statistics (code and body size; under 1024 B sizes are exact).
        n, size = 8, 1000
        code, out, err = harness.nghttp(
            f"https://127.0.0.1:{self.stack.port}/gen/ng?size={size}",
            authority=harness.SITE, extra=["-n", "-s", "-m", str(n)])
        self.assertEqual(code, 0, err)
        rows = [line.split() for line in out.decode().splitlines()
                if line.strip().endswith(f"/gen/ng?size={size}")]
        self.assertEqual(len(rows), n, out.decode() + err)
        self.assertEqual([(r[-3], r[-2]) for r in rows], [("200", str(size))] * n)
        self.assertGreaterEqual(self.stack.origin.count("/gen/ng"), 1)

    def test_status_codes_and_headers_pass_through(self):
        for status in (201, 403, 404, 410, 500, 503):
            for http2 in (False, True):
                r = self.stack.curl(f"/gen/st?size=10&status={status}&header=X-Test-Origin:v%3D{status}"
                                    "&header=Content-Language:de&cc=no-store", http2=http2)
                self.assertEqual(r.status, status, r)
                self.assertEqual(r.header("x-test-origin"), f"v={status}")
                self.assertEqual(r.header("content-language"), "de")
                self.assertEqual(r.header("cache-control"), "no-store")
                self.assertIn("1.1 storecache", r.header("via", ""))

    def test_204_has_no_body(self):
        r = self.stack.curl("/gen/nc?status=204", http2=False)
        self.assertEqual((r.exit, r.status, r.body), (0, 204, b""), r)

    def test_redirect_passed_to_client_not_followed(self):
        for http2 in (False, True):
            self.stack.origin.reset()
            r = self.stack.curl("/redirect?to=https://elsewhere.example/next&status=302",
                                http2=http2)
            self.assertEqual(r.status, 302, r)
            self.assertEqual(r.header("location"), "https://elsewhere.example/next")
            self.assertEqual([e["path"] for e in self.stack.origin.requests()], ["/redirect"])

    def test_query_string_reaches_origin_unchanged(self):
        self.stack.curl("/gen/q?size=1&b=2&a=1&x=%20y")
        targets = [e["target"] for e in self.stack.origin.requests()]
        self.assertEqual(targets, ["/gen/q?size=1&b=2&a=1&x=%20y"])

    def test_large_body_hash_h2(self):
        size = 64 << 20
        code, info, digest, got = harness.curl_sha256(
            self.stack.url(f"/gen/big?size={size}"), ca=self.stack.ca,
            resolve=self.stack.resolve(), http2=True)
        self.assertEqual((code, info.get("response_code")), (0, 200), info)
        self.assertEqual(got, size)
        self.assertEqual(digest, gen_sha256("big", size))

    def test_range_passes_through(self):
        size = 500000
        for http2 in (False, True):
            r = self.stack.curl(f"/gen/rg?size={size}", http2=http2,
                                headers=["Range: bytes=100000-100999"])
            self.assertEqual(r.status, 206, r)
            self.assertEqual(r.header("content-range"), f"bytes 100000-100999/{size}")
            self.assertEqual(r.body, gen_bytes("rg", size, 100000, 101000))
            r = self.stack.curl(f"/gen/rg?size={size}", http2=http2,
                                headers=[f"Range: bytes={size}-"])
            self.assertEqual(r.status, 416, r)

    def test_conditional_passes_through(self):
        for http2 in (False, True):
            r = self.stack.curl("/gen/cond?size=100&etag=abc", http2=http2,
                                headers=['If-None-Match: "abc"'])
            self.assertEqual((r.status, r.body), (304, b""), r)
            self.assertEqual(r.header("etag"), '"abc"')

    def tearDown(self):
        self.assertHealthy()


class Ipv6ListenTest(harness.StackTest):
    """A listener on [::1] next to 127.0.0.1, both serving."""

    port6 = harness.free_port("::1")

    @classmethod
    def setUpClass(cls):
        cls.stack = harness.Stack()
        cls.stack.config["server"]["listen"] = [f"127.0.0.1:{cls.stack.port}",
                                                f"[::1]:{cls.port6}"]
        cls.stack.rewrite_config()
        try:
            cls.stack.start()
        except BaseException:
            cls.stack.close()
            raise

    def test_both_listeners(self):
        url = f"https://{harness.SITE}:{self.port6}/gen/v6?size=1000"
        for http2 in (False, True):
            r = harness.curl(url, ca=self.stack.ca, resolve=[f"{harness.SITE}:{self.port6}:[::1]"],
                             http2=http2)
            self.assertEqual((r.exit, r.status), (0, 200), r)
            self.assertEqual(r.body, gen_bytes("v6", 1000))
            self.assertEqual(self.stack.curl("/gen/v4?size=10", http2=http2).status, 200)
        xff = [v for e in self.stack.origin.requests("/gen/v6") for k, v in e["headers"]
               if k.lower() == "x-forwarded-for"]
        self.assertEqual(xff, ["::1", "::1"])


if __name__ == "__main__":
    harness.main()
