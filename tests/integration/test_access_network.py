#!/usr/bin/env python3
"""Client admission by network (allow_clients): per listener at accept, before any TLS; per site
in the SNI callback (alert access_denied) and per request (Host decides when the TLS name was no
site's); counted in storecache_access_denied_total; a reload changes the lists."""

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import harness  # noqa: E402
from harness import OTHER_SITE, SITE  # noqa: E402


def has_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def handshake(port, sni, ca, source=None, host="127.0.0.1"):
    """'ok', or why the TLS connection failed: 'closed' (no handshake: the peer closed the TCP
    connection) or 'alert' (the server answered with a TLS alert)."""
    try:
        s = harness.tls_socket(port, sni, ca, source=source, host=host)
    except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
        return "closed"
    except ssl.SSLError as e:
        return "alert" if "ALERT" in str(e).upper() else f"ssl: {e}"
    except OSError as e:
        return f"os: {e}"
    s.close()
    return "ok"


def report_denied(stack):
    """The usage history's access denials (storecache report --json, last 24 hours):
    (all, per site), each {reason: count}."""
    p = subprocess.run([harness.storecache_bin(), "report", "--config", stack.config_path,
                        "--json"], capture_output=True, text=True, timeout=30)
    if p.returncode != 0:  # no history yet
        return {}, {}
    rep = json.loads(p.stdout)
    return rep["denied"], {k: v["denied"] for k, v in rep["sites"].items()}


def access_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith("<6>access ")]


class ListenerAllowClients(harness.StackTest):
    """[server] allow_clients = ["127.0.0.2/32"]: only 127.0.0.2 gets a TLS handshake."""

    stack_args = {"overrides": {"server": {"allow_clients": ["127.0.0.2/32"]}}}

    def denied(self, site="-", reason="network"):
        return self.metric("storecache_access_denied_total", site=site, reason=reason)

    def test_outside_is_closed_before_tls_and_counted(self):
        before = self.denied()
        tls_before = self.metric("storecache_tls_handshake_failures_total")
        self.assertEqual(handshake(self.stack.port, SITE, self.stack.ca, source="127.0.0.3"),
                         "closed")
        self.wait_metric("storecache_access_denied_total", lambda v: v == before + 1,
                         site="-", reason="network")
        # In the usage history too (flushed every 5 s): in the total, in no site.
        total, sites = harness.poll(lambda: report_denied(self.stack),
                                    lambda r: r[0].get("network", 0) >= 1, timeout=15)
        self.assertGreaterEqual(total.get("network", 0), 1, total)
        self.assertFalse(any(d["network"] for d in sites.values()), sites)
        # Closed before a handshake began: no TLS failure counted for it.
        self.assertEqual(self.metric("storecache_tls_handshake_failures_total"), tls_before)
        r = self.stack.curl("/gen/a?size=10", extra=["--interface", "127.0.0.3"])
        self.assertNotEqual(r.exit, 0, r)
        self.assertTrue(any("refused at accept: network" in line and "client=127.0.0.3" in line
                            for line in self.stack.daemon.stderr_text().splitlines()))

    def test_inside_is_served(self):
        r = self.stack.curl("/gen/a?size=10", extra=["--interface", "127.0.0.2"])
        self.assertEqual((r.exit, r.status), (0, 200), r)
        self.assertEqual(handshake(self.stack.port, SITE, self.stack.ca, source="127.0.0.2"), "ok")

    def test_metric_family_is_rendered(self):
        text = harness.http_get(f"http://127.0.0.1:{self.stack.admin_port}/metrics")[2]
        text = text.decode() if isinstance(text, bytes) else text
        self.assertIn("# TYPE storecache_access_denied_total counter", text)
        for reason in ("network", "client_cert", "signature", "upstream"):
            self.assertIn(f'storecache_access_denied_total{{site="-",reason="{reason}"}}', text)


