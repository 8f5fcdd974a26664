#!/usr/bin/env bash
# `memwarden status --json` against `docker stats --no-stream`, on a private
# Docker engine holding N memhog containers, N = 10 and 50 by default.
#
#   tests/bench/status_vs_docker_stats.sh [options] MEMWARDEN_BINARY MEMHOG_BINARY
#
#   --counts 10,50       container counts, ascending (containers are added, never removed, between counts)
#   --runs 20            timed runs of memwarden status --json per count
#   --docker-runs 5      timed runs of docker stats --no-stream per count (~2 s each)
#   --warmup 2           untimed runs of each command before timing
#   --docker-cli PATH    docker CLI for `docker stats` (default: `docker` on PATH)
#   --breakdown          also time the pieces of a status run (see below)
#   --bench-sample BIN   also run BIN (mw_bench_sample) against one live container's cgroup
#   --baseline BIN       also time BIN status --json (an earlier build), interleaved with MEMWARDEN_BINARY
#                        run for run, so that both see the same load
#
# Starts its own engine (scripts/test-engine.sh) in a temp state dir and stops it on exit,
# builds memwarden-test/hog:latest (scripts/build-test-image.sh), starts containers with
#   docker run -d --network none -m 64m memwarden-test/hog:latest /bin/memhog --mib 4
# and waits until all of them are running. Wall time is taken with bash's $EPOCHREALTIME
# around each command (stdout to /dev/null). Prints Markdown tables on stdout; progress on stderr.
#
# --breakdown times, per count, the pieces of a status run:
#   memwarden --version (process start); status --json against a socket that does not exist
#   (start + host probes + HTTP init + NVML probe); the engine's time for GET /_ping (how memwarden
#   negotiates), /version (which it no longer calls), /containers/json and the n inspects (curl's
#   time_total on one kept-alive connection; memwarden spreads the inspects over up to 4); the CPU
#   time (user + system) of one status run, memwarden's and the engine's (dockerd's and containerd's,
#   from /proc/PID/stat, which is why 2 CPUs put a floor under the wall time); with --bench-sample,
#   locate + read of all n containers' cgroups (mw_bench_sample BM_LocateAndReadAll with
#   MW_BENCH_CONTAINERS).
set -euo pipefail

die() { echo "status_vs_docker_stats: $*" >&2; exit 1; }
log() { echo "status_vs_docker_stats: $*" >&2; }

COUNTS=10,50
RUNS=20
DOCKER_RUNS=5
WARMUP=2
DOCKER_CLI=docker
BREAKDOWN=0
BENCH_SAMPLE=""
BASELINE=""
while [[ $# -gt 0 ]]; do
    case $1 in
        --counts) COUNTS=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --docker-runs) DOCKER_RUNS=$2; shift 2 ;;
        --warmup) WARMUP=$2; shift 2 ;;
        --docker-cli) DOCKER_CLI=$2; shift 2 ;;
        --breakdown) BREAKDOWN=1; shift ;;
        --bench-sample) BENCH_SAMPLE=$2; shift 2 ;;
        --baseline) BASELINE=$2; shift 2 ;;
        -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        --) shift; break ;;
        -*) die "unknown option $1" ;;
        *) break ;;
    esac
