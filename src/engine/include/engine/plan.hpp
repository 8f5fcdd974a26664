// `memwarden plan MODEL...`: finds each model (a GGUF file, the Ollama model store, a running
// server's /api/show, or the built-in catalog), reads what the host has (RAM, NVML, free disk; or the
// hypothetical --ram/--vram), and plans with core/plan.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "core/plan.hpp"
#include "engine/defaults.hpp"
#include "probes/host_root.hpp"

namespace mw::engine {

enum class ModelSource { automatic, file, store, server, catalog };
[[nodiscard]] std::optional<ModelSource> parse_model_source(std::string_view text);

struct PlanOptions {
  probes::HostRoot root;
  std::vector<std::string> models;
  // num_ctx, parallel and kv_type given on the command line win; those left unset come from the one
  // Ollama container found (its OLLAMA_CONTEXT_LENGTH, OLLAMA_NUM_PARALLEL, OLLAMA_KV_CACHE_TYPE), else
  // Ollama's defaults.
  PlanSettings settings;
  std::optional<std::uint64_t> parallel;
  std::optional<KvType> kv_type;
  std::string docker_host;  // "" leaves Docker out
  std::chrono::milliseconds docker_timeout{k_docker_timeout};
  std::optional<std::uint64_t> ram;   // hypothetical RAM: replaces MemTotal and MemAvailable
  std::optional<std::uint64_t> vram;  // hypothetical GPU of this size, all free (0: no GPU)
  std::uint64_t reserve = 4ULL << 30;
  ModelSource source = ModelSource::automatic;
  std::string models_dir;     // --models-dir: the store to search first
  std::string mmproj;         // --mmproj: the vision projector of the GGUF files given (else one beside them)
  std::string ollama_models;  // $OLLAMA_MODELS as memwarden was started with
  std::string home;           // $HOME
  std::string ollama_url;     // --ollama: a running server to ask (/api/show, /api/tags)
  std::chrono::milliseconds api_timeout{5000};
  std::string nvml_library;
};

// An Ollama container found through Docker: where its store is on the host, how it is configured, and
// its memory limit now.
struct PlanServer {
  std::string name;
  std::optional<std::string> store;           // the host path of its models directory, through its mounts
  std::optional<std::uint64_t> memory_limit;  // nullopt: none
  std::optional<std::string> api_url;
  ServerSettings settings;
};

struct PlanResult {
  HostBudget host;
  std::vector<std::string> host_notes;   // where each figure came from, and what could not be read
  std::optional<std::string> disk_path;  // where the free disk was measured
  std::vector<PlanServer> servers;       // Ollama containers found through Docker
  std::vector<PlanModel> models;         // the ones found and sized, in the order given
  std::vector<ModelPlan> plans;          // one per entry of models
  std::vector<Error> errors;             // models that could not be found or sized
  std::optional<TogetherPlan> together;  // for two or more models
};

[[nodiscard]] PlanResult collect_plan(const PlanOptions& options);

// Documented exit codes (docs/plan.md).
enum class PlanExit : int {
  fits = 0,     // every model was sized and fits (on the GPU, split or on the CPU)
  usage = 2,    // bad command line
  partial = 3,  // a model could not be found or sized
  no_fit = 4,   // every model was sized, and one does not fit
};
[[nodiscard]] PlanExit plan_exit_code(const PlanResult& result);

// The plan of the model given as `name`, or nullptr; and when there is none, the first error that names it
// (one line), or nullopt.
[[nodiscard]] const ModelPlan* plan_named(const PlanResult& result, std::string_view name);
[[nodiscard]] std::optional<std::string> error_naming(const PlanResult& result, std::string_view name);

}  // namespace mw::engine
