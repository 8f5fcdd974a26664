// `memwarden bench` on the private engine. A real llama.cpp engine (node-llama-cpp behind tests/llm/server.mjs, in a
// container) serves two generated models, benchmarked one after the other through both APIs: the token counts are
// what was asked, the client's rate agrees with the server's own, the load is timed apart from the first token, and
// the memory timeline shows each model's memory arriving and leaving. The Ollama simulator plays what the real
// engine cannot: a configured time to first token and token rate (measured within 5%), streams that fail or drop
// mid-way, a server that keeps memory after the unload, a GPU that runs hot (the fake NVML), Ctrl-C mid-run.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "engine_support.hpp"

using namespace mw;
using namespace mw::it;
namespace fs = std::filesystem;

namespace {

const std::string k_llm_image = "memwarden-test/llm:latest";
constexpr int k_llm_port = 18891;

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::size_t count_lines(const std::string& text) {
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

// The run's points inside [from, to] seconds.
std::vector<nlohmann::json> points_between(const nlohmann::json& run, double from, double to) {
  std::vector<nlohmann::json> points;
  for (const auto& p : run["timeline"]) {
    const auto t = p["t_s"].get<double>();
    if (t >= from && t <= to) {
      points.push_back(p);
    }
  }
  return points;
}

// The mark of `phase` of `model` (the first, or the one of `concurrency` for a level).
nlohmann::json mark_of(const nlohmann::json& run, const std::string& model, const std::string& phase,
                       std::size_t concurrency = 0) {
  for (const auto& m : run["marks"]) {
    if (m["model"] == model && m["phase"] == phase &&
        (phase != "level" || m["concurrency"].get<std::size_t>() == concurrency)) {
      return m;
    }
  }
  return nullptr;
}

std::optional<std::uint64_t> max_anon(const std::vector<nlohmann::json>& points) {
  std::optional<std::uint64_t> most;
  for (const auto& p : points) {
    if (p["anon"].is_number()) {
      most = std::max(most.value_or(0), p["anon"].get<std::uint64_t>());
    }
  }
  return most;
}

const nlohmann::json& verdict(const nlohmann::json& model, const std::string& criterion) {
  for (const auto& v : model["verdicts"]) {
    if (v["criterion"] == criterion) {
      return v;
    }
  }
  static const nlohmann::json none;
  return none;
}

// Two generated models in one real server container, started once for the suite.
class BenchEngine : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    s_dir = new test::TempDir();
    const auto models = s_dir->path() / "models";
    fs::create_directories(models);
    // alpha: 21 MB, hundreds of tokens per second; gamma: 174 MiB of f16 weights, about 45 tokens per second on
    // one thread here: its memory stands out on the timeline.
    const auto alpha = test::run_process({MW_GEN_LLAMA, (models / "alpha.gguf").string(), "--n-embd", "512",
                                          "--n-layer", "4", "--n-ff", "1024", "--n-head", "8", "--n-head-kv", "8"});
    ASSERT_EQ(alpha.exit_code, 0) << alpha.out << alpha.err;
    const auto gamma = test::run_process({MW_GEN_LLAMA, (models / "gamma.gguf").string(), "--n-embd", "1024",
                                          "--n-layer", "8", "--n-ff", "2816", "--n-head", "16", "--n-head-kv", "4"});
    ASSERT_EQ(gamma.exit_code, 0) << gamma.out << gamma.err;
    s_server = new Container("mw-bench-llm",
                             {"--network", "host", "-e", "OLLAMA_HOST=127.0.0.1:" + std::to_string(k_llm_port),
                              "--label", "memwarden.kind=ollama", "-v", models.string() + ":/models:ro"},
                             {"--models-dir", "/models", "--no-mmap", "--threads", "1"}, k_llm_image);
    ASSERT_TRUE(s_server->wait_for_log("listening")) << s_server->logs();
  }
  static void TearDownTestSuite() {
    delete s_server;
    s_server = nullptr;
    delete s_dir;
    s_dir = nullptr;
  }
  static std::string url() { return "http://127.0.0.1:" + std::to_string(k_llm_port); }
  static std::string ps() { return test::run_process({"curl", "-sS", "--max-time", "5", url() + "/api/ps"}).out; }

  test::TempDir m_state;
  test::TempDir m_out;
  static test::TempDir* s_dir;
  static Container* s_server;
};
test::TempDir* BenchEngine::s_dir = nullptr;
Container* BenchEngine::s_server = nullptr;

}  // namespace

