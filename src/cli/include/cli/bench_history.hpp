// What `memwarden bench --list` and `bench --compare A B` print, and the Grafana annotations of a run: pure
// renderers of what engine/bench_history.hpp reads back (the command's wiring is cli/bench).
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "core/bench.hpp"
#include "engine/bench_history.hpp"

namespace mw::cli {

// A table, newest first as given: id, when (local time), server, models, and "interrupted (partial)" where so.
[[nodiscard]] std::string render_bench_list(const std::vector<engine::BenchRunSummary>& runs);
// [{"id", "started_at_ms", "started_at" (ISO 8601 UTC), "server", "models": [...], "interrupted"}, ...]
[[nodiscard]] nlohmann::json render_bench_list_json(const std::vector<engine::BenchRunSummary>& runs);

// Per model and level: metric, before (run a), after (run b), the change in percent with its sign, and whether
// that is better or worse; a missing figure is "–".
[[nodiscard]] std::string render_bench_compare(const BenchRun& a, const BenchRun& b,
                                               const std::vector<BenchChange>& changes);
// {"before": {run}, "after": {run}, "changes": [{"model", "concurrency" (null for a model's own figure), "metric",
// "before", "after", "change_percent", "higher_is_better", "verdict": "better"|"worse"|"same"|null}]}
[[nodiscard]] nlohmann::json render_bench_compare_json(const BenchRun& a, const BenchRun& b,
                                                       const std::vector<BenchChange>& changes);

// The run as Grafana annotations, each the body of one `POST /api/annotations`: per measured model one region from
// its load to its unload (tags memwarden, bench, the model), and one per level (tags also "c=N"); times in Unix ms.
[[nodiscard]] nlohmann::json bench_annotations(const BenchRun& run);

}  // namespace mw::cli
