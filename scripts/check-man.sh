#!/usr/bin/env bash
# Lints the manual pages (packaging/man): groff with every warning on, mandoc -Tlint at
# warning level, and lexgrog (the NAME line that apropos and mandb index). Any message fails.
# CI runs it as the ctest man.lint; tests/unit/config_manpage_test.cpp checks their contents.
set -euo pipefail
cd "$(dirname "$0")/../packaging/man"
status=0
for page in storecache.8 storecache.toml.5; do
  out=$(groff -man -Tutf8 -ww -z "$page" 2>&1) || true
  if [ -n "$out" ]; then echo "groff: $page:"; echo "$out"; status=1; fi
  out=$(mandoc -Tlint -Wwarning "$page" 2>&1) || true
  if [ -n "$out" ]; then echo "$out"; status=1; fi
  if ! lexgrog "$page" >/dev/null; then echo "lexgrog: $page: no usable NAME section"; status=1; fi
done
[ "$status" -eq 0 ] && echo "man pages: no warnings"
exit "$status"
