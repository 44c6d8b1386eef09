#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, clang + ASan + UBSan) and runs them.
#   scripts/fuzz.sh [seconds] [-j N]   each target for `seconds` (default 60), N at a time
#                                      (default 1); `scripts/fuzz.sh 600` is the long run
#   scripts/fuzz.sh --replay           each target once over its seed corpus, then stop
#   scripts/fuzz.sh --ci [seconds]     replay, then each target for `seconds` (default 8)
#   FUZZ_TARGETS="fuzz_range fuzz_config" scripts/fuzz.sh 120   only these targets
# New inputs that add coverage go to build-fuzz/corpus/<target> (fuzz/corpus/<target> holds
# the seeds kept in git); findings (crash-*, timeout-*, leak-*, oom-*) go to fuzz/crashes/.
# Prints per target: runs, execs/s, coverage (edges, features), corpus size, peak RSS.
# Exits non-zero when any target found something.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=run
seconds=60
jobs=1
while [ $# -gt 0 ]; do
  case "$1" in
    --replay) mode=replay ;;
    --ci) mode=ci; seconds=8 ;;
    -j) jobs="$2"; shift ;;
    -j*) jobs="${1#-j}" ;;
    [0-9]*) seconds="$1" ;;
    *) echo "usage: scripts/fuzz.sh [seconds] [-j N] | --replay | --ci [seconds]" >&2; exit 2 ;;
  esac
  shift
done

build=build-fuzz
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake -S . -B "$build" -G "Unix Makefiles" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++ -DSTORECACHE_FUZZ=ON -DSTORECACHE_WERROR=ON -DBUILD_TESTING=OFF \
  "${launcher[@]}" >/dev/null
cmake --build "$build" -j"$(nproc)" --target fuzz_all

targets=${FUZZ_TARGETS:-$(cd fuzz && ls fuzz_*.cpp | sed 's/\.cpp$//')}
mkdir -p fuzz/crashes "$build/corpus" "$build/fuzz-logs"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

max_len() { # the largest input worth trying, per target
  case "$1" in
    fuzz_http2_session|fuzz_http1_session|fuzz_config) echo 16384 ;;
    *) echo 4096 ;;
  esac
}

replay() { # target: every seed once
  local t="$1" seeds=(fuzz/corpus/"$1"/*)
  if ! "$build/fuzz/$t" -runs=1 "${seeds[@]}" >"$build/fuzz-logs/$t.replay" 2>&1; then
    echo "FAIL $t: replay of fuzz/corpus/$t (log: $build/fuzz-logs/$t.replay)" >&2
    tail -30 "$build/fuzz-logs/$t.replay" >&2
    return 1
  fi
  echo "replayed $t: ${#seeds[@]} inputs"
}

extra_flags() { # per target
  case "$1" in
    # A session run leaves Asio's and OpenSSL's per-thread caches allocated, so libFuzzer
    # would run a full leak scan after every input (10x slower); LeakSanitizer still checks
    # at exit.
    fuzz_http2_session|fuzz_http1_session) echo -detect_leaks=0 ;;
  esac
}

fuzz_one() { # target seconds
  local t="$1" s="$2" dict=()
  [ -f "fuzz/dict/$t.dict" ] && dict=(-dict="fuzz/dict/$t.dict")
  read -r -a extra <<<"$(extra_flags "$t")"
  mkdir -p "$build/corpus/$t"
  local log="$build/fuzz-logs/$t.log" rc=0
  "$build/fuzz/$t" -max_total_time="$s" -max_len="$(max_len "$t")" -timeout=30 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="fuzz/crashes/$t-" "${dict[@]}" \
    "${extra[@]}" \
    "$build/corpus/$t" "fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
  local runs eps cov ft corp rss
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  corp=$(grep -o 'corp: [0-9]*/[0-9a-zA-Z]*' "$log" | tail -1 | cut -d' ' -f2)
  printf '%-26s %4ss %10s runs %7s exec/s  cov %6s  ft %6s  corpus %-10s rss %5s MB  %s\n' \
    "$t" "$s" "${runs:-?}" "${eps:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "${rss:-?}" \
    "$([ "$rc" -eq 0 ] && echo ok || echo "FOUND (log: $log)")"
  if [ "$rc" -ne 0 ]; then
    grep -E 'ERROR|invariant failed|SUMMARY|Test unit written' "$log" | head -10 >&2
    return 1
  fi
}

failed=0
if [ "$mode" != run ]; then
  for t in $targets; do replay "$t" || failed=1; done
  [ "$mode" = replay ] && exit "$failed"
fi

running=0
for t in $targets; do
  if [ "$jobs" -le 1 ]; then
    fuzz_one "$t" "$seconds" || failed=1
    continue
  fi
  fuzz_one "$t" "$seconds" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || failed=1
    running=$((running - 1))
  fi
done
while [ "$running" -gt 0 ]; do
  wait -n || failed=1
  running=$((running - 1))
done
[ "$failed" -eq 0 ] || echo "fuzz: findings in fuzz/crashes/ (see fuzz/README.md)" >&2
exit "$failed"
