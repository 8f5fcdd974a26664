// /metrics: the Prometheus text exposition of a daemon snapshot built in code.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <sstream>

#include "cli/metrics.hpp"
#include "test_support.hpp"

using namespace mw;
using namespace mw::cli;
using namespace mw::engine;

namespace {

const std::string k_ollama_id = "3f1c9a7e5b2d4c6f8a0e1d3b5c7f9a2e4d6b8c0a1e3f5d7b9c2a4e6f8d0b1c3a";
const std::string k_grafana_id = "9b8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b";
constexpr std::uint64_t k_gib = 1ULL << 30;

ContainerSnapshot container(const std::string& id, const std::string& name, const std::string& image) {
  ContainerSnapshot c;
  c.meta.id = id;
  c.meta.name = name;
  c.meta.image = image;
  c.meta.state.running = true;
  c.meta.state.status = "running";
  return c;
}

DaemonSnapshot sample_snapshot() {
  DaemonSnapshot s;
  s.version = "0.6.0";
  s.taken_at_ms = 1'700'000'000'123;
  s.samples_total = 42;
  s.sample_seconds = 0.25;
  s.reserve_bytes = 4 * k_gib;
  s.history_ok = false;

  // Host: no MemFree, no swap lines, PSI without "full".
  MemInfo m;
  m.mem_total = 16 * k_gib;
  m.mem_available = 6 * k_gib;
  m.cached = 3 * k_gib;
  s.status.host.meminfo = m;
  Pressure p;
  p.some = PressureLine{12.34, 2.25, 0.5, 1'234'567};
  s.status.host.pressure = p;
  s.status.host.pressure_supported = true;
  VmStat v;
  v.oom_kill = 3;
  s.status.host.vmstat = v;
  s.status.docker.reachable = true;

  // Containers: an unlimited inference server, and a limited one whose usage is unknown.
  auto ollama = container(k_ollama_id, "ollama", "ollama/ollama:0.5.7");
  ollama.meta.restart_count = 2;
  CgroupMemory om;
  om.usage = 10 * k_gib;
  om.inactive_file = 1 * k_gib;
  om.anon = 8 * k_gib;
  om.file = 2 * k_gib;
  om.swap = 0;
  om.limit = MemoryLimit::unlimited();
  om.oom_kills = 1;
  ollama.memory = om;
  s.status.containers.push_back(ollama);

  auto grafana = container(k_grafana_id, "grafana", "grafana/grafana:10.2.0");
  grafana.meta.memory_limit = 1 * k_gib;
  CgroupMemory gm;
  gm.anon = 300'000'000;
  gm.limit = MemoryLimit::of(1 * k_gib);
  grafana.memory = gm;
  s.status.containers.push_back(grafana);

  // A GPU without a temperature reading.
  s.status.gpu.availability = GpuAvailability::available;
  Gpu gpu;
  gpu.index = 0;
  gpu.name = "NVIDIA H100 80GB HBM3";
  gpu.memory_total = 85'520'809'984;
  gpu.memory_used = 42'000'000'000;
  gpu.utilisation_pct = 37;
  s.status.gpu.gpus.push_back(gpu);

  // Servers: one answering with a loaded model, one on the host whose API did not answer, one not sampled yet.
  ServedServer served;
  served.server.name = "ollama";
  served.server.container_id = k_ollama_id;
  ServerSample sample;
  OllamaModel model;
  model.name = "llama3.1:8b";
  model.size = 6'000'000'000;
  model.size_vram = 5'000'000'000;
  sample.models = std::vector<OllamaModel>{model};
  served.last = sample;
  s.servers.push_back(served);

  ServedServer host_server;
  host_server.server.name = "ollama (host, pid 4242)";
  host_server.server.kind = ServerKind::host_process;
  host_server.server.pid = 4242;
  host_server.last = ServerSample{};
  s.servers.push_back(host_server);

  ServedServer fresh;
  fresh.server.name = "fresh";
  fresh.server.container_id = "0123456789ab";
  s.servers.push_back(fresh);

  Finding bloat;
  bloat.detector = Detector::idle_bloat;
  bloat.severity = Severity::warning;
  bloat.subject = "ollama";
  Finding cache;
  cache.detector = Detector::page_cache;
  cache.severity = Severity::info;
  cache.subject = "ollama";
  s.findings = {bloat, cache};
  s.detectors = {{"ollama", Detector::idle_bloat, Severity::warning},
                 {"ollama", Detector::growth, std::nullopt},
                 {"ollama", Detector::page_cache, Severity::info},
                 {"host", Detector::host_pressure, std::nullopt}};

  s.actions[{FixStep::restart, ActionOutcome::succeeded}] = 1;
  s.actions[{FixStep::unload, ActionOutcome::failed}] = 2;
  s.notifications[{"ops-slack", "sent"}] = 3;

  // The newest benchmark of one model: level 1 complete, level 4 without an e2e p99 nor a throughput; one verdict
  // unknown. Part of the snapshot promtool checks.
  BenchModelFigures bench;
  bench.model = "llama3.1:8b";
  bench.run_id = 12;
  bench.started_at_ms = 1'699'999'000'500;
  bench.load_s = 3.25;
  bench.levels = {{1, 45.5, 0.1, 0.125, 0.25, 1.5, 1.75, 2.0},
                  {4, std::nullopt, 0.3, 0.5, 0.75, 2.5, 3.0, std::nullopt}};
  bench.verdicts = {{"temperature", VerdictOutcome::pass, ""},
                    {"gpu utilisation", VerdictOutcome::fail, ""},
                    {"RAM", VerdictOutcome::unknown, ""}};
  s.bench = {bench};
  return s;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    lines.push_back(line);
  }
  return lines;
}

