#!/usr/bin/env python3
"""Device certificates (mTLS): client_certs = "required" / "optional" per site, chosen by SNI
(two sites sharing one certificate file, one requiring certificates of CA-A, one none), TLS 1.2
and 1.3, a certificate of another CA, a no-SNI connection to a site that requires one, path rules
that demand one, revocation through a CRL re-read on SIGHUP, a bad CRL at --check-config and at
reload, and what the access log shows (the sha256 or the subject, never more)."""

import hashlib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import harness  # noqa: E402
from harness import OTHER_SITE, SITE  # noqa: E402

SHARED_SITE = "shared.example.com"  # same certificate file as SITE, no client certificates


def run(cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True)


class DeviceCa:
    """An `openssl ca` setup in directory: issues device certificates (clientAuth), revokes them,
    writes CRLs."""

    def __init__(self, directory, name):
        self.dir = directory
        os.makedirs(os.path.join(directory, "newcerts"))
        self.cert = os.path.join(directory, "ca.crt")
        self.key = os.path.join(directory, "ca.key")
        self.crl = os.path.join(directory, "ca.crl")
        self.cnf = os.path.join(directory, "ca.cnf")
        open(os.path.join(directory, "index.txt"), "w").close()
        with open(os.path.join(directory, "serial"), "w") as f:
            f.write("1000\n")
        with open(os.path.join(directory, "crlnumber"), "w") as f:
            f.write("1000\n")
        with open(self.cnf, "w") as f:
            f.write(f"""[ ca ]
default_ca = device_ca
[ device_ca ]
dir = {directory}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
certificate = $dir/ca.crt
private_key = $dir/ca.key
serial = $dir/serial
crlnumber = $dir/crlnumber
default_md = sha256
default_days = 2
default_crl_days = 2
policy = any_name
unique_subject = no
[ any_name ]
commonName = supplied
organizationName = optional
[ device ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
""")
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-days", "2", "-subj", f"/CN={name}", "-keyout", self.key, "-out", self.cert,
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        self.write_crl()

    def device(self, name):
        base = os.path.join(self.dir, name)
        run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-subj", f"/O=Store 12/CN={name}", "-keyout", base + ".key",
             "-out", base + ".csr"])
        run(["openssl", "ca", "-batch", "-config", self.cnf, "-extensions", "device", "-notext",
             "-in", base + ".csr", "-out", base + ".crt"])
        return base + ".crt", base + ".key"

    def revoke(self, crt):
        run(["openssl", "ca", "-config", self.cnf, "-revoke", crt])
        self.write_crl()

    def write_crl(self):
        tmp = self.crl + ".new"
        run(["openssl", "ca", "-config", self.cnf, "-gencrl", "-out", tmp])
        os.replace(tmp, self.crl)


def der_sha256(crt):
    der = run_bytes(["openssl", "x509", "-in", crt, "-outform", "DER"])
    return "sha256:" + hashlib.sha256(der).hexdigest()


def run_bytes(cmd):
    return subprocess.run(cmd, check=True, capture_output=True).stdout


def access_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith("<6>access ")]


def make_stack(tmp_name):
    """learn.example.com requires CA-A certificates (with a CRL); shared.example.com shares its
    certificate file and asks for none; other.example.com asks optionally (CA-A), logs the
    subject and demands a certificate under /secure/*."""
    st = harness.Stack(two_sites=True)
    st.ca_a = DeviceCa(os.path.join(st.tmp, "ca-a"), "device CA A")
    st.ca_b = DeviceCa(os.path.join(st.tmp, "ca-b"), "device CA B")
    crt, key = st.pki.leaf(SITE, SHARED_SITE, tag="-shared")
    learn, other = st.config["site"]
    learn.update({"tls_cert": crt, "tls_key": key,
                  "access": {"client_certs": "required", "client_ca": st.ca_a.cert,
                             "client_crl": st.ca_a.crl}})
    shared = st.site_entry(SITE)
    shared.update({"hosts": [SHARED_SITE], "tls_cert": crt, "tls_key": key})
    st.config["site"].append(shared)
    other["access"] = {"client_certs": "optional", "client_ca": st.ca_a.cert,
                       "log_client_cert": "subject",
                       "rule": [{"path": "/secure/*", "client_cert": True}]}
    st.rewrite_config()
    return st


