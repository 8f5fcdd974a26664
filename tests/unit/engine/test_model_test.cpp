// engine::model_test_exit and the rendering of `memwarden test model`: the exit code a result gives (issue 14's
// 0, 1, 3, 4, 130; the highest wins) and what text and JSON say about it, from results built by hand.
#include <gtest/gtest.h>

#include "cli/test_model.hpp"
#include "engine/model_test.hpp"

using namespace mw;
using namespace mw::engine;

namespace {

constexpr std::uint64_t k_mib = 1ULL << 20;
constexpr std::uint64_t k_gib = 1ULL << 30;

ModelTestRun planned(const std::string& name) {
  ModelTestRun run;
  run.model = name;
  ModelPlan plan;
  plan.name = name;
  plan.verdict = FitVerdict::cpu;
  plan.placement.ram_page_cache = 4 * k_gib;
  plan.placement.ram_resident = 512 * k_mib;
  plan.placement.kv = 256 * k_mib;
  plan.ram_needed = 5 * k_gib;
  run.plan = plan;
  run.ram_fits = true;
  run.vram_fits = true;
  run.disk_fits = true;
  return run;
}

LoadMeasurement measured(std::uint64_t ram) {
  LoadMeasurement m;
  m.load_seconds = 2.5;
  m.ps_size = 4608 * k_mib;
  m.ps_vram = 0;
  m.processor = "100% CPU";
  m.before.anon = 50 * k_mib;
  m.before.mapped = 0;
  m.loaded.anon = 50 * k_mib + ram;
  m.loaded.mapped = 0;
  m.after.anon = 60 * k_mib;
  m.checks.push_back(check_estimate("RAM (container)", 4608 * k_mib, ram, CheckRole::decides, 256 * k_mib));
  m.checks.push_back(check_estimate("VRAM (/api/ps)", 0, 0, CheckRole::compares));
  m.unload = check_unload(m.before.anon, m.loaded.anon, m.after.anon);
  return m;
}

ModelTestResult with(std::vector<ModelTestRun> runs) {
  ModelTestResult r;
  r.runs = std::move(runs);
  return r;
}

int exit_of(std::vector<ModelTestRun> runs) {
  return static_cast<int>(model_test_exit(with(std::move(runs))));
}

}  // namespace

TEST(ModelTestExit, AMeasuredLoadWithinTheBandThatGaveTheMemoryBackPasses) {
  auto run = planned("llama3.1:8b");
  run.load = measured(4500 * k_mib);
  ASSERT_EQ(run.load->unload.verdict, UnloadVerdict::returned);
  EXPECT_EQ(exit_of({run}), 0);
  EXPECT_EQ(exit_of({planned("only-planned")}), 0) << "without --load the plan alone decides";
}

TEST(ModelTestExit, EachFailureGivesItsCode) {
  auto off = planned("m");
  off.load = measured(2 * k_gib);  // far below the band: the weights did not arrive
  EXPECT_EQ(exit_of({off}), 1);

  auto kept = planned("m");
  kept.load = measured(4500 * k_mib);
  kept.load->after.anon = 3 * k_gib;
  kept.load->unload = check_unload(kept.load->before.anon, kept.load->loaded.anon, kept.load->after.anon);
  EXPECT_EQ(exit_of({kept}), 1);

  auto unload_failed = planned("m");
  unload_failed.load = measured(4500 * k_mib);
  unload_failed.load->unload = {};
  unload_failed.load->unload_error = "/api/ps still lists it 30 s after the unload";
  EXPECT_EQ(exit_of({unload_failed}), 1);

  auto missing = planned("m");
  missing.plan.reset();
  missing.plan_error = Error{"m", "not in the Ollama store or the catalog", 2};
  EXPECT_EQ(exit_of({missing}), 3);

  auto not_pulled = planned("m");
  not_pulled.load = LoadMeasurement{};
  not_pulled.load->error = "model 'm' not found, try pulling it first";
  not_pulled.load->model_missing = true;
  EXPECT_EQ(exit_of({not_pulled}), 3);

  auto too_big = planned("m");
  too_big.ram_fits = false;
  EXPECT_EQ(exit_of({too_big}), 4);

  auto oom = planned("m");
  oom.load = LoadMeasurement{};
  oom.load->error = "llama runner process has terminated: signal: killed";
  oom.load->lack_of_memory = true;
  EXPECT_EQ(exit_of({oom}), 4);

  auto no_room = planned("m");
  no_room.not_loaded = "not loaded: the container's limit ...";
  no_room.not_loaded_for_room = true;
  EXPECT_EQ(exit_of({no_room}), 4);

  auto in_use = planned("m");
  in_use.not_loaded = "not loaded: it is loaded on the server already";
  EXPECT_EQ(exit_of({in_use}), 1);
}

