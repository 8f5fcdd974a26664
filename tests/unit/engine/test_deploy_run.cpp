// run_deployment against a scripted engine: what it asks the engine, in which order, and what it undoes when
// the engine fails in the middle (no half-made container left behind; the old one back under its name).
#include <gtest/gtest.h>

#include <mutex>

#include "engine/deploy.hpp"
#include "recording_server.hpp"
#include "test_support.hpp"

namespace mw::engine {
namespace {

using test::RecordedRequest;
using test::RecordingServer;

const std::string k_new_id(64, 'b');
const std::string k_old_id(64, 'a');

// An engine that creates containers, and fails the steps the test names with HTTP 500.
class ScriptedEngine {
 public:
  ScriptedEngine() {
    m_server.set_handler([this](const RecordedRequest& r) { return answer(r); });
  }
  void fail(std::string step) {
    std::lock_guard lock(m_mutex);
    m_failing.push_back(std::move(step));
  }
  [[nodiscard]] std::string address() const { return "tcp://127.0.0.1:" + std::to_string(m_server.port()); }
  // "POST /containers/create?name=x", without the /v1.NN prefix; pings and version checks left out.
  [[nodiscard]] std::vector<std::string> calls() const {
    std::vector<std::string> out;
    for (const auto& r : m_server.requests()) {
      auto path = r.path;
      if (path.rfind("/v1.", 0) == 0) {
        path = path.substr(path.find('/', 1));
      }
      if (path != "/_ping" && path != "/version") {
        out.push_back(r.method + " " + path);
      }
    }
    return out;
  }

 private:
  RecordingServer::Reply answer(const RecordedRequest& r) {
    std::lock_guard lock(m_mutex);
    const auto& p = r.path;
    auto failing = [&](const std::string& step) {
      return std::find(m_failing.begin(), m_failing.end(), step) != m_failing.end();
    };
    if (p == "/_ping") {
      return {200, "OK", "text/plain"};
    }
    if (p == "/version") {
      return {200, R"({"ApiVersion":"1.41","Version":"20.10.24"})"};
    }
    if (p.find("/images/") != std::string::npos) {
      return {200, "{}"};
    }
    if (p.find("/containers/create") != std::string::npos) {
      return failing("create") ? RecordingServer::Reply{500, R"({"message":"engine is shutting down"})"}
                               : RecordingServer::Reply{201, R"({"Id":")" + k_new_id + R"(","Warnings":[]})"};
    }
    if (p.find("/start") != std::string::npos && p.find(k_new_id) != std::string::npos && failing("start")) {
      return {500, R"({"message":"engine is shutting down"})"};
    }
    if (p.find("/json") != std::string::npos) {
      return {404, R"({"message":"no such container"})"};  // wait_for_api's inspect: never reached here
    }
    return {204, ""};
  }

  RecordingServer m_server;
  mutable std::mutex m_mutex;
  std::vector<std::string> m_failing;
};

PreparedDeployment prepared(std::optional<ContainerMeta> existing) {
  Profile p;
  p.name = "standard";
  p.models = {"llama3.1:8b"};
  p.port = 1;  // nothing answers there: a deployment that gets as far as waiting would fail
  DeployChoices c;
  c.name = "svc";
  c.memory_limit = 8ULL << 30;
  PreparedDeployment out;
  out.spec = make_deploy_spec(p, c);
  out.admission.ram_fits = true;
  out.existing = std::move(existing);
  return out;
}

ContainerMeta old_container() {
  ContainerMeta m;
  m.id = k_old_id;
  m.name = "svc";
  m.labels["memwarden.deployed"] = "true";
  m.state.running = true;
  return m;
}

struct Scene {
  ScriptedEngine engine;
  test::TempDir state;
  DeployOptions options;
  RunOptions run;
  Scene() {
    options.plan.docker_host = engine.address();
    run.state_dir = state.path().string();
    run.api_wait = std::chrono::milliseconds(1);
  }
};

TEST(RunDeployment, AStartThatFailsRemovesTheNewContainer) {
  Scene r;
  r.engine.fail("start");
  const auto result = run_deployment(prepared(std::nullopt), r.options, r.run);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().exit, DeployExit::failed);
  const auto calls = r.engine.calls();
  ASSERT_GE(calls.size(), 3U);
  EXPECT_EQ(calls.back(), "DELETE /containers/" + k_new_id + "?force=1") << "no half-made container is left";
}

TEST(RunDeployment, ARedeployThatFailsBringsTheOldContainerBackUnderItsName) {
  Scene r;
  r.engine.fail("create");
  const auto result = run_deployment(prepared(old_container()), r.options, r.run);
  ASSERT_FALSE(result.has_value());
  const std::vector<std::string> expected{
      "GET /images/ollama/ollama:latest/json",
      "POST /containers/" + k_old_id + "/stop?t=30",
      "POST /containers/" + k_old_id + "/rename?name=svc-old",
      "POST /containers/create?name=svc",
      "POST /containers/" + k_old_id + "/rename?name=svc",
      "POST /containers/" + k_old_id + "/start",
  };
  EXPECT_EQ(r.engine.calls(), expected);
  bool said = false;
  for (const auto& line : result.error().lines) {
    said = said || line.find("the old svc is back (running)") != std::string::npos;
  }
  EXPECT_TRUE(said);
}

TEST(RunDeployment, ANewServerThatNeverAnswersIsRemovedAndTheOldOneRestarted) {
  Scene r;  // the API at 127.0.0.1:1 never answers; the wait is 1 ms
  const auto result = run_deployment(prepared(old_container()), r.options, r.run);
  ASSERT_FALSE(result.has_value());
  const auto calls = r.engine.calls();
  const std::vector<std::string> tail{
      "DELETE /containers/" + k_new_id + "?force=1",
      "POST /containers/" + k_old_id + "/rename?name=svc",
      "POST /containers/" + k_old_id + "/start",
  };
  ASSERT_GE(calls.size(), tail.size());
  EXPECT_EQ(std::vector<std::string>(calls.end() - 3, calls.end()), tail);
}

TEST(RunDeployment, AForeignContainerIsLeftAloneWithoutReplace) {
  Scene r;
  auto foreign = old_container();
  foreign.labels.clear();
  const auto result = run_deployment(prepared(foreign), r.options, r.run);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().exit, DeployExit::usage);
  EXPECT_TRUE(r.engine.calls().empty()) << "nothing asked of the engine";
}

TEST(RunDeployment, RefusedAdmissionAsksNothingOfTheEngine) {
  Scene r;
  auto p = prepared(std::nullopt);
  p.admission.ram_fits = false;
  const auto result = run_deployment(p, r.options, r.run);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().exit, DeployExit::no_room);
  EXPECT_TRUE(r.engine.calls().empty());
}

}  // namespace
}  // namespace mw::engine
