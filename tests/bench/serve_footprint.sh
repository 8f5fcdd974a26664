#!/usr/bin/env bash
# Footprint of `memwarden serve` beside Prometheus node_exporter, on a private
# Docker engine holding N memhog containers (N = 50 by default).
#
#   tests/bench/serve_footprint.sh [options] MEMWARDEN_BINARY MEMHOG_BINARY
#
#   --containers 50   containers to start
#   --seconds 60      length of the CPU window
#   --scrapes 50      timed scrapes of each /metrics
#   --interval 1s     memwarden's sample interval
#
# Starts its own engine (scripts/test-engine.sh) in a temp state dir and stops it on exit,
# starts the containers (docker run -d --network none -m 64m memwarden-test/hog:latest
# /bin/memhog --mib 4), then memwarden serve (history on, fix off) and
# prometheus-node-exporter (its default collectors) on loopback ports. After a 10 s warm-up,
# both processes' CPU time (utime + stime from /proc/PID/stat) is read at the start and end of
# the window, during which both are scraped every 15 s as a Prometheus would (node_exporter only
# works when scraped); then resident memory (VmRSS, VmHWM, RssAnon, RssFile, and Pss from
# smaps_rollup); then each /metrics is scraped --scrapes times with curl (time_total).
# Prints Markdown on stdout.
set -euo pipefail

die() { echo "serve_footprint: $*" >&2; exit 1; }
log() { echo "serve_footprint: $*" >&2; }

COUNT=50
SECONDS_WINDOW=60
SCRAPES=50
INTERVAL=1s
while [[ $# -gt 0 ]]; do
    case $1 in
        --containers) COUNT=$2; shift 2 ;;
        --seconds) SECONDS_WINDOW=$2; shift 2 ;;
        --scrapes) SCRAPES=$2; shift 2 ;;
        --interval) INTERVAL=$2; shift 2 ;;
        -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        -*) die "unknown option $1" ;;
        *) break ;;
    esac
