// `memwarden bench MODEL...` (issue 15): the benchmark cycle, one model after another, on the server the user runs,
// through its streaming API. For each model: the plan first (a model that cannot fit is skipped, saying why); a
// cold load timed apart from any request; warm-up requests (not counted); the counted requests at each concurrency
// level; an unload and a check that the memory came back. A sampler reads the server container's memory, the host's
// MemAvailable and swap-in and every GPU (NVML) once a second all along, and the phases are marked on that timeline.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>

#include "core/bench.hpp"
#include "core/error.hpp"
#include "engine/plan.hpp"

namespace mw::engine {

// Where the run stands, for a progress line on a terminal.
struct BenchProgress {
  std::string model;
  std::size_t model_index = 0;  // 0-based
  std::size_t models = 0;
  BenchPhase phase = BenchPhase::load;
  std::size_t concurrency = 0;  // in a level
  std::size_t done = 0;         // requests completed in this phase
  std::size_t total = 0;        // requests in this phase
  std::size_t failed = 0;
  std::optional<double> last_tokens_per_s;  // the last completed request's
};

struct BenchOptions {
  PlanOptions plan;    // the models, the settings (--ctx), the host, the reserve
  std::string server;  // --server: a container's name or a URL; "" = the one inference server found
  BenchSettings settings;
  std::chrono::milliseconds load_timeout{std::chrono::minutes(10)};
  std::chrono::milliseconds request_timeout{std::chrono::minutes(10)};  // first byte of one request
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(60)};     // between two pieces of an answer
  std::chrono::milliseconds unload_wait{std::chrono::seconds(30)};
  std::chrono::milliseconds sample_every{std::chrono::seconds(1)};
  std::string nvml_library;  // "" = libnvidia-ml.so.1
  const std::atomic<bool>* stop = nullptr;
  // Called as the run moves on, from the benchmarking thread or a client thread (one call at a time); may be empty.
  std::function<void(const BenchProgress&)> progress;
};

enum class BenchExit : int {
  passed = 0,
  failed = 1,          // a model failed, a request failed, a verdict failed, or memory was kept
  source_missing = 3,  // the server or a model could not be found (not installed: ollama pull)
  not_possible = 4,    // a model does not fit this host now
  interrupted = 130,
};
[[nodiscard]] BenchExit bench_exit(const BenchRun& run);

// Errors only when the server cannot be found at all; everything else (models skipped, failed requests, a stream
// dropped) is in the run. Ctrl-C (`stop`) ends the run at once with what was measured kept and marked.
[[nodiscard]] Expected<BenchRun, Error> run_bench(const BenchOptions& options);

}  // namespace mw::engine
