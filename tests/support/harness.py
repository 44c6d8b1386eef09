"""Integration-test harness: certificates, config files, the real daemon, real clients.

Everything runs on loopback with ports chosen by the OS. A typical test:

    class T(harness.StackTest):          # one origin + one daemon for the whole file
        def test_get(self):
            r = self.stack.curl("/gen/a?size=1000")
            self.assertEqual(r.status, 200)

The daemon binary is $STORECACHE_BIN, else <repo>/build/proxy/storecache.
"""

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import origin as origin_mod  # noqa: E402  (the test origin, same folder)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SITE = "learn.example.com"
OTHER_SITE = "other.example.com"
ORIGIN_NAME = "origin.test"


def storecache_bin():
    return os.environ.get("STORECACHE_BIN") or os.path.join(REPO, "build", "proxy", "storecache")


def free_port(host="127.0.0.1"):
    """A port the OS just handed out (it is closed again; the daemon binds it next)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


# --- certificates ---------------------------------------------------------------------------


def _run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


class Pki:
    """A throwaway CA in dir; leaf() issues certificates it signs (EC P-256, valid 2 days)."""

    def __init__(self, directory):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.ca_cert = os.path.join(directory, "ca.crt")
        self.ca_key = os.path.join(directory, "ca.key")
        _run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
              "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
              "/CN=storecache test CA", "-keyout", self.ca_key, "-out", self.ca_cert,
              "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign"])

    def leaf(self, name, *extra_names, tag=""):
        """Issues <dir>/<name><tag>.crt/.key for DNS name(s) plus 127.0.0.1 and ::1."""
        base = os.path.join(self.dir, f"{name}{tag}")
        crt, key, csr, ext = (base + x for x in (".crt", ".key", ".csr", ".ext"))
        sans = [f"DNS:{n}" for n in (name, *extra_names)] + ["IP:127.0.0.1", "IP:::1"]
        with open(ext, "w") as f:
            f.write("basicConstraints=critical,CA:FALSE\n"
                    "keyUsage=critical,digitalSignature\n"
                    "extendedKeyUsage=serverAuth\n"
                    f"subjectAltName={','.join(sans)}\n")
        _run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
              "ec_paramgen_curve:prime256v1", "-nodes", "-subj", f"/CN={name}",
              "-keyout", key, "-out", csr])
        _run(["openssl", "x509", "-req", "-in", csr, "-CA", self.ca_cert, "-CAkey",
              self.ca_key, "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", crt])
        return crt, key


# --- config ---------------------------------------------------------------------------------


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):  # an inline table, as in listen = ["...", { address = "..." }]
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    return json.dumps(str(v))  # a JSON string is a valid TOML basic string


def _is_table_list(v):
    return isinstance(v, (list, tuple)) and len(v) > 0 and all(isinstance(x, dict) for x in v)


def _toml_table(out, header, t):
    """One table: its plain keys, then dict values as [header.k] and lists of dicts as
    [[header.k]] (so a site entry may hold "cache": {..., "rule": [{...}, ...]})."""
    out.append(header)
    out += [f"{k} = {_toml_value(v)}" for k, v in t.items()
            if v is not None and not isinstance(v, dict) and not _is_table_list(v)]
    out.append("")
    name = header.strip("[]")
    for k, v in t.items():
        if isinstance(v, dict):
            _toml_table(out, f"[{name}.{k}]", v)
        elif _is_table_list(v):
            for sub in v:
                _toml_table(out, f"[[{name}.{k}]]", sub)


def toml_text(cfg):
    """{'server': {...}, 'site': [{...}, ...]} -> TOML; lists of dicts become [[tables]].

    Nested dicts become sub-tables after their parent's keys: a site entry's "cache" dict is
    written as [site.cache], and its "rule" list of dicts as [[site.cache.rule]] blocks.
    """
    out = []
    for section, body in cfg.items():
        tables = body if isinstance(body, list) else [body]
        for t in tables:
            _toml_table(out, f"[[{section}]]" if isinstance(body, list) else f"[{section}]", t)
    return "\n".join(out)


def write_config(path, cfg):
    with open(path, "w") as f:
        f.write(toml_text(cfg))
    return path


# --- the daemon -----------------------------------------------------------------------------


class Daemon:
    """One storecache process: `storecache --config FILE`, stderr captured to a file."""

    def __init__(self, config_path, admin_port, workdir, binary=None, env=None):
        self.config_path = config_path
        self.env = None if env is None else {**os.environ, **env}  # extra environment
        self.admin_port = admin_port
        self.binary = binary or storecache_bin()
        self.stderr_path = os.path.join(workdir, f"storecache-{time.monotonic_ns()}.stderr")
        self.proc = None

    @property
    def pid(self):
        return self.proc.pid

    def start(self, timeout=10.0):
        if not os.access(self.binary, os.X_OK):
            raise AssertionError(f"storecache binary not found: {self.binary} "
                                 "(set STORECACHE_BIN or build the storecache target)")
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen([self.binary, "--config", self.config_path],
                                     stdin=subprocess.DEVNULL, stdout=self._err,
                                     stderr=self._err, env=self.env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if self.healthy():
                return self
            time.sleep(0.05)
        self.kill()
        raise AssertionError(f"storecache did not become healthy within {timeout}s "
                             f"(exit {self.proc.returncode}); stderr:\n{self.stderr_text()}")

    def healthy(self):
        try:
            status, _, _ = http_get(f"http://127.0.0.1:{self.admin_port}/healthz", timeout=1)
            return status == 200
        except OSError:
            return False

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout):
        """Exit code, or None if still running after timeout."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout=10.0):
        """SIGTERM, wait, SIGKILL on timeout. Returns the exit code (negative: killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            if self.wait(timeout) is None:
                self.kill()
        self._err.close()
        return self.proc.returncode

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def stderr_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def metrics(self):
        return metrics(self.admin_port)

    def peak_rss(self):
        return peak_rss(self.proc.pid)


def check_config(path, binary=None):
    """Runs `storecache --check-config path`: (exit code, stdout + stderr)."""
    p = subprocess.run([binary or storecache_bin(), "--check-config", path],
                       capture_output=True, text=True, timeout=20)
    return p.returncode, p.stdout + p.stderr


# --- clients --------------------------------------------------------------------------------


def http_get(url, timeout=5):
    """Plain-HTTP GET (the admin listener): (status, headers dict, body bytes)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


