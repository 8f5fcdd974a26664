// run_fix on fixture host trees with a fake engine, a fake Ollama, a real
// journal in a temp dir, scripted actions and a fake clock.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include "adapters/sample_store.hpp"
#include "cli/fix.hpp"
#include "fix_scene.hpp"

using namespace mw;
using namespace mw::cli;
using namespace mw::engine;
using namespace std::chrono_literals;
using nlohmann::json;
using test::FakeClock;
using test::FakeEngine;
using test::FakeOllama;
using test::inspect_like;
using test::k_id;
using test::k_stat;
using test::k_wall;
using test::Scene;
using test::ScriptedActions;
using test::TempDir;

namespace {

std::vector<std::string> step_names(const ServerFixReport& r) {
  std::vector<std::string> out;
  for (const auto& s : r.steps) {
    out.emplace_back(to_string(s.step));
  }
  return out;
}

}  // namespace

TEST(FixCommand, IdleBloatIsRestartedVerifiedAndJournaled) {
  Scene scene;
  scene.actions.on_restart = [&] {
    scene.set_anon(26ULL << 20);  // what a restart does to the incident: 25 GiB -> 26 MiB
    return Expected<void, Error>{};
  };
  const auto result = scene.run(scene.options());
  ASSERT_EQ(result.servers.size(), 1U);
  const auto& r = result.servers[0];
  EXPECT_EQ(scene.actions.restarts, 1);
  EXPECT_EQ(r.outcome, ActionOutcome::succeeded) << r.message;
  EXPECT_EQ(step_names(r), (std::vector<std::string>{"drain", "restart", "health_wait", "verify"}));
  EXPECT_EQ(r.before_anon, 26843545600U);
  EXPECT_EQ(r.after_anon, 26ULL << 20);
  EXPECT_NE(r.message.find("25.0 GiB → 26.0 MiB (-99.9%)"), std::string::npos) << r.message;
  EXPECT_EQ(fix_exit_code(result), FixExit::ok);
  const auto records = scene.journal->list(10);
  ASSERT_TRUE(records && records->size() == 1U);
  const auto& rec = records->front();
  EXPECT_EQ(rec.outcome, ActionOutcome::succeeded);
  EXPECT_FALSE(rec.incomplete());
  EXPECT_EQ(rec.kind, "restart");
  EXPECT_EQ(rec.server, "ollama-gpu");
  EXPECT_EQ(rec.before_bytes, 26843545600U);
  EXPECT_EQ(rec.after_bytes, 26ULL << 20);
  EXPECT_EQ(rec.steps.size(), 4U);
  EXPECT_NE(rec.reason.find("idle-bloat"), std::string::npos);
  EXPECT_NE(rec.evidence_json.find("anon_bytes"), std::string::npos);
}

TEST(FixCommand, UnloadingCuresItWithoutARestart) {
  Scene scene;
  scene.ollama->set_ps(R"({"models":[{"name":"big:1","model":"big:1","size":1073741824,"size_vram":0}]})");
  scene.actions.on_unload = [&](const std::string&) {
    scene.ollama->set_ps(R"({"models":[]})");
    scene.set_anon(600ULL << 20);
  };
  const auto result = scene.run(scene.options());
  ASSERT_EQ(result.servers.size(), 1U);
  const auto& r = result.servers[0];
  EXPECT_EQ(scene.actions.unloaded, std::vector<std::string>{"big:1"});
  EXPECT_EQ(scene.actions.restarts, 0) << "unloading cured it";
  EXPECT_EQ(r.outcome, ActionOutcome::succeeded);
  EXPECT_EQ(step_names(r), (std::vector<std::string>{"unload", "settle"}));
  EXPECT_NE(r.message.find("unloading cured it, no restart"), std::string::npos) << r.message;
  EXPECT_EQ(scene.journal->list(1)->front().kind, "unload");
}

TEST(FixCommand, UnloadThatDoesNotHelpEndsInARestart) {
  Scene scene;
  scene.ollama->set_ps(R"({"models":[{"name":"big:1","model":"big:1","size":1073741824,"size_vram":0}]})");
  scene.actions.on_unload = [&](const std::string&) { scene.ollama->set_ps(R"({"models":[]})"); };
  const auto result = scene.run(scene.options());
  const auto& r = result.servers[0];
  EXPECT_EQ(scene.actions.restarts, 1);
  EXPECT_EQ(step_names(r), (std::vector<std::string>{"unload", "settle", "drain", "restart", "health_wait", "verify"}));
  EXPECT_EQ(r.kind, FixStep::restart);
}

