#!/usr/bin/env bash
# Private, throw-away Docker engine for memwarden tests.
#
#   scripts/test-engine.sh start  STATE_DIR   start (idempotent); last stdout line is DOCKER_HOST
#   scripts/test-engine.sh stop   STATE_DIR   remove containers, stop dockerd+containerd by pid
#   scripts/test-engine.sh status STATE_DIR   exit 0 and print DOCKER_HOST if running, else 1
#
# Layout (several engines with different STATE_DIRs can run side by side):
#   STATE_DIR/data           dockerd --data-root (vfs storage)
#   STATE_DIR/dockerd.log    dockerd + containerd log
#   STATE_DIR/dockerd.pid    dockerd --pidfile
#   STATE_DIR/daemon.json    empty config, so /etc/docker/daemon.json is ignored
#   STATE_DIR/env            "DOCKER_HOST=unix:///tmp/mwe-XXXXXXXX/docker.sock"
#   /tmp/mwe-XXXXXXXX/       short dir (unix socket paths are limited to 108 bytes):
#       docker.sock, exec/ (dockerd --exec-root; containerd sockets live below it)
#   XXXXXXXX = first 8 hex digits of sha1(absolute STATE_DIR).
#
# Processes are only ever signalled by pid, after checking that their command
# line mentions this engine's private paths; never by name.
set -euo pipefail

PING_TIMEOUT_S=60
TERM_TIMEOUT_S=20

die() { echo "test-engine: $*" >&2; exit 1; }
log() { echo "test-engine: $*" >&2; }

usage() {
    echo "usage: $0 {start|stop|status} STATE_DIR" >&2
    exit 2
}

ensure_pkg() { # ensure_pkg PACKAGE COMMAND: apt-get install PACKAGE if missing
    dpkg -s "$1" >/dev/null 2>&1 && return 0
    # Provided some other way (e.g. docker-ce instead of docker.io)?
    command -v "$2" >/dev/null 2>&1 && return 0
    [[ $(id -u) -eq 0 ]] || die "'$2' missing and not root; install package $1"
    log "installing $1"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >&2
}

[[ $# -eq 2 ]] || usage
CMD=$1
[[ -n $2 ]] || usage
STATE=$(realpath -m -- "$2")
HASH=$(printf '%s' "$STATE" | sha1sum | cut -c1-8)
SHORT=/tmp/mwe-$HASH
EXEC_ROOT=$SHORT/exec
SOCK=$SHORT/docker.sock
DATA_ROOT=$STATE/data
PIDFILE=$STATE/dockerd.pid
LOGFILE=$STATE/dockerd.log
ENVFILE=$STATE/env
CONFIG=$STATE/daemon.json
CTRD_PIDFILE=$EXEC_ROOT/containerd/containerd.pid
HOST_URI=unix://$SOCK

# cmdline_has PID NEEDLE: process alive and its argv contains NEEDLE.
cmdline_has() {
    local pid=$1 needle=$2 cmdline
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ -r /proc/$pid/cmdline ]] || return 1
    # Zombies are dead for our purposes.
    [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]] || return 1
    cmdline=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
    [[ $cmdline == *"$needle"* ]]
}

read_pid() { # read_pid FILE -> prints pid or nothing
    local p=""
    [[ -r $1 ]] && p=$(tr -cd '0-9' 2>/dev/null <"$1" || true)
    printf '%s' "$p"
}

dockerd_pid() { # prints the pid if our dockerd is alive
    local p
    p=$(read_pid "$PIDFILE")
    if [[ -n $p ]] && cmdline_has "$p" "$SOCK"; then printf '%s' "$p"; fi
}

