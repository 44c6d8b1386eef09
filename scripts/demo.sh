#!/usr/bin/env bash
# The storecache demo: a demo origin (the "LMS") serving a generated micro-learning course, and
# storecache in front of it on https://localhost:8443, both on loopback only.
#
#   scripts/demo.sh           build, start both, print URLs to try, run until Ctrl-C
#   scripts/demo.sh --check   start both, fetch every course file through storecache over
#                             HTTP/1.1 and HTTP/2, compare byte for byte, exit 0 (all equal) or 1
#
# Environment:
#   DEMO_PORT        storecache HTTPS port            (default 8443)
#   DEMO_ADMIN_PORT  storecache admin/metrics port    (default 9090)
#   DEMO_DIR         working directory                (default demo-run/ in the repo, git-ignored)
#   STORECACHE_BIN   use this binary, do not build    (default: build build/proxy/storecache)
#   DEMO_ORIGIN      origin script                    (default tests/support/origin.py)
#
# Everything the demo makes lives in DEMO_DIR: www/course/ (the course the origin serves),
# tls/ (a demo CA that signs the certificates for localhost and origin.localhost), cache/,
# storecache.toml and the logs. Delete the directory to start from scratch.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

mode=run
case "${1:-}" in
  "") ;;
  --check) mode=check ;;
  -h | --help)
    sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "usage: $0 [--check]" >&2
    exit 2
    ;;
esac

port="${DEMO_PORT:-8443}"
admin_port="${DEMO_ADMIN_PORT:-9090}"
run_dir="${DEMO_DIR:-$repo/demo-run}"
origin_py="${DEMO_ORIGIN:-$repo/tests/support/origin.py}"
site=localhost
origin_name=origin.localhost

say() { echo "demo: $*" >&2; }
die() {
  say "ERROR: $*"
  exit 1
}

# ---------------------------------------------------------------------------------------------
# 1. Dependencies and build.
if [ -z "${STORECACHE_BIN:-}" ]; then
  "$repo/scripts/install-deps.sh"
  say "building storecache (build/, RelWithDebInfo)"
  cmake -S "$repo" -B "$repo/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$repo/build" --target storecache -j"$(nproc)"
  bin="$repo/build/proxy/storecache"
else
  bin="$STORECACHE_BIN"
fi
[ -x "$bin" ] || die "storecache binary not found at $bin"
[ -f "$origin_py" ] || die "demo origin not found at $origin_py"

mkdir -p "$run_dir"
run_dir="$(cd "$run_dir" && pwd)"
tls="$run_dir/tls"
www="$run_dir/www"

# ---------------------------------------------------------------------------------------------
# 2. The course. The origin serves www/, so the CA key in tls/ is never reachable over HTTP.
"$repo/scripts/make-course.sh" "$www"

# ---------------------------------------------------------------------------------------------
# 3. Demo CA and certificates, made once and reused (so a browser that was told to trust the
#    demo CA keeps trusting it); remade when missing or within a day of expiry.
cert_valid() { [ -s "$1" ] && openssl x509 -in "$1" -noout -checkend 86400 >/dev/null 2>&1; }

