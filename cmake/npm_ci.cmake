# The tests' npm installs (crosscheck.npm: @huggingface/gguf; llm.npm: node-llama-cpp): installs package-lock.json
# into DIR/node_modules with `npm ci`, unless that lock file is already installed there (so repeated ctest runs need
# no network). NAME says which, in messages; ARGS are more `npm ci` arguments (";"-separated).
#   cmake -DNPM=/usr/bin/npm -DNODE=/usr/bin/node -DDIR=<build>/tests/crosscheck/npm -DNAME=crosscheck -P npm_ci.cmake
if(NOT NPM OR NOT NODE)
  message(FATAL_ERROR "${NAME}: node and npm are needed (scripts/bootstrap.sh test installs them); "
                      "found node='${NODE}' npm='${NPM}'. Re-run cmake once they are installed.")
endif()
set(stamp "${DIR}/node_modules/.memwarden-installed-lock.json")
if(EXISTS "${stamp}")
  execute_process(COMMAND "${CMAKE_COMMAND}" -E compare_files "${DIR}/package-lock.json" "${stamp}"
                  RESULT_VARIABLE differs)
  if(differs EQUAL 0)
    message(STATUS "${NAME}: ${DIR}/node_modules is up to date with package-lock.json")
    return()
  endif()
endif()
execute_process(COMMAND "${NPM}" ci --no-audit --no-fund --loglevel=error ${ARGS} WORKING_DIRECTORY "${DIR}"
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${NAME}: `npm ci` in ${DIR} failed (${rc}); the npm registry must be reachable")
endif()
file(COPY_FILE "${DIR}/package-lock.json" "${stamp}")
message(STATUS "${NAME}: installed package-lock.json into ${DIR}/node_modules")
