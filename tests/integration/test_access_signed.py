#!/usr/bin/env python3
"""Signed URLs through the real daemon (access/SIGNED_URLS.md, [site.signed_urls]).

* scheme "upstream" (the default, no verifier): the attack of the issue — a signed request
  fills the cache, then an unsigned or forged request must not be served the stored copy —
  and what the upstream authorization costs (a HEAD: headers only).
* scheme "none": the old behaviour, documented as the opt-out.
* schemes verified offline (hmac, CloudFront canned/custom and cookies, nginx secure_link):
  good signatures are served (miss, then hit), bad ones get 403 from the daemon itself and
  never reach the origin; storecache_access_denied_total{reason="signature"} counts them.
* --check-config names a bad key file.

The origin's require_query option stands in for an origin that checks signatures itself.
Every test uses its own path, so the shared daemon's stored objects never meet.
"""

import base64
import hashlib
import os
import re
import subprocess
import sys
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import harness  # noqa: E402
from harness import SITE  # noqa: E402
from origin import gen_bytes  # noqa: E402

VECTORS = os.path.join(harness.REPO, "tests", "data", "signed_urls")
SIGN_URL = os.path.join(harness.REPO, "scripts", "sign-url")
K1 = os.path.join(VECTORS, "hmac_k1.secret")
K2 = os.path.join(VECTORS, "hmac_k2.secret")
RSA_PRIVATE = os.path.join(VECTORS, "rsa_private.pem")
RSA_PUBLIC = os.path.join(VECTORS, "rsa_public.pem")
EC_PRIVATE = os.path.join(VECTORS, "ec_private.pem")
EC_PUBLIC = os.path.join(VECTORS, "ec_public.pem")
REFUSED = "a valid signed URL is required"
FIELD = re.compile(r'([a-z_]+)=("(?:[^"\\]|\\.)*"|\S+)')

CACHE = {"default_ttl": "0s"}


def split_target(url):
    """https://host:port/path?query -> /path?query"""
    parts = urllib.parse.urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def read_secret(path):
    with open(path, "rb") as f:
        return f.read().rstrip(b"\r\n")


def cf_b64(data):
    """CloudFront-safe base64 ('+' -> '-', '=' -> '_', '/' -> '~')."""
    return base64.b64encode(data).decode().translate(str.maketrans("+=/", "-_~"))


def openssl_sign(key, digest, data):
    p = subprocess.run(["openssl", "dgst", f"-{digest}", "-sign", key, "-binary"], input=data,
                       capture_output=True, timeout=20, check=True)
    return p.stdout


def tamper(sig):
    """The same signature with its first character changed (still valid base64)."""
    return ("B" if sig[0] != "B" else "C") + sig[1:]


class SignedStackTest(harness.StackTest):
    """A stack with an access log; site_extra() gives the site's cache and signed_urls."""

    @classmethod
    def site_extra(cls):
        return {"cache": CACHE}

    overrides = {}

    @classmethod
    def setUpClass(cls):
        cls.stack = harness.Stack(overrides=cls.overrides, site_extra=cls.site_extra())
        cls.log_path = os.path.join(cls.stack.tmp, "access.log")
        cls.stack.config["log"] = {"access_log": cls.log_path}
        cls.stack.rewrite_config()
        try:
            cls.stack.start()
        except BaseException:
            cls.stack.close()
            raise

    def setUp(self):
        super().setUp()
        self.stack.origin.program("/gen/", cc="max-age=300", etag="v1")

    def tearDown(self):
        self.assertHealthy()

    def denied(self, reason):
        return self.metric("storecache_access_denied_total", site=SITE, reason=reason)

    def authorizations(self, outcome):
        return self.metric("storecache_upstream_authorizations_total", site=SITE,
                           outcome=outcome)

    def log_entries(self, path_prefix, want, timeout=5.0):
        """Access-log lines whose path starts with path_prefix, as {key: value} (values
        unquoted), once there are `want` of them; the raw line under "_line"."""
        def read():
            try:
                with open(self.log_path, "rb") as f:
                    text = f.read().decode("utf-8", "replace")
            except OSError:
                return []
            out = []
            for ln in text.splitlines():
                fields = {k: (v[1:-1] if v.startswith('"') else v)
                          for k, v in FIELD.findall(ln)}
                if fields.get("path", "").startswith(path_prefix):
                    fields["_line"] = ln
                    out.append(fields)
            return out
        entries = harness.poll(read, lambda x: len(x) >= want, timeout)
        self.assertGreaterEqual(len(entries), want, f"access log lacks {path_prefix}")
        return entries

    def assert_refused(self, target, reason=None, **kw):
        r = self.get(target, **kw)
        self.assertEqual(r.status, 403, (target, r))
        self.assertIn(REFUSED.encode(), r.body, r.body[:200])
        return r