make_ca() {
  say "making the demo CA in $tls"
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$tls/ca.key" -out "$tls/ca.crt" -days 825 -subj "/CN=storecache demo CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" 2>/dev/null
  chmod 600 "$tls/ca.key"
  rm -f "$tls"/*.srl
}

# make_leaf NAME SAN...: NAME.crt/NAME.key signed by the demo CA.
make_leaf() {
  local name="$1" san
  shift
  san="$(
    IFS=,
    echo "$*"
  )"
  say "making a certificate for $name ($san)"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$tls/$name.key" -out "$tls/$name.csr" -subj "/CN=$name" 2>/dev/null
  openssl x509 -req -in "$tls/$name.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" \
    -CAcreateserial -out "$tls/$name.crt" -days 365 -extfile <(
      printf '%s\n' "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature,keyEncipherment" \
        "extendedKeyUsage=serverAuth" "subjectAltName=$san" \
        "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid"
    ) 2>/dev/null
  chmod 600 "$tls/$name.key"
  rm -f "$tls/$name.csr"
}

mkdir -p "$tls"
chmod 700 "$tls"
fresh_ca=0
if ! cert_valid "$tls/ca.crt" || [ ! -s "$tls/ca.key" ]; then
  make_ca
  fresh_ca=1
fi
leaf_ok() {
  [ "$fresh_ca" = 0 ] && cert_valid "$tls/$1.crt" && [ -s "$tls/$1.key" ] &&
    openssl verify -CAfile "$tls/ca.crt" "$tls/$1.crt" >/dev/null 2>&1
}
leaf_ok "$site" || make_leaf "$site" "DNS:$site" "IP:127.0.0.1" "IP:::1"
leaf_ok "$origin_name" || make_leaf "$origin_name" "DNS:$origin_name" "IP:127.0.0.1"

# ---------------------------------------------------------------------------------------------
# 4. Processes. Background jobs of a script ignore SIGINT, so Ctrl-C reaches only this shell,
#    whose trap stops the children in order: storecache first (it drains), then the origin.
origin_pid=""
sc_pid=""
tail_pid=""
sc_status=""

stopped_status=""
stop_pid() { # stop_pid PID NAME SECONDS: SIGTERM, wait, SIGKILL; sets stopped_status
  local pid="$1" name="$2" secs="$3" i
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < secs * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "$name did not stop within ${secs}s, killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  stopped_status=0
  wait "$pid" 2>/dev/null || stopped_status=$?
}

cleanup() {
  trap - INT TERM EXIT
  if [ -n "$tail_pid" ]; then kill "$tail_pid" 2>/dev/null || true; fi
  if [ -n "$sc_pid" ]; then
    say "stopping storecache (pid $sc_pid)"
    stop_pid "$sc_pid" storecache 40
    sc_status="$stopped_status"
    say "storecache exited with status $sc_status"
    sc_pid=""
  fi
  if [ -n "$origin_pid" ]; then
    say "stopping the origin (pid $origin_pid)"
    stop_pid "$origin_pid" origin 5
    origin_pid=""
  fi
}
# shellcheck disable=SC2317  # invoked by trap
on_signal() {
  echo >&2
  cleanup
  [ "$mode" = run ] && exit 0
  exit 130
}
trap cleanup EXIT
trap on_signal INT TERM

# The origin picks a free port itself and says which.
origin_log="$run_dir/origin.log"
: >"$origin_log"
python3 -u "$origin_py" --port 0 --tls-cert "$tls/$origin_name.crt" \
  --tls-key "$tls/$origin_name.key" --root "$www" >"$origin_log" 2>&1 &
origin_pid=$!
origin_port=""
for ((i = 0; i < 100; i++)); do
  origin_port="$(sed -n 's/^listening on \([0-9][0-9]*\).*/\1/p' "$origin_log" | head -n1)"
  [ -n "$origin_port" ] && break
  kill -0 "$origin_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$origin_port" ]; then
  cat "$origin_log" >&2
  die "the origin did not start"
fi
say "origin: https://127.0.0.1:$origin_port/ (certificate for $origin_name), serving $www"

# Listen on ::1 too when this host has IPv6 loopback (some containers do not).
listen="\"127.0.0.1:$port\""
if python3 -c 'import socket; s = socket.socket(socket.AF_INET6); s.bind(("::1", 0))' 2>/dev/null; then
  listen="$listen, \"[::1]:$port\""
  have_ipv6=1
else
  have_ipv6=0
fi

config="$run_dir/storecache.toml"
cat >"$config" <<EOF
# Written by scripts/demo.sh; rewritten on every run.
[server]
listen = [$listen]
workers = 2

[admin]
listen = "127.0.0.1:$admin_port"

[cache]
dir = "$run_dir/cache"
max_size = "2GiB"
max_object_size = "1GiB"

[[site]]
hosts = ["$site"]
upstream = "https://127.0.0.1:$origin_port"
tls_cert = "$tls/$site.crt"
tls_key = "$tls/$site.key"
upstream_ca = "$tls/ca.crt"
upstream_sni = "$origin_name"

# The demo LMS sends no Cache-Control; published course media does not change, so the store
# keeps it fresh for a day (as store IT would configure for a real LMS's media paths).
[[site.cache.rule]]
path = "/course/*"
ttl = "1d"

# Prefetch: every file the course's manifest names is fetched into the cache as soon as
# storecache starts (no windows: always), before any device asks.
[[site.prefetch]]
url = "/course/imsmanifest.xml"
name = "demo-course"
EOF
mkdir -p "$run_dir/cache"

