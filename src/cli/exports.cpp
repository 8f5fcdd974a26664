#include "cli/exports.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace mw::cli {

namespace {

using namespace std::chrono_literals;

struct AlertRule {
  std::string_view name;
  std::string_view expr;  // PromQL; may span lines
  Duration pending;       // `for:`
  std::string_view severity;
  std::string_view summary;
  std::string_view description;
};

// Annotations are Go templates: $labels.x is a label of the alerting series, $value its value.
const std::vector<AlertRule>& alert_rules() {
  static const std::vector<AlertRule> rules{
      {"MemwardenLeak", R"(memwarden_detector_state{detector=~"growth|orphan-runner"} >= 2)", 5min, "warning",
       "Memory leak suspected in {{ $labels.subject }} ({{ $labels.detector }})",
       "memwarden's {{ $labels.detector }} detector rates {{ $labels.subject }} at {{ $value }} (2 warning, "
       "3 critical): its anonymous memory keeps growing with the same models loaded, or runner processes hold "
       "memory while no model is loaded. Run memwarden diagnose on {{ $labels.instance }} for the evidence; "
       "memwarden fix unloads or restarts the server."},
      {"MemwardenIdleBloat", R"(memwarden_detector_state{detector="idle-bloat"} >= 2)", 10min, "warning",
       "{{ $labels.subject }} holds far more memory than its loaded models need",
       "memwarden's idle-bloat detector rates {{ $labels.subject }} at {{ $value }} (2 warning, 3 critical): its "
       "anonymous memory is well above what the loaded models and a base allowance explain. Unloading the models "
       "or restarting the server (memwarden fix) gives it back."},
      {"MemwardenMemoryGrowthForecast",
       "(\n"
       "  predict_linear(memwarden_container_anon_bytes[30m], 3600)\n"
       "    > memwarden_container_memory_limit_bytes\n"
       ")\n"
       "or\n"
       "(\n"
       "  predict_linear(memwarden_container_anon_bytes[30m], 3600)\n"
       "    > (memwarden_container_anon_bytes + ignoring (name) group_left () memwarden_host_memory_available_bytes)\n"
       "  and\n"
       "  memwarden_container_memory_unlimited == 1\n"
       ")",
       15min, "warning", "Container {{ $labels.name }} runs out of memory within an hour at its current growth",
       "At the rate of the last 30 minutes the anonymous memory of container {{ $labels.name }} reaches "
       "{{ $value | humanize1024 }}B within an hour: more than its memory limit, or, without a limit, more than "
       "the host has available. Expect an OOM kill."},
      {"MemwardenHostMemoryPressure",
       "memwarden_host_memory_pressure_ratio{kind=\"full\",window=\"10s\"} > 0.10\n"
       "or\n"
       "memwarden_host_memory_available_bytes < memwarden_host_reserve_bytes",
       5min, "critical", "Host {{ $labels.instance }} is short of memory",
       "{{ if $labels.kind }}All non-idle tasks stalled on memory {{ $value | humanizePercentage }} of the last 10 "
       "seconds (PSI full avg10): the host is thrashing.{{ else }}Only {{ $value | humanize1024 }}B of memory is "
       "available, less than the configured reserve.{{ end }} Free memory (unload models, memwarden fix) or give "
       "the host more RAM."},
      {"MemwardenUnlimitedServerContainer",
       "(memwarden_container_memory_unlimited == 1)\n"
       "  * ignoring (id, image, inference_server) group_left (image)\n"
       "memwarden_container_info{inference_server=\"true\"}",
       30min, "warning", "Inference server container {{ $labels.name }} has no memory limit",
       "Container {{ $labels.name }} ({{ $labels.image }}) runs an inference server without a memory limit, so a "
       "leak in it can take the whole host down. Set one (docker run --memory, compose mem_limit)."},
      {"MemwardenGpuHot", "memwarden_gpu_temperature_celsius >= 70", 10min, "warning",
       "GPU {{ $labels.gpu }} ({{ $labels.name }}) runs hot",
       "GPU {{ $labels.gpu }} ({{ $labels.name }}) on {{ $labels.instance }} is at {{ $value }} degrees C. Check "
       "cooling and airflow; a hot GPU throttles."},
      {"MemwardenVramNearlyFull", "memwarden_gpu_memory_used_bytes / memwarden_gpu_memory_total_bytes > 0.95", 15min,
       "warning", "GPU {{ $labels.gpu }} ({{ $labels.name }}) memory is nearly full",
       "GPU {{ $labels.gpu }} ({{ $labels.name }}) on {{ $labels.instance }} has {{ $value | humanizePercentage }} "
       "of its memory in use: another model or a longer context will spill layers to the CPU and into RAM."},
      {"MemwardenDockerDown", "memwarden_docker_up == 0", 2min, "critical",
       "memwarden cannot reach the Docker engine on {{ $labels.instance }}",
       "The Docker engine does not answer memwarden, so containers and their memory are not observed and no fix "
       "can run. Check the engine (systemctl status docker) and the socket memwarden uses."},
      {"MemwardenActionFailed", R"(increase(memwarden_actions_total{outcome="failed"}[15m]) > 0)", 0s, "warning",
       "A memwarden {{ $labels.kind }} action failed on {{ $labels.instance }}",
       "{{ $value | printf \"%.0f\" }} {{ $labels.kind }} action(s) failed in the last 15 minutes. The journal "
       "has the details (memwarden history); the server may need a hand."},
      {"MemwardenHistoryFailing", "memwarden_history_ok == 0", 10min, "warning",
       "memwarden on {{ $labels.instance }} cannot record history",
       "The history store rejects samples (disk full, or the state directory is not writable); the daemon keeps "
       "watching but forgets. The daemon's log says why."},
  };
  return rules;
}

// YAML single-quoted scalar: the only escape is '' for '.
std::string single_quoted(std::string_view text) {
  std::string out = "'";
  for (const char c : text) {
    out += c;
    if (c == '\'') {
      out += '\'';
    }
  }
  out += '\'';
  return out;
}

std::string yaml_expr(std::string_view expr) {
  if (expr.find('\n') == std::string_view::npos) {
    return fmt::format("        expr: {}\n", expr);
  }
  std::string out = "        expr: |-\n";
  std::size_t start = 0;
  while (start <= expr.size()) {
    const auto end = expr.find('\n', start);
    const auto line = expr.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    out += fmt::format("          {}\n", line);
    if (end == std::string_view::npos) {
      break;
    }
    start = end + 1;
  }
  return out;
}

using Json = nlohmann::ordered_json;

Json datasource() {
  return {{"type", "prometheus"}, {"uid", "${DS_PROMETHEUS}"}};
}

struct Query {
  std::string expr;
  std::string legend;
};

class Dashboard {
 public:
  void row(const std::string& title) {
    m_y += m_row_height;
    m_x = 0;
    m_row_height = 0;
    m_panels.push_back({{"type", "row"},
                        {"id", m_next_id++},
                        {"title", title},
                        {"collapsed", false},
                        {"gridPos", {{"h", 1}, {"w", 24}, {"x", 0}, {"y", m_y}}},
                        {"panels", Json::array()}});
    m_y += 1;
  }

