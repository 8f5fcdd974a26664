#!/usr/bin/env bash
# Quick start, part two: install what is needed, build with warnings as
# errors, and run the whole suite through ctest. The integration tests start a
# private Docker engine themselves (scripts/integration-fixture.sh) and stop
# it by pid. Then the unit tests run again under ASan and UBSan, the release
# binary is built and started once, and libFuzzer
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

echo "== the release binary (static, MinSizeRel): builds, starts, and links no C++ library at run time"
cmake --preset release >/dev/null
cmake --build --preset release -j "$jobs"
release=build/release/src/cli/memwarden
"$release" --version
"$release" check-config --print-default | cmp - packaging/memwarden.yaml
"$release" check-config packaging/memwarden.yaml
# The command-line tests again, on this binary: YAML files, SQLite journals and histories, exit codes.
MEMWARDEN_TEST_BINARY="$top/$release" build/ci/tests/mw_binary_tests --gtest_brief=1
if ldd "$release" | grep -E 'libstdc\+\+|libgcc_s|libsqlite3|libyaml-cpp|libfmt'; then
  echo "test.sh: the release binary links the libraries above at run time; it should have them in it" >&2
  exit 1
fi

echo "== fuzz the GGUF and HTTP parsers (libFuzzer, ASan, UBSan)"
scripts/fuzz.sh 60
