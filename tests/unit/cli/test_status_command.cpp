// collect_status end to end on fixture host trees, with a fake Docker engine
// on a Unix socket serving JSON shaped like (or captured from) the real one.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/status.hpp"
#include "core/bytes.hpp"
#include "test_support.hpp"

using namespace mw;
using namespace mw::cli;
using namespace mw::engine;
using mw::test::FakeHttpServer;
using mw::test::TempDir;
using nlohmann::json;

namespace {

const std::string k_ollama_id = "3f1c9a7e5b2d4c6f8a0e1d3b5c7f9a2e4d6b8c0a1e3f5d7b9c2a4e6f8d0b1c3a";
const std::string k_grafana_id = "9b8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b";

json inspect_like(const std::string& id, const std::string& name, const std::string& image, std::int64_t pid,
                  std::int64_t memory) {
  auto doc = json::parse(test::read_fixture("docker/inspect-unlimited.json"));
  doc["Id"] = id;
  doc["Name"] = "/" + name;
  doc["Config"]["Image"] = image;
  doc["State"]["Pid"] = pid;
  doc["HostConfig"]["Memory"] = memory;
  return doc;
}

// An engine that knows the given containers (inspect documents).
class FakeEngine {
 public:
  FakeEngine(const TempDir& dir, std::vector<json> containers)
      : m_containers(std::move(containers)),
        m_server(dir.path() / "docker.sock",
                 [this](const std::string& method, const std::string& path) { return reply(method, path); }) {}
  [[nodiscard]] std::string address() const { return m_server.address(); }

 private:
  FakeHttpServer::Reply reply(const std::string&, const std::string& path) {
    if (path == "/version") {
      return {200, test::read_fixture("docker/version-20.10.json")};
    }
    if (path.starts_with("/v1.41/containers/json")) {
      json list = json::array();
      for (const auto& c : m_containers) {
        list.push_back(
            {{"Id", c["Id"]}, {"Names", {c["Name"]}}, {"Image", c["Config"]["Image"]}, {"State", "running"}});
      }
      return {200, list.dump()};
    }
    for (const auto& c : m_containers) {
      if (path == "/v1.41/containers/" + c["Id"].get<std::string>() + "/json") {
        return {200, c.dump()};
      }
    }
    return {404, R"({"message":"No such container"})"};
  }

  std::vector<json> m_containers;
  FakeHttpServer m_server;
};

StatusOptions options_for(const std::filesystem::path& root, const std::string& docker_host) {
  StatusOptions o;
  o.root = probes::HostRoot(root);
  o.docker_host = docker_host;
  o.nvml_library = "/nonexistent/libnvidia-ml.so.1";
  return o;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    out.push_back(line);
  }
  return out;
}

void expect_fits_100_columns(const std::string& table) {
  for (const auto& line : lines(table)) {
    if (line.starts_with("  ! ") || line.starts_with("  /") || line.starts_with("            ")) {
      continue;  // warnings, problems and hints are sentences, wrapped by the terminal
    }
    EXPECT_LE(line.size(), 100U) << line;
  }
}

}  // namespace

TEST(StatusCommand, CapturedV1HostWithItsEngine) {
  TempDir dir;
  auto lim = json::parse(test::read_fixture("docker/inspect-limited.json"));
  FakeEngine engine(dir, {lim});
  const auto result = collect_status(options_for(test::fixture_path("hosts/v1-hybrid-cgroupfs"), engine.address()));
  EXPECT_EQ(status_exit_code(result), StatusExit::ok) << render_status_table(result);
  ASSERT_EQ(result.report.containers.size(), 1U);
  const auto& c = result.report.containers[0];
  ASSERT_TRUE(c.memory);
  EXPECT_EQ(c.memory->usage, 319488U);
  EXPECT_EQ(result.cgroup_mode, probes::CgroupMode::hybrid);
  EXPECT_TRUE(result.warnings.empty());
  const auto table = render_status_table(result);
  expect_fits_100_columns(table);
  EXPECT_NE(table.find("lim "), std::string::npos);
  EXPECT_NE(table.find("64.0 MiB"), std::string::npos);
  EXPECT_NE(table.find("CONTAINERS  1 via unix://"), std::string::npos);
  EXPECT_NE(table.find("(API 1.41, cgroup hybrid)"), std::string::npos);
}

