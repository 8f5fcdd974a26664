// A benchmark run (core/bench.hpp) as JSON: the schema "memwarden.bench/1" of docs/bench.md, written by
// `memwarden bench --json`, kept in the history database (engine/bench_history.hpp) and read back for
// `bench --compare` and the daemon's /metrics.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>
#include <string_view>

#include "core/bench.hpp"
#include "core/error.hpp"

namespace mw::engine {

inline constexpr const char* k_bench_schema = "memwarden.bench/1";
// The largest run read back (and stored): a run of every level at the most requests is far below it.
inline constexpr std::size_t k_max_bench_json_bytes = 32ULL << 20;

// Every field of the run. Missing figures (nullopt) are null; times are seconds (started_at_ms is Unix
// milliseconds, and started_at the same instant as ISO 8601 UTC, "2026-12-05T11:13:26.123Z"); bytes are integers.
[[nodiscard]] nlohmann::json bench_run_json(const BenchRun& run);

// Reads bench_run_json's output back: what it wrote comes back exactly (but for figures that were not finite,
// written as null). Unknown fields are ignored, absent ones take their default (nullopt, 0, empty). Errors, one
// line naming `source` and the field: not JSON, nested too deep, over k_max_bench_json_bytes, another schema,
// a field of the wrong type or out of range, more models, levels, points or marks than a run can have.
// figures_only leaves out the raw samples and the timeline while parsing (they are never built in memory): what
// serve's /metrics needs of a stored run is the levels and verdicts.
enum class BenchParse { whole, figures_only };
[[nodiscard]] Result<BenchRun> parse_bench_run(std::string_view text, std::string_view source,
                                               BenchParse parse = BenchParse::whole);

// The instant as ISO 8601 UTC with milliseconds: 0 → "1970-01-01T00:00:00.000Z".
[[nodiscard]] std::string iso8601_utc(std::int64_t unix_ms);

}  // namespace mw::engine