  // A panel `width` columns wide (of 24), placed left to right.
  Json& panel(const std::string& type, const std::string& title, const std::string& description, int width,
              const std::string& unit, const std::vector<Query>& queries) {
    constexpr int height = 8;
    if (m_x + width > 24) {
      m_y += m_row_height;
      m_x = 0;
      m_row_height = 0;
    }
    Json targets = Json::array();
    char ref = 'A';
    for (const auto& q : queries) {
      targets.push_back({{"datasource", datasource()},
                         {"expr", q.expr},
                         {"legendFormat", q.legend.empty() ? "__auto" : q.legend},
                         {"refId", std::string(1, ref)}});
      ref = static_cast<char>(ref + 1);
    }
    m_panels.push_back({{"type", type},
                        {"id", m_next_id++},
                        {"title", title},
                        {"description", description},
                        {"datasource", datasource()},
                        {"gridPos", {{"h", height}, {"w", width}, {"x", m_x}, {"y", m_y}}},
                        {"fieldConfig", {{"defaults", {{"unit", unit}}}, {"overrides", Json::array()}}},
                        {"options", Json::object()},
                        {"targets", targets}});
    m_x += width;
    m_row_height = std::max(m_row_height, height);
    return m_panels.back();
  }

  [[nodiscard]] Json panels() const { return m_panels; }

