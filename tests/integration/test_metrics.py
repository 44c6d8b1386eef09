#!/usr/bin/env python3
"""The admin listener: /healthz, /metrics counters that add up, and isolation from TLS."""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import harness  # noqa: E402
from harness import SITE  # noqa: E402


def wait_for(fn, want, timeout=2.0):
    """Polls fn() until it returns want (counters may be bumped after the response)."""
    deadline = time.monotonic() + timeout
    got = fn()
    while got != want and time.monotonic() < deadline:
        time.sleep(0.05)
        got = fn()
    return got


class MetricsTest(harness.StackTest):
    def tearDown(self):
        self.assertHealthy()

    def total(self, name, **labels):
        return harness.metric_sum(self.stack.metrics(), name, **labels)

    def test_healthz(self):
        status, _, body = harness.http_get(f"http://127.0.0.1:{self.stack.admin_port}/healthz")
        self.assertEqual(status, 200)
        self.assertEqual(body.strip(), b"ok")

    def test_metrics_is_prometheus_text(self):
        status, headers, body = harness.http_get(
            f"http://127.0.0.1:{self.stack.admin_port}/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers.get("Content-Type", "").startswith("text/plain"), headers)
        samples = harness.parse_prometheus(body.decode())
        self.assertTrue(samples)
        text = body.decode()
        for name in ("storecache_requests_total", "storecache_response_bytes_total",
                     "storecache_upstream_requests_total", "storecache_upstream_bytes_total"):
            self.assertIn(f"# TYPE {name} counter", text)

    def test_requests_total_counts_exactly(self):
        name = "storecache_requests_total"
        before = self.total(name, site=SITE)
        before_h1 = self.total(name, site=SITE, protocol="http/1.1")
        before_h2 = self.total(name, site=SITE, protocol="h2")
        n1, n2 = 4, 3
        for i in range(n1):
            self.assertEqual(self.stack.curl(f"/gen/m{i}?size=1000").status, 200)
        for i in range(n2):
            self.assertEqual(self.stack.curl(f"/gen/n{i}?size=1000", http2=True).status, 200)
        got = wait_for(lambda: self.total(name, site=SITE) - before, n1 + n2)
        self.assertEqual(got, n1 + n2)
        self.assertEqual(self.total(name, site=SITE, protocol="http/1.1") - before_h1, n1)
        self.assertEqual(self.total(name, site=SITE, protocol="h2") - before_h2, n2)
        time.sleep(0.3)
        self.assertEqual(self.total(name, site=SITE) - before, n1 + n2, "counted twice")

    def test_response_and_upstream_counters(self):
        before = self.stack.metrics()
        size, n = 50000, 5
        for i in range(n):
            self.assertEqual(self.stack.curl(f"/gen/r{i}?size={size}&cc=no-store").status, 200)
        wait_for(lambda: self.total("storecache_responses_total", site=SITE, code_class="2xx")
                 - harness.metric_sum(before, "storecache_responses_total", site=SITE,
                                      code_class="2xx"), n)
        after = self.stack.metrics()
        d = lambda name, **lab: (harness.metric_sum(after, name, **lab)
                                 - harness.metric_sum(before, name, **lab))
        self.assertEqual(d("storecache_responses_total", site=SITE, code_class="2xx"), n)
        self.assertEqual(d("storecache_upstream_requests_total", site=SITE, code_class="2xx"), n)
        self.assertGreaterEqual(d("storecache_upstream_bytes_total", site=SITE), n * size)
        self.assertGreaterEqual(d("storecache_response_bytes_total", site=SITE,
                                  source="upstream"), n * size)
        self.assertEqual(self.stack.origin.count("/gen/r"), n)

    def test_error_responses_are_counted_by_class(self):
        before = self.total("storecache_responses_total", site=SITE, code_class="4xx")
        self.assertEqual(self.stack.curl("/gen/e?size=1&status=404").status, 404)
        got = wait_for(lambda: self.total("storecache_responses_total", site=SITE,
                                          code_class="4xx") - before, 1)
        self.assertEqual(got, 1)

    def test_unknown_site_is_counted_as_unknown(self):
        before = self.total("storecache_requests_total", site="_unknown")
        r = self.stack.curl("/x", headers=["Host: nobody.example"])
        self.assertEqual(r.status, 421, r)
        self.assertEqual(wait_for(lambda: self.total("storecache_requests_total",
                                                     site="_unknown") - before, 1), 1)

    def test_one_access_log_line_per_request(self):
        tag = f"logline{os.getpid()}"
        for i, http2 in enumerate((False, True, False)):
            self.assertEqual(self.stack.curl(f"/gen/{tag}?size=10&i={i}", http2=http2).status,
                             200)

        def lines():
            return [ln for ln in self.stack.daemon.stderr_text().splitlines() if tag in ln]

        deadline = time.monotonic() + 2
        while len(lines()) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        got = lines()
        self.assertEqual(len(got), 3, got)
        for ln in got:
            self.assertRegex(ln, r"^<6>access time=", "no journald priority prefix")
            self.assertIn(f" path=/gen/{tag}?… ", ln)  # the query redacted (the default)

    def test_admin_not_reachable_on_tls_port(self):
        # plain HTTP to the TLS port is not the admin listener
        with socket.create_connection(("127.0.0.1", self.stack.port), timeout=5) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            data = b""
            try:
                while chunk := s.recv(65536):
                    data += chunk
            except (ConnectionError, socket.timeout):
                pass
        self.assertNotIn(b"storecache_", data)
        self.assertFalse(data.startswith(b"HTTP/1.1 200"), data[:200])
        # and over TLS, /metrics and /healthz are the site's paths, proxied to the origin
        for path in ("/metrics", "/healthz"):
            r = self.stack.curl(path)
            self.assertNotIn(b"storecache_requests_total", r.body or b"")
            self.assertEqual(r.status, 404, r)  # the origin's answer
        self.assertEqual([e["path"] for e in self.stack.origin.requests()],
                         ["/metrics", "/healthz"])


if __name__ == "__main__":
    harness.main()
