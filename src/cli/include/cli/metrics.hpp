// /metrics of `memwarden serve`: the daemon's snapshot in the Prometheus text
// exposition format 0.0.4. docs/metrics.md lists every family.
#pragma once

#include <string>
#include <vector>

#include "engine/snapshot.hpp"

namespace mw::cli {

// The content type to serve render_metrics' output with.
inline constexpr const char* k_metrics_content_type = "text/plain; version=0.0.4; charset=utf-8";

// Every family, in order, each with HELP and TYPE; samples grouped by family. A value the
// snapshot does not know is left out, never printed as 0.
[[nodiscard]] std::string render_metrics(const engine::DaemonSnapshot& s);

// The name of every family render_metrics can emit, in the order it emits them.
[[nodiscard]] const std::vector<std::string>& metric_families();

}  // namespace mw::cli
