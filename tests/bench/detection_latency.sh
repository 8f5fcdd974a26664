#!/usr/bin/env bash
# Detection latency of `memwarden diagnose`: the time from a fault's condition first being
# met (threshold and hold time) to the finding, for the idle-bloat and fast-leak scenarios
# at a 1 s interval. Target: within 3 intervals.
#
#   tests/bench/detection_latency.sh MEMWARDEN OLLAMA_SIM MEMHOG [--runs N]
#
#   --runs 5    runs of each scenario
#
# Starts its own engine (scripts/integration-fixture.sh setup in a mktemp -d state dir,
# teardown on exit), which builds memwarden-test/ollama-sim:latest with /bin/ollama-sim.
# Every scenario runs one simulator container
#   docker run -d --network host -e OLLAMA_HOST=127.0.0.1:PORT -m 2g memwarden-test/ollama-sim:latest ...
# and one `memwarden diagnose NAME --json --window 60s --interval 1s --reserve 0 --stop-on critical`
# in the background. Times come from one clock: the simulator's log lines end with
# t=<CLOCK_MONOTONIC ms> and memwarden's JSON times are CLOCK_MONOTONIC ms.
#
# idle-bloat: sim --model small:1=200 --retain-after-unload-mib 600; diagnose with
#   --base-allowance 64M --bloat-margin 128M --hold 3s. Once diagnose samples (its first
#   GET /api/ps) and 2 s more, the model is loaded and unloaded through the API. The sim logs
#   `unloaded small:1 reason=keep_alive t=U` (runner killed and reaped), then allocates and
#   touches 600 MiB and logs `retained_after_unload mib=600 t=R` (after touching: maybe_retain
#   in ollama_sim.cpp). The threshold (64 + 128 = 192 MiB) is crossed during the touching, at
#   X in [U, R]; X is estimated by linear interpolation from the finding's anon and threshold
#   evidence. Condition met at X + 3000 (hold). Latency = first_detected_ms - (X + 3000), with
#   bounds against R + 3000 (lower) and U + 3000 (upper). Breakdown: window_start_ms (first
#   sample over the threshold) - X; window_end_ms (the detecting sample) - window_start_ms
#   (the hold, >= 3000); first_detected_ms - window_end_ms (sampling + detectors).
# fast-leak: sim --model small:1=200 --leak-per-second-mib 20 (the leak runs while a model
#   is loaded). The model is loaded 2 s after diagnose's first sample; the sim logs
#   `loaded small:1 ... t=T0`. The growth detector needs >= 8 samples spanning >= 15 s with
#   the same models, so its condition is met at the earliest at T0 + 15000 (conservative:
#   includes the wait for the first sample that sees the model) and exactly at
#   window_start_ms + 15000, where window_start_ms is the timestamp of the first sample that
#   saw the model (checked against the sim's first `request GET /api/ps` after T0).
#
# Prints Markdown on stdout (per-run table, then min/median/max); progress on stderr.
# Exits 1 if a run did not produce the expected critical finding.
set -euo pipefail

die() { echo "detection_latency: $*" >&2; exit 1; }
log() { echo "detection_latency: $*" >&2; }

RUNS=5
POS=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --runs) [[ $# -ge 2 ]] || die "--runs needs a value"; RUNS=$2; shift 2 ;;
        --runs=*) RUNS=${1#--runs=}; shift ;;
        -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        --) shift; POS+=("$@"); break ;;
        -*) die "unknown option $1" ;;
        *) POS+=("$1"); shift ;;
    esac
