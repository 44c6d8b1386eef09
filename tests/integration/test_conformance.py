#!/usr/bin/env python3
"""RFC conformance of the cache and upstream path (issue 11), with the real daemon, the real
test origin and real clients (curl, nghttp, raw TLS sockets):

  - an Expires that is not a valid HTTP-date is a time in the past (RFC 9111 §5.3), with or
    without Last-Modified (an invalid Expires is explicit expiration: no heuristic, §4.2.2);
  - any final status with explicit freshness is stored (§3), the heuristically cacheable ones
    (RFC 9110 §15.1) when heuristics apply; a stored 204 or 404 is served right on h1 and h2;
  - interim responses (103 Early Hints, 102) reach the device that asked, on HTTP/1.1 and
    HTTP/2, and are never stored; 100 and 101 are not passed on; an endless run of them is a 502.

Each test uses its own URL; the origin's request log (cleared before each test) says what
reached the origin."""

import os
import re
import sys
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import harness  # noqa: E402
from origin import gen_bytes  # noqa: E402


def q(*pairs, **params):
    """A query string; pairs for repeated keys."""
    return urllib.parse.urlencode(list(pairs) + list(params.items()))


# Expires values the HTTP-date grammar (RFC 9110 §5.6.7) excludes, each far in the future if
# read leniently. The issue's own findings first.
INVALID_EXPIRES = [
    "Thu, 01 Jan 2099 2:01:18 GMT",        # one-digit hour
    "Thu,  01  Jan  2099  00:00:00  GMT",  # several spaces between the fields
    "Thu, 1 Jan 2099 00:00:00 GMT",        # one-digit day
    "Thu, 01 Jan 2099 00:0:00 GMT",        # one-digit minute
    "Thu, 01 Jan 2099 00:00:0 GMT",        # one-digit second
    "Xyz, 01 Jan 2099 00:00:00 GMT",       # no such day
    "Thu, 01 Foo 2099 00:00:00 GMT",       # no such month
    "Thu, 01 Jan 2099 00:00:00 UTC",       # zone other than GMT
    "Thu, 01 Jan 2099 00:00:00",           # no zone
    "Thu, 01 Jan 2099 00:00:00 GMT junk",  # trailing junk
    "Thu, 31 Feb 2099 00:00:00 GMT",       # no such date
    "Thu, 01 Jan 2099 24:00:00 GMT",       # hour out of range
    "Thursday, 01-Jan-2099 00:00:00 GMT",  # rfc850 with a four-digit year
    "Thu Jan 1 00:00:00 2099",             # asctime with one space before a one-digit day
    "Thu Jan  1 0:00:00 2099",             # asctime with a one-digit hour
    "2099-01-01T00:00:00Z",                # ISO 8601
    "0",
]

VALID_EXPIRES = [
    "Thu, 01 Jan 2099 00:00:00 GMT",       # IMF-fixdate
    "Thursday, 01-Jan-43 00:00:00 GMT",    # rfc850 (2043)
    "Thu Jan  1 00:00:00 2099",            # asctime
    "thu, 01 jan 2099 00:00:00 gmt",       # names case-insensitively (RFC 9111 §4.2)
]