class Mtls(harness.StackTest):
    @classmethod
    def setUpClass(cls):
        cls.stack = make_stack("mtls")
        try:
            cls.dev1 = cls.stack.ca_a.device("tablet-1")
            cls.foreign = cls.stack.ca_b.device("tablet-foreign")
            cls.stack.start()
        except BaseException:
            cls.stack.close()
            raise

    def get_with(self, path, cert=None, host=SITE, tls12=False):
        extra = []
        if cert:
            extra += ["--cert", cert[0], "--key", cert[1]]
        if tls12:
            extra += ["--tls-max", "1.2"]
        return self.stack.curl(path, host=host, extra=extra)

    def denied(self, site=SITE):
        return self.metric("storecache_access_denied_total", site=site, reason="client_cert")

    def test_required_refuses_a_client_without_certificate(self):
        for tls12 in (False, True):
            with self.subTest(tls12=tls12):
                before = self.denied()
                r = self.get_with(f"/gen/nocert-{tls12}?size=10", tls12=tls12)
                self.assertNotEqual(r.exit, 0, r)
                self.assertNotEqual(r.status, 200, r)
                self.wait_metric("storecache_access_denied_total", lambda v: v == before + 1,
                                 site=SITE, reason="client_cert")
        self.assertEqual(self.stack.origin.count("/gen/nocert"), 0)
        self.assertTrue(any("refused in the TLS handshake: client_cert" in line
                            for line in self.stack.daemon.stderr_text().splitlines()))

    def test_required_serves_a_device_of_its_ca(self):
        for tls12 in (False, True):
            with self.subTest(tls12=tls12):
                r = self.get_with(f"/gen/dev-{tls12}?size=10", cert=self.dev1, tls12=tls12)
                self.assertEqual((r.exit, r.status), (0, 200), r)
                self.assertEqual(r.info.get("ssl_verify_result"), 0)
        line = [x for x in access_lines(self.stack.daemon.stderr_text()) if "/gen/dev-" in x][-1]
        self.assertIn(f"cert={der_sha256(self.dev1[0])}", line)
        self.assertNotIn("tablet-1", line)  # the default shows no personal data

    def test_required_refuses_a_certificate_of_another_ca(self):
        for tls12 in (False, True):
            with self.subTest(tls12=tls12):
                before = self.denied()
                r = self.get_with("/gen/foreign?size=10", cert=self.foreign, tls12=tls12)
                self.assertNotEqual(r.exit, 0, r)
                self.wait_metric("storecache_access_denied_total", lambda v: v == before + 1,
                                 site=SITE, reason="client_cert")
        self.assertEqual(self.stack.origin.count("/gen/foreign"), 0)

    def test_site_sharing_the_certificate_asks_for_none(self):
        for tls12 in (False, True):
            with self.subTest(tls12=tls12):
                r = self.get_with("/gen/shared?size=10", host=SHARED_SITE, tls12=tls12)
                self.assertEqual((r.exit, r.status), (0, 200), r)

    def test_no_sni_to_a_site_that_requires_certificates_is_403(self):
        # An IP literal: no SNI, so [server]'s policy (none) and the default certificate; the
        # Host names learn.example.com, whose policy the request path applies. Even a good
        # certificate does not count: no site's CA verified it.
        before = self.denied()
        url = f"https://127.0.0.1:{self.stack.port}/gen/nosni?size=10"
        for cert in (None, self.dev1):
            extra = ["--cert", cert[0], "--key", cert[1]] if cert else []
            r = harness.curl(url, ca=self.stack.ca, headers=[f"Host: {SITE}"], extra=extra)
            self.assertEqual((r.exit, r.status), (0, 403), r)
            self.assertIn(b"denied: client_cert", r.body)
        self.assertEqual(self.denied(), before + 2)
        self.assertEqual(self.stack.origin.count("/gen/nosni"), 0)

    def test_optional_serves_without_certificate_except_rule_paths(self):
        r = self.get_with("/gen/open?size=10", host=OTHER_SITE)
        self.assertEqual((r.exit, r.status), (0, 200), r)
        before = self.denied(OTHER_SITE)
        for proto_h2 in (False, True):
            r = self.stack.curl("/secure/x", host=OTHER_SITE, http2=proto_h2)
            self.assertEqual((r.exit, r.status), (0, 403), r)
            self.assertIn(b"denied: client_cert", r.body)
        self.assertEqual(self.denied(OTHER_SITE), before + 2)
        self.assertEqual(self.stack.origin.count("/secure/"), 0)
        line = [x for x in access_lines(self.stack.daemon.stderr_text()) if "/secure/x" in x][-1]
        self.assertIn('why="denied: client_cert"', line)
        self.assertIn("cert=-", line)

    def test_optional_rule_path_with_certificate(self):
        r = self.get_with("/secure/gen/ok?size=10", cert=self.dev1, host=OTHER_SITE)
        self.assertNotEqual(r.status, 403, r)
        line = [x for x in access_lines(self.stack.daemon.stderr_text())
                if "/secure/gen/ok" in x][-1]
        # log_client_cert = "subject" on this site.
        # (RFC 2253 order: the last RDN of the certificate first.)
        self.assertRegex(line, r'cert="(CN=tablet-1,O=Store 12|O=Store 12,CN=tablet-1)"')
        # A certificate of another CA is no certificate here (optional: the connection goes on).
        r = self.get_with("/secure/gen/foreign?size=10", cert=self.foreign, host=OTHER_SITE)
        self.assertEqual((r.exit, r.status), (0, 403), r)

    def test_no_secret_in_the_log(self):
        text = self.stack.daemon.stderr_text()
        self.assertNotIn("PRIVATE KEY", text)
        self.assertNotIn("BEGIN CERTIFICATE", text)


