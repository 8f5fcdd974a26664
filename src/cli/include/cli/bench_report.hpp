// `memwarden bench` (issue 15): a run as CSV (one row per request) and as a self-contained HTML report (tables and
// inline SVG charts; no network: no external script, font, image or style). Pure: a BenchRun in, text out.
#pragma once

#include <string>
#include <string_view>

#include "core/bench.hpp"

namespace mw::cli {

// One header row, then one row per counted request (BenchSample) of every model, in the order the run holds them:
// run_started_at (ISO 8601 UTC), server, api, model, concurrency, repetition, ok, error, the request's figures and
// the server's. A missing figure is an empty field, never 0. A model that was skipped has no samples and so no row.
// Fields are quoted as RFC 4180 says (rows end in "\n"); a text field that a spreadsheet would take for a formula
// (it begins with = + - @, a tab or a CR) gets a leading apostrophe: error messages come from servers.
[[nodiscard]] std::string bench_csv(const BenchRun& run);

// One CSV field: the injection guard (for text fields), then RFC 4180 quoting where needed.
[[nodiscard]] std::string csv_field(std::string_view text, bool guard_formula = true);

// The report as one HTML page: the run's settings, a table per model (status, load, planned against measured memory,
// the figures of each concurrency level, the verdicts) and the charts, each an
// <svg class="chart" data-chart="NAME" data-series="K"> holding K series elements (class="series": a <path> per
// line, a <g> per group of bars): throughput, latency, memory, and vram and temperature when the timeline has GPU
// figures. The timeline charts shade the phases of run.marks; a missing point breaks a line. Every text from outside
// (model names, server, errors) is escaped. The page's small inline script (legend hover) is not needed to read it;
// it marks <html data-rendered="yes"> once the page is loaded, and data-script-errors if a script error happened.
[[nodiscard]] std::string bench_html(const BenchRun& run);

// &, <, >, " and ' as character references.
[[nodiscard]] std::string html_escape(std::string_view text);

}  // namespace mw::cli
