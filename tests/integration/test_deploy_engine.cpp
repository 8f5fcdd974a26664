// `memwarden deploy` as a user runs it: the real binary against the private engine, with the Ollama
// simulator standing in for the images the built-in profiles run (ollama/ollama:latest and
// localai/localai:latest-gpu-nvidia-cuda-12 are the simulator there, started the way the official image
// starts Ollama). Each container memwarden creates is read back with `docker inspect`.
#include <gtest/gtest.h>

#include <fstream>

#include "engine_support.hpp"

using namespace mw;
using namespace mw::it;
using json = nlohmann::json;

namespace {

// Removes the named containers when the test ends, however it ends.
class Cleanup {
 public:
  explicit Cleanup(std::vector<std::string> names) : m_names(std::move(names)) { remove(); }
  ~Cleanup() { remove(); }
  Cleanup(const Cleanup&) = delete;
  Cleanup& operator=(const Cleanup&) = delete;

 private:
  void remove() const {
    for (const auto& n : m_names) {
      (void)docker({"rm", "-f", n});
      (void)docker({"rm", "-f", n + "-old"});
    }
  }
  std::vector<std::string> m_names;
};

json inspect(const std::string& name) {
  const auto r = docker({"inspect", name});
  if (r.exit_code != 0) {
    return json();
  }
  const auto doc = json::parse(r.out, nullptr, false);
  return doc.is_array() && !doc.empty() ? doc[0] : json();
}

bool exists(const std::string& name) {
  return docker({"inspect", name}).exit_code == 0;
}

std::map<std::string, std::string> env_of(const json& c) {
  std::map<std::string, std::string> out;
  for (const auto& e : c["Config"]["Env"]) {
    const auto text = e.get<std::string>();
    const auto eq = text.find('=');
    out[text.substr(0, eq)] = eq == std::string::npos ? "" : text.substr(eq + 1);
  }
  return out;
}

// The host memwarden plans for in these tests: big enough for every built-in profile on the CPU.
const std::vector<std::string> k_big_host{"--ram", "256G", "--vram", "0"};

std::vector<std::string> deploy_args(const std::string& target, const std::string& name, int port,
                                     std::vector<std::string> extra = {}) {
  std::vector<std::string> args{
      "deploy", target, "--name", name, "--network", "host", "--port", std::to_string(port), "--state-dir", ""};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

class DeployEngine : public ::testing::Test {
 protected:
  test::TempDir m_state;
  // deploy with the test's own journal.
  test::ProcessResult deploy(std::vector<std::string> args) {
    for (auto& a : args) {
      if (a.empty()) {
        a = m_state.path().string();  // --state-dir's value
      }
    }
    return memwarden(std::move(args));
  }
};

}  // namespace

TEST_F(DeployEngine, EachBuiltinProfileGetsThePlannedLimitLabelsAndEnvironment) {
  const std::vector<std::string> profiles{"large-33b", "large-70b", "standard", "localai"};
  std::vector<std::string> names;
  for (const auto& p : profiles) {
    names.push_back("mwit-dep-" + p);
  }
  Cleanup cleanup(names);
  int port = 18851;
  for (const auto& profile : profiles) {
    SCOPED_TRACE(profile);
    const std::string name = "mwit-dep-" + profile;
    auto args = deploy_args(profile, name, port++, k_big_host);
    args.insert(args.end(), {"--yes", "--json"});
    const auto r = deploy(args);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    const auto report = parse_output(r);
    const auto planned = report["memory_bytes"].get<std::int64_t>();

    // The limit is the plan's for the profile's model on this (hypothetical) host, as `memwarden plan` says.
    const auto model = report["models"][0].get<std::string>();
    auto plan = test::run_process({MEMWARDEN_BIN, "plan", model, "--ram", "256G", "--vram", "0", "--ctx", "4096",
                                   "--parallel", "1", "--kv-type", "f16", "--json"});
    ASSERT_EQ(plan.exit_code, 0) << plan.out << plan.err;
    EXPECT_EQ(planned, parse_output(plan)["models"][0]["container_limit_bytes"].get<std::int64_t>());

    const auto c = inspect(name);
    ASSERT_TRUE(c.is_object()) << name << " was not created";
    EXPECT_EQ(c["HostConfig"]["Memory"].get<std::int64_t>(), planned);
    EXPECT_EQ(c["HostConfig"]["MemorySwap"].get<std::int64_t>(), planned) << "no swap";
    EXPECT_EQ(c["HostConfig"]["RestartPolicy"]["Name"], "unless-stopped");
    EXPECT_EQ(c["State"]["Running"], true);
    const auto& labels = c["Config"]["Labels"];
    EXPECT_EQ(labels["memwarden.enable"], "true");
    EXPECT_EQ(labels["memwarden.profile"], profile);
    EXPECT_EQ(labels["memwarden.kind"], profile == "localai" ? "localai" : "ollama");
    EXPECT_FALSE(c["Config"]["Healthcheck"]["Test"].empty());
    const auto env = env_of(c);
    if (profile == "localai") {
      EXPECT_EQ(env.at("LOCALAI_CONTEXT_SIZE"), "4096");
      EXPECT_EQ(env.at("LOCALAI_ADDRESS"), "127.0.0.1:" + std::to_string(port - 1));
    } else {
      EXPECT_EQ(env.at("OLLAMA_CONTEXT_LENGTH"), "4096");
      EXPECT_EQ(env.at("OLLAMA_NUM_PARALLEL"), "1");
      EXPECT_EQ(env.at("OLLAMA_MAX_LOADED_MODELS"), "1");
      EXPECT_EQ(env.at("OLLAMA_KEEP_ALIVE"), "5m");
      EXPECT_EQ(env.at("OLLAMA_HOST"), "127.0.0.1:" + std::to_string(port - 1));
    }
    bool store = false;
    for (const auto& m : c["Mounts"]) {
      store =
          store || (m["Type"] == "volume" && m["Destination"] == (profile == "localai" ? "/models" : "/root/.ollama"));
    }
    EXPECT_TRUE(store) << c["Mounts"].dump();
  }
}

TEST_F(DeployEngine, DryRunCreatesNothing) {
  Cleanup cleanup({"mwit-dep-dry"});
  auto args = deploy_args("standard", "mwit-dep-dry", 18856, k_big_host);
  args.insert(args.end(), {"--dry-run", "--json"});
  const auto r = deploy(args);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto j = parse_output(r);
  EXPECT_EQ(j["dry_run"], true);
  EXPECT_EQ(j["would_deploy"], true);
  EXPECT_EQ(j["create_body"]["HostConfig"]["Memory"], j["memory_bytes"]);
  EXPECT_FALSE(exists("mwit-dep-dry"));
}

TEST_F(DeployEngine, AdmissionRefusesWhatBreaksTheReserveAndNamesWhatWouldMakeRoom) {
  Cleanup cleanup({"mwit-dep-refused", "mwit-dep-holder"});
  // Holds an 8 GiB limit: beside it the standard profile (7.5 GiB) and the 4 GiB reserve do not fit 16 GiB.
  Container holder("mwit-dep-holder", {"--network", "none", "-m", "8g"}, {"/bin/sleep", "600"});
  const auto r = deploy(deploy_args("standard", "mwit-dep-refused", 18857, {"--ram", "16G", "--vram", "0"}));
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  EXPECT_NE(r.err.find("refused"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("mwit-dep-holder: frees 8.00 GiB"), std::string::npos) << r.err;
  EXPECT_FALSE(exists("mwit-dep-refused"));

  // Without the holder it fits.
  (void)docker({"rm", "-f", "mwit-dep-holder"});
  const auto ok = deploy(deploy_args("standard", "mwit-dep-refused", 18857, {"--ram", "16G", "--vram", "0"}));
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
}

TEST_F(DeployEngine, ModelsThatDoNotFitAtAllExitFourWithThePlansReasons) {
  Cleanup cleanup({"mwit-dep-nofit"});
  const auto r = deploy(deploy_args("large-70b", "mwit-dep-nofit", 18858, {"--ram", "16G", "--vram", "0"}));
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  EXPECT_NE(r.err.find("does not fit"), std::string::npos) << r.err;
  EXPECT_FALSE(exists("mwit-dep-nofit"));
}

TEST_F(DeployEngine, ExclusiveStopsTheOtherServersButNotProtectedOnesAndRestoreStartsThem) {
  Cleanup cleanup({"mwit-dep-excl", "mwit-dep-excl2", "mwit-dep-other", "mwit-dep-kept"});
  Container other("mwit-dep-other", {"--network", "host", "-e", "OLLAMA_HOST=127.0.0.1:18861"}, {"/bin/ollama-sim"},
                  k_sim_image);
  Container kept("mwit-dep-kept",
                 {"--network", "host", "-e", "OLLAMA_HOST=127.0.0.1:18862", "--label", "memwarden.protect=true"},
                 {"/bin/ollama-sim"}, k_sim_image);
  ASSERT_TRUE(other.wait_for_log("ollama-sim: listening")) << other.logs();
  ASSERT_TRUE(kept.wait_for_log("ollama-sim: listening")) << kept.logs();

  // Without --yes nothing is stopped nor created.
  const auto refused = deploy(deploy_args("large-33b", "mwit-dep-excl", 18863, k_big_host));
  EXPECT_EQ(refused.exit_code, 2) << refused.out << refused.err;
  EXPECT_NE(refused.err.find("mwit-dep-other"), std::string::npos) << refused.err;
  EXPECT_EQ(inspect("mwit-dep-other")["State"]["Running"], true);
  EXPECT_FALSE(exists("mwit-dep-excl"));

  auto args = deploy_args("large-33b", "mwit-dep-excl", 18863, k_big_host);
  args.push_back("--yes");
  const auto r = deploy(args);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(inspect("mwit-dep-other")["State"]["Running"], false);
  EXPECT_EQ(inspect("mwit-dep-kept")["State"]["Running"], true) << "memwarden.protect=true is never stopped";
  EXPECT_EQ(inspect("mwit-dep-excl")["State"]["Running"], true);

  // A second exclusive deployment stops the first: restoring undoes both, back to before the first.
  auto second = deploy_args("large-70b", "mwit-dep-excl2", 18870, k_big_host);
  second.push_back("--yes");
  const auto r2 = deploy(second);
  ASSERT_EQ(r2.exit_code, 0) << r2.out << r2.err;
  EXPECT_EQ(inspect("mwit-dep-excl")["State"]["Running"], false);

  // The exclusive server still runs: restoring asks for --yes to stop it first.
  const auto asks = deploy({"deploy", "--restore", "--state-dir", ""});
  EXPECT_EQ(asks.exit_code, 2) << asks.out << asks.err;
  EXPECT_NE(asks.err.find("mwit-dep-excl2 still runs"), std::string::npos) << asks.err;
  EXPECT_EQ(inspect("mwit-dep-other")["State"]["Running"], false);

  const auto restore = deploy({"deploy", "--restore", "--yes", "--state-dir", ""});
  ASSERT_EQ(restore.exit_code, 0) << restore.out << restore.err;
  EXPECT_NE(restore.out.find("stopped mwit-dep-excl2"), std::string::npos) << restore.out;
  EXPECT_NE(restore.out.find("started mwit-dep-other"), std::string::npos) << restore.out;
  EXPECT_EQ(inspect("mwit-dep-other")["State"]["Running"], true);
  EXPECT_EQ(inspect("mwit-dep-excl")["State"]["Running"], false) << "itself an exclusive deployment being undone";
  EXPECT_EQ(inspect("mwit-dep-excl2")["State"]["Running"], false);
  EXPECT_EQ(inspect("mwit-dep-kept")["State"]["Running"], true);
  const auto again = deploy({"deploy", "--restore", "--state-dir", ""});
  EXPECT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_NE(again.out.find("restored already"), std::string::npos) << again.out;
}

TEST_F(DeployEngine, ARedeployWhoseNewServerNeverAnswersRollsBackToTheOldOne) {
  Cleanup cleanup({"mwit-dep-re"});
  ASSERT_EQ(deploy(deploy_args("standard", "mwit-dep-re", 18864, k_big_host)).exit_code, 0);
  const auto old_id = inspect("mwit-dep-re")["Id"].get<std::string>();

  // A profile whose image runs but never serves (the simulator's image, told to sleep).
  test::TempDir dir;
  const auto config = dir.path() / "memwarden.yaml";
  std::ofstream(config) << "profiles:\n  mute:\n    models: [llama3.1:8b]\n    image: memwarden-test/mute\n";
  auto args = deploy_args("mute", "mwit-dep-re", 18864, k_big_host);
  args.insert(args.end(), {"--config", config.string(), "--wait", "3s"});
  const auto r = deploy(args);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("the old mwit-dep-re is back (running)"), std::string::npos) << r.err;
  const auto now = inspect("mwit-dep-re");
  EXPECT_EQ(now["Id"].get<std::string>(), old_id) << "the old container, not a new one";
  EXPECT_EQ(now["State"]["Running"], true);
  EXPECT_FALSE(exists("mwit-dep-re-old"));
  EXPECT_EQ(docker({"ps", "-aq", "--filter", "label=memwarden.profile=mute"}).out, "") << "the new one is removed";

  // A re-deploy that works replaces it with a new container.
  const auto ok = deploy(deploy_args("standard", "mwit-dep-re", 18864, k_big_host));
  ASSERT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_NE(inspect("mwit-dep-re")["Id"].get<std::string>(), old_id);
  EXPECT_FALSE(exists("mwit-dep-re-old"));
}

TEST_F(DeployEngine, AContainerMemwardenDidNotMakeIsReplacedOnlyWithReplace) {
  Cleanup cleanup({"mwit-dep-foreign"});
  Container foreign("mwit-dep-foreign", {"--network", "none"},
                    {"/bin/sh", "-c", "trap 'exit 0' TERM; sleep 600 & wait"});
  const auto r = deploy(deploy_args("standard", "mwit-dep-foreign", 18865, k_big_host));
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("--replace"), std::string::npos) << r.err;
  EXPECT_EQ(inspect("mwit-dep-foreign")["Config"]["Image"], k_hog_image);
  auto dry = deploy_args("standard", "mwit-dep-foreign", 18865, k_big_host);
  dry.push_back("--dry-run");
  const auto dry_run = deploy(dry);
  EXPECT_EQ(dry_run.exit_code, 2) << "a dry run says what the real one would refuse\n" << dry_run.out << dry_run.err;