class ServerLevel(unittest.TestCase):
    """[server] client_certs = "required": connections that name no site need a certificate;
    and no TLS session is resumed while device certificates are configured."""

    def test_no_sni_needs_a_certificate_and_sessions_are_not_resumed(self):
        st = harness.Stack()
        try:
            ca = DeviceCa(os.path.join(st.tmp, "ca-a"), "device CA A")
            dev = ca.device("tablet-9")
            st.config["server"].update({"client_certs": "required", "client_ca": ca.cert})
            st.rewrite_config()
            st.start()
            url = f"https://127.0.0.1:{st.port}/gen/s?size=10"
            r = harness.curl(url, ca=st.ca, headers=[f"Host: {SITE}"])
            self.assertNotEqual(r.exit, 0, r)
            self.assertEqual(harness.metric_sum(st.metrics(), "storecache_access_denied_total",
                                                site="-", reason="client_cert"), 1)
            r = harness.curl(url, ca=st.ca, headers=[f"Host: {SITE}"],
                             extra=["--cert", dev[0], "--key", dev[1]])
            self.assertEqual((r.exit, r.status), (0, 200), r)
            # SNI of the site (no client certificates there): served, and not resumable.
            ctx = ssl.create_default_context(cafile=st.ca)
            for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
                ctx.maximum_version = version
                session = None
                for _ in range(2):
                    raw = socket.create_connection(("127.0.0.1", st.port), timeout=5)
                    with ctx.wrap_socket(raw, server_hostname=SITE, session=session) as tls:
                        tls.sendall(f"GET /gen/s?size=3 HTTP/1.1\r\nHost: {SITE}\r\n"
                                    "Connection: close\r\n\r\n".encode())
                        self.assertEqual(harness.read_response(tls).status, 200)
                        self.assertFalse(tls.session_reused, version)
                        session = tls.session
        finally:
            st.close()


class Revocation(unittest.TestCase):
    def test_crl_reread_on_sighup_and_bad_crl_rejected(self):
        st = make_stack("revocation")
        try:
            keep = st.ca_a.device("tablet-keep")
            lost = st.ca_a.device("tablet-lost")
            st.start()

            def status(cert, tls12=False):
                extra = ["--cert", cert[0], "--key", cert[1]] + (["--tls-max", "1.2"] if tls12
                                                                  else [])
                r = st.curl("/gen/r?size=10", extra=extra)
                return r.status if r.exit == 0 else "refused"

            self.assertEqual(status(keep), 200)
            self.assertEqual(status(lost), 200)
            st.ca_a.revoke(lost[0])
            self.assertEqual(status(lost), 200, "revoked before the reload: not read yet")
            st.daemon.signal(signal.SIGHUP)
            harness.poll(lambda: status(lost), lambda v: v == "refused", timeout=5)
            for tls12 in (False, True):
                self.assertEqual(status(lost, tls12), "refused", st.daemon.stderr_text()[-2000:])
                self.assertEqual(status(keep, tls12), 200)
            self.assertTrue(any("certificate revoked" in line
                                for line in st.daemon.stderr_text().splitlines()))

            # A bad CRL: --check-config names it; a reload keeps the running configuration.
            with open(st.ca_a.crl, "w") as f:
                f.write("-----BEGIN X509 CRL-----\nnot a crl\n-----END X509 CRL-----\n")
            code, out = harness.check_config(st.config_path)
            self.assertEqual(code, 1, out)
            self.assertIn(st.ca_a.crl, out)
            st.daemon.signal(signal.SIGHUP)
            harness.poll(lambda: "reload failed" in st.daemon.stderr_text(), bool, timeout=5)
            self.assertIn("reload failed", st.daemon.stderr_text())
            self.assertEqual(status(keep), 200)
            self.assertEqual(status(lost), "refused")

            # A CRL of another CA, and a client_ca that is no CA: named too.
            shutil.copy(st.ca_b.crl, st.ca_a.crl)
            code, out = harness.check_config(st.config_path)
            self.assertEqual(code, 1, out)
            self.assertIn("not signed by a CA of client_ca", out)
            st.ca_a.write_crl()
            code, out = harness.check_config(st.config_path)
            self.assertEqual(code, 0, out)
            st.config["site"][0]["access"]["client_ca"] = keep[0]
            st.rewrite_config()
            code, out = harness.check_config(st.config_path)
            self.assertEqual(code, 1, out)
            self.assertIn("not a CA certificate", out)
            self.assertIn(keep[0], out)
        finally:
            st.close()


if __name__ == "__main__":
    harness.main()
