#!/usr/bin/env bash
# bench/shift_start.sh: the shift start, storecache with prefetch beside nginx proxy_cache.
#
# A course module (30 files: HTML, CSS, JS, images, a JSON quiz and a 30 MiB video) sits on an
# origin behind a thin WAN (bench/wan_origin.py: 40 Mbit/s total per proxy, 30 ms before each
# response's headers). storecache gets the night before: it starts with a [[site.prefetch]] URL
# list naming the module and we wait until storecache_prefetch_ready_ratio is 1. nginx has no
# prefetch, so it starts cold. Then, for each proxy in turn, 40 devices start at once, each
# fetching the whole module over TLS (HTML, then the other 28 files 6 at a time, then the video
# as a player would: five Range requests covering it), and every byte is checked (sha256).
# Printed (and written to $SHIFT_WORK/results-*.md): origin requests and bytes during the
# burst, WAN bytes / module size, when the devices had the page and the whole module
# (p50/p95/max), errors, verified devices, and storecache / nginx.
#
#   bench/shift_start.sh                                   # ~1 min (+ build)
#   STORECACHE_BIN=/work/main/build/proxy/storecache bench/shift_start.sh
#
# Environment (all optional):
#   STORECACHE_BIN   use this binary (default: build build/proxy/storecache, Release)
#   BENCH_BUILD_DIR  build dir when building (default <repo>/build)
#   SHARED_BENCH     the shared scripts (default <repo>/../shared/bench): setup.sh writes the
#                    cert and the nginx proxy_cache config this script runs (ports changed)
#   SHIFT_WORK       work dir (default /tmp/sc-shift)
#   SHIFT_DEVICES    devices (40)           SHIFT_RATE_MBIT  WAN rate per proxy (40)
#   SHIFT_RTT_MS     WAN delay before each response's headers (30)
#   SHIFT_VIDEO_MIB  video size (30)        SHIFT_BURST_S    a burst is cut off after this (80)
#   SHIFT_NIGHT_S    give up waiting for prefetch after this (60)
#   SHIFT_ORDER      which proxy's night and burst run first ("storecache nginx", the default,
#                    or "nginx storecache"); the table always reads storecache / nginx
#   SHIFT_DEVICE_RATE  curl --limit-rate per transfer (e.g. 2M: a store Wi-Fi's share per
#                    device); default none: devices take what the 2 cores give them
#
# Ports (loopback only): 19040 origin link for storecache, 19041 origin link for nginx,
# 19042 origin control, 19043 storecache TLS, 19044 storecache admin, 19045 nginx TLS,
# 19046 nginx plain HTTP (unused, in the shared config). Not part of CI.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(git -C "$here" rev-parse --show-toplevel 2>/dev/null || (cd "$here/.." && pwd))"
shared="${SHARED_BENCH:-$repo/../shared/bench}"
W="${SHIFT_WORK:-/tmp/sc-shift}"
devices="${SHIFT_DEVICES:-40}"
rate_mbit="${SHIFT_RATE_MBIT:-40}"
rtt_ms="${SHIFT_RTT_MS:-30}"
video_mib="${SHIFT_VIDEO_MIB:-30}"
burst_s="${SHIFT_BURST_S:-80}"
night_s="${SHIFT_NIGHT_S:-60}"
device_rate="${SHIFT_DEVICE_RATE:-}"
order="${SHIFT_ORDER:-storecache nginx}"
p_sc_origin=19040 p_ng_origin=19041 p_control=19042
p_sc=19043 p_admin=19044 p_ng=19045 p_ng_http=19046

