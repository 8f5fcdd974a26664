#!/usr/bin/env bash
# Build the memwarden test image without any registry access:
#
#   scripts/build-test-image.sh DOCKER_HOST MEMHOG_BINARY [TAG]
#
# DOCKER_HOST is e.g. unix:///tmp/mwe-1234abcd/docker.sock (a leading
# "DOCKER_HOST=" as found in test-engine.sh's env file is accepted too).
# TAG defaults to memwarden-test/hog:latest; further static binaries are
# installed into /bin under their own names. The image is made with
# `docker import` from a tarball holding:
#   /bin/busybox (static, from busybox-static), /bin/{sh,sleep,cat} -> busybox,
#   /bin/memhog (MEMHOG_BINARY, must be statically linked), /tmp (1777).
# Idempotent: the tarball is deterministic and its sha256 is stored in the
# image label memwarden.content; if TAG already carries it nothing is done,
# otherwise the image is re-imported and the superseded untagged one removed.
set -euo pipefail

die() { echo "build-test-image: $*" >&2; exit 1; }

ensure_pkg() { # ensure_pkg PACKAGE COMMAND-OR-FILE
    dpkg -s "$1" >/dev/null 2>&1 && return 0
    command -v "$2" >/dev/null 2>&1 && return 0
    [[ $(id -u) -eq 0 ]] || die "'$2' missing and not root; install package $1"
    echo "build-test-image: installing $1" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >&2
}

# is_static FILE: ELF executable without a program interpreter.
is_static() {
    local hdr
    hdr=$(LC_ALL=C readelf -lW "$1" 2>/dev/null) || return 1
    [[ $hdr == *"Program Headers"* ]] || return 1
    [[ $hdr != *INTERP* ]]
}

if [[ $# -lt 2 ]]; then
    echo "usage: $0 DOCKER_HOST MEMHOG_BINARY [TAG [EXTRA_STATIC_BINARY...]]" >&2
    exit 2
fi
HOST=${1#DOCKER_HOST=}
MEMHOG=$2
TAG=${3:-memwarden-test/hog:latest}
EXTRA=("${@:4}")
BUSYBOX=/bin/busybox

[[ -n $HOST ]] || die "empty DOCKER_HOST"
[[ -f $MEMHOG ]] || die "memhog binary '$MEMHOG' not found"

# busybox-static conflicts with (replaces) the dynamic busybox package.
if ! dpkg -s busybox-static >/dev/null 2>&1; then
    [[ $(id -u) -eq 0 ]] || die "package busybox-static is not installed"
    echo "build-test-image: installing busybox-static" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >&2
fi
ensure_pkg docker.io docker
ensure_pkg binutils readelf

is_static "$MEMHOG" ||
    die "'$MEMHOG' is not a statically linked ELF executable (has a PT_INTERP or is not ELF); build it with gcc -static"
for extra in "${EXTRA[@]}"; do
    [[ -f $extra ]] || die "binary '$extra' not found"
    is_static "$extra" || die "'$extra' is not a statically linked ELF executable"
done
[[ -f $BUSYBOX ]] || die "$BUSYBOX missing (package busybox-static)"
is_static "$BUSYBOX" || die "$BUSYBOX is not statically linked; install busybox-static"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/mw-image.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

ROOT=$TMP/rootfs
mkdir -p "$ROOT/bin" "$ROOT/tmp"
chmod 0755 "$ROOT" "$ROOT/bin"
chmod 1777 "$ROOT/tmp"
install -m 0755 "$BUSYBOX" "$ROOT/bin/busybox"
install -m 0755 "$MEMHOG" "$ROOT/bin/memhog"
for extra in "${EXTRA[@]}"; do
    install -m 0755 "$extra" "$ROOT/bin/$(basename "$extra")"
done
for l in sh sleep cat; do
    ln -s busybox "$ROOT/bin/$l"
done
touch -h -d @0 "$ROOT" "$ROOT"/bin "$ROOT"/tmp "$ROOT"/bin/*
tar -C "$ROOT" --sort=name --mtime=@0 --numeric-owner --owner=0 --group=0 \
    -cf "$TMP/rootfs.tar" .
sum=$(sha256sum "$TMP/rootfs.tar" | cut -c1-64)

export DOCKER_HOST=$HOST
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 ||
    die "no Docker engine answers at $HOST"
old=$(docker image inspect --format '{{.Id}}' "$TAG" 2>/dev/null || true)
if [[ -n $old ]]; then
    have=$(docker image inspect --format '{{index .Config.Labels "memwarden.content"}}' "$TAG" 2>/dev/null || true)
    if [[ $have == "$sum" ]]; then
        echo "build-test-image: $TAG is up to date ($old)" >&2
        echo "$TAG"
        exit 0
    fi
fi
id=$(docker import --message "memwarden test image" \
    --change "LABEL memwarden.content=$sum" \
    "$TMP/rootfs.tar" "$TAG") || die "docker import into $HOST failed"
if [[ -n $old && $old != "$id" ]]; then
    # Drop the superseded image unless something still uses/tags it.
    docker image rm "$old" >/dev/null 2>&1 || true
fi
echo "build-test-image: imported $TAG ($id)" >&2
echo "$TAG"