TEST_F(BenchEngine, TwoRealModelsOneAfterTheOther) {
  const auto csv = m_out.path() / "bench.csv";
  const auto html = m_out.path() / "bench.html";
  // No GPU, even on a host with an NVIDIA driver: the verdicts below expect none.
  const std::vector<std::string> args{"bench",
                                      "alpha",
                                      "gamma",
                                      "--server",
                                      "mw-bench-llm",
                                      "--runs",
                                      "2",
                                      "--concurrency",
                                      "1,2",
                                      "--max-tokens",
                                      "64",
                                      "--prompt-tokens",
                                      "16",
                                      "--cooldown",
                                      "1s",
                                      "--json",
                                      "--csv",
                                      csv.string(),
                                      "--html",
                                      html.string(),
                                      "--state-dir",
                                      m_state.path().string(),
                                      "--nvml-library",
                                      "/nonexistent/libnvidia-ml.so.1"};
  const auto r = memwarden(args);
  const auto run = parse_output(r);
  ASSERT_EQ(run["models"].size(), 2U) << r.out << r.err;
  EXPECT_EQ(run["schema"], "memwarden.bench/1");
  EXPECT_EQ(run["interrupted"], false);
  for (const auto& [index, name] : {std::pair{0, "alpha"}, std::pair{1, "gamma"}}) {
    const auto& m = run["models"][static_cast<std::size_t>(index)];
    SCOPED_TRACE(name);
    ASSERT_EQ(m["model"], name) << "in the order given";
    ASSERT_EQ(m["status"], "done") << m["reason"];
    // The load is timed on its own, before any request; no counted request waited for a load.
    ASSERT_TRUE(m["load_s"].is_number()) << m;
    EXPECT_GT(m["load_s"].get<double>(), 0.0);
    ASSERT_EQ(m["samples"].size(), 2U + 4U) << "2 at c=1, 2 × 2 at c=2";
    std::vector<double> client, server;
    for (const auto& s : m["samples"]) {
      ASSERT_EQ(s["ok"], true) << s;
      EXPECT_EQ(s["output_tokens"], 64) << "the length asked";
      EXPECT_EQ(s["eval_count"], 64) << "the server's count";
      ASSERT_TRUE(s["ttft_s"].is_number());
      EXPECT_LT(s["load_s"].get<double>(), 0.05) << "the server loaded nothing for a counted request";
      if (s["concurrency"] == 1) {
        client.push_back(s["decode_tokens_per_s"].get<double>());
        server.push_back(s["eval_count"].get<double>() / s["eval_s"].get<double>());
      }
    }
    // The client's decode rate (tokens − 1 over the time from the first chunk to the end) against the server's own
    // eval_count / eval_duration, request by request at c=1.
    for (std::size_t i = 0; i < client.size(); ++i) {
      expect_within(client[i], server[i], 0.05,
                    fmt::format("{} request {}: client tok/s against the server's", name, i));
    }
    ASSERT_EQ(m["levels"].size(), 2U);
    EXPECT_EQ(m["levels"][1]["concurrency"], 2);
    EXPECT_EQ(m["levels"][1]["throughput"]["completed"], 4);
    EXPECT_EQ(verdict(m, "memory returned")["outcome"], "pass") << m["verdicts"];
    EXPECT_EQ(verdict(m, "RAM")["outcome"], "pass") << m["verdicts"];
    EXPECT_EQ(verdict(m, "temperature")["outcome"], "unknown") << "no GPU here";
  }
  // The timeline: gamma's 174 MiB arrive with its load and leave with its unload.
  const auto load = mark_of(run, "gamma", "load");
  const auto unload = mark_of(run, "gamma", "unload");
  const auto level = mark_of(run, "gamma", "level", 1);
  ASSERT_TRUE(load.is_object() && unload.is_object() && level.is_object()) << run["marks"];
  // Each phase begins and ends with a point.
  const auto before = points_between(run, load["start_s"].get<double>(), load["end_s"].get<double>());
  ASSERT_FALSE(before.empty()) << "a point at the load's start";
  ASSERT_TRUE(before.front()["anon"].is_number()) << before.front();
  const auto base = before.front()["anon"].get<std::uint64_t>();
  const auto loaded = max_anon(points_between(run, level["start_s"].get<double>(), level["end_s"].get<double>()));
  ASSERT_TRUE(loaded);
  EXPECT_GT(*loaded, base + 150 * k_mib) << "gamma's weights on the timeline while it generates";
  const auto after = points_between(run, unload["start_s"].get<double>(), unload["end_s"].get<double>());
  ASSERT_FALSE(after.empty());
  EXPECT_LT(after.back()["anon"].get<std::uint64_t>(), base + 64 * k_mib) << "and gone after the unload";
  EXPECT_EQ(ps().find("gamma"), std::string::npos) << ps();
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;

  // One CSV row per model × concurrency × repetition.
  const auto csv_text = read_text(csv);
  EXPECT_EQ(count_lines(csv_text), 1U + 12U) << csv_text;
  // The HTML report, rendered in a real browser: every chart with its series, no script error.
  ASSERT_TRUE(fs::exists(html));
  const auto checked = test::run_process({MEMWARDEN_CHECK_HTML, html.string(), (m_out.path() / "shots").string(),
                                          "throughput=2", "latency=3", "memory=3"});
  EXPECT_EQ(checked.exit_code, 0) << checked.out << checked.err;

  // Stored: listed, and compared with a second run.
  const auto again = memwarden({"bench", "alpha", "--server", "mw-bench-llm", "--runs", "2", "--max-tokens", "16",
                                "--prompt-tokens", "16", "--state-dir", m_state.path().string()});
  EXPECT_EQ(again.exit_code, 0) << again.out << again.err;
  const auto list = parse_output(memwarden({"bench", "--list", "--json", "--state-dir", m_state.path().string()}));
  ASSERT_EQ(list["runs"].size(), 2U) << list;
  const auto newest = list["runs"][0]["id"].get<std::int64_t>();
  const auto oldest = list["runs"][1]["id"].get<std::int64_t>();
  const auto compare = memwarden({"bench", "--compare", std::to_string(oldest), std::to_string(newest), "--json",
                                  "--state-dir", m_state.path().string()});
  EXPECT_EQ(compare.exit_code, 0) << compare.out << compare.err;
  const auto changes = parse_output(compare);
  ASSERT_FALSE(changes["changes"].empty()) << changes;
  for (const auto& c : changes["changes"]) {
    EXPECT_EQ(c["model"], "alpha") << "gamma is only in the first run";
  }
}