say() { echo "shift: $*" >&2; }
die() {
  say "ERROR: $*"
  exit 1
}
[[ "$devices" =~ ^[1-9][0-9]*$ ]] || die "SHIFT_DEVICES must be a positive integer"
[[ "$video_mib" =~ ^[1-9][0-9]*$ ]] || die "SHIFT_VIDEO_MIB must be a positive integer"
case "$order" in "storecache nginx" | "nginx storecache") ;; *) die "SHIFT_ORDER must be 'storecache nginx' or 'nginx storecache'" ;; esac
[ -f "$shared/setup.sh" ] || die "$shared/setup.sh not found (set SHARED_BENCH)"
shared="$(cd "$shared" && pwd)"
t_script=$EPOCHREALTIME
load_start="$(cut -d' ' -f1 /proc/loadavg)"

# ---------------------------------------------------------------------------------------------
# 1. Dependencies (nginx, curl; python3 for the origin and the report) and the binary.
"$repo/scripts/install-deps.sh" --bench
for t in nginx curl python3 sha256sum; do
  command -v "$t" >/dev/null || die "$t not found after scripts/install-deps.sh --bench"
done
if [ -n "${STORECACHE_BIN:-}" ]; then
  bin="$STORECACHE_BIN"
else
  build="${BENCH_BUILD_DIR:-$repo/build}"
  say "building storecache in $build (Release)"
  cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" --target storecache -j2
  bin="$build/proxy/storecache"
fi
[ -x "$bin" ] || die "storecache binary not found at $bin"
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"

