// run_diagnose end to end on fixture host trees, a fake Docker engine and a
// fake Ollama API on Unix sockets, with a fake clock: no sleeps.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "adapters/sample_store.hpp"
#include "cli/diagnose.hpp"
#include "fake_services.hpp"
#include "test_support.hpp"

using namespace mw;
using namespace mw::cli;
using namespace mw::engine;
using namespace std::chrono_literals;
using mw::test::FakeClock;
using mw::test::FakeEngine;
using mw::test::FakeHttpServer;
using mw::test::FakeOllama;
using mw::test::inspect_like;
using mw::test::TempDir;
using nlohmann::json;

namespace {

const std::string k_ollama_id = "3f1c9a7e5b2d4c6f8a0e1d3b5c7f9a2e4d6b8c0a1e3f5d7b9c2a4e6f8d0b1c3a";
const std::string k_515_id = "c4e6a8b0d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a4c6";

DiagnoseOptions options_for(const std::filesystem::path& root, const std::string& docker, Duration window,
                            Duration interval = 1s) {
  DiagnoseOptions o;
  o.sampler.root = probes::HostRoot(root);
  o.sampler.docker_host = docker;
  o.window = window;
  o.interval = interval;
  return o;
}

const Finding* find(const DiagnoseResult& r, Detector detector) {
  for (const auto& f : r.findings) {
    if (f.detector == detector) {
      return &f;
    }
  }
  return nullptr;
}

}  // namespace

TEST(DiagnoseCommand, TheSeedIncidentIsIdleBloat) {
  TempDir dir;
  FakeOllama ollama(dir.path() / "ollama.sock");
  const std::vector<json> containers{
      inspect_like(k_ollama_id, "ollama-gpu", 4242, 0, "unix://" + (dir.path() / "ollama.sock").string())};
  FakeEngine engine(dir.path() / "docker.sock", containers);
  FakeClock clock;
  const auto started = clock.now();
  const auto result =
      run_diagnose(options_for(test::fixture_path("hosts/v2-systemd-incident"), engine.address(), 20s), clock);
  EXPECT_EQ(result.samples, 21U);
  ASSERT_EQ(result.servers.size(), 1U);
  EXPECT_EQ(result.servers[0].api_version, "0.6.4");
  ASSERT_TRUE(result.servers[0].last && result.servers[0].last->models);
  EXPECT_TRUE(result.servers[0].last->models->empty());
  ASSERT_EQ(result.servers[0].last->processes.size(), 1U);
  EXPECT_EQ(result.servers[0].last->processes[0].argv, (std::vector<std::string>{"/bin/ollama", "serve"}));

  const auto* bloat = find(result, Detector::idle_bloat);
  ASSERT_NE(bloat, nullptr);
  EXPECT_EQ(bloat->severity, Severity::critical);
  EXPECT_EQ(bloat->subject, "ollama-gpu");
  EXPECT_EQ(bloat->remedy, Remedy::restart_server);
  EXPECT_EQ(result.first_detected.at({Detector::idle_bloat, "ollama-gpu"}) - started, 10s)
      << "reported when the hold is met";
  EXPECT_NE(find(result, Detector::unlimited), nullptr);
  ASSERT_NE(find(result, Detector::host_pressure), nullptr);
  EXPECT_EQ(find(result, Detector::growth), nullptr) << "a constant 25 GiB is bloat, not growth";
  EXPECT_EQ(find(result, Detector::orphan_runner), nullptr) << "the only process is `ollama serve`";
  EXPECT_EQ(result.findings[0].severity, Severity::critical) << "ordered by severity";
  EXPECT_EQ(diagnose_exit_code(result), DiagnoseExit::critical);

  const auto text = render_diagnosis(result);
  EXPECT_NE(text.find("CRITICAL idle-bloat  ollama-gpu"), std::string::npos) << text;
  EXPECT_NE(text.find("action:   restart ollama-gpu"), std::string::npos) << text;
  const auto doc = diagnosis_to_json(result);
  EXPECT_EQ(doc["schema"], "memwarden.diagnose/1");
  EXPECT_EQ(doc["exit_code"], 5);
  EXPECT_EQ(doc["servers"][0]["expected_ram_bytes"], 1ULL << 30);
  const auto bloat_json = std::find_if(doc["findings"].begin(), doc["findings"].end(),
                                       [](const json& f) { return f["detector"] == "idle-bloat"; });
  ASSERT_NE(bloat_json, doc["findings"].end());
  EXPECT_EQ((*bloat_json)["evidence"]["anon_bytes"]["value"], 26843545600.0);
  EXPECT_EQ((*bloat_json)["first_detected_ms"], to_ms(started + 10s));
}