TEST(StatusCommand, TheIncidentHostIsObviousAtAGlance) {
  TempDir dir;
  FakeEngine engine(dir, {inspect_like(k_grafana_id, "grafana", "grafana/grafana:11.2.0", 999999, 1LL << 30),
                          inspect_like(k_ollama_id, "ollama-gpu", "ollama/ollama:latest", 4242, 0)});
  const auto result = collect_status(options_for(test::fixture_path("hosts/v2-systemd-incident"), engine.address()));
  EXPECT_EQ(status_exit_code(result), StatusExit::ok) << render_status_table(result);
  ASSERT_EQ(result.report.containers.size(), 2U);
  EXPECT_EQ(result.report.containers[0].meta.name, "ollama-gpu") << "sorted by working set";
  std::vector<std::string> kinds;
  for (const auto& w : result.warnings) {
    kinds.push_back(to_string(w.kind));
  }
  EXPECT_EQ(kinds, (std::vector<std::string>{"swap_in_use", "low_available", "memory_pressure", "unlimited_container",
                                             "oom_killed"}));
  const auto table = render_status_table(result);
  expect_fits_100_columns(table);
  const auto rows = lines(table);
  const auto ollama_row =
      std::find_if(rows.begin(), rows.end(), [](const auto& l) { return l.starts_with("ollama-gpu"); });
  ASSERT_NE(ollama_row, rows.end()) << table;
  EXPECT_NE(ollama_row->find("UNLIMITED"), std::string::npos);
  EXPECT_NE(ollama_row->find("25.1 GiB"), std::string::npos) << "working set = 25.15 GiB - 100 MiB inactive file";
  EXPECT_NE(ollama_row->find("25.0 GiB"), std::string::npos) << "anon";
  EXPECT_NE(table.find("available 1.90 GiB"), std::string::npos) << table;
  EXPECT_NE(table.find("5.50 GiB used of 8.00 GiB"), std::string::npos) << table;
  EXPECT_NE(table.find("full 12.5%"), std::string::npos) << table;

  const auto doc = status_to_json(result);
  EXPECT_EQ(doc["schema"], "memwarden.status/1");
  EXPECT_EQ(doc["cgroup_mode"], "v2");
  EXPECT_EQ(doc["host"]["memory"]["available_bytes"], 1992294ULL * 1024);
  EXPECT_EQ(doc["host"]["memory"]["swap_used_bytes"], (8388604ULL - 2621436ULL) * 1024);
  const auto& ollama = doc["containers"][0];
  EXPECT_EQ(ollama["name"], "ollama-gpu");
  EXPECT_TRUE(ollama["memory"]["limit_bytes"].is_null());
  EXPECT_EQ(ollama["memory"]["unlimited"], true);
  EXPECT_TRUE(ollama["memory_limit_bytes"].is_null());
  EXPECT_EQ(ollama["memory"]["working_set_bytes"], 27004866560ULL - 104857600ULL);
  EXPECT_EQ(ollama["memory"]["swap_bytes"], 5905580032ULL);
  EXPECT_TRUE(ollama["advised_limit_bytes"].is_null()) << "no API address: no plan, and no number invented";
  EXPECT_NE(ollama["advised_limit_basis"].get<std::string>().find("no API address"), std::string::npos)
      << ollama["advised_limit_basis"];
  const auto& grafana = doc["containers"][1];
  EXPECT_TRUE(grafana["advised_limit_bytes"].is_null()) << "it has a limit";
  EXPECT_TRUE(grafana["advised_limit_basis"].is_null());
  EXPECT_EQ(grafana["memory"]["limit_bytes"], 1ULL << 30);
  EXPECT_EQ(grafana["memory"]["oom_kills"], 1);
  EXPECT_EQ(doc["gpus"]["status"], "no_driver");
  EXPECT_TRUE(doc["problems"].empty());
}