# --- scheme "upstream" (the default): the issue's attack ------------------------------------


class UpstreamSchemeTest(SignedStackTest):
    """No [site.signed_urls]: the default scheme "upstream"."""

    overrides = {"timeouts": {"upstream_first_byte": "3s"}}

    def program_protected(self, name, size, **extra):
        # The origin serves the object only to a URL whose Signature is one it issued.
        self.stack.origin.program(f"/gen/{name}", size=size,
                                  require_query="Signature:good-1|good-2", **extra)

    def test_issue_attack_unsigned_and_forged_never_get_the_stored_copy(self):
        name = "page.html"
        size = 30000
        body = gen_bytes(name, size)
        self.program_protected(name, size)
        origin = self.stack.origin
        exp = int(time.time()) + 600
        denied0, allowed0, refused0 = (self.denied("upstream"), self.authorizations("allowed"),
                                       self.authorizations("denied"))

        # 1. the device with a valid signed URL: a miss, stored (keyed apart, as #signed)
        r = self.get(f"/gen/{name}?Expires={exp}&Signature=good-1&Key-Pair-Id=K1")
        self.assertEqual((r.status, r.body), (200, body), r)
        self.assertIn("stored", self.cs(r), r.headers)
        self.assertEqual([e["method"] for e in origin.requests(f"/gen/{name}")], ["GET"])

        # 2. the attack: the same path without a query must not be the stored body
        r = self.get(f"/gen/{name}")
        self.assertEqual(r.status, 403, r)
        self.assertEqual(r.body, b"forbidden: require_query Signature\n")
        self.assertNotIn("hit", self.cs(r), r.headers)
        self.assertEqual([e["method"] for e in origin.requests(f"/gen/{name}")],
                         ["GET", "GET"], "the unsigned request must reach the origin")

        # 3. a forged signature: the HEAD is refused, the device's own GET is passed through
        r = self.get(f"/gen/{name}?Expires={exp}&Signature=forged&Key-Pair-Id=K1")
        self.assertEqual(r.status, 403, r)
        self.assertEqual(r.body, b"forbidden: require_query Signature\n")
        self.assertNotIn("hit", self.cs(r), r.headers)
        log = origin.requests(f"/gen/{name}")
        self.assertEqual([e["method"] for e in log], ["GET", "GET", "HEAD", "GET"])
        self.assertIn("Signature=forged", log[2]["target"])
        self.assertIn("Signature=forged", log[3]["target"], "not the device's own request")
        self.assertTrue(log[2].get("denied") and log[3].get("denied"))

        # 4. another valid signature: served from the cache after a HEAD (304: headers only)
        r = self.get(f"/gen/{name}?Expires={exp + 1}&Signature=good-2&Key-Pair-Id=K1")
        self.assertEqual((r.status, r.body), (200, body), r)
        self.assertIs(self.cs(r).get("hit"), True, r.headers)
        log = origin.requests(f"/gen/{name}")
        self.assertEqual([e["method"] for e in log], ["GET", "GET", "HEAD", "GET", "HEAD"])
        self.assertIn("Signature=good-2", log[4]["target"])
        head_fields = {k.lower(): v for k, v in log[4]["headers"]}
        self.assertEqual(head_fields.get("if-none-match"), '"v1"', log[4]["headers"])
        # what crossed the WAN: one body, the signed fill's; the authorization was headers only
        self.assertEqual(origin.sent_bytes(f"/gen/{name}"), size)
        self.assertEqual([e.get("sent", 0) for e in log], [size, 0, 0, 0, 0])

        self.assertEqual(self.wait_metric("storecache_access_denied_total",
                                          lambda v: v >= denied0 + 1, site=SITE,
                                          reason="upstream") - denied0, 1)
        self.assertEqual(self.authorizations("allowed") - allowed0, 1)
        self.assertEqual(self.authorizations("denied") - refused0, 1)
        entries = self.log_entries(f"/gen/{name}", 4)
        self.assertEqual([e["why"] for e in entries].count("denied: upstream"), 1, entries)
        self.assertFalse(any("good-1" in e["_line"] or "good-2" in e["_line"] for e in entries),
                         "a signature reached the access log")

    def test_unsigned_first_then_signed_are_separate_copies(self):
        # The other order: a public unsigned copy must not answer signed requests either way
        # (the keys differ), and the signed copy is fetched with the signed URL.
        name = "order-b"
        self.stack.origin.program(f"/gen/{name}", size=2000)
        r = self.get(f"/gen/{name}")
        self.assertEqual(r.status, 200, r)
        r = self.get(f"/gen/{name}?Signature=x&Expires=1")
        self.assertEqual(r.status, 200, r)
        self.assertNotIn("hit", self.cs(r), r.headers)
        r = self.get(f"/gen/{name}")
        self.assertIs(self.cs(r).get("hit"), True, r.headers)
        self.assertEqual([e["target"] for e in self.stack.origin.requests(f"/gen/{name}")],
                         [f"/gen/{name}", f"/gen/{name}?Signature=x&Expires=1"])

    def test_forged_joining_a_running_fill_is_authorized_first(self):
        # A fill led by a valid signed request, still streaming: a forged request that would
        # join it is asked about first, and gets the origin's 403, not the bytes.
        name = "fill-join"
        size = 1 << 20
        self.program_protected(name, size, rate=1 << 20)  # ~1 s of body
        origin = self.stack.origin
        results = {}
        t = threading.Thread(target=lambda: results.setdefault(
            "lead", self.stack.curl(f"/gen/{name}?Signature=good-1")))
        t.start()
        try:
            sent = harness.poll(lambda: origin.sent_bytes(f"/gen/{name}"),
                                lambda v: v > 0, 5)
            self.assertGreater(sent, 0, "the fill did not start")
            r = self.get(f"/gen/{name}?Signature=forged")
            self.assertEqual(r.status, 403, r)
            self.assertEqual(r.body, b"forbidden: require_query Signature\n")
            self.assertLess(origin.sent_bytes(f"/gen/{name}"), size,
                            "the fill ended before the forged request: the test proves nothing")
            r2 = self.get(f"/gen/{name}?Signature=good-2")
            self.assertEqual((r2.status, len(r2.body)), (200, size), r2)
        finally:
            t.join(30)
        self.assertEqual(results["lead"].status, 200, results["lead"])
        self.assertEqual(results["lead"].body, gen_bytes(name, size))
        methods = [(e["method"], "forged" in e["target"]) for e in origin.requests(f"/gen/{name}")]
        self.assertEqual(methods.count(("GET", False)), 1, methods)
        self.assertIn(("HEAD", True), methods)
        self.assertIn(("HEAD", False), methods)  # good-2 was asked about too
        self.assertEqual(origin.sent_bytes(f"/gen/{name}"), size)

    def test_origin_down_for_a_signed_hit_fails_closed(self):
        # The HEAD gets no answer (the origin holds it silently; timeouts.upstream_first_byte
        # is 3 s here): 504, never the stored body.
        name = "down"
        size = 5000
        self.program_protected(name, size)
        r = self.get(f"/gen/{name}?Signature=good-1")
        self.assertEqual(r.status, 200)
        self.stack.origin.program(f"/gen/{name}", silent=1)  # never answers
        t0 = time.monotonic()
        r = self.get(f"/gen/{name}?Signature=good-2", timeout=60)
        self.assertIn(r.status, (502, 504), r)
        self.assertNotEqual(r.body, gen_bytes(name, size))
        self.assertLess(time.monotonic() - t0, 20)
        self.assertEqual([e["method"] for e in self.stack.origin.requests(f"/gen/{name}")],
                         ["GET", "HEAD"])