port_open() { (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in $p_sc_origin $p_ng_origin $p_control $p_sc $p_admin $p_ng $p_ng_http; do
  port_open "$p" && die "something already listens on 127.0.0.1:$p (an earlier run?)"
done

# ---------------------------------------------------------------------------------------------
# 2. Stop on exit whatever this script started, by PID only.
origin_pid="" sc_pid="" ng_started="" device_pids=()
stop_pid() { # pid name
  local pid="$1" i
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 150; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "$2 (pid $pid) did not stop within 15 s, killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}
stop_nginx() {
  local f="$W/run/nginx-proxy.pid" pid i
  [ -n "$ng_started" ] || return 0
  ng_started=""
  [ -s "$f" ] || return 0
  pid="$(cat "$f")"
  kill -QUIT "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local p
  for p in "${device_pids[@]}"; do # each device job is its own process group: it and its curl
    kill -TERM -- "-$p" 2>/dev/null || true
  done
  stop_pid "$sc_pid" storecache
  sc_pid=""
  stop_nginx
  stop_pid "$origin_pid" origin
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------
# 3. Work dir: cert and nginx config from the shared setup.sh (its trafficserver part fails
#    without that package, after everything used here), ports moved to ours.
say "setting up $W"
mkdir -p "$W"
setup_rc=0
"$shared/setup.sh" "$W" >"$W/setup.out" 2>&1 || setup_rc=$?
for f in tls/localhost.crt tls/localhost.key conf/nginx-proxy.conf; do
  [ -s "$W/$f" ] || die "setup.sh failed (status $setup_rc) before writing $W/$f ($W/setup.out)"
done
cert="$W/tls/localhost.crt"
ngconf="$W/conf/nginx-shift.conf"
sed -e "s/listen 127\.0\.0\.1:19001 /listen 127.0.0.1:$p_ng /" \
  -e "s/listen 127\.0\.0\.1:19015 /listen 127.0.0.1:$p_ng_http /" \
  -e "s/server 127\.0\.0\.1:19000;/server 127.0.0.1:$p_ng_origin;/" \
  -e "s#cache/nginx #cache/nginx-shift #" \
  "$W/conf/nginx-proxy.conf" >"$ngconf"
for want in "listen 127.0.0.1:$p_ng ssl http2" "server 127.0.0.1:$p_ng_origin;" "proxy_cache_lock on" "cache/nginx-shift "; do
  grep -qF "$want" "$ngconf" || die "$ngconf: the shared nginx config changed ('$want' not found)"
done
grep -qE '1900[0-9]|1901[0-9]' "$ngconf" && die "$ngconf still names a port of the shared set"
rm -rf "$W/cache/nginx-shift" "$W/cache/storecache-shift" "$W/runs"
mkdir -p "$W/cache/nginx-shift" "$W/cache/storecache-shift" "$W/runs" "$W/logs" "$W/run"

# ---------------------------------------------------------------------------------------------
# 4. The module: 30 files of random bytes (kept from an earlier run when the sizes match) and
#    the prefetch URL list naming them. manifest.txt: path size sha256.
root="$W/origin-root"
mod="$root/module"
mkdir -p "$mod"/{css,js,img,data,video}
module_files=(
  index.html:24576
  css/main.css:49152 css/theme.css:12288 css/print.css:5120 css/fonts.css:8192
  js/vendor.js:204800 js/app.js:184320 js/player.js:92160 js/scorm-api.js:36864
  js/quiz.js:22528 js/i18n.js:15360 js/analytics.js:9216
  img/logo.png:6144 img/banner.jpg:194560 img/icon-play.png:5120 img/icon-next.png:5120
  img/icon-prev.png:5120 img/icon-check.png:7168
  img/slide01.jpg:40960 img/slide02.jpg:61440 img/slide03.jpg:81920 img/slide04.jpg:102400
  img/slide05.jpg:122880 img/slide06.jpg:143360 img/slide07.jpg:163840 img/slide08.jpg:184320
  img/slide09.jpg:71680 img/slide10.jpg:153600
  data/quiz.json:18432
  "video/intro.mp4:$((video_mib * 1048576))"
)
: >"$W/manifest.txt"
{
  echo "# shift-start module: every file a device needs"
} >"$mod/prefetch.txt"
for e in "${module_files[@]}"; do
  p="${e%%:*}" n="${e##*:}"
  if [ ! -f "$mod/$p" ] || [ "$(stat -c %s "$mod/$p")" != "$n" ]; then head -c "$n" /dev/urandom >"$mod/$p"; fi
  echo "/module/$p $n $(sha256sum "$mod/$p" | cut -d' ' -f1)" >>"$W/manifest.txt"
  echo "/module/$p" >>"$mod/prefetch.txt"
done
video_path=/module/video/intro.mp4
video_size=$((video_mib * 1048576))
# A player's ranges: the first MiB (probe, moov), then 8 MiB pieces to the end.
ranges=("0-1048575")
for ((o = 1048576; o < video_size; o += 8388608)); do
  e=$((o + 8388608 - 1))
  ((e < video_size)) || e=$((video_size - 1))
  ranges+=("$o-$e")
done

# ---------------------------------------------------------------------------------------------
# 5. The origin: one paced link per proxy, counters per link.
python3 "$here/wan_origin.py" --root "$root" --listen "storecache:$p_sc_origin" \
  --listen "nginx:$p_ng_origin" --control "$p_control" --rate-mbit "$rate_mbit" --rtt-ms "$rtt_ms" \
  >>"$W/logs/origin.log" 2>&1 </dev/null &
origin_pid=$!
for ((i = 0; i < 100; i++)); do
  port_open "$p_control" && break
  kill -0 "$origin_pid" 2>/dev/null || die "the origin exited ($W/logs/origin.log)"
  sleep 0.1
done
port_open "$p_control" || die "the origin does not listen on $p_control"
origin_stats() { curl -fsS --max-time 5 "http://127.0.0.1:$p_control/stats"; }
origin_reset() { curl -fsS --max-time 5 -o /dev/null "http://127.0.0.1:$p_control/reset"; }

# ---------------------------------------------------------------------------------------------
# 6. One device: the HTML, then the rest 6 at a time (one connection, HTTP/2 as negotiated),
#    then the video by ranges. Every transfer writes "T path status bytes curl-exit" to its log.
#    It starts when the start line opens (all devices at once) and stops at the burst deadline.
write_lists() { # base dir: the per-proxy curl config for the assets and the video's arguments
  local base="$1" dir="$2" p
  : >"$dir/assets.cfg"
  while read -r p _ _; do
    case "$p" in /module/index.html | "$video_path") continue ;; esac
    printf 'url = "%s%s"\noutput = "%s"\n' "$base" "$p" "${p#/module/}" >>"$dir/assets.cfg"
  done <"$W/manifest.txt"
}
device() { # n base dir deadline(epoch s)
  local n="$1" base="$2" dir="$3" deadline="$4" d="$3/dev$1" t_page t_end mt r first=1 vargs=()
  mkdir -p "$d/files"
  : <"$dir/start" # blocks until the start line opens
  local t0=$EPOCHREALTIME
  cc() {
    mt=$((deadline - EPOCHSECONDS))
    ((mt > 0)) || mt=1
    printf '%s\n' -sS --cacert "$cert" --max-time "$mt"
    [ -z "$device_rate" ] || printf '%s\n' --limit-rate "$device_rate"
  }
  local wfmt='%{stderr}T %{url_effective} %{http_code} %{size_download} %{exitcode} %{time_total}\n'
  mapfile -t c < <(cc)
  curl "${c[@]}" -o "$d/files/index.html" -w "$wfmt" "$base/module/index.html" 2>>"$d/log" || true
  mapfile -t c < <(cc)
  curl "${c[@]}" -Z --parallel-max 6 --no-progress-meter --create-dirs --output-dir "$d/files" -K "$dir/assets.cfg" \
    -w "$wfmt" 2>>"$d/log" || true
  t_page=$EPOCHREALTIME
  mapfile -t c < <(cc)
  for r in "${ranges[@]}"; do
    ((first)) || vargs+=(--next)
    first=0
    vargs+=("${c[@]}" -r "$r" -w "%{stderr}T %{url_effective}#$r %{http_code} %{size_download} %{exitcode} %{time_total}\n" "$base$video_path")
  done
  curl "${vargs[@]}" 2>>"$d/log" | sha256sum | cut -d' ' -f1 >"$d/video.sha256" || true
  t_end=$EPOCHREALTIME
  echo "$t0 $t_page $t_end" >"$d/times"
}

burst() { # label port
  local label="$1" port="$2" dir="$W/runs/$1" i t0 deadline
  mkdir -p "$dir"
  write_lists "https://127.0.0.1:$port" "$dir"
  rm -f "$dir/start"
  mkfifo "$dir/start"
  deadline=$((EPOCHSECONDS + burst_s + 3))
  device_pids=()
  set -m # each device job in its own process group, so that cleanup can stop it with its curl
  for ((i = 1; i <= devices; i++)); do
    device "$i" "https://127.0.0.1:$port" "$dir" "$deadline" &
    device_pids+=($!)
  done
  set +m
  sleep 1 # every device is waiting on the start line
  origin_reset
  t0=$EPOCHREALTIME
  exec 3<>"$dir/start" # opens the line: every waiting device goes (read-write: never blocks)
  say "$label: $devices devices started"
  for i in "${device_pids[@]}"; do wait "$i" || true; done
  device_pids=()
  exec 3>&-
  echo "$t0 $EPOCHREALTIME" >"$dir/burst_times"
  origin_stats >"$dir/origin.json"
  # What each device received, checked against the origin's files (after the clock stopped).
  for ((i = 1; i <= devices; i++)); do
    (cd "$dir/dev$i/files" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum) >"$dir/dev$i/files.sha256"
  done
  say "$label: done in $(python3 -c "print(f'{$EPOCHREALTIME - $t0:.1f}')") s"
}

# ---------------------------------------------------------------------------------------------
# 7. storecache: the night before. Same settings as bench/run.sh, plus the prefetch source.
sc_conf="$W/conf/storecache-shift.toml"
cat >"$sc_conf" <<EOF
# Written by bench/shift_start.sh; rewritten on every run.
[server]
listen = ["127.0.0.1:$p_sc"]
workers = 2

[admin]
listen = "127.0.0.1:$p_admin"

[timeouts]
shutdown_grace = "5s"

[cache]
dir = "$W/cache/storecache-shift"
max_size = "4GiB"
max_object_size = "1GiB"

[prefetch]
connections = 2

[[site]]
hosts = ["localhost", "127.0.0.1"]
upstream = "http://127.0.0.1:$p_sc_origin"
allow_http_upstream = true
tls_cert = "$W/tls/localhost.crt"
tls_key = "$W/tls/localhost.key"
upstream_max_idle = 64

[[site.prefetch]]
url = "/module/prefetch.txt"
name = "module"
kind = "url_list"
EOF
"$bin" --check-config "$sc_conf" >&2 || die "storecache rejected $sc_conf"
run_storecache() {
  origin_reset
  t_night=$EPOCHREALTIME
  "$bin" --config "$sc_conf" --log-level notice >>"$W/logs/storecache.log" 2>&1 </dev/null &
  sc_pid=$!
  ratio=""
  for ((i = 0; i < night_s * 10; i++)); do
    kill -0 "$sc_pid" 2>/dev/null || die "storecache exited ($W/logs/storecache.log)"
    ratio="$(curl -fsS --max-time 2 "http://127.0.0.1:$p_admin/metrics" 2>/dev/null |
      sed -n 's/^storecache_prefetch_ready_ratio{[^}]*source="module"[^}]*} \([0-9.e+-]*\)$/\1/p' || true)"
    [ "$ratio" = 1 ] && break
    sleep 0.1
  done
  [ "$ratio" = 1 ] || die "prefetch did not make the module ready within ${night_s}s (ratio '${ratio}'; $W/logs/storecache.log)"
  night_s_taken="$(python3 -c "print(f'{$EPOCHREALTIME - $t_night:.1f}')")"
  origin_stats >"$W/runs/night.json"
  say "storecache: prefetch ready in ${night_s_taken} s (storecache_prefetch_ready_ratio 1)"

  burst storecache "$p_sc"
  stop_pid "$sc_pid" storecache # the proxies do not run at the same time
  sc_pid=""
}

# ---------------------------------------------------------------------------------------------
# 8. nginx proxy_cache: cold (no prefetch in nginx).
run_nginx() {
  ng_started=1
  nginx -c "$ngconf" -p "$W/run/" || die "nginx failed to start ($W/logs/nginx-proxy-error.log)"
  for ((i = 0; i < 100; i++)); do
    port_open "$p_ng" && break
    sleep 0.1
  done
  port_open "$p_ng" || die "nginx does not listen on $p_ng"
  burst nginx "$p_ng"
  stop_nginx
}

for proxy in $order; do "run_$proxy"; done

# ---------------------------------------------------------------------------------------------
# 9. The table.
tree="not a git checkout"
if git -C "$repo" rev-parse --short HEAD >/dev/null 2>&1; then
  tree="$(git -C "$repo" rev-parse --short HEAD)"
  git -C "$repo" diff --quiet HEAD -- . 2>/dev/null || tree="$tree + local changes"
fi
out="$W/results-$(date -u +%Y%m%d-%H%M%S).md"
python3 "$here/shift_report.py" --work "$W" --devices "$devices" --night-s "$night_s_taken" \
  --rate-mbit "$rate_mbit" --rtt-ms "$rtt_ms" --ranges "${ranges[*]}" --device-rate "${device_rate:-none}" \
  --about "binary $("$bin" --version), tree $tree, $(nproc) cores, order $order, load average $load_start at the start, $(cut -d' ' -f1 /proc/loadavg) at the end" \
  storecache nginx | tee "$out" || report_rc=$? # 1: warnings (errors, wrong bytes) printed
echo
say "table in $out; raw data in $W/runs/ (whole run $(python3 -c "print(f'{$EPOCHREALTIME - $t_script:.0f}')") s)"
exit "${report_rc:-0}"
