// recreate_container against a scripted engine: what it asks the engine, in which order, and what it undoes
// when a step fails (no half-made container left behind; the old one back under its name and running).
#include <gtest/gtest.h>

#include <algorithm>
#include <mutex>

#include <nlohmann/json.hpp>

#include "engine/recreate.hpp"
#include "recording_server.hpp"
#include "test_support.hpp"

namespace mw::engine {
namespace {

using test::RecordedRequest;
using test::RecordingServer;

const std::string k_new_id(64, 'b');

nlohmann::json captured() {
  return nlohmann::json::parse(test::read_fixture("docker/inspect-recreate.json"));
}

const std::string k_old_id = captured()["Id"].get<std::string>();
const std::string k_aside = "mw-rc-capture-old-" + k_old_id.substr(0, 8);

// An engine holding the captured container; it creates one more, and fails the steps the test names.
class ScriptedEngine {
 public:
  ScriptedEngine() {
    m_server.set_handler([this](const RecordedRequest& r) { return answer(r); });
  }
  void fail(std::string step) {
    std::lock_guard lock(m_mutex);
    m_failing.push_back(std::move(step));
  }
  void set_old(nlohmann::json doc) {
    std::lock_guard lock(m_mutex);
    m_old = std::move(doc);
  }
  [[nodiscard]] adapters::DockerClient connect() const {
    auto docker = adapters::DockerClient::connect(
        *adapters::parse_endpoint("tcp://127.0.0.1:" + std::to_string(m_server.port()), "t"), std::chrono::seconds(5));
    EXPECT_TRUE(docker) << docker.error().line();
    return std::move(*docker);
  }
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
  [[nodiscard]] std::string created_body() const {
    for (const auto& r : m_server.requests()) {
      if (r.path.find("/containers/create") != std::string::npos) {
        return r.body;
      }
    }
    return {};
  }

 private:
  RecordingServer::Reply answer(const RecordedRequest& r) {
    std::lock_guard lock(m_mutex);
    const auto& p = r.path;
    auto failing = [&](const std::string& step) {
      return std::find(m_failing.begin(), m_failing.end(), step) != m_failing.end();
    };
    const auto refused = RecordingServer::Reply{500, R"({"message":"engine is shutting down"})"};
    if (p == "/_ping") {
      return {200, "OK", "text/plain"};
    }
    if (p == "/version") {
      return {200, R"({"ApiVersion":"1.41","Version":"20.10.24"})"};
    }
    if (p.find("/containers/create") != std::string::npos) {
      return failing("create") ? refused : RecordingServer::Reply{201, R"({"Id":")" + k_new_id + R"("})"};
    }
    const bool is_new = p.find(k_new_id) != std::string::npos;
    if (r.method == "GET" && p.ends_with("/json")) {
      if (!is_new) {
        return {200, m_old.dump()};
      }
      auto doc = m_old;
      doc["Id"] = k_new_id;
      if (failing("exits")) {
        doc["State"]["Status"] = "exited";
        doc["State"]["Running"] = false;
        doc["State"]["ExitCode"] = 3;
      }
      return {200, doc.dump()};
    }
    for (const char* step : {"/stop", "/rename", "/start"}) {
      const auto name = std::string(step).substr(1) + (is_new ? "_new" : "_old");
      if (p.find(step) != std::string::npos && failing(name)) {
        return refused;
      }
    }
    if (r.method == "DELETE" && failing(is_new ? "remove_new" : "remove_old")) {
      return refused;
    }
    if (const auto at = p.find("/rename?name="); at != std::string::npos && !is_new) {
      const auto name = p.substr(at + 13);
      if (name == "mw-rc-capture" && failing("rename_back")) {
        return {409, R"({"message":"Conflict. The container name \"/mw-rc-capture\" is already in use"})"};
      }
      m_old["Name"] = "/" + name;
    }
    return {204, ""};
  }

  RecordingServer m_server;
  mutable std::mutex m_mutex;
  std::vector<std::string> m_failing;
  nlohmann::json m_old = captured();
};

RecreateOptions quick() {
  RecreateOptions o;
  o.ready_wait = std::chrono::milliseconds(50);
  o.stop_timeout = std::chrono::seconds(5);
  return o;
}

std::vector<std::string> step_names(const std::vector<RecreateStep>& steps) {
  std::vector<std::string> out;
  for (const auto& s : steps) {
    out.push_back(s.name + (s.ok ? "" : "!"));
  }
  return out;
}

TEST(Recreate, StepsInOrderAndTheOldOneRemovedLast) {
  ScriptedEngine engine;
  auto docker = engine.connect();
  RecreateChange change;
  change.env["FOO"] = "baz";
  change.memory = 0;
  std::vector<std::string> seen;
  auto options = quick();
  options.on_step = [&](const RecreateStep& s) { seen.push_back(s.name); };
  const auto r = recreate_container(docker, "mw-rc-capture", change, options);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->name, "mw-rc-capture");
  EXPECT_EQ(r->old_id, k_old_id);
  EXPECT_EQ(r->new_id, k_new_id);
  EXPECT_EQ(step_names(r->steps),
            (std::vector<std::string>{"stop", "rename", "create", "start", "wait", "remove_old"}));
  EXPECT_EQ(seen, step_names(r->steps)) << "each step reported as it ends";
  const auto calls = engine.calls();
  const std::vector<std::string> expected{"GET /containers/mw-rc-capture/json",
                                          "POST /containers/" + k_old_id + "/stop?t=5",
                                          "POST /containers/" + k_old_id + "/rename?name=" + k_aside,
                                          "POST /containers/create?name=mw-rc-capture",
                                          "POST /containers/" + k_new_id + "/start",
                                          "GET /containers/" + k_new_id + "/json",
                                          "GET /containers/" + k_new_id + "/json",
                                          "DELETE /containers/" + k_old_id + "?force=1"};
  EXPECT_EQ(calls, expected);
  const auto body = nlohmann::json::parse(engine.created_body());
  EXPECT_EQ(body["Env"], nlohmann::json({"OLLAMA_KEEP_ALIVE=5m", "FOO=baz"}));
  EXPECT_EQ(body["HostConfig"]["Memory"], 0);
  EXPECT_EQ(body["HostConfig"]["MemorySwap"], 0);
}