# --- scheme "none": the opt-out -------------------------------------------------------------


class AuthorizationBurstTest(SignedStackTest):
    """A device that sends many signed requests at once on one connection gets no more upstream
    authorizations at a time than it could have cold misses (limits.misses_per_connection)."""

    overrides = {"limits": {"misses_per_connection": 2}, "timeouts": {"upstream_queue": "10s"}}

    def test_authorizations_of_one_connection_wait_their_turn(self):
        name = "authz-burst"
        signed = lambda sig: f"/gen/{name}?Expires=1&Signature={sig}&Key-Pair-Id=K"
        self.assertEqual(self.get(signed("first")).status, 200)   # stored under the signed key
        self.stack.origin.reset()   # (clears the programs too)
        self.stack.origin.program(f"/gen/{name}", cc="max-age=300", etag="v1", delay=0.3)
        t0 = time.monotonic()
        urls = [self.stack.url(signed(f"s{i}")) for i in range(6)]
        code, infos = harness.curl_many(urls, ca=self.stack.ca, resolve=self.stack.resolve(),
                                        http2=True, parallel=True, timeout=60)
        self.assertEqual(code, 0)
        self.assertEqual([i["response_code"] for i in infos], [200] * 6)
        log = self.stack.origin.requests(f"/gen/{name}")
        self.assertEqual([e["method"] for e in log], ["HEAD"] * 6)   # each one authorized
        self.assertLessEqual(self.stack.origin.max_active, 2)
        self.assertGreaterEqual(self.stack.origin.max_active, 2, "the cap was never reached")
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)   # 6 HEADs of 0.3 s, 2 at a time