done
[[ ${#POS[@]} -eq 3 ]] || die "usage: $0 MEMWARDEN OLLAMA_SIM MEMHOG [--runs N] (--help)"
if ! [[ $RUNS =~ ^[0-9]+$ ]] || ((RUNS == 0)); then die "--runs must be a positive number"; fi
MW=$(realpath -- "${POS[0]}")
SIM=$(realpath -- "${POS[1]}")
MEMHOG=$(realpath -- "${POS[2]}")
[[ -x $MW ]] || die "memwarden binary '${POS[0]}' not found or not executable"
[[ -f $SIM ]] || die "ollama-sim binary '${POS[1]}' not found"
[[ -f $MEMHOG ]] || die "memhog binary '${POS[2]}' not found"
command -v docker >/dev/null || die "docker CLI not found"
command -v curl >/dev/null || die "curl not found"
if ! command -v jq >/dev/null; then
    [[ $(id -u) -eq 0 ]] || die "jq missing and not root"
    log "installing jq"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq >&2
fi

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SCRIPTS=$(cd "$HERE/../../scripts" && pwd)
STATE=$(mktemp -d "${TMPDIR:-/tmp}/mw-latency-engine.XXXXXX")
MW_PID=""
MW_RC=0
CURRENT=""
cleanup() {
    local rc=$?
    if [[ -n $MW_PID ]] && kill -0 "$MW_PID" 2>/dev/null; then kill "$MW_PID" 2>/dev/null || true; fi
    if [[ -n $CURRENT && -n ${DOCKER_HOST:-} ]]; then docker rm -f "$CURRENT" >/dev/null 2>&1 || true; fi
    log "tearing down engine $STATE"
    "$SCRIPTS/integration-fixture.sh" teardown "$STATE" >&2 || log "engine teardown failed"
    rm -rf "$STATE"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Measure a copy, so that a rebuild during the run cannot swap the binary.
mkdir -p "$STATE/bin" "$STATE/out"
cp -- "$MW" "$STATE/bin/memwarden"
MW_SUM=$(sha256sum "$MW" | cut -c1-12)
SIM_SUM=$(sha256sum "$SIM" | cut -c1-12)
MW=$STATE/bin/memwarden

log "starting engine in $STATE (integration-fixture.sh setup)"
"$SCRIPTS/integration-fixture.sh" setup "$STATE" "$MEMHOG" "$SIM" >&2
DOCKER_HOST=$(sed -n 's/^DOCKER_HOST=//p' "$STATE/env")
[[ -n $DOCKER_HOST ]] || die "no DOCKER_HOST in $STATE/env"
export DOCKER_HOST
IMAGE=memwarden-test/ollama-sim:latest

# start_sim NAME PORT SIM_FLAGS...: runs the simulator container and waits for "listening".
start_sim() {
    local name=$1 port=$2
    shift 2
    docker rm -f "$name" >/dev/null 2>&1 || true
    CURRENT=$name
    docker run -d --name "$name" --network host -e "OLLAMA_HOST=127.0.0.1:$port" -m 2g \
        "$IMAGE" /bin/ollama-sim "$@" >/dev/null
    wait_log "$name" "ollama-sim: listening" 300 || die "$name: no 'listening' line: $(docker logs "$name" 2>&1 | tail -n 5)"
}

# wait_log NAME TEXT TENTHS: waits up to TENTHS/10 s for TEXT in the container's log.
wait_log() {
    local i logs
    for ((i = 0; i < $3; i++)); do
        logs=$(docker logs "$1" 2>&1 || true)
        [[ $logs == *"$2"* ]] && return 0
        sleep 0.1
    done
    return 1
}

# sim_t NAME TEXT [AFTER]: t= of the first log line containing TEXT with t > AFTER (or "").
sim_t() {
    docker logs "$1" 2>&1 | awk -v s="$2" -v after="${3:--1}" '
        index($0, s) && match($0, / t=[0-9]+$/) {
            t = substr($0, RSTART + 3) + 0
            if (t > after) { print t; exit }
        }'
}

# api NAME PORT BODY: POST /api/generate, fails unless HTTP 200.
api() {
    curl -fsS --max-time 60 -o /dev/null -H 'Content-Type: application/json' \
        -X POST "http://127.0.0.1:$2/api/generate" -d "$3" ||
        die "$1: POST /api/generate $3 failed: $(docker logs "$1" 2>&1 | tail -n 5)"
}

# start_diagnose NAME OUT EXTRA...: memwarden diagnose in the background; waits for its first sample.
start_diagnose() {
    local name=$1 out=$2
    shift 2
    "$MW" diagnose "$name" --json --window 60s --interval 1s --reserve 0 --stop-on critical "$@" \
        >"$out.json" 2>"$out.err" &
    MW_PID=$!
    wait_log "$name" "request GET /api/ps" 300 || die "$name: memwarden never called GET /api/ps: $(cat "$out.err")"
}

# finish_diagnose OUT: waits for memwarden (not in a subshell: it is our child); sets MW_RC.
finish_diagnose() {
    MW_RC=0
    wait "$MW_PID" || MW_RC=$?
    MW_PID=""
    jq -e .schema "$1.json" >/dev/null 2>&1 || die "memwarden wrote no JSON (exit $MW_RC): $(cat "$1.err")"
}

# finding OUT DETECTOR: "first_detected_ms window_start_ms window_end_ms severity", or nothing.
finding() {
    jq -r --arg d "$2" '[.findings[] | select(.detector == $d)][0] // empty
        | "\(.first_detected_ms) \(.window_start_ms) \(.window_end_ms) \(.severity)"' "$1.json"
}

RAW=$STATE/raw.tsv
: >"$RAW"
FAILED=0
PORT=18760

run_idle_bloat() { # run_idle_bloat RUN
    local r=$1 name="mwlat-bloat-$1" out="$STATE/out/bloat-$1" port=$((PORT++)) rc f fd ws we sev anon thr t_unl t_ret t_x
    log "run $r: idle-bloat ($name, port $port)"
    start_sim "$name" "$port" --model small:1=200 --retain-after-unload-mib 600
    start_diagnose "$name" "$out" --base-allowance 64M --bloat-margin 128M --hold 3s
    sleep 2
    api "$name" "$port" '{"model":"small:1","prompt":"","stream":false}'
    api "$name" "$port" '{"model":"small:1","keep_alive":0}'
    finish_diagnose "$out"
    rc=$MW_RC
    t_unl=$(sim_t "$name" "unloaded small:1 reason=keep_alive")
    t_ret=$(sim_t "$name" "retained_after_unload mib=600")
    [[ -n $t_unl && -n $t_ret ]] || die "$name: no unloaded/retained_after_unload lines: $(docker logs "$name" 2>&1 | tail -n 5)"
    f=$(finding "$out" idle-bloat)
    if [[ -z $f ]]; then
        log "run $r: idle-bloat NOT found (exit $rc); JSON kept in $out.json"
        cp -- "$out.json" "${TMPDIR:-/tmp}/mwlat-bloat-$r.json" || true
        FAILED=1
        printf 'idle-bloat\t%s\t%s\t%s\t-\t-\t-\t-\t-\t-\t-\t%s\tnot-found\n' "$r" "$t_unl" "$t_ret" "$rc" >>"$RAW"
    else
        read -r fd ws we sev <<<"$f"
        [[ $sev == critical && $rc == 5 ]] || { log "run $r: idle-bloat severity $sev, exit $rc"; FAILED=1; }
        # The threshold is crossed while the 600 MiB are touched (between t_unl and t_ret):
        # estimate when, assuming the touching runs at a constant rate. The server's own anon
        # (base) is the detecting sample's anon minus the 600 MiB.
        read -r anon thr <<<"$(jq -r '[.findings[] | select(.detector == "idle-bloat")][0].evidence
            | "\(.anon_bytes.value) \(.threshold_bytes.value)"' "$out.json")"
        t_x=$(awk -v u="$t_unl" -v t="$t_ret" -v a="$anon" -v th="$thr" 'BEGIN {
            big = 600 * 1048576; base = a - big; f = (th - base) / big
            if (f < 0) f = 0; if (f > 1) f = 1
            printf "%d", u + f * (t - u) + 0.5 }')
        # scenario run t_unl t_ret t_cross first_over detecting first_detected lat_est lat_lo lat_hi exit severity
        printf 'idle-bloat\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$t_unl" "$t_ret" "$t_x" \
            "$ws" "$we" "$fd" $((fd - t_x - 3000)) $((fd - t_ret - 3000)) $((fd - t_unl - 3000)) "$rc" "$sev" >>"$RAW"
    fi
    docker rm -f "$name" >/dev/null
    CURRENT=""
}

run_fast_leak() { # run_fast_leak RUN
    local r=$1 name="mwlat-leak-$1" out="$STATE/out/leak-$1" port=$((PORT++)) rc f fd ws we sev t0 tps
    log "run $r: fast-leak ($name, port $port)"
    start_sim "$name" "$port" --model small:1=200 --leak-per-second-mib 20
    start_diagnose "$name" "$out"
    sleep 2
    api "$name" "$port" '{"model":"small:1","prompt":"","stream":false}'
    finish_diagnose "$out"
    rc=$MW_RC
    t0=$(sim_t "$name" "loaded small:1")
    [[ -n $t0 ]] || die "$name: no 'loaded small:1' line"
    tps=$(sim_t "$name" "request GET /api/ps" "$t0")
    f=$(finding "$out" growth)
    if [[ -z $f ]]; then
        log "run $r: growth NOT found (exit $rc); JSON kept in $out.json"
        cp -- "$out.json" "${TMPDIR:-/tmp}/mwlat-leak-$r.json" || true
        FAILED=1
        printf 'fast-leak\t%s\t%s\t-\t-\t-\t-\t-\t-\t-\t%s\tnot-found\t-\n' "$r" "$t0" "$rc" >>"$RAW"
    else
        read -r fd ws we sev <<<"$f"
        [[ $sev == critical && $rc == 5 ]] || { log "run $r: growth severity $sev, exit $rc"; FAILED=1; }
        # scenario run T0 cond(T0+15s) first_model_sample detect_sample first_detected latency_T0
        #   latency_sample first_ps_after_T0 exit severity
        printf 'fast-leak\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$t0" $((t0 + 15000)) "$ws" "$we" "$fd" \
            $((fd - t0 - 15000)) $((fd - ws - 15000)) "${tps:--}" "$rc" "$sev" >>"$RAW"
    fi
    docker rm -f "$name" >/dev/null
    CURRENT=""
}

for ((run = 1; run <= RUNS; run++)); do
    run_idle_bloat "$run"
    run_fast_leak "$run"
done

# stats COLUMN SCENARIO: "min median max" of a numeric column of RAW for one scenario.
stats() {
    awk -F'\t' -v c="$1" -v s="$2" '$1 == s && $c ~ /^-?[0-9]+$/ { print $c }' "$RAW" | sort -n |
        awk '{ v[NR] = $1 } END {
            if (NR == 0) { print "- - -"; exit }
            med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            printf "%d %d %d\n", v[1], med, v[NR] }'
}
iv() { awk -v x="$1" 'BEGIN { if (x == "-") print "-"; else printf "%.2f", x / 1000 }'; }

CGROUP=$(if [[ -e /sys/fs/cgroup/cgroup.controllers ]]; then echo v2; elif [[ -e /sys/fs/cgroup/unified/cgroup.controllers ]]; then echo hybrid; else echo v1; fi)
ENGINE=$(docker version --format '{{.Server.Version}}' 2>/dev/null || echo unknown)
echo "### Detection latency, diagnose at --interval 1s ($RUNS runs)"
echo
echo "Host: $(nproc) CPUs, kernel $(uname -r), cgroup $CGROUP; engine $ENGINE; memwarden sha256 $MW_SUM..., ollama-sim sha256 $SIM_SUM...; load average $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "idle-bloat: times relative to U = \`unloaded small:1\` (the 600 MiB are touched from U to R = \`retained_after_unload\`); X = estimated crossing of the threshold (linear between U and R); condition met at X + 3000 ms (hold)."
echo
echo "| run | R − U (touching) ms | X − U ms | first sample over − X ms | detecting sample − first over ms | first_detected − detecting sample ms | latency vs X + 3 s ms | intervals | bounds: vs R + 3 s … vs U + 3 s ms | exit |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|"
awk -F'\t' '$1 == "idle-bloat" {
    if ($13 == "not-found") { printf "| %s | %d | - | - | - | - | not found | - | - | %s |\n", $2, $4 - $3, $12; next }
    printf "| %s | %d | %d | %d | %d | %d | %d | %.2f | %d … %d | %s |\n", $2, $4 - $3, $5 - $3, $6 - $5, $7 - $6, $8 - $7,
        $9, $9 / 1000, $10, $11, $12 }' "$RAW"
echo
echo "fast-leak: times relative to T0 = \`loaded small:1\`; condition met at first model sample + 15 s (≥ T0 + 15 s at the earliest)."
echo
echo "| run | first sample with the model − T0 ms | first GET /api/ps after T0 − T0 ms | detecting sample − T0 ms | first_detected − T0 ms | latency vs T0 + 15 s ms | intervals | latency vs first model sample + 15 s ms | intervals | exit |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
awk -F'\t' '$1 == "fast-leak" {
    if ($12 == "not-found") { printf "| %s | - | - | - | - | not found | - | - | - | %s |\n", $2, $11; next }
    ps = ($10 == "-") ? "-" : $10 - $3
    printf "| %s | %d | %s | %d | %d | %d | %.2f | %d | %.2f | %s |\n", $2, $5 - $3, ps, $6 - $3, $7 - $3, $8, $8 / 1000, $9, $9 / 1000, $11 }' "$RAW"
echo
echo "| scenario | latency measured against | min ms | median ms | max ms | min / median / max intervals | ≤ 3 intervals? |"
echo "|---|---|---:|---:|---:|---|---|"
verdict() { awk -v x="$1" 'BEGIN { print (x == "-" ? "-" : (x <= 3000 ? "yes" : "**no**")) }'; }
read -r a b c <<<"$(stats 9 idle-bloat)"
echo "| idle-bloat | estimated threshold crossing (X) + 3 s hold | $a | $b | $c | $(iv "$a") / $(iv "$b") / $(iv "$c") | $(verdict "$c") |"
read -r a b c <<<"$(stats 11 idle-bloat)"
echo "| idle-bloat | \`unloaded\` (U) + 3 s (upper bound: before U the threshold is not crossed) | $a | $b | $c | $(iv "$a") / $(iv "$b") / $(iv "$c") | $(verdict "$c") |"
read -r a b c <<<"$(stats 10 idle-bloat)"
echo "| idle-bloat | \`retained_after_unload\` (R) + 3 s (lower bound: at R all 600 MiB are touched) | $a | $b | $c | $(iv "$a") / $(iv "$b") / $(iv "$c") | $(verdict "$c") |"
read -r a b c <<<"$(stats 8 fast-leak)"
echo "| fast-leak | \`loaded\` (T0) + 15 s (conservative) | $a | $b | $c | $(iv "$a") / $(iv "$b") / $(iv "$c") | $(verdict "$c") |"
read -r a b c <<<"$(stats 9 fast-leak)"
echo "| fast-leak | first sample with the model + 15 s | $a | $b | $c | $(iv "$a") / $(iv "$b") / $(iv "$c") | $(verdict "$c") |"
log "raw rows:"
cat "$RAW" >&2
((FAILED == 0)) || die "some runs did not produce the expected critical finding"