 private:
  Json m_panels = Json::array();
  int m_next_id = 1;
  int m_x = 0;
  int m_y = 0;
  int m_row_height = 0;
};

// Every query filters on the chosen memwarden instance.
std::string on_instance(std::string_view family, std::string_view extra = "") {
  return fmt::format("{}{{instance=~\"$instance\"{}{}}}", family, extra.empty() ? "" : ",", extra);
}

Json severity_mappings() {
  return Json::array({{{"type", "value"},
                       {"options",
                        {{"0", {{"text", "none"}, {"color", "green"}, {"index", 0}}},
                         {"1", {{"text", "info"}, {"color", "blue"}, {"index", 1}}},
                         {"2", {{"text", "warning"}, {"color", "orange"}, {"index", 2}}},
                         {"3", {{"text", "critical"}, {"color", "red"}, {"index", 3}}}}}}});
}

Json up_down_mappings(const std::string& up, const std::string& down) {
  return Json::array({{{"type", "value"},
                       {"options",
                        {{"0", {{"text", down}, {"color", "red"}, {"index", 0}}},
                         {"1", {{"text", up}, {"color", "green"}, {"index", 1}}}}}}});
}

void set_thresholds(Json& panel, const std::vector<std::pair<std::optional<double>, std::string>>& steps) {
  Json list = Json::array();
  for (const auto& [value, color] : steps) {
    list.push_back({{"color", color}, {"value", value ? Json(*value) : Json(nullptr)}});
  }
  panel["fieldConfig"]["defaults"]["thresholds"] = {{"mode", "absolute"}, {"steps", list}};
}

Json build_dashboard() {
  Dashboard d;
  const std::string avail = on_instance("memwarden_host_memory_available_bytes");

  d.row("Host");
  d.panel("timeseries", "Available memory vs reserve",
          "MemAvailable against the configured reserve; below the reserve MemwardenHostMemoryPressure fires.", 8,
          "bytes",
          {{avail, "available"},
           {on_instance("memwarden_host_reserve_bytes"), "reserve"},
           {on_instance("memwarden_host_memory_total_bytes"), "total"},
           {on_instance("memwarden_host_page_cache_bytes"), "page cache"}});
  d.panel("timeseries", "Swap", "Swap in use and in total.", 8, "bytes",
          {{on_instance("memwarden_host_swap_used_bytes"), "used"},
           {on_instance("memwarden_host_swap_total_bytes"), "total"}});
  d.panel("timeseries", "Memory pressure (PSI)",
          "Share of time some or all tasks stalled on memory; full over 10% means thrashing.", 8, "percentunit",
          {{on_instance("memwarden_host_memory_pressure_ratio"), "{{kind}} {{window}}"},
           {"rate(" + on_instance("memwarden_host_memory_pressure_stall_seconds_total") + "[$__rate_interval])",
            "{{kind}} stalled (rate)"}});

  d.row("Containers");
  d.panel("timeseries", "Working set", "Usage minus inactive page cache, per container (what docker stats shows).", 12,
          "bytes", {{on_instance("memwarden_container_working_set_bytes"), "{{name}}"}});
  d.panel("timeseries", "Anonymous memory",
          "Heap, stacks, KV cache on the CPU: what only freeing or swapping removes. Steady growth is a leak.", 12,
          "bytes", {{on_instance("memwarden_container_anon_bytes"), "{{name}}"}});
  d.panel("timeseries", "Page cache and swap", "File pages (reclaimable) and swapped-out memory per container.", 8,
          "bytes",
          {{on_instance("memwarden_container_cache_bytes"), "{{name}} cache"},
           {on_instance("memwarden_container_swap_bytes"), "{{name}} swap"}});
  auto& limits = d.panel("table", "Memory limits",
                         "Limit and usage per container; inference servers without a limit are a risk.", 8, "bytes",
                         {{on_instance("memwarden_container_memory_limit_bytes"), "limit"},
                          {on_instance("memwarden_container_usage_bytes"), "usage"},
                          {on_instance("memwarden_container_memory_unlimited") +
                               " * on (instance, name) group_left "
                               "(image, inference_server) " +
                               on_instance("memwarden_container_info"),
                           "unlimited"}});
  for (auto& t : limits["targets"]) {
    t["instant"] = true;
    t["format"] = "table";
  }
  limits["transformations"] = Json::array({{{"id", "merge"}, {"options", Json::object()}}});
  d.panel(
      "timeseries", "OOM kills and restarts", "OOM kills in each container and on the host, engine restarts.", 8,
      "short",
      {{"increase(" + on_instance("memwarden_container_oom_kills_total") + "[$__rate_interval])", "{{name}} OOM kills"},
       {"increase(" + on_instance("memwarden_host_oom_kills_total") + "[$__rate_interval])", "host OOM kills"},
       {"increase(" + on_instance("memwarden_container_restarts_total") + "[$__rate_interval])", "{{name}} restarts"}});

  d.row("GPU");
  auto& gpu_up = d.panel("stat", "NVML", "Whether the NVIDIA driver answered.", 4, "none",
                         {{on_instance("memwarden_gpu_available"), "NVML"}});
  gpu_up["fieldConfig"]["defaults"]["mappings"] = up_down_mappings("answering", "unavailable");
  d.panel("timeseries", "VRAM", "GPU memory in use (including the driver's reservation) and in total.", 8, "bytes",
          {{on_instance("memwarden_gpu_memory_used_bytes"), "GPU {{gpu}} used"},
           {on_instance("memwarden_gpu_memory_total_bytes"), "GPU {{gpu}} total"}});
  auto& temp = d.panel("timeseries", "GPU temperature", "Core temperature; MemwardenGpuHot fires at 70 C.", 6,
                       "celsius", {{on_instance("memwarden_gpu_temperature_celsius"), "GPU {{gpu}}"}});
  set_thresholds(temp, {{std::nullopt, "green"}, {70.0, "red"}});
  d.panel("timeseries", "GPU utilisation", "Share of time the GPU was busy.", 6, "percentunit",
          {{on_instance("memwarden_gpu_utilization_ratio"), "GPU {{gpu}}"}});

  d.row("Inference servers");
  auto& up = d.panel("stat", "Server API", "Whether each inference server's API answered the last sample.", 6, "none",
                     {{on_instance("memwarden_server_up"), "{{server}}"}});
  up["fieldConfig"]["defaults"]["mappings"] = up_down_mappings("up", "down");
  d.panel("bargauge", "Loaded models", "Memory each loaded model takes (RAM and VRAM) and the part in VRAM.", 18,
          "bytes",
          {{on_instance("memwarden_model_size_bytes"), "{{server}} {{model}} size"},
           {on_instance("memwarden_model_vram_bytes"), "{{server}} {{model}} VRAM"}});

  d.row("Diagnosis and actions");
  auto& states = d.panel("state-timeline", "Detector states",
                         "Each detector's verdict on each subject over time: none, info, warning, critical.", 16,
                         "none", {{on_instance("memwarden_detector_state"), "{{subject}} {{detector}}"}});
  states["fieldConfig"]["defaults"]["mappings"] = severity_mappings();
  states["fieldConfig"]["defaults"]["color"] = {{"mode", "thresholds"}};
  set_thresholds(states, {{std::nullopt, "green"}, {1.0, "blue"}, {2.0, "orange"}, {3.0, "red"}});
  d.panel("stat", "Active findings", "Findings the detectors report now, by severity.", 8, "none",
          {{on_instance("memwarden_findings"), "{{severity}}"}});
  d.panel("timeseries", "Actions", "Remedial actions (unload, restart) by outcome.", 12, "short",
          {{"increase(" + on_instance("memwarden_actions_total") + "[$__rate_interval]) > 0", "{{kind}} {{outcome}}"}});
  d.panel("timeseries", "Notifications", "Notifications sent, failed or suppressed, per target.", 12, "short",
          {{"increase(" + on_instance("memwarden_notifications_total") + "[$__rate_interval]) > 0",
            "{{target}} {{result}}"}});

  d.row("memwarden");
  auto& docker = d.panel("stat", "Docker engine", "Whether the Docker engine answered memwarden.", 6, "none",
                         {{on_instance("memwarden_docker_up"), "Docker"}});
  docker["fieldConfig"]["defaults"]["mappings"] = up_down_mappings("up", "down");
  auto& history = d.panel("stat", "History store", "Whether the history store accepted the last sample.", 6, "none",
                          {{on_instance("memwarden_history_ok"), "history"}});
  history["fieldConfig"]["defaults"]["mappings"] = up_down_mappings("ok", "failing");
  d.panel("timeseries", "Sampling", "How long each sample takes, and seconds since the last one.", 12, "s",
          {{on_instance("memwarden_sample_duration_seconds"), "sample duration"},
           {"time() - " + on_instance("memwarden_last_sample_timestamp_seconds"), "since last sample"},
           {"rate(" + on_instance("memwarden_samples_total") + "[$__rate_interval])", "samples per second"}});

  d.row("Benchmarks");
  d.panel("timeseries", "bench: tokens/s by model",
          "Output tokens per second of all requests together, per concurrency level, in each model's newest run of "
          "memwarden bench (from the history database; a step is a new run).",
          24, "short", {{on_instance("memwarden_bench_output_tokens_per_second"), "{{model}} c={{concurrency}}"}});

  Json dash;
  dash["__inputs"] = Json::array({{{"name", "DS_PROMETHEUS"},
                                   {"label", "Prometheus"},
                                   {"description", "The Prometheus that scrapes memwarden serve's /metrics"},
                                   {"type", "datasource"},
                                   {"pluginId", "prometheus"},
                                   {"pluginName", "Prometheus"}}});
  dash["__requires"] =
      Json::array({{{"type", "grafana"}, {"id", "grafana"}, {"name", "Grafana"}, {"version", "9.4.0"}},
                   {{"type", "datasource"}, {"id", "prometheus"}, {"name", "Prometheus"}, {"version", "1.0.0"}}});
  // A mark where a model's newest benchmark run changed: when the daemon read the stored run (within about a
  // minute of its end), not when the run began (its timestamp says that).
  dash["annotations"] = {
      {"list",
       Json::array({{{"name", "memwarden bench"},
                     {"datasource", datasource()},
                     {"enable", true},
                     {"hide", false},
                     {"iconColor", "purple"},
                     {"expr", "changes(" + on_instance("memwarden_bench_last_run_timestamp_seconds") + "[2m]) > 0"},
                     {"step", "1m"},
                     {"titleFormat", "bench {{model}}"},
                     {"textFormat", "a new benchmark run of {{model}} (memwarden bench --list)"},
                     {"tagKeys", "model"},
                     {"useValueForTime", false}}})}};
  dash["description"] = "Memory of a local-LLM host as memwarden serve sees it (docs/metrics.md).";
  dash["editable"] = true;
  dash["graphTooltip"] = 1;
  dash["id"] = nullptr;
  dash["links"] = Json::array();
  dash["panels"] = d.panels();
  dash["refresh"] = "30s";
  dash["schemaVersion"] = 38;
  dash["tags"] = Json::array({"memwarden"});
  dash["templating"] = {
      {"list",
       Json::array({{{"name", "instance"},
                     {"label", "memwarden"},
                     {"type", "query"},
                     {"datasource", datasource()},
                     {"query", {{"query", "label_values(memwarden_build_info, instance)"}, {"refId", "instance"}}},
                     {"definition", "label_values(memwarden_build_info, instance)"},
                     {"refresh", 2},
                     {"includeAll", true},
                     {"multi", true},
                     {"current", Json::object()},
                     {"sort", 1}}})}};
  dash["time"] = {{"from", "now-6h"}, {"to", "now"}};
  dash["timepicker"] = Json::object();
  dash["timezone"] = "";
  dash["title"] = "memwarden";
  dash["uid"] = "memwarden";
  dash["version"] = 1;
  return dash;
}

}  // namespace