TEST_F(BenchEngine, TheOpenAiApiOnTheRealEngine) {
  const auto r = memwarden({"bench", "alpha", "--server", url(), "--api", "openai", "--runs", "3", "--max-tokens", "32",
                            "--prompt-tokens", "16", "--json", "--no-store"});
  const auto run = parse_output(r);
  ASSERT_EQ(run["models"].size(), 1U) << r.out << r.err;
  const auto& m = run["models"][0];
  ASSERT_EQ(m["status"], "done") << m["reason"];
  EXPECT_TRUE(m["load_s"].is_null()) << "no load call in the OpenAI API";
  ASSERT_EQ(m["samples"].size(), 3U);
  for (const auto& s : m["samples"]) {
    ASSERT_EQ(s["ok"], true) << s;
    EXPECT_EQ(s["output_tokens"], 32) << "usage.completion_tokens";
    EXPECT_EQ(s["eval_count"], 32) << "llama.cpp's timings.predicted_n";
    EXPECT_TRUE(s["ttft_s"].is_number());
  }
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  // The OpenAI error object of a model the server does not have, in the request's error.
  const auto missing =
      memwarden({"bench", "nosuch", "--server", url(), "--api", "openai", "--runs", "1", "--json", "--no-store"});
  const auto mj = parse_output(missing);
  ASSERT_EQ(mj["models"].size(), 1U) << missing.out << missing.err;
  EXPECT_EQ(mj["models"][0]["status"], "failed");
  EXPECT_NE(mj["models"][0]["reason"].get<std::string>().find("model \"nosuch\" not found"), std::string::npos)
      << mj["models"][0]["reason"];
  EXPECT_EQ(missing.exit_code, 3) << missing.out;
}

namespace {

std::unique_ptr<Container> simulator(const std::string& name, int port, std::vector<std::string> flags,
                                     std::vector<std::string> run_args = {}) {
  std::vector<std::string> args{"--network", "host", "-e", "OLLAMA_HOST=127.0.0.1:" + std::to_string(port), "-m", "2g"};
  args.insert(args.end(), run_args.begin(), run_args.end());
  std::vector<std::string> command{"/bin/ollama-sim"};
  command.insert(command.end(), flags.begin(), flags.end());
  auto c = std::make_unique<Container>(name, args, command, k_sim_image);
  EXPECT_TRUE(c->wait_for_log("ollama-sim: listening")) << c->logs();
  return c;
}

}  // namespace

