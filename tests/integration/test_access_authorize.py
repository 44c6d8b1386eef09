#!/usr/bin/env python3
"""authorize_with_upstream path rules through the real daemon.

Protected content (an LMS's pluginfile.php: `private`, behind a session cookie) is stored
once and shared, and every device's use of it is authorized by the upstream with a HEAD that
carries the device's own URL and credentials: the WAN carries the body once and headers for
everyone else. A refused device gets the origin's own answer, never the stored body; no
answer from the upstream fails closed. [site.cache] authorize_cache remembers an allowed
(URL, credentials) for a while.

The origin's require_cookie option stands in for the LMS's session check: session=alice and
session=carol are allowed, session=bob is not.
"""

import hashlib
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import harness  # noqa: E402
from harness import OTHER_SITE, SITE  # noqa: E402
from origin import gen_bytes, gen_sha256  # noqa: E402

RULES = [{"path": "/gen/auth-*", "authorize_with_upstream": True}]
CACHE = {"default_ttl": "0s", "rule": RULES}
# the second site remembers an authorization for 5 s
CACHE_REMEMBER = {"default_ttl": "0s", "authorize_cache": "5s", "rule": RULES}
ALLOWED = "session:alice|carol"
BOB_REFUSED = b"forbidden: require_cookie session\n"


def cookie_of(entry):
    return [v for k, v in entry["headers"] if k.lower() == "cookie"]


def field(entry, name):
    vals = [v for k, v in entry["headers"] if k.lower() == name]
    return vals[-1] if vals else None