TEST(Recreate, ABodyThatCannotBeBuiltChangesNothing) {
  ScriptedEngine engine;
  auto docker = engine.connect();
  RecreateChange change;
  change.env["lower"] = "x";
  const auto r = recreate_container(docker, "mw-rc-capture", change, quick());
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().restored);
  EXPECT_NE(r.error().message.find("'lower' is not an environment variable name"), std::string::npos)
      << r.error().message;
  EXPECT_EQ(r.error().lines, (std::vector<std::string>{"  nothing was changed"}));
  EXPECT_EQ(engine.calls(), (std::vector<std::string>{"GET /containers/mw-rc-capture/json"}));
}

TEST(Recreate, AContainerRemovedWhenItStopsIsRefused) {
  ScriptedEngine engine;
  auto doc = captured();
  doc["HostConfig"]["AutoRemove"] = true;
  engine.set_old(doc);
  auto docker = engine.connect();
  const auto r = recreate_container(docker, "mw-rc-capture", {}, quick());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("--rm"), std::string::npos) << r.error().message;
  EXPECT_EQ(engine.calls().size(), 1U);
}

TEST(Recreate, ARefusedCreateBringsTheOldOneBack) {
  ScriptedEngine engine;
  engine.fail("create");
  auto docker = engine.connect();
  const auto r = recreate_container(docker, "mw-rc-capture", {}, quick());
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().restored);
  EXPECT_NE(r.error().message.find("create failed"), std::string::npos);
  EXPECT_EQ(step_names(r.error().steps), (std::vector<std::string>{"stop", "rename", "create!", "rollback"}));
  const auto calls = engine.calls();
  ASSERT_GE(calls.size(), 2U);
  EXPECT_EQ(calls[calls.size() - 2], "POST /containers/" + k_old_id + "/rename?name=mw-rc-capture");
  EXPECT_EQ(calls.back(), "POST /containers/" + k_old_id + "/start");
  EXPECT_EQ(r.error().lines.back(),
            "  the old mw-rc-capture (" + k_old_id.substr(0, 12) + ") is back under its name, running");
}

TEST(Recreate, ANewContainerThatExitsIsRemovedAndTheOldOneIsBack) {
  ScriptedEngine engine;
  engine.fail("exits");
  auto docker = engine.connect();
  const auto r = recreate_container(docker, "mw-rc-capture", {}, quick());
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().restored);
  EXPECT_NE(r.error().message.find("did not become ready"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("exit code 3"), std::string::npos) << r.error().message;
  EXPECT_EQ(step_names(r.error().steps),
            (std::vector<std::string>{"stop", "rename", "create", "start", "wait!", "rollback", "rollback"}));
  const auto calls = engine.calls();
  const std::vector<std::string> tail{"DELETE /containers/" + k_new_id + "?force=1",
                                      "POST /containers/" + k_old_id + "/rename?name=mw-rc-capture",
                                      "POST /containers/" + k_old_id + "/start"};
  ASSERT_GE(calls.size(), tail.size());
  EXPECT_EQ(std::vector<std::string>(calls.end() - 3, calls.end()), tail);
  EXPECT_EQ(r.error().lines.front(), "  the new container " + k_new_id.substr(0, 12) + " is removed");
}

TEST(Recreate, WhatCannotBeUndoneIsSaidWithTheCommandsThatWould) {
  ScriptedEngine engine;
  engine.fail("start_new");
  engine.fail("remove_new");
  engine.fail("rename_back");
  auto docker = engine.connect();
  const auto r = recreate_container(docker, "mw-rc-capture", {}, quick());
  ASSERT_FALSE(r);
  EXPECT_FALSE(r.error().restored);
  EXPECT_EQ(r.error().lines.size(), 3U);
  EXPECT_EQ(r.error().lines[0], "  the new container bbbbbbbbbbbb is left: docker rm -f bbbbbbbbbbbb");
  EXPECT_NE(r.error().lines[1].find("is left as " + k_aside + " (stopped)"), std::string::npos) << r.error().lines[1];
  EXPECT_EQ(r.error().lines[2],
            "  to bring it back: docker rename " + k_aside + " mw-rc-capture && docker start mw-rc-capture");
}

TEST(Recreate, AStoppedContainerIsMadeAgainStopped) {
  ScriptedEngine engine;
  auto doc = captured();
  doc["State"]["Running"] = false;
  doc["State"]["Status"] = "exited";
  engine.set_old(doc);
  auto docker = engine.connect();
  const auto r = recreate_container(docker, "mw-rc-capture", {}, quick());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(step_names(r->steps), (std::vector<std::string>{"rename", "create", "remove_old"}));
}

TEST(Recreate, AnOldOneThatCannotBeRemovedIsStillASuccessThatSaysSo) {
  ScriptedEngine engine;
  engine.fail("remove_old");
  auto docker = engine.connect();
  const auto r = recreate_container(docker, "mw-rc-capture", {}, quick());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(r->steps.back().ok);
  EXPECT_NE(r->steps.back().detail.find("docker rm -f " + k_aside), std::string::npos) << r->steps.back().detail;
}

}  // namespace
}  // namespace mw::engine