class NoneSchemeTest(SignedStackTest):
    @classmethod
    def site_extra(cls):
        return {"cache": CACHE, "signed_urls": {"scheme": "none"}}

    def test_stored_copy_serves_unsigned_requests(self):
        # The old behaviour, on purpose: the signature is just a dropped query parameter.
        name = "none-page"
        self.stack.origin.program(f"/gen/{name}", size=3000, require_query="Signature:good")
        r = self.get(f"/gen/{name}?Expires=2000000000&Signature=good&Key-Pair-Id=K1")
        self.assertEqual(r.status, 200, r)
        for target in (f"/gen/{name}", f"/gen/{name}?Signature=forged"):
            r = self.get(target)
            self.assertEqual((r.status, r.body), (200, gen_bytes(name, 3000)), r)
            self.assertIs(self.cs(r).get("hit"), True, r.headers)
        self.assertEqual([e["method"] for e in self.stack.origin.requests(f"/gen/{name}")],
                         ["GET"])


# --- hmac ------------------------------------------------------------------------------------


class HmacSchemeTest(SignedStackTest):
    @classmethod
    def site_extra(cls):
        return {"cache": CACHE,
                "signed_urls": {"scheme": "hmac", "paths": ["/gen/sig-*"],
                                "key": [{"id": "k1", "secret_file": K1}]}}

    def sign(self, path, key_file=K1, kid="k1", lifetime=600, expires=None, extra=()):
        cmd = [SIGN_URL, "hmac", f"https://{SITE}:{self.stack.port}{path}",
               "--secret-file", key_file, "--key-id", kid]
        cmd += ["--expires", str(expires)] if expires is not None else ["--lifetime",
                                                                         str(lifetime)]
        p = subprocess.run(cmd + list(extra), capture_output=True, text=True, timeout=20)
        self.assertEqual(p.returncode, 0, p.stderr)
        return split_target(p.stdout.strip())

    def check_valid(self, name, http2):
        size = 40000
        self.stack.origin.program(f"/gen/{name}", size=size)
        target = self.sign(f"/gen/{name}?lang=en")
        r1 = self.get(target, http2=http2)
        self.assertEqual((r1.status, r1.body), (200, gen_bytes(name, size)), r1)
        self.assertEqual(r1.http_version, "2" if http2 else "1.1")
        self.assertNotIn("hit", self.cs(r1), r1.headers)
        r2 = self.get(target, http2=http2)
        self.assertEqual((r2.status, r2.body), (200, gen_bytes(name, size)), r2)
        self.assertIs(self.cs(r2).get("hit"), True, r2.headers)
        # another signature for the same URL (a rotation): the same stored copy
        r3 = self.get(self.sign(f"/gen/{name}?lang=en", lifetime=900), http2=http2)
        self.assertIs(self.cs(r3).get("hit"), True, r3.headers)
        log = self.stack.origin.requests(f"/gen/{name}")
        self.assertEqual([e["method"] for e in log], ["GET"])
        self.assertIn("sc_sig=", log[0]["target"], "the origin gets the URL as signed")

    def test_valid_miss_then_hit_h1(self):
        self.check_valid("sig-valid-h1", http2=False)

    def test_valid_miss_then_hit_h2(self):
        self.check_valid("sig-valid-h2", http2=True)

    def bad_targets(self, name):
        good = self.sign(f"/gen/{name}?lang=en")
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(good).query)
        sig = q["sc_sig"][0]
        return {
            "missing": (f"/gen/{name}?lang=en", "missing"),
            "forged": (good.replace(sig, tamper(sig)), "forged"),
            "expired": (self.sign(f"/gen/{name}?lang=en", expires=int(time.time()) - 3600),
                        "expired"),
            "wrong-secret": (self.sign(f"/gen/{name}?lang=en", key_file=K2), "forged"),
            "unknown-kid": (self.sign(f"/gen/{name}?lang=en", key_file=K2, kid="k2"),
                            "unknown_key"),
            "other-query": (good.replace("lang=en", "lang=fr"), "forged"),
            "other-path": (good.replace(name, name + "x"), "forged"),
            "twice": (good + "&sc_sig=" + sig, "malformed"),
        }

    def check_bad(self, name, http2):
        self.stack.origin.program(f"/gen/{name}", size=1000)
        self.stack.origin.program(f"/gen/{name}x", size=1000)
        # the good one first, so that a stored copy exists: the bad ones must not get it
        good = self.sign(f"/gen/{name}?lang=en")
        self.assertEqual(self.get(good, http2=http2).status, 200)
        before = self.denied("signature")
        cases = self.bad_targets(name)
        for label, (target, _) in cases.items():
            with self.subTest(label):
                r = self.assert_refused(target, http2=http2)
                self.assertEqual(r.header("cache-control"), "no-store")
                self.assertNotEqual(r.body, gen_bytes(name, 1000))
        self.assertEqual(len(self.stack.origin.requests(f"/gen/{name}")), 1,
                         "a refused request reached the origin")
        self.assertEqual(self.denied("signature") - before, len(cases))
        entries = self.log_entries(f"/gen/{name}", 1 + len(cases))
        whys = sorted(e["why"] for e in entries if e["status"] == "403")
        self.assertEqual(whys, sorted(f"denied: signature {w}" for _, w in cases.values()),
                         [e["_line"] for e in entries])
        self.assertFalse(any("sc_sig" in e["_line"] for e in entries),
                         "a signature reached the log")

    def test_bad_signatures_refused_before_the_cache_h1(self):
        self.check_bad("sig-bad-h1", http2=False)

    def test_bad_signatures_refused_before_the_cache_h2(self):
        self.check_bad("sig-bad-h2", http2=True)

    def test_head_with_forged_signature_refused(self):
        name = "sig-head"
        self.stack.origin.program(f"/gen/{name}", size=1000)
        good = self.sign(f"/gen/{name}")
        self.get(good)
        sig = urllib.parse.parse_qs(urllib.parse.urlsplit(good).query)["sc_sig"][0]
        r = self.get(good.replace(sig, tamper(sig)), method="HEAD")
        self.assertEqual(r.status, 403, r)
        self.assertIsNone(r.header("etag"), r.headers)
        self.assertEqual(self.stack.origin.count(f"/gen/{name}"), 1)

    def check_flood(self, name, http2, n=200):
        self.stack.origin.program(f"/gen/{name}", size=1000)
        good = self.sign(f"/gen/{name}")
        self.assertEqual(self.get(good).status, 200)
        sig = urllib.parse.parse_qs(urllib.parse.urlsplit(good).query)["sc_sig"][0]
        before = self.denied("signature")
        # each forged signature distinct, as a scanner would send them
        targets = [good.replace(sig, f"A{i:05d}" + sig[6:]) for i in range(n)]
        t0 = time.monotonic()
        code, infos = self.stack.curl_many(targets, http2=http2, timeout=60)
        took = time.monotonic() - t0
        self.assertEqual(len(infos), n, code)
        self.assertEqual([i["response_code"] for i in infos], [403] * n)
        self.assertEqual(self.stack.origin.count(f"/gen/{name}"), 1,
                         "forged requests reached the origin")
        self.assertEqual(self.denied("signature") - before, n)
        self.assertLess(took, 60)
        return took

    def test_flood_of_forged_requests_costs_no_origin_request_h1(self):
        self.check_flood("sig-flood-h1", http2=False)

    def test_flood_of_forged_requests_costs_no_origin_request_h2(self):
        self.check_flood("sig-flood-h2", http2=True)

    def test_paths_outside_the_signed_globs_stay_open(self):
        name = "open-page"
        self.stack.origin.program(f"/gen/{name}", size=500)
        r = self.get(f"/gen/{name}")
        self.assertEqual((r.status, r.body), (200, gen_bytes(name, 500)), r)

    def test_scope_signs_a_folder(self):
        # prefix mode: one signature for a course folder, query not covered
        self.stack.origin.program("/gen/sig-course/", size=700)
        a = self.sign("/gen/sig-course/a.ts", extra=["--scope", "/gen/sig-course/"])
        q = urllib.parse.urlsplit(a).query
        r = self.get(f"/gen/sig-course/b.ts?{q}")
        self.assertEqual((r.status, r.body), (200, gen_bytes("sig-course/b.ts", 700)), r)
        self.assert_refused(f"/gen/sig-courses/b.ts?{q}")
        self.assertEqual(self.stack.origin.count("/gen/sig-courses"), 0)


