#!/usr/bin/env bash
# Manual end-to-end check of ollama-sim inside a real container (cgroup v1 or v2 host).
#
#   tests/support/ollama_sim/docker_check.sh BINARY [PORT]
#
# Needs DOCKER_HOST pointing at a (private) engine, e.g. from scripts/test-engine.sh start DIR,
# host networking, curl, and busybox-static (/bin/busybox) for the image's /bin/sh.
# Builds an image with `docker import`, runs every fault mode, prints the memory numbers it
# reads from the container's memory cgroup, and exits non-zero if an expectation fails.
# Containers it creates are named ollama-sim-check-* and removed at the end.
set -euo pipefail

BIN=${1:?usage: $0 BINARY [PORT]}
PORT=${2:-18434}
IMAGE=ollama-sim-check:latest
URL=http://127.0.0.1:$PORT
FAILS=0
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"; docker rm -f $(docker ps -aq --filter name=ollama-sim-check-) >/dev/null 2>&1 || true' EXIT

say() { printf '%s\n' "$*"; }
check() { # check DESCRIPTION CONDITION(arith)
  if (($2)); then say "  ok   $1"; else say "  FAIL $1"; FAILS=$((FAILS + 1)); fi
}

build_image() {
  mkdir -p "$WORK/root/bin" "$WORK/root/tmp" "$WORK/root/proc" "$WORK/root/sys" "$WORK/root/dev" "$WORK/root/etc"
  chmod 1777 "$WORK/root/tmp"
  cp "$BIN" "$WORK/root/bin/ollama-sim"
  if [[ -x /bin/busybox ]]; then
    cp /bin/busybox "$WORK/root/bin/busybox"
    ln -s busybox "$WORK/root/bin/sh"
  fi
  tar -C "$WORK/root" -cf "$WORK/img.tar" .
  docker import "$WORK/img.tar" "$IMAGE" >/dev/null
}

NAME=""
CG=""
start() { # start NAME SIM_ARGS...
  NAME=ollama-sim-check-$1
  shift
  docker rm -f "$NAME" >/dev/null 2>&1 || true
  docker run -d --network host --name "$NAME" "$IMAGE" /bin/ollama-sim --listen "127.0.0.1:$PORT" "$@" >/dev/null
  local id i
  id=$(docker inspect -f '{{.Id}}' "$NAME")
  for CG in /sys/fs/cgroup/memory/docker/"$id" /sys/fs/cgroup/system.slice/docker-"$id".scope /sys/fs/cgroup/docker/"$id"; do
    [[ -d $CG ]] && break
  done
  for ((i = 0; i < 200; i++)); do
    docker logs "$NAME" 2>/dev/null | grep -q 'ollama-sim: listening' && return 0
    sleep 0.05
  done
  say "  FAIL $NAME did not start"; docker logs "$NAME" || true
  FAILS=$((FAILS + 1))
  return 1
}

stat_mib() { # stat_mib KEY... (first key present wins): memory.stat value in MiB
  local k v
  for k in "$@"; do
    v=$(awk -v k="$k" '$1 == k { print int($2 / 1048576); exit }' "$CG/memory.stat")
    if [[ -n $v ]]; then echo "$v"; return; fi
  done
  echo 0
}
anon_mib() { stat_mib total_rss anon; }
cache_mib() { stat_mib total_cache file; }
procs() { cat "$CG/cgroup.procs"; }
runner_pids() { # host pids in the container whose argv[1] is "runner"
  local p
  for p in $(procs); do
    [[ $(tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null | sed -n 2p) == runner ]] && echo "$p"
  done
  return 0
}
vmrss_mib() { awk '/^VmRSS/ { print int($2 / 1024) }' "/proc/$1/status"; }
gen() { curl -fsS -m 30 -d "$1" "$URL/api/generate"; }
stop_timed() {
  local t0 t1
  t0=$(date +%s%N)
  docker stop "$NAME" >/dev/null
  t1=$(date +%s%N)
  local ms=$(((t1 - t0) / 1000000))
  check "docker stop took ${ms} ms (< 2000)" "ms < 2000"
  docker rm "$NAME" >/dev/null
}

build_image

