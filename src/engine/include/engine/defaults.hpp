// Defaults that several commands' option structs share, each written once here.
#pragma once

#include <chrono>

namespace mw::engine {

// One call to the Docker Engine API.
inline constexpr std::chrono::milliseconds k_docker_timeout{2000};
// One call to an inference server's API while sampling (/api/ps, /api/tags, /api/version).
inline constexpr std::chrono::milliseconds k_api_timeout{2000};

}  // namespace mw::engine