class AuthorizeTest(harness.StackTest):
    stack_args = {"two_sites": True,
                  "overrides": {"site": [{"cache": CACHE}, {"cache": CACHE_REMEMBER}]}}

    def tearDown(self):
        self.assertHealthy()

    def as_user(self, user, path, host=SITE, **kw):
        headers = list(kw.pop("headers", ()))
        if user:
            headers.append(f"Cookie: lang=en; session={user}")
        return self.get(path, host=host, headers=headers, **kw)

    def auths(self, outcome, site=SITE):
        return self.metric("storecache_upstream_authorizations_total", site=site,
                           outcome=outcome)

    def snapshot(self, site=SITE):
        return {o: self.auths(o, site) for o in ("allowed", "denied", "failed", "remembered")} | {
            "upstream_denied": self.metric("storecache_access_denied_total", site=site,
                                           reason="upstream")}

    def assert_delta(self, before, site=SITE, **want):
        after = self.snapshot(site)
        got = {k: after[k] - before[k] for k in after}
        expect = {k: 0 for k in after} | want
        self.assertEqual(got, expect)

    def test_two_users_2mib_private_body_crosses_the_wan_once(self):
        name = "auth-course"
        size = 2 << 20
        path = f"/gen/{name}"
        origin = self.stack.origin
        origin.program(path, size=size, cc="private, max-age=300", etag="c1",
                       require_cookie=ALLOWED)
        before = self.snapshot()
        digest = gen_sha256(name, size)

        alice = self.as_user("alice", path)
        self.assertEqual(alice.status, 200, alice)
        self.assertEqual(hashlib.sha256(alice.body).hexdigest(), digest)
        self.assertIn("stored", self.cs(alice), alice.headers)

        bob = self.as_user("bob", path)
        self.assertEqual((bob.status, bob.body), (403, BOB_REFUSED), bob)
        self.assertNotIn("hit", self.cs(bob), bob.headers)

        alice2 = self.as_user("alice", path)
        self.assertEqual(alice2.status, 200, alice2)
        self.assertEqual(hashlib.sha256(alice2.body).hexdigest(), digest)
        self.assertIs(self.cs(alice2).get("hit"), True, alice2.headers)

        carol = self.as_user("carol", path, http2=True)
        self.assertEqual(carol.status, 200, carol)
        self.assertEqual(hashlib.sha256(carol.body).hexdigest(), digest)
        self.assertIs(self.cs(carol).get("hit"), True, carol.headers)

        anonymous = self.as_user(None, path)
        self.assertEqual(anonymous.status, 403, anonymous)
        self.assertNotEqual(len(anonymous.body), size)

        log = origin.requests(path)
        self.assertEqual([(e["method"], cookie_of(e)) for e in log], [
            ("GET", ["lang=en; session=alice"]),
            ("HEAD", ["lang=en; session=bob"]),
            ("GET", ["lang=en; session=bob"]),      # bob's own request, passed through
            ("HEAD", ["lang=en; session=alice"]),
            ("HEAD", ["lang=en; session=carol"]),
            ("HEAD", []),
            ("GET", []),
        ])
        for e in log:
            if e["method"] == "HEAD":
                self.assertEqual(field(e, "if-none-match"), '"c1"', e["headers"])
        # the body crossed the WAN once: 2 MiB, not 4 (or 6)
        self.assertEqual(origin.sent_bytes(path), size)
        self.assert_delta(before, allowed=2, denied=2, upstream_denied=2)

    def test_authorization_header_is_forwarded_and_shared_copy_kept(self):
        # Authorization on the request would normally make a response unstorable; on an
        # authorized path the copy is stored and each use asks with the device's own token.
        name = "auth-bearer"
        path = f"/gen/{name}"
        self.stack.origin.program(path, size=3000, cc="max-age=300", etag="b1")
        r1 = self.get(path, headers=["Authorization: Bearer token-a"])
        self.assertIn("stored", self.cs(r1), r1.headers)
        r2 = self.get(path, headers=["Authorization: Bearer token-b"])
        self.assertEqual((r2.status, r2.body), (200, gen_bytes(name, 3000)))
        self.assertIs(self.cs(r2).get("hit"), True, r2.headers)
        log = self.stack.origin.requests(path)
        self.assertEqual([(e["method"], field(e, "authorization")) for e in log],
                         [("GET", "Bearer token-a"), ("HEAD", "Bearer token-b")])

    def test_set_cookie_is_not_replayed_to_the_next_user(self):
        name = "auth-setcookie"
        path = f"/gen/{name}"
        self.stack.origin.program(path, size=1000, cc="private, max-age=300",
                                  require_cookie=ALLOWED,
                                  header="Set-Cookie:MoodleSession=alice-secret; Path=/")
        alice = self.as_user("alice", path)
        self.assertEqual(alice.status, 200, alice)
        # The device whose request fetched it gets its own Set-Cookie (an LMS that rotates
        # its session on a file response must not log it out); it is never stored.
        self.assertEqual(alice.header_all("set-cookie"), ["MoodleSession=alice-secret; Path=/"],
                         alice.headers)
        carol = self.as_user("carol", path)
        self.assertEqual((carol.status, carol.body), (200, gen_bytes(name, 1000)), carol)
        self.assertIs(self.cs(carol).get("hit"), True, carol.headers)
        self.assertEqual(carol.header_all("set-cookie"), [], carol.headers)
        self.assertFalse(any("alice-secret" in v for _, v in carol.headers), carol.headers)
        self.assertEqual(self.stack.origin.count(path), 2)  # GET (alice), HEAD (carol)

    def test_only_2xx_is_stored(self):
        # A 404 with max-age is storable anywhere else; on an authorized path it is not, so
        # one device's error never answers another (and a denial is never replayed).
        name = "auth-404"
        path = f"/gen/{name}"
        self.stack.origin.program(path, size=100, status=404, cc="max-age=300")
        for user in ("alice", "carol"):
            r = self.as_user(user, path)
            self.assertEqual(r.status, 404, r)
            self.assertNotIn("hit", self.cs(r), r.headers)
        self.assertEqual([e["method"] for e in self.stack.origin.requests(path)],
                         ["GET", "GET"])
        # the same on a path without the rule is stored (the test can tell the difference)
        self.stack.origin.program("/gen/plain-404", size=100, status=404, cc="max-age=300")
        self.as_user("alice", "/gen/plain-404")
        r = self.as_user("alice", "/gen/plain-404")
        self.assertIs(self.cs(r).get("hit"), True, r.headers)

    def test_authorize_cache_remembers_an_allowed_user_only(self):
        name = "auth-remember"
        path = f"/gen/{name}"
        origin = self.stack.origin
        origin.program(path, size=4000, cc="private, max-age=300", etag="r1",
                       require_cookie=ALLOWED)
        before = self.snapshot(OTHER_SITE)
        t0 = time.monotonic()

        def methods():
            return [(e["method"], cookie_of(e)[0].split("session=")[1])
                    for e in origin.requests(path)]

        self.assertEqual(self.as_user("alice", path, host=OTHER_SITE).status, 200)  # miss
        self.assertEqual(self.as_user("alice", path, host=OTHER_SITE).status, 200)  # HEAD
        r = self.as_user("alice", path, host=OTHER_SITE)                           # remembered
        self.assertEqual((r.status, r.body), (200, gen_bytes(name, 4000)))
        self.assertIs(self.cs(r).get("hit"), True, r.headers)
        for _ in range(2):  # a refusal is not remembered: bob asks every time
            self.assertEqual(self.as_user("bob", path, host=OTHER_SITE).status, 403)
        self.assertEqual(self.as_user("carol", path, host=OTHER_SITE).status, 200)
        within = time.monotonic() - t0
        self.assertLess(within, 4.5, "too slow to be inside authorize_cache: inconclusive")
        self.assertEqual(methods(), [("GET", "alice"), ("HEAD", "alice"),
                                     ("HEAD", "bob"), ("GET", "bob"),
                                     ("HEAD", "bob"), ("GET", "bob"),
                                     ("HEAD", "carol")])
        self.assert_delta(before, OTHER_SITE, allowed=2, remembered=1, denied=2,
                          upstream_denied=2)
        # once the 5 s are over, alice is asked about again
        time.sleep(max(0.0, 5.5 - (time.monotonic() - t0)))
        self.assertEqual(self.as_user("alice", path, host=OTHER_SITE).status, 200)
        self.assertEqual(methods()[-1], ("HEAD", "alice"))
        self.assertEqual(self.auths("remembered", OTHER_SITE) - before["remembered"], 1)

    def test_remembered_per_credentials_not_per_url_only(self):
        name = "auth-remember-creds"
        path = f"/gen/{name}"
        self.stack.origin.program(path, size=500, cc="private, max-age=300",
                                  require_cookie=ALLOWED)
        for user in ("alice", "alice", "carol", "carol"):
            self.assertEqual(self.as_user(user, path, host=OTHER_SITE).status, 200)
        self.assertEqual([e["method"] for e in self.stack.origin.requests(path)],
                         ["GET", "HEAD", "HEAD"])
        # the same user with another URL (a query the key keeps) is another authorization
        self.assertEqual(self.as_user("alice", path + "?v=2", host=OTHER_SITE).status, 200)
        self.assertEqual(self.stack.origin.count(path), 4)