TEST(FixCommand, NotOptedInIsNeverTouchedByAll) {
  Scene scene(json::object());
  const auto result = scene.run(scene.options());
  ASSERT_EQ(result.servers.size(), 1U);
  EXPECT_EQ(scene.actions.restarts, 0);
  EXPECT_EQ(result.servers[0].outcome, ActionOutcome::refused);
  EXPECT_EQ(result.servers[0].verdict.eligibility, Eligibility::not_opted_in);
  EXPECT_TRUE(scene.questions.empty()) << "--all never asks";
  EXPECT_EQ(fix_exit_code(result), FixExit::left_alone);
  EXPECT_TRUE(scene.journal->list(10)->empty());
}

TEST(FixCommand, NamedServersThatDidNotOptInNeedConfirmation) {
  Scene scene(json::object());
  auto options = scene.options(Selection::named);
  options.diagnose.sampler.targets = {"ollama-gpu"};
  const auto refused = scene.run(options);
  EXPECT_EQ(scene.actions.restarts, 0);
  ASSERT_EQ(scene.questions.size(), 1U);
  EXPECT_NE(scene.questions[0].find("ollama-gpu has not opted in"), std::string::npos);
  EXPECT_NE(refused.servers[0].message.find("not confirmed (use --yes)"), std::string::npos);
  scene.answer = true;
  const auto confirmed = scene.run(options);
  EXPECT_EQ(scene.actions.restarts, 1);
  EXPECT_EQ(confirmed.servers[0].verdict.reason, "confirmed by the operator");
}

TEST(FixCommand, ProtectedAndOwnContainersAreNeverTouched) {
  Scene scene({{"memwarden.enable", "true"}, {"memwarden.protect", "true"}});
  EXPECT_EQ(scene.run(scene.options()).servers[0].verdict.eligibility, Eligibility::protected_server);
  Scene self;
  auto options = self.options();
  options.own_container_id = k_id;
  EXPECT_EQ(self.run(options).servers[0].verdict.eligibility, Eligibility::self);
  EXPECT_EQ(scene.actions.restarts + self.actions.restarts, 0);
}

TEST(FixCommand, DryRunChangesNothingAndSaysExactlyWhat) {
  Scene scene;
  actions::DryRunActions dry("ollama.service");
  const auto result = scene.run(scene.options(Selection::automatic, RunMode::dry_run), &dry);
  const auto& r = result.servers[0];
  EXPECT_EQ(r.outcome, ActionOutcome::dry_run);
  EXPECT_TRUE(scene.engine->posts().empty());
  EXPECT_TRUE(scene.journal->list(10)->empty());
  EXPECT_TRUE(r.steps.empty());
  ASSERT_GE(r.plan.size(), 2U);
  EXPECT_EQ(r.plan[0], "would restart container ollama-gpu: POST /containers/3f1c9a7e5b2d/restart?t=10");
  EXPECT_NE(r.plan[1].find("would wait up to 120 s for"), std::string::npos) << r.plan[1];
  EXPECT_NE(render_fix(result, RunMode::dry_run).find("dry run: nothing will be changed"), std::string::npos);
}

TEST(FixCommand, BudgetExhaustedMeansNoFurtherRestart) {
  Scene scene;
  auto options = scene.options();
  options.policy.cooldown = 0s;
  for (int i = 0; i < 3; ++i) {
    adapters::JournalRecord rec;
    rec.started_at_ms = k_wall + to_ms(scene.clock.now()) - (50 - 10 * i) * 60'000;
    rec.server = "ollama-gpu";
    rec.kind = "restart";
    const auto id = scene.journal->begin(rec);
    ASSERT_TRUE(id);
    ASSERT_TRUE(scene.journal->finish(*id, ActionOutcome::succeeded, "ok", 1, rec.started_at_ms + 1000));
  }
  const auto result = scene.run(options);
  EXPECT_EQ(scene.actions.restarts, 0);
  EXPECT_EQ(result.servers[0].verdict.eligibility, Eligibility::budget_exhausted);
  EXPECT_TRUE(result.servers[0].verdict.retry_at_ms.has_value());
  EXPECT_EQ(fix_exit_code(result), FixExit::left_alone);
}

TEST(FixCommand, FailedRestartIsJournaledAndNotRetried) {
  Scene scene;
  scene.actions.on_restart = [] {
    return Expected<void, Error>(
        fail("unix:///d.sock (POST /v1.41/containers/3f1c/restart?t=10)", "HTTP 404: No such container", ENOENT));
  };
  const auto result = scene.run(scene.options());
  EXPECT_EQ(scene.actions.restarts, 1);
  EXPECT_EQ(result.servers[0].outcome, ActionOutcome::failed);
  EXPECT_NE(result.servers[0].message.find("restart failed: "), std::string::npos);
  EXPECT_EQ(fix_exit_code(result), FixExit::failed);
  EXPECT_EQ(scene.journal->list(1)->front().outcome, ActionOutcome::failed);
  const auto again = scene.run(scene.options());
  EXPECT_EQ(scene.actions.restarts, 1) << "a failed restart still starts the cooldown: no restart loop";
  EXPECT_EQ(again.servers[0].verdict.eligibility, Eligibility::cooldown);
}

