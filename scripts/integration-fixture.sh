#!/usr/bin/env bash
# The ctest fixture for integration tests: a private Docker engine with the test image.
#   scripts/integration-fixture.sh setup STATE_DIR MEMHOG_BINARY OLLAMA_SIM_BINARY [LLM_APP_DIR]
# LLM_APP_DIR (tests/llm installed with npm ci) also makes the real model server's image, memwarden-test/llm.
#   scripts/integration-fixture.sh teardown STATE_DIR
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
case "${1:-}" in
  setup)
    [[ $# -eq 4 || $# -eq 5 ]] ||
      { echo "usage: $0 setup STATE_DIR MEMHOG_BINARY OLLAMA_SIM_BINARY [LLM_APP_DIR]" >&2; exit 2; }
    "$here/test-engine.sh" start "$2" >/dev/null
    # shellcheck disable=SC1091
    source "$2/env"
    "$here/build-test-image.sh" "$DOCKER_HOST" "$3" memwarden-test/hog:latest "$4"
    # The same image under a name that says "ollama", for discovery by image name.
    docker -H "$DOCKER_HOST" tag memwarden-test/hog:latest memwarden-test/ollama-sim:latest
    # For `memwarden deploy`: the simulator under the names of the images the built-in profiles run, started the
    # way the official image starts Ollama (ENTRYPOINT /bin/ollama, CMD serve), with `ollama list` for the health
    # check.
    docker -H "$DOCKER_HOST" rm -f mw-deploy-image-src >/dev/null 2>&1 || true
    docker -H "$DOCKER_HOST" run --name mw-deploy-image-src --network none memwarden-test/hog:latest \
        sh -c 'ln -sf ollama-sim /bin/ollama'
    docker -H "$DOCKER_HOST" commit --change 'ENTRYPOINT ["/bin/ollama"]' --change 'CMD ["serve"]' \
        mw-deploy-image-src ollama/ollama:latest >/dev/null
    # An image that runs but never serves, for a re-deploy that must roll back.
    docker -H "$DOCKER_HOST" commit --change 'ENTRYPOINT ["/bin/sleep"]' --change 'CMD ["3600"]' \
        mw-deploy-image-src memwarden-test/mute:latest >/dev/null
    # One that knows llama3.1:8b (holding 300 MiB once loaded), for deploy --load.
    docker -H "$DOCKER_HOST" commit --change 'ENTRYPOINT ["/bin/ollama"]' \
        --change 'CMD ["serve", "--model", "llama3.1:8b=300"]' mw-deploy-image-src memwarden-test/ollama-loaded:latest \
        >/dev/null
    docker -H "$DOCKER_HOST" rm mw-deploy-image-src >/dev/null
    docker -H "$DOCKER_HOST" tag ollama/ollama:latest localai/localai:latest-gpu-nvidia-cuda-12
    # The real model server (tests/llm): node, llama.cpp's prebuilt binaries and server.mjs (npm ci done in $5).
    if [[ $# -eq 5 ]]; then
      "$here/../tests/llm/build-image.sh" "$DOCKER_HOST" "$5" memwarden-test/llm:latest
    fi
    ;;
  teardown)
    [[ $# -eq 2 ]] || { echo "usage: $0 teardown STATE_DIR" >&2; exit 2; }
    "$here/test-engine.sh" stop "$2"
    ;;
  *)
    echo "usage: $0 setup|teardown STATE_DIR [MEMHOG_BINARY OLLAMA_SIM_BINARY [LLM_APP_DIR]]" >&2
    exit 2
    ;;
esac
