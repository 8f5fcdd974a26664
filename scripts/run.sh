#!/usr/bin/env bash
# Quick start, part one: install what is needed, build memwarden, and run it on
# this host. With no arguments it runs `memwarden status`; otherwise it passes
# the arguments on (e.g. scripts/run.sh status --json).
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$top/scripts/bootstrap.sh" build >&2
cmake --preset release -S "$top" >/dev/null
cmake --build "$top/build/release" --target memwarden >&2
if [[ $# -eq 0 ]]; then
  set -- status
fi
exec "$top/build/release/src/cli/memwarden" "$@"