  auto args = deploy_args("standard", "mwit-dep-foreign", 18865, k_big_host);
  args.push_back("--replace");
  const auto replaced = deploy(args);
  ASSERT_EQ(replaced.exit_code, 0) << replaced.out << replaced.err;
  EXPECT_EQ(inspect("mwit-dep-foreign")["Config"]["Labels"]["memwarden.profile"], "standard");
}

TEST_F(DeployEngine, BadInputIsOneClearLineAndCreatesNothing) {
  Cleanup cleanup({"mwit-dep-bad", "mwit-dep-port"});
  // An unknown profile or model.
  auto r = deploy(deploy_args("standrd", "mwit-dep-bad", 18866, k_big_host));
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("did you mean standard"), std::string::npos) << r.err;

  // An image that is not present.
  test::TempDir dir;
  const auto config = dir.path() / "memwarden.yaml";
  std::ofstream(config) << "profiles:\n  absent:\n    models: [llama3.1:8b]\n    image: nosuch/image\n    tag: '1.0'\n";
  auto args = deploy_args("absent", "mwit-dep-bad", 18866, k_big_host);
  args.insert(args.end(), {"--config", config.string()});
  r = deploy(args);
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("docker pull nosuch/image:1.0"), std::string::npos) << r.err;

  // A port already in use (by another server on the host's network).
  Container user("mwit-dep-port", {"--network", "host", "-e", "OLLAMA_HOST=127.0.0.1:18867"}, {"/bin/ollama-sim"},
                 k_sim_image);
  ASSERT_TRUE(user.wait_for_log("ollama-sim: listening")) << user.logs();
  r = deploy(deploy_args("standard", "mwit-dep-bad", 18867, k_big_host));
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("port 18867 is in use"), std::string::npos) << r.err;
  EXPECT_FALSE(exists("mwit-dep-bad"));
}