done
[[ $# -eq 2 ]] || die "usage: $0 [options] MEMWARDEN_BINARY MEMHOG_BINARY (--help)"
MW=$(realpath -- "$1")
MEMHOG=$(realpath -- "$2")
[[ -x $MW ]] || die "memwarden binary '$1' not found or not executable"
[[ -f $MEMHOG ]] || die "memhog binary '$2' not found"
NODE_EXPORTER=$(command -v prometheus-node-exporter) || die "prometheus-node-exporter missing (scripts/bootstrap.sh test)"

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SCRIPTS=$(cd "$HERE/../../scripts" && pwd)
STATE=$(mktemp -d "${TMPDIR:-/tmp}/mw-bench-serve.XXXXXX")
PIDS=()
cleanup() {
    local rc=$?
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    log "stopping engine $STATE"
    "$SCRIPTS/test-engine.sh" stop "$STATE" >&2 || log "engine stop failed"
    rm -rf "$STATE"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$STATE/bin"
cp -- "$MW" "$STATE/bin/memwarden"
MW_SUM=$(sha256sum "$MW" | cut -c1-12)
MW=$STATE/bin/memwarden

log "starting engine in $STATE"
DOCKER_HOST=$("$SCRIPTS/test-engine.sh" start "$STATE" | tail -n 1)
export DOCKER_HOST
"$SCRIPTS/build-test-image.sh" "$DOCKER_HOST" "$MEMHOG" >/dev/null
log "starting $COUNT containers"
for ((i = 0; i < COUNT; i++)); do
    docker run -d --name "mwb-serve-$i" --network none -m 64m memwarden-test/hog:latest /bin/memhog --mib 4 >/dev/null
done

MW_PORT=18791
NE_PORT=18792
cat >"$STATE/memwarden.yaml" <<EOF
listen: 127.0.0.1:$MW_PORT
state_dir: $STATE/mw-state
interval: $INTERVAL
fix:
  auto: off
EOF
"$MW" serve --config "$STATE/memwarden.yaml" --docker-host "$DOCKER_HOST" 2>"$STATE/memwarden.log" &
MW_PID=$!
PIDS+=("$MW_PID")
"$NODE_EXPORTER" --web.listen-address="127.0.0.1:$NE_PORT" 2>"$STATE/node_exporter.log" &
NE_PID=$!
PIDS+=("$NE_PID")

for _ in $(seq 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:$MW_PORT/healthz" 2>/dev/null &&
        curl -fsS -o /dev/null "http://127.0.0.1:$NE_PORT/metrics" 2>/dev/null && break
    sleep 0.2
done
curl -fsS -o /dev/null "http://127.0.0.1:$MW_PORT/healthz" || die "memwarden did not come up: $(cat "$STATE/memwarden.log")"
seen=$(curl -fsS "http://127.0.0.1:$MW_PORT/metrics" | grep -c '^memwarden_container_working_set_bytes{' || true)
[[ $seen -ge $COUNT ]] || die "memwarden sees $seen containers, expected $COUNT"
log "warming up 10 s"
sleep 10

ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
kib() { awk -v k="$2" '$1 == k":" { print $2 }' "/proc/$1/status"; }
pss() { awk '$1 == "Pss:" { print $2 }' "/proc/$1/smaps_rollup"; }

log "CPU window of $SECONDS_WINDOW s"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
mw0=$(cpu_ticks "$MW_PID")
ne0=$(cpu_ticks "$NE_PID")
t0=$EPOCHREALTIME
(
    while :; do
        curl -fsS -o /dev/null "http://127.0.0.1:$MW_PORT/metrics" || true
        curl -fsS -o /dev/null "http://127.0.0.1:$NE_PORT/metrics" || true
        sleep 15
    done
) &
SCRAPER=$!
PIDS+=("$SCRAPER")
sleep "$SECONDS_WINDOW"
kill "$SCRAPER" 2>/dev/null || true
mw1=$(cpu_ticks "$MW_PID")
ne1=$(cpu_ticks "$NE_PID")
t1=$EPOCHREALTIME
wall_us=$((10#${t1/./} - 10#${t0/./}))
pct() { awk -v t="$1" -v hz="$ticks" -v us="$wall_us" 'BEGIN { printf "%.2f", 100 * t / hz / (us / 1e6) }'; }
mw_cpu=$(pct $((mw1 - mw0)))
ne_cpu=$(pct $((ne1 - ne0)))
samples=$(curl -fsS "http://127.0.0.1:$MW_PORT/metrics" | awk '$1 == "memwarden_samples_total" { print $2 }')

scrape_stats() { # URL -> "median p90 max" in ms, and the body size
    local url=$1 i
    for ((i = 0; i < SCRAPES; i++)); do
        curl -fsS -o /dev/null -w '%{time_total}\n' "$url"
    done | sort -n | awk '{ v[NR] = $1 * 1000 } END { printf "%.2f %.2f %.2f", v[int((NR + 1) / 2)], v[int(NR * 0.9 + 0.5)], v[NR] }'
}
log "scraping"
read -r mw_med mw_p90 mw_max <<<"$(scrape_stats "http://127.0.0.1:$MW_PORT/metrics")"
read -r ne_med ne_p90 ne_max <<<"$(scrape_stats "http://127.0.0.1:$NE_PORT/metrics")"
mw_bytes=$(curl -fsS "http://127.0.0.1:$MW_PORT/metrics" | wc -c)
ne_bytes=$(curl -fsS "http://127.0.0.1:$NE_PORT/metrics" | wc -c)
mw_series=$(curl -fsS "http://127.0.0.1:$MW_PORT/metrics" | grep -vc '^#')
ne_series=$(curl -fsS "http://127.0.0.1:$NE_PORT/metrics" | grep -vc '^#')

echo "### memwarden serve vs node_exporter, $COUNT containers, interval $INTERVAL, ${SECONDS_WINDOW} s window"
echo
echo "$(nproc) CPUs, $(uname -r), $(docker version -f '{{.Server.Version}}' 2>/dev/null) engine; memwarden sha256 $MW_SUM... took $samples samples by the end; load average $LOAD_START at the start of the window, $(cut -d' ' -f1-3 /proc/loadavg) at the end."
echo
echo "| | memwarden serve | node_exporter |"
echo "|---|---:|---:|"
echo "| CPU, % of one core | $mw_cpu | $ne_cpu |"
echo "| RSS now (VmRSS) | $(($(kib "$MW_PID" VmRSS) / 1024)) MiB ($(kib "$MW_PID" VmRSS) KiB) | $(($(kib "$NE_PID" VmRSS) / 1024)) MiB ($(kib "$NE_PID" VmRSS) KiB) |"
echo "| RSS peak (VmHWM) | $(($(kib "$MW_PID" VmHWM) / 1024)) MiB | $(($(kib "$NE_PID" VmHWM) / 1024)) MiB |"
echo "| of it anonymous / file-backed (RssAnon / RssFile) | $(kib "$MW_PID" RssAnon) / $(kib "$MW_PID" RssFile) KiB | $(kib "$NE_PID" RssAnon) / $(kib "$NE_PID" RssFile) KiB |"
echo "| PSS (shared pages divided among their users) | $(pss "$MW_PID") KiB | $(pss "$NE_PID") KiB |"
echo "| /metrics scrape, median / p90 / max ms ($SCRAPES scrapes) | $mw_med / $mw_p90 / $mw_max | $ne_med / $ne_p90 / $ne_max |"
echo "| /metrics size, series | $mw_bytes B, $mw_series | $ne_bytes B, $ne_series |"
echo "| open file descriptors (kept cgroup files among them) | $(ls "/proc/$MW_PID/fd" | wc -l) | $(ls "/proc/$NE_PID/fd" | wc -l) |"
echo "| threads | $(kib "$MW_PID" Threads) | $(kib "$NE_PID" Threads) |"