TEST(DiagnoseCommand, StopOnEndsTheWindowEarly) {
  TempDir dir;
  FakeOllama ollama(dir.path() / "ollama.sock");
  const std::vector<json> containers{
      inspect_like(k_ollama_id, "ollama-gpu", 4242, 0, "unix://" + (dir.path() / "ollama.sock").string())};
  FakeEngine engine(dir.path() / "docker.sock", containers);
  FakeClock clock;
  auto options = options_for(test::fixture_path("hosts/v2-systemd-incident"), engine.address(), 60s);
  options.thresholds.reserve = 1ULL << 30;  // keep host-pressure below critical
  options.thresholds.psi_full_avg10_pct = 50;
  options.stop_on = Severity::critical;
  const auto result = run_diagnose(options, clock);
  EXPECT_EQ(result.samples, 11U) << "stopped at the sample that met the 10 s hold";
}

TEST(DiagnoseCommand, AFastLeakIsGrowthWithItsSlope) {
  TempDir root;
  test::copy_fixture("hosts/v2-cgroupfs-5.15", root);
  const auto stat_path = "sys/fs/cgroup/docker/" + k_515_id + "/memory.stat";
  const auto stat = test::read_fixture("hosts/v2-cgroupfs-5.15/" + stat_path);
  TempDir dir;
  FakeOllama ollama(dir.path() / "ollama.sock");
  ollama.set_ps(R"({"models":[{"name":"small:1","model":"small:1","size":209715200,"size_vram":0}]})");
  const std::vector<json> containers{
      inspect_like(k_515_id, "ollama", 0, 2LL << 30, "unix://" + (dir.path() / "ollama.sock").string())};
  FakeEngine engine(dir.path() / "docker.sock", containers);
  FakeClock clock;
  const auto start = clock.now();
  // anon grows 20 MiB per second from 300 MiB, written into the cgroup before each sample
  clock.on_wake([&](Timestamp now) {
    const auto seconds = static_cast<std::uint64_t>((now - start).count() / 1000);
    std::string text = stat;
    const auto pos = text.find("anon 943718400");
    text.replace(pos, 14, "anon " + std::to_string((300 + 20 * seconds) << 20));
    root.write(stat_path, text);
  });
  const auto result = run_diagnose(options_for(root.path(), engine.address(), 30s), clock);
  const auto* growth = find(result, Detector::growth);
  ASSERT_NE(growth, nullptr) << render_diagnosis(result);
  double slope = 0;
  double hours_to_limit = -1;
  for (const auto& e : growth->evidence) {
    slope = e.name == "slope_mib_per_hour" ? e.value : slope;
    hours_to_limit = e.name == "hours_to_limit" ? e.value : hours_to_limit;
  }
  EXPECT_NEAR(slope, 20.0 * 3600, 20.0 * 3600 * 0.01);
  // at 30 s anon is 900 MiB; (2048 - 900) MiB at 20 MiB/s = 57.4 s
  EXPECT_NEAR(hours_to_limit * 3600, (2048.0 - 900.0) / 20.0, 1.0);
  EXPECT_EQ(growth->severity, Severity::critical);
  EXPECT_EQ(find(result, Detector::idle_bloat), nullptr) << "900 MiB is within 200 MiB + 1 GiB + 2 GiB";
}

