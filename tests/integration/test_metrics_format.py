#!/usr/bin/env python3
"""/metrics after scripted workloads on fresh daemons: exact counter values, and the scraped
text passes `promtool check metrics` with no lint output at all.

Each class starts its own daemon, so every counter starts at zero and is asserted exactly:
  WorkloadTest      3 misses + 5 hits + 2 pass + one 421, over h1 and h2, three User-Agents
  UpstreamErrorTest a dead origin port (connect), a silent origin (timeout), a drop (reset)
  TlsFailureTest    plain HTTP, TLS 1.1, no shared cipher, an untrusted certificate, a close
                    mid-handshake and a silent client (timeout) on the TLS port
"""

import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import harness  # noqa: E402
from harness import SITE  # noqa: E402

UNKNOWN = "_unknown"
DEAD = "dead.example.com"
BADNAME = "badname.example.com"  # its upstream certificate does not match upstream_sni: tls
GARBAGE = "garbage.example.com"  # its upstream answers bytes that are not HTTP: bad_response

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
          "like Gecko) Version/17.4 Mobile/15E148 Safari/604.1")
ANDROID = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/123.0.6312.99 Mobile Safari/537.36")
EDGE = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/123.0.0.0 Safari/537.36 Edg/123.0.2420.81")
# (os, browser, major) each User-Agent is counted as
DEVICE = {IPHONE: ("ios", "safari", "17"), ANDROID: ("android", "chrome", "14"),
          EDGE: ("windows", "edge", "10")}

CACHE = {"default_ttl": "0s", "rule": [{"path": "/gen/pass-*", "bypass": True}]}

PROMTOOL = "/usr/bin/promtool"


def scrape_text(stack):
    status, _, body = harness.http_get(f"http://127.0.0.1:{stack.admin_port}/metrics")
    if status != 200:
        raise AssertionError(f"/metrics answered {status}")
    return body.decode()


def settle(stack, name, want, timeout=3.0, **labels):
    """Polls until sum(name{labels}) == want (counters are bumped after the response ends);
    returns the samples of the last scrape."""
    deadline = time.monotonic() + timeout
    while True:
        samples = stack.metrics()
        if harness.metric_sum(samples, name, **labels) == want or time.monotonic() > deadline:
            return samples
        time.sleep(0.05)


class PromtoolMixin:
    def assertPromtoolClean(self):
        text = scrape_text(self.stack)
        p = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(),
                           capture_output=True, timeout=20)
        out = (p.stdout + p.stderr).decode("utf-8", "replace")
        self.assertEqual((p.returncode, out), (0, ""), "promtool check metrics on:\n" + text)