class CurlResult:
    def __init__(self, exit_code, info, headers, body, stderr):
        self.exit = exit_code
        self.info = info  # curl's %{json} write-out
        self.status = info.get("response_code", 0) if info else 0
        self.http_version = info.get("http_version") if info else None
        self.headers = headers  # [(name, value)] of the final response, names lower-case
        self.body = body
        self.stderr = stderr

    def header(self, name, default=None):
        vals = self.header_all(name)
        return vals[-1] if vals else default

    def header_all(self, name):
        return [v for k, v in self.headers if k == name.lower()]

    def __repr__(self):
        return (f"CurlResult(exit={self.exit}, status={self.status}, "
                f"version={self.http_version}, body={len(self.body or b'')}B, "
                f"stderr={self.stderr.strip()[-300:]!r})")


def _parse_header_dump(text):
    """The last response block of a curl -D dump (skips 100 Continue)."""
    blocks, cur = [], None
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.startswith("HTTP/"):
            cur = []
            blocks.append(cur)
        elif cur is not None and ":" in line:
            k, _, v = line.partition(":")
            cur.append((k.strip().lower(), v.strip()))
    return blocks[-1] if blocks else []


def curl(url, *, ca=None, resolve=(), http2=False, method=None, headers=(), data=None,
         data_file=None, output=None, timeout=30, extra=(), insecure=False):
    """Runs curl once. data: bytes for the body; output: a path instead of capturing the body."""
    with tempfile.TemporaryDirectory(prefix="curl-") as tmp:
        hdr = os.path.join(tmp, "headers")
        body_path = output or os.path.join(tmp, "body")
        cmd = ["curl", "-sS", "--http2" if http2 else "--http1.1", "-D", hdr, "-o", body_path,
               "-w", "%{json}", "--max-time", str(timeout)]
        if ca:
            cmd += ["--cacert", ca]
        if insecure:
            cmd += ["-k"]
        for r in resolve:
            cmd += ["--resolve", r]
        if method:
            cmd += ["-X", method] if method != "HEAD" else ["-I"]
        for h in headers:
            cmd += ["-H", h]
        if data is not None:
            data_file = os.path.join(tmp, "upload")
            with open(data_file, "wb") as f:
                f.write(data)
        if data_file is not None:
            cmd += ["--data-binary", "@" + data_file]
        cmd += list(extra) + [url]
        p = subprocess.run(cmd, capture_output=True, timeout=timeout + 10)
        try:
            info = json.loads(p.stdout.decode("utf-8", "replace") or "{}")
        except ValueError:
            info = {}
        headers_out = []
        if os.path.exists(hdr):
            with open(hdr, "rb") as f:
                headers_out = _parse_header_dump(f.read().decode("latin-1"))
        body = None
        if output is None and os.path.exists(body_path):
            with open(body_path, "rb") as f:
                body = f.read()
        elif output is None:
            body = b""
        if method == "HEAD":
            body = b""  # curl -I writes the head to the output; HEAD has no body
        return CurlResult(p.returncode, info, headers_out, body,
                          p.stderr.decode("utf-8", "replace"))


