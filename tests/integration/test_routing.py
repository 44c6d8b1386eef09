#!/usr/bin/env python3
"""Routing: SNI picks the site certificate, Host/:authority picks the site, and the daemon
never forwards to a host it is not configured for."""

import os
import re
import subprocess
import socket
import ssl
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import harness  # noqa: E402
from harness import OTHER_SITE, SITE  # noqa: E402
from origin import gen_bytes  # noqa: E402


class RoutingTest(harness.StackTest):
    stack_args = {"two_sites": True}

    def s_client_subject(self, sni):
        p = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{self.stack.port}",
                            "-servername", sni, "-CAfile", self.stack.ca, "-verify_return_error"],
                           input=b"", capture_output=True, timeout=20)
        out = p.stdout.decode("utf-8", "replace")
        m = re.search(r"subject=(.*)", out)
        return p.returncode, (m.group(1).strip() if m else None), out

    def test_sni_picks_site_certificate(self):
        for name in (SITE, OTHER_SITE):
            code, subject, out = self.s_client_subject(name)
            self.assertEqual(code, 0, out[-2000:])
            self.assertRegex(subject or "", rf"CN\s*=\s*{re.escape(name)}$")
            self.assertEqual(harness.peer_cert_der(self.stack.port, name),
                             harness.cert_der(self.stack.site_certs[name][0]))
            # and curl, which checks the name against the SAN, is happy on both protocols
            for http2 in (False, True):
                r = self.stack.curl("/gen/sni?size=100", host=name, http2=http2)
                self.assertEqual((r.exit, r.status), (0, 200), r)

    def test_each_site_reaches_the_origin(self):
        r = self.stack.curl("/gen/o?size=10", host=OTHER_SITE)
        self.assertEqual(r.body, gen_bytes("o", 10))
        self.assertEqual(self.stack.origin.requests()[0]["path"], "/gen/o")

    def test_unknown_host_is_421(self):
        for http2 in (False, True):
            r = self.stack.curl("/gen/u?size=10", headers=["Host: unknown.example"],
                                http2=http2)
            self.assertEqual(r.status, 421, r)
        self.assertEqual(self.stack.origin.count(), 0, "origin saw a request for an unknown host")

    def test_sni_site_a_with_host_site_b_is_421(self):
        for http2 in (False, True):
            r = self.stack.curl("/gen/x?size=10", headers=[f"Host: {OTHER_SITE}"], http2=http2)
            self.assertEqual(r.status, 421, r)
        self.assertEqual(self.stack.origin.count(), 0)

    def test_sni_of_no_site_lets_host_decide(self):
        # Some clients (wrk, old Androids) send an IP literal or another name as SNI: they get
        # the default certificate, and the Host field picks the site.
        ctx = ssl.create_default_context(cafile=self.stack.ca)
        ctx.check_hostname = False
        ctx.set_alpn_protocols(["http/1.1"])
        with socket.create_connection(("127.0.0.1", self.stack.port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="unknown.example") as s:
                s.sendall(f"GET /gen/sni-none?size=10 HTTP/1.1\r\nHost: {SITE}\r\n"
                          "Connection: close\r\n\r\n".encode())
                r = harness.read_response(s)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.stack.origin.count(), 1)

    def test_host_with_port_and_case_is_the_same_site(self):
        r = self.stack.curl("/gen/c?size=10", headers=[f"Host: LEARN.Example.COM:{self.stack.port}"])
        self.assertEqual(r.status, 200, r)

    def test_connect_is_405(self):
        req = (f"CONNECT {SITE}:{self.stack.port} HTTP/1.1\r\n"
               f"Host: {SITE}:{self.stack.port}\r\n\r\n").encode()
        r = harness.raw_exchange(self.stack.port, SITE, self.stack.ca, req)
        self.assertIsNotNone(r, "connection closed without an answer")
        self.assertEqual(r.status, 405, r)
        self.assertEqual(self.stack.origin.count(), 0)

    def test_absolute_form_to_foreign_host_is_refused(self):
        req = (f"GET https://foreign.example/gen/f?size=10 HTTP/1.1\r\n"
               f"Host: {SITE}\r\nConnection: close\r\n\r\n").encode()
        r = harness.raw_exchange(self.stack.port, SITE, self.stack.ca, req)
        self.assertIsNotNone(r, "connection closed without an answer")
        self.assertEqual(r.status, 421, r)
        self.assertEqual(self.stack.origin.count(), 0, "the origin saw a foreign request")

    def test_absolute_form_to_foreign_host_with_matching_host_header(self):
        req = (f"GET https://foreign.example/gen/f?size=10 HTTP/1.1\r\n"
               f"Host: foreign.example\r\nConnection: close\r\n\r\n").encode()
        r = harness.raw_exchange(self.stack.port, SITE, self.stack.ca, req)
        self.assertIsNotNone(r)
        self.assertEqual(r.status, 421, r)
        self.assertEqual(self.stack.origin.count(), 0)

    def test_absolute_form_for_own_site_works(self):
        req = (f"GET https://{SITE}/gen/abs?size=1234 HTTP/1.1\r\n"
               f"Host: {SITE}\r\nConnection: close\r\n\r\n").encode()
        r = harness.raw_exchange(self.stack.port, SITE, self.stack.ca, req)
        self.assertIsNotNone(r)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, gen_bytes("abs", 1234))
        seen = self.stack.origin.requests()
        self.assertEqual(len(seen), 1)
        self.assertEqual(seen[0]["target"], "/gen/abs?size=1234", "upstream target not origin-form")

    def tearDown(self):
        self.assertHealthy()


if __name__ == "__main__":
    harness.main()