done
[[ $# -eq 2 ]] || die "usage: $0 [options] MEMWARDEN_BINARY MEMHOG_BINARY (--help)"
MW=$(realpath -- "$1")
MEMHOG=$(realpath -- "$2")
[[ -x $MW ]] || die "memwarden binary '$1' not found or not executable"
[[ -f $MEMHOG ]] || die "memhog binary '$2' not found"
[[ -z $BENCH_SAMPLE || -x $BENCH_SAMPLE ]] || die "--bench-sample '$BENCH_SAMPLE' not executable"
[[ -z $BASELINE || -x $BASELINE ]] || die "--baseline '$BASELINE' not executable"
IFS=, read -r -a COUNT_LIST <<<"$COUNTS"
for n in "${COUNT_LIST[@]}"; do [[ $n =~ ^[0-9]+$ ]] || die "bad --counts '$COUNTS'"; done
for v in "$RUNS" "$DOCKER_RUNS" "$WARMUP"; do [[ $v =~ ^[0-9]+$ ]] || die "run counts must be numbers"; done
((RUNS > 0 && DOCKER_RUNS > 0)) || die "--runs and --docker-runs must be > 0"
command -v "$DOCKER_CLI" >/dev/null || die "docker CLI '$DOCKER_CLI' not found"
if ! command -v jq >/dev/null; then
    [[ $(id -u) -eq 0 ]] || die "jq missing and not root"
    log "installing jq"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq >&2
fi
[[ -n ${EPOCHREALTIME:-} ]] || die "bash 5 or later needed (\$EPOCHREALTIME)"

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SCRIPTS=$(cd "$HERE/../../scripts" && pwd)
STATE=$(mktemp -d "${TMPDIR:-/tmp}/mw-bench-engine.XXXXXX")
cleanup() {
    local rc=$?
    log "stopping engine $STATE"
    "$SCRIPTS/test-engine.sh" stop "$STATE" >&2 || log "engine stop failed"
    rm -rf "$STATE"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Measure copies, so that a rebuild during the run cannot swap the binaries.
mkdir -p "$STATE/bin"
cp -- "$MW" "$STATE/bin/memwarden"
MW_SUM=$(sha256sum "$MW" | cut -c1-12)
MW=$STATE/bin/memwarden
if [[ -n $BENCH_SAMPLE ]]; then
    cp -- "$BENCH_SAMPLE" "$STATE/bin/mw_bench_sample"
    BENCH_SAMPLE=$STATE/bin/mw_bench_sample
fi
if [[ -n $BASELINE ]]; then
    cp -- "$BASELINE" "$STATE/bin/memwarden-baseline"
    BASE_SUM=$(sha256sum "$BASELINE" | cut -c1-12)
    BASELINE=$STATE/bin/memwarden-baseline
fi

log "starting engine in $STATE"
DOCKER_HOST=$("$SCRIPTS/test-engine.sh" start "$STATE" | tail -n 1)
export DOCKER_HOST
SOCK=${DOCKER_HOST#unix://}
"$SCRIPTS/build-test-image.sh" "$DOCKER_HOST" "$MEMHOG" >/dev/null
API=$(curl -fsS --unix-socket "$SOCK" http://localhost/version | jq -r .ApiVersion)

# time_runs N WARMUP CMD...: prints the wall times of N runs in microseconds, one a line.
# A run exiting other than 0 (or 3, "partial", for memwarden) aborts.
time_runs() {
    local n=$1 warm=$2 i t0 t1 rc
    shift 2
    for ((i = 0; i < warm; i++)); do "$@" >/dev/null 2>&1 || true; done
    for ((i = 0; i < n; i++)); do
        rc=0
        t0=$EPOCHREALTIME # no subshell between the two readings
        "$@" >/dev/null 2>/dev/null || rc=$?
        t1=$EPOCHREALTIME
        [[ $rc -eq 0 || ($rc -eq 3 && ($1 == "$MW" || $1 == "$BASELINE")) ]] || die "'$*' exited $rc"
        echo $((10#${t1/./} - 10#${t0/./}))
    done
}

# measure N WARMUP CMD...: "min median max" in ms; exits the script if a run failed.
measure() {
    local out
    out=$(time_runs "$@") || exit 1
    stats <<<"$out"
}

# stats: reads microseconds on stdin, prints "min median max" in ms (median of an even
# count is the mean of the middle two).
stats() {
    sort -n | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "- - -"; exit }
        med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.1f %.1f %.1f\n", v[1] / 1000, med / 1000, v[NR] / 1000 }'
}

# time_pair N WARMUP A B ARGS...: runs A ARGS and B ARGS alternately, N times each; prints "a_us b_us" lines.
time_pair() {
    local n=$1 warm=$2 a=$3 b=$4 i t0 t1 t2 rc
    shift 4
    for ((i = 0; i < warm; i++)); do "$a" "$@" >/dev/null 2>&1 || true; "$b" "$@" >/dev/null 2>&1 || true; done
    for ((i = 0; i < n; i++)); do
        rc=0
        t0=$EPOCHREALTIME
        "$a" "$@" >/dev/null 2>/dev/null || rc=$?
        t1=$EPOCHREALTIME
        "$b" "$@" >/dev/null 2>/dev/null || rc=$((rc == 0 || rc == 3 ? $? : rc))
        t2=$EPOCHREALTIME
        [[ $rc -eq 0 || $rc -eq 3 ]] || die "'$a $*' or '$b $*' exited $rc"
        echo "$((10#${t1/./} - 10#${t0/./})) $((10#${t2/./} - 10#${t1/./}))"
    done
}

# cpu_ticks PID...: user + system clock ticks of the processes (0 for one that is gone).
cpu_ticks() {
    local pid sum=0 t
    for pid in "$@"; do
        t=$(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)
        sum=$((sum + t))
    done
    echo "$sum"
}

start_containers() { # start_containers TOTAL: brings the running count up to TOTAL
    local want=$1 have i ids=()
    have=$("$DOCKER_CLI" ps -q | wc -l)
    for ((i = have; i < want; i++)); do
        ids+=("$("$DOCKER_CLI" run -d --network none -m 64m memwarden-test/hog:latest /bin/memhog --mib 4)")
    done
    for ((i = 0; i < 600; i++)); do
        have=$("$DOCKER_CLI" ps -q --filter status=running | wc -l)
        ((have >= want)) && break
        sleep 0.1
    done
    ((have >= want)) || die "only $have of $want containers running after 60 s"
    sleep 1 # let memhog touch its 4 MiB
}

ENGINE_VERSION=$(curl -fsS --unix-socket "$SOCK" http://localhost/version | jq -r .Version)
CLI_VERSION=$("$DOCKER_CLI" version --format '{{.Client.Version}}' 2>/dev/null || echo unknown)
CGROUP=$(if [[ -e /sys/fs/cgroup/cgroup.controllers ]]; then echo v2; elif [[ -e /sys/fs/cgroup/unified/cgroup.controllers ]]; then echo hybrid; else echo v1; fi)

echo "### memwarden status --json vs docker stats --no-stream"
echo
echo "Host: $(nproc) CPUs, kernel $(uname -r), cgroup $CGROUP; engine $ENGINE_VERSION (API $API), docker CLI $CLI_VERSION ($(command -v "$DOCKER_CLI")); memwarden sha256 $MW_SUM...${BASELINE:+, baseline sha256 $BASE_SUM...}; $(date -u +%Y-%m-%dT%H:%MZ); load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| containers | command | runs | min ms | median ms | max ms |"
echo "|---:|---|---:|---:|---:|---:|"
SPEEDUPS=()
BREAK_ROWS=()
for n in "${COUNT_LIST[@]}"; do
    log "bringing up $n containers"
    start_containers "$n"
    rc=0
    json=$("$MW" status --json 2>/dev/null) || rc=$?
    got=$(jq '.containers | length' <<<"$json")
    [[ $got == "$n" ]] || die "memwarden status --json lists $got containers, expected $n (exit $rc)"
    nomem=$(jq '[.containers[] | select(.memory == null)] | length' <<<"$json")
    [[ $nomem == 0 ]] || log "warning: $nomem containers have no memory figures in status --json"
    [[ $rc == 0 ]] || log "warning: status --json exited $rc; problems: $(jq -c .problems <<<"$json")"
    [[ $(jq -r .cgroup_mode <<<"$json") == "$CGROUP" ]] || log "warning: memwarden says cgroup $(jq -r .cgroup_mode <<<"$json")"
    log "timing memwarden status --json x$RUNS"
    if [[ -n $BASELINE ]]; then
        pairs=$(time_pair "$RUNS" "$WARMUP" "$BASELINE" "$MW" status --json) || exit 1
        r=$(awk '{ print $2 }' <<<"$pairs" | stats)
        read -r bn bd bx < <(awk '{ print $1 }' <<<"$pairs" | stats)
        echo "| $n | baseline \`memwarden status --json\` (interleaved) | $RUNS | $bn | $bd | $bx |"
    else
        r=$(measure "$RUNS" "$WARMUP" "$MW" status --json)
    fi
    read -r mn md mx <<<"$r"
    echo "| $n | \`memwarden status --json\` | $RUNS | $mn | $md | $mx |"
    log "timing docker stats --no-stream x$DOCKER_RUNS"
    r=$(measure "$DOCKER_RUNS" 1 "$DOCKER_CLI" stats --no-stream)
    read -r dn dd dx <<<"$r"
    echo "| $n | \`docker stats --no-stream\` | $DOCKER_RUNS | $dn | $dd | $dx |"
    SPEEDUPS+=("| $n | $md | $dd | $(awk -v a="$dd" -v b="$md" 'BEGIN { printf "%.0f", a / b }')x |")

    if ((BREAKDOWN)); then
        mapfile -t ids < <("$DOCKER_CLI" ps -q --no-trunc)
        # Server-side time of each request (curl's time_total), one kept-alive connection
        # as memwarden uses; RUNS rounds, each: /_ping, /version, /containers/json, n inspects.
        urls=(-o /dev/null "http://localhost/_ping" -o /dev/null "http://localhost/version"
            -o /dev/null "http://localhost/v$API/containers/json")
        for id in "${ids[@]}"; do urls+=(-o /dev/null "http://localhost/v$API/containers/$id/json"); done
        for ((i = 0; i < WARMUP; i++)); do curl -fsS --unix-socket "$SOCK" "${urls[@]}" >/dev/null; done
        parts=$(for ((i = 0; i < RUNS; i++)); do
            curl -fsS --unix-socket "$SOCK" -w '%{time_total}\n' "${urls[@]}" |
                awk '{ us = $1 * 1e6 } NR <= 3 { printf "%d ", us; next } { s += us } END { printf "%d\n", s }'
        done)
        col() { awk -v c="$1" '{ print $c }' <<<"$parts" | stats; }
        row() { BREAK_ROWS+=("| $n | $1 | $2 | $3 | $4 |"); }
        r=$(measure "$RUNS" "$WARMUP" "$MW" --version)
        read -r a b c <<<"$r"
        row "\`memwarden --version\`: process start (exec, dynamic linking)" "$a" "$b" "$c"
        r=$(measure "$RUNS" "$WARMUP" "$MW" status --json --docker-host unix:///nonexistent)
        read -r a b c <<<"$r"
        row "\`memwarden status --json --docker-host unix:///nonexistent\`: start + host probes + HTTP init + NVML probe" "$a" "$b" "$c"
        read -r a b c < <(col 1)
        row "GET /_ping (server time, kept-alive; memwarden negotiates the API version with it)" "$a" "$b" "$c"
        read -r a b c < <(col 2)
        row "GET /version (server time; for comparison, memwarden no longer calls it)" "$a" "$b" "$c"
        read -r a b c < <(col 3)
        row "GET /containers/json (server time)" "$a" "$b" "$c"
        read -r a b c < <(col 4)
        row "$n x GET /containers/{id}/json, summed (server time, one after another on one connection)" "$a" "$b" "$c"
        # CPU time of a status run: memwarden's (its children's times, from bash's `times`) and the engine's.
        engine_pids=("$(cat "$STATE/dockerd.pid")")
        ctr=$(tr -cd '0-9' <"$(dirname "$SOCK")/exec/containerd/containerd.pid" 2>/dev/null || true)
        [[ -n $ctr ]] && engine_pids+=("$ctr")
        hz=$(getconf CLK_TCK)
        e0=$(cpu_ticks "${engine_pids[@]}")
        times >"$STATE/times0" # the builtin in this shell (a $(...) subshell would count none of our children)
        for ((i = 0; i < RUNS; i++)); do "$MW" status --json >/dev/null 2>&1 || true; done
        times >"$STATE/times1"
        e1=$(cpu_ticks "${engine_pids[@]}")
        # Line 2 of `times`: the children's user and system time, "0m0.090s 0m0.027s".
        children_ms() { awk 'NR == 2 { for (i = 1; i <= 2; i++) { split($i, p, "m"); sub("s", "", p[2]); t += p[1] * 60 + p[2] }
            printf "%.3f", t * 1000 }' "$1"; }
        mw_cpu=$(awk -v a="$(children_ms "$STATE/times0")" -v b="$(children_ms "$STATE/times1")" -v r="$RUNS" \
            'BEGIN { printf "%.1f", (b - a) / r }')
        engine_cpu=$(awk -v t="$((e1 - e0))" -v hz="$hz" -v r="$RUNS" 'BEGIN { printf "%.1f", t * 1000 / hz / r }')
        row "CPU time of one status run, user + system (mean of $RUNS): memwarden" "-" "$mw_cpu" "-"
        row "CPU time of one status run (mean of $RUNS): the engine (dockerd$([[ -n $ctr ]] && echo " + containerd"))" "-" "$engine_cpu" "-"
        if [[ -n $BENCH_SAMPLE ]]; then
            list=""
            for id in "${ids[@]}"; do list+="$id:$("$DOCKER_CLI" inspect --format '{{.State.Pid}}' "$id"),"; done
            out=$(MW_BENCH_CGROUP_ROOT=/ MW_BENCH_CONTAINERS=$list "$BENCH_SAMPLE" --benchmark_filter='^BM_LocateAndReadAll/' \
                --benchmark_repetitions=5 --benchmark_format=json 2>/dev/null) || die "mw_bench_sample failed"
            read -r a b c < <(jq -r '.benchmarks[] | select(.run_type == "iteration") | .real_time / 1000 | floor' \
                <<<"$out" | stats)
            row "locate + read_cgroup_memory of all $n containers (mw_bench_sample BM_LocateAndReadAll, 5 reps)" "$a" "$b" "$c"
        fi
    fi
done
echo
echo "| containers | status median ms | docker stats median ms | speed-up (medians) |"
echo "|---:|---:|---:|---:|"
printf '%s\n' "${SPEEDUPS[@]}"
if ((BREAKDOWN)); then
    echo
    echo "Where a status run's time goes ($RUNS runs each unless noted):"
    echo
    echo "| containers | what | min ms | median ms | max ms |"
    echo "|---:|---|---:|---:|---:|"
    printf '%s\n' "${BREAK_ROWS[@]}"
fi

if [[ -n $BENCH_SAMPLE ]]; then
    id=$("$DOCKER_CLI" ps -q --no-trunc | head -n 1)
    pid=$("$DOCKER_CLI" inspect --format '{{.State.Pid}}' "$id")
    echo
    echo "### mw_bench_sample with live container ${id:0:12} (pid $pid)"
    echo
    echo '```'
    echo "MW_BENCH_CGROUP_ROOT=/ MW_BENCH_CONTAINER_ID=$id MW_BENCH_PID=$pid tests/bench/sample_ratio.sh build/dev/tests/bench/mw_bench_sample"
    echo '```'
    echo
    MW_BENCH_CGROUP_ROOT=/ MW_BENCH_CONTAINER_ID=$id MW_BENCH_PID=$pid "$HERE/sample_ratio.sh" "$BENCH_SAMPLE"
fi
