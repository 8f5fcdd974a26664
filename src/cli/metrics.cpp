#include "cli/metrics.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "adapters/journal.hpp"

namespace mw::cli {

using engine::DaemonSnapshot;

namespace {

struct FamilySpec {
  const char* name;
  const char* type;  // gauge | counter | summary (quantiles only: a benchmark level's, computed by memwarden bench)
  const char* help;
};

// The single source of every family's name, type and help; the output follows this order.
constexpr std::array k_families{
    // host
    FamilySpec{"memwarden_host_memory_total_bytes", "gauge", "MemTotal from /proc/meminfo."},
    FamilySpec{"memwarden_host_memory_available_bytes", "gauge", "MemAvailable from /proc/meminfo."},
    FamilySpec{"memwarden_host_memory_free_bytes", "gauge", "MemFree from /proc/meminfo."},
    FamilySpec{"memwarden_host_page_cache_bytes", "gauge", "Cached from /proc/meminfo (page cache, includes shmem)."},
    FamilySpec{"memwarden_host_swap_total_bytes", "gauge", "SwapTotal from /proc/meminfo."},
    FamilySpec{"memwarden_host_swap_used_bytes", "gauge", "SwapTotal - SwapFree from /proc/meminfo."},
    FamilySpec{"memwarden_host_memory_pressure_ratio", "gauge",
               "Share of wall time tasks stalled on memory (PSI /proc/pressure/memory), by kind and averaging window."},
    FamilySpec{"memwarden_host_memory_pressure_stall_seconds_total", "counter",
               "Cumulative time tasks stalled on memory (PSI total), by kind."},
    FamilySpec{"memwarden_host_oom_kills_total", "counter",
               "OOM kills on the host since boot (oom_kill in /proc/vmstat)."},
    FamilySpec{"memwarden_host_reserve_bytes", "gauge",
               "Configured RAM reserve that available memory should stay above."},
    // containers
    FamilySpec{"memwarden_container_info", "gauge",
               "A container memwarden sees (always 1): short id, image, and whether it is an inference server."},
    FamilySpec{"memwarden_container_working_set_bytes", "gauge",
               "Container memory usage minus inactive page cache (what docker stats shows)."},
    FamilySpec{"memwarden_container_anon_bytes", "gauge", "Container anonymous memory (cgroup anon / total_rss)."},
    FamilySpec{"memwarden_container_cache_bytes", "gauge", "Container page cache (cgroup file / total_cache)."},
    FamilySpec{"memwarden_container_usage_bytes", "gauge",
               "Everything charged to the container's cgroup (memory.current / memory.usage_in_bytes)."},
    FamilySpec{"memwarden_container_swap_bytes", "gauge", "Container memory in swap."},
    FamilySpec{"memwarden_container_memory_limit_bytes", "gauge", "Container memory limit; absent when unlimited."},
    FamilySpec{"memwarden_container_memory_unlimited", "gauge",
               "1 when the container has no memory limit, 0 when it has one."},
    FamilySpec{"memwarden_container_oom_kills_total", "counter", "OOM kills inside the container's cgroup."},
    FamilySpec{"memwarden_container_restarts_total", "counter",
               "Restarts of the container by the engine (RestartCount)."},
    // GPU
    FamilySpec{"memwarden_gpu_available", "gauge", "1 when NVML answered, 0 when there is no driver or NVML failed."},
    FamilySpec{"memwarden_gpu_memory_used_bytes", "gauge", "GPU memory in use, including the driver's reservation."},
    FamilySpec{"memwarden_gpu_memory_total_bytes", "gauge", "GPU memory in total."},
    FamilySpec{"memwarden_gpu_temperature_celsius", "gauge", "GPU core temperature."},
    FamilySpec{"memwarden_gpu_utilization_ratio", "gauge", "Share of the last sample period the GPU was busy."},
    // inference servers and their models
    FamilySpec{"memwarden_server_up", "gauge",
               "1 when the inference server's API answered the last sample, 0 when not; absent while a fix works on "
               "it."},
    FamilySpec{"memwarden_server_fix_in_progress", "gauge",
               "1 while a fix job works on the server (its API is left to the job), else 0."},
    FamilySpec{"memwarden_model_size_bytes", "gauge", "Memory a loaded model takes, RAM and VRAM (/api/ps size)."},
    FamilySpec{"memwarden_model_vram_bytes", "gauge", "Part of a loaded model held in VRAM (/api/ps size_vram)."},
    // detectors
    FamilySpec{"memwarden_detector_state", "gauge",
               "A detector's verdict on a subject: 0 none, 1 info, 2 warning, 3 critical."},
    FamilySpec{"memwarden_findings", "gauge", "Active findings, by severity."},
    // actions
    FamilySpec{"memwarden_actions_total", "counter", "Remedial actions since the daemon started, by kind and outcome."},
    FamilySpec{"memwarden_notifications_total", "counter",
               "Notifications since the daemon started, by target and result."},
    // benchmarks (memwarden bench): each model's newest run in the history database
    FamilySpec{"memwarden_bench_last_run_timestamp_seconds", "gauge",
               "Unix time the newest benchmark run that measured the model started."},
    FamilySpec{"memwarden_bench_output_tokens_per_second", "gauge",
               "Output tokens per second of all requests of a concurrency level together, in the model's newest "
               "benchmark run."},
    FamilySpec{"memwarden_bench_ttft_seconds", "summary",
               "Time to first token of a concurrency level in the model's newest benchmark run, by quantile."},
    FamilySpec{"memwarden_bench_e2e_seconds", "summary",
               "End-to-end request latency of a concurrency level in the model's newest benchmark run, by quantile."},
    FamilySpec{"memwarden_bench_load_seconds", "gauge", "Cold load time of the model in its newest benchmark run."},
    FamilySpec{"memwarden_bench_verdict", "gauge",
               "A criterion of the model's newest benchmark run: 1 pass, 0 fail; absent when unknown."},
    // self
    FamilySpec{"memwarden_build_info", "gauge", "memwarden's version (always 1)."},
    FamilySpec{"memwarden_docker_up", "gauge", "1 when the Docker engine answered, 0 when not."},
    FamilySpec{"memwarden_samples_total", "counter", "Samples taken since the daemon started."},
    FamilySpec{"memwarden_sample_duration_seconds", "gauge", "How long the last sample took."},
    FamilySpec{"memwarden_last_sample_timestamp_seconds", "gauge", "Unix time of the last sample."},
    FamilySpec{"memwarden_history_ok", "gauge", "1 when the history store accepted the last sample, 0 when not."},
};

// Counters the alert rules take increase() of: present from the start so the first event is an increase.
constexpr std::array k_action_kinds{FixStep::unload, FixStep::restart};
constexpr std::array k_action_outcomes{ActionOutcome::succeeded, ActionOutcome::failed, ActionOutcome::dry_run,
                                       ActionOutcome::refused, ActionOutcome::interrupted};

using Labels = std::vector<std::pair<std::string_view, std::string_view>>;

void append_escaped(std::string& out, std::string_view value) {
  for (const char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
}

std::string format_value(std::uint64_t v) {
  return fmt::format("{}", v);
}

std::string format_value(double v) {
  if (std::isnan(v)) {
    return "NaN";
  }
  if (std::isinf(v)) {
    return v > 0 ? "+Inf" : "-Inf";
  }
  return fmt::format("{}", v);
}

// A percentage with two decimals (PSI) as a ratio, without binary noise: 12.34 -> 0.1234.
double percent_to_ratio(double pct) {
  return std::round(pct * 100.0) / 10000.0;
}

class Exposition {
 public:
  void add(std::string_view family, const Labels& labels, const std::string& value) {
    for (std::size_t i = 0; i < k_families.size(); ++i) {
      if (family == k_families[i].name) {
        std::string series;
        if (!labels.empty()) {
          series += '{';
          bool first = true;
          for (const auto& [key, label_value] : labels) {
            if (!first) {
              series += ',';
            }
            first = false;
            series += key;
            series += "=\"";
            append_escaped(series, label_value);
            series += '"';
          }
          series += '}';
        }
        // A label set seen before (a server that lists one model twice) would make Prometheus reject
        // the whole scrape: the first one stands.
        if (!m_seen[i].insert(series).second) {
          return;
        }
        auto& line = m_lines[i];
        line += family;
        line += series;
        line += ' ';
        line += value;
        line += '\n';
        return;
      }
    }
  }
  void add(std::string_view family, const Labels& labels, std::uint64_t value) {
    add(family, labels, format_value(value));
  }
  void add(std::string_view family, const Labels& labels, double value) { add(family, labels, format_value(value)); }
  void add(std::string_view family, const Labels& labels, bool value) {
    add(family, labels, std::uint64_t{value ? 1U : 0U});
  }
  void add(std::string_view family, const Labels& labels, const std::optional<std::uint64_t>& value) {
    if (value) {
      add(family, labels, *value);
    }
  }
  void add(std::string_view family, const Labels& labels, const std::optional<double>& value) {
    if (value && std::isfinite(*value)) {
      add(family, labels, *value);
    }
  }

  [[nodiscard]] std::string str() const {
    std::string out;
    for (std::size_t i = 0; i < k_families.size(); ++i) {
      out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", k_families[i].name, k_families[i].help, k_families[i].name,
                         k_families[i].type);
      out += m_lines[i];
    }
    return out;
  }

 private:
  std::array<std::string, k_families.size()> m_lines;
  std::array<std::set<std::string>, k_families.size()> m_seen;  // label sets written, per family
};

void render_host(const DaemonSnapshot& s, Exposition& e) {
  const auto& host = s.status.host;
  if (host.meminfo) {
    const auto& m = *host.meminfo;
    e.add("memwarden_host_memory_total_bytes", {}, m.mem_total);
    e.add("memwarden_host_memory_available_bytes", {}, m.mem_available);
    e.add("memwarden_host_memory_free_bytes", {}, m.mem_free);
    e.add("memwarden_host_page_cache_bytes", {}, m.cached);
    e.add("memwarden_host_swap_total_bytes", {}, m.swap_total);
    e.add("memwarden_host_swap_used_bytes", {}, m.swap_used());
  }
  if (host.pressure) {
    const std::pair<const char*, const std::optional<PressureLine>*> kinds[] = {{"some", &host.pressure->some},
                                                                                {"full", &host.pressure->full}};
    for (const auto& [kind, line] : kinds) {
      if (!line->has_value()) {
        continue;
      }
      const auto& l = **line;
      e.add("memwarden_host_memory_pressure_ratio", {{"kind", kind}, {"window", "10s"}}, percent_to_ratio(l.avg10));
      e.add("memwarden_host_memory_pressure_ratio", {{"kind", kind}, {"window", "60s"}}, percent_to_ratio(l.avg60));
      e.add("memwarden_host_memory_pressure_ratio", {{"kind", kind}, {"window", "300s"}}, percent_to_ratio(l.avg300));
      e.add("memwarden_host_memory_pressure_stall_seconds_total", {{"kind", kind}},
            static_cast<double>(l.total_us) / 1e6);
    }
  }
  if (host.vmstat) {
    e.add("memwarden_host_oom_kills_total", {}, host.vmstat->oom_kill);
  }
  e.add("memwarden_host_reserve_bytes", {}, s.reserve_bytes);
}

bool is_inference_server(const DaemonSnapshot& s, const std::string& container_id) {
  for (const auto& served : s.servers) {
    if (served.server.kind == ServerKind::container && !container_id.empty() &&
        served.server.container_id == container_id) {
      return true;
    }
  }
  return false;
}

void render_containers(const DaemonSnapshot& s, Exposition& e) {
  for (const auto& c : s.status.containers) {
    const auto& meta = c.meta;
    const Labels name{{"name", meta.name}};
    const std::string short_id = meta.id.substr(0, 12);
    e.add("memwarden_container_info",
          {{"name", meta.name},
           {"id", short_id},
           {"image", meta.image},
           {"inference_server", is_inference_server(s, meta.id) ? "true" : "false"}},
          std::uint64_t{1});

    // The cgroup's limit is what the kernel enforces; the engine's HostConfig.Memory stands in when unreadable.
    MemoryLimit limit = meta.memory_limit ? MemoryLimit::of(*meta.memory_limit) : MemoryLimit::unlimited();
    if (c.memory) {
      const auto& m = *c.memory;
      e.add("memwarden_container_working_set_bytes", name, m.working_set());
      e.add("memwarden_container_anon_bytes", name, m.anon);
      e.add("memwarden_container_cache_bytes", name, m.file);
      e.add("memwarden_container_usage_bytes", name, m.usage);
      e.add("memwarden_container_swap_bytes", name, m.swap);
      e.add("memwarden_container_oom_kills_total", name, m.oom_kills);
      if (m.limit) {
        limit = *m.limit;
      }
    }
    e.add("memwarden_container_memory_limit_bytes", name, limit.bytes);
    e.add("memwarden_container_memory_unlimited", name, limit.is_unlimited());
    e.add("memwarden_container_restarts_total", name,
          static_cast<std::uint64_t>(std::max<std::int64_t>(0, meta.restart_count)));
  }
}

void render_gpus(const DaemonSnapshot& s, Exposition& e) {
  if (s.samples_total > 0) {  // before the first sample nobody has asked NVML yet
    e.add("memwarden_gpu_available", {}, s.status.gpu.availability == GpuAvailability::available);
  }
  for (const auto& gpu : s.status.gpu.gpus) {
    const std::string index = std::to_string(gpu.index);
    const Labels labels{{"gpu", index}, {"name", gpu.name}};
    e.add("memwarden_gpu_memory_used_bytes", labels, gpu.memory_used);
    e.add("memwarden_gpu_memory_total_bytes", labels, gpu.memory_total);
    if (gpu.temperature_c) {
      e.add("memwarden_gpu_temperature_celsius", labels, std::uint64_t{*gpu.temperature_c});
    }
    if (gpu.utilisation_pct) {
      e.add("memwarden_gpu_utilization_ratio", labels, static_cast<double>(*gpu.utilisation_pct) / 100.0);
    }
  }
}

void render_servers(const DaemonSnapshot& s, Exposition& e) {
  for (const auto& served : s.servers) {
    if (!served.last) {
      continue;  // not sampled yet: unknown, not down
    }
    const Labels server{{"server", served.server.name}};
    e.add("memwarden_server_fix_in_progress", server, served.fixing);
    if (served.fixing) {
      continue;  // not asked: neither up nor down, and its models unknown
    }
    e.add("memwarden_server_up", server, served.last->models.has_value());
    if (!served.last->models) {
      continue;
    }
    for (const auto& model : *served.last->models) {
      const Labels labels{{"server", served.server.name}, {"model", model.name.empty() ? model.model : model.name}};
      e.add("memwarden_model_size_bytes", labels, model.size);
      e.add("memwarden_model_vram_bytes", labels, model.size_vram);
    }
  }
}

std::uint64_t severity_level(const std::optional<Severity>& severity) {
  if (!severity) {
    return 0;
  }
  switch (*severity) {
    case Severity::info:
      return 1;
    case Severity::warning:
      return 2;
    case Severity::critical:
      return 3;
  }
  return 0;
}

void render_detectors(const DaemonSnapshot& s, Exposition& e) {
  for (const auto& d : s.detectors) {
    e.add("memwarden_detector_state", {{"subject", d.subject}, {"detector", to_string(d.detector)}},
          severity_level(d.severity));
  }
  for (const auto severity : {Severity::info, Severity::warning, Severity::critical}) {
    std::uint64_t count = 0;
    for (const auto& f : s.findings) {
      count += f.severity == severity ? 1U : 0U;
    }
    e.add("memwarden_findings", {{"severity", to_string(severity)}}, count);
  }
}

void render_actions(const DaemonSnapshot& s, Exposition& e) {
  auto actions = s.actions;
  for (const auto kind : k_action_kinds) {
    for (const auto outcome : k_action_outcomes) {
      actions.try_emplace({kind, outcome}, 0);
    }
  }
  for (const auto& [key, count] : actions) {
    e.add("memwarden_actions_total", {{"kind", to_string(key.first)}, {"outcome", to_string(key.second)}}, count);
  }
  for (const auto& [key, count] : s.notifications) {
    e.add("memwarden_notifications_total", {{"target", key.first}, {"result", key.second}}, count);
  }
}

void render_bench(const DaemonSnapshot& s, Exposition& e) {
  for (const auto& m : s.bench) {
    const Labels model{{"model", m.model}};
    e.add("memwarden_bench_last_run_timestamp_seconds", model, static_cast<double>(m.started_at_ms) / 1000.0);
    for (const auto& l : m.levels) {
      const std::string c = std::to_string(l.concurrency);
      e.add("memwarden_bench_output_tokens_per_second", {{"model", m.model}, {"concurrency", c}},
            l.output_tokens_per_s);
      const std::pair<const char*, std::pair<const std::optional<double>*, const std::optional<double>*>> quantiles[] =
          {{"0.5", {&l.ttft_p50_s, &l.e2e_p50_s}},
           {"0.9", {&l.ttft_p90_s, &l.e2e_p90_s}},
           {"0.99", {&l.ttft_p99_s, &l.e2e_p99_s}}};
      for (const auto& [q, figures] : quantiles) {
        const Labels labels{{"model", m.model}, {"concurrency", c}, {"quantile", q}};
        e.add("memwarden_bench_ttft_seconds", labels, *figures.first);
        e.add("memwarden_bench_e2e_seconds", labels, *figures.second);
      }
    }
    e.add("memwarden_bench_load_seconds", model, m.load_s);
    for (const auto& v : m.verdicts) {
      if (v.outcome != VerdictOutcome::unknown) {
        e.add("memwarden_bench_verdict", {{"model", m.model}, {"criterion", v.criterion}},
              v.outcome == VerdictOutcome::pass);
      }
    }
  }
}

void render_self(const DaemonSnapshot& s, Exposition& e) {
  e.add("memwarden_build_info", {{"version", s.version}}, std::uint64_t{1});
  e.add("memwarden_samples_total", {}, s.samples_total);
  if (s.samples_total > 0) {  // before the first sample these are unknown
    e.add("memwarden_docker_up", {}, s.status.docker.reachable);
    e.add("memwarden_sample_duration_seconds", {}, s.sample_seconds);
    if (s.taken_at_ms > 0) {
      e.add("memwarden_last_sample_timestamp_seconds", {}, static_cast<double>(s.taken_at_ms) / 1000.0);
    }
    e.add("memwarden_history_ok", {}, s.history_ok);
  }
}

}  // namespace

std::string render_metrics(const DaemonSnapshot& s) {
  Exposition e;
  render_host(s, e);
  render_containers(s, e);
  render_gpus(s, e);
  render_servers(s, e);
  render_detectors(s, e);
  render_actions(s, e);
  render_bench(s, e);
  render_self(s, e);
  return e.str();
}

const std::vector<std::string>& metric_families() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    out.reserve(k_families.size());
    for (const auto& f : k_families) {
      out.emplace_back(f.name);
    }
    return out;
  }();
  return names;
}

}  // namespace mw::cli
