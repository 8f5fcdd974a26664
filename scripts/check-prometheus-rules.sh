#!/bin/sh
# Checks a memwarden Prometheus rule file with promtool: syntax (check rules) and
# behaviour (test rules, against tests/fixtures/prometheus/rules_test.yml).
#
#   scripts/check-prometheus-rules.sh RULES_FILE
#   scripts/check-prometheus-rules.sh --memwarden MEMWARDEN_BINARY   (runs `memwarden export prometheus-rules`)
#
# Exit: 0 passed, 1 failed, 2 usage, 77 skipped (no promtool).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
tests="$here/../tests/fixtures/prometheus/rules_test.yml"

usage() {
  echo "usage: $0 RULES_FILE | --memwarden MEMWARDEN_BINARY" >&2
  exit 2
}

[ $# -ge 1 ] || usage
if ! command -v promtool >/dev/null 2>&1; then
  echo "promtool not found: skipping" >&2
  exit 77
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/memwarden-rules.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

case $1 in
  --memwarden)
    [ $# -eq 2 ] || usage
    if ! "$2" export prometheus-rules >"$work/memwarden-rules.yml"; then
      echo "$2 export prometheus-rules failed" >&2
      exit 1
    fi
    ;;
  -*) usage ;;
  *)
    [ $# -eq 1 ] || usage
    if [ ! -r "$1" ]; then
      echo "$1: cannot read the rule file" >&2
      exit 1
    fi
    cp "$1" "$work/memwarden-rules.yml"
    ;;
esac
cp "$tests" "$work/rules_test.yml"

cd "$work"
promtool check rules memwarden-rules.yml || exit 1
promtool test rules rules_test.yml || exit 1
