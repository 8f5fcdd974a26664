// The limit an inference server's container should have, from the plan of the models it serves (issue 16):
// `optimize` sets it, and `diagnose`, `status` and serve's drift check advise it, all through this one
// function so that the three never disagree. Every model is planned at the container's own context, slots
// and KV type (its OLLAMA_* environment), against what the host can give the container and keep its reserve.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/container.hpp"
#include "core/optimize.hpp"
#include "core/profile.hpp"
#include "probes/host_root.hpp"

namespace mw::engine {

// The most installed models a server is planned for (each costs one /api/show).
inline constexpr std::size_t k_max_planned_models = 32;

struct ServerLimitOptions {
  probes::HostRoot root;                // for NVML and the host's own figures
  std::uint64_t cap = 0;                // the most the host can give this container and keep its reserve
  std::uint64_t reserve = 4ULL << 30;   // the host's reserve
  std::vector<std::string> for_models;  // --for: these models instead of the installed ones
  std::vector<Profile> profiles;        // to read a deployed container's profile (label memwarden.profile)
  std::chrono::milliseconds api_timeout{std::chrono::seconds(5)};
  std::string nvml_library;
  std::optional<std::uint64_t> vram;              // hypothetical GPU (tests, --vram)
  std::size_t max_models = k_max_planned_models;  // the largest on disk first
};

struct ServerLimitPlan {
  std::string basis;  // "installed models", "profile large-33b", "--for"
  std::vector<ServedModel> models;
  ServerBasis limit;                  // the wanted limit, the model that sets it, and why
  std::vector<std::string> problems;  // what could not be read: /api/tags, a model's /api/show
  std::vector<std::string> notes;     // what was left out on purpose (models past k_max_planned_models)
  std::uint64_t headroom_percent = PlanSettings{}.headroom_percent;
};

// The models: --for when given, else the server's installed models (/api/tags, newest first, at most
// k_max_planned_models), else the profile's models when the container was deployed from one.
[[nodiscard]] ServerLimitPlan plan_server_limit(const ContainerMeta& container, const ServerLimitOptions& options);

}  // namespace mw::engine
