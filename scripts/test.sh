#!/usr/bin/env bash
# Quick start, part two: install what is needed, build with warnings as
# errors, and run the whole suite through ctest. The integration tests start a
# private Docker engine themselves (scripts/integration-fixture.sh) and stop
# it by pid. Then the unit tests run again under ASan and UBSan, and libFuzzer
# fuzzes the GGUF header parser and the HTTP parsers for 60 s in all (scripts/fuzz.sh).
#   scripts/test.sh            # everything
#   scripts/test.sh --no-asan  # skip the sanitizer build
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"
asan=1
[[ "${1:-}" == "--no-asan" ]] && asan=0
jobs=$(nproc)

scripts/bootstrap.sh test

echo "== build (warnings are errors)"
cmake --preset ci >/dev/null
cmake --build --preset ci -j "$jobs"
echo "== ctest: unit and integration tests"
ctest --preset ci -j "$jobs"

if [[ $asan -eq 1 ]]; then
  echo "== build and run the unit tests under ASan/UBSan"
  cmake --preset asan >/dev/null
  cmake --build --preset asan -j "$jobs"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --preset asan -j "$jobs"
fi

echo "== fuzz the GGUF and HTTP parsers (libFuzzer, ASan, UBSan)"
scripts/fuzz.sh 60