bool has_line(const std::string& text, const std::string& line) {
  const auto lines = lines_of(text);
  return std::find(lines.begin(), lines.end(), line) != lines.end();
}

// Sample lines (not comments) whose metric name is exactly `family`.
std::vector<std::string> samples_of(const std::string& text, const std::string& family) {
  std::vector<std::string> out;
  for (const auto& line : lines_of(text)) {
    if (line.starts_with(family + " ") || line.starts_with(family + "{")) {
      out.push_back(line);
    }
  }
  return out;
}

}  // namespace

TEST(Metrics, HostValues) {
  const auto text = render_metrics(sample_snapshot());
  for (const auto* line : {
           "memwarden_host_memory_total_bytes 17179869184",
           "memwarden_host_memory_available_bytes 6442450944",
           "memwarden_host_page_cache_bytes 3221225472",
           "memwarden_host_memory_pressure_ratio{kind=\"some\",window=\"10s\"} 0.1234",
           "memwarden_host_memory_pressure_ratio{kind=\"some\",window=\"60s\"} 0.0225",
           "memwarden_host_memory_pressure_ratio{kind=\"some\",window=\"300s\"} 0.005",
           "memwarden_host_memory_pressure_stall_seconds_total{kind=\"some\"} 1.234567",
           "memwarden_host_oom_kills_total 3",
           "memwarden_host_reserve_bytes 4294967296",
       }) {
    EXPECT_TRUE(has_line(text, line)) << line << "\n" << text;
  }
}

TEST(Metrics, MissingHostValuesAreOmittedNotZero) {
  const auto text = render_metrics(sample_snapshot());
  EXPECT_TRUE(samples_of(text, "memwarden_host_memory_free_bytes").empty());
  EXPECT_TRUE(samples_of(text, "memwarden_host_swap_total_bytes").empty());
  EXPECT_TRUE(samples_of(text, "memwarden_host_swap_used_bytes").empty());
  EXPECT_EQ(text.find("kind=\"full\""), std::string::npos);
  // The HELP and TYPE lines stay, so a reader sees the family exists.
  EXPECT_TRUE(has_line(text, "# TYPE memwarden_host_swap_used_bytes gauge"));

  auto s = sample_snapshot();
  s.status.host = HostSnapshot{};
  const auto bare = render_metrics(s);
  for (const auto* family : {"memwarden_host_memory_total_bytes", "memwarden_host_memory_available_bytes",
                             "memwarden_host_page_cache_bytes", "memwarden_host_memory_pressure_ratio",
                             "memwarden_host_memory_pressure_stall_seconds_total", "memwarden_host_oom_kills_total"}) {
    EXPECT_TRUE(samples_of(bare, family).empty()) << family;
  }
  EXPECT_TRUE(has_line(bare, "memwarden_host_reserve_bytes 4294967296"));
}

