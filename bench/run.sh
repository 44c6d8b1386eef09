#!/usr/bin/env bash
# bench/run.sh: storecache and nginx proxy_cache side by side on this machine, in one run.
#
# Uses the shared peer-proxy benchmark (../shared/bench next to the repo clone; not copied here):
# setup.sh writes origin files, a TLS cert and configs into a work dir; ctl.sh starts the plain-
# HTTP origin nginx (19000), the 2 s header-delay origin (19005) and nginx proxy_cache (19001);
# this script starts storecache on 19016 (admin 19017) in front of the same origin with the same
# cert; bench-all.sh runs interleaved rounds against both and collapse tests; summarize.py and
# bench/ratios.py print the figures. Everything started here is stopped on exit.
#
#   bench/run.sh                                      # 3 rounds, ~9 min on 2 cores (+ build)
#   BENCH_ROUNDS=1 PB_DUR=3 PB_H2_N=20000 bench/run.sh   # quick check, ~2 min
#
# Environment (all optional):
#   BENCH_ROUNDS     interleaved rounds (default 3); figures are medians of per-round ratios
#   BENCH_WORK       work dir (default /tmp/sc-bench); results in $BENCH_WORK/results/run-*/
#   SHARED_BENCH     the shared scripts (default: <repo>/../shared/bench)
#   STORECACHE_BIN   use this binary, do not build (default: build build/proxy/storecache)
#   BENCH_BUILD_DIR  build dir when building (default <repo>/build)
#   BENCH_LOG_LEVEL  storecache --log-level (default notice: no access log, as nginx access_log off)
#   BENCH_TIMEOUT    seconds before bench-all.sh is stopped (default: from rounds and PB_DUR)
#   PB_DUR, PB_H2_N  passed to run-bench.sh: wrk seconds (10), h2load requests (200000)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(git -C "$here" rev-parse --show-toplevel 2>/dev/null || (cd "$here/.." && pwd))"
shared="${SHARED_BENCH:-$repo/../shared/bench}"
W="${BENCH_WORK:-/tmp/sc-bench}"
rounds="${BENCH_ROUNDS:-3}"
log_level="${BENCH_LOG_LEVEL:-notice}"
sc_port=19016
admin_port=19017

say() { echo "bench: $*" >&2; }
die() {
  say "ERROR: $*"
  exit 1
}