TEST(StatusCommand, AnUnlimitedServerIsAdvisedWhatOptimizeWouldSet) {
  TempDir dir;
  FakeEngine engine(dir, {inspect_like(k_grafana_id, "grafana", "grafana/grafana:11.2.0", 999999, 1LL << 30),
                          inspect_like(k_ollama_id, "ollama-gpu", "ollama/ollama:latest", 4242, 0)});
  auto options = options_for(test::fixture_path("hosts/v2-systemd-incident"), engine.address());
  int plans = 0;
  options.plan_limit = [&plans](const ContainerMeta& meta, const ServerLimitOptions& o) {
    ++plans;
    EXPECT_EQ(meta.name, "ollama-gpu") << "only the server without a limit is planned";
    EXPECT_GT(o.cap, 0U);
    ServerLimitPlan p;
    p.limit.wanted = 2ULL << 30;
    p.limit.largest = "qwen2.5:3b";
    p.limit.why = "qwen2.5:3b needs 2.00 GiB (installed models: 1 model)";
    return p;
  };
  options.thresholds.reserve_bytes = 0;
  const auto result = collect_status(options);
  EXPECT_EQ(plans, 1);
  const auto doc = status_to_json(result);
  const auto& ollama = doc["containers"][0];
  ASSERT_EQ(ollama["name"], "ollama-gpu");
  // It uses 25 GiB now: optimize never sets a limit under that (with a margin), whatever the plan says.
  ASSERT_TRUE(ollama["advised_limit_bytes"].is_number()) << ollama.dump(2);
  const auto advised = ollama["advised_limit_bytes"].get<std::uint64_t>();
  EXPECT_GT(advised, 27004866560ULL);
  EXPECT_EQ(advised % (256ULL << 20), 0U);
  EXPECT_NE(ollama["advised_limit_basis"].get<std::string>().find("qwen2.5:3b needs 2.00 GiB"), std::string::npos);
  const auto warning = std::find_if(result.warnings.begin(), result.warnings.end(), [](const Warning& w) {
    return w.kind == WarningKind::unlimited_container && w.subject == "ollama-gpu";
  });
  ASSERT_NE(warning, result.warnings.end());
  EXPECT_NE(warning->text.find("memwarden optimize --yes ollama-gpu sets " + format_bytes(advised)), std::string::npos)
      << warning->text;
}

TEST(StatusCommand, WithoutDockerTheHostPartStillPrints) {
  TempDir dir;
  const auto result = collect_status(
      options_for(test::fixture_path("hosts/v2-systemd-incident"), "unix://" + (dir.path() / "no.sock").string()));
  EXPECT_EQ(status_exit_code(result), StatusExit::partial);
  const auto table = render_status_table(result);
  EXPECT_NE(table.find("HOST MEMORY"), std::string::npos);
  EXPECT_NE(table.find("available 1.90 GiB"), std::string::npos);
  EXPECT_NE(table.find("CONTAINERS  unavailable: unix://"), std::string::npos) << table;
  EXPECT_NE(table.find("no such socket"), std::string::npos);
  EXPECT_NE(table.find("is the Docker engine running? No socket at " + (dir.path() / "no.sock").string()),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("GPUS  no NVIDIA driver"), std::string::npos) << table;
  const auto doc = status_to_json(result);
  EXPECT_EQ(doc["docker"]["reachable"], false);
  EXPECT_TRUE(doc["docker"]["error"].get<std::string>().ends_with("no such socket"));
  EXPECT_TRUE(doc["containers"].empty());
  EXPECT_EQ(doc["host"]["memory"]["total_bytes"], 32768000ULL * 1024);
}

TEST(StatusCommand, BadDockerHostIsReported) {
  const auto result = collect_status(options_for(test::fixture_path("hosts/v2-systemd-incident"), "ssh://box"));
  EXPECT_EQ(status_exit_code(result), StatusExit::partial);
  ASSERT_TRUE(result.report.docker.error);
  EXPECT_NE(result.report.docker.error->line().find("expected unix:///path"), std::string::npos);
}