class WorkloadTest(PromtoolMixin, harness.StackTest):
    """Every request is listed here with its expected protocol, cache status and body size."""

    stack_args = {"site_extra": {"cache": CACHE}}
    # (path, http2, user agent, cache_status, body bytes, tls max)
    WORKLOAD = [
        ("/gen/a?size=1000&cc=max-age%3D300", False, IPHONE, "miss", 1000, None),
        ("/gen/b?size=20000&cc=max-age%3D300", True, ANDROID, "miss", 20000, None),
        ("/gen/c?size=300000&cc=max-age%3D300", True, EDGE, "miss", 300000, None),
        ("/gen/a?size=1000&cc=max-age%3D300", True, IPHONE, "hit", 1000, None),
        ("/gen/a?size=1000&cc=max-age%3D300", False, IPHONE, "hit", 1000, "1.2"),
        ("/gen/b?size=20000&cc=max-age%3D300", False, ANDROID, "hit", 20000, None),
        ("/gen/c?size=300000&cc=max-age%3D300", True, EDGE, "hit", 300000, None),
        ("/gen/c?size=300000&cc=max-age%3D300", False, IPHONE, "hit", 300000, None),
        ("/gen/pass-x?size=777", False, ANDROID, "pass", 777, None),
        ("/gen/pass-y?size=4321", True, EDGE, "pass", 4321, None),
    ]

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.results = []
        for path, http2, ua, _, _, tls_max in cls.WORKLOAD:
            extra = ["--tls-max", tls_max] if tls_max else []
            cls.results.append(cls.stack.curl(path, http2=http2, headers=[f"User-Agent: {ua}"],
                                              extra=extra))
        # a host no site serves: 421, answered locally (h1: curl retries a 421 over h2)
        cls.refused = cls.stack.curl("/x", headers=["Host: nobody.example",
                                                    f"User-Agent: {IPHONE}"])
        cls.samples = settle(cls.stack, "storecache_requests_total", len(cls.WORKLOAD) + 1)

    def tearDown(self):
        self.assertHealthy()

    def value(self, name, **labels):
        return harness.metric_sum(self.samples, name, **labels)

    def test_workload_went_as_scripted(self):
        for (path, http2, _, status, size, _), r in zip(self.WORKLOAD, self.results):
            self.assertEqual((r.exit, r.status, len(r.body)), (0, 200, size), (path, r))
            self.assertEqual(r.http_version, "2" if http2 else "1.1")
            cs = self.cs(r)
            self.assertEqual(cs.get("hit") is True, status == "hit", (path, r.headers))
        self.assertEqual(self.refused.status, 421, self.refused)

    def test_requests_by_site_protocol_and_cache_status(self):
        for proto, http2 in (("http/1.1", False), ("h2", True)):
            for status in ("hit", "stale", "revalidated", "miss", "pass", "local"):
                want = sum(1 for w in self.WORKLOAD if w[1] == http2 and w[3] == status)
                with self.subTest(protocol=proto, cache_status=status):
                    self.assertEqual(self.value("storecache_requests_total", site=SITE,
                                                protocol=proto, cache_status=status), want)
        self.assertEqual(self.value("storecache_requests_total", site=UNKNOWN,
                                    protocol="http/1.1", cache_status="local"), 1)
        self.assertEqual(self.value("storecache_requests_total", site=UNKNOWN), 1)
        self.assertEqual(self.value("storecache_responses_total", site=SITE, code_class="2xx"),
                         len(self.WORKLOAD))
        self.assertEqual(self.value("storecache_responses_total", site=UNKNOWN,
                                    code_class="4xx"), 1)

    def test_response_bytes_by_source_are_the_body_sizes(self):
        from_cache = sum(w[4] for w in self.WORKLOAD if w[3] == "hit")
        from_upstream = sum(w[4] for w in self.WORKLOAD if w[3] in ("miss", "pass"))
        self.assertEqual(self.value("storecache_response_bytes_total", site=SITE,
                                    source="cache"), from_cache)
        self.assertEqual(self.value("storecache_response_bytes_total", site=SITE,
                                    source="upstream"), from_upstream)
        # the 421 is storecache's own answer: neither cache nor upstream bytes
        self.assertEqual(self.value("storecache_response_bytes_total", site=UNKNOWN), 0)

    def test_upstream_requests_and_bytes(self):
        fetched = [w for w in self.WORKLOAD if w[3] in ("miss", "pass")]
        self.assertEqual(self.value("storecache_upstream_requests_total", site=SITE,
                                    code_class="2xx"), len(fetched))
        self.assertEqual(self.value("storecache_upstream_requests_total", site=SITE),
                         len(fetched))
        self.assertEqual(self.value("storecache_upstream_bytes_total", site=SITE),
                         sum(w[4] for w in fetched))
        self.assertEqual(self.value("storecache_upstream_errors_total"), 0)

    def test_histogram_counts_per_cache_status(self):
        for status in ("hit", "stale", "revalidated", "miss", "pass", "local"):
            want = sum(1 for w in self.WORKLOAD if w[3] == status) + (status == "local")
            for family in ("storecache_request_duration_seconds", "storecache_request_ttfb_seconds"):
                with self.subTest(family=family, cache_status=status):
                    self.assertEqual(self.value(family + "_count", cache_status=status), want)
                    self.assertEqual(self.value(family + "_bucket", cache_status=status,
                                                le="+Inf"), want)
                    if want:
                        self.assertGreater(self.value(family + "_sum", cache_status=status), 0)
        # every request of this workload takes well under 10 s on loopback
        self.assertEqual(self.value("storecache_request_duration_seconds_bucket", le="10"),
                         len(self.WORKLOAD) + 1)

    def test_device_mix_per_user_agent(self):
        # the 421 reached no site: not part of the fleet's mix
        for ua, (os_, browser, major) in DEVICE.items():
            want = sum(1 for w in self.WORKLOAD if w[2] == ua)
            with self.subTest(os=os_, browser=browser):
                self.assertEqual(self.value("storecache_device_requests_total", os=os_,
                                            browser=browser), want)
                self.assertEqual(self.value("storecache_device_os_version_requests_total",
                                            os=os_, major=major), want)
        self.assertEqual(self.value("storecache_device_requests_total"), len(self.WORKLOAD))
        self.assertEqual(self.value("storecache_device_os_version_requests_total"),
                         len(self.WORKLOAD))
        seen = {lab for (n, lab) in self.samples
                if n == "storecache_device_os_version_requests_total"}
        self.assertEqual(len(seen), 3, seen)  # only versions seen have a series

    def test_tls_versions(self):
        tls12 = sum(1 for w in self.WORKLOAD if w[5] == "1.2")
        self.assertEqual(self.value("storecache_tls_requests_total", version="TLSv1.2"), tls12)
        self.assertEqual(self.value("storecache_tls_requests_total", version="TLSv1.3"),
                         len(self.WORKLOAD) - tls12)
        self.assertEqual(self.value("storecache_tls_requests_total", version="other"), 0)

    def test_promtool_check_metrics(self):
        self.assertPromtoolClean()