std::string prometheus_duration(Duration d) {
  const auto ms = d.count() < 0 ? 0 : d.count();
  if (ms == 0) {
    return "0s";
  }
  if (ms % 3'600'000 == 0) {
    return fmt::format("{}h", ms / 3'600'000);
  }
  if (ms % 60'000 == 0) {
    return fmt::format("{}m", ms / 60'000);
  }
  if (ms % 1000 == 0) {
    return fmt::format("{}s", ms / 1000);
  }
  return fmt::format("{}ms", ms);
}

std::string prometheus_rules(const RulesOptions& o) {
  std::string out =
      "# Prometheus alerting rules for memwarden serve's /metrics.\n"
      "# Generated by `memwarden export prometheus-rules`; docs/metrics.md explains each alert.\n"
      "groups:\n"
      "  - name: memwarden\n"
      "    rules:\n";
  for (const auto& rule : alert_rules()) {
    out += fmt::format("      - alert: {}\n", rule.name);
    out += yaml_expr(rule.expr);
    out += fmt::format("        for: {}\n", prometheus_duration(o.pending_override.value_or(rule.pending)));
    out += fmt::format("        labels:\n          severity: {}\n", rule.severity);
    out += "        annotations:\n";
    out += fmt::format("          summary: {}\n", single_quoted(rule.summary));
    out += fmt::format("          description: {}\n", single_quoted(rule.description));
  }
  return out;
}

std::string grafana_dashboard() {
  return build_dashboard().dump(2) + "\n";
}

}  // namespace mw::cli
