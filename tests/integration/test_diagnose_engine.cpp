// `memwarden diagnose` (the real binary) against the Ollama API simulator
// holding real memory in real containers on the private engine. Each
// scenario's fault must be found by the right detector with its numbers
// within 10%, and no healthy or cache-heavy scenario may yield a leak finding.
#include <gtest/gtest.h>

#include <set>

#include "engine_support.hpp"

using namespace mw::it;
using nlohmann::json;

namespace {

const std::set<std::string> k_leak_detectors{"idle-bloat", "growth", "orphan-runner"};

// A simulator container on the host network; its API address comes from OLLAMA_HOST.
class Simulator {
 public:
  Simulator(const std::string& name, int port, std::vector<std::string> flags, std::vector<std::string> run_args = {})
      : m_url("http://127.0.0.1:" + std::to_string(port)),
        m_container(name, with_network(std::move(run_args), port), with_binary(std::move(flags)), k_sim_image) {}

  [[nodiscard]] bool ready() const { return m_container.wait_for_log("ollama-sim: listening"); }
  [[nodiscard]] const std::string& url() const { return m_url; }
  [[nodiscard]] const std::string& name() const { return m_container.name(); }
  [[nodiscard]] const Container& container() const { return m_container; }

  // Loads a model through the API, as a client would.
  [[nodiscard]] bool load(const std::string& model) const {
    const auto r = http_post(m_url + "/api/generate", json{{"model", model}, {"prompt", ""}, {"stream", false}}.dump());
    return r.exit_code == 0 && r.out.find("\"done\":true") != std::string::npos;
  }

 private:
  static std::vector<std::string> with_network(std::vector<std::string> args, int port) {
    args.insert(args.end(), {"--network", "host", "-e", "OLLAMA_HOST=127.0.0.1:" + std::to_string(port)});
    return args;
  }
  static std::vector<std::string> with_binary(std::vector<std::string> flags) {
    flags.insert(flags.begin(), "/bin/ollama-sim");
    return flags;
  }

  std::string m_url;
  Container m_container;
};

struct Diagnosis {
  int exit_code = -1;
  json doc;
  std::string err;

  [[nodiscard]] const json* finding(const std::string& detector) const {
    for (const auto& f : doc["findings"]) {
      if (f["detector"] == detector) {
        return &f;
      }
    }
    return nullptr;
  }
  [[nodiscard]] double evidence(const std::string& detector, const std::string& name) const {
    const auto* f = finding(detector);
    if (f == nullptr || !(*f)["evidence"].contains(name)) {
      ADD_FAILURE() << "no " << detector << " evidence " << name << " in " << doc.dump(2);
      return -1;
    }
    return (*f)["evidence"][name]["value"].get<double>();
  }
  [[nodiscard]] std::set<std::string> detectors() const {
    std::set<std::string> out;
    for (const auto& f : doc["findings"]) {
      out.insert(f["detector"].get<std::string>());
    }
    return out;
  }
};

Diagnosis diagnose(const std::string& name, const std::string& window, std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"diagnose", name, "--json", "--window", window, "--interval", "1s", "--reserve", "0"};
  args.insert(args.end(), extra.begin(), extra.end());
  const auto r = memwarden(args);
  Diagnosis d;
  d.exit_code = r.exit_code;
  d.err = r.err;
  d.doc = json::parse(r.out, nullptr, false);
  EXPECT_FALSE(d.doc.is_discarded()) << r.out << r.err;
  return d;
}

void expect_no_leak_finding(const Diagnosis& d) {
  for (const auto& detector : d.detectors()) {
    EXPECT_EQ(k_leak_detectors.count(detector), 0U) << detector << " in " << d.doc["findings"].dump(2);
  }
}

}  // namespace

TEST(DiagnoseOnEngine, HealthyIdleServer) {
  Simulator sim("mwit-sim-idle", 18501, {"--model", "small:1=300"}, {"-m", "2g"});
  ASSERT_TRUE(sim.ready()) << sim.container().logs();
  const auto d = diagnose(sim.name(), "5s");
  ASSERT_EQ(d.doc["servers"].size(), 1U) << d.doc.dump(2);
  const auto& server = d.doc["servers"][0];
  EXPECT_EQ(server["api_url"], sim.url());
  EXPECT_EQ(server["api_url_source"], "host network");
  EXPECT_EQ(server["api_version"], "0.11.4-sim");
  EXPECT_TRUE(server["models"].empty());
  expect_no_leak_finding(d);
  EXPECT_EQ(d.finding("unlimited"), nullptr);
  if (d.finding("host-pressure") == nullptr) {
    EXPECT_EQ(d.exit_code, 0) << d.doc.dump(2);
  }
}

