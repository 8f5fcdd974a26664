#!/usr/bin/env bash
# Fuzzes memwarden's parsers of outside bytes with libFuzzer under ASan and UBSan:
#   fuzz_gguf            the GGUF header parser (mw::parse_gguf, src/core/gguf.cpp) and what plan makes of a
#                        header (src/core/estimate.cpp, src/core/catalog.cpp)
#   fuzz_http_request    the embedded server's request parser (src/adapters/http_server.cpp)
#   fuzz_http_response   the HTTP client's answer parser: heads, 1xx, chunks, caps (src/adapters/http.cpp)
#   scripts/fuzz.sh [SECONDS]   # default 60: half for GGUF, a quarter for each HTTP target
# Exits non-zero on a crash, a leak, a broken invariant or an input that takes over 5 s; the input
# is saved as build/fuzz/<target>-crash-* (or -leak-*, -timeout-*). Needs clang++ with libFuzzer (Debian:
# clang, libclang-rt-14-dev; scripts/bootstrap.sh test installs them), the fmt and libcurl headers and
# libfmt. Builds into build/fuzz (CXX_FUZZ picks the compiler); the seed corpora come from
# tests/support/gguf_writer.cpp (gguf_seeds) and tests/fuzz/http_seeds.cpp, and the corpora libFuzzer
# grows are kept in build/fuzz/corpus* between runs.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"
seconds=${1:-60}
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "usage: $0 [SECONDS]" >&2; exit 2; }
cxx=${CXX_FUZZ:-clang++}
out=build/fuzz
command -v "$cxx" >/dev/null || { echo "fuzz: $cxx not found; run scripts/bootstrap.sh test" >&2; exit 1; }
mkdir -p "$out/corpus" "$out/seeds" "$out/corpus-http-request" "$out/corpus-http-response" \
  "$out/seeds-http-request" "$out/seeds-http-response"

echo "== fuzz: build the targets and the seed corpora ($cxx)"
flags=(-std=c++20 -g -Isrc/core/include -Isrc/adapters/include -Isrc/adapters -Itests/support)
fuzz=(-O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all)
# The few core files every target needs: errors as one line, text and byte helpers.
core=(src/core/error.cpp src/core/text.cpp src/core/bytes.cpp)
"$cxx" "${flags[@]}" "${fuzz[@]}" tests/fuzz/fuzz_gguf.cpp src/core/gguf.cpp src/core/estimate.cpp src/core/catalog.cpp \
  "${core[@]}" -lfmt -o "$out/fuzz_gguf"
"$cxx" "${flags[@]}" "${fuzz[@]}" -pthread tests/fuzz/fuzz_http_request.cpp src/adapters/http_server.cpp \
  "${core[@]}" -lfmt -o "$out/fuzz_http_request"
# http.cpp takes libcurl's types from its header only (libcurl itself is dlopened for https).
"$cxx" "${flags[@]}" "${fuzz[@]}" tests/fuzz/fuzz_http_response.cpp src/adapters/http.cpp "${core[@]}" -lfmt -ldl \
  -o "$out/fuzz_http_response"
"$cxx" "${flags[@]}" -O2 tests/fuzz/gguf_seeds.cpp tests/support/gguf_writer.cpp src/core/gguf.cpp "${core[@]}" \
  -lfmt -o "$out/gguf_seeds"
"$cxx" "${flags[@]}" -O2 tests/fuzz/http_seeds.cpp -o "$out/http_seeds"
"$out/gguf_seeds" "$out/seeds"
"$out/http_seeds" "$out/seeds-http-request" "$out/seeds-http-response"

gguf_seconds=$((seconds - seconds / 2))
http_seconds=$((seconds / 4))
export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# run TARGET SECONDS MAX_LEN CORPUS SEEDS
run() {
  local target=$1 time=$2 max_len=$3 corpus=$4 seeds=$5
  if [[ "$time" -eq 0 ]]; then
    echo "== fuzz: $target skipped (0 s)"
    return
  fi
  echo "== fuzz: $target for $time s"
  "$out/$target" -max_len="$max_len" -timeout=5 -rss_limit_mb=2048 -max_total_time="$time" \
    -print_final_stats=1 -artifact_prefix="$out/$target-" "$corpus" "$seeds"
}
run fuzz_gguf "$gguf_seconds" 65536 "$out/corpus" "$out/seeds"
run fuzz_http_request "$http_seconds" 20000 "$out/corpus-http-request" "$out/seeds-http-request"
run fuzz_http_response "$http_seconds" 70000 "$out/corpus-http-response" "$out/seeds-http-response"
