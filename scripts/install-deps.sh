#!/usr/bin/env bash
# Installs the Debian 12 packages storecache needs to build, test, demo and benchmark.
# Does nothing when they are all present. Run as root (or with sudo available).
set -euo pipefail

build_pkgs=(
  build-essential cmake pkg-config clang-format ccache
  libboost1.81-dev libnghttp2-dev libssl-dev liblmdb-dev
  libtomlplusplus-dev libsystemd-dev libspdlog-dev libfmt-dev libexpat1-dev catch2
)
# The fuzz build (scripts/fuzz.sh): clang-14, its libFuzzer and sanitizer runtimes, and
# llvm-symbolizer for readable stack traces.
fuzz_pkgs=(clang libclang-rt-14-dev llvm)
test_pkgs=(curl nghttp2-client openssl python3 ffmpeg prometheus chromium chromium-driver
  groff-base man-db mandoc)
bench_pkgs=(nginx wrk)

want=("${build_pkgs[@]}" "${test_pkgs[@]}" "${fuzz_pkgs[@]}")
if [ "${1:-}" = "--bench" ]; then want+=("${bench_pkgs[@]}"); fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