"$bin" --check-config "$config" || die "storecache rejected $config"

sc_log="$run_dir/storecache.log"
: >"$sc_log"
"$bin" --config "$config" >>"$sc_log" 2>&1 &
sc_pid=$!
healthy=0
for ((i = 0; i < 150; i++)); do
  if curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$admin_port/healthz" 2>/dev/null; then
    healthy=1
    break
  fi
  kill -0 "$sc_pid" 2>/dev/null || break
  sleep 0.1
done
if [ "$healthy" != 1 ]; then
  tail -n 50 "$sc_log" >&2
  die "storecache did not become healthy on http://127.0.0.1:$admin_port/healthz (log: $sc_log)"
fi
say "storecache is up (pid $sc_pid), log: $sc_log"

base="https://$site:$port"
ca_rel="${tls#"$repo/"}/ca.crt"

# ---------------------------------------------------------------------------------------------
# 5a. --check: every course file over both protocols, compared with the file on disk; then a
#     byte range of the video; then the shutdown must be clean.
if [ "$mode" = check ]; then
  fetched="$run_dir/fetched"
  mkdir -p "$fetched"
  pass=0
  fail=0
  # curl_get OUT URL ARGS...: fetch through storecache at $addr, whatever localhost resolves
  # to on this machine.
  addr=127.0.0.1
  curl_get() {
    local out="$1" url="$2"
    shift 2
    curl -sS --fail --max-time 60 --cacert "$tls/ca.crt" \
      --resolve "$site:$port:$addr" -o "$out" \
      -w '%{http_code} HTTP/%{http_version} %{size_download} bytes  cache-status: %header{cache-status}' \
      "$@" "$url"
  }
  check_one() { # check_one LABEL EXPECTED_FILE URL CURL_ARGS...
    local label="$1" expected="$2" url="$3" out info
    shift 3
    out="$fetched/body"
    rm -f "$out"
    if ! info="$(curl_get "$out" "$url" "$@" 2>&1)"; then
      say "FAIL $label: curl: $info"
      fail=$((fail + 1))
    elif ! cmp -s "$expected" "$out"; then
      say "FAIL $label: body differs from $expected ($info)"
      fail=$((fail + 1))
    elif [ -n "${want_hit:-}" ] && [[ "$info" != *"storecache; hit"* ]]; then
      say "FAIL $label: not a hit, although prefetch stored it ($info)"
      fail=$((fail + 1))
    else
      printf '  ok   %-40s %s\n' "$label" "$info" >&2
      pass=$((pass + 1))
    fi
  }

  # Prefetch first: the course must be whole in the cache before the first device request.
  ready=""
  for ((i = 0; i < 600; i++)); do
    ready="$(curl -fsS --max-time 2 "http://127.0.0.1:$admin_port/metrics" 2>/dev/null |
      awk '/^storecache_prefetch_ready_ratio\{.*source="demo-course"/ { print $NF }')" || true
    [ "$ready" = 1 ] && break
    sleep 0.1
  done
  if [ "$ready" = 1 ]; then
    say "ok   prefetch: the course is 100% in the cache before any device request"
    pass=$((pass + 1))
  else
    say "FAIL prefetch: the course is not ready after 60 s (ready ratio: ${ready:-none})"
    fail=$((fail + 1))
  fi

  mapfile -t files < <(cd "$www" && find course -type f ! -name '.*' | sort)
  [ "${#files[@]}" -gt 0 ] || die "no course files in $www"
  say "checking ${#files[@]} files over HTTP/1.1 and HTTP/2"
  # Twice over: the first pass fills the cache, the second is served from it.
  # Prefetched: every request is a hit, the first included.
  want_hit=1
  for round in 1st 2nd; do
    for f in "${files[@]}"; do
      check_one "h1 $round /$f" "$www/$f" "$base/$f" --http1.1
      check_one "h2 $round /$f" "$www/$f" "$base/$f" --http2
    done
  done
  want_hit=""
  if [ "$have_ipv6" = 1 ]; then
    addr="[::1]"
    check_one "h2 [::1] /course/index.html" "$www/course/index.html" "$base/course/index.html" \
      --http2
    check_one "h1 [::1] /course/quiz.json" "$www/course/quiz.json" "$base/course/quiz.json" \
      --http1.1
    addr=127.0.0.1
  fi
  # A byte range from the middle of the video, as a browser asks for when seeking.
  video="$www/course/video/intro.mp4"
  expected_range="$fetched/range.expected"
  dd if="$video" of="$expected_range" bs=1M skip=10 count=2 status=none
  check_one "h1 range 10MiB-12MiB video" "$expected_range" "$base/course/video/intro.mp4" \
    --http1.1 -r "$((10 << 20))-$(((12 << 20) - 1))"
  check_one "h2 range 10MiB-12MiB video" "$expected_range" "$base/course/video/intro.mp4" \
    --http2 -r "$((10 << 20))-$(((12 << 20) - 1))"
  rm -rf "$fetched"

  if metrics="$(curl -fsS --max-time 5 "http://127.0.0.1:$admin_port/metrics" 2>/dev/null)"; then
    # Informational: what the cache made of those requests, summed over sites and protocols.
    say "requests by cache status (from /metrics):" "$(awk '
      /^storecache_requests_total\{/ && match($0, /cache_status="[^"]*"/) {
        n[substr($0, RSTART + 14, RLENGTH - 15)] += $NF }
      END { for (k in n) printf "%s=%d ", k, n[k] }' <<<"$metrics")"
  else
    say "FAIL /metrics did not answer"
    fail=$((fail + 1))
  fi
  # The status page counts what was just served (it flushes the usage history first).
  if page="$(curl -fsS --max-time 5 "http://127.0.0.1:$admin_port/" 2>/dev/null)" &&
    grep -q '<b id="requests">[1-9]' <<<"$page"; then
    say "ok   status page at http://127.0.0.1:$admin_port/ shows the requests"
    pass=$((pass + 1))
  else
    say "FAIL status page did not answer or shows no requests"
    fail=$((fail + 1))
  fi

  cleanup
  if [ "$sc_status" != 0 ]; then
    say "FAIL storecache exited with status $sc_status after SIGTERM (expected 0)"
    fail=$((fail + 1))
  fi
  say "summary: $pass passed, $fail failed"
  [ "$fail" = 0 ] && exit 0 || exit 1
