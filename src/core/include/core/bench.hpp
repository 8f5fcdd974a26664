// `memwarden bench` (issue 15), the pure part: what one benchmark run is (its settings, every request's figures,
// the summaries per model and concurrency, the 1 Hz memory/GPU timeline with the phases marked, the verdicts for
// the seed's criteria), how its figures are summarized and judged, and how two runs compare. The engine measures;
// the CLI renders (text, JSON, CSV, HTML); the history database stores runs as the JSON of docs/bench.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/bench_stats.hpp"
#include "core/error.hpp"
#include "core/model_test.hpp"

namespace mw {

enum class BenchApi { ollama, openai };
[[nodiscard]] const char* to_string(BenchApi api);

inline constexpr std::size_t k_max_bench_models = 32;
inline constexpr std::size_t k_max_bench_runs = 1000;        // --runs
inline constexpr std::size_t k_max_bench_concurrency = 256;  // one level
inline constexpr std::size_t k_max_bench_levels = 16;        // --concurrency 1,2,4: 16 levels at most
// Counted requests in one run, all models and levels: each is about 470 bytes of JSON, so a run stays well inside
// the 32 MiB a stored run may take.
inline constexpr std::size_t k_max_bench_requests = 20000;
// The timeline of a run at 1 Hz: four hours; later points thin the timeline (every second one is dropped).
inline constexpr std::size_t k_max_bench_timeline = 4 * 3600;

struct BenchSettings {
  BenchApi api = BenchApi::ollama;
  std::size_t runs = 5;    // counted requests per concurrency level, per client: runs × concurrency requests
  std::size_t warmup = 1;  // requests sent once per model before the counted ones, not counted
  std::size_t prompt_tokens = 256;
  std::size_t max_tokens = 128;
  std::vector<std::size_t> concurrency{1};
  std::optional<std::uint64_t> num_ctx;  // --ctx
  double cooldown_s = 10;                // between models: the GPU cools, the memory settles
  std::int64_t seed = 42;
  unsigned temperature_limit_c = 70;  // sustained temperature above it fails
  unsigned gpu_utilisation_target_pct = 80;
};

// "1,2,4" → {1, 2, 4}: each 1..k_max_bench_concurrency, at most k_max_bench_levels, no repeats. Errors name
// `source` (--concurrency) and the bad item: "0", "", "x", "2,2".
[[nodiscard]] Result<std::vector<std::size_t>> parse_concurrency(std::string_view text, std::string_view source);

// The settings as the user gave them: every count in its range (runs 1..k_max_bench_runs, warmup 0..100,
// prompt_tokens 1..32768, max_tokens 1..32768, 1..k_max_bench_levels levels, cooldown 0..3600 s).
[[nodiscard]] Expected<void, Error> check_settings(const BenchSettings& settings);

// The prompt of request `index` of a model: about `tokens` tokens of English words (one word ≈ 1.3 tokens on the
// llama tokenizers; the server's prompt_eval_count says what it was), begun with the index so that no two prompts
// share a prefix past their first token: a server's prompt cache cannot shorten the TTFT of a counted request.
[[nodiscard]] std::string bench_prompt(std::size_t index, std::size_t tokens);

// One request, as measured (raw samples: kept in the JSON, one CSV row each).
struct BenchSample {
  std::size_t concurrency = 1;
  std::size_t repetition = 0;  // 0-based within the level: runs × concurrency of them
  double start_s = 0;          // sent, since the run began (BenchRun::started_at_ms)
  bool ok = false;
  std::string error;  // why it failed (one line); "" when ok
  std::optional<double> ttft_s;
  std::optional<double> itl_mean_s;  // the mean of its inter-token latencies
  std::optional<double> itl_p90_s;
  std::optional<double> tpot_s;
  std::optional<double> e2e_s;
  std::optional<double> output_tokens_per_s;  // tokens / e2e
  std::optional<double> decode_tokens_per_s;  // (tokens − 1) / (e2e − ttft)
  std::uint64_t output_tokens = 0;
  std::optional<std::int64_t> prompt_tokens;  // the server's count
  // The server's own figures (Ollama; llama.cpp's timings for prompt and eval), seconds.
  std::optional<double> load_s;
  std::optional<double> prompt_eval_s;
  std::optional<double> eval_s;
  std::optional<std::int64_t> eval_count;
  std::optional<double> total_s;
  [[nodiscard]] std::optional<double> server_tokens_per_s() const;  // eval_count / eval_s
};

// The figures of one concurrency level of one model: each a summary of the completed requests.
struct BenchLevel {
  std::size_t concurrency = 1;
  SampleSummary ttft_s, itl_s, tpot_s, e2e_s, output_tokens_per_s, server_tokens_per_s;
  RunThroughput throughput;  // requests and tokens per second over the level's window
  bool interrupted = false;  // Ctrl-C came during this level: its figures are partial
};

// Summarizes the samples of one level (those with this concurrency). ITL is summarized over every gap of every
// completed request, so `itl_gaps` are passed in (per sample, its gaps in seconds, in sample order).
[[nodiscard]] BenchLevel summarize_level(std::size_t concurrency, std::span<const BenchSample> samples,
                                         std::span<const std::vector<double>> itl_gaps);

// One GPU at one moment of the timeline (NVML); every figure nullopt where NVML could not tell.
struct BenchGpuPoint {
  unsigned index = 0;
  std::optional<std::uint64_t> vram_used;
  std::optional<unsigned> utilisation_pct;
  std::optional<unsigned> temperature_c;
  std::optional<double> power_w;
  std::optional<std::uint64_t> throttle_reasons;  // nvmlClocksThrottleReason bits; 0 = none
};

// One point of the 1 Hz timeline.
struct BenchPoint {
  double t_s = 0;                            // since the run began
  std::optional<std::uint64_t> anon;         // the server container's anonymous memory
  std::optional<std::uint64_t> working_set;  // usage less inactive file (docker stats' figure)
  std::optional<std::uint64_t> mem_available;
  std::optional<std::uint64_t> swap_in_pages;  // pswpin since the previous point
  std::vector<BenchGpuPoint> gpus;
};

// A phase of the run on the timeline: the charts mark them.
enum class BenchPhase { load, warmup, level, unload, cooldown };
[[nodiscard]] const char* to_string(BenchPhase phase);
struct BenchMark {
  std::string model;
  BenchPhase phase = BenchPhase::level;
  std::size_t concurrency = 0;  // for a level
  double start_s = 0;
  double end_s = 0;
};

enum class VerdictOutcome { pass, fail, unknown };
[[nodiscard]] const char* to_string(VerdictOutcome outcome);
struct BenchVerdict {
  std::string criterion;  // "temperature", "gpu utilisation", "VRAM", "RAM", "memory returned"
  VerdictOutcome outcome = VerdictOutcome::unknown;
  std::string detail;  // the figures, or why it is unknown
};

// Why a model was skipped or failed, as the exit code tells it.
enum class BenchCause {
  none,
  not_installed,   // the server does not have it (404): pull it (exit 3)
  no_room,         // the plan, MemAvailable or the container's limit leaves no room for it now (exit 4)
  lack_of_memory,  // its load failed for lack of memory (exit 4)
  in_use,          // loaded on the server already, for someone else: neither loaded nor unloaded (exit 1)
  failed,          // the load or every request failed for another reason (exit 1)
};
[[nodiscard]] const char* to_string(BenchCause cause);

enum class BenchModelStatus {
  done,         // every level ran (some requests may have failed: see the levels)
  skipped,      // not loaded: it does not fit, is missing, or is loaded for someone else
  failed,       // the load failed, or every request failed
  interrupted,  // Ctrl-C: what was measured is kept and marked
};
[[nodiscard]] const char* to_string(BenchModelStatus status);

struct BenchModel {
  std::string model;
  BenchModelStatus status = BenchModelStatus::done;
  std::string reason;  // why skipped, failed or interrupted; "" when done
  BenchCause cause = BenchCause::none;
  std::optional<std::uint64_t> planned_ram;  // the plan: RAM and VRAM with the context asked
  std::optional<std::uint64_t> planned_vram;
  // Of planned_ram, what the runtime reserves at the load but fills only as the context is used (the KV cache and
  // the compute graph): the RAM band reaches down by it.
  std::uint64_t ram_fills_later = 0;
  std::optional<double> load_s;              // the cold load, timed apart from any request
  std::optional<std::uint64_t> loaded_ram;   // the container's anon + mapped added by the load
  std::optional<std::uint64_t> server_size;  // /api/ps
  std::optional<std::uint64_t> server_vram;
  std::string processor;  // "100% CPU"
  UnloadCheck unload;     // memory back after the unload
  std::optional<std::string> unload_error;
  std::vector<BenchSample> samples;  // counted requests only, every level
  std::vector<BenchLevel> levels;
  std::vector<BenchVerdict> verdicts;
};

struct BenchRun {
  std::int64_t id = 0;             // in the history database; 0 until stored
  std::int64_t started_at_ms = 0;  // Unix time
  double duration_s = 0;
  std::string server;  // container name or URL
  std::string url;
  BenchSettings settings;
  std::vector<BenchModel> models;
  std::vector<BenchPoint> timeline;
  std::vector<BenchMark> marks;
  std::vector<std::string> notes;  // what was not measured and why
  bool interrupted = false;
};

// The verdicts of a model from its part of the timeline (the points inside its level marks) and its load:
// - temperature: the hottest GPU's temperature, sustained (the median of the level points, so one spike does not
//   fail it) under the limit; unknown without GPU temperatures;
// - gpu utilisation: the median utilisation while generating at or above the target; unknown without GPUs or
//   when the model runs on the CPU (server_vram 0);
// - VRAM: what the GPUs' used memory (NVML, summed over GPUs) rose by from the model's load start to the highest
//   point while it generated, within the plan's band; unknown without NVML (the server's size_vram is its own
//   estimate, shown, not judged);
// - RAM: the measured load within the plan's band;
// - memory returned: the unload check.
[[nodiscard]] std::vector<BenchVerdict> judge_model(const BenchModel& model, std::span<const BenchPoint> timeline,
                                                    std::span<const BenchMark> marks, const BenchSettings& settings);

// Appends a point, halving the timeline (every second point dropped) when it is full: memory stays bounded on a run
// of any length.
void add_point(std::vector<BenchPoint>& timeline, BenchPoint point, std::size_t cap = k_max_bench_timeline);

// One line of `bench --compare A B`: the change of one metric of one model and concurrency level.
struct BenchChange {
  std::string model;
  std::size_t concurrency = 1;
  std::string metric;  // "ttft p50 s", "tok/s p50", "requests/s", "load s", ...
  std::optional<double> before;
  std::optional<double> after;
  std::optional<double> change_percent;  // (after − before) / before; nullopt when either is missing or before is 0
  bool higher_is_better = false;
};
// The changes from run `before` to run `after`, for every model and level both have, in the order of `after`.
[[nodiscard]] std::vector<BenchChange> compare_runs(const BenchRun& before, const BenchRun& after);

}  // namespace mw