TEST(ModelTestExit, TheHighestWinsAndAnInterruptionOverridesAll) {
  auto missing = planned("a");
  missing.plan.reset();
  missing.plan_error = Error{"a", "not found", 2};
  auto too_big = planned("b");
  too_big.ram_fits = false;
  EXPECT_EQ(exit_of({missing, too_big}), 4);
  EXPECT_EQ(exit_of({too_big, missing}), 4);
  auto r = with({planned("c")});
  r.interrupted = true;
  EXPECT_EQ(model_test_exit(r), ModelTestExit::interrupted);
}

TEST(ModelTestExit, AComparedFigureOffTheBandDoesNotFail) {
  auto run = planned("m");
  run.load = measured(4500 * k_mib);
  run.load->checks.push_back(check_estimate("server's size (/api/ps)", 4608 * k_mib, 20 * k_gib, CheckRole::compares));
  EXPECT_EQ(exit_of({run}), 0);
}

TEST(ModelTestRender, TextSaysTheBandTheFindingAndWhatIsUnknown) {
  auto run = planned("qwen2.5:7b");
  run.load = measured(4500 * k_mib);
  run.load->after.anon = 3 * k_gib;
  run.load->unload = check_unload(run.load->before.anon, run.load->loaded.anon, run.load->after.anon);
  run.load->checks[1].measured.reset();
  const auto text = cli::render_model_test(with({run}));
  EXPECT_NE(text.find("within the plan's band"), std::string::npos) << text;
  EXPECT_NE(text.find("FINDING: the server keeps"), std::string::npos) << text;
  EXPECT_NE(text.find("not measured"), std::string::npos) << "an unknown is not 0\n" << text;
  EXPECT_NE(text.find("100% CPU"), std::string::npos) << text;
}

TEST(ModelTestRender, JsonKeepsUnknownsNullAndCarriesTheExitCode) {
  auto run = planned("qwen2.5:7b");
  run.load = measured(4500 * k_mib);
  run.load->ps_vram.reset();
  run.load->checks[1] = check_estimate("VRAM (/api/ps)", 0, std::nullopt, CheckRole::compares);
  auto missing = planned("nope");
  missing.plan.reset();
  missing.plan_error = Error{"nope", "not found", 2};
  const auto j = cli::model_test_to_json(with({run, missing}));
  EXPECT_EQ(j["schema"], "memwarden.test-model/1");
  EXPECT_EQ(j["exit_code"], 3);
  const auto& load = j["models"][0]["load"];
  EXPECT_TRUE(load["ps_vram_bytes"].is_null());
  EXPECT_TRUE(load["checks"][1]["measured_bytes"].is_null());
  EXPECT_TRUE(load["checks"][1]["within_tolerance"].is_null());
  EXPECT_EQ(load["checks"][0]["within_tolerance"], true);
  EXPECT_EQ(load["checks"][0]["band_high_bytes"], load["checks"][0]["planned_bytes"].get<std::uint64_t>() * 11 / 10);
  EXPECT_EQ(load["unload"]["verdict"], "returned");
  EXPECT_EQ(j["models"][1]["error"], "nope: not found");
  EXPECT_TRUE(j["models"][1]["load"].is_null());
}

TEST(ModelTestRender, HistoryListsThePairsAndTheErrorPerModel) {
  adapters::EstimateRecord a;
  a.at_ms = 1'800'000'000'000;
  a.model = "big";
  a.server = "llm";
  a.planned_ram = 1000 * k_mib;
  a.measured_ram = 900 * k_mib;
  auto b = a;
  b.measured_ram = 1100 * k_mib;
  auto c = a;
  c.measured_ram.reset();
  const auto text = cli::render_estimate_history({a, b, c});
  EXPECT_NE(text.find("-10.0%"), std::string::npos) << text;
  EXPECT_NE(text.find("+10.0%"), std::string::npos) << text;
  EXPECT_NE(text.find("(2 loads)"), std::string::npos) << "the unmeasured one is not averaged\n" << text;
  EXPECT_NE(cli::render_estimate_history({}).find("no model loads stored yet"), std::string::npos);
  const auto j = cli::estimate_history_to_json({c});
  EXPECT_TRUE(j["loads"][0]["measured_ram_bytes"].is_null());
  EXPECT_TRUE(j["loads"][0]["ram_error_percent"].is_null());
}
