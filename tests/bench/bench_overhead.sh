#!/usr/bin/env bash
# memwarden's own cost while it benchmarks, and its tokens per second against a plain curl stream timed by hand,
# on the same real llama.cpp server (tests/llm/server.mjs on the host, no container) and the same settings.
#
#   tests/bench/bench_overhead.sh MEMWARDEN_BINARY MW_GEN_LLAMA LLM_APP_DIR [--runs 10] [--max-tokens 128]
#
# LLM_APP_DIR: tests/llm installed with npm ci (build/ci/tests/llm after `ctest -R llm.npm`).
# The model: mw-gen-llama with n_embd 1024, 8 layers, n_ff 2816, heads 16/4 (174 MiB f16), served with --no-mmap and
# one thread. Both sides send the same request shape (/api/generate, stream, num_predict, temperature 0, seed 42)
# with prompts of about the same length, one at a time:
#  - memwarden bench MODEL --runs R --warmup 1 --max-tokens N --prompt-tokens 64 --no-store --json, under
#    /usr/bin/time: CPU (user + system) over wall time, and the largest resident set (VmHWM);
#  - curl -sN, R times after one warm-up, each line stamped with bash's $EPOCHREALTIME as it arrives (no fork per
#    line); the decode rate is (tokens − 1) / (final line − first token), the definition memwarden's
#    decode_tokens_per_s uses.
# Prints a Markdown table on stdout; progress on stderr.
set -euo pipefail
die() { echo "bench_overhead: $*" >&2; exit 1; }
log() { echo "bench_overhead: $*" >&2; }
[[ $# -ge 3 ]] || die "usage: $0 MEMWARDEN_BINARY MW_GEN_LLAMA LLM_APP_DIR [--runs R] [--max-tokens N]"
MEMWARDEN=$(realpath "$1"); GEN=$(realpath "$2"); APP=$(realpath "$3"); shift 3
RUNS=10; MAX_TOKENS=128
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --max-tokens) MAX_TOKENS=$2; shift 2 ;;
    *) die "unknown option $1" ;;
  esac
done
command -v node >/dev/null || die "node is missing"
[[ -x /usr/bin/time ]] || die "/usr/bin/time is missing (Debian's time package)"
work=$(mktemp -d)
server_pid=""
cleanup() { [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/models"
"$GEN" "$work/models/bench.gguf" --n-embd 1024 --n-layer 8 --n-ff 2816 --n-head 16 --n-head-kv 4 >&2
port=$((20000 + RANDOM % 20000))
(cd "$APP" && exec node server.mjs --models-dir "$work/models" --listen "127.0.0.1:$port" --no-mmap --threads 1) \
  >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do grep -q listening "$work/server.log" && break; sleep 0.1; done
grep -q listening "$work/server.log" || die "the server did not start: $(cat "$work/server.log")"
url="http://127.0.0.1:$port"

log "memwarden bench: $RUNS runs of $MAX_TOKENS tokens"
/usr/bin/time -f "%U %S %e %M" -o "$work/time" "$MEMWARDEN" bench bench --server "$url" --runs "$RUNS" --warmup 1 \
  --max-tokens "$MAX_TOKENS" --prompt-tokens 64 --cooldown 0 --no-store --json >"$work/bench.json" ||
  die "memwarden bench failed (exit $?): $(head -c 2000 "$work/bench.json")"
read -r user sys wall rss_kib <"$work/time"

# One curl stream; prints the decode rate (tokens − 1) / (end − first token), the end being the final line's
# arrival, as memwarden's decode_tokens_per_s counts it.
curl_rate() {
  local prompt=$1 first="" last="" n=0 line
  while IFS= read -r line; do
    if [[ $line == *'"done":true'* ]]; then
      last=$EPOCHREALTIME
      continue
    fi
    [[ $line == *'"done":false'* ]] || continue
    [[ -z $first ]] && first=$EPOCHREALTIME
    n=$((n + 1))
  done < <(curl -sN "$url/api/generate" -d "{\"model\":\"bench\",\"prompt\":\"$prompt\",\"stream\":true,\
\"options\":{\"num_predict\":$MAX_TOKENS,\"temperature\":0,\"seed\":42}}")
  python3 -c "import sys; n,a,b=int(sys.argv[1]),float(sys.argv[2]),float(sys.argv[3]); print((n-1)/(b-a))" \
    "$n" "$first" "$last"
}
words="memory river stone window garden light paper orange silver market winter forest engine letter bridge candle"
log "curl: 1 warm-up and $RUNS timed streams"
curl_rate "w: $words $words $words" >/dev/null
: >"$work/curl"
for i in $(seq "$RUNS"); do curl_rate "$i: $words $words $words" >>"$work/curl"; done

python3 - "$work/bench.json" "$work/curl" "$user" "$sys" "$wall" "$rss_kib" <<'PY'
import json, statistics, sys
bench = json.load(open(sys.argv[1]))
user, sys_t, wall, rss = float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
samples = [s for m in bench["models"] for s in m["samples"] if s["ok"]]
mw_rates = [s["decode_tokens_per_s"] for s in samples if s.get("decode_tokens_per_s")]
server_rates = [s["eval_count"] / s["eval_s"] for s in samples if s.get("eval_count") and s.get("eval_s")]
curl_rates = [float(x) for x in open(sys.argv[2]).read().split()]
mw, cu, sv = statistics.median(mw_rates), statistics.median(curl_rates), statistics.median(server_rates)
print("| measure | value |")
print("|---|---|")
print(f"| memwarden CPU (user + system) / wall | {user + sys_t:.2f} s / {wall:.1f} s = {100 * (user + sys_t) / wall:.2f}% of one core |")
print(f"| memwarden largest resident set | {rss / 1024:.1f} MiB |")
print(f"| decode rate, memwarden bench (median of {len(mw_rates)}) | {mw:.2f} tok/s |")
print(f"| decode rate, curl timed by hand (median of {len(curl_rates)}) | {cu:.2f} tok/s |")
print(f"| difference | {100 * (mw - cu) / cu:+.2f}% |")
print(f"| the server's own eval_count / eval_duration (median) | {sv:.2f} tok/s |")
PY