def curl_many(urls, *, ca=None, resolve=(), http2=False, parallel=False, timeout=60, extra=()):
    """Several transfers in one curl process (connection reuse / h2 multiplexing).

    Returns (exit code, [per-transfer %{json} dicts]); bodies go to /dev/null but their sha256
    is not needed: size_download and response_code are in the dicts.
    """
    cmd = ["curl", "-sS", "--http2" if http2 else "--http1.1", "--max-time", str(timeout)]
    if ca:
        cmd += ["--cacert", ca]
    for r in resolve:
        cmd += ["--resolve", r]
    if parallel:
        cmd += ["--parallel", "--parallel-max", "100"]
    cmd += list(extra)
    for u in urls:
        cmd += ["-o", "/dev/null", "-w", "%{json}\n", u]
    p = subprocess.run(cmd, capture_output=True, timeout=timeout + 10)
    infos = []
    for line in p.stdout.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if line.startswith("{"):
            infos.append(json.loads(line))
    return p.returncode, infos


def nghttp(url, *, authority=None, headers=(), extra=(), timeout=30):
    """Runs nghttp (h2 only; no cert check, no SNI for an IP URL). Returns (exit, out, err)."""
    cmd = ["nghttp", "-t", str(timeout)]
    if authority:
        cmd += ["-H", f":authority: {authority}"]
    for h in headers:
        cmd += ["-H", h]
    cmd += list(extra) + [url]
    p = subprocess.run(cmd, capture_output=True, timeout=timeout + 10)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def tls_socket(port, sni, ca, alpn=("http/1.1",), timeout=5.0, host="127.0.0.1", source=None):
    """A verified TLS connection to the daemon with the given SNI (for hand-written requests).
    source: a loopback address to connect from (127.0.0.2, ...), to be another device."""
    ctx = ssl.create_default_context(cafile=ca)
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    raw = socket.create_connection((host, port), timeout=timeout,
                                   source_address=(source, 0) if source else None)
    try:
        return ctx.wrap_socket(raw, server_hostname=sni)
    except BaseException:
        raw.close()
        raise


class RawResponse:
    def __init__(self, status, headers, body, complete):
        self.status, self.headers, self.body, self.complete = status, headers, body, complete

    def header(self, name, default=None):
        vals = [v for k, v in self.headers if k == name.lower()]
        return vals[-1] if vals else default

    def __repr__(self):
        return f"RawResponse({self.status}, {self.headers}, {len(self.body)}B)"


def read_response(sock, head_only=False):
    """Reads one HTTP/1.1 response from sock. None if the peer closed before sending a byte."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            if not buf:
                return None
            raise AssertionError(f"connection closed inside a response head: {buf[:200]!r}")
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = []
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.append((k.strip().lower(), v.strip()))
    resp = RawResponse(status, headers, b"", True)
    if head_only or status in (204, 304) or status < 200:
        return resp
    if "chunked" in (resp.header("transfer-encoding") or ""):
        body = rest
        while True:  # whole-body read; these responses are small
            if body.endswith(b"0\r\n\r\n"):
                break
            data = sock.recv(65536)
            if not data:
                resp.complete = False
                break
            body += data
        out, pos = b"", 0
        while True:
            eol = body.find(b"\r\n", pos)
            if eol < 0:
                break
            n = int(body[pos:eol].split(b";")[0], 16)
            if n == 0:
                break
            out += body[eol + 2:eol + 2 + n]
            pos = eol + 2 + n + 2
        resp.body = out
        return resp
    length = resp.header("content-length")
    if length is None:
        while data := sock.recv(65536):
            rest += data
        resp.body = rest
        return resp
    n = int(length)
    while len(rest) < n:
        data = sock.recv(65536)
        if not data:
            resp.complete = False
            break
        rest += data
    resp.body = rest[:n]
    return resp


def raw_exchange(port, sni, ca, data, timeout=5.0):
    """Sends data (one request, hand-written) on a fresh TLS connection, reads one response."""
    with tls_socket(port, sni, ca, timeout=timeout) as s:
        s.sendall(data)
        return read_response(s)


def peer_cert_der(port, sni, ca=None):
    """The certificate the daemon presents for sni (DER), without verifying it."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=sni) as s:
            return s.getpeercert(binary_form=True)


