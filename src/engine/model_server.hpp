// The server a model is loaded on and how a load is measured: shared by `test model` and `bench`. Internal to
// the engine.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/cgroup_memory.hpp"
#include "core/error.hpp"
#include "core/ollama.hpp"
#include "engine/model_test.hpp"
#include "probes/cgroup.hpp"

namespace mw::engine {

// Where the server's container keeps its memory, to read it again and again during a load.
struct MemoryWatch {
  std::optional<probes::CgroupLayout> layout;
  std::optional<probes::CgroupLocation> location;

  [[nodiscard]] std::optional<CgroupMemory> read() const {
    if (!layout || !location) {
      return std::nullopt;
    }
    std::vector<Error> problems;
    auto memory = probes::read_cgroup_memory(*layout, *location, problems);
    if (!memory) {
      return std::nullopt;
    }
    return std::move(*memory);
  }
  [[nodiscard]] ContainerMemoryNow now() const {
    ContainerMemoryNow m;
    if (const auto memory = read()) {
      m.anon = memory->anon;
      m.file = memory->file;
      m.mapped = memory->file_mapped;
    }
    return m;
  }
};

// The server to load on: a URL, a container's name, or the one inference server running.
struct FoundServer {
  std::optional<ServerTarget> target;
  bool discovered = false;  // an inference server by its image or label: the plan asks it in its own turn
  MemoryWatch watch;
  std::vector<std::string> notes;
};

// The server to load on: a URL, a container's name, or the one inference server running.
[[nodiscard]] Expected<FoundServer, Error> find_server(const ModelTestOptions& o);

// The entry of `models` that names `wanted` (the same name, or the same model ignoring case and a :latest tag).
[[nodiscard]] const OllamaModel* listed(const std::vector<OllamaModel>& models, const std::string& wanted);

// Whether what is free now holds the plan (ram_fits, vram_fits, disk_fits).
void fill_fit(ModelTestRun& run, const HostBudget& host);

// Loads `model` timed and measures it against the plan; then, by o.after_load: unloads it and checks the memory
// came back (unload), leaves it to the server's keep_alive (keep), or leaves it loaded for the caller, who calls
// unload_and_check (hand_over).
[[nodiscard]] LoadMeasurement measure_load(const ModelTestOptions& o, const FoundServer& server, const ModelPlan& plan,
                                           const std::string& model, const std::vector<OllamaModel>& loaded_before);
// Unloads `model`, waits until /api/ps no longer lists it (o.unload_wait) and fills m.after and m.unload (or
// m.unload_error).
void unload_and_check(const ModelTestOptions& o, const FoundServer& server, const std::string& model,
                      LoadMeasurement& m);

// /api/ps of the server now; nullopt when it cannot be read.
[[nodiscard]] std::optional<std::vector<OllamaModel>> ps_now(const FoundServer& server);

// Why the model must not be loaded now (nullopt: it may).
[[nodiscard]] std::optional<std::string> refuse_load(const ModelTestOptions& o, const FoundServer& server,
                                                     ModelTestRun& run, const std::vector<OllamaModel>& loaded_before,
                                                     const std::optional<std::string>& stop_loading);

}  // namespace mw::engine
