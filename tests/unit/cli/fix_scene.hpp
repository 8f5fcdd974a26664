// The incident host of the fix and serve tests: the v2 fixture tree in a temp dir with its
// Ollama container behind a fake engine and a fake Ollama, a real journal, scripted actions
// and a fake clock.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actions/server_actions.hpp"
#include "adapters/journal.hpp"
#include "cli/fix.hpp"
#include "fake_services.hpp"
#include "test_support.hpp"

namespace mw::test {

using namespace std::chrono_literals;
using engine::FixEnvironment;
using engine::FixOptions;
using engine::FixResult;
using engine::RunMode;

inline const std::string k_id = "3f1c9a7e5b2d4c6f8a0e1d3b5c7f9a2e4d6b8c0a1e3f5d7b9c2a4e6f8d0b1c3a";
inline const std::string k_stat = "sys/fs/cgroup/system.slice/docker-" + k_id + ".scope/memory.stat";
inline constexpr std::int64_t k_wall = 1'800'000'000'000;
// A second server (Servers::two): a copy of the first one's cgroup, its own fake Ollama, no pid.
inline const std::string k_id2 = "7d2e4f6a8b0c1d3e5f7a9b2c4d6e8f0a1b3c5d7e9f2a4b6c8d0e1f3a5b7c9d2e";

enum class Servers { one, two };

// Records calls; runs hooks that change the fixture as the real action would change the host.
class ScriptedActions final : public actions::ServerActions {
 public:
  std::function<Expected<void, Error>()> on_restart = [] { return Expected<void, Error>{}; };
  std::function<void(const std::string&)> on_unload = [](const std::string&) {};
  int restarts = 0;
  std::vector<std::string> unloaded;
  std::vector<std::string> restarted;  // server names, in order (on_restart can read the newest)

  Expected<void, Error> unload_model(const InferenceServer& server, const std::string& model) override {
    m_log.push_back(actions::describe_unload(server, model));
    unloaded.push_back(model);
    on_unload(model);
    return {};
  }
  Expected<void, Error> restart(const InferenceServer& server, Duration stop_timeout) override {
    m_log.push_back(actions::describe_restart(server, stop_timeout, "ollama.service"));
    ++restarts;
    restarted.push_back(server.name);
    return on_restart();
  }
};

// The incident host in a temp dir, with its Ollama container and a journal.
struct Scene {
  TempDir root;
  TempDir sockets;
  TempDir state;
  std::unique_ptr<FakeOllama> ollama;
  std::unique_ptr<FakeOllama> ollama2;  // Servers::two
  std::unique_ptr<FakeEngine> engine;
  std::optional<adapters::Journal> journal;
  FakeClock clock;
  ScriptedActions actions;
  std::vector<std::string> questions;
  bool answer = false;

  // Servers::two adds "ollama-cpu" (k_id2), as bloated and with the same labels as "ollama-gpu".
  explicit Scene(nlohmann::json labels = {{"memwarden.enable", "true"}}, Servers servers = Servers::one) {
    test::copy_fixture("hosts/v2-systemd-incident", root);
    ollama = std::make_unique<FakeOllama>(sockets.path() / "ollama.sock");
    std::vector<nlohmann::json> containers{inspect_like(k_id, "ollama-gpu", 4242, 0, ollama->url(), labels)};
    if (servers == Servers::two) {
      ollama2 = std::make_unique<FakeOllama>(sockets.path() / "ollama2.sock");
      const auto scope = [&](const std::string& id) {
        return root.path() / ("sys/fs/cgroup/system.slice/docker-" + id + ".scope");
      };
      std::filesystem::copy(scope(k_id), scope(k_id2), std::filesystem::copy_options::recursive);
      containers.push_back(inspect_like(k_id2, "ollama-cpu", 0, 0, ollama2->url(), labels));
    }
    engine = std::make_unique<FakeEngine>(sockets.path() / "docker.sock", std::move(containers));
    journal = std::move(adapters::Journal::open(state.path() / "state")).value();
  }

  // The anonymous memory of the server with container `id` (ollama-gpu: k_id, ollama-cpu: k_id2).
  void set_anon(std::uint64_t bytes, const std::string& id = k_id) {
    auto stat = test::read_fixture("hosts/v2-systemd-incident/" + k_stat);
    stat.replace(stat.find("anon 26843545600"), 16, "anon " + std::to_string(bytes));
    root.write("sys/fs/cgroup/system.slice/docker-" + id + ".scope/memory.stat", stat);
  }

  FixOptions options(Selection selection = Selection::automatic, RunMode mode = RunMode::live) const {
    FixOptions o;
    o.diagnose.sampler.root = probes::HostRoot(root.path());
    o.diagnose.sampler.docker_host = engine->address();
    o.diagnose.window = 10s;
    o.diagnose.thresholds.reserve = 0;
    o.selection = selection;
    o.mode = mode;
    return o;
  }

  FixResult run(const FixOptions& o, actions::ServerActions* use = nullptr) {
    FixEnvironment env{clock, [this] { return k_wall + to_ms(clock.now()); }, use ? *use : actions,
                       journal ? &*journal : nullptr,
                       [this](const std::string& q) {
                         questions.push_back(q);
                         return answer;
                       }};
    return engine::run_fix(o, env);
  }
};

}  // namespace mw::test
