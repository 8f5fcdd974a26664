// `memwarden export`: the Prometheus rule file and the Grafana dashboard agree with /metrics.
#include <gtest/gtest.h>

#include <regex>
#include <set>

#include <nlohmann/json.hpp>

#include "cli/exports.hpp"
#include "cli/metrics.hpp"
#include "test_support.hpp"

using namespace mw;
using namespace mw::cli;
using namespace mw::engine;
using namespace std::chrono_literals;

namespace {

std::set<std::string> memwarden_tokens(const std::string& text) {
  std::set<std::string> tokens;
  const std::regex token(R"(memwarden_\w+)");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), token); it != std::sregex_iterator(); ++it) {
    tokens.insert(it->str());
  }
  return tokens;
}

std::vector<std::string> for_values(const std::string& rules) {
  std::vector<std::string> values;
  const std::regex line(R"(\n\s+for: (\S+)\n)");
  for (auto it = std::sregex_iterator(rules.begin(), rules.end(), line); it != std::sregex_iterator(); ++it) {
    values.push_back((*it)[1].str());
  }
  return values;
}

const std::vector<std::string> k_alerts{"MemwardenLeak",
                                        "MemwardenIdleBloat",
                                        "MemwardenMemoryGrowthForecast",
                                        "MemwardenHostMemoryPressure",
                                        "MemwardenUnlimitedServerContainer",
                                        "MemwardenGpuHot",
                                        "MemwardenVramNearlyFull",
                                        "MemwardenDockerDown",
                                        "MemwardenActionFailed",
                                        "MemwardenHistoryFailing"};

bool promtool_installed() {
  return test::run_process({"promtool", "--version"}).exit_code == 0;
}

std::string script(const std::string& name) {
  return (test::fixture_path("..") / ".." / "scripts" / name).string();
}

}  // namespace

TEST(Exports, RulesReferenceOnlyFamiliesTheDaemonEmits) {
  const auto rules = prometheus_rules({});
  const auto& families = metric_families();
  const std::set<std::string> known(families.begin(), families.end());
  const auto tokens = memwarden_tokens(rules);
  EXPECT_GE(tokens.size(), 10U);
  for (const auto& t : tokens) {
    EXPECT_TRUE(known.contains(t)) << t;
  }
}

TEST(Exports, RulesHaveEveryAlertWithSeverityAndAnnotations) {
  const auto rules = prometheus_rules({});
  EXPECT_NE(rules.find("groups:\n  - name: memwarden\n    rules:\n"), std::string::npos);
  for (const auto& alert : k_alerts) {
    const auto at = rules.find("- alert: " + alert + "\n");
    ASSERT_NE(at, std::string::npos) << alert;
    const auto next = rules.find("- alert: ", at + 1);
    const auto body = rules.substr(at, next == std::string::npos ? std::string::npos : next - at);
    EXPECT_NE(body.find("\n        expr: "), std::string::npos) << alert;
    EXPECT_NE(body.find("\n        for: "), std::string::npos) << alert;
    EXPECT_TRUE(body.find("\n          severity: warning\n") != std::string::npos ||
                body.find("\n          severity: critical\n") != std::string::npos)
        << alert;
    EXPECT_NE(body.find("\n          summary: '"), std::string::npos) << alert;
    EXPECT_NE(body.find("\n          description: '"), std::string::npos) << alert;
    EXPECT_NE(body.find("{{ $labels."), std::string::npos) << alert;
  }
  std::regex alert_line(R"(- alert: )");
  EXPECT_EQ(std::distance(std::sregex_iterator(rules.begin(), rules.end(), alert_line), std::sregex_iterator()),
            static_cast<std::ptrdiff_t>(k_alerts.size()));
}

TEST(Exports, PendingOverrideReplacesEveryFor) {
  const auto defaults = for_values(prometheus_rules({}));
  ASSERT_EQ(defaults.size(), k_alerts.size());
  EXPECT_NE(std::set<std::string>(defaults.begin(), defaults.end()).size(), 1U);  // the defaults differ per alert

  const auto overridden = for_values(prometheus_rules({.pending_override = 90s}));
  ASSERT_EQ(overridden.size(), k_alerts.size());
  for (const auto& v : overridden) {
    EXPECT_EQ(v, "90s");
  }
  for (const auto& v : for_values(prometheus_rules({.pending_override = 0ms}))) {
    EXPECT_EQ(v, "0s");
  }
}

TEST(Exports, PrometheusDuration) {
  EXPECT_EQ(prometheus_duration(0ms), "0s");
  EXPECT_EQ(prometheus_duration(-5s), "0s");
  EXPECT_EQ(prometheus_duration(1500ms), "1500ms");
  EXPECT_EQ(prometheus_duration(90s), "90s");
  EXPECT_EQ(prometheus_duration(5min), "5m");
  EXPECT_EQ(prometheus_duration(90min), "90m");
  EXPECT_EQ(prometheus_duration(2h), "2h");
}