class UpstreamErrorTest(PromtoolMixin, harness.StackTest):
    stack_args = {"overrides": {"timeouts": {"upstream_first_byte": "1s",
                                             "upstream_connect": "2s"}},
                  "site_extra": {"cache": CACHE}}

    @classmethod
    def setUpClass(cls):
        cls.stack = harness.Stack(**cls.stack_args)
        try:
            cls.stack.add_site(DEAD, upstream_port=harness.free_port())
            cls.stack.add_site(BADNAME, upstream_sni="not-the-origin.test")
            cls.garbage = socket.create_server(("127.0.0.1", 0))
            threading.Thread(target=answer_garbage, args=(cls.garbage,), daemon=True).start()
            cls.stack.add_site(GARBAGE, allow_http_upstream=True,
                               upstream=f"http://127.0.0.1:{cls.garbage.getsockname()[1]}")
            cls.stack.start()
        except BaseException:
            cls.stack.close()
            raise

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.garbage.close()

    def tearDown(self):
        self.assertHealthy()

    def test_errors_by_kind(self):
        # connect: the dead site's origin port is closed (one per protocol)
        for http2 in (False, True):
            self.assertEqual(self.stack.curl("/gen/x?size=10", host=DEAD, http2=http2).status,
                             502)
        # timeout: an origin that never answers (upstream_first_byte = 1 s), cached and pass
        for path in ("/gen/quiet?size=10&silent=1", "/gen/pass-quiet?size=10&silent=1"):
            self.assertEqual(self.stack.curl(path, timeout=15).status, 504, path)
        # reset: the origin closes mid-body (cached path and pass path)
        for path in ("/gen/drop?size=2000000&drop_after=100000",
                     "/gen/pass-drop?size=2000000&drop_after=100000"):
            r = self.stack.curl(path)
            self.assertNotEqual(r.exit, 0, r)
        # tls: the origin's certificate does not name upstream_sni
        self.assertEqual(self.stack.curl("/gen/x?size=10", host=BADNAME).status, 502)
        # bad_response: the origin answers bytes that are not HTTP
        self.assertEqual(self.stack.curl("/gen/x?size=10", host=GARBAGE).status, 502)
        samples = settle(self.stack, "storecache_upstream_errors_total", 8)
        got = {(dict(lab)["site"], dict(lab)["kind"]): v for (n, lab), v in samples.items()
               if n == "storecache_upstream_errors_total"}
        want = {(s, k): 0 for s in (SITE, DEAD, BADNAME, GARBAGE)
                for k in ("resolve", "connect", "tls", "timeout", "reset", "bad_response")}
        want[(BADNAME, "tls")] = 1
        want[(GARBAGE, "bad_response")] = 1
        want[(DEAD, "connect")] = 2
        want[(SITE, "timeout")] = 2
        want[(SITE, "reset")] = 2
        self.assertEqual(got, want)
        self.assertPromtoolClean()