TEST(DiagnoseCommand, UnreachableApiIsAFindingAndCgroupAnalysisGoesOn) {
  TempDir dir;
  const auto url = "unix://" + (dir.path() / "no-ollama.sock").string();
  const std::vector<json> containers{inspect_like(k_ollama_id, "ollama-gpu", 4242, 0, url)};
  FakeEngine engine(dir.path() / "docker.sock", containers);
  FakeClock clock;
  const auto result =
      run_diagnose(options_for(test::fixture_path("hosts/v2-systemd-incident"), engine.address(), 3s), clock);
  const auto* api = find(result, Detector::api_unreachable);
  ASSERT_NE(api, nullptr);
  EXPECT_NE(api->summary.find(url + " (GET /api/ps): no such socket"), std::string::npos) << api->summary;
  EXPECT_NE(find(result, Detector::unlimited), nullptr) << "cgroup analysis went on";
  EXPECT_EQ(find(result, Detector::idle_bloat), nullptr) << "no model list, no expectation, no bloat verdict";
  ASSERT_TRUE(result.servers[0].last->memory);
  EXPECT_EQ(result.servers[0].last->memory->anon, 26843545600U);
}

TEST(DiagnoseCommand, SlowAndBrokenApis) {
  TempDir dir;
  FakeHttpServer garbage(dir.path() / "garbage.sock", [](const std::string&, const std::string& path) {
    if (path == "/api/ps") {
      return FakeHttpServer::Reply{200, R"({"models":[{"name":"m","size":"big"}]})"};
    }
    return FakeHttpServer::Reply{200, "<html>oops</html>"};
  });
  FakeHttpServer hang(dir.path() / "hang.sock", [](const std::string&, const std::string&) {
    FakeHttpServer::Reply r;
    r.hang = true;
    return r;
  });
  const std::vector<json> containers{
      inspect_like(k_ollama_id, "ollama-gpu", 4242, 0, "unix://" + (dir.path() / "garbage.sock").string()),
      inspect_like(std::string(64, 'b'), "ollama-hung", 0, 0, "unix://" + (dir.path() / "hang.sock").string())};
  FakeEngine engine(dir.path() / "docker.sock", containers);
  FakeClock clock;
  auto options = options_for(test::fixture_path("hosts/v2-systemd-incident"), engine.address(), 0s);
  options.sampler.api_timeout = 200ms;
  const auto result = run_diagnose(options, clock);
  ASSERT_EQ(result.servers.size(), 2U);
  std::vector<std::string> summaries;
  for (const auto& f : result.findings) {
    if (f.detector == Detector::api_unreachable) {
      summaries.push_back(f.summary);
    }
  }
  ASSERT_EQ(summaries.size(), 2U);
  const auto joined = summaries[0] + "\n" + summaries[1];
  EXPECT_NE(joined.find("field models[0].size: expected an integer"), std::string::npos) << joined;
  EXPECT_NE(joined.find("no answer within 0.2 s"), std::string::npos) << joined;
  const bool cgroup_missing_reported = std::any_of(result.problems.begin(), result.problems.end(), [](const Error& e) {
    return e.message.find("no memory cgroup for container bbbbbbbbbbbb") != std::string::npos;
  });
  EXPECT_TRUE(cgroup_missing_reported);
}

TEST(DiagnoseCommand, OrphanRunnerHoldingMemory) {
  TempDir root;
  test::copy_fixture("hosts/v2-systemd-incident", root);
  const auto cg = "sys/fs/cgroup/system.slice/docker-" + k_ollama_id + ".scope/";
  root.write(cg + "cgroup.procs", "4242\n4300\n");
  root.write("proc/4300/comm", "ollama\n");
  root.write("proc/4300/cmdline",
             std::string("/bin/ollama\0runner\0--model\0/root/.ollama/models/blobs/sha256-1\0", 58));
  auto status = test::read_fixture("hosts/v2-systemd-incident/proc/4242/status");
  status.replace(status.find("RssAnon:\t26214400 kB"), 20, "RssAnon:\t  614400 kB");
  root.write("proc/4300/status", status);
  TempDir dir;
  FakeOllama ollama(dir.path() / "ollama.sock");
  const std::vector<json> containers{
      inspect_like(k_ollama_id, "ollama-gpu", 4242, 0, "unix://" + (dir.path() / "ollama.sock").string())};
  FakeEngine engine(dir.path() / "docker.sock", containers);
  FakeClock clock;
  const auto result = run_diagnose(options_for(root.path(), engine.address(), 5s), clock);
  const auto* orphan = find(result, Detector::orphan_runner);
  ASSERT_NE(orphan, nullptr) << render_diagnosis(result);
  EXPECT_NE(orphan->summary.find("pid 4300 (600 MiB)"), std::string::npos) << orphan->summary;
}