TEST(Exports, DashboardIsValidJsonWithUniquePanelIds) {
  const auto text = grafana_dashboard();
  const auto dash = nlohmann::json::parse(text);  // throws on invalid JSON
  EXPECT_EQ(dash["title"], "memwarden");
  EXPECT_GE(dash["schemaVersion"].get<int>(), 36);
  ASSERT_EQ(dash["__inputs"].size(), 1U);
  EXPECT_EQ(dash["__inputs"][0]["name"], "DS_PROMETHEUS");
  EXPECT_EQ(dash["__inputs"][0]["pluginId"], "prometheus");

  std::set<int> ids;
  std::set<std::string> titles;
  std::size_t panels = 0;
  for (const auto& panel : dash["panels"]) {
    ++panels;
    EXPECT_TRUE(ids.insert(panel["id"].get<int>()).second) << "duplicate id " << panel["id"];
    titles.insert(panel["title"].get<std::string>());
    const auto& pos = panel["gridPos"];
    EXPECT_LE(pos["x"].get<int>() + pos["w"].get<int>(), 24) << panel["title"];
    if (panel["type"] == "row") {
      continue;
    }
    EXPECT_EQ(panel["datasource"]["uid"], "${DS_PROMETHEUS}") << panel["title"];
    ASSERT_FALSE(panel["targets"].empty()) << panel["title"];
    for (const auto& target : panel["targets"]) {
      EXPECT_EQ(target["datasource"]["uid"], "${DS_PROMETHEUS}");
      EXPECT_NE(target["expr"].get<std::string>().find("memwarden_"), std::string::npos) << panel["title"];
    }
  }
  EXPECT_EQ(ids.size(), panels);
  for (const auto* title : {"Available memory vs reserve", "Swap", "Memory pressure (PSI)", "Working set",
                            "Anonymous memory", "Memory limits", "OOM kills and restarts", "VRAM", "GPU temperature",
                            "GPU utilisation", "Loaded models", "Detector states", "Actions"}) {
    EXPECT_TRUE(titles.contains(title)) << title;
  }
}

TEST(Exports, DashboardMarksBenchmarkRunsAndShowsTheirTokensPerSecond) {
  const auto dash = nlohmann::json::parse(grafana_dashboard());
  const auto& list = dash["annotations"]["list"];
  ASSERT_EQ(list.size(), 1U);
  const auto& bench = list[0];
  EXPECT_EQ(bench["name"], "memwarden bench");
  EXPECT_EQ(bench["datasource"]["uid"], "${DS_PROMETHEUS}");
  EXPECT_EQ(bench["enable"], true);
  EXPECT_EQ(bench["expr"], "changes(memwarden_bench_last_run_timestamp_seconds{instance=~\"$instance\"}[2m]) > 0");
  EXPECT_EQ(bench["titleFormat"], "bench {{model}}");
  EXPECT_EQ(bench["tagKeys"], "model");
  const nlohmann::json* panel = nullptr;
  for (const auto& p : dash["panels"]) {
    if (p["title"] == "bench: tokens/s by model") {
      panel = &p;
    }
  }
  ASSERT_NE(panel, nullptr);
  EXPECT_EQ((*panel)["type"], "timeseries");
  ASSERT_EQ((*panel)["targets"].size(), 1U);
  EXPECT_EQ((*panel)["targets"][0]["expr"], "memwarden_bench_output_tokens_per_second{instance=~\"$instance\"}");
  EXPECT_EQ((*panel)["targets"][0]["legendFormat"], "{{model}} c={{concurrency}}");
}

TEST(Exports, DashboardReferencesOnlyFamiliesTheDaemonEmits) {
  const auto& families = metric_families();
  const std::set<std::string> known(families.begin(), families.end());
  const auto tokens = memwarden_tokens(grafana_dashboard());
  EXPECT_GE(tokens.size(), 30U);
  for (const auto& t : tokens) {
    EXPECT_TRUE(known.contains(t)) << t;
  }
}

// The rule file loads in Prometheus and every alert fires and stays quiet where
// tests/fixtures/prometheus/rules_test.yml says (the same check as the ctest promtool.rules).
TEST(Exports, PromtoolChecksAndUnitTestsTheRules) {
  if (!promtool_installed()) {
    GTEST_SKIP() << "promtool is not installed";
  }
  test::TempDir dir;
  dir.write("memwarden-rules.yml", prometheus_rules({}));
  const auto result =
      test::run_process({script("check-prometheus-rules.sh"), (dir.path() / "memwarden-rules.yml").string()});
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;

  dir.write("impatient.yml", prometheus_rules({.pending_override = 0ms}));
  const auto check = test::run_process({"promtool", "check", "rules", (dir.path() / "impatient.yml").string()});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
}