def answer_garbage(server):
    """A TCP origin that reads a request and answers with something that is not HTTP."""
    while True:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(5)
            try:
                conn.recv(65536)
                conn.sendall(b"SSH-2.0-OpenSSH_9.2 this is not HTTP\r\n\r\n")
            except OSError:
                pass


def plain_http_to_tls_port(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: learn.example.com\r\n\r\n")
        try:
            while s.recv(4096):
                pass
        except OSError:
            pass


def s_client(port, *args):
    """openssl s_client that gives up after the handshake; returns its exit code."""
    p = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}",
                        "-servername", SITE, *args], input=b"", capture_output=True,
                       timeout=20)
    return p.returncode


class TlsFailureTest(PromtoolMixin, harness.StackTest):
    stack_args = {"overrides": {"timeouts": {"client_header": "1s"}}}

    def tearDown(self):
        self.assertHealthy()

    def test_handshake_failures_by_reason(self):
        port = self.stack.port
        # plain_http: curl http:// and a hand-written request to the TLS port
        r = harness.curl(f"http://127.0.0.1:{port}/", timeout=10)
        self.assertNotEqual(r.status, 200, r)
        plain_http_to_tls_port(port)
        # version: a TLS 1.1-only client (security level 0 lets OpenSSL 3 offer it at all)
        self.assertNotEqual(s_client(port, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"), 0)
        # cipher: an RSA key-exchange suite only, against our EC certificate
        self.assertNotEqual(s_client(port, "-tls1_2", "-cipher", "AES128-SHA"), 0)
        # certificate: a client that does not trust our CA aborts with unknown_ca
        r = harness.curl(self.stack.url("/"), resolve=self.stack.resolve(), timeout=10)
        self.assertEqual(r.exit, 60, r)  # "SSL peer certificate ... was not OK"
        # closed: a client that connects and goes away before its ClientHello ends
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        # timeout: a client that connects and sends nothing until client_header (1 s)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            t0 = time.monotonic()
            try:
                self.assertEqual(s.recv(1), b"")  # the daemon closes it
            except ConnectionResetError:
                pass
            took = time.monotonic() - t0
            self.assertGreater(took, 0.8)
            self.assertLess(took, 4.0)
        samples = settle(self.stack, "storecache_tls_handshake_failures_total", 7)
        got = {dict(lab)["reason"]: v for (n, lab), v in samples.items()
               if n == "storecache_tls_handshake_failures_total"}
        self.assertEqual(got, {"plain_http": 2, "version": 1, "cipher": 1, "certificate": 1,
                               "closed": 1, "timeout": 1, "other": 0})
        # the failed handshakes reached no site
        self.assertEqual(harness.metric_sum(samples, "storecache_requests_total"), 0)
        self.assertPromtoolClean()


if __name__ == "__main__":
    harness.main()
