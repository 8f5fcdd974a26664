// `memwarden export compose` and `export portainer-templates` (issue 13): the deployment specs, decided once
// from the profiles and the plan, written as a Docker Compose file and as Portainer v3 App Templates whose
// stacks are those Compose files. Pure: text in, text out; the commands decide where it goes.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/deploy.hpp"

namespace mw::cli {

// How the values a person may want to change (the memory limit, the host port, the context, the slots,
// the keep-alive) are written: as planned, or as `${MEMWARDEN_...:-planned}` interpolations that a
// Portainer stack's environment (or a shell, or an .env file) can override.
enum class ComposeValues { plain, tunable };

// Whether the engine that runs the file has the NVIDIA runtime: without it a GPU reservation makes the
// container fail to start ("could not select device driver \"nvidia\""), so none is written.
enum class GpuRuntime { nvidia, absent };

struct ComposeOptions {
  ComposeValues values = ComposeValues::plain;
  GpuRuntime gpu_runtime = GpuRuntime::nvidia;
};

// One variable a tunable Compose file reads, as a Portainer template's `env` entry describes it.
struct StackVariable {
  std::string name;           // "MEMWARDEN_MEM_LIMIT"
  std::string label;          // "Memory limit"
  std::string description;    // what it changes
  std::string default_value;  // the planned value, the same text as the interpolation's default
};

// The variables compose_file({spec}, {.values = ComposeValues::tunable}) reads, in the order they appear:
// MEMWARDEN_MEM_LIMIT (bytes), MEMWARDEN_PORT (bridge network only) and, for each of OLLAMA_CONTEXT_LENGTH,
// OLLAMA_NUM_PARALLEL and OLLAMA_KEEP_ALIVE that spec.env sets to a value of letters, digits and `.+-_`,
// MEMWARDEN_CONTEXT_LENGTH, MEMWARDEN_NUM_PARALLEL, MEMWARDEN_KEEP_ALIVE. A file with several specs
// suffixes each variable with the service's name (MEMWARDEN_MEM_LIMIT_OLLAMA_LARGE), so that they differ.
[[nodiscard]] std::vector<StackVariable> stack_variables(const DeploySpec& spec);

// A Compose file (the Compose Specification, no `version:`; docker-compose 1.29.2 and Compose v2 both read
// it) with one service per spec, named after spec.name: image, mem_limit = memswap_limit = the planned
// limit in bytes, the GPU reservation, the store volume (reused by its exact name), the published port or
// the host network, the environment, the labels, the health check, restart unless-stopped. Every string
// from the spec is double-quoted and its `$` doubled, so no value can add a key or be interpolated.
[[nodiscard]] std::string compose_file(std::span<const DeploySpec> specs, const ComposeOptions& options);

// A Compose stack in a Git repository: the spec its file was written from (one spec, tunable values) and
// the file's path in the repository; the host the plan was made for, which the description names.
struct PortainerStack {
  DeploySpec spec;
  std::string stackfile;                   // "stacks/large-33b/compose.yml"
  std::uint64_t host_ram = 0;              // the plan's RAM figure (0: not said)
  std::optional<std::uint64_t> host_vram;  // the plan's VRAM figure; nullopt for a CPU-only plan
};

// Portainer App Templates, version "3": {"version":"3","templates":[...]}, one type 3 (Compose stack)
// template per stack with ids 1..n, its repository {repo_url, stackfile} and an `env` entry per
// stack_variables(spec). Never type 1: a container template cannot carry a memory limit or a GPU.
[[nodiscard]] std::string portainer_templates(std::span<const PortainerStack> stacks, std::string_view repo_url);

}  // namespace mw::cli
