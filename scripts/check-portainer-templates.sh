#!/bin/sh
# Checks a Portainer App Templates file against the v3 rules: the JSON schema in
# tests/fixtures/portainer/templates-v3.schema.json (python3-jsonschema), then that the ids are unique.
#
#   scripts/check-portainer-templates.sh TEMPLATES_FILE
#   scripts/check-portainer-templates.sh --generator PROGRAM
#       runs PROGRAM (it prints a templates file), checks its output, then checks that copies of it broken
#       on purpose (a duplicate id, a string id, version "2", a stack without its repository) are refused,
#       so that the check itself is known to fail when it should.
#
# Exit: 0 passed, 1 failed, 2 usage, 77 skipped (no python3-jsonschema).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
schema="$here/../tests/fixtures/portainer/templates-v3.schema.json"

usage() {
  echo "usage: $0 TEMPLATES_FILE | --generator PROGRAM" >&2
  exit 2
}

[ $# -ge 1 ] || usage
if ! python3 -c 'import jsonschema' >/dev/null 2>&1; then
  echo "python3-jsonschema not found: skipping" >&2
  exit 77
fi

# check FILE: 0 valid, 1 not (the reasons on stderr)
check() {
  python3 - "$schema" "$1" <<'PY'
import json
import sys

import jsonschema

schema_path, path = sys.argv[1], sys.argv[2]
with open(schema_path, encoding="utf-8") as f:
    schema = json.load(f)
try:
    with open(path, encoding="utf-8") as f:
        document = json.load(f)
except (OSError, ValueError) as e:
    print(f"{path}: not a JSON file: {e}", file=sys.stderr)
    sys.exit(1)

problems = []
validator = jsonschema.Draft7Validator(schema)
for error in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path)):
    where = "/".join(str(p) for p in error.absolute_path) or "(top)"
    problems.append(f"{where}: {error.message}")

templates = document.get("templates") if isinstance(document, dict) else None
if isinstance(templates, list):
    seen = {}
    for index, template in enumerate(templates):
        if not isinstance(template, dict):
            continue
        template_id = template.get("id")
        if isinstance(template_id, int) and not isinstance(template_id, bool):
            if template_id in seen:
                problems.append(f"templates/{index}: id {template_id} is already the id of templates/{seen[template_id]}")
            else:
                seen[template_id] = index

for problem in problems:
    print(f"{path}: {problem}", file=sys.stderr)
if problems:
    sys.exit(1)
count = len(templates) if isinstance(templates, list) else 0
print(f"{path}: {count} templates, valid v3")
PY
}

case $1 in
  --generator)
    [ $# -eq 2 ] || usage
    work=$(mktemp -d "${TMPDIR:-/tmp}/memwarden-templates.XXXXXX")
    trap 'rm -rf "$work"' EXIT INT TERM
    if ! "$2" >"$work/templates.json"; then
      echo "$2 failed" >&2
      exit 1
    fi
    check "$work/templates.json" || exit 1
    # Broken copies: each must be refused.
    for breakage in duplicate-id string-id version-2 no-repository; do
      python3 - "$work/templates.json" "$work/$breakage.json" "$breakage" <<'PY'
import json
import sys

source, target, breakage = sys.argv[1:4]
with open(source, encoding="utf-8") as f:
    document = json.load(f)
templates = document["templates"]
if not templates:
    sys.exit("the generator printed no templates: nothing to break")
if breakage == "duplicate-id":
    templates.append(dict(templates[0]))
elif breakage == "string-id":
    templates[0]["id"] = str(templates[0]["id"])
elif breakage == "version-2":
    document["version"] = "2"
elif breakage == "no-repository":
    del templates[0]["repository"]
with open(target, "w", encoding="utf-8") as f:
    json.dump(document, f)
PY
      if check "$work/$breakage.json" 2>"$work/$breakage.err" >/dev/null; then
        echo "self-check: a copy with $breakage was accepted" >&2
        exit 1
      fi
      echo "self-check: $breakage refused ($(head -n 1 "$work/$breakage.err"))"
    done
    ;;
  -*) usage ;;
  *)
    [ $# -eq 1 ] || usage
    if [ ! -r "$1" ]; then
      echo "$1: cannot read the templates file" >&2
      exit 1
    fi
    check "$1" || exit 1
    ;;
esac