TEST(StatusCommand, BrokenKernelFilesAreProblemsNotZeros) {
  TempDir root;
  test::copy_fixture("hosts/v2-systemd-incident", root);
  root.write("proc/meminfo", "this is not meminfo\n");
  root.write("sys/fs/cgroup/system.slice/docker-" + k_ollama_id + ".scope/memory.stat", "anon lots\n");
  TempDir sock;
  FakeEngine engine(sock, {inspect_like(k_ollama_id, "ollama-gpu", "ollama/ollama", 4242, 0)});
  const auto result = collect_status(options_for(root.path(), engine.address()));
  EXPECT_EQ(status_exit_code(result), StatusExit::partial);
  ASSERT_EQ(result.report.problems.size(), 2U);
  EXPECT_NE(result.report.problems[0].source.find("proc/meminfo"), std::string::npos);
  EXPECT_NE(result.report.problems[1].source.find("memory.stat"), std::string::npos);
  const auto table = render_status_table(result);
  EXPECT_NE(table.find("host memory unavailable"), std::string::npos);
  EXPECT_NE(table.find("PROBLEMS"), std::string::npos);
  const auto row = lines(table);
  const auto ollama = std::find_if(row.begin(), row.end(), [](const auto& l) { return l.starts_with("ollama-gpu"); });
  ASSERT_NE(ollama, row.end());
  // usage is known but inactive_file is not: working set, anon and cache show "-", never 0
  EXPECT_EQ(ollama->find(" 0 B"), std::string::npos) << *ollama;
  EXPECT_NE(ollama->find("        -         -         -"), std::string::npos) << *ollama;
  const auto doc = status_to_json(result);
  EXPECT_TRUE(doc["host"]["memory"].is_null());
  EXPECT_TRUE(doc["containers"][0]["memory"]["anon_bytes"].is_null());
  EXPECT_TRUE(doc["containers"][0]["memory"]["working_set_bytes"].is_null());
  EXPECT_EQ(doc["containers"][0]["memory"]["usage_bytes"], 27004866560ULL);
  EXPECT_EQ(doc["problems"].size(), 2U);
}

TEST(StatusCommand, LongNamesAreTruncatedToFit) {
  TempDir dir;
  FakeEngine engine(dir, {inspect_like(k_ollama_id, std::string(60, 'n'), std::string(80, 'i') + ":latest", 4242, 0)});
  const auto result = collect_status(options_for(test::fixture_path("hosts/v2-systemd-incident"), engine.address()));
  expect_fits_100_columns(render_status_table(result));
}

TEST(StatusCommand, GpuProcessesAreNamedByContainer) {
  TempDir dir;
  FakeEngine engine(dir, {inspect_like(k_ollama_id, "ollama-gpu", "ollama/ollama", 4242, 0)});
  auto options = options_for(test::fixture_path("hosts/v2-systemd-incident"), engine.address());
  options.nvml_library = FAKE_NVML_PATH;
  ::setenv("FAKE_NVML_SCENARIO", "ok", 1);
  ::setenv("FAKE_NVML_PIDS", "4242:14495514624", 1);
  const auto result = collect_status(options);
  ::unsetenv("FAKE_NVML_PIDS");
  ::unsetenv("FAKE_NVML_SCENARIO");
  ASSERT_EQ(result.report.gpu.availability, GpuAvailability::available) << result.report.gpu.message;
  const auto table = render_status_table(result);
  expect_fits_100_columns(table);
  EXPECT_NE(table.find("ollama-gpu 13.5 GiB"), std::string::npos) << table;
  const auto doc = status_to_json(result);
  EXPECT_EQ(doc["gpus"]["devices"][0]["processes"][0]["container_name"], "ollama-gpu");
  EXPECT_EQ(doc["gpus"]["devices"][0]["processes"][0]["used_bytes"], 14495514624ULL);
  EXPECT_EQ(doc["gpus"]["devices"][0]["memory_total_bytes"], 17179869184ULL);
}