TEST(DiagnoseOnEngine, HealthyLoadedServer) {
  Simulator sim("mwit-sim-loaded", 18502, {"--model", "small:1=400"}, {"-m", "2g"});
  ASSERT_TRUE(sim.ready());
  ASSERT_TRUE(sim.load("small:1"));
  const auto d = diagnose(sim.name(), "6s");
  const auto& server = d.doc["servers"][0];
  ASSERT_EQ(server["models"].size(), 1U) << server.dump(2);
  EXPECT_EQ(server["models"][0]["size_bytes"], 400 * k_mib);
  EXPECT_EQ(server["expected_ram_bytes"], 400 * k_mib + (1ULL << 30));
  expect_within(server["memory"]["anon_bytes"].get<double>(), 400.0 * k_mib, 0.10, "anon with the model loaded");
  bool runner_seen = false;
  for (const auto& p : server["processes"]) {
    runner_seen = runner_seen || (p["argv"].size() > 1 && p["argv"][1] == "runner");
  }
  EXPECT_TRUE(runner_seen) << server["processes"].dump(2);
  expect_no_leak_finding(d);
}

TEST(DiagnoseOnEngine, IdleBloatIsFoundWithItsNumbers) {
  Simulator sim("mwit-sim-bloat", 18503, {"--model", "small:1=300", "--bloat-at-start-mib", "600"}, {"-m", "2g"});
  ASSERT_TRUE(sim.ready());
  const auto d = diagnose(sim.name(), "5s", {"--base-allowance", "64M", "--bloat-margin", "128M", "--hold", "3s"});
  const auto* f = d.finding("idle-bloat");
  ASSERT_NE(f, nullptr) << d.doc.dump(2);
  EXPECT_EQ((*f)["severity"], "critical");
  EXPECT_EQ((*f)["remedy"], "restart_server");
  expect_within(d.evidence("idle-bloat", "anon_bytes"), 600.0 * k_mib, 0.10, "anon");
  EXPECT_EQ(d.evidence("idle-bloat", "expected_bytes"), 64.0 * k_mib);
  expect_within(d.evidence("idle-bloat", "excess_bytes"), 536.0 * k_mib, 0.10, "excess");
  EXPECT_GE(d.evidence("idle-bloat", "held_seconds"), 3.0);
  EXPECT_EQ(d.exit_code, 5);
  EXPECT_EQ(d.finding("growth"), nullptr) << "a constant bloat is not growth";
}

TEST(DiagnoseOnEngine, SlowLeakIsGrowth) {
  Simulator sim("mwit-sim-slow", 18504, {"--model", "small:1=200", "--leak-per-second-mib", "2"}, {"-m", "2g"});
  ASSERT_TRUE(sim.ready());
  ASSERT_TRUE(sim.load("small:1"));
  const auto d = diagnose(sim.name(), "24s");
  ASSERT_NE(d.finding("growth"), nullptr) << d.doc.dump(2);
  expect_within(d.evidence("growth", "slope_mib_per_hour"), 2.0 * 3600, 0.10, "slope");
  EXPECT_EQ(d.finding("idle-bloat"), nullptr);
  EXPECT_EQ(d.finding("orphan-runner"), nullptr);
}

TEST(DiagnoseOnEngine, FastLeakIsGrowthWithAForecastToTheLimit) {
  Simulator sim("mwit-sim-fast", 18505, {"--model", "small:1=200", "--leak-per-second-mib", "20"},
                {"-m", "1g", "--memory-swap", "1g"});
  ASSERT_TRUE(sim.ready());
  ASSERT_TRUE(sim.load("small:1"));
  const auto d = diagnose(sim.name(), "16s");  // growth needs a 15 s span by default
  const auto* f = d.finding("growth");
  ASSERT_NE(f, nullptr) << d.doc.dump(2);
  expect_within(d.evidence("growth", "slope_mib_per_hour"), 20.0 * 3600, 0.10, "slope");
  const double anon = d.evidence("growth", "anon_bytes");
  expect_within(d.evidence("growth", "hours_to_limit") * 3600, (1024.0 * k_mib - anon) / (20.0 * k_mib), 0.10,
                "seconds to the 1 GiB limit");
  EXPECT_EQ((*f)["severity"], "critical");
  EXPECT_EQ(d.exit_code, 5);
}

