#!/usr/bin/env bash
# The ctest fixture for integration tests: a private Docker engine with the test image.
#   scripts/integration-fixture.sh setup STATE_DIR MEMHOG_BINARY OLLAMA_SIM_BINARY
#   scripts/integration-fixture.sh teardown STATE_DIR
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
case "${1:-}" in
  setup)
    [[ $# -eq 4 ]] || { echo "usage: $0 setup STATE_DIR MEMHOG_BINARY OLLAMA_SIM_BINARY" >&2; exit 2; }
    "$here/test-engine.sh" start "$2" >/dev/null
    # shellcheck disable=SC1091
    source "$2/env"
    "$here/build-test-image.sh" "$DOCKER_HOST" "$3" memwarden-test/hog:latest "$4"
    # The same image under a name that says "ollama", for discovery by image name.
    docker -H "$DOCKER_HOST" tag memwarden-test/hog:latest memwarden-test/ollama-sim:latest
    ;;
  teardown)
    [[ $# -eq 2 ]] || { echo "usage: $0 teardown STATE_DIR" >&2; exit 2; }
    "$here/test-engine.sh" stop "$2"
    ;;
  *)
    echo "usage: $0 setup|teardown STATE_DIR [MEMHOG_BINARY OLLAMA_SIM_BINARY]" >&2
    exit 2
    ;;
esac