ping_ok() {
    [[ -S $SOCK ]] || return 1
    [[ $(curl -fsS --max-time 3 --unix-socket "$SOCK" http://localhost/_ping 2>/dev/null) == OK ]]
}

running() { [[ -n $(dockerd_pid) ]] && ping_ok; }

wait_gone() { # wait_gone PID NEEDLE SECONDS
    local pid=$1 needle=$2 i
    for ((i = 0; i < $3 * 10; i++)); do
        cmdline_has "$pid" "$needle" || return 0
        sleep 0.1
    done
    return 1
}

kill_pid() { # kill_pid PID NEEDLE TERM_SECONDS: TERM, wait, then KILL
    local pid=$1 needle=$2
    cmdline_has "$pid" "$needle" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" "$needle" "$3"; then
        log "pid $pid did not exit after SIGTERM, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        wait_gone "$pid" "$needle" 5 || log "pid $pid still present after SIGKILL"
    fi
}

proc_dead() { # no such process, or a zombie
    [[ ! -e /proc/$1 ]] || [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) == Z ]]
}

# Leftover engine processes: dockerd/containerd/containerd-shim* whose argv
# mentions this engine's exec-root or socket. Other engines never match.
our_pids() {
    local f pid cmdline exe
    # One grep over all cmdlines, then check the few candidates.
    for f in $(grep -alsF -e "$EXEC_ROOT" -e "$SOCK" /proc/[0-9]*/cmdline || true); do
        pid=${f#/proc/}
        pid=${pid%/cmdline}
        cmdline=$(tr '\0' ' ' 2>/dev/null <"$f") || continue
        exe=${cmdline%% *}
        case ${exe##*/} in
            dockerd | containerd | containerd-shim*) printf '%s\n' "$pid" ;;
        esac
    done
}

children_of() {
    cat /proc/"$1"/task/*/children 2>/dev/null | tr ' ' '\n' | grep -E '^[0-9]+$' || true
}

# Kill any process still in the cgroups of the given containers (last resort).
kill_container_cgroups() {
    local id f p
    for id in "$@"; do
        for f in /sys/fs/cgroup/memory/docker/"$id"/cgroup.procs \
                 /sys/fs/cgroup/pids/docker/"$id"/cgroup.procs \
                 /sys/fs/cgroup/docker/"$id"/cgroup.procs \
                 /sys/fs/cgroup/system.slice/docker-"$id".scope/cgroup.procs; do
            [[ -r $f ]] || continue
            {
                while read -r p; do
                    if [[ -n $p ]]; then kill -KILL "$p" 2>/dev/null || true; fi
                done <"$f"
            } 2>/dev/null || true
        done
    done
}

unmount_leftovers() {
    local mp prefix
    # /proc/mounts escapes blanks as \040; our paths have none in practice.
    for prefix in "$DATA_ROOT" "$SHORT"; do
        awk -v p="$prefix" '$2 == p || index($2, p "/") == 1 { print $2 }' /proc/mounts |
            sort -r | while read -r mp; do
                log "unmounting leftover $mp"
                umount -l "$mp" 2>/dev/null || log "umount -l $mp failed"
            done
    done
}

do_stop() {
    local pid ctrd="" ids=() live=() p
    # Every container this engine knows has a directory named by its full id;
    # remember them (even if dockerd is dead) for the cgroup sweep below.
    if [[ -d $DATA_ROOT/containers ]]; then
        mapfile -t ids < <(find "$DATA_ROOT/containers" -mindepth 1 -maxdepth 1 \
            -type d -regextype posix-extended -regex '.*/[0-9a-f]{64}' -printf '%f\n')
    fi
    pid=$(dockerd_pid)
    if [[ -n $pid ]]; then
        if ping_ok; then
            mapfile -t live < <(timeout 30 docker -H "$HOST_URI" ps -aq --no-trunc 2>/dev/null || true)
            if ((${#live[@]})); then
                timeout 120 docker -H "$HOST_URI" rm -f "${live[@]}" >/dev/null 2>&1 ||
                    log "docker rm -f failed (continuing)"
                ids+=("${live[@]}")
            fi
        fi
        # Remember containerd before dockerd goes away (it is dockerd's child).
        p=$(read_pid "$CTRD_PIDFILE")
        if [[ -n $p ]] && cmdline_has "$p" "$EXEC_ROOT"; then ctrd=$p; fi
        if [[ -z $ctrd ]]; then
            for p in $(children_of "$pid"); do
                if cmdline_has "$p" "$EXEC_ROOT"; then ctrd=$p; fi
            done
        fi
        kill_pid "$pid" "$SOCK" "$TERM_TIMEOUT_S"
    fi
    # containerd: dockerd normally stops it on SIGTERM; make sure.
    if [[ -z $ctrd ]]; then
        p=$(read_pid "$CTRD_PIDFILE")
        if [[ -n $p ]] && cmdline_has "$p" "$EXEC_ROOT"; then ctrd=$p; fi
    fi
    if [[ -n $ctrd ]] && ! wait_gone "$ctrd" "$EXEC_ROOT" 10; then
        kill_pid "$ctrd" "$EXEC_ROOT" 5
    fi
    # Anything else still bound to this engine (orphaned shims, a dockerd
    # whose pidfile was lost): by pid, after re-checking its argv.
    for p in $(our_pids); do
        log "killing leftover pid $p ($(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | cut -c1-80))"
        if cmdline_has "$p" "$EXEC_ROOT"; then kill_pid "$p" "$EXEC_ROOT" 5; else kill_pid "$p" "$SOCK" 5; fi
    done
    if ((${#ids[@]})); then kill_container_cgroups "${ids[@]}"; fi
    unmount_leftovers
    rm -f "$PIDFILE" "$ENVFILE"
    rm -rf "$SHORT" 2>/dev/null || log "could not remove $SHORT"
    return 0
}

do_start() {
    local pid i
    if running; then
        printf 'DOCKER_HOST=%s\n' "$HOST_URI" >"$ENVFILE"
        echo "$HOST_URI"
        return 0
    fi
    # Stale state (dead pidfile, half-started engine, orphaned containerd).
    do_stop
    ensure_pkg docker.io dockerd
    ensure_pkg curl curl
    mkdir -p "$STATE" "$DATA_ROOT"
    mkdir -p "$SHORT"
    chmod 0700 "$SHORT"
    mkdir -p "$EXEC_ROOT"
    [[ -f $CONFIG ]] || echo '{}' >"$CONFIG"
    : >"$LOGFILE"
    # setsid: own session, so the engine outlives this script and the
    # caller's process group. All fds above 2 (our lock, pipes of whoever
    # called us) are closed so that nobody waits on dockerd holding them.
    (
        for fd in /proc/"$BASHPID"/fd/*; do
            fd=${fd##*/}
            if ((fd > 2)); then eval "exec $fd>&-"; fi
        done
        exec setsid dockerd \
            --config-file "$CONFIG" \
            --iptables=false --ip6tables=false --ip-forward=false --bridge=none \
            --storage-driver=vfs \
            --data-root "$DATA_ROOT" \
            --exec-root "$EXEC_ROOT" \
            --pidfile "$PIDFILE" \
            -H "$HOST_URI" \
            </dev/null >>"$LOGFILE" 2>&1
    ) &
    pid=$!
    for ((i = 0; i < PING_TIMEOUT_S * 10; i++)); do
        if ping_ok; then
            printf 'DOCKER_HOST=%s\n' "$HOST_URI" >"$ENVFILE"
            echo "$HOST_URI"
            return 0
        fi
        if proc_dead "$pid"; then
            log "dockerd exited during startup"
            break
        fi
        sleep 0.1
    done
    echo "test-engine: dockerd did not come up (no OK from /_ping within ${PING_TIMEOUT_S}s or it exited); last 30 lines of $LOGFILE:" >&2
    tail -n 30 "$LOGFILE" >&2 || true
    if cmdline_has "$pid" "$SOCK" && [[ ! -s $PIDFILE ]]; then echo "$pid" >"$PIDFILE"; fi
    do_stop
    exit 1
}

do_status() {
    if running; then
        echo "$HOST_URI"
        return 0
    fi
    return 1
}

case $CMD in
    start)
        mkdir -p "$STATE"
        exec 9>"$STATE/.lock"
        flock 9
        do_start
        ;;
    stop)
        if [[ -d $STATE ]]; then
            exec 9>"$STATE/.lock"
            flock 9
        fi
        do_stop
        ;;
    status) do_status ;;
    *) usage ;;
esac