# --- CloudFront canned and custom policies, signed cookies -----------------------------------


class CloudFrontSchemeTest(SignedStackTest):
    @classmethod
    def site_extra(cls):
        return {"cache": CACHE,
                "signed_urls": {"scheme": "cloudfront",
                                "key": [{"id": "KRSATEST", "public_key": RSA_PUBLIC},
                                        {"id": "KECTEST", "public_key": EC_PUBLIC}]}}

    def canned(self, path_query, expires=None, key=RSA_PRIVATE, kid="KRSATEST", sha256=False,
               resource_host=SITE):
        """path_query signed as CloudFront does: the resource is https://host/path?query."""
        expires = expires if expires is not None else int(time.time()) + 600
        resource = f"https://{resource_host}{path_query}"
        policy = ('{"Statement":[{"Resource":"%s","Condition":{"DateLessThan":'
                  '{"AWS:EpochTime":%d}}}]}' % (resource, expires))
        sig = cf_b64(openssl_sign(key, "sha256" if sha256 else "sha1", policy.encode()))
        sep = "&" if "?" in path_query else "?"
        extra = "&Hash-Algorithm=SHA256" if sha256 else ""
        return f"{path_query}{sep}Expires={expires}&Signature={sig}&Key-Pair-Id={kid}{extra}"

    def test_canned_rsa_sha1_valid_then_hit(self):
        name = "cf-canned"
        self.stack.origin.program(f"/gen/{name}", size=8000)
        target = self.canned(f"/gen/{name}?lang=en")
        r1 = self.get(target)
        self.assertEqual((r1.status, r1.body), (200, gen_bytes(name, 8000)), r1)
        r2 = self.get(self.canned(f"/gen/{name}?lang=en", expires=int(time.time()) + 900),
                      http2=True)
        self.assertEqual((r2.status, r2.body), (200, gen_bytes(name, 8000)), r2)
        self.assertIs(self.cs(r2).get("hit"), True, r2.headers)
        self.assertEqual(self.stack.origin.count(f"/gen/{name}"), 1)

    def test_canned_ecdsa_sha256(self):
        name = "cf-ec"
        self.stack.origin.program(f"/gen/{name}", size=800)
        r = self.get(self.canned(f"/gen/{name}", key=EC_PRIVATE, kid="KECTEST", sha256=True))
        self.assertEqual(r.status, 200, r)

    def test_resource_is_host_without_port(self):
        # The device reached us on an ephemeral port; the signed resource names the host only,
        # as CloudFront's own URLs do. A resource with the port is another URL: refused.
        name = "cf-port"
        self.stack.origin.program(f"/gen/{name}", size=800)
        self.assertEqual(self.get(self.canned(f"/gen/{name}")).status, 200)
        self.assert_refused(self.canned(f"/gen/{name}",
                                        resource_host=f"{SITE}:{self.stack.port}"))

    def test_bad_canned_signatures_refused(self):
        name = "cf-bad"
        self.stack.origin.program(f"/gen/{name}", size=800)
        good = self.canned(f"/gen/{name}?lang=en")
        self.assertEqual(self.get(good).status, 200)
        sig = urllib.parse.parse_qs(urllib.parse.urlsplit(good).query)["Signature"][0]
        before = self.denied("signature")
        bad = {
            "missing": f"/gen/{name}?lang=en",
            "forged": good.replace(sig, tamper(sig)),
            "other-query": good.replace("lang=en", "lang=fr"),
            "expired": self.canned(f"/gen/{name}?lang=en", expires=int(time.time()) - 3600),
            "unknown-key": good.replace("KRSATEST", "KNOPE"),
            "wrong-key": self.canned(f"/gen/{name}?lang=en", key=EC_PRIVATE),
            "other-host": self.canned(f"/gen/{name}?lang=en", resource_host="evil.example.com"),
            "longer-expiry": good.replace("Expires=", "Expires=9"),
        }
        for label, target in bad.items():
            with self.subTest(label):
                self.assert_refused(target)
        self.assertEqual(self.stack.origin.count(f"/gen/{name}"), 1)
        self.assertEqual(self.denied("signature") - before, len(bad))

    def test_custom_policy_with_wildcard(self):
        name = "cf-custom"
        self.stack.origin.program(f"/gen/{name}/", size=600)
        policy = ('{"Statement":[{"Resource":"https://%s/gen/%s/*","Condition":{"DateLessThan":'
                  '{"AWS:EpochTime":%d}}}]}' % (SITE, name, int(time.time()) + 600)).encode()
        q = (f"Policy={cf_b64(policy)}&Signature={cf_b64(openssl_sign(RSA_PRIVATE, 'sha1', policy))}"
             f"&Key-Pair-Id=KRSATEST")
        for leaf in ("a.ts", "b.ts"):
            r = self.get(f"/gen/{name}/{leaf}?{q}")
            self.assertEqual((r.status, r.body), (200, gen_bytes(f"{name}/{leaf}", 600)), r)
        self.assert_refused(f"/gen/{name}-other/a.ts?{q}")  # wrong_resource

    def test_signed_cookies(self):
        name = "cf-cookie"
        self.stack.origin.program(f"/gen/{name}", size=600)
        target = self.canned(f"/gen/{name}")
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(target).query)
        cookie = "; ".join(f"CloudFront-{k}={q[k][0]}" for k in ("Expires", "Signature",
                                                                  "Key-Pair-Id"))
        r = self.get(f"/gen/{name}", headers=[f"Cookie: {cookie}"])
        self.assertEqual((r.status, r.body), (200, gen_bytes(name, 600)), r)
        sig = q["Signature"][0]
        self.assert_refused(f"/gen/{name}",
                            headers=[f"Cookie: {cookie.replace(sig, tamper(sig))}"])
        self.assert_refused(f"/gen/{name}")


