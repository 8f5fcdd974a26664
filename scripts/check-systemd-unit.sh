#!/usr/bin/env bash
# Verifies packaging/memwarden.service with systemd-analyze, pointing it at a built binary.
#   scripts/check-systemd-unit.sh MEMWARDEN_BINARY
# Exit 77 (skip) when systemd-analyze is not installed.
set -euo pipefail
[[ $# -eq 1 ]] || { echo "usage: $0 MEMWARDEN_BINARY" >&2; exit 2; }
command -v systemd-analyze >/dev/null || { echo "systemd-analyze not installed: skipped" >&2; exit 77; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=$(realpath -- "$1")
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sed "s|/usr/local/bin/memwarden|$bin|g" "$here/packaging/memwarden.service" >"$dir/memwarden.service"
out=$(systemd-analyze verify "$dir/memwarden.service" 2>&1) || { echo "$out" >&2; exit 1; }
# verify prints warnings without failing; any line about our unit is a defect
if grep -q "memwarden.service" <<<"$out"; then
    echo "$out" >&2
    exit 1
fi
echo "packaging/memwarden.service: ok"