def cert_der(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def curl_sha256(url, *, ca=None, resolve=(), http2=False, timeout=60, extra=()):
    """Streams a download through sha256 without keeping it: (exit, %{json} info, hex, size)."""
    import hashlib
    cmd = ["curl", "-sS", "--http2" if http2 else "--http1.1", "-o", "-", "-w",
           "%{stderr}%{json}", "--max-time", str(timeout)]
    if ca:
        cmd += ["--cacert", ca]
    for r in resolve:
        cmd += ["--resolve", r]
    cmd += list(extra) + [url]
    h, size = hashlib.sha256(), 0
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as p:
        while chunk := p.stdout.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
        err = p.stderr.read().decode("utf-8", "replace")
        p.wait(timeout + 10)
    brace = err.rfind("{\"")
    info = json.loads(err[brace:]) if brace >= 0 else {}
    return p.returncode, info, h.hexdigest(), size


# --- metrics and process stats --------------------------------------------------------------

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text):
    """Prometheus text -> {(name, frozenset(labels.items())): value}."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise ValueError(f"bad metrics line: {line!r}")
        name, labels, value = m.groups()
        lab = {k: bytes(v, "utf-8").decode("unicode_escape") for k, v in
               _LABEL.findall(labels or "")}
        out[(name, frozenset(lab.items()))] = float(value)
    return out


def metrics(admin_port):
    status, _, body = http_get(f"http://127.0.0.1:{admin_port}/metrics")
    if status != 200:
        raise AssertionError(f"/metrics answered {status}")
    return parse_prometheus(body.decode())


def metric_sum(samples, name, **labels):
    """Sum of `name` over every sample whose labels include the given ones."""
    want = set(labels.items())
    return sum(v for (n, lab), v in samples.items() if n == name and want <= set(lab))


def peak_rss(pid):
    """VmHWM of a process, in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for pid {pid}")


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