TEST(Metrics, Containers) {
  const auto text = render_metrics(sample_snapshot());
  for (const auto* line : {
           "memwarden_container_info{name=\"ollama\",id=\"3f1c9a7e5b2d\",image=\"ollama/ollama:0.5.7\","
           "inference_server=\"true\"} 1",
           "memwarden_container_info{name=\"grafana\",id=\"9b8a7c6d5e4f\",image=\"grafana/grafana:10.2.0\","
           "inference_server=\"false\"} 1",
           "memwarden_container_working_set_bytes{name=\"ollama\"} 9663676416",
           "memwarden_container_anon_bytes{name=\"ollama\"} 8589934592",
           "memwarden_container_anon_bytes{name=\"grafana\"} 300000000",
           "memwarden_container_cache_bytes{name=\"ollama\"} 2147483648",
           "memwarden_container_usage_bytes{name=\"ollama\"} 10737418240",
           "memwarden_container_swap_bytes{name=\"ollama\"} 0",
           "memwarden_container_memory_limit_bytes{name=\"grafana\"} 1073741824",
           "memwarden_container_memory_unlimited{name=\"ollama\"} 1",
           "memwarden_container_memory_unlimited{name=\"grafana\"} 0",
           "memwarden_container_oom_kills_total{name=\"ollama\"} 1",
           "memwarden_container_restarts_total{name=\"ollama\"} 2",
           "memwarden_container_restarts_total{name=\"grafana\"} 0",
       }) {
    EXPECT_TRUE(has_line(text, line)) << line << "\n" << text;
  }
  // Unknown for grafana: usage, working set, cache, swap, OOM kills. No limit for the unlimited one.
  EXPECT_EQ(samples_of(text, "memwarden_container_usage_bytes").size(), 1U);
  EXPECT_EQ(samples_of(text, "memwarden_container_working_set_bytes").size(), 1U);
  EXPECT_EQ(samples_of(text, "memwarden_container_cache_bytes").size(), 1U);
  EXPECT_EQ(samples_of(text, "memwarden_container_swap_bytes").size(), 1U);
  EXPECT_EQ(samples_of(text, "memwarden_container_oom_kills_total").size(), 1U);
  EXPECT_EQ(samples_of(text, "memwarden_container_memory_limit_bytes").size(), 1U);
}

TEST(Metrics, ContainerLimitFallsBackToTheEngineWhenTheCgroupIsUnreadable) {
  auto s = sample_snapshot();
  s.status.containers[1].memory.reset();
  s.status.containers[0].memory.reset();
  const auto text = render_metrics(s);
  EXPECT_TRUE(has_line(text, "memwarden_container_memory_limit_bytes{name=\"grafana\"} 1073741824"));
  EXPECT_TRUE(has_line(text, "memwarden_container_memory_unlimited{name=\"ollama\"} 1"));
  EXPECT_TRUE(samples_of(text, "memwarden_container_anon_bytes").empty());
  EXPECT_TRUE(samples_of(text, "memwarden_container_oom_kills_total").empty());
}

TEST(Metrics, Gpu) {
  const auto text = render_metrics(sample_snapshot());
  EXPECT_TRUE(has_line(text, "memwarden_gpu_available 1"));
  EXPECT_TRUE(has_line(text, "memwarden_gpu_memory_used_bytes{gpu=\"0\",name=\"NVIDIA H100 80GB HBM3\"} 42000000000"));
  EXPECT_TRUE(has_line(text, "memwarden_gpu_memory_total_bytes{gpu=\"0\",name=\"NVIDIA H100 80GB HBM3\"} 85520809984"));
  EXPECT_TRUE(has_line(text, "memwarden_gpu_utilization_ratio{gpu=\"0\",name=\"NVIDIA H100 80GB HBM3\"} 0.37"));
  EXPECT_TRUE(samples_of(text, "memwarden_gpu_temperature_celsius").empty());

  auto s = sample_snapshot();
  s.status.gpu.gpus[0].temperature_c = 71;
  EXPECT_TRUE(
      has_line(render_metrics(s), "memwarden_gpu_temperature_celsius{gpu=\"0\",name=\"NVIDIA H100 80GB HBM3\"} 71"));

  s.status.gpu = GpuReport{GpuAvailability::no_library, "libnvidia-ml.so.1: not found", {}};
  const auto none = render_metrics(s);
  EXPECT_TRUE(has_line(none, "memwarden_gpu_available 0"));
  EXPECT_TRUE(samples_of(none, "memwarden_gpu_memory_used_bytes").empty());
}