TEST(DiagnoseCommand, WithoutDockerTheHostIsStillJudged) {
  TempDir dir;
  FakeClock clock;
  const auto result = run_diagnose(
      options_for(test::fixture_path("hosts/v2-systemd-incident"), "unix://" + (dir.path() / "none.sock").string(), 0s),
      clock);
  EXPECT_TRUE(result.servers.empty());
  ASSERT_FALSE(result.problems.empty());
  EXPECT_NE(result.problems[0].line().find("no such socket; is the Docker engine running?"), std::string::npos)
      << result.problems[0].line();
  ASSERT_NE(find(result, Detector::host_pressure), nullptr);
  EXPECT_NE(render_diagnosis(result).find("no inference server found"), std::string::npos);
}

TEST(DiagnoseCommand, HealthyServerExitsZero) {
  TempDir dir;
  FakeOllama ollama(dir.path() / "ollama.sock");
  // 5.15 fixture: 900 MiB anon, 2 GiB limit; a 1 GiB model loaded explains it.
  ollama.set_ps(R"({"models":[{"name":"m:1","model":"m:1","size":1073741824,"size_vram":0,"context_length":4096}]})");
  const std::vector<json> containers{
      inspect_like(k_515_id, "ollama", 0, 2LL << 30, "unix://" + (dir.path() / "ollama.sock").string())};
  FakeEngine engine(dir.path() / "docker.sock", containers);
  FakeClock clock;
  auto options = options_for(test::fixture_path("hosts/v2-cgroupfs-5.15"), engine.address(), 5s);
  options.thresholds.reserve = 1ULL << 30;
  options.thresholds.swap_warn = 16ULL << 30;
  options.thresholds.psi_full_avg10_pct = 100;
  const auto result = run_diagnose(options, clock);
  EXPECT_TRUE(result.findings.empty()) << render_diagnosis(result);
  EXPECT_EQ(diagnose_exit_code(result), DiagnoseExit::healthy);
  EXPECT_NE(render_diagnosis(result).find("HEALTHY"), std::string::npos);
}

TEST(DiagnoseCommand, MissingSourcesWithoutFindingsArePartial) {
  TempDir dir;
  FakeClock clock;
  auto options =
      options_for(test::fixture_path("hosts/v2-cgroupfs-5.15"), "unix://" + (dir.path() / "none.sock").string(), 0s);
  options.thresholds.reserve = 1ULL << 30;
  options.thresholds.swap_warn = 16ULL << 30;
  const auto result = run_diagnose(options, clock);
  EXPECT_TRUE(result.findings.empty());
  EXPECT_EQ(diagnose_exit_code(result), DiagnoseExit::partial);
  EXPECT_NE(render_diagnosis(result).find("HEALTHY  no findings for the host"), std::string::npos);
}

