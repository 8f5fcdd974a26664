#!/usr/bin/env bash
# Static checks run by ctest:
#   scripts/lint.sh layers   # includes point only down the layers (cli → engine → actions → adapters → probes → core)
#   scripts/lint.sh format   # sources match .clang-format (exit 77 = skipped when clang-format is absent)
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"

case "${1:-}" in
  layers)
    # layer → the layers its sources may include
    declare -A allowed=(
      [core]="core"
      [probes]="core probes"
      [adapters]="core probes adapters"
      [actions]="core probes adapters actions"
      [engine]="core probes adapters actions engine"
      [cli]="core probes adapters actions engine cli"
    )
    bad=0
    for layer in core probes adapters actions engine cli; do
      while IFS= read -r hit; do
        file=${hit%%:*}
        included=$(sed -E 's/.*#include "([a-z_]+)\/.*/\1/' <<<"${hit#*:}")
        if [[ " ${allowed[$layer]} " != *" $included "* ]]; then
          echo "$file: layer '$layer' must not include '$included/' (dependencies point down: cli → engine → actions, adapters → probes → core)"
          bad=1
        fi
      done < <(grep -rnE '^#include "[a-z_]+/' "src/$layer" | sed -E 's/^([^:]+):[0-9]+:/\1:/')
    done
    [[ $bad -eq 0 ]] && echo "layers: ok"
    exit $bad
    ;;
  format)
    command -v clang-format >/dev/null || { echo "clang-format not installed: skipped"; exit 77; }
    mapfile -t files < <(git ls-files '*.cpp' '*.hpp' '*.c' '*.h' 2>/dev/null || find src tests -name '*.[ch]pp')
    [[ ${#files[@]} -gt 0 ]] || { echo "no sources found"; exit 1; }
    clang-format --dry-run --Werror "${files[@]}"
    echo "format: ${#files[@]} files ok"
    ;;
  *)
    echo "usage: $0 layers|format" >&2
    exit 2
    ;;
esac