TEST(Metrics, AServerBeingFixedIsNeitherUpNorDown) {
  auto s = sample_snapshot();
  EXPECT_TRUE(has_line(render_metrics(s), "memwarden_server_fix_in_progress{server=\"ollama\"} 0"));
  s.servers[0].fixing = true;  // a fix job owns its API: the round did not ask it
  s.servers[0].last->models.reset();
  const auto text = render_metrics(s);
  EXPECT_TRUE(has_line(text, "memwarden_server_fix_in_progress{server=\"ollama\"} 1"));
  for (const auto& line : samples_of(text, "memwarden_server_up")) {
    EXPECT_EQ(line.find("server=\"ollama\""), std::string::npos) << line;
  }
  EXPECT_TRUE(has_line(text, "memwarden_server_up{server=\"ollama (host, pid 4242)\"} 0")) << "the others as before";
  EXPECT_TRUE(samples_of(text, "memwarden_model_size_bytes").empty());
}

TEST(Metrics, ServersAndModels) {
  const auto text = render_metrics(sample_snapshot());
  EXPECT_TRUE(has_line(text, "memwarden_server_up{server=\"ollama\"} 1"));
  EXPECT_TRUE(has_line(text, "memwarden_server_up{server=\"ollama (host, pid 4242)\"} 0"));
  EXPECT_EQ(samples_of(text, "memwarden_server_up").size(), 2U);  // "fresh" was never sampled: unknown
  EXPECT_TRUE(has_line(text, "memwarden_model_size_bytes{server=\"ollama\",model=\"llama3.1:8b\"} 6000000000"));
  EXPECT_TRUE(has_line(text, "memwarden_model_vram_bytes{server=\"ollama\",model=\"llama3.1:8b\"} 5000000000"));
  EXPECT_EQ(samples_of(text, "memwarden_model_size_bytes").size(), 1U);
}

TEST(Metrics, DetectorsAndFindings) {
  const auto text = render_metrics(sample_snapshot());
  EXPECT_TRUE(has_line(text, "memwarden_detector_state{subject=\"ollama\",detector=\"idle-bloat\"} 2"));
  EXPECT_TRUE(has_line(text, "memwarden_detector_state{subject=\"ollama\",detector=\"growth\"} 0"));
  EXPECT_TRUE(has_line(text, "memwarden_detector_state{subject=\"ollama\",detector=\"page-cache\"} 1"));
  EXPECT_TRUE(has_line(text, "memwarden_detector_state{subject=\"host\",detector=\"host-pressure\"} 0"));
  EXPECT_TRUE(has_line(text, "memwarden_findings{severity=\"info\"} 1"));
  EXPECT_TRUE(has_line(text, "memwarden_findings{severity=\"warning\"} 1"));
  EXPECT_TRUE(has_line(text, "memwarden_findings{severity=\"critical\"} 0"));

  auto s = sample_snapshot();
  s.detectors[2].severity = Severity::critical;
  EXPECT_TRUE(has_line(render_metrics(s), "memwarden_detector_state{subject=\"ollama\",detector=\"page-cache\"} 3"));
}

TEST(Metrics, ActionsNotificationsAndSelf) {
  const auto text = render_metrics(sample_snapshot());
  EXPECT_TRUE(has_line(text, "memwarden_actions_total{kind=\"restart\",outcome=\"succeeded\"} 1"));
  EXPECT_TRUE(has_line(text, "memwarden_actions_total{kind=\"unload\",outcome=\"failed\"} 2"));
  // Known kinds and outcomes start at 0, so the first failure is an increase() for the alert rules.
  EXPECT_TRUE(has_line(text, "memwarden_actions_total{kind=\"restart\",outcome=\"failed\"} 0"));
  EXPECT_TRUE(has_line(text, "memwarden_notifications_total{target=\"ops-slack\",result=\"sent\"} 3"));
  EXPECT_TRUE(has_line(text, "memwarden_build_info{version=\"0.6.0\"} 1"));
  EXPECT_TRUE(has_line(text, "memwarden_docker_up 1"));
  EXPECT_TRUE(has_line(text, "memwarden_samples_total 42"));
  EXPECT_TRUE(has_line(text, "memwarden_sample_duration_seconds 0.25"));
  EXPECT_TRUE(has_line(text, "memwarden_last_sample_timestamp_seconds 1700000000.123"));
  EXPECT_TRUE(has_line(text, "memwarden_history_ok 0"));
}

