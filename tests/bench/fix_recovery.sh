#!/usr/bin/env bash
# Time to verified recovery of `memwarden fix` on the idle-bloat scenario, split into its
# steps, against the same restart done by hand. Target: memwarden adds under 1 s to the
# restart itself.
#
#   tests/bench/fix_recovery.sh MEMWARDEN OLLAMA_SIM MEMHOG [--runs N]
#
#   --runs 5    runs of each variant
#
# Starts its own engine (scripts/integration-fixture.sh setup in a mktemp -d state dir,
# teardown on exit), which builds memwarden-test/ollama-sim:latest with /bin/ollama-sim.
# Every run of every variant starts a fresh simulator container
#   docker run -d --network host -e OLLAMA_HOST=127.0.0.1:PORT -m 2g \
#       --label memwarden.enable=true memwarden-test/ollama-sim:latest \
#       /bin/ollama-sim --model small:1=100 --retain-after-unload-mib 600
# and bloats it through the API (the sim keeps 600 MiB once the last model unloads, once
# per process):
#   restart: load small:1, unload it (keep_alive 0), wait for `retained_after_unload`.
#            No model is loaded, so the ladder is drain, restart, health_wait, verify.
#   unload:  load, unload, wait for `retained_after_unload`, load again. A model is loaded,
#            so the ladder unloads it first, waits --settle (default 3 s), measures (still
#            bloated: the 600 MiB stay) and goes on: unload, settle, drain, restart,
#            health_wait, verify.
# Then, timed with bash's $EPOCHREALTIME from just before the exec to its exit:
#   memwarden fix --all --window 3s --interval 1s --hold 2s --reserve 0 \
#       --base-allowance 64M --bloat-margin 128M --state-dir DIR --json
# (DIR fresh per run, so no cooldown or budget applies). It must exit 0 with outcome
# `succeeded`, kind `restart` and the steps above. From its JSON: each step's `ms`, and the
# observation window = diagnosis.ended_ms - diagnosis.started_ms. memwarden's own overhead:
#   total wall - window - (drain + unload + settle + restart + health_wait)
# i.e. process start, discovery, sampling, journal writes, verify and output. It is split
# with the journal's wall-clock times (`memwarden history --json`, read after the run):
#   before the ladder = record started_at_ms - start - window (process start, journal open,
#                       host probes, discovery, summary, eligibility); when python3 is there to
#                       relate CLOCK_MONOTONIC to the wall clock, split into before the window
#                       (diagnosis started_ms - start) and window end to ladder (record
#                       started_at_ms - diagnosis ended_ms)
#   in the ladder     = (ended_at_ms - started_at_ms) - the timed steps (journal writes:
#                       begin, each step, finish; verify; the gaps between steps)
#   after the ladder  = exit - record ended_at_ms (JSON output, exit)
#
# By hand, in the same run: the container (now healthy) is bloated again the same way, then
#   docker restart -t 10 NAME
#   until curl -fsS --max-time 1 -o /dev/null http://127.0.0.1:PORT/api/version; do sleep 0.05; done
# is timed (restart = the docker command, health = the polling), which is what an operator
# does without memwarden. memwarden's own restart step is the same engine call
# (POST /containers/{id}/restart?t=10); its health_wait polls every 200 ms.
#
# Prints Markdown on stdout (per-run tables, then min/median/max and the verdict); progress
# on stderr. Exits 1 if a fix did not succeed as expected.
set -euo pipefail

