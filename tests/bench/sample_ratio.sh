#!/usr/bin/env bash
# Runs mw_bench_sample and prints, per case, read_cgroup_memory against the raw
# open/read/close of the same files, as a Markdown table (target: ratio <= 2), and
# the read through kept descriptors against raw preads on descriptors opened once.
#
#   tests/bench/sample_ratio.sh MW_BENCH_SAMPLE_BINARY [extra benchmark args]
#
# Medians of 5 repetitions (override with --benchmark_repetitions=N). The live
# case runs when MW_BENCH_CONTAINER_ID (and optionally MW_BENCH_CGROUP_ROOT,
# MW_BENCH_PID) are set; see tests/bench/bench_sample.cpp.
set -euo pipefail
[[ $# -ge 1 ]] || { echo "usage: $0 MW_BENCH_SAMPLE_BINARY [benchmark args]" >&2; exit 2; }
BIN=$1
shift
command -v jq >/dev/null || { echo "sample_ratio: jq is required (apt-get install jq)" >&2; exit 1; }
OUT=$(mktemp "${TMPDIR:-/tmp}/mw-bench-sample.XXXXXX.json")
trap 'rm -f "$OUT"' EXIT
"$BIN" --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
    --benchmark_out="$OUT" --benchmark_out_format=json "$@" >&2
echo "| case | read_cgroup_memory ns | raw reads ns | ratio | locate + read ns | files (present) | kept descriptors: read ns | raw preads ns | ratio |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
jq -r '
  [.benchmarks[] | select(.aggregate_name == "median" and (.error_occurred | not))]
  | map({key: .run_name, value: .}) | from_entries as $b
  | [$b | keys[] | select(startswith("BM_ReadCgroupMemory/")) | ltrimstr("BM_ReadCgroupMemory/")] as $cases
  | $cases[] as $c
  | ($b["BM_ReadCgroupMemory/" + $c]) as $p | ($b["BM_RawReads/" + $c]) as $r | ($b["BM_LocateAndRead/" + $c]) as $l
  | ($b["BM_ReadCgroupMemoryKept/" + $c]) as $k | ($b["BM_RawPreads/" + $c]) as $q
  | select($r != null)
  | "| \($c) | \($p.real_time | floor) | \($r.real_time | floor) | \(($p.real_time / $r.real_time * 100 | round) / 100) | \(if $l then ($l.real_time | floor | tostring) else "-" end) | \($p.files) (\($p.present)) | \(if $k then ($k.real_time | floor | tostring) + " (\($k.kept) kept)" else "-" end) | \(if $q then ($q.real_time | floor | tostring) else "-" end) | \(if $k and $q then (($k.real_time / $q.real_time * 100 | round) / 100 | tostring) else "-" end) |"
' "$OUT"
