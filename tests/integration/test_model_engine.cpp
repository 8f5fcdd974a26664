// `memwarden test model` on the private engine: a real llama.cpp engine (node-llama-cpp behind tests/llm/server.mjs,
// in a container built from this machine's node) loads a generated 1.35 GiB model; memwarden plans it, loads it,
// measures the container's cgroup against the plan, unloads it and checks that the memory came back. The Ollama
// simulator plays the faults the real engine does not have: a server that keeps memory after an unload, and a
// load that fails for lack of memory.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

#include "engine_support.hpp"

using namespace mw;
using namespace mw::it;
namespace fs = std::filesystem;

namespace {

const std::string k_llm_image = "memwarden-test/llm:latest";
constexpr int k_llm_port = 18881;

// `memwarden test --history --json` over a state directory (no engine needed).
nlohmann::json history(const test::TempDir& state) {
  const auto r =
      test::run_process({MEMWARDEN_BIN, "test", "--history", "--json", "--state-dir", state.path().string()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  return parse_output(r);
}

// One generated model for the whole suite (3 s to write), and one server container, started once.
class ModelTestEngine : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    s_dir = new test::TempDir();
    const auto models = s_dir->path() / "models";
    fs::create_directories(models);
    // TinyLlama's shape with 16 layers, f16: 1.35 GiB of random weights that llama.cpp loads and runs.
    const auto gen = test::run_process({MW_GEN_LLAMA, (models / "big.gguf").string()});
    ASSERT_EQ(gen.exit_code, 0) << gen.out << gen.err;
    // --no-mmap: the weights are the server's anonymous memory, charged to its container whatever the page cache
    // already holds.
    s_server = new Container("mw-model-llm",
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
  static test::TempDir* s_dir;
  static Container* s_server;
};
test::TempDir* ModelTestEngine::s_dir = nullptr;
Container* ModelTestEngine::s_server = nullptr;

}  // namespace

TEST_F(ModelTestEngine, ARealLoadIsWithinThePlanAndItsMemoryComesBack) {
  const auto r = memwarden(
      {"test", "model", "big", "--server", "mw-model-llm", "--load", "--json", "--state-dir", m_state.path().string()});
  const auto j = parse_output(r);
  ASSERT_EQ(j["models"].size(), 1U) << r.out << r.err;
  const auto& m = j["models"][0];
  ASSERT_TRUE(m["error"].is_null()) << m["error"];
  EXPECT_EQ(m["fits_now"]["ram"], true);
  const auto& load = m["load"];
  ASSERT_TRUE(load.is_object()) << r.out;
  ASSERT_TRUE(load["error"].is_null()) << load["error"];
  EXPECT_GT(load["load_seconds"].get<double>(), 0.0);
  EXPECT_EQ(load["processor"], "100% CPU");
  // The container's cgroup: the load really added the weights (1.35 GiB), and memwarden's plan said so within
  // its stated error.
  const auto& ram = load["checks"][0];
  ASSERT_EQ(ram["what"], "RAM (container)");
  ASSERT_TRUE(ram["measured_bytes"].is_number()) << r.out;
  EXPECT_GT(ram["measured_bytes"].get<std::uint64_t>(), 1300 * k_mib);
  EXPECT_GT(ram["planned_bytes"].get<std::uint64_t>(), 1300 * k_mib);
  EXPECT_EQ(ram["within_tolerance"], true) << "planned " << ram["planned_bytes"] << ", measured "
                                           << ram["measured_bytes"] << " (" << ram["error_percent"] << "%)";
  EXPECT_EQ(load["unload"]["verdict"], "returned") << load["unload"];
  EXPECT_LT(load["container_after_unload"]["anon_bytes"].get<std::uint64_t>(),
            load["container_before"]["anon_bytes"].get<std::uint64_t>() + 128 * k_mib);
  EXPECT_EQ(ps().find("big:latest"), std::string::npos) << "unloaded: " << ps();
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;

  // The pair is in the history database.
  const auto hj = history(m_state);
  ASSERT_EQ(hj["loads"].size(), 1U) << hj;
  EXPECT_EQ(hj["loads"][0]["model"], "big");
  EXPECT_EQ(hj["loads"][0]["server"], "mw-model-llm");
  EXPECT_EQ(hj["loads"][0]["measured_ram_bytes"], ram["measured_bytes"]);
}

TEST_F(ModelTestEngine, KeepLeavesItLoadedAndWithoutLoadNothingIsLoaded) {
  const auto plan_only = memwarden({"test", "model", "big", "--server", url(), "--json"});
  ASSERT_EQ(plan_only.exit_code, 0) << plan_only.out << plan_only.err;
  const auto pj = parse_output(plan_only);
  EXPECT_TRUE(pj["models"][0]["load"].is_null());
  EXPECT_EQ(pj["server"]["name"], "mw-model-llm") << "the URL is the container's";
  EXPECT_EQ(ps().find("big:latest"), std::string::npos);

  const auto kept = memwarden({"test", "model", "big", "--server", url(), "--load", "--keep", "--json", "--state-dir",
                               m_state.path().string()});
  EXPECT_EQ(kept.exit_code, 0) << kept.out << kept.err;
  EXPECT_NE(ps().find("big:latest"), std::string::npos) << "kept: " << ps();
  EXPECT_EQ(ps().find("2318-"), std::string::npos) << "kept for the server's default keep_alive, not forever: " << ps();

  // Loaded already (someone may be using it): neither loaded nor unloaded, and no pair is stored.
  const auto again = memwarden(
      {"test", "model", "big", "--server", url(), "--load", "--json", "--state-dir", m_state.path().string()});
  EXPECT_EQ(again.exit_code, 1) << again.out << again.err;
  const auto aj = parse_output(again);
  EXPECT_TRUE(aj["models"][0]["load"].is_null());
  EXPECT_NE(aj["models"][0]["not_loaded"].get<std::string>().find("loaded on the server already"), std::string::npos)
      << aj["models"][0];
  EXPECT_NE(ps().find("big:latest"), std::string::npos) << "left loaded: " << ps();
  EXPECT_EQ(history(m_state)["loads"].size(), 1U) << "only the --keep load";
  static_cast<void>(http_post(url() + "/api/generate", R"({"model":"big","keep_alive":0})"));
  EXPECT_EQ(ps().find("big:latest"), std::string::npos);
}

TEST_F(ModelTestEngine, AModelThatDoesNotExistAndAServerThatDoesNotAnswer) {
  const auto missing = memwarden({"test", "model", "nosuch-model:7b", "--server", "mw-model-llm", "--load",
                                  "--state-dir", m_state.path().string()});
  EXPECT_EQ(missing.exit_code, 3) << missing.out << missing.err;
  EXPECT_NE(missing.out.find("nosuch-model:7b"), std::string::npos) << missing.out;

  const auto silent = memwarden(
      {"test", "model", "big", "--server", "http://127.0.0.1:1", "--load", "--state-dir", m_state.path().string()});
  EXPECT_EQ(silent.exit_code, 3) << silent.out << silent.err;
  EXPECT_NE(silent.out.find("127.0.0.1:1"), std::string::npos) << silent.out;

  const auto no_container = memwarden({"test", "model", "big", "--server", "mw-no-such-container", "--load"});
  EXPECT_EQ(no_container.exit_code, 3) << no_container.out << no_container.err;
  EXPECT_NE(no_container.err.find("mw-no-such-container"), std::string::npos) << no_container.err;
}

TEST(ModelTestSimulator, AServerThatKeepsItsMemoryAfterTheUnloadIsAFinding) {
  // The simulator's runner holds 1450 MiB (about what the plan gives llama3.2:1b); once the model is unloaded the
  // server keeps 300 MiB, once per container: each check gets a fresh one.
  const auto retaining = [](const std::string& name, int port) {
    return std::make_unique<Container>(
        name,
        std::vector<std::string>{"--network", "host", "-e", "OLLAMA_HOST=127.0.0.1:" + std::to_string(port), "-m",
                                 "2g"},
        std::vector<std::string>{"/bin/ollama-sim", "--model", "llama3.2:1b=1450", "--retain-after-unload-mib", "300"},
        k_sim_image);
  };
  test::TempDir state;
  {
    const auto sim = retaining("mw-model-sim-retain", 18882);
    ASSERT_TRUE(sim->wait_for_log("ollama-sim: listening")) << sim->logs();
    const auto r = memwarden({"test", "model", "llama3.2:1b", "--server", sim->name(), "--load", "--json",
                              "--state-dir", state.path().string()});
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    const auto j = parse_output(r);
    const auto& load = j["models"][0]["load"];
    ASSERT_TRUE(load.is_object()) << r.out;
    EXPECT_TRUE(load["error"].is_null()) << load["error"];
    EXPECT_EQ(load["checks"][0]["within_tolerance"], true) << "only the unload fails: " << load["checks"][0];
    EXPECT_EQ(load["unload"]["verdict"], "kept") << load["unload"];
    EXPECT_GE(load["unload"]["kept_bytes"].get<std::uint64_t>(), 250 * k_mib);
    EXPECT_EQ(history(state)["loads"][0]["kept_after_unload_bytes"], load["unload"]["kept_bytes"]);
  }
  const auto sim = retaining("mw-model-sim-retain-2", 18884);
  ASSERT_TRUE(sim->wait_for_log("ollama-sim: listening")) << sim->logs();
  const auto text = memwarden(
      {"test", "model", "llama3.2:1b", "--server", sim->name(), "--load", "--state-dir", state.path().string()});
  EXPECT_EQ(text.exit_code, 1) << text.out << text.err;
  EXPECT_NE(text.out.find("FINDING: the server keeps"), std::string::npos) << text.out;
}

TEST(ModelTestSimulator, AContainerTooSmallForThePlanIsNotLoadedInto) {
  test::TempDir state;
  Container sim("mw-model-sim-small",
                {"--network", "host", "-e", "OLLAMA_HOST=127.0.0.1:18883", "-m", "256m", "--memory-swap", "256m"},
                {"/bin/ollama-sim", "--model", "llama3.2:1b=400"}, k_sim_image);
  ASSERT_TRUE(sim.wait_for_log("ollama-sim: listening")) << sim.logs();
  const auto r = memwarden({"test", "model", "llama3.2:1b", "--server", sim.name(), "--load", "--json", "--state-dir",
                            state.path().string()});
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  const auto j = parse_output(r);
  EXPECT_TRUE(j["models"][0]["load"].is_null()) << "nothing asked of the server";
  EXPECT_NE(j["models"][0]["not_loaded"].get<std::string>().find("memory limit of 256 MiB"), std::string::npos)
      << j["models"][0];
  EXPECT_EQ(sim.logs().find("POST /api/generate"), std::string::npos) << sim.logs();
}

TEST(ModelTestSimulator, ALoadThatFailsForLackOfMemoryIsNotPossibleHere) {
  test::TempDir state;
  // The plan (about 1.5 GiB) fits the 2 GiB container, but this runner touches 2.5 GiB: the kernel kills it, as it
  // would an Ollama runner whose model turned out larger than planned.
  Container sim("mw-model-sim-oom",
                {"--network", "host", "-e", "OLLAMA_HOST=127.0.0.1:18885", "-m", "2g", "--memory-swap", "2g"},
                {"/bin/ollama-sim", "--model", "llama3.2:1b=2560"}, k_sim_image);
  ASSERT_TRUE(sim.wait_for_log("ollama-sim: listening")) << sim.logs();
  const auto r = memwarden({"test", "model", "llama3.2:1b", "--server", sim.name(), "--load", "--json", "--state-dir",
                            state.path().string()});
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  const auto j = parse_output(r);
  const auto& load = j["models"][0]["load"];
  ASSERT_TRUE(load.is_object()) << r.out;
  ASSERT_TRUE(load["error"].is_string()) << r.out;
  EXPECT_NE(load["error"].get<std::string>().find("terminated"), std::string::npos) << load["error"];
  EXPECT_NE(load["error"].get<std::string>().find("lack of memory"), std::string::npos) << load["error"];
  EXPECT_EQ(load["lack_of_memory"], true);
  EXPECT_GE(load["oom_kills"].get<std::uint64_t>(), 1U);
  EXPECT_EQ(history(state)["loads"].size(), 0U) << "a failed load is not a measured pair";
}