die() { echo "fix_recovery: $*" >&2; exit 1; }
log() { echo "fix_recovery: $*" >&2; }

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
STATE=$(mktemp -d "${TMPDIR:-/tmp}/mw-fixbench-engine.XXXXXX")
CURRENT=""
cleanup() {
    local rc=$?
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

# now_us: bash's wall clock in microseconds.
now_us() { local t=$EPOCHREALTIME; echo "${t/./}"; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%d", (b - a) / 1000 + 0.5 }'; }

# log_count NAME TEXT: how many log lines of the container contain TEXT (all its starts).
log_count() { docker logs "$1" 2>&1 | grep -cF -- "$2" || true; }

# wait_log NAME TEXT N TENTHS: waits up to TENTHS/10 s until TEXT is in N log lines.
wait_log() {
    local i
    for ((i = 0; i < $4; i++)); do
        (($(log_count "$1" "$2") >= $3)) && return 0
        sleep 0.1
    done
    return 1
}

# api NAME PORT BODY: POST /api/generate, fails unless HTTP 200.
api() {
    curl -fsS --max-time 60 -o /dev/null -H 'Content-Type: application/json' \
        -X POST "http://127.0.0.1:$2/api/generate" -d "$3" ||
        die "$1: POST /api/generate $3 failed: $(docker logs "$1" 2>&1 | tail -n 5)"
}

# start_sim NAME PORT: the simulator container, opted in; waits for "listening".
start_sim() {
    docker rm -f "$1" >/dev/null 2>&1 || true
    CURRENT=$1
    docker run -d --name "$1" --network host -e "OLLAMA_HOST=127.0.0.1:$2" -m 2g \
        --label memwarden.enable=true "$IMAGE" \
        /bin/ollama-sim --model small:1=100 --retain-after-unload-mib 600 >/dev/null
    wait_log "$1" "ollama-sim: listening" 1 300 || die "$1: no 'listening' line: $(docker logs "$1" 2>&1 | tail -n 5)"
}

# bloat NAME PORT VARIANT: load and unload (600 MiB retained), and for `unload` load again.
bloat() {
    local n
    n=$(log_count "$1" "retained_after_unload")
    api "$1" "$2" '{"model":"small:1","prompt":"","stream":false}'
    api "$1" "$2" '{"model":"small:1","keep_alive":0}'
    wait_log "$1" "retained_after_unload" $((n + 1)) 300 || die "$1: no new 'retained_after_unload' line"
    if [[ $3 == unload ]]; then
        api "$1" "$2" '{"model":"small:1","prompt":"","stream":false}'
    fi
}

# by_hand NAME PORT: "restart_ms health_ms" of docker restart + polling /api/version.
by_hand() {
    local t0 t1 t2 deadline
    t0=$(now_us)
    docker restart -t 10 "$1" >/dev/null
    t1=$(now_us)
    deadline=$((t1 + 120000000))
    until curl -fsS --max-time 1 -o /dev/null "http://127.0.0.1:$2/api/version" 2>/dev/null; do
        (($(now_us) < deadline)) || die "$1: /api/version did not answer within 120 s of docker restart"
        sleep 0.05
    done
    t2=$(now_us)
    echo "$(ms "$t0" "$t1") $(ms "$t1" "$t2")"
}

# mono_offset_us: CLOCK_REALTIME - CLOCK_MONOTONIC in µs (read together), or fails.
mono_offset_us() {
    command -v python3 >/dev/null || return 1
    python3 -c 'import time; print(max((time.time_ns() - time.monotonic_ns()) // 1000 for _ in range(5)))'
}

RAW=$STATE/raw.tsv
: >"$RAW"
FAILED=0
PORT=18780

run_variant() { # run_variant VARIANT RUN
    local v=$1 r=$2 name="mwfix-$1-$2" out="$STATE/out/$1-$2" port=$((PORT++)) sdir="$STATE/fix-$1-$2"
    local t0 t1 rc=0 expect got s total window rec_start rec_end steps_sum pre mid post over hand_r hand_h
    local off d_start d_end pre_w=- w_lad=-
    local -A st=()
    log "run $r: $v ($name, port $port)"
    start_sim "$name" "$port"
    bloat "$name" "$port" "$v"
    t0=$(now_us)
    "$MW" fix --all --window 3s --interval 1s --hold 2s --reserve 0 --base-allowance 64M \
        --bloat-margin 128M --state-dir "$sdir" --json >"$out.json" 2>"$out.err" || rc=$?
    t1=$(now_us)
    total=$(ms "$t0" "$t1")
    jq -e .schema "$out.json" >/dev/null 2>&1 || die "$v run $r: memwarden wrote no JSON (exit $rc): $(cat "$out.err")"
    s=$(jq -c --arg n "$name" '.servers[] | select(.name == $n)' "$out.json")
    [[ -n $s ]] || die "$v run $r: $name not in fix's servers: $(jq -c . "$out.json")"
    if [[ $v == unload ]]; then expect="unload settle drain restart health_wait verify"; else expect="drain restart health_wait verify"; fi
    got=$(jq -r '[.steps[].name] | join(" ")' <<<"$s")
    if [[ $rc -ne 0 || $(jq -r '.outcome + " " + .kind' <<<"$s") != "succeeded restart" || $got != "$expect" ]]; then
        log "$v run $r: exit $rc, $(jq -r '.outcome + " " + (.kind // "-") + ": " + .message' <<<"$s"), steps '$got' (expected '$expect')"
        cp -- "$out.json" "${TMPDIR:-/tmp}/mwfix-$v-$r.json" || true
        FAILED=1
    fi
    while read -r k val; do st[$k]=$val; done < <(jq -r '.steps[] | "\(.name) \(.ms)"' <<<"$s")
    window=$(jq -r '.diagnosis.ended_ms - .diagnosis.started_ms' "$out.json")
    steps_sum=$((${st[drain]:-0} + ${st[unload]:-0} + ${st[settle]:-0} + ${st[restart]:-0} + ${st[health_wait]:-0}))
    over=$((total - window - steps_sum))
    read -r rec_start rec_end <<<"$("$MW" history --json --state-dir "$sdir" |
        jq -r '.records[0] | "\(.started_at_ms) \(.ended_at_ms)"')"
    pre=$(awk -v s="$rec_start" -v t="$t0" -v w="$window" 'BEGIN { printf "%d", s - t / 1000 - w + 0.5 }')
    mid=$((rec_end - rec_start - steps_sum))
    if off=$(mono_offset_us); then
        read -r d_start d_end <<<"$(jq -r '"\(.diagnosis.started_ms) \(.diagnosis.ended_ms)"' "$out.json")"
        pre_w=$(awk -v d="$d_start" -v t="$t0" -v o="$off" 'BEGIN { printf "%d", d - (t - o) / 1000 + 0.5 }')
        w_lad=$(awk -v e="$d_end" -v s="$rec_start" -v o="$off" 'BEGIN { printf "%d", s - o / 1000 - e + 0.5 }')
    fi
    post=$(awk -v e="$rec_end" -v t="$t1" 'BEGIN { printf "%d", t / 1000 - e + 0.5 }')
    # By hand, on the same container, bloated again the same way.
    bloat "$name" "$port" "$v"
    read -r hand_r hand_h <<<"$(by_hand "$name" "$port")"
    # variant run total window drain unload settle restart health verify overhead pre in post
    #   hand_restart hand_health exit before_window window_to_ladder
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$v" "$r" "$total" "$window" \
        "${st[drain]:--}" "${st[unload]:--}" "${st[settle]:--}" "${st[restart]:--}" "${st[health_wait]:--}" \
        "${st[verify]:--}" "$over" "$pre" "$mid" "$post" "$hand_r" "$hand_h" "$rc" "$pre_w" "$w_lad" >>"$RAW"
    docker rm -f "$name" >/dev/null
    CURRENT=""
}

# Process start alone, for reference (5 runs of `memwarden --version`).
START_RAW=()
for ((i = 0; i < 5; i++)); do
    t0=$(now_us)
    "$MW" --version >/dev/null
    START_RAW+=("$(ms "$t0" "$(now_us)")")
done

for ((run = 1; run <= RUNS; run++)); do
    run_variant restart "$run"
    run_variant unload "$run"
done

# mmm VALUES...: "min median max" of integers.
mmm() {
    printf '%s\n' "$@" | { grep -E '^-?[0-9]+$' || true; } | sort -n | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "- - -"; exit }
        med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%d %d %d\n", v[1], med, v[NR] }'
}
# col VARIANT "C [-C]...": per run, the sum of RAW's columns C (a minus subtracts one).
col() {
    awk -F'\t' -v v="$1" -v cs="$2" '$1 == v {
        n = split(cs, c, " "); x = 0
        for (i = 1; i <= n; i++) {
            k = (c[i] < 0) ? -c[i] : c[i]
            if ($k == "-") next
            x += (c[i] < 0) ? -$k : $k
        }
        print x }' "$RAW"
}
row() { # row VARIANT LABEL "C [-C]..."
    local a b c vals
    mapfile -t vals < <(col "$1" "$3")
    read -r a b c <<<"$(mmm "${vals[@]}")"
    echo "| $2 | $a | $b | $c |"
}

