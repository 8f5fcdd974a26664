// apply_optimize against a scripted engine and a captured host tree (v1-hybrid-cgroupfs, whose container the
// engine fixture inspect-limited.json describes): what it asks the engine, what it journals, and how a refusal
// and a container gone are told apart while the rest goes on.
#include <gtest/gtest.h>

#include <fstream>
#include <mutex>
#include <sstream>

#include "adapters/journal.hpp"
#include "engine/optimize.hpp"
#include "recording_server.hpp"
#include "test_support.hpp"

namespace mw::engine {
namespace {

using test::RecordedRequest;
using test::RecordingServer;

const std::string k_id = "1a41e922df86006078d99eb27e8cdf5cd62c8b9ada79ffb2cc02328721727c2b";

std::string read_fixture(const std::string& relative) {
  std::ifstream in(test::fixture_path(relative));
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Inspect answers the captured container for its id or name; every other container is gone. An update is
// refused with the engine's own words for the swap rule.
class ScriptedEngine {
 public:
  ScriptedEngine() : m_inspect(read_fixture("docker/inspect-limited.json")) {
    m_server.set_handler([this](const RecordedRequest& r) { return answer(r); });
  }
  [[nodiscard]] std::string address() const { return "tcp://127.0.0.1:" + std::to_string(m_server.port()); }
  [[nodiscard]] std::vector<std::string> updates() const {
    std::vector<std::string> out;
    for (const auto& r : m_server.requests()) {
      if (r.path.find("/update") != std::string::npos) {
        out.push_back(r.body);
      }
    }
    return out;
  }

 private:
  RecordingServer::Reply answer(const RecordedRequest& r) {
    const auto& p = r.path;
    if (p == "/_ping") {
      return {200, "OK", "text/plain"};
    }
    if (p == "/version") {
      return {200, R"({"ApiVersion":"1.41","Version":"20.10.24"})"};
    }
    if (p.find("/update") != std::string::npos) {
      return {
          409,
          R"({"message":"Cannot update container )" + k_id +
              R"(: Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time"})"};
    }
    if (p.find("/containers/" + k_id + "/json") != std::string::npos ||
        p.find("/containers/lim/json") != std::string::npos) {
      return {200, m_inspect};
    }
    return {404, R"({"message":"No such container: gone"})"};
  }

  std::string m_inspect;
  RecordingServer m_server;
};

OptimizeItem limit_item(std::string id, std::string name, std::uint64_t target) {
  OptimizeItem item;
  item.id = std::move(id);
  item.name = std::move(name);
  item.allowed = true;
  item.limit = 64ULL << 20;
  item.memory_swap = 128LL << 20;
  item.basis = "peak 40 MiB over 30 h of history, + 25%";
  item.decision.action = LimitAction::raise;
  item.decision.target = target;
  return item;
}

}  // namespace

TEST(OptimizeApply, ARefusalIsSaidInPlainWordsJournaledAndTheRestGoesOn) {
  ScriptedEngine engine;
  test::TempDir dir;
  OptimizeOptions o;
  o.root = probes::HostRoot(test::fixture_path("hosts/v1-hybrid-cgroupfs"));
  o.docker_host = engine.address();
  o.state_dir = (dir.path() / "state").string();
  OptimizePlan plan;
  plan.items.push_back(limit_item(k_id, "lim", 512ULL << 20));
  plan.items.push_back(limit_item(std::string(64, 'c'), "gone", 512ULL << 20));
  const auto done = apply_optimize(plan, o, nullptr);
  ASSERT_EQ(done.changes.size(), 2U);
  const auto& refused = done.changes[0];
  EXPECT_EQ(refused.outcome, ChangeOutcome::failed);
  EXPECT_NE(refused.detail.find("refused"), std::string::npos) << refused.detail;
  EXPECT_NE(refused.detail.find("memory+swap"), std::string::npos) << refused.detail;       // plain words first
  EXPECT_NE(refused.detail.find("memoryswap limit"), std::string::npos) << refused.detail;  // then the engine's
  ASSERT_TRUE(refused.journal_id);
  const auto& gone = done.changes[1];
  EXPECT_EQ(gone.outcome, ChangeOutcome::skipped);
  EXPECT_NE(gone.detail.find("gone"), std::string::npos) << gone.detail;
  EXPECT_FALSE(gone.journal_id);
  // Memory and MemorySwap sent together, both the plan's target (the floor, 312 KiB used + 256 MiB, is under it).
  const auto updates = engine.updates();
  ASSERT_EQ(updates.size(), 1U);
  EXPECT_EQ(updates[0], R"({"Memory":536870912,"MemorySwap":536870912})");
  // The journal holds the refusal as failed, with the value before.
  auto journal = adapters::Journal::open(o.state_dir);
  ASSERT_TRUE(journal);
  auto records = journal->list(0);
  ASSERT_TRUE(records);
  ASSERT_EQ(records->size(), 1U);
  EXPECT_EQ((*records)[0].kind, "optimize_limit");
  EXPECT_EQ((*records)[0].outcome, ActionOutcome::failed);
  EXPECT_NE((*records)[0].evidence_json.find(R"("memory":67108864)"), std::string::npos) << (*records)[0].evidence_json;
  // --undo has nothing to put back: the refused change was never made.
  const auto undo = undo_optimize(o);
  ASSERT_TRUE(undo.nothing);
  EXPECT_EQ(undo_exit(undo), OptimizeExit::partial);
}

