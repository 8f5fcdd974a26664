// `memwarden export`: a Prometheus alerting rule file and a Grafana dashboard for
// the metrics of `memwarden serve` (docs/metrics.md).
#pragma once

#include <optional>
#include <string>

#include "core/clock.hpp"

namespace mw::cli {

struct RulesOptions {
  std::optional<Duration> pending_override;  // replaces every rule's `for:` (0 fires at once)
};

// A Prometheus rule file (YAML) with one group, "memwarden", of alerting rules.
[[nodiscard]] std::string prometheus_rules(const RulesOptions& o);

// A Prometheus duration: the largest unit that divides evenly ("90s", "5m", "1h", "0s").
[[nodiscard]] std::string prometheus_duration(Duration d);

// A Grafana dashboard (JSON, for Dashboards > Import) over a `${DS_PROMETHEUS}` data source input.
[[nodiscard]] std::string grafana_dashboard();

}  // namespace mw::cli