# --- nginx secure_link ------------------------------------------------------------------------


class SecureLinkSchemeTest(SignedStackTest):
    TEMPLATE = "$secure_link_expires$uri$remote_addr $secret"

    @classmethod
    def site_extra(cls):
        return {"cache": CACHE,
                "signed_urls": {"scheme": "secure_link", "secret_file": K1,
                                "secure_link_md5": cls.TEMPLATE, "paths": ["/gen/*"]}}

    def link(self, path, expires=None, ip="127.0.0.1", secret=None):
        expires = expires if expires is not None else int(time.time()) + 600
        secret = secret if secret is not None else read_secret(K1)
        text = (str(expires).encode() + urllib.parse.unquote_to_bytes(path) + ip.encode() +
                b" " + secret)
        md5 = base64.urlsafe_b64encode(hashlib.md5(text).digest()).decode().rstrip("=")
        return f"{path}?md5={md5}&expires={expires}"

    def test_valid_then_hit_and_tampered_refused(self):
        name = "sl-page"
        self.stack.origin.program(f"/gen/{name}", size=900)
        r = self.get(self.link(f"/gen/{name}"))
        self.assertEqual((r.status, r.body), (200, gen_bytes(name, 900)), r)
        r = self.get(self.link(f"/gen/{name}", expires=int(time.time()) + 700))
        self.assertIs(self.cs(r).get("hit"), True, r.headers)
        before = self.denied("signature")
        good = self.link(f"/gen/{name}")
        bad = [
            good.replace("expires=", "expires=1"),                        # extended expiry
            self.link(f"/gen/{name}", ip="10.9.9.9"),                     # another device's
            self.link(f"/gen/{name}", secret=b"not-the-secret-at-all"),   # wrong secret
            self.link(f"/gen/{name}", expires=int(time.time()) - 3600),   # expired
            f"/gen/{name}",                                               # missing
            self.link(f"/gen/{name}x"),                                   # another path's
        ]
        for target in bad:
            with self.subTest(target):
                self.assert_refused(target.replace(f"{name}x?", f"{name}?"))
        self.assertEqual(self.stack.origin.count(f"/gen/{name}"), 1)
        self.assertEqual(self.denied("signature") - before, len(bad))