TEST(OptimizeApply, ATargetUnderWhatTheContainerUsesNowIsNeverSent) {
  ScriptedEngine engine;
  test::TempDir dir;
  OptimizeOptions o;
  o.root = probes::HostRoot(test::fixture_path("hosts/v1-hybrid-cgroupfs"));
  o.docker_host = engine.address();
  o.state_dir = (dir.path() / "state").string();
  OptimizePlan plan;
  plan.items.push_back(limit_item(k_id, "lim", 256ULL << 20));  // under 312 KiB + the 256 MiB margin
  const auto done = apply_optimize(plan, o, nullptr);
  ASSERT_EQ(done.changes.size(), 1U);
  EXPECT_EQ(done.changes[0].outcome, ChangeOutcome::skipped);
  EXPECT_NE(done.changes[0].detail.find("never set below"), std::string::npos) << done.changes[0].detail;
  EXPECT_TRUE(engine.updates().empty());
}

TEST(OptimizeApply, AStopBeforeTheFirstChangeChangesNothing) {
  ScriptedEngine engine;
  test::TempDir dir;
  OptimizeOptions o;
  o.root = probes::HostRoot(test::fixture_path("hosts/v1-hybrid-cgroupfs"));
  o.docker_host = engine.address();
  o.state_dir = (dir.path() / "state").string();
  OptimizePlan plan;
  plan.items.push_back(limit_item(k_id, "lim", 512ULL << 20));
  std::atomic<bool> stop{true};
  const auto done = apply_optimize(plan, o, &stop);
  EXPECT_TRUE(done.interrupted);
  EXPECT_TRUE(done.changes.empty());
  EXPECT_TRUE(engine.updates().empty());
}

}  // namespace mw::engine

namespace mw::engine {
namespace {

// A change optimize made and finished, as apply_optimize journals it.
void journal_change(const std::string& state_dir, const std::string& kind, const std::string& evidence,
                    ActionOutcome outcome) {
  auto journal = adapters::Journal::open(state_dir);
  ASSERT_TRUE(journal) << journal.error().line();
  adapters::JournalRecord r;
  r.started_at_ms = 1'000;
  r.server = "lim";
  r.container_id = k_id;
  r.kind = kind;
  r.evidence_json = evidence;
  auto id = journal->begin(r);
  ASSERT_TRUE(id);
  if (outcome != ActionOutcome::in_progress) {
    ASSERT_TRUE(journal->finish(*id, outcome, "", std::nullopt, 2'000));
  }
}

}  // namespace

TEST(OptimizeUndo, PutsBackTheValueBeforeTheOldestChangeOnceAndLeavesFailedOnesAlone) {
  ScriptedEngine engine;
  test::TempDir dir;
  OptimizeOptions o;
  o.root = probes::HostRoot(test::fixture_path("hosts/v1-hybrid-cgroupfs"));
  o.docker_host = engine.address();
  o.state_dir = (dir.path() / "state").string();
  // 64 MiB (+64 MiB swap) -> 512 MiB -> 1 GiB, and a refused change after them.
  journal_change(o.state_dir, "optimize_limit",
                 R"({"name":"lim","before":{"memory":67108864,"memory_swap":134217728},"after":{"memory":536870912}})",
                 ActionOutcome::succeeded);
  journal_change(
      o.state_dir, "optimize_limit",
      R"({"name":"lim","before":{"memory":536870912,"memory_swap":536870912},"after":{"memory":1073741824}})",
      ActionOutcome::succeeded);
  journal_change(o.state_dir, "optimize_limit",
                 R"({"name":"lim","before":{"memory":1073741824,"memory_swap":1073741824},"after":{"memory":9}})",
                 ActionOutcome::failed);
  const auto undo = undo_optimize(o);
  ASSERT_EQ(undo.changes.size(), 1U);
  // The engine refuses every update here: what matters is what was asked. 64 MiB is under optimize's margin
  // (312 KiB used + 256 MiB) but above what the container uses: the user's own value is put back.
  EXPECT_EQ(engine.updates(), std::vector<std::string>{R"({"Memory":67108864,"MemorySwap":134217728})"});
  EXPECT_EQ(undo.changes[0].outcome, ChangeOutcome::failed) << undo.changes[0].detail;
}

TEST(OptimizeUndo, ARecordStillInProgressIsAnOptimizeAtWorkAndNothingIsUndone) {
  ScriptedEngine engine;
  test::TempDir dir;
  OptimizeOptions o;
  o.root = probes::HostRoot(test::fixture_path("hosts/v1-hybrid-cgroupfs"));
  o.docker_host = engine.address();
  o.state_dir = (dir.path() / "state").string();
  journal_change(o.state_dir, "optimize_limit",
                 R"({"name":"lim","before":{"memory":67108864,"memory_swap":134217728},"after":{"memory":536870912}})",
                 ActionOutcome::succeeded);
  journal_change(
      o.state_dir, "optimize_limit",
      R"({"name":"lim","before":{"memory":536870912,"memory_swap":536870912},"after":{"memory":1073741824}})",
      ActionOutcome::in_progress);  // this process is its writer, and alive
  const auto undo = undo_optimize(o);
  ASSERT_TRUE(undo.busy);
  EXPECT_TRUE(undo.changes.empty());
  EXPECT_TRUE(engine.updates().empty());
  EXPECT_EQ(undo_exit(undo), OptimizeExit::failed);
}

}  // namespace mw::engine
