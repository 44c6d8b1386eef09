#!/usr/bin/env python3
"""The status page at the admin listener's "/", in a real headless Chromium (via chromedriver).

A scripted workload first, then the page: it renders, loads nothing from anywhere else, its
charts carry the workload's bytes, the tables name the workload's content and devices, and a
screenshot is saved as a test artifact (STORECACHE_ARTIFACT_DIR, default: the temp dir).
"""

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import harness  # noqa: E402

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1")
ANDROID = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/124.0.0.0 Mobile Safari/537.36")


class WebDriver:
    """The few W3C WebDriver calls the test needs, over chromedriver's HTTP API (stdlib only)."""

    def __init__(self, profile_dir):
        self.port = harness.free_port()
        self.proc = subprocess.Popen(["chromedriver", f"--port={self.port}"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.proc.kill()
                    raise AssertionError("chromedriver did not start")
                time.sleep(0.1)
        args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                "--window-size=1200,2600", f"--user-data-dir={profile_dir}"]
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": shutil.which("chromium"), "args": args}}}}
        self.session = self.call("POST", "/session", caps)["sessionId"]

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data,
                                     method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read().decode())["value"]

    def go(self, url):
        self.call("POST", f"/session/{self.session}/url", {"url": url})

    def js(self, script):
        return self.call("POST", f"/session/{self.session}/execute/sync",
                         {"script": script, "args": []})

    def screenshot(self):
        return base64.b64decode(self.call("GET", f"/session/{self.session}/screenshot"))

    def close(self):
        try:
            self.call("DELETE", f"/session/{self.session}")
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class StatusPageTest(harness.StackTest):
    @classmethod
    def setUpClass(cls):
        # /private/* needs an HMAC-signed URL: an unsigned request there is an access denial.
        cls.stack = harness.Stack()
        try:
            cls.stack.sign_urls_with_hmac("status-page-test-secret-0123456789")
            cls.stack.start()
        except BaseException:
            cls.stack.close()
            raise

    def tearDown(self):
        self.assertHealthy()

    def page_url(self):
        return f"http://127.0.0.1:{self.stack.admin_port}/"

    def test_page_in_headless_chromium(self):
        video = "/gen/course.mp4?size=400000&cc=max-age%3D600&ct=video/mp4"
        image = "/gen/badge.png?size=30000&cc=max-age%3D600&ct=image/png"
        for path, ua, h2 in ((video, IPHONE, False), (video, ANDROID, True),
                             (video, IPHONE, True), (image, ANDROID, False)):
            r = self.get(path, http2=h2, headers=[f"User-Agent: {ua}"])
            self.assertEqual((r.status, len(r.body)), (200, int(re.search(r"size=(\d+)",
                                                                           path)[1])))
        served, upstream = 3 * 400000 + 30000, 400000 + 30000
        r = self.get("/private/exam.pdf?sc_sig=Zm9yZ2VkLXNpZw", headers=[f"User-Agent: {IPHONE}"])
        self.assertEqual(r.status, 403, r)

        # The raw page: self-contained, and says so to the browser.
        status, headers, body = harness.http_get(self.page_url())
        headers = {k.lower(): v for k, v in headers.items()}
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("text/html"), headers)
        self.assertIn("default-src 'none'", headers["content-security-policy"])
        html = body.decode()
        self.assertIsNone(re.search(r"<script|src=|@import|url\(|https?://(?!127\.)", html),
                          "the page references something outside itself")
        self.assertRegex(html, r'<meta http-equiv="refresh" content="\d+">')

        profile = tempfile.mkdtemp(prefix="storecache-chromium-")
        driver = WebDriver(profile)
        try:
            driver.go(self.page_url())
            self.assertEqual(driver.js("return document.readyState"), "complete")
            self.assertIn("storecache", driver.js("return document.title"))
            # Headline figures, as rendered.
            figures = driver.js("""
              const t = id => document.getElementById(id).textContent.trim();
              const b = id => Number(document.getElementById(id).dataset.bytes);
              return {requests: t('requests'), served: b('served'), upstream: b('upstream'),
                      saved: b('saved'), hit: t('hit-ratio')};""")
            self.assertEqual(figures["requests"], "4")
            self.assertEqual(figures["served"], served)
            self.assertEqual(figures["upstream"], upstream)
            self.assertEqual(figures["saved"], served - upstream)
            self.assertEqual(figures["hit"], "50.0 %")
            # Both charts: laid out with a real size, and their bars carry the workload's bytes.
            for chart in ("chart-24h", "chart-7d"):
                got = driver.js(f"""
                  const svg = document.getElementById('{chart}');
                  const box = svg.getBoundingClientRect();
                  const sum = cls => [...svg.querySelectorAll('rect.' + cls)]
                      .reduce((a, r) => a + Number(r.dataset.bytes), 0);
                  const tall = [...svg.querySelectorAll('rect.served')]
                      .filter(r => r.getBoundingClientRect().height > 1).length;
                  return {{w: box.width, h: box.height, served: sum('served'),
                          upstream: sum('upstream'), bars: svg.querySelectorAll('rect.served').length,
                          tall: tall}};""")
                self.assertGreater(got["w"], 300, chart)
                self.assertGreater(got["h"], 60, chart)
                self.assertEqual(got["served"], served, chart)
                self.assertEqual(got["upstream"], upstream, chart)
                self.assertEqual(got["bars"], 24 if chart == "chart-24h" else 168, chart)
                self.assertGreaterEqual(got["tall"], 1, f"{chart}: no visible bar")
            tables = driver.js("""
              const rows = id => [...document.querySelectorAll('#' + id + ' tbody tr')]
                  .map(tr => tr.cells[0].textContent.trim());
              return {content: rows('content'), devices: rows('devices'),
                      assets: rows('top-assets'), tls: rows('tls'), protocols: rows('protocols')};""")
            self.assertEqual(tables["content"], ["Video", "Image"])
            self.assertEqual(sorted(tables["devices"]),
                             ["Android, Chrome", "iOS/iPadOS, Safari"])
            self.assertEqual(tables["assets"], [harness.SITE + "/gen/course.mp4",
                                                harness.SITE + "/gen/badge.png"])
            self.assertEqual(tables["tls"], ["TLSv1.3"])
            self.assertEqual(sorted(tables["protocols"]), ["h2", "http/1.1"])
            # Access denials by reason: [reason, last 24 hours, last 7 days].
            refused = driver.js("""
              return [...document.querySelectorAll('#refused tbody tr')].map(tr =>
                  [tr.dataset.reason || tr.cells[0].textContent.trim(),
                   tr.cells[2].textContent.trim(), tr.cells[3].textContent.trim()]);""")
            self.assertEqual(refused, [["network", "0", "0"], ["client_cert", "0", "0"],
                                       ["signature", "1", "1"], ["upstream", "0", "0"],
                                       ["all", "1", "1"]])
            self.assertNotIn("Zm9yZ2VkLXNpZw", html)  # nothing of the query
            fill = driver.js("return document.querySelector('#cache-fill p').textContent")
            self.assertRegex(fill, r"2 objects stored")

            png = driver.screenshot()
            self.assertEqual(png[:8], b"\x89PNG\r\n\x1a\n")
            self.assertGreater(len(png), 10000)
            out_dir = os.environ.get("STORECACHE_ARTIFACT_DIR") or self.stack.tmp
            os.makedirs(out_dir, exist_ok=True)
            shot = os.path.join(out_dir, "status-page.png")
            with open(shot, "wb") as f:
                f.write(png)
            print(f"screenshot: {shot}", file=sys.stderr)
        finally:
            driver.close()
            shutil.rmtree(profile, ignore_errors=True)

    def test_head_and_unknown_paths(self):
        req = urllib.request.Request(self.page_url(), method="HEAD")
        with urllib.request.urlopen(req, timeout=5) as r:
            self.assertEqual(r.status, 200)
            self.assertEqual(r.read(), b"")
        status, _, _ = harness.http_get(f"http://127.0.0.1:{self.stack.admin_port}/nothing")
        self.assertEqual(status, 404)


if __name__ == "__main__":
    harness.main()