TEST(DiagnoseOnEngine, OrphanRunnerHoldsMemoryWithNoModel) {
  Simulator sim("mwit-sim-orphan", 18506, {"--model", "small:1=200", "--orphan-mib", "300"}, {"-m", "2g"});
  ASSERT_TRUE(sim.ready());
  const auto d = diagnose(sim.name(), "4s");
  ASSERT_NE(d.finding("orphan-runner"), nullptr) << d.doc.dump(2);
  expect_within(d.evidence("orphan-runner", "orphan_bytes"), 300.0 * k_mib, 0.10, "orphaned runner memory");
  EXPECT_EQ(d.evidence("orphan-runner", "orphan_processes"), 1.0);
  EXPECT_TRUE(d.doc["servers"][0]["models"].empty());
}

TEST(DiagnoseOnEngine, OrphanLeftByAnUnload) {
  Simulator sim("mwit-sim-orphan2", 18507, {"--model", "small:1=250", "--orphan-runner"}, {"-m", "2g"});
  ASSERT_TRUE(sim.ready());
  ASSERT_TRUE(sim.load("small:1"));
  const auto unload = http_post(sim.url() + "/api/generate", R"({"model":"small:1","keep_alive":0})");
  ASSERT_NE(unload.out.find("unload"), std::string::npos) << unload.out << unload.err;
  const auto d = diagnose(sim.name(), "4s");
  ASSERT_NE(d.finding("orphan-runner"), nullptr) << d.doc.dump(2);
  expect_within(d.evidence("orphan-runner", "orphan_bytes"), 250.0 * k_mib, 0.10, "orphaned runner memory");
}

TEST(DiagnoseOnEngine, CacheHeavyIsExplainedNotALeak) {
  Simulator sim("mwit-sim-cache", 18508,
                {"--model", "small:1=200", "--cache-file", "/tmp/weights.gguf", "--cache-mib", "400"}, {"-m", "2g"});
  ASSERT_TRUE(sim.ready());
  const auto d = diagnose(sim.name(), "5s");
  expect_no_leak_finding(d);
  const auto* f = d.finding("page-cache");
  ASSERT_NE(f, nullptr) << d.doc.dump(2);
  EXPECT_EQ((*f)["severity"], "info");
  expect_within(d.evidence("page-cache", "file_bytes"), 400.0 * k_mib, 0.10, "page cache");
}

TEST(DiagnoseOnEngine, UnreachableAndSlowApisAreFindingsNotCrashes) {
  // A server container whose API port has nobody listening.
  Container silent("mwit-sim-silent", {"--network", "host", "-e", "OLLAMA_HOST=127.0.0.1:18509", "-m", "512m"},
                   {"/bin/memhog", "--mib", "64"}, k_sim_image);
  ASSERT_TRUE(silent.wait_for_log("memhog: ready"));
  Simulator slow("mwit-sim-slowapi", 18510, {"--model", "small:1=200", "--slow-ms", "3000"}, {"-m", "1g"});
  ASSERT_TRUE(slow.ready());
  const auto d = diagnose(silent.name(), "0", {"--api-timeout", "1s"});
  const auto* f = d.finding("api-unreachable");
  ASSERT_NE(f, nullptr) << d.doc.dump(2);
  EXPECT_NE((*f)["summary"].get<std::string>().find("http://127.0.0.1:18509 (GET /api/ps): connection refused"),
            std::string::npos)
      << (*f)["summary"];
  expect_within(d.doc["servers"][0]["memory"]["anon_bytes"].get<double>(), 64.0 * k_mib, 0.10,
                "cgroup data still read");
  const auto s = diagnose(slow.name(), "0", {"--api-timeout", "1s"});
  const auto* g = s.finding("api-unreachable");
  ASSERT_NE(g, nullptr) << s.doc.dump(2);
  EXPECT_NE((*g)["summary"].get<std::string>().find("no answer within 1.0 s"), std::string::npos) << (*g)["summary"];
  EXPECT_EQ(s.exit_code, 4);
}