class ShiftedZone:
    """A time zone for the daemon whose current local minute ends `seconds` from now.

    Local-time windows ([[site.prefetch]] windows, [[wan.window]]) change at minute boundaries;
    rather than wait up to a minute for the real one, a test starts the daemon with this TZ
    (env) and reaches the edge in seconds, through the daemon's own clock and zone handling:
    glibc takes seconds in a POSIX TZ offset ("SCT-00:00:37" is UTC + 37 s). Nothing in the
    daemon knows it is being tested."""

    def __init__(self, seconds):
        now = time.time()
        self.shift = round((-seconds - now) % 60) % 60  # local time = UTC + shift
        self.env = {"TZ": "SCT-00:00:%02d" % self.shift}
        self.boundary = now + 60 - (now + self.shift) % 60  # wall-clock time of the minute's end

    def minute(self):
        """The daemon's local minute of the day now (0..1439)."""
        t = time.gmtime(time.time() + self.shift)
        return t.tm_hour * 60 + t.tm_min

    def window(self, start_min, end_min):
        """A "HH:MM-HH:MM" window start_min..end_min minutes from the daemon's minute now."""
        base = self.minute()

        def hhmm(m):
            m %= 24 * 60
            return "%02d:%02d" % (m // 60, m % 60)

        return f"{hhmm(base + start_min)}-{hhmm(base + end_min)}"


# --- a whole stack: certificates, origin, config, daemon --------------------------------------


class Stack:
    """A temp dir with a CA, an origin (cert for origin.test), site certs and a running daemon.

    Sites: learn.example.com (and, with two_sites, other.example.com), both upstream to the
    origin. overrides: {section: {key: value}} merged into the generated config.
    """

    def __init__(self, overrides=None, two_sites=False, origin_cert_name=ORIGIN_NAME,
                 site_extra=None):
        self.tmp = tempfile.mkdtemp(prefix="storecache-it-")
        self.pki = Pki(os.path.join(self.tmp, "pki"))
        self.ca = self.pki.ca_cert
        ocrt, okey = self.pki.leaf(origin_cert_name)
        self.origin = origin_mod.Origin(ocrt, okey).start()
        self.site_certs = {SITE: self.pki.leaf(SITE)}
        if two_sites:
            self.site_certs[OTHER_SITE] = self.pki.leaf(OTHER_SITE)
        self.port = free_port()
        self.admin_port = free_port()
        self.config = {
            "server": {"listen": [f"127.0.0.1:{self.port}"], "workers": 2},
            "admin": {"listen": f"127.0.0.1:{self.admin_port}"},
            "timeouts": {},
            "limits": {},
            "cache": {"dir": os.path.join(self.tmp, "cache"), "max_size": "1GiB",
                      "max_object_size": "512MiB"},
            "site": [self.site_entry(name) for name in self.site_certs],
        }
        for section, values in (overrides or {}).items():
            if section == "site":
                for s, extra in zip(self.config["site"], values):
                    s.update(extra)
            else:
                self.config.setdefault(section, {}).update(values)
        for s in self.config["site"]:
            s.update(site_extra or {})
        for section in ("timeouts", "limits"):
            if not self.config[section]:
                del self.config[section]
        self.config_path = os.path.join(self.tmp, "storecache.toml")
        write_config(self.config_path, self.config)
        self.daemon = None

    def site_entry(self, name, upstream_port=None):
        crt, key = self.site_certs[name]
        return {"hosts": [name], "upstream": f"https://127.0.0.1:{upstream_port or self.origin.port}",
                "upstream_ca": self.ca, "upstream_sni": ORIGIN_NAME,
                "upstream_host_header": ORIGIN_NAME, "tls_cert": crt, "tls_key": key}

    def add_site(self, name, upstream_port=None, **extra):
        """Adds a site (with its own certificate) before start(), or before a SIGHUP."""
        self.site_certs[name] = self.pki.leaf(name)
        entry = self.site_entry(name, upstream_port)
        entry.update(extra)
        self.config["site"].append(entry)
        self.rewrite_config()
        return entry

    def rewrite_config(self):
        write_config(self.config_path, self.config)

    def sign_urls_with_hmac(self, secret, paths=("/private/*",), key_id="k1"):
        """The first site verifies storecache's HMAC signed URLs on `paths`, with one key whose
        secret file (in the stack's directory) holds `secret`. Rewrites the config."""
        secret_file = os.path.join(self.tmp, f"hmac-{key_id}.secret")
        with open(secret_file, "w") as f:
            f.write(secret)
        self.config["site"][0]["signed_urls"] = {
            "scheme": "hmac", "paths": list(paths),
            "key": [{"id": key_id, "secret_file": secret_file}]}
        self.rewrite_config()
        return secret_file

    def start(self, env=None):
        self.daemon = Daemon(self.config_path, self.admin_port, self.tmp, env=env).start()
        return self

    def close(self):
        code = None
        if self.daemon:
            code = self.daemon.stop()
        self.origin.stop()
        if os.environ.get("STORECACHE_KEEP_TMP"):
            print(f"kept {self.tmp}", file=sys.stderr)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return code

    def resolve(self, host=SITE):
        return [f"{host}:{self.port}:127.0.0.1"]

    def url(self, path, host=SITE):
        return f"https://{host}:{self.port}{path}"

    def curl(self, path, host=SITE, **kw):
        kw.setdefault("ca", self.ca)
        return curl(self.url(path, host), resolve=self.resolve(host), **kw)

    def curl_many(self, paths, host=SITE, **kw):
        kw.setdefault("ca", self.ca)
        return curl_many([self.url(p, host) for p in paths], resolve=self.resolve(host), **kw)

    def metrics(self):
        return self.daemon.metrics()


class StackTest(unittest.TestCase):
    """One Stack for the whole test class; override stack_args for a custom config."""

    stack_args = {}

    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(**cls.stack_args)
        try:
            cls.stack.start()
        except BaseException:
            cls.stack.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.stack.close()

    def setUp(self):
        self.stack.origin.reset()

    def assertHealthy(self):
        self.assertIsNone(self.stack.daemon.proc.poll(),
                          "daemon died; stderr:\n" + self.stack.daemon.stderr_text()[-4000:])

    def get(self, path, **kw):
        """curl through the daemon; the transfer itself must succeed."""
        r = self.stack.curl(path, **kw)
        self.assertEqual(r.exit, 0, r)
        return r

    def cs(self, r):
        """Our member of the response's Cache-Status, as a dict."""
        return our_cache_status(r)

    def metric(self, name, **labels):
        """Sum of a metric family's samples matching labels, scraped now."""
        return metric_sum(self.stack.metrics(), name, **labels)

    def wait_metric(self, name, pred, timeout=10.0, **labels):
        """Polls a metric until pred(value) holds; fails the test with the last value if not."""
        value = poll(lambda: self.metric(name, **labels), pred, timeout)
        self.assertTrue(pred(value), f"{name}{labels} = {value} after {timeout}s")
        return value


def poll(fn, pred, timeout=10.0, interval=0.05):
    """Calls fn() until pred(result) holds or timeout passes; returns the last result. The one
    way tests wait for something the daemon does after answering (counters, commits)."""
    deadline = time.monotonic() + timeout
    value = fn()
    while not pred(value) and time.monotonic() < deadline:
        time.sleep(interval)
        value = fn()
    return value


@contextlib.contextmanager
def timed(test, at_most, what):
    """Asserts the block finished within at_most seconds."""
    t0 = time.monotonic()
    yield
    took = time.monotonic() - t0
    test.assertLess(took, at_most, f"{what} took {took:.2f}s (limit {at_most}s)")


def main():
    """unittest.main with a verbose summary; exits non-zero on failure."""
    unittest.main(verbosity=2)


# --- cache helpers --------------------------------------------------------------------------


def parse_cache_status(value):
    """RFC 9211 Cache-Status -> [(cache name, {param: value or True})], one per cache listed.

    'storecache; fwd=uri-miss; fwd-status=200; stored' ->
        [('storecache', {'fwd': 'uri-miss', 'fwd-status': '200', 'stored': True})]
    """
    out = []
    if not value:
        return out
    for member in _split_outside_quotes(value, ","):
        parts = _split_outside_quotes(member, ";")
        name = parts[0].strip()
        params = {}
        for p in parts[1:]:
            k, sep, v = p.strip().partition("=")
            if not sep:
                params[k] = True
            else:
                v = v.strip()
                if v.startswith('"') and v.endswith('"'):
                    v = v[1:-1].replace('\\"', '"').replace("\\\\", "\\")
                params[k] = v
        out.append((name, params))
    return out


def _split_outside_quotes(text, sep):
    parts, cur, quoted, esc = [], [], False, False
    for c in text:
        if esc:
            cur.append(c)
            esc = False
        elif c == "\\" and quoted:
            cur.append(c)
            esc = True
        elif c == '"':
            cur.append(c)
            quoted = not quoted
        elif c == sep and not quoted:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
    parts.append("".join(cur))
    return parts


def our_cache_status(result):
    """The params of storecache's own member of a response's Cache-Status ({} if absent)."""
    for name, params in parse_cache_status(result.header("cache-status")):
        if name == "storecache":
            return params
    return {}


def curl_stream(url, *, ca=None, resolve=(), http2=False, timeout=60, headers=(), extra=()):
    """Like curl_sha256, and also when the first body byte reached us (wall time, or None).

    Returns a dict: exit, info (curl's %{json}), sha256, size, first_byte (time.time()),
    end (time.time() at EOF).
    """
    import hashlib
    cmd = ["curl", "-sS", "--http2" if http2 else "--http1.1", "-o", "-", "-w",
           "%{stderr}%{json}", "--max-time", str(timeout)]
    if ca:
        cmd += ["--cacert", ca]
    for r in resolve:
        cmd += ["--resolve", r]
    for h in headers:
        cmd += ["-H", h]
    cmd += list(extra) + [url]
    h, size, first = hashlib.sha256(), 0, None
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as p:
        while chunk := p.stdout.read1(1 << 20):
            if first is None:
                first = time.time()
            h.update(chunk)
            size += len(chunk)
        end = time.time()
        err = p.stderr.read().decode("utf-8", "replace")
        p.wait(timeout + 10)
    brace = err.rfind("{\"")
    info = json.loads(err[brace:]) if brace >= 0 else {}
    return {"exit": p.returncode, "info": info, "sha256": h.hexdigest(), "size": size,
            "first_byte": first, "end": end, "stderr": err[:brace] if brace >= 0 else err}