TEST(BenchSimulator, AConfiguredTtftAndTokenRateAreMeasuredWithinFivePercent) {
  const auto sim = simulator("mw-bench-sim-rate", 18892,
                             {"--model", "llama3.2:1b=1450", "--ttft-ms", "400", "--tokens-per-second", "25"});
  for (const char* api : {"ollama", "openai"}) {
    SCOPED_TRACE(api);
    const auto r = memwarden({"bench", "llama3.2:1b", "--server", sim->name(), "--api", api, "--runs", "3",
                              "--max-tokens", "25", "--json", "--no-store"});
    const auto run = parse_output(r);
    ASSERT_EQ(run["models"].size(), 1U) << r.out << r.err;
    const auto& m = run["models"][0];
    ASSERT_EQ(m["status"], "done") << m["reason"];
    const auto& level = m["levels"][0];
    expect_within(level["ttft_s"]["median"].get<double>(), 0.4, 0.05, "TTFT p50");
    for (const auto& s : m["samples"]) {
      EXPECT_EQ(s["output_tokens"], 25) << s;
      expect_within(s["decode_tokens_per_s"].get<double>(), 25.0, 0.05, "decode rate");
    }
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  }
}

TEST(BenchSimulator, StreamsThatFailOrDropMidWayAreFailedRequestsWithTheirCause) {
  {
    const auto sim = simulator("mw-bench-sim-fail", 18893, {"--model", "llama3.2:1b=200", "--fail-stream-after", "5"});
    const auto r = memwarden({"bench", "llama3.2:1b", "--server", sim->name(), "--runs", "2", "--warmup", "0",
                              "--max-tokens", "20", "--json", "--no-store"});
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    const auto run = parse_output(r);
    const auto& m = run["models"][0];
    EXPECT_EQ(m["status"], "failed") << m;
    ASSERT_EQ(m["samples"].size(), 2U) << m;
    for (const auto& s : m["samples"]) {
      EXPECT_EQ(s["ok"], false);
      EXPECT_FALSE(s["error"].get<std::string>().empty());
      EXPECT_TRUE(s["ttft_s"].is_number()) << "what was measured before the failure is kept: " << s;
    }
    EXPECT_EQ(verdict(m, "memory returned")["outcome"], "pass") << "unloaded all the same";
  }
  const auto sim = simulator("mw-bench-sim-drop", 18894, {"--model", "llama3.2:1b=200", "--drop-stream-after", "5"});
  const auto r = memwarden({"bench", "llama3.2:1b", "--server", sim->name(), "--api", "openai", "--runs", "1",
                            "--warmup", "0", "--max-tokens", "20", "--json", "--no-store"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  const auto dropped = parse_output(r);
  const auto& s = dropped["models"][0]["samples"][0];
  EXPECT_EQ(s["ok"], false) << s;
  EXPECT_FALSE(s["error"].get<std::string>().empty()) << s;
}

TEST(BenchSimulator, AServerThatKeepsMemoryAfterTheUnloadIsReported) {
  const auto sim =
      simulator("mw-bench-sim-keep", 18895, {"--model", "llama3.2:1b=1450", "--retain-after-unload-mib", "300"});
  const auto r = memwarden(
      {"bench", "llama3.2:1b", "--server", sim->name(), "--runs", "1", "--max-tokens", "8", "--json", "--no-store"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  const auto run = parse_output(r);
  const auto& m = run["models"][0];
  EXPECT_EQ(m["status"], "done") << m;
  const auto& v = verdict(m, "memory returned");
  EXPECT_EQ(v["outcome"], "fail") << m["verdicts"];
  EXPECT_NE(v["detail"].get<std::string>().find("kept"), std::string::npos) << v;
}

TEST(BenchSimulator, AGpuThatRunsHotFailsTheTemperatureVerdict) {
  // The simulator's model sits half in VRAM; the fake NVML's GPU warms from 66 °C by 2 °C a second, so it is well past
  // 70 °C for most of the 6 s the requests take.
  const auto sim =
      simulator("mw-bench-sim-hot", 18896, {"--model", "llama3.2:1b=600:400", "--tokens-per-second", "20"});
  const auto r = test::run_process(
      {MEMWARDEN_BIN, "bench", "llama3.2:1b", "--server", sim->name(), "--runs", "3", "--warmup", "0", "--max-tokens",
       "40", "--vram", "8G", "--nvml-library", FAKE_NVML_PATH, "--json", "--no-store", "--docker-host", docker_host()},
      {"FAKE_NVML_TEMP_START=66", "FAKE_NVML_TEMP_RISE_PER_S=2", "FAKE_NVML_UTIL=90"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  const auto run = parse_output(r);
  const auto& m = run["models"][0];
  ASSERT_EQ(m["status"], "done") << m;
  const auto& t = verdict(m, "temperature");
  EXPECT_EQ(t["outcome"], "fail") << m["verdicts"];
  EXPECT_EQ(verdict(m, "gpu utilisation")["outcome"], "pass") << m["verdicts"];
  // The temperature rises along the timeline.
  std::vector<unsigned> temperatures;
  for (const auto& p : run["timeline"]) {
    if (!p["gpus"].empty() && p["gpus"][0]["temperature_c"].is_number()) {
      temperatures.push_back(p["gpus"][0]["temperature_c"].get<unsigned>());
    }
  }
  ASSERT_GE(temperatures.size(), 4U) << run["timeline"];
  EXPECT_GT(temperatures.back(), temperatures.front() + 5);
}

TEST(BenchSimulator, CtrlCMidRunKeepsWhatWasMeasuredMarksItAndUnloads) {
  const auto sim = simulator("mw-bench-sim-int", 18897, {"--model", "llama3.2:1b=300", "--tokens-per-second", "10"});
  test::TempDir state;
  test::BackgroundProcess bench({MEMWARDEN_BIN, "bench", "llama3.2:1b", "--server", sim->name(), "--runs", "20",
                                 "--warmup", "0", "--max-tokens", "5", "--json", "--state-dir", state.path().string(),
                                 "--docker-host", docker_host()});
  // The load and two requests (half a second each) have begun: the first has completed.
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  const auto begun = [&] {
    const auto logs = sim->logs();
    std::size_t n = 0;
    for (auto at = logs.find("request POST /api/generate"); at != std::string::npos;
         at = logs.find("request POST /api/generate", at + 1)) {
      ++n;
    }
    return n;
  };
  while (begun() < 3 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_GE(begun(), 3U) << sim->logs() << bench.output();
  bench.signal(SIGINT);
  EXPECT_EQ(bench.wait(), 130) << bench.output();
  const auto out = bench.output();
  const auto run = nlohmann::json::parse(out.substr(0, out.rfind('}') + 1), nullptr, false);
  ASSERT_FALSE(run.is_discarded()) << out;
  EXPECT_EQ(run["interrupted"], true);
  const auto& m = run["models"][0];
  EXPECT_EQ(m["status"], "interrupted") << m;
  EXPECT_GE(m["samples"].size(), 1U) << "what completed is kept";
  EXPECT_LT(m["samples"].size(), 20U);
  EXPECT_EQ(m["levels"][0]["interrupted"], true);
  const auto ps = test::run_process({"curl", "-sS", "http://127.0.0.1:18897/api/ps"}).out;
  EXPECT_EQ(ps.find("llama3.2"), std::string::npos) << "unloaded: " << ps;
  const auto list = parse_output(memwarden({"bench", "--list", "--json", "--state-dir", state.path().string()}));
  ASSERT_EQ(list["runs"].size(), 1U) << list;
  EXPECT_EQ(list["runs"][0]["interrupted"], true);
}

TEST(BenchSimulator, AModelNotInstalledAndAReportThatCannotBeWritten) {
  const auto sim = simulator("mw-bench-sim-bad", 18898, {"--model", "llama3.2:1b=100"});
  const auto missing = memwarden({"bench", "nosuch:7b", "--server", sim->name(), "--no-store"});
  EXPECT_EQ(missing.exit_code, 3) << missing.out << missing.err;
  EXPECT_NE(missing.out.find("ollama pull nosuch:7b"), std::string::npos) << missing.out;

  const auto unwritable = memwarden(
      {"bench", "llama3.2:1b", "--server", sim->name(), "--html", "/nonexistent-dir/report.html", "--no-store"});
  EXPECT_EQ(unwritable.exit_code, 2) << unwritable.out << unwritable.err;
  EXPECT_NE(unwritable.err.find("/nonexistent-dir/report.html"), std::string::npos) << unwritable.err;
  const auto ps = test::run_process({"curl", "-sS", "http://127.0.0.1:18898/api/ps"}).out;
  EXPECT_EQ(ps.find("llama3.2"), std::string::npos) << "nothing was loaded: " << ps;
}
