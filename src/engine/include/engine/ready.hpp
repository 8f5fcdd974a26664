// Waiting for a container that was just started to be ready: its HTTP API answers, or it keeps running.
// Used by deploy (the new server's API) and recreate.
#pragma once

#include <chrono>
#include <string>

#include "adapters/docker.hpp"
#include "core/error.hpp"

namespace mw::engine {

// Polls GET url+path (a 2 s time-out each, every 250 ms) until it answers 200, the container stops running
// (an error saying its state and exit code), or `limit` passes (an error with the last answer). Errors name url.
[[nodiscard]] Expected<void, Error> wait_for_http(adapters::DockerClient& docker, const std::string& container_id,
                                                  const std::string& url, const std::string& path,
                                                  std::chrono::milliseconds limit);

// Ready once running: after `settle` the container still runs and has not been restarted by its restart
// policy (an error saying its state, exit code and restarts otherwise).
[[nodiscard]] Expected<void, Error> wait_still_running(adapters::DockerClient& docker, const std::string& container_id,
                                                       std::chrono::milliseconds settle);

}  // namespace mw::engine