TEST(Metrics, NewestBenchmarkOfEachModel) {
  const auto text = render_metrics(sample_snapshot());
  EXPECT_EQ(samples_of(text, "memwarden_bench_last_run_timestamp_seconds"),
            std::vector<std::string>{"memwarden_bench_last_run_timestamp_seconds{model=\"llama3.1:8b\"} 1699999000.5"});
  EXPECT_EQ(samples_of(text, "memwarden_bench_output_tokens_per_second"),
            std::vector<std::string>{
                "memwarden_bench_output_tokens_per_second{model=\"llama3.1:8b\",concurrency=\"1\"} 45.5"});
  EXPECT_EQ(samples_of(text, "memwarden_bench_ttft_seconds"),
            (std::vector<std::string>{
                "memwarden_bench_ttft_seconds{model=\"llama3.1:8b\",concurrency=\"1\",quantile=\"0.5\"} 0.1",
                "memwarden_bench_ttft_seconds{model=\"llama3.1:8b\",concurrency=\"1\",quantile=\"0.9\"} 0.125",
                "memwarden_bench_ttft_seconds{model=\"llama3.1:8b\",concurrency=\"1\",quantile=\"0.99\"} 0.25",
                "memwarden_bench_ttft_seconds{model=\"llama3.1:8b\",concurrency=\"4\",quantile=\"0.5\"} 0.3",
                "memwarden_bench_ttft_seconds{model=\"llama3.1:8b\",concurrency=\"4\",quantile=\"0.9\"} 0.5",
                "memwarden_bench_ttft_seconds{model=\"llama3.1:8b\",concurrency=\"4\",quantile=\"0.99\"} 0.75"}));
  // Missing figures have no line: no e2e p99 at concurrency 4.
  EXPECT_EQ(samples_of(text, "memwarden_bench_e2e_seconds"),
            (std::vector<std::string>{
                "memwarden_bench_e2e_seconds{model=\"llama3.1:8b\",concurrency=\"1\",quantile=\"0.5\"} 1.5",
                "memwarden_bench_e2e_seconds{model=\"llama3.1:8b\",concurrency=\"1\",quantile=\"0.9\"} 1.75",
                "memwarden_bench_e2e_seconds{model=\"llama3.1:8b\",concurrency=\"1\",quantile=\"0.99\"} 2",
                "memwarden_bench_e2e_seconds{model=\"llama3.1:8b\",concurrency=\"4\",quantile=\"0.5\"} 2.5",
                "memwarden_bench_e2e_seconds{model=\"llama3.1:8b\",concurrency=\"4\",quantile=\"0.9\"} 3"}));
  EXPECT_EQ(samples_of(text, "memwarden_bench_load_seconds"),
            std::vector<std::string>{"memwarden_bench_load_seconds{model=\"llama3.1:8b\"} 3.25"});
  // Unknown verdicts have no line.
  EXPECT_EQ(
      samples_of(text, "memwarden_bench_verdict"),
      (std::vector<std::string>{"memwarden_bench_verdict{model=\"llama3.1:8b\",criterion=\"temperature\"} 1",
                                "memwarden_bench_verdict{model=\"llama3.1:8b\",criterion=\"gpu utilisation\"} 0"}));
}

TEST(Metrics, BenchmarkWithoutFiguresHasOnlyItsTimeAndModelNamesAreEscaped) {
  DaemonSnapshot s;
  BenchModelFigures bench;
  bench.model = "odd\"name\n";
  bench.started_at_ms = 1'000;
  bench.levels.resize(1);
  s.bench = {bench};
  const auto text = render_metrics(s);
  EXPECT_TRUE(has_line(text, R"(memwarden_bench_last_run_timestamp_seconds{model="odd\"name\n"} 1)")) << text;
  for (const auto* family :
       {"memwarden_bench_output_tokens_per_second", "memwarden_bench_ttft_seconds", "memwarden_bench_e2e_seconds",
        "memwarden_bench_load_seconds", "memwarden_bench_verdict"}) {
    EXPECT_TRUE(samples_of(text, family).empty()) << family;
  }
}

TEST(Metrics, BeforeTheFirstSampleOnlyWhatIsKnown) {
  DaemonSnapshot s;
  s.version = "0.6.0";
  s.reserve_bytes = 4 * k_gib;
  const auto text = render_metrics(s);
  EXPECT_TRUE(has_line(text, "memwarden_samples_total 0"));
  EXPECT_TRUE(has_line(text, "memwarden_build_info{version=\"0.6.0\"} 1"));
  for (const auto* family : {"memwarden_docker_up", "memwarden_history_ok", "memwarden_gpu_available",
                             "memwarden_sample_duration_seconds", "memwarden_last_sample_timestamp_seconds"}) {
    EXPECT_TRUE(samples_of(text, family).empty()) << family;
  }
}

