#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs every unit and integration test,
# then does it all again under AddressSanitizer + UndefinedBehaviorSanitizer, then builds the
# libFuzzer targets with clang, replays their seed corpora and runs each briefly.
#   scripts/test.sh            all three (what CI runs)
#   scripts/test.sh --quick    the Release build only
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh

jobs=$(nproc)
# ccache (installed by install-deps.sh) makes a rebuild of unchanged files a lookup.
# Paths are hashed relative to the checkout, so a fresh clone in another folder (CI) still hits.
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
run_suite() { # build-dir extra-cmake-args...
  local dir="$1"; shift
  cmake -S . -B "$dir" -G "Unix Makefiles" "${launcher[@]}" "$@" >/dev/null
  local t0=$SECONDS
  cmake --build "$dir" -j"$jobs"
  local t1=$SECONDS
  # Integration tests start daemons and time things: run them one at a time.
  (cd "$dir" && ctest --output-on-failure --timeout 900 -j1)
  echo "== $dir: build $((t1 - t0)) s, tests $((SECONDS - t1)) s"
}

# Release (-O3): the build type a packager uses, with our own warnings as errors.
run_suite build-release -DCMAKE_BUILD_TYPE=Release -DSTORECACHE_WERROR=ON
if [ "${1:-}" != "--quick" ]; then
  # A small quarantine: the bounded-memory test measures storecache's peak RSS, not ASan's
  # 256 MiB of recently freed blocks.
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1:quarantine_size_mb=16
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  run_suite build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTORECACHE_SANITIZE=ON \
    -DSTORECACHE_WERROR=ON
  # Fuzzing (fuzz/README.md): a clang build of its own; every seed corpus replayed (the
  # regression inputs of past findings among them), then each target for 8 seconds, one per core.
  t0=$SECONDS
  scripts/fuzz.sh --ci 8 -j"$jobs"
  echo "== fuzz: $((SECONDS - t0)) s (build, replay, runs)"
fi
echo "== scripts/test.sh: $SECONDS s in all"