fi

# ---------------------------------------------------------------------------------------------
# 5b. Interactive: say what to try, show the log, run until Ctrl-C.
cat <<EOF

storecache demo is running. "localhost" resolves to this machine; the demo CA is $ca_rel.

  Course page (browser; trust $ca_rel first, or accept the warning):
    $base/course/index.html

  The 24 MB video through the cache, over HTTP/2 and HTTP/1.1 (a hit from the first request:
  prefetch stored the course from its imsmanifest.xml at start-up; see
  storecache_prefetch_ready_ratio in the metrics):
    curl --cacert $ca_rel --http2   $base/course/video/intro.mp4 -o /dev/null -w '%{http_version} %{http_code} %{size_download} bytes %{time_total}s\n'
    curl --cacert $ca_rel --http1.1 $base/course/video/intro.mp4 -o /dev/null -w '%{http_version} %{http_code} %{size_download} bytes %{time_total}s\n'

  A seek into the video (Range):
    curl --cacert $ca_rel -r 1000000-1999999 $base/course/video/intro.mp4 -o /dev/null -D -

  Status page (browser): http://127.0.0.1:$admin_port/
  Usage report (the figures are written every 5 s):
    ${bin#"$repo/"} report --config ${config#"$repo/"} --since 24h

  Metrics and health:
    curl http://127.0.0.1:$admin_port/metrics
    curl http://127.0.0.1:$admin_port/healthz

  Config: ${config#"$repo/"}   Origin: https://127.0.0.1:$origin_port (as $origin_name)

Press Ctrl-C to stop. storecache log follows:

EOF
tail -n +1 -f "$sc_log" &
tail_pid=$!
# wait returns early when a trapped signal arrives; the trap does the stopping. storecache may
# also see the terminal's Ctrl-C itself (it handles SIGINT) and stop first: status 0.
sc_rc=0
wait "$sc_pid" || sc_rc=$?
sc_pid=""
if [ "$sc_rc" = 0 ]; then
  say "storecache stopped"
  exit 0
fi
say "storecache exited with status $sc_rc; see $sc_log"
exit 1