class PerListener(unittest.TestCase):
    """A listener's own allow_clients replaces [server]'s; IPv6 listeners too."""

    def test_listener_lists(self):
        port2 = harness.free_port()
        listen = [None, {"address": f"127.0.0.1:{port2}", "allow_clients": ["127.0.0.3"]}]
        v6 = has_ipv6_loopback()
        if v6:
            port6_open, port6_closed = harness.free_port("::1"), harness.free_port("::1")
            listen += [{"address": f"[::1]:{port6_open}", "allow_clients": ["::1/128"]},
                       f"[::1]:{port6_closed}"]
        st = harness.Stack(overrides={"server": {"allow_clients": ["127.0.0.2"]}})
        try:
            listen[0] = f"127.0.0.1:{st.port}"
            st.config["server"]["listen"] = listen
            st.rewrite_config()
            st.start()
            ca = st.ca
            self.assertEqual(handshake(st.port, SITE, ca, source="127.0.0.3"), "closed")
            self.assertEqual(handshake(st.port, SITE, ca, source="127.0.0.2"), "ok")
            self.assertEqual(handshake(port2, SITE, ca, source="127.0.0.3"), "ok")
            self.assertEqual(handshake(port2, SITE, ca, source="127.0.0.2"), "closed")
            if v6:
                self.assertEqual(handshake(port6_open, SITE, ca, host="::1"), "ok")
                r = harness.curl(f"https://{SITE}:{port6_open}/gen/v6?size=5", ca=ca,
                                 resolve=[f"{SITE}:{port6_open}:[::1]"])
                self.assertEqual((r.exit, r.status), (0, 200), r)
                # [server]'s list is IPv4 only: ::1 is outside it.
                self.assertEqual(handshake(port6_closed, SITE, ca, host="::1"), "closed")
            else:
                print("no IPv6 loopback: IPv6 listeners not tested", file=sys.stderr)
            samples = st.metrics()
            self.assertEqual(harness.metric_sum(samples, "storecache_access_denied_total",
                                                site="-", reason="network"), 3 if v6 else 2)
        finally:
            st.close()

    def test_reload_changes_the_list(self):
        st = harness.Stack(overrides={"server": {"allow_clients": ["127.0.0.2"]}}).start()
        try:
            self.assertEqual(handshake(st.port, SITE, st.ca, source="127.0.0.3"), "closed")
            st.config["server"]["allow_clients"] = ["127.0.0.2", "127.0.0.3"]
            st.rewrite_config()
            st.daemon.signal(signal.SIGHUP)
            result = harness.poll(lambda: handshake(st.port, SITE, st.ca, source="127.0.0.3"),
                                  lambda v: v == "ok", timeout=5)
            self.assertEqual(result, "ok", st.daemon.stderr_text()[-2000:])
            # A bad list is a rejected reload: the running one stays.
            st.config["server"]["allow_clients"] = ["127.0.0.2/33"]
            st.rewrite_config()
            st.daemon.signal(signal.SIGHUP)
            harness.poll(lambda: "reload failed" in st.daemon.stderr_text(), bool, timeout=5)
            self.assertIn("server.allow_clients[0]", st.daemon.stderr_text())
            self.assertEqual(handshake(st.port, SITE, st.ca, source="127.0.0.3"), "ok")
            self.assertEqual(handshake(st.port, SITE, st.ca, source="127.0.0.4"), "closed")
        finally:
            st.close()


class PerSite(harness.StackTest):
    """learn.example.com admits 127.0.0.2 only; other.example.com everyone."""

    stack_args = {"two_sites": True,
                  "overrides": {"site": [{"access": {"allow_clients": ["127.0.0.2"]}}]}}

    def denied(self, site):
        return self.metric("storecache_access_denied_total", site=site, reason="network")

    def test_sni_of_restricted_site_fails_handshake_with_alert(self):
        before = self.denied(SITE)
        self.assertEqual(handshake(self.stack.port, SITE, self.stack.ca, source="127.0.0.3"),
                         "alert")
        self.wait_metric("storecache_access_denied_total", lambda v: v == before + 1,
                         site=SITE, reason="network")
        # In the usage history too, under the site the TLS name chose.
        _, sites = harness.poll(lambda: report_denied(self.stack),
                                lambda r: r[1].get(SITE, {}).get("network", 0) >= 1, timeout=15)
        self.assertGreaterEqual(sites.get(SITE, {}).get("network", 0), 1, sites)
        self.assertTrue(any("refused in the TLS handshake: network" in line
                            for line in self.stack.daemon.stderr_text().splitlines()))
        r = self.stack.curl("/gen/a?size=10", extra=["--interface", "127.0.0.3"])
        self.assertNotEqual(r.exit, 0, r)

    def test_restricted_site_serves_its_network(self):
        r = self.stack.curl("/gen/b?size=10", extra=["--interface", "127.0.0.2"])
        self.assertEqual((r.exit, r.status), (0, 200), r)

    def test_other_site_is_open(self):
        r = self.stack.curl("/gen/c?size=10", host=OTHER_SITE,
                            extra=["--interface", "127.0.0.3"])
        self.assertEqual((r.exit, r.status), (0, 200), r)

    def test_no_sni_then_host_of_restricted_site_is_403(self):
        # curl sends no SNI for an IP literal: the default certificate (it names 127.0.0.1),
        # and the Host header decides the site; the request path refuses it.
        before = self.denied(SITE)
        url = f"https://127.0.0.1:{self.stack.port}/gen/d?size=10"
        r = harness.curl(url, ca=self.stack.ca, headers=[f"Host: {SITE}"],
                         extra=["--interface", "127.0.0.3"])
        self.assertEqual((r.exit, r.status), (0, 403), r)
        self.assertIn(b"denied: network", r.body)
        self.assertEqual(self.denied(SITE), before + 1)
        self.assertEqual(self.stack.origin.count("/gen/d"), 0)
        line = [x for x in access_lines(self.stack.daemon.stderr_text()) if "/gen/d" in x][-1]
        self.assertIn("status=403", line)
        self.assertIn('why="denied: network"', line)
        self.assertIn(f"site={SITE}", line)
        # From inside: served.
        r = harness.curl(url, ca=self.stack.ca, headers=[f"Host: {SITE}"],
                         extra=["--interface", "127.0.0.2"])
        self.assertEqual((r.exit, r.status), (0, 200), r)


if __name__ == "__main__":
    harness.main()