TEST_F(DeployEngine, TheComposeFileCreatesTheSameLimitsAsDeploy) {
  Cleanup cleanup({"mwit-dep-compose"});
  test::TempDir dir;
  const auto file = dir.path() / "compose.yml";
  const std::vector<std::string> what{"standard", "--name", "mwit-dep-compose", "--network", "host", "--port", "18868",
                                      "--ram",    "256G",   "--vram",           "0"};
  auto args = what;
  args.insert(args.begin(), {MEMWARDEN_BIN, "export", "compose"});
  args.insert(args.end(), {"--no-gpu-runtime", "--out", file.string()});
  const auto exported = test::run_process(args);
  ASSERT_EQ(exported.exit_code, 0) << exported.out << exported.err;

  auto dry = what;
  dry.insert(dry.begin(), "deploy");
  dry.insert(dry.end(), {"--dry-run", "--json", "--state-dir", ""});
  const auto planned = parse_output(deploy(dry));

  const auto up = test::run_process({"docker-compose", "-f", file.string(), "-p", "mwitcompose", "up", "-d"},
                                    {"DOCKER_HOST=" + docker_host()});
  ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
  const auto c = inspect("mwit-dep-compose");
  ASSERT_TRUE(c.is_object());
  EXPECT_EQ(c["HostConfig"]["Memory"], planned["memory_bytes"]);
  EXPECT_EQ(c["HostConfig"]["MemorySwap"], planned["memory_swap_bytes"]);
  EXPECT_EQ(c["Config"]["Labels"]["memwarden.profile"], "standard");
  EXPECT_EQ(env_of(c).at("OLLAMA_HOST"), "127.0.0.1:18868");
  const auto down = test::run_process({"docker-compose", "-f", file.string(), "-p", "mwitcompose", "down"},
                                      {"DOCKER_HOST=" + docker_host()});
  EXPECT_EQ(down.exit_code, 0) << down.out << down.err;
}