TEST(DiagnoseCommand, OllamaServeOnTheHostIsFoundThroughProc) {
  TempDir root;
  test::copy_fixture("hosts/v2-systemd-incident", root);
  root.write("proc/5000/comm", "ollama\n");
  root.write("proc/5000/cmdline", std::string("/usr/local/bin/ollama\0serve\0", 28));
  root.write("proc/5000/status", test::read_fixture("hosts/v2-systemd-incident/proc/4242/status"));
  root.write("proc/5000/cgroup", "0::/system.slice/ollama.service\n");
  root.write("proc/5000/environ", std::string("HOME=/usr/share/ollama\0OLLAMA_HOST=127.0.0.1:1\0", 46));
  const std::string cg = "sys/fs/cgroup/system.slice/ollama.service/";
  root.write(cg + "memory.current", "734003200\n");
  root.write(cg + "memory.max", "max\n");
  root.write(cg + "memory.stat", "anon 629145600\nfile 104857600\ninactive_file 52428800\n");
  root.write(cg + "cgroup.procs", "5000\n");
  TempDir dir;
  FakeClock clock;
  const auto result =
      run_diagnose(options_for(root.path(), "unix://" + (dir.path() / "none.sock").string(), 0s), clock);
  ASSERT_EQ(result.servers.size(), 1U) << "pid 4242 runs in a container and is not a host server";
  const auto& s = result.servers[0];
  EXPECT_EQ(s.server.name, "ollama (host, pid 5000)");
  EXPECT_EQ(s.server.kind, ServerKind::host_process);
  EXPECT_EQ(s.server.api_url, "http://127.0.0.1:1") << "from OLLAMA_HOST in the process environment";
  ASSERT_TRUE(s.last && s.last->memory);
  EXPECT_EQ(s.last->memory->anon, 629145600U);
  ASSERT_EQ(s.last->processes.size(), 1U);
  const auto* api = find(result, Detector::api_unreachable);
  ASSERT_NE(api, nullptr);
  EXPECT_NE(api->summary.find("http://127.0.0.1:1 (GET /api/ps): connection refused"), std::string::npos)
      << api->summary;
  EXPECT_EQ(find(result, Detector::unlimited), nullptr) << "a host process is not a container";
}

TEST(DiagnoseCommand, LookbackFindsALeakInTheStoredHistoryAtOnce) {
  TempDir dir;
  FakeOllama ollama(dir.path() / "ollama.sock");
  FakeEngine engine(dir.path() / "docker.sock", {inspect_like(k_ollama_id, "ollama-gpu", 4242, 0,
                                                              "unix://" + (dir.path() / "ollama.sock").string())});
  // 30 minutes that memwarden serve stored before this run: anon rising 2 GiB an hour, no model loaded.
  constexpr std::int64_t k_now_wall = 1'800'000'000'000;
  {
    auto store = adapters::SampleStore::open(dir.path() / "state", {});
    ASSERT_TRUE(store) << store.error().line();
    std::vector<adapters::StoredSample> rows;
    for (int i = 0; i < 180; ++i) {  // every 10 s
      adapters::StoredSample s;
      s.at_ms = k_now_wall - 1'800'000 + i * 10'000LL;
      s.subject = "ollama-gpu";
      constexpr std::uint64_t k_gib = std::uint64_t{1} << 30;
      s.anon = 24 * k_gib + static_cast<std::uint64_t>(i) * (2 * k_gib / 360);
      s.usage = s.anon;
      s.models_loaded = 0;
      rows.push_back(s);
    }
    ASSERT_TRUE(store->append(rows));
  }
  auto o = options_for(test::fixture_path("hosts/v2-systemd-incident"), engine.address(), 0s);
  o.lookback = {30min, (dir.path() / "state").string(), k_now_wall};
  FakeClock clock;
  const auto result = run_diagnose(o, clock);
  EXPECT_EQ(result.samples, 1U);  // one live sample
  EXPECT_EQ(result.stored_samples, 180U);
  const auto* growth = find(result, Detector::growth);
  ASSERT_NE(growth, nullptr) << diagnosis_to_json(result).dump(2);
  const auto slope = std::find_if(growth->evidence.begin(), growth->evidence.end(),
                                  [](const Evidence& e) { return e.name == "slope_mib_per_hour"; });
  ASSERT_NE(slope, growth->evidence.end());
  EXPECT_NEAR(slope->value, 2048.0, 2048.0 * 0.1);
  EXPECT_NE(render_diagnosis(result).find("with 180 earlier samples"), std::string::npos);

  // Without a history the run says so and goes on.
  o.lookback.state_dir = (dir.path() / "nowhere").string();
  const auto without = run_diagnose(o, clock);
  EXPECT_EQ(without.stored_samples, 0U);
  ASSERT_FALSE(without.problems.empty()) << diagnosis_to_json(without).dump(2);
  EXPECT_NE(without.problems.front().message.find("no sample history"), std::string::npos);
}
