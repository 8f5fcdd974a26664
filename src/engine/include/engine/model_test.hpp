// `memwarden test model NAME...`: model readiness. For each model: the plan on this host now (RAM, VRAM, disk,
// layers) and whether what is free now holds it; with --load, a real load on the server: the load time, what the
// server says it holds (/api/ps), what its container holds (anon and page cache), each against the plan with its
// error in percent; then an unload and a check that the memory came back. The measured pairs are stored in the
// history database (`memwarden test --history`).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "adapters/sample_store.hpp"
#include "core/error.hpp"
#include "core/model_test.hpp"
#include "engine/plan.hpp"

namespace mw::engine {

enum class ModelLoad { plan_only, load };
// hand_over: bench keeps the model loaded for its requests and unloads it itself.
enum class AfterLoad { unload, keep, hand_over };

struct ModelTestOptions {
  PlanOptions plan;    // the models, the settings, the host; plan.ollama_url is set to the server's
  std::string server;  // --server: a container's name or a URL; "" = the one inference server found
  ModelLoad load = ModelLoad::plan_only;
  AfterLoad after_load = AfterLoad::unload;
  std::chrono::milliseconds load_timeout{std::chrono::minutes(10)};
  std::chrono::milliseconds unload_wait{std::chrono::seconds(30)};  // for /api/ps to stop listing it
  std::string state_dir;  // where the measured pairs are stored; "" = not stored
  const std::atomic<bool>* stop = nullptr;
};

// The container memory of the server, read at one moment.
struct ContainerMemoryNow {
  std::optional<std::uint64_t> anon;
  std::optional<std::uint64_t> file;    // page cache
  std::optional<std::uint64_t> mapped;  // of it, mapped into processes (weights loaded with mmap)
  // What a model holds: anonymous memory and the file pages mapped. Page cache that was only read (weights loaded
  // without mmap pass through it) is not the model's.
  [[nodiscard]] std::optional<std::uint64_t> held() const {
    return anon && mapped ? std::optional<std::uint64_t>(*anon + *mapped) : std::nullopt;
  }
};

struct LoadMeasurement {
  std::optional<std::string> error;     // the load failed: the server's words (and the container's OOM kills)
  bool lack_of_memory = false;          // ... for lack of memory (the server says so, or an OOM kill in the container)
  bool model_missing = false;           // ... because the server does not have it (404: pull it first)
  std::optional<std::string> ps_error;  // loaded, but /api/ps could not be read
  std::vector<std::string> evicted;     // models the server unloaded to make room: the container's change is not
                                        // this model's alone, and the RAM check is left unmeasured
  double load_seconds = 0;
  std::optional<std::uint64_t> ps_size;  // /api/ps
  std::optional<std::uint64_t> ps_vram;
  std::optional<std::uint64_t> context_length;
  std::string processor;  // "100% CPU", "48%/52% CPU/GPU"
  ContainerMemoryNow before, loaded, after;
  std::vector<EstimateCheck> checks;
  UnloadCheck unload;
  std::optional<std::string> unload_error;
  AfterLoad after_load = AfterLoad::unload;
  std::optional<std::uint64_t> oom_kills;  // in the container during the load, when counted
  std::optional<std::string> stored;       // why the pair was not stored (nullopt: stored or not asked)
};

struct ModelTestRun {
  std::string model;
  std::optional<ModelPlan> plan;
  std::optional<Error> plan_error;  // not found or not sized
  // What is free now against the plan: RAM (MemAvailable less the reserve), VRAM, disk (when a download is due).
  bool ram_fits = false;
  bool vram_fits = false;
  bool disk_fits = false;
  std::optional<LoadMeasurement> load;
  std::optional<std::string> not_loaded;  // why --load did not load it (does not fit now, already loaded, ...)
  bool not_loaded_for_room = false;       // ... because there is no room for it now (exit 4)
};

struct ServerTarget {
  std::string name;  // the container's name, or the URL
  std::string url;
  std::string container_id;  // "" when the server is not a container memwarden found
  std::optional<std::uint64_t> memory_limit;
};

struct ModelTestResult {
  PlanResult plan;  // host figures and notes, the errors of models not found
  std::optional<ServerTarget> server;
  std::vector<std::string> notes;  // why memory was not measured, a pair not stored, ...
  std::vector<ModelTestRun> runs;
  bool interrupted = false;
};

enum class ModelTestExit : int {
  passed = 0,
  failed = 1,          // a load failed, an estimate was off, or the memory was kept after an unload
  source_missing = 3,  // the model or the server could not be found or reached
  not_possible = 4,    // the model does not fit this host now
  interrupted = 130,
};
[[nodiscard]] ModelTestExit model_test_exit(const ModelTestResult& result);

// Errors only when the server named cannot be found at all (the models' own problems are in the result).
[[nodiscard]] Expected<ModelTestResult, Error> run_model_test(const ModelTestOptions& options);

// `memwarden test --history`: the pairs stored, newest first (at most `limit`).
[[nodiscard]] Result<std::vector<adapters::EstimateRecord>> estimate_history(const std::string& state_dir,
                                                                             std::size_t limit);

}  // namespace mw::engine
