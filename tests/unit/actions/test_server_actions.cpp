// The live actions' host-process path runs systemctl through a recording
// runner (no systemd here); the dry-run actions describe without acting.
#include <gtest/gtest.h>

#include "actions/server_actions.hpp"

using namespace mw;
using namespace mw::actions;
using namespace std::chrono_literals;

namespace {

InferenceServer host_ollama() {
  InferenceServer s;
  s.name = "ollama (host, pid 812)";
  s.kind = ServerKind::host_process;
  s.pid = 812;
  s.api_url = "http://127.0.0.1:11434";
  return s;
}

}  // namespace

TEST(LiveActions, HostOllamaIsRestartedWithSystemctlWithoutAShell) {
  RecordingRunner runner;
  LiveActions actions(nullptr, runner, "ollama.service", 2s);
  ASSERT_TRUE(actions.restart(host_ollama(), 10s));
  ASSERT_EQ(runner.calls().size(), 1U);
  EXPECT_EQ(runner.calls()[0].argv, (std::vector<std::string>{"systemctl", "restart", "--", "ollama.service"}));
  EXPECT_GE(runner.calls()[0].timeout, 10s) << "the time-out allows for the stop time-out";
  EXPECT_EQ(actions.log(),
            std::vector<std::string>{"restart ollama (host, pid 812): systemctl restart -- ollama.service"});
}

TEST(LiveActions, SystemctlFailureIsAnError) {
  RecordingRunner runner;
  runner.push_result(CommandResult{5, "Failed to restart ollama.service: Unit ollama.service not found.\n", false});
  LiveActions actions(nullptr, runner, "ollama.service", 2s);
  const auto r = actions.restart(host_ollama(), 10s);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().line().find("restart of ollama.service failed (exit 5): Failed to restart"), std::string::npos)
      << r.error().line();
  RecordingRunner slow;
  slow.push_result(CommandResult{-1, "", true});
  LiveActions timing_out(nullptr, slow, "ollama.service", 2s);
  EXPECT_NE(timing_out.restart(host_ollama(), 10s).error().line().find("timed out"), std::string::npos);
}

TEST(LiveActions, HostileUnitNamesNeverReachTheRunner) {
  RecordingRunner runner;
  LiveActions actions(nullptr, runner, "ollama.service; rm -rf /", 2s);
  const auto r = actions.restart(host_ollama(), 10s);
  ASSERT_FALSE(r);
  EXPECT_TRUE(runner.calls().empty());
}

TEST(LiveActions, ContainerRestartWithoutDockerIsAClearError) {
  RecordingRunner runner;
  LiveActions actions(nullptr, runner, "ollama.service", 2s);
  InferenceServer c;
  c.name = "ollama-gpu";
  c.container_id = std::string(64, 'a');
  const auto r = actions.restart(c, 10s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().line(), "docker: cannot restart ollama-gpu: Docker is not reachable");
  EXPECT_TRUE(runner.calls().empty()) << "a container is never restarted through systemctl";
}

TEST(DryRunActions, DescribeExactlyAndChangeNothing) {
  DryRunActions dry("ollama.service");
  InferenceServer c;
  c.name = "ollama-gpu";
  c.container_id = "3f1c9a7e5b2d4c6f8a0e1d3b5c7f9a2e4d6b8c0a1e3f5d7b9c2a4e6f8d0b1c3a";
  c.api_url = "http://127.0.0.1:11434";
  ASSERT_TRUE(dry.unload_model(c, "llama3.1:8b"));
  ASSERT_TRUE(dry.restart(c, 10s));
  ASSERT_TRUE(dry.restart(host_ollama(), 10s));
  EXPECT_EQ(dry.log(), (std::vector<std::string>{
                           "would unload llama3.1:8b from ollama-gpu: POST http://127.0.0.1:11434/api/generate "
                           "{\"model\": \"llama3.1:8b\", \"keep_alive\": 0}",
                           "would restart container ollama-gpu: POST /containers/3f1c9a7e5b2d/restart?t=10",
                           "would restart ollama (host, pid 812): systemctl restart -- ollama.service"}));
}