# --- --check-config ---------------------------------------------------------------------------


class CheckConfigTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = harness.Stack()  # not started: only its config is used

    @classmethod
    def tearDownClass(cls):
        cls.stack.close()

    def check(self, signed_urls):
        self.stack.config["site"][0]["signed_urls"] = signed_urls
        self.stack.rewrite_config()
        return harness.check_config(self.stack.config_path)

    def test_good_keys_pass(self):
        code, out = self.check({"scheme": "cloudfront",
                                "key": [{"id": "K1", "public_key": RSA_PUBLIC}]})
        self.assertEqual(code, 0, out)
        code, out = self.check({"scheme": "hmac", "key": [{"id": "k1", "secret_file": K1}]})
        self.assertEqual(code, 0, out)

    def test_says_what_each_scheme_does(self):
        # The default: signature parameters are dropped from the key and nothing verifies
        # them, so --check-config says that each signed request is authorized upstream.
        code, out = self.check({})
        self.assertEqual(code, 0, out)
        self.assertIn("signed URLs: not verified here; a request carrying Expires, Signature", out)
        self.assertIn("authorized by the upstream first", out)
        code, out = self.check({"scheme": "none"})
        self.assertEqual(code, 0, out)
        self.assertIn("a stored copy is served to every device", out)
        self.assertIn("WARNING", out)
        code, out = self.check({"scheme": "hmac", "key": [{"id": "k1", "secret_file": K1}]})
        self.assertEqual(code, 0, out)
        self.assertIn("signed URLs: hmac, verified here on * (1 key(s), clock skew 30s)", out)
        self.assertNotIn(read_secret(K1).decode(), out, "a secret was printed")

    def test_bad_key_files_are_named(self):
        cases = [
            ({"scheme": "cloudfront", "key": [{"id": "K1", "public_key": f}]}, f, why)
            for f, why in ((os.path.join(VECTORS, "garbage.pem"), "not a PEM public key"),
                           (RSA_PRIVATE, "private key"),
                           (os.path.join(VECTORS, "rsa1024_public.pem"), "2048"),
                           (os.path.join(VECTORS, "ec384_public.pem"), "P-256"),
                           (os.path.join(VECTORS, "ed25519_public.pem"), "key type"))]
        short = os.path.join(VECTORS, "hmac_short.secret")
        cases.append(({"scheme": "hmac", "key": [{"id": "k1", "secret_file": short}]}, short,
                      "16"))
        cases.append(({"scheme": "secure_link", "secret_file": short,
                       "secure_link_md5": "$secure_link_expires$uri $secret"}, short, "16"))
        missing = os.path.join(self.stack.tmp, "no-such.pem")
        cases.append(({"scheme": "cloudfront", "key": [{"id": "K1", "public_key": missing}]},
                      missing, ""))
        for signed, path, why in cases:
            with self.subTest(path=os.path.basename(path), why=why):
                code, out = self.check(signed)
                self.assertNotEqual(code, 0, out)
                self.assertIn(path, out)
                self.assertIn(why, out)
                self.assertNotIn(read_secret(short).decode(), out, "a secret was printed")


if __name__ == "__main__":
    harness.main()
