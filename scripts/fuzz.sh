#!/usr/bin/env bash
# Fuzzes the GGUF header parser (mw::parse_gguf, src/core/gguf.cpp) with libFuzzer under ASan and UBSan.
#   scripts/fuzz.sh [SECONDS]   # default 60
# Exits non-zero on a crash, a leak, a broken invariant or an input that takes over 5 s; the input
# is saved as build/fuzz/crash-* (or leak-*, timeout-*). Needs clang++ with libFuzzer (Debian: clang,
# libclang-rt-14-dev; scripts/bootstrap.sh test installs them). Builds into build/fuzz (CXX_FUZZ picks
# the compiler); the seed corpus comes from the presets in tests/support/gguf_writer.cpp, and the
# corpus libFuzzer grows is kept in build/fuzz/corpus between runs.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"
seconds=${1:-60}
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "usage: $0 [SECONDS]" >&2; exit 2; }
cxx=${CXX_FUZZ:-clang++}
out=build/fuzz
command -v "$cxx" >/dev/null || { echo "fuzz: $cxx not found; run scripts/bootstrap.sh test" >&2; exit 1; }
mkdir -p "$out/corpus" "$out/seeds"

echo "== fuzz: build the target and the seed corpus ($cxx)"
flags=(-std=c++20 -g -Isrc/core/include -Itests/support)
"$cxx" "${flags[@]}" -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
  tests/fuzz/fuzz_gguf.cpp src/core/gguf.cpp -o "$out/fuzz_gguf"
"$cxx" "${flags[@]}" -O2 tests/fuzz/gguf_seeds.cpp tests/support/gguf_writer.cpp src/core/gguf.cpp \
  -o "$out/gguf_seeds"
"$out/gguf_seeds" "$out/seeds"

echo "== fuzz: parse_gguf for $seconds s"
ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  "$out/fuzz_gguf" -max_len=65536 -timeout=5 -rss_limit_mb=2048 -max_total_time="$seconds" \
  -print_final_stats=1 -artifact_prefix="$out/" "$out/corpus" "$out/seeds"