CGROUP=$(if [[ -e /sys/fs/cgroup/cgroup.controllers ]]; then echo v2; elif [[ -e /sys/fs/cgroup/unified/cgroup.controllers ]]; then echo hybrid; else echo v1; fi)
ENGINE=$(docker version --format '{{.Server.Version}}' 2>/dev/null || echo unknown)
echo "### fix: time to verified recovery, idle-bloat ($RUNS runs of each variant)"
echo
echo "Host: $(nproc) CPUs, kernel $(uname -r), cgroup $CGROUP; engine $ENGINE; memwarden sha256 $MW_SUM..., ollama-sim sha256 $SIM_SUM...; load average $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "Per run, ms. overhead = total − window − (drain + unload + settle + restart + health_wait), split into before / in / after the ladder; by hand = \`docker restart -t 10\` + polling \`/api/version\` every 50 ms."
echo
echo "| variant | run | total wall | window | drain | unload | settle | restart | health_wait | verify | **overhead** | before / in / after ladder | memwarden restart + health | by hand restart + health | exit |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|"
awk -F'\t' '{ printf "| %s | %s | %d | %d | %s | %s | %s | %s | %s | %s | **%d** | %d / %d / %d | %d | %d + %d = %d | %s |\n",
    $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $8 + $9, $15, $16, $15 + $16, $17 }' "$RAW"
for v in restart unload; do
    echo
    echo "$v variant, min / median / max over $RUNS runs (ms):"
    echo
    echo "| what | min | median | max |"
    echo "|---|---:|---:|---:|"
    row "$v" "total wall (\`fix\` start to exit, recovery verified)" "3"
    row "$v" "observation window (diagnosis ended_ms − started_ms)" "4"
    row "$v" "drain" "5"
    if [[ $v == unload ]]; then
        row "$v" "unload" "6"
        row "$v" "settle (--settle 3s + measuring)" "7"
    fi
    row "$v" "restart (POST /containers/{id}/restart?t=10)" "8"
    row "$v" "health_wait (GET /api/version every 200 ms)" "9"
    row "$v" "verify" "10"
    row "$v" "**memwarden overhead** (total − window − timed steps)" "11"
    row "$v" "… before the ladder (process start, journal open, discovery, eligibility)" "12"
    row "$v" "… … of which before the window (process start, journal open, host probes, discovery)" "18"
    row "$v" "… … of which window end to ladder (summary, eligibility)" "19"
    row "$v" "… in the ladder (journal writes, verify, gaps)" "13"
    row "$v" "… after the ladder (output, exit)" "14"
    row "$v" "memwarden restart + health_wait" "8 9"
    row "$v" "by hand: \`docker restart -t 10\`" "15"
    row "$v" "by hand: polling until /api/version answers" "16"
    row "$v" "by hand: restart + health" "15 16"
    row "$v" "memwarden restart + health − by hand (same run)" "8 9 -15 -16"
    row "$v" "overhead + (memwarden restart + health − by hand): what memwarden adds to the restart" "11 8 9 -15 -16"
done
echo
read -r a b c <<<"$(mmm "${START_RAW[@]}")"
echo "Process start alone (\`memwarden --version\`, 5 runs): $a / $b / $c ms."
echo
mapfile -t OVER < <(awk -F'\t' '{ print $11 }' "$RAW")
mapfile -t ADDED < <(awk -F'\t' '{ print $11 + $8 + $9 - $15 - $16 }' "$RAW")
read -r a b c <<<"$(mmm "${OVER[@]}")"
read -r d e f <<<"$(mmm "${ADDED[@]}")"
if ((c < 1000 && f < 1000)); then verdict="**met**"; else verdict="**not met**"; fi
echo "Verdict, memwarden adds under 1 s to the restart itself (all $((RUNS * 2)) runs, min / median / max): overhead $a / $b / $c ms; overhead plus memwarden's restart + health beyond the by-hand restart + health $d / $e / $f ms: $verdict."
log "raw rows:"
cat "$RAW" >&2
((FAILED == 0)) || die "some fixes did not succeed as expected"
