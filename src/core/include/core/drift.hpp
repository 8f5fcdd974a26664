// The limit advice of `diagnose`, `status` and `serve` (issue 16), and serve's drift check (optimize.auto):
// the same rule as `memwarden optimize` (core/optimize.hpp), so that the three never disagree. Pure: the engine
// brings the plans (engine::plan_server_limit), the cgroup readings and MemTotal.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/diagnosis.hpp"
#include "core/optimize.hpp"
#include "core/status.hpp"

namespace mw {

// What the host can give an inference server among `containers`: server_cap over the running containers that
// are not inference servers (core/discovery.hpp is_inference_server), each by its limit, or its working set when
// it has none.
[[nodiscard]] std::uint64_t host_server_cap(std::uint64_t mem_total, std::uint64_t reserve,
                                            const std::vector<ContainerSnapshot>& containers);

// The limit `memwarden optimize` sets on a server without one: decide_limit of its plan (the largest installed
// model at its own settings) against the floor of what it uses now and the cap. nullopt when there is none,
// and then `basis` says why in plain words (the API did not answer, no models, over the cap).
struct LimitAdvice {
  std::optional<std::uint64_t> limit;
  std::string basis;  // "qwen2.5:14b needs 9.25 GiB (installed models: 2 models)", or why there is no limit
};
[[nodiscard]] LimitAdvice advise_server_limit(const ServerBasis& plan, std::optional<std::uint64_t> floor,
                                              std::uint64_t cap);

// The basis status and serve give a running container that is not an inference server and has no limit:
// optimize sets one from its stored peak, and no number is invented before there is one.
[[nodiscard]] std::string peak_basis(const std::string& container);

// One running container, as serve's drift check sees it.
struct DriftSubject {
  std::string name;
  bool inference_server = false;       // a server memwarden watches: the unlimited detector covers no limit
  bool excluded = false;               // memwarden's own container, or labelled memwarden.protect=true
  std::optional<std::uint64_t> limit;  // HostConfig.Memory; nullopt: none
  std::optional<std::uint64_t> use;    // working set now
  std::optional<ServerBasis> plan;     // servers with a limit: the plan of their installed models
  std::optional<std::uint64_t> floor;  // limit_floor of its memory now
  std::uint64_t cap = 0;               // what the host can give it and keep its reserve
};

// Drift from the optimized state, as findings of Detector::drift ("optimize-drift"), warning, by subject:
//  - a running container without a memory limit that is not an inference server (those get `unlimited`),
//    not memwarden's own and not protected: `memwarden optimize --yes` (once 24 h of its history are stored);
//  - an inference server with a limit under its plan, where optimize would raise it (decide_limit: raise):
//    the model, the limit it needs and the current one, `memwarden optimize --yes`;
//  - the same where the host cannot give it more (the plan is over the cap): its settings must change.
[[nodiscard]] std::vector<Finding> detect_drift(const std::vector<DriftSubject>& subjects, Timestamp at);

}  // namespace mw
