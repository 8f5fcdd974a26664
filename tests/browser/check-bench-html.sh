#!/usr/bin/env bash
# Renders a `memwarden bench` HTML report in a real browser (headless Chromium) and checks what it drew:
#
#   tests/browser/check-bench-html.sh REPORT.html OUT_DIR [CHART=SERIES...]
#   e.g. tests/browser/check-bench-html.sh report.html out throughput=2 latency=3 memory=3 vram=1 temperature=1
#
# From the DOM Chromium dumps once the page has loaded: the page's own script ran without an error (it sets
# <html data-rendered="yes"> at DOMContentLoaded, data-script-errors on window.onerror or an unhandled rejection),
# and each CHART is an <svg class="chart" data-chart="CHART" data-series="SERIES"> holding SERIES elements of
# class "series". Then a screenshot, OUT_DIR/bench-report.png, kept as an artefact: it must be a non-empty PNG.
#
# Chromium is a test package (scripts/bootstrap.sh test): without it this fails, as the node-based tests do.
# CHROMIUM names another binary. Exit: 0 passed, 1 failed (one line says why), 2 usage.
set -uo pipefail

usage() {
  echo "usage: $0 REPORT.html OUT_DIR [CHART=SERIES...]" >&2
  exit 2
}
fail() {
  echo "check-bench-html: $*" >&2
  exit 1
}

[[ $# -ge 2 ]] || usage
html=$1
out=$2
shift 2
for want in "$@"; do
  [[ $want =~ ^[a-z]+=[0-9]+$ ]] || usage
done

browser=${CHROMIUM:-chromium}
command -v "$browser" >/dev/null 2>&1 ||
  fail "$browser not found: install it (scripts/bootstrap.sh test; Debian: apt-get install chromium)"
[[ -r $html ]] || fail "$html: cannot read the report"
mkdir -p "$out" || fail "$out: cannot make the directory"
html=$(cd "$(dirname "$html")" && pwd)/$(basename "$html")
out=$(cd "$out" && pwd)

profile=$(mktemp -d "${TMPDIR:-/tmp}/memwarden-chromium.XXXXXX") || fail "mktemp failed"
trap 'rm -rf "$profile"' EXIT INT TERM

# As root (CI containers) Chromium needs --no-sandbox; /dev/shm is small in containers; no GPU here.
flags=(--headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage --user-data-dir="$profile"
  --no-first-run --no-default-browser-check --disable-extensions --hide-scrollbars)
url="file://$html"

dom="$out/bench-report.dom.html"
log="$out/chromium.log"
timeout 60 "$browser" "${flags[@]}" --dump-dom "$url" >"$dom" 2>"$log"
rc=$?
[[ $rc -eq 124 ]] && fail "chromium --dump-dom timed out after 60 s (log: $log)"
[[ $rc -eq 0 ]] || fail "chromium --dump-dom failed ($rc): $(grep -m1 -iE 'error|fatal' "$log" || tail -n1 "$log")"
[[ -s $dom ]] || fail "chromium dumped an empty DOM (log: $log)"

root=$(grep -o -m1 '<html[^>]*>' "$dom")
if [[ $root == *data-script-errors* ]]; then
  fail "the page's script failed: $(sed -E 's/.*data-script-errors="([^"]*)".*/\1/' <<<"$root")"
fi
[[ $root == *'data-rendered="yes"'* ]] || fail "the page's script did not run to DOMContentLoaded (no data-rendered=\"yes\" on <html>)"

# One line per chart: NAME DECLARED FOUND, from each <svg class="chart" ...> ... </svg>.
found=$(awk '
  BEGIN { RS = "</svg>" }
  {
    at = index($0, "<svg class=\"chart\"")
    if (at == 0) next
    body = substr($0, at)
    tag = substr(body, 1, index(body, ">"))
    name = tag; sub(/.*data-chart="/, "", name); sub(/".*/, "", name)
    declared = tag; sub(/.*data-series="/, "", declared); sub(/".*/, "", declared)
    n = gsub(/class="series"/, "", body)
    print name, declared, n
  }' "$dom")

for want in "$@"; do
  name=${want%%=*}
  series=${want#*=}
  line=$(awk -v n="$name" '$1 == n' <<<"$found")
  [[ -n $line ]] || fail "chart $name is not on the page (charts: $(awk '{printf "%s ", $1}' <<<"$found"))"
  read -r _ declared inside <<<"$line"
  [[ $declared == "$series" ]] || fail "chart $name declares data-series=$declared, expected $series"
  [[ $inside == "$series" ]] || fail "chart $name holds $inside series elements, expected $series"
done

png="$out/bench-report.png"
rm -f "$png"
timeout 60 "$browser" "${flags[@]}" --screenshot="$png" --window-size=1280,2400 "$url" >>"$log" 2>&1
rc=$?
[[ $rc -eq 124 ]] && fail "chromium --screenshot timed out after 60 s (log: $log)"
[[ $rc -eq 0 ]] || fail "chromium --screenshot failed ($rc) (log: $log)"
[[ -s $png ]] || fail "no screenshot at $png (log: $log)"
[[ $(od -An -tx1 -N8 "$png" | tr -d ' \n') == 89504e470d0a1a0a ]] || fail "$png is not a PNG"

echo "check-bench-html: ok: charts $(awk '{printf "%s%s=%s", (NR > 1 ? " " : ""), $1, $3}' <<<"$found"); the script ran without errors"
echo "check-bench-html: screenshot: $png"