TEST(FixCommand, ApiThatNeverComesBackFails) {
  Scene scene;
  scene.actions.on_restart = [&] {
    scene.ollama.reset();  // the server does not come back
    return Expected<void, Error>{};
  };
  auto options = scene.options();
  options.policy.health_timeout = 30s;
  const auto result = scene.run(options);
  const auto& r = result.servers[0];
  EXPECT_EQ(r.outcome, ActionOutcome::failed);
  EXPECT_NE(r.message.find("the API did not answer within 30 s"), std::string::npos) << r.message;
  EXPECT_EQ(step_names(r), (std::vector<std::string>{"drain", "restart", "health_wait"}));
  EXPECT_EQ(fix_exit_code(result), FixExit::failed);
}

TEST(FixCommand, NoJournalNoAction) {
  Scene scene;
  scene.journal.reset();
  const auto result = scene.run(scene.options());
  EXPECT_EQ(scene.actions.restarts, 0);
  EXPECT_TRUE(result.servers[0].journal_unavailable);
  EXPECT_EQ(fix_exit_code(result), FixExit::journal);
}

TEST(FixCommand, LockedJournalMeansNoAction) {
  Scene scene;
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open((scene.state.path() / "state" / "memwarden.db").c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);
  const auto result = scene.run(scene.options());
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  EXPECT_EQ(scene.actions.restarts, 0);
  ASSERT_EQ(result.servers.size(), 1U);
  EXPECT_NE(result.servers[0].message.find("locked"), std::string::npos) << result.servers[0].message;
  EXPECT_EQ(fix_exit_code(result), FixExit::journal);
}

TEST(FixCommand, HealthyServersNeedNothing) {
  Scene scene;
  scene.set_anon(300ULL << 20);
  const auto result = scene.run(scene.options());
  EXPECT_TRUE(result.servers.empty());
  EXPECT_EQ(fix_exit_code(result), FixExit::ok);
  EXPECT_NE(render_fix(result, RunMode::live).find("nothing to fix"), std::string::npos);
}

TEST(FixCommand, LookbackStartsTheWindowWithTheStoredHistory) {
  Scene scene;
  // The server was bloated for the last 30 minutes that memwarden serve stored; the window itself is one sample.
  {
    auto store = adapters::SampleStore::open(scene.state.path() / "state", {});
    ASSERT_TRUE(store) << store.error().line();
    std::vector<adapters::StoredSample> rows;
    for (int i = 0; i < 180; ++i) {
      adapters::StoredSample s;
      s.at_ms = k_wall - 1'800'000 + i * 10'000LL;
      s.subject = "ollama-gpu";
      s.anon = 26843545600;
      s.usage = s.anon;
      s.models_loaded = 0;
      rows.push_back(s);
    }
    ASSERT_TRUE(store->append(rows));
  }
  auto o = scene.options();
  o.diagnose.window = 0s;  // one live sample: without the history the 10 s hold is not met
  const auto without = scene.run(o);
  EXPECT_TRUE(without.servers.empty()) << fix_to_json(without, RunMode::live).dump(2);
  o.diagnose.lookback = {30min, (scene.state.path() / "state").string(), k_wall};
  scene.actions.on_restart = [&] {
    scene.set_anon(26ULL << 20);
    return Expected<void, Error>{};
  };
  const auto with = scene.run(o);
  EXPECT_EQ(with.diagnosis.stored_samples, 180U);
  ASSERT_EQ(with.servers.size(), 1U) << fix_to_json(with, RunMode::live).dump(2);
  EXPECT_EQ(with.servers[0].outcome, ActionOutcome::succeeded);
}

TEST(FixCommand, ProblemsAreListedOnce) {
  Scene scene;
  auto o = scene.options();
  o.diagnose.lookback = {30min, (scene.state.path() / "nowhere").string(), k_wall};  // one problem: no history
  const auto result = scene.run(o);
  const auto doc = fix_to_json(result, RunMode::live);
  std::size_t mentions = 0;
  const auto text = doc.dump();
  for (auto at = text.find("no sample history"); at != std::string::npos; at = text.find("no sample history", at + 1)) {
    ++mentions;
  }
  EXPECT_EQ(mentions, 1U) << doc.dump(2);
  EXPECT_EQ(render_fix(result, RunMode::live).find("no sample history"),
            render_fix(result, RunMode::live).rfind("no sample history"));
}