class ConformanceTest(harness.StackTest):
    # No site default TTL: freshness comes from the origin's fields alone.
    stack_args = {"site_extra": {"cache": {"default_ttl": "0s"}}}

    def tearDown(self):
        self.assertHealthy()

    def hits(self, name):
        return self.stack.origin.count(f"/gen/{name}")

    # --- Expires ---------------------------------------------------------------------------

    def expires_path(self, name, expires, last_modified):
        pairs = [("header", f"Expires:{expires}")]
        if last_modified:
            pairs.append(("lm", "Sat, 01 Jan 2000 00:00:00 GMT"))  # old: a long heuristic
        return f"/gen/{name}?" + q(*pairs, size=300)

    def check_expires(self, expires, last_modified, fresh, protocols=(False, True)):
        for i, http2 in enumerate(protocols):
            name = f"exp-{abs(hash((expires, last_modified)))}-{i}"
            path = self.expires_path(name, expires, last_modified)
            r1 = self.get(path, http2=http2)
            self.assertEqual((r1.status, r1.body), (200, gen_bytes(name, 300)), r1)
            # Until its commit is done the fill is still joined by a second request (a
            # collapsed read, also reported as a hit): wait for it to be stored first.
            self.wait_metric("storecache_cache_fills_in_flight", lambda v: v == 0)
            r2 = self.get(path, http2=http2)
            self.assertEqual((r2.status, r2.body), (200, gen_bytes(name, 300)), r2)
            cs = self.cs(r2)
            if fresh:
                self.assertIs(cs.get("hit"), True, (expires, r2.headers))
                self.assertEqual(self.hits(name), 1, expires)
            else:
                # Stale at once: the second request goes to the origin again.
                self.assertNotIn("hit", cs, (expires, last_modified, r2.headers))
                self.assertEqual(self.hits(name), 2, (expires, last_modified))

    # Freshness is decided once for both protocols: each form is tried on one of them, in turn
    # (the two findings on both), which keeps the test within its time budget.
    def test_invalid_expires_is_already_expired(self):
        for n, expires in enumerate(INVALID_EXPIRES):
            with self.subTest(expires=expires):
                self.check_expires(expires, last_modified=False, fresh=False,
                                   protocols=(False, True) if n < 2 else (n % 2 == 1,))

    def test_invalid_expires_with_last_modified_is_not_heuristically_fresh(self):
        # The Last-Modified alone would give a day of heuristic freshness (10% of 26 years,
        # capped at 24 h); the invalid Expires is explicit expiration in the past.
        for n, expires in enumerate(INVALID_EXPIRES):
            with self.subTest(expires=expires):
                self.check_expires(expires, last_modified=True, fresh=False,
                                   protocols=(False, True) if n < 2 else (n % 2 == 0,))

    def test_valid_expires_forms_are_fresh(self):
        for expires in VALID_EXPIRES:
            with self.subTest(expires=expires):
                self.check_expires(expires, last_modified=False, fresh=True)

    def test_last_modified_alone_is_heuristically_fresh(self):
        # The control for the test above: without Expires the same response is a hit.
        name = "lm-only"
        path = f"/gen/{name}?" + q(size=300, lm="Sat, 01 Jan 2000 00:00:00 GMT")
        self.get(path)
        r = self.get(path)
        self.assertIs(self.cs(r).get("hit"), True, r.headers)
        self.assertEqual(self.hits(name), 1)

    def test_if_modified_since_on_a_hit_with_an_invalid_date_is_ignored(self):
        # The same parser reads If-Modified-Since: an invalid one is ignored (RFC 9110
        # §13.1.3), so the device gets the 200, not a 304.
        name = "ims"
        path = f"/gen/{name}?" + q(size=300, cc="max-age=300", lm="Sat, 01 Jan 2000 00:00:00 GMT")
        self.get(path)
        for http2 in (False, True):
            ok = self.get(path, http2=http2,
                          headers=["If-Modified-Since: Sun, 01 Jan 2090 00:00:00 GMT"])
            self.assertEqual(ok.status, 304, ok)
            bad = self.get(path, http2=http2,
                           headers=["If-Modified-Since: Sun, 01 Jan 2090 0:00:00 GMT"])
            self.assertEqual((bad.status, bad.body), (200, gen_bytes(name, 300)), bad)
        self.assertEqual(self.hits(name), 1)

    # --- cacheable statuses ----------------------------------------------------------------

    def check_stored(self, name, status, query, body_expected=True):
        path = f"/gen/{name}?" + query
        for http2 in (False, True):
            r = self.get(path, http2=http2)
            self.assertEqual(r.status, status, r)
            if body_expected:
                self.assertEqual(r.body, gen_bytes(name, 100), r)
        self.assertEqual(self.hits(name), 1, f"{status} was not stored")
        cs = self.cs(r)
        self.assertIs(cs.get("hit"), True, r.headers)
        return r

    def test_unknown_and_error_statuses_with_max_age_are_stored(self):
        for status in (299, 418, 451, 599, 500, 503):
            with self.subTest(status=status):
                self.check_stored(f"st-{status}", status, q(size=100, status=status,
                                                            cc="max-age=300"))

    def test_status_with_expires_is_stored(self):
        self.check_stored("st-599-exp", 599,
                          q(size=100, status=599, header="Expires:Thu, 01 Jan 2099 00:00:00 GMT"))

    def test_204_with_max_age_is_stored_and_served_without_a_body(self):
        name = "st-204"
        path = f"/gen/{name}?" + q(size=100, status=204, cc="max-age=300")
        first = self.get(path)
        self.assertEqual((first.status, first.body), (204, b""), first)
        for http2 in (False, True):
            r = self.get(path, http2=http2)
            self.assertEqual((r.status, r.body), (204, b""), r)
            self.assertIs(self.cs(r).get("hit"), True, r.headers)
            # RFC 9110 §8.6: no Content-Length on a 204, no Transfer-Encoding either.
            self.assertIsNone(r.header("content-length"), r.headers)
            self.assertIsNone(r.header("transfer-encoding"), r.headers)
        self.assertEqual(self.hits(name), 1)
        # HTTP/1.1 framing, byte for byte: the head ends the response, the connection is
        # reused for a second request on the same socket.
        with harness.tls_socket(self.stack.port, harness.SITE, self.stack.ca) as s:
            req = (f"GET {path} HTTP/1.1\r\nHost: {harness.SITE}\r\n\r\n").encode()
            for _ in range(2):
                s.sendall(req)
                resp = harness.read_response(s)
                self.assertEqual(resp.status, 204, resp)
                self.assertIsNone(resp.header("content-length"), resp)
                self.assertIsNone(resp.header("transfer-encoding"), resp)
            s.sendall(f"GET /gen/after-204?size=7 HTTP/1.1\r\nHost: {harness.SITE}\r\n\r\n"
                      .encode())
            after = harness.read_response(s)
            self.assertEqual((after.status, after.body), (200, gen_bytes("after-204", 7)), after)
        # HEAD on the stored 204.
        head = self.stack.curl(path, method="HEAD")
        self.assertEqual(head.status, 204, head)
        self.assertEqual(self.hits(name), 1)

    def test_204_hit_over_http2_with_nghttp(self):
        name = "st-204-ng"
        path = f"/gen/{name}?" + q(size=100, status=204, cc="max-age=300")
        self.get(path)
        code, out, err = harness.nghttp(f"https://127.0.0.1:{self.stack.port}{path}",
                                        authority=harness.SITE, extra=["-v"])
        self.assertEqual(code, 0, err)
        text = out.decode("latin-1")
        self.assertIn(":status: 204", text)
        self.assertNotIn("content-length", text.lower().split(":status: 204", 1)[1])
        self.assertEqual(self.hits(name), 1)

    def test_heuristically_cacheable_404_with_last_modified_is_stored(self):
        r = self.check_stored("st-404-lm", 404,
                              q(size=100, status=404, lm="Sat, 01 Jan 2000 00:00:00 GMT"))
        self.assertIsNone(r.header("accept-ranges"), r.headers)

    def test_range_on_a_stored_404_gets_the_404(self):
        name = "st-404-range"
        path = f"/gen/{name}?" + q(size=100, status=404, cc="max-age=300")
        self.get(path)
        for http2 in (False, True):
            r = self.get(path, http2=http2, headers=["Range: bytes=10-19"])
            self.assertEqual((r.status, r.body), (404, gen_bytes(name, 100)), r)
            self.assertIsNone(r.header("content-range"), r.headers)
            self.assertIs(self.cs(r).get("hit"), True, r.headers)
            tail = self.get(path, http2=http2, headers=["Range: bytes=1000-"])  # past the end
            self.assertEqual(tail.status, 404, tail)
        self.assertEqual(self.hits(name), 1)

    def test_error_without_freshness_is_not_stored(self):
        name = "st-500-none"
        path = f"/gen/{name}?" + q(size=100, status=500, lm="Sat, 01 Jan 2000 00:00:00 GMT")
        for _ in range(2):
            r = self.get(path)
            self.assertEqual(r.status, 500, r)
        self.assertEqual(self.hits(name), 2)

    def test_unknown_status_reason_phrase_on_http1(self):
        name = "st-299-raw"
        path = f"/gen/{name}?" + q(size=10, status=299, cc="max-age=300")
        with harness.tls_socket(self.stack.port, harness.SITE, self.stack.ca) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {harness.SITE}\r\n\r\n".encode())
            s.settimeout(5)
            data = b""
            while b"\r\n" not in data:
                data += s.recv(4096)
        line = data.split(b"\r\n", 1)[0]
        self.assertRegex(line, rb"^HTTP/1\.1 299 ?$")  # no "<unknown-status>"

    # --- interim responses -----------------------------------------------------------------

    EARLY_HINTS = [("interim", "103"), ("interim_header", "Link:</style.css>; rel=preload")]

    def read_raw_h1(self, path, version="HTTP/1.1"):
        """Sends GET path; returns every response head before the final one, and the final
        response."""
        with harness.tls_socket(self.stack.port, harness.SITE, self.stack.ca, timeout=10) as s:
            s.sendall(f"GET {path} {version}\r\nHost: {harness.SITE}\r\n\r\n".encode())
            interim = []
            while True:
                r = harness.read_response(s)
                self.assertIsNotNone(r, "closed before the final response")
                if r.status >= 200:
                    return interim, r
                interim.append(r)

    def test_early_hints_reach_an_http1_device_and_are_not_stored(self):
        name = "eh-h1"
        path = f"/gen/{name}?" + q(*self.EARLY_HINTS, size=500, cc="max-age=300")
        interim, final = self.read_raw_h1(path)
        self.assertEqual([r.status for r in interim], [103])
        self.assertEqual(interim[0].header("link"), "</style.css>; rel=preload")
        self.assertEqual((final.status, final.body), (200, gen_bytes(name, 500)), final)
        self.assertIsNone(final.header("link"), final.headers)  # not folded into the final
        # The hit: no 103 (the origin is not asked), and nothing of it in the stored copy.
        interim, hit = self.read_raw_h1(path)
        self.assertEqual(interim, [])
        self.assertEqual((hit.status, hit.body), (200, gen_bytes(name, 500)), hit)
        self.assertIsNone(hit.header("link"), hit.headers)
        self.assertIn("hit", hit.header("cache-status"))
        self.assertEqual(self.hits(name), 1)

    def test_early_hints_with_curl(self):
        name = "eh-curl"
        path = f"/gen/{name}?" + q(*self.EARLY_HINTS, size=50, cc="no-store")
        for http2 in (False, True):
            r = self.stack.curl(path, http2=http2, extra=["-v"])
            self.assertEqual((r.exit, r.status), (0, 200), r)
            self.assertRegex(r.stderr, r"< HTTP/(1\.1|2) 103", r.stderr[-2000:])
            self.assertRegex(r.stderr, r"(?i)< link: </style.css>; rel=preload")

    def test_early_hints_reach_an_http2_device_and_are_not_stored(self):
        name = "eh-h2"
        path = f"/gen/{name}?" + q(*self.EARLY_HINTS, size=500, cc="max-age=300")
        url = f"https://127.0.0.1:{self.stack.port}{path}"
        code, out, err = harness.nghttp(url, authority=harness.SITE, extra=["-v"])
        self.assertEqual(code, 0, err)
        text = out.decode("latin-1")
        statuses = re.findall(r":status: (\d+)", text)
        self.assertEqual(statuses, ["103", "200"], text[-3000:])
        between = text.split(":status: 103", 1)[1].split(":status: 200", 1)[0]
        self.assertIn("link: </style.css>; rel=preload", between)
        code, out, err = harness.nghttp(url, authority=harness.SITE, extra=["-v"])
        self.assertEqual(code, 0, err)
        text = out.decode("latin-1")
        self.assertEqual(re.findall(r":status: (\d+)", text), ["200"], text[-3000:])
        self.assertNotIn("link:", text)
        self.assertEqual(self.hits(name), 1)

    def test_interim_responses_on_pass_through(self):
        # A request that is not cached (POST) gets them too; 102 and 103 in order, 100 is not
        # passed on (our front end answers the device's own Expect: 100-continue).
        path = "/echo?" + q(("interim", "100"), ("interim", "102"), *self.EARLY_HINTS)
        with harness.tls_socket(self.stack.port, harness.SITE, self.stack.ca, timeout=10) as s:
            s.sendall(f"POST {path} HTTP/1.1\r\nHost: {harness.SITE}\r\nContent-Length: 3\r\n"
                      "\r\nabc".encode())
            heads = []
            while True:
                r = harness.read_response(s)
                heads.append(r.status)
                if r.status >= 200:
                    break
        self.assertEqual(heads, [102, 103, 200])

    def test_one_100_continue_for_a_device_that_expects_it(self):
        # The front end answers the device's Expect: 100-continue (Expect is not forwarded);
        # a 100 the upstream sends anyway (&interim=100) is not passed on as a second one.
        path = "/echo?" + q(("interim", "100"), *self.EARLY_HINTS)
        with harness.tls_socket(self.stack.port, harness.SITE, self.stack.ca, timeout=10) as s:
            s.sendall(f"POST {path} HTTP/1.1\r\nHost: {harness.SITE}\r\nContent-Length: 3\r\n"
                      "Expect: 100-continue\r\n\r\n".encode())
            first = harness.read_response(s)
            self.assertEqual(first.status, 100, first)
            s.sendall(b"abc")
            heads = []
            while True:
                r = harness.read_response(s)
                heads.append(r.status)
                if r.status >= 200:
                    break
        self.assertEqual(heads, [103, 200])
        self.assertEqual(r.header("content-type"), "application/json")

    def test_no_interim_responses_to_an_http10_client(self):
        name = "eh-h10"
        path = f"/gen/{name}?" + q(*self.EARLY_HINTS, size=50, cc="no-store")
        interim, final = self.read_raw_h1(path, version="HTTP/1.0")
        self.assertEqual(interim, [])  # RFC 9110 §15.2
        self.assertEqual((final.status, final.body), (200, gen_bytes(name, 50)), final)

    def test_a_follower_joining_a_fill_gets_no_interim_response(self):
        # The leader's 103 is its own; a device that joins the fill gets the final response.
        name = "eh-collapse"
        path = f"/gen/{name}?" + q(*self.EARLY_HINTS, size=200000, rate=200000, cc="max-age=300")
        import threading
        lead = {}
        t = threading.Thread(target=lambda: lead.update(r=self.read_raw_h1(path)))
        t.start()
        harness.poll(lambda: self.hits(name), lambda n: n >= 1, timeout=5)
        interim, final = self.read_raw_h1(path)
        t.join(30)
        self.assertEqual(interim, [])
        self.assertEqual((final.status, final.body), (200, gen_bytes(name, 200000)))
        lead_interim, lead_final = lead["r"]
        self.assertEqual([r.status for r in lead_interim], [103])
        self.assertEqual(lead_final.body, gen_bytes(name, 200000))
        self.assertEqual(self.hits(name), 1)

    def test_endless_interim_responses_are_a_502(self):
        name = "eh-flood"
        path = f"/gen/{name}?" + q(("interim", "102"), interim_repeat=1000, size=50,
                                     cc="max-age=300")
        before = self.metric("storecache_upstream_errors_total", kind="bad_response")
        for http2 in (False, True):
            r = self.get(path, http2=http2)
            self.assertEqual(r.status, 502, r)
        self.assertEqual(
            self.metric("storecache_upstream_errors_total", kind="bad_response") - before, 2)
        # Within the bound, they all pass and the response is stored.
        ok = f"/gen/eh-eight?" + q(("interim", "103"), interim_repeat=8, size=50,
                                   cc="max-age=300")
        interim, final = self.read_raw_h1(ok)
        self.assertEqual([r.status for r in interim], [103] * 8)
        self.assertEqual(final.status, 200)

    def test_101_from_the_upstream_is_a_502(self):
        path = "/gen/eh-101?" + q(("interim", "101"), size=50, cc="no-store")
        for http2 in (False, True):
            r = self.get(path, http2=http2)
            self.assertEqual(r.status, 502, r)


if __name__ == "__main__":
    harness.main()