[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive integer, not '$rounds'"
for f in setup.sh ctl.sh bench-all.sh run-bench.sh collapse-test.sh summarize.py; do
  [ -f "$shared/$f" ] || die "$shared/$f not found (set SHARED_BENCH to the shared bench scripts)"
done
shared="$(cd "$shared" && pwd)"

# ---------------------------------------------------------------------------------------------
# 1. Dependencies (nginx, wrk, h2load, curl) and the binary.
"$repo/scripts/install-deps.sh" --bench
for t in nginx wrk h2load curl python3; do
  command -v "$t" >/dev/null || die "$t not found after scripts/install-deps.sh --bench"
done
if [ -n "${STORECACHE_BIN:-}" ]; then
  bin="$STORECACHE_BIN"
else
  build="${BENCH_BUILD_DIR:-$repo/build}"
  say "building storecache in $build (RelWithDebInfo)"
  cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build" --target storecache -j2
  bin="$build/proxy/storecache"
fi
[ -x "$bin" ] || die "storecache binary not found at $bin"
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"

# ---------------------------------------------------------------------------------------------
# 2. Nothing may already listen on our ports: a leftover daemon (another work dir, an earlier
#    run killed with -9) would be measured instead of ours, or make ours fail to bind.
port_open() { (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in 19000 19001 19005 19015 "$sc_port" "$admin_port"; do
  port_open "$p" && die "something already listens on 127.0.0.1:$p (an earlier run? try: $shared/ctl.sh stop all $W)"
done

# ---------------------------------------------------------------------------------------------
# 3. Stop on exit whatever this script started, newest first, by PID only.
started=()    # ctl.sh service names, in start order
sc_pid=""
bench_pid=""
cleanup() {
  local rc=$? i
  trap - EXIT INT TERM
  if [ -n "$bench_pid" ] && kill -0 "$bench_pid" 2>/dev/null; then
    kill -TERM "$bench_pid" 2>/dev/null || true # timeout(1) passes it on to bench-all's group
    wait "$bench_pid" 2>/dev/null || true
  fi
  if [ -n "$sc_pid" ]; then
    kill -TERM "$sc_pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
      kill -0 "$sc_pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$sc_pid" 2>/dev/null; then
      say "storecache (pid $sc_pid) did not stop within 15 s, killing it"
      kill -KILL "$sc_pid" 2>/dev/null || true
    fi
    wait "$sc_pid" 2>/dev/null || true
  fi
  for ((i = ${#started[@]} - 1; i >= 0; i--)); do
    "$shared/ctl.sh" stop "${started[$i]}" "$W" || true
  done
  if [ ${#started[@]} -gt 0 ]; then say "stopped storecache and ${started[*]}"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------
# 4. Work dir, origin, delay origin, nginx. Both caches start empty, so each run is the same.
say "setting up $W"
# setup.sh also writes the varnish/trafficserver/squid configs, copying trafficserver's files
# from /etc/trafficserver; without that package it stops there, after everything we use.
setup_rc=0
"$shared/setup.sh" "$W" || setup_rc=$?
if [ "$setup_rc" != 0 ]; then
  for f in ports.env tls/localhost.crt tls/localhost.key conf/origin-nginx.conf \
    conf/nginx-proxy.conf origin/small.json origin/page.html origin/image.jpg origin/video.mp4 \
    origin/slow/big5m.bin; do
    [ -s "$W/$f" ] || die "setup.sh failed (status $setup_rc) before writing $W/$f"
  done
  say "setup.sh stopped (status $setup_rc) after the origin, cert and nginx configs, in the" \
    "part for peers this benchmark does not start (trafficserver/squid not installed): fine"
fi
find "$W/cache/nginx" -mindepth 1 -delete
rm -rf "$W/cache/storecache"
mkdir -p "$W/cache/storecache" "$W/logs"
for s in origin delayorigin nginx; do
  started+=("$s")
  "$shared/ctl.sh" start "$s" "$W" || die "ctl.sh start $s failed (logs in $W/logs)"
done

# ---------------------------------------------------------------------------------------------
# 5. storecache: same origin, same cert, 2 workers (nginx runs worker_processes auto = 2 here).
conf="$W/conf/storecache.toml"
cat >"$conf" <<EOF
# Written by bench/run.sh; rewritten on every run.
[server]
listen = ["127.0.0.1:$sc_port"]
workers = 2

[admin]
listen = "127.0.0.1:$admin_port"

[timeouts]
shutdown_grace = "5s"

[cache]
dir = "$W/cache/storecache"
max_size = "4GiB"
max_object_size = "1GiB"

[[site]]
hosts = ["localhost", "127.0.0.1"]
upstream = "http://127.0.0.1:19000"
allow_http_upstream = true
tls_cert = "$W/tls/localhost.crt"
tls_key = "$W/tls/localhost.key"
upstream_max_idle = 64
EOF
"$bin" --check-config "$conf" >&2 || die "storecache rejected $conf"
sc_log="$W/logs/storecache.log"
"$bin" --config "$conf" --log-level "$log_level" >>"$sc_log" 2>&1 &
sc_pid=$!
for ((i = 0; i < 100; i++)); do
  curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$admin_port/healthz" 2>/dev/null && break
  kill -0 "$sc_pid" 2>/dev/null || break
  sleep 0.1
done
code="$(curl -sk --max-time 10 -o /dev/null -w '%{http_code}' "https://127.0.0.1:$sc_port/small.json" || true)"
if [ "$code" != 200 ]; then
  tail -n 30 "$sc_log" >&2
  die "storecache (pid $sc_pid) does not serve https://127.0.0.1:$sc_port/small.json (HTTP $code; log $sc_log)"
fi
say "storecache $("$bin" --version | cut -d' ' -f2-) is up (pid $sc_pid, log $sc_log)"

# ---------------------------------------------------------------------------------------------
# 6. Interleaved rounds + collapse tests. Bounded: wrk runs are PB_DUR long, but h2load (-n)
#    and curl against a proxy that stalls are not, so the whole of bench-all.sh gets a limit.
dur="${PB_DUR:-10}"
limit="${BENCH_TIMEOUT:-$((rounds * 2 * (4 * dur + 120) + 300))}"
mkdir -p "$W/results"
say "bench-all.sh: $rounds round(s), nginx:19001 storecache:$sc_port, PB_DUR=${dur}s, limit ${limit}s, load $(cut -d' ' -f1-3 /proc/loadavg)"
export PB_PIDS_STORECACHE="$sc_pid"
timeout -k 10 "$limit" "$shared/bench-all.sh" "$rounds" "$W" "nginx:19001 storecache:$sc_port" \
  > >(tee "$W/logs/bench-all.out") 2>&1 &
bench_pid=$!
bench_rc=0
wait "$bench_pid" || bench_rc=$?
bench_pid=""
[ "$bench_rc" = 124 ] && die "bench-all.sh did not finish within ${limit}s (BENCH_TIMEOUT)"
[ "$bench_rc" = 0 ] || die "bench-all.sh failed with status $bench_rc"
sleep 0.2 # let tee finish writing bench-all's last line ("results in DIR")
out="$(sed -n 's/^results in //p' "$W/logs/bench-all.out" | tail -n1)"
if [ -z "$out" ] || [ ! -s "$out/summary.md" ]; then
  die "bench-all.sh wrote no summary.md (output: $W/logs/bench-all.out)"
fi

# ---------------------------------------------------------------------------------------------
# 7. The figures: the shared summary, then storecache / nginx for the figures that matter.
python3 "$here/ratios.py" "$out/results.txt" "$out/collapse.txt" nginx storecache >"$out/ratios.md"
{
  echo
  echo "=================================================================== summary.md"
  cat "$out/summary.md"
  echo
  echo "=================================================================== ratios"
  cat "$out/ratios.md"
  echo
  tree="not a git checkout"
  if git -C "$repo" rev-parse --short HEAD >/dev/null 2>&1; then
    tree="$(git -C "$repo" rev-parse --short HEAD)"
    git -C "$repo" diff --quiet HEAD -- . 2>/dev/null || tree="$tree + local changes"
  fi
  echo "binary: $bin ($("$bin" --version)); tree: $tree"
  echo "results: $out/{results.txt,collapse.txt,summary.md,ratios.md,env.txt,raw/}"
}