say "== basic: small:1=200:50"
start basic --model small:1=200:50 --model llama3.1:8b=64
check "version" "$(curl -fsS "$URL/api/version" | grep -c '"version":"0.11.4-sim"') == 1"
check "tags lists 2 models" "$(curl -fsS "$URL/api/tags" | grep -o '"name"' | wc -l) == 2"
check "show has model_info" "$(curl -fsS -d '{"model":"small:1"}' "$URL/api/show" | grep -c '"llama.block_count"') == 1"
check "show 404" "$(curl -s -o /dev/null -w '%{http_code}' -d '{"model":"x"}' "$URL/api/show") == 404"
a0=$(anon_mib)
gen '{"model":"small:1","prompt":"","keep_alive":-1}' >/dev/null
a1=$(anon_mib)
r=$(runner_pids)
say "  anon before=${a0} after load=${a1} MiB; runner host pid=${r:-none} comm=$(cat /proc/"$r"/comm 2>/dev/null) rss=$(vmrss_mib "$r") MiB"
check "load grows anon by ~150 MiB" "a1 - a0 >= 140 && a1 - a0 <= 175"
check "runner in cgroup.procs" "$(echo "$r" | grep -c .) == 1"
check "ps lists small:1 with size_vram" "$(curl -fsS "$URL/api/ps" | grep -c '"size_vram":52428800')==1"
gen '{"model":"small:1","keep_alive":0}' >/dev/null
a2=$(anon_mib)
say "  after unload=${a2} MiB"
check "unload frees it" "a2 - a0 <= 10"
check "runner gone" "$(runner_pids | grep -c .) == 0"
stop_timed

say "== --leak-per-request-mib 20"
start leakreq --model tiny:1=8 --leak-per-request-mib 20
gen '{"model":"tiny:1","prompt":"","keep_alive":-1}' >/dev/null
a0=$(anon_mib)
for i in $(seq 10); do gen '{"model":"tiny:1","prompt":"hello","stream":false}' >/dev/null; done
a1=$(anon_mib)
say "  anon ${a0} -> ${a1} MiB after 10 requests"
check "10 x 20 MiB leaked (~200)" "a1 - a0 >= 190 && a1 - a0 <= 215"
stop_timed

say "== --leak-per-second-mib 20"
start leaksec --model tiny:1=8 --leak-per-second-mib 20
a0=$(anon_mib); sleep 1; a1=$(anon_mib)
check "no growth with nothing loaded (${a0} -> ${a1})" "a1 - a0 <= 2"
gen '{"model":"tiny:1","prompt":"","keep_alive":-1}' >/dev/null
a0=$(anon_mib); sleep 3; a1=$(anon_mib)
say "  anon ${a0} -> ${a1} MiB in 3 s"
check "~60 MiB in 3 s" "a1 - a0 >= 50 && a1 - a0 <= 70"
stop_timed

say "== --retain-after-unload-mib 100 and --bloat-at-start-mib 120"
start retain --model small:1=200:50 --retain-after-unload-mib 100 --bloat-at-start-mib 120
a0=$(anon_mib)
check "bloat at start: anon ${a0} MiB >= 120" "a0 >= 120 && a0 <= 135"
gen '{"model":"small:1","prompt":""}' >/dev/null
gen '{"model":"small:1","keep_alive":0}' >/dev/null
a1=$(anon_mib)
say "  anon ${a0} -> ${a1} MiB after load+unload; ps=$(curl -fsS "$URL/api/ps")"
check "retained ~100 MiB with no model" "a1 - a0 >= 95 && a1 - a0 <= 110"
stop_timed

say "== --orphan-runner and --orphan-mib 80"
start orphan --model small:1=200:50 --orphan-runner --orphan-mib 80
a0=$(anon_mib)
check "orphan at start: anon ${a0} MiB >= 80, one runner" "a0 >= 80 && $(runner_pids | grep -c .) == 1"
gen '{"model":"small:1","prompt":""}' >/dev/null
gen '{"model":"small:1","keep_alive":0}' >/dev/null
a1=$(anon_mib)
ps_models=$(curl -fsS "$URL/api/ps")
rp=$(runner_pids | tr '\n' ' ')
say "  after load+unload: anon=${a1} MiB, /api/ps=${ps_models}, runners: $(for p in $rp; do printf '%s(%s MiB) ' "$p" "$(vmrss_mib "$p")"; done)"
check "/api/ps empty" "$(echo "$ps_models" | grep -c '"models":\[\]') == 1"
check "two runners still in cgroup.procs" "$(echo "$rp" | wc -w) == 2"
check "memory kept (~230 MiB)" "a1 >= 220"
stop_timed