TEST(Metrics, LabelValuesAreEscaped) {
  auto s = sample_snapshot();
  s.version = "1.0 \"beta\"\nC:\\build";
  s.servers[0].last->models->at(0).name = "weird\\\"model\"\n";
  const auto text = render_metrics(s);
  EXPECT_TRUE(has_line(text, R"(memwarden_build_info{version="1.0 \"beta\"\nC:\\build"} 1)")) << text;
  EXPECT_TRUE(has_line(text, R"(memwarden_model_size_bytes{server="ollama",model="weird\\\"model\"\n"} 6000000000)"));
}

TEST(Metrics, EveryFamilyHasHelpAndTypeAndItsSamplesGrouped) {
  const auto text = render_metrics(sample_snapshot());
  const auto& families = metric_families();
  std::set<std::string> unique(families.begin(), families.end());
  EXPECT_EQ(unique.size(), families.size());

  std::vector<std::string> typed;  // families in the order of their TYPE lines
  std::string current;
  std::set<std::string> with_help;
  for (const auto& line : lines_of(text)) {
    if (line.starts_with("# HELP ")) {
      const auto name = line.substr(7, line.find(' ', 7) - 7);
      with_help.insert(name);
      continue;
    }
    if (line.starts_with("# TYPE ")) {
      std::istringstream in(line.substr(7));
      std::string type;
      in >> current >> type;
      // summary: the quantiles of a benchmark level, as memwarden bench computed them (no _sum, no _count).
      EXPECT_TRUE(type == "gauge" || type == "counter" ||
                  (type == "summary" && current.starts_with("memwarden_bench_")))
          << line;
      EXPECT_EQ(type == "counter", current.ends_with("_total")) << line;
      EXPECT_TRUE(with_help.contains(current)) << "TYPE before HELP: " << line;
      typed.push_back(current);
      continue;
    }
    const auto name = line.substr(0, line.find_first_of("{ "));
    EXPECT_EQ(name, current) << "sample outside its family: " << line;
  }
  EXPECT_EQ(typed, families);
  for (const auto& family : families) {
    EXPECT_TRUE(family.starts_with("memwarden_")) << family;
  }
}

TEST(Metrics, PromtoolAcceptsTheExposition) {
  if (test::run_process({"promtool", "--version"}).exit_code != 0) {
    GTEST_SKIP() << "promtool is not installed";
  }
  test::TempDir dir;
  dir.write("metrics.txt", render_metrics(sample_snapshot()));
  const auto result = test::run_process(
      {"sh", "-c", "exec promtool check metrics < \"$1\"", "sh", (dir.path() / "metrics.txt").string()});
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
  EXPECT_EQ(result.out + result.err, "") << "promtool lint findings";
}

TEST(Metrics, RepeatedModelNamesMakeOneSeriesAndPromtoolAcceptsIt) {
  auto s = sample_snapshot();
  auto& models = *s.servers.front().last->models;
  const auto first = models.front();
  for (int i = 0; i < 3; ++i) {
    auto again = first;
    again.size = first.size + static_cast<std::uint64_t>(i) + 1;
    models.push_back(again);
  }
  const auto text = render_metrics(s);
  const auto series = samples_of(text, "memwarden_model_size_bytes");
  ASSERT_EQ(series.size(), 1U);
  EXPECT_EQ(series.front(), "memwarden_model_size_bytes{server=\"ollama\",model=\"llama3.1:8b\"} 6000000000");
  if (test::run_process({"promtool", "--version"}).exit_code != 0) {
    GTEST_SKIP() << "promtool is not installed";
  }
  test::TempDir dir;
  dir.write("metrics.txt", text);
  const auto result = test::run_process(
      {"sh", "-c", "exec promtool check metrics < \"$1\"", "sh", (dir.path() / "metrics.txt").string()});
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
}

TEST(Metrics, FoldedModelsAreOneStableSeries) {
  auto s = sample_snapshot();
  auto& models = *s.servers.front().last->models;
  for (int i = 0; i < 40; ++i) {
    OllamaModel m;
    m.name = fmt::format("flood-{}:latest", i);
    m.size = 1000;
    models.push_back(m);
  }
  EXPECT_EQ(fold_models(models), 34U);  // 41 models: 7 kept, 34 folded into one
  const auto text = render_metrics(s);
  EXPECT_EQ(samples_of(text, "memwarden_model_size_bytes").size(), k_max_models_kept);
  EXPECT_TRUE(has_line(text, "memwarden_model_size_bytes{server=\"ollama\",model=\"(other models)\"} 34000"));
}