class AuthorizeFailClosedTest(harness.StackTest):
    """The origin goes away while an authorized copy is stored."""

    stack_args = {"two_sites": True,
                  "overrides": {"site": [{"cache": CACHE}, {"cache": CACHE_REMEMBER}]}}

    def test_origin_down_never_serves_the_stored_copy(self):
        origin = self.stack.origin
        size = 64 * 1024
        for host in (SITE, OTHER_SITE):
            origin.program(f"/gen/auth-down-{host}", size=size, cc="private, max-age=300",
                           require_cookie=ALLOWED)
        cookie = ["Cookie: session=alice"]
        for host in (SITE, OTHER_SITE):
            r = self.get(f"/gen/auth-down-{host}", host=host, headers=cookie)
            self.assertEqual(r.status, 200, r)
        # OTHER_SITE: alice's HEAD now is remembered for 5 s
        r = self.get(f"/gen/auth-down-{OTHER_SITE}", host=OTHER_SITE, headers=cookie)
        self.assertIs(self.cs(r).get("hit"), True)
        failed0 = self.metric("storecache_upstream_authorizations_total", site=SITE,
                              outcome="failed")
        origin.stop()
        t0 = time.monotonic()
        for http2 in (False, True):
            r = self.get(f"/gen/auth-down-{SITE}", headers=cookie, http2=http2, timeout=40)
            self.assertIn(r.status, (502, 504), r)
            self.assertNotEqual(len(r.body), size)
            self.assertNotIn(gen_bytes(f"auth-down-{SITE}", 4096), r.body)
        self.assertLess(time.monotonic() - t0, 40)
        self.assertEqual(self.metric("storecache_upstream_authorizations_total", site=SITE,
                                     outcome="failed") - failed0, 2)
        # Documented trade-off of authorize_cache: within its window a remembered
        # authorization still serves, origin or not.
        r = self.get(f"/gen/auth-down-{OTHER_SITE}", host=OTHER_SITE, headers=cookie)
        self.assertEqual((r.status, len(r.body)), (200, size), r)
        self.assertHealthy()


if __name__ == "__main__":
    harness.main()
