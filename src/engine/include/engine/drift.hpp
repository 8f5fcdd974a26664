// Limit advice for `diagnose`, `status` and serve (issue 16): the limit `memwarden optimize` would set, through
// plan_server_limit and core/drift.hpp, so that the three never disagree. Only containers without a limit are
// planned for diagnose and status (the plan asks each server's API for /api/tags and /api/show); serve's drift
// check (optimize.auto) plans every server container, at most every optimize.interval.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/drift.hpp"
#include "core/profile.hpp"
#include "core/status.hpp"
#include "engine/inventory.hpp"
#include "engine/limit_advice.hpp"
#include "engine/sampler.hpp"
#include "probes/host_root.hpp"

namespace mw::engine {

using PlanServerLimit = std::function<ServerLimitPlan(const ContainerMeta&, const ServerLimitOptions&)>;

struct LimitAdviceOptions {
  probes::HostRoot root;
  std::uint64_t reserve = 4ULL << 30;
  std::chrono::milliseconds api_timeout{k_api_timeout};
  std::vector<Profile> profiles;  // empty: the built-in ones
  std::string nvml_library;
  PlanServerLimit plan;  // empty: plan_server_limit
  // The most installed models planned per server, the largest on disk first (each is one /api/show): serve's drift
  // check plans within a round, so it keeps this small; the largest sets the limit.
  std::size_t max_models = k_max_planned_models;
};

// The limit optimize would set on the server `container` (running, no limit), whose memory now is `memory`,
// with `cap` from host_server_cap.
[[nodiscard]] LimitAdvice advise_container(const ContainerMeta& container, const std::optional<CgroupMemory>& memory,
                                           std::uint64_t cap, const LimitAdviceOptions& options);

// The plan of one server container, for the drift check (its cap filled in).
[[nodiscard]] ServerLimitPlan plan_container(const ContainerMeta& container, std::uint64_t cap,
                                             const LimitAdviceOptions& options);

// status: fills advised_limit and advised_basis of every running container without a limit in `report` (its
// host's MemTotal gives the cap): inference servers from their plan, the others with peak_basis.
void advise_unlimited(StatusReport& report, const LimitAdviceOptions& options);

// diagnose: plans each container server of `sampler` that has no limit (from `inventory`, the one the sampler
// was discovered from) and gives it its planned limit. Reads MemTotal and the other containers' memory only when
// there is such a server. What cannot be read goes to `problems`.
void plan_unlimited_servers(Sampler& sampler, const Inventory& inventory, const LimitAdviceOptions& options,
                            std::vector<Error>& problems);

}  // namespace mw::engine
