// `memwarden bench`: a run as text for the terminal, and the progress line while it runs.
#pragma once

#include <string>

#include "core/bench.hpp"
#include "engine/bench.hpp"

namespace mw::cli {

// The run: per model its status, load, memory against the plan, a table of the levels, the verdicts; then notes.
[[nodiscard]] std::string render_bench_run(const BenchRun& run);

// One line for a terminal: "[1/2] tinyllama c=2: 7/10 requests, 1 failed, 37.2 tok/s".
[[nodiscard]] std::string bench_progress_line(const engine::BenchProgress& progress);

}  // namespace mw::cli
