#!/usr/bin/env bash
# Builds the test model server's image from what this machine has, without a registry: node and the shared
# libraries it and llama.cpp's prebuilt binaries need, the installed node_modules and server.mjs, imported as one
# layer. The models are not in the image: bind-mount a directory of GGUF files at /models.
#   tests/llm/build-image.sh DOCKER_HOST APP_DIR TAG
# APP_DIR holds server.mjs, package.json and node_modules (npm ci done). The container runs
#   node /app/server.mjs --models-dir /models [server options...]
set -euo pipefail
[[ $# -eq 3 ]] || { echo "usage: $0 DOCKER_HOST APP_DIR TAG" >&2; exit 2; }
docker_host=$1 app=$2 tag=$3
node=$(command -v node) || { echo "build-image: node is not installed (scripts/bootstrap.sh test)" >&2; exit 1; }
node=$(readlink -f "$node")
[[ -f "$app/server.mjs" && -d "$app/node_modules/node-llama-cpp" ]] ||
  { echo "build-image: $app has no server.mjs or node_modules/node-llama-cpp (run npm ci there)" >&2; exit 1; }
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/usr/bin" "$stage/app" "$stage/models" "$stage/tmp" "$stage/etc"
chmod 1777 "$stage/tmp"
cp "$node" "$stage/usr/bin/node"
cp -r "$app/server.mjs" "$app/package.json" "$app/node_modules" "$stage/app/"
# Every shared library that node or a prebuilt llama.cpp binary loads, at the path the loader finds it.
bins=("$node" "$app"/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/*.so
      "$app"/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/*.node)
ldd "${bins[@]}" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// && $1 !~ /:$/ {print $1}' | sort -u |
  while read -r lib; do
    [[ $lib == "$app"/* ]] && continue
    mkdir -p "$stage$(dirname "$lib")"
    cp -L "$lib" "$stage$lib"
  done
echo "memwarden:x:1000:1000::/tmp:/bin/false" > "$stage/etc/passwd"
tar -C "$stage" -c . | docker -H "$docker_host" import \
  --change 'ENTRYPOINT ["/usr/bin/node", "/app/server.mjs"]' --change 'CMD ["--models-dir", "/models"]' \
  --change 'ENV HOME=/tmp' - "$tag" >/dev/null
echo "build-image: $tag ($(du -sh "$stage" | cut -f1))"