TEST_F(DeployEngine, PortainerTemplatesValidateAndPointAtStacksThatCompose) {
  test::TempDir dir;
  const auto r = test::run_process({MEMWARDEN_BIN, "export", "portainer-templates", "--repo-url",
                                    "https://git.example/ops/stacks.git", "--dir", dir.path().string(), "--ram", "256G",
                                    "--vram", "16G"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto check = test::run_process(
      {std::string(MEMWARDEN_SCRIPTS_DIR) + "/check-portainer-templates.sh", (dir.path() / "templates.json").string()});
  if (check.exit_code == 77) {
    GTEST_SKIP() << "python3-jsonschema is missing: " << check.err;
  }
  ASSERT_EQ(check.exit_code, 0) << check.out << check.err;
  const auto templates = json::parse(std::ifstream(dir.path() / "templates.json"));
  ASSERT_EQ(templates["templates"].size(), 4U) << "one stack per built-in profile";
  for (const auto& t : templates["templates"]) {
    EXPECT_EQ(t["type"], 3) << "type 1 templates cannot carry a memory limit or a GPU";
    const auto stack = dir.path() / t["repository"]["stackfile"].get<std::string>();
    const auto config = test::run_process({"docker-compose", "-f", stack.string(), "config", "-q"});
    EXPECT_EQ(config.exit_code, 0) << stack << config.err;
  }
}

TEST_F(DeployEngine, LoadComparesWhatTheServerReportsWithThePlan) {
  Cleanup cleanup({"mwit-dep-load"});
  test::TempDir dir;
  const auto config = dir.path() / "memwarden.yaml";
  // The simulator's image that knows llama3.1:8b and holds 300 MiB once it is loaded.
  std::ofstream(config) << "profiles:\n  loaded:\n    models: [llama3.1:8b]\n    image: memwarden-test/ollama-loaded\n";
  auto args = deploy_args("loaded", "mwit-dep-load", 18869, k_big_host);
  args.insert(args.end(), {"--config", config.string(), "--load", "--json"});
  const auto r = deploy(args);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto j = parse_output(r);
  ASSERT_EQ(j["load"].size(), 1U) << r.out;
  const auto& l = j["load"][0];
  EXPECT_TRUE(l["error"].is_null()) << l.dump();
  EXPECT_EQ(l["ps_size_bytes"].get<std::uint64_t>(), 300 * k_mib) << "what /api/ps reports";
  EXPECT_GE(l["container_bytes"].get<std::uint64_t>(), 290 * k_mib) << "the memory the container holds";
  EXPECT_EQ(l["planned_ram_bytes"], j["ram_needed_bytes"]) << "beside the plan";
  EXPECT_EQ(l["limit_bytes"], j["memory_bytes"]);
}
