// Benchmark runs in the history database (<state dir>/samples.db, table bench_runs): `memwarden bench` stores
// each run as its JSON (engine/bench_json.hpp), `bench --list` and `bench --compare A B` read them back, and the
// daemon's /metrics shows the newest figures of each model.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/bench.hpp"
#include "core/error.hpp"

namespace mw::adapters {
class SampleStore;
}

namespace mw::engine {

// One stored run, as `bench --list` shows it.
struct BenchRunSummary {
  std::int64_t id = 0;
  std::int64_t started_at_ms = 0;  // wall clock, unix ms
  std::string server;
  std::vector<std::string> models;
  bool interrupted = false;  // Ctrl-C: its figures are partial
};

// Stores the run (bench_run_json) and returns its id. The database is created where absent.
[[nodiscard]] Result<std::int64_t> store_bench_run(const std::string& state_dir, const BenchRun& run);
// The newest `limit` runs, newest first; none (not an error) where nothing was stored yet.
[[nodiscard]] Result<std::vector<BenchRunSummary>> list_bench_runs(const std::string& state_dir, std::size_t limit);
// One run, its id set. Errors: no run with this id ("no benchmark run 12 in <db>"), a stored JSON unreadable.
[[nodiscard]] Result<BenchRun> load_bench_run(const std::string& state_dir, std::int64_t id);
// compare_runs(run id_a, run id_b): from A to B. Errors: those of load_bench_run, naming the unknown id.
[[nodiscard]] Result<std::vector<BenchChange>> compare_bench_runs(const std::string& state_dir, std::int64_t id_a,
                                                                  std::int64_t id_b);

// ---------------------------------------------------------------- the daemon's figures (/metrics)

// One concurrency level of a model's newest run, as /metrics shows it.
struct BenchLevelFigures {
  std::size_t concurrency = 1;
  std::optional<double> output_tokens_per_s;  // the level's throughput
  std::optional<double> ttft_p50_s, ttft_p90_s, ttft_p99_s;
  std::optional<double> e2e_p50_s, e2e_p90_s, e2e_p99_s;
  friend bool operator==(const BenchLevelFigures&, const BenchLevelFigures&) = default;
};

// A model's newest measured run: the newest run in which it was not skipped.
struct BenchModelFigures {
  std::string model;
  std::int64_t run_id = 0;
  std::int64_t started_at_ms = 0;  // when that run started
  std::optional<double> load_s;
  std::vector<BenchLevelFigures> levels;
  std::vector<BenchVerdict> verdicts;
};

// The most models the daemon keeps figures of (the newest runs' first).
inline constexpr std::size_t k_max_bench_models_shown = 64;

// The figures of each model from its newest run among `newest_first` (runs newest first), sorted by model name.
[[nodiscard]] std::vector<BenchModelFigures> latest_bench_figures(std::span<const BenchRun> newest_first);

// What the daemon reads: the stored runs (the newest SampleStore::k_max_bench_runs_kept), newest first, each
// parsed only while some model it lists has no figures yet. `known_newest_id`: when the newest stored run is that
// one, nothing is read and nullopt is returned (nothing changed).
struct BenchFiguresRead {
  std::int64_t newest_id = 0;  // 0: no run stored
  std::vector<BenchModelFigures> figures;
  std::vector<Error> problems;  // runs whose JSON could not be read (skipped)
};
[[nodiscard]] Result<std::optional<BenchFiguresRead>> read_bench_figures(adapters::SampleStore& store,
                                                                         std::int64_t known_newest_id);

}  // namespace mw::engine
