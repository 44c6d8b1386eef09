#!/usr/bin/env bash
# A long kill -9 loop (issue 11): the daemon SIGKILLed at random moments during fills under
# h1/h2 load, restarted on the same cache directory, every complete body compared with the
# origin's (tests/integration/test_kill9_loop.py, which CI runs with 100 cycles).
#   scripts/kill9-loop.sh [cycles] [seed]      default: 1000 cycles, seed from the clock
# Uses build/proxy/storecache unless STORECACHE_BIN is set.
set -euo pipefail
cd "$(dirname "$0")/.."
export STORECACHE_KILL_CYCLES="${1:-1000}"
if [ -n "${2:-}" ]; then export STORECACHE_KILL_SEED="$2"; fi
export STORECACHE_BIN="${STORECACHE_BIN:-$PWD/build/proxy/storecache}"
exec python3 tests/integration/test_kill9_loop.py -v
