#!/usr/bin/env bash
# Installs what memwarden needs from Debian 12's packages. Idempotent: only
# missing packages are installed, and apt's lists are refreshed only then.
#   scripts/bootstrap.sh build   # compiler, CMake and the libraries
#   scripts/bootstrap.sh test    # build + what the tests need (Docker engine, busybox-static, GoogleTest,
#                                #   clang and libFuzzer for scripts/fuzz.sh, ...)
set -euo pipefail

mode=${1:-build}
build_packages=(
  g++ cmake ninja-build pkg-config
  libfmt-dev nlohmann-json3-dev libcli11-dev libcurl4-openssl-dev libsqlite3-dev libyaml-cpp-dev
)
test_packages=(
  libgtest-dev libgmock-dev libbenchmark-dev clang-format clang libclang-rt-14-dev
  docker.io busybox-static curl binutils util-linux procps prometheus prometheus-node-exporter
  nodejs  # tests/crosscheck runs @huggingface/gguf with node
  python3-jsonschema docker-compose  # scripts/check-portainer-templates.sh; docker-compose 1.29 reads the exported Compose file
  chromium  # tests/browser/check-bench-html.sh renders the bench HTML report headless (browser.bench_html)
)
# ... and installs it with npm; NodeSource's nodejs package bundles npm (and conflicts with Debian's npm package).
command -v npm >/dev/null 2>&1 || test_packages+=(npm)
case "$mode" in
  build) wanted=("${build_packages[@]}") ;;
  test) wanted=("${build_packages[@]}" "${test_packages[@]}") ;;
  *) echo "usage: $0 build|test" >&2; exit 2 ;;
esac

missing=()
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "bootstrap: all ${#wanted[@]} packages present"
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "bootstrap: missing packages: ${missing[*]}; run as root (or install them) first" >&2
  exit 1
fi
echo "bootstrap: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# docker.io's postinst tries to start the system daemon; the tests start their own.
apt-get install -y -qq --no-install-recommends "${missing[@]}"
