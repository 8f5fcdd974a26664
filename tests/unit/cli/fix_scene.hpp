// The incident host of the fix and serve tests: the v2 fixture tree in a temp dir with its
// Ollama container behind a fake engine and a fake Ollama, a real journal, scripted actions
// and a fake clock.
#pragma once

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

// Records calls; runs hooks that change the fixture as the real action would change the host.
class ScriptedActions final : public actions::ServerActions {
 public:
  std::function<Expected<void, Error>()> on_restart = [] { return Expected<void, Error>{}; };
  std::function<void(const std::string&)> on_unload = [](const std::string&) {};
  int restarts = 0;
  std::vector<std::string> unloaded;

  Expected<void, Error> unload_model(const InferenceServer& server, const std::string& model) override {
    m_log.push_back(actions::describe_unload(server, model));
    unloaded.push_back(model);
    on_unload(model);
    return {};
  }
  Expected<void, Error> restart(const InferenceServer& server, Duration stop_timeout) override {
    m_log.push_back(actions::describe_restart(server, stop_timeout, "ollama.service"));
    ++restarts;
    return on_restart();
  }
};

// The incident host in a temp dir, with its Ollama container and a journal.
struct Scene {
  TempDir root;
  TempDir sockets;
  TempDir state;
  std::unique_ptr<FakeOllama> ollama;
  std::unique_ptr<FakeEngine> engine;
  std::optional<adapters::Journal> journal;
  FakeClock clock;
  ScriptedActions actions;
  std::vector<std::string> questions;
  bool answer = false;

  explicit Scene(nlohmann::json labels = {{"memwarden.enable", "true"}}) {
    test::copy_fixture("hosts/v2-systemd-incident", root);
    ollama = std::make_unique<FakeOllama>(sockets.path() / "ollama.sock");
    engine = std::make_unique<FakeEngine>(
        sockets.path() / "docker.sock",
        std::vector<nlohmann::json>{inspect_like(k_id, "ollama-gpu", 4242, 0, ollama->url(), labels)});
    journal = std::move(adapters::Journal::open(state.path() / "state")).value();
  }

  void set_anon(std::uint64_t bytes) {
    auto stat = test::read_fixture("hosts/v2-systemd-incident/" + k_stat);
    stat.replace(stat.find("anon 26843545600"), 16, "anon " + std::to_string(bytes));
    root.write(k_stat, stat);
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
    FixEnvironment env{clock, [this] { return k_wall + clock.now().count(); }, use ? *use : actions,
                       journal ? &*journal : nullptr,
                       [this](const std::string& q) {
                         questions.push_back(q);
                         return answer;
                       }};
    return engine::run_fix(o, env);
  }
};

}  // namespace mw::test