say "== --cache-file /tmp/w.gguf --cache-mib 200"
start cache --cache-file /tmp/w.gguf --cache-mib 200
c1=$(cache_mib); a1=$(anon_mib)
say "  cache=${c1} MiB anon=${a1} MiB"
check "page cache >= 200 MiB" "c1 >= 200"
check "anon stays small" "a1 <= 10"
stop_timed

say "== --slow-ms 400"
start slow --slow-ms 400 --model tiny:1=8
t=$(curl -fsS -o /dev/null -w '%{time_total}' "$URL/api/version")
check "answer after ${t}s (>= 0.4)" "$(awk -v t="$t" 'BEGIN { print (t >= 0.4) }') == 1"
stop_timed

say "== --ttft-ms 300 --tokens-per-second 20"
start timed --ttft-ms 300 --tokens-per-second 20 --model tiny:1=8
gen '{"model":"tiny:1","prompt":""}' >/dev/null
out=$(curl -fsS -N -o "$WORK/timed.ndjson" -w '%{time_starttransfer} %{time_total}' \
  -d '{"model":"tiny:1","prompt":"hi","options":{"num_predict":10}}' "$URL/api/generate")
read -r tf tt <<<"$out"
check "first line after ${tf}s (0.29 .. 0.45)" "$(awk -v t="$tf" 'BEGIN { print (t >= 0.29 && t < 0.45) }') == 1"
check "10 tokens done after ${tt}s (0.74 .. 0.95)" "$(awk -v t="$tt" 'BEGIN { print (t >= 0.74 && t < 0.95) }') == 1"
check "10 token lines" "$(grep -c '"done":false' "$WORK/timed.ndjson") == 10"
check "eval_count 10, done_reason length" "$(grep -c '"done_reason":"length".*"eval_count":10,' "$WORK/timed.ndjson") == 1"
curl -fsS -N -o /dev/null -d '{"model":"tiny:1","prompt":"hi","options":{"num_predict":40}}' "$URL/api/generate" &
sleep 0.5
t=$(curl -fsS -o /dev/null -w '%{time_total}' "$URL/api/ps")
check "/api/ps answered during a stream in ${t}s (< 0.2)" "$(awk -v t="$t" 'BEGIN { print (t < 0.2) }') == 1"
wait
sse=$(curl -fsS -N -d '{"model":"tiny:1","messages":[{"role":"user","content":"hi"}],"stream":true,"max_tokens":5,"stream_options":{"include_usage":true}}' "$URL/v1/chat/completions")
check "OpenAI: 5 chunks with content" "$(grep -c '"finish_reason":null' <<<"$sse") == 5"
check "OpenAI: usage and [DONE]" "$(grep -c '"completion_tokens":5,' <<<"$sse") + $(grep -c '^data: \[DONE\]' <<<"$sse") == 2"
stop_timed

say "== --fail-stream-after 3 / --drop-stream-after 3"
start fail --fail-stream-after 3 --model tiny:1=8
last=$(curl -fsS -N -d '{"model":"tiny:1","prompt":"hi","options":{"num_predict":10}}' "$URL/api/generate" | tail -1)
check "error line after 3 tokens" "$(grep -c '^{"error":' <<<"$last") == 1"
stop_timed
start drop --drop-stream-after 3 --model tiny:1=8
rc=0
curl -fsS -N -o /dev/null -d '{"model":"tiny:1","prompt":"hi","options":{"num_predict":10}}' "$URL/api/generate" 2>/dev/null || rc=$?
check "truncated body (curl exit ${rc}, 18)" "rc == 18"
stop_timed

if ((FAILS)); then say "FAILED: $FAILS check(s)"; exit 1; fi
say "all checks passed"
