#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what is missing, builds the release
# and sanitizer (ASan+UBSan) presets, and runs ctest on both — unit, fuzz-corpus replay and
# integration tests in the release build; unit and fuzz replay again under the sanitizers.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh release
./scripts/build.sh asan
jobs=$(nproc)
echo "== tests: release build (unit, fuzz corpora, integration)"
ctest --preset release -j "$jobs" --timeout 1500
echo "== tests: ASan+UBSan build (unit, fuzz corpora)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --preset asan -j "$jobs" --timeout 900
echo "== all tests passed"
