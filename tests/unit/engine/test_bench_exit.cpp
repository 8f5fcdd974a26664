// engine::bench_exit and the text of a run (cli::render_bench_run, bench_progress_line): what a run's outcome makes
// the exit code, and that missing figures read as "–", never 0.
#include <gtest/gtest.h>

#include "cli/bench.hpp"
#include "engine/bench.hpp"

using namespace mw;

namespace {

BenchModel done_model(const std::string& name) {
  BenchModel m;
  m.model = name;
  BenchSample s;
  s.ok = true;
  s.output_tokens = 16;
  m.samples.push_back(s);
  m.verdicts.push_back({"memory returned", VerdictOutcome::pass, "0 B stayed"});
  m.verdicts.push_back({"temperature", VerdictOutcome::unknown, "no GPU"});
  return m;
}

BenchRun with(std::vector<BenchModel> models) {
  BenchRun run;
  run.server = "ollama";
  run.url = "http://127.0.0.1:11434";
  run.models = std::move(models);
  return run;
}

}  // namespace

TEST(BenchExit, PassedFailedMissingNoRoomAndInterrupted) {
  EXPECT_EQ(engine::bench_exit(with({done_model("a")})), engine::BenchExit::passed) << "unknown verdicts do not fail";

  auto failed_request = done_model("a");
  failed_request.samples.push_back(BenchSample{});  // ok = false
  EXPECT_EQ(engine::bench_exit(with({failed_request})), engine::BenchExit::failed);

  auto hot = done_model("a");
  hot.verdicts.push_back({"temperature", VerdictOutcome::fail, "sustained 78 °C"});
  EXPECT_EQ(engine::bench_exit(with({hot})), engine::BenchExit::failed);

  BenchModel missing;
  missing.model = "x";
  missing.status = BenchModelStatus::skipped;
  missing.cause = BenchCause::not_installed;
  missing.reason = "not installed on ollama: `ollama pull x`";
  EXPECT_EQ(engine::bench_exit(with({done_model("a"), missing})), engine::BenchExit::source_missing);

  BenchModel big;
  big.model = "y";
  big.status = BenchModelStatus::skipped;
  big.cause = BenchCause::no_room;
  big.reason = "does not fit: ...";
  EXPECT_EQ(engine::bench_exit(with({done_model("a"), big})), engine::BenchExit::not_possible);
  // A failure outweighs a model that was missing or did not fit.
  EXPECT_EQ(engine::bench_exit(with({hot, missing, big})), engine::BenchExit::failed);

  // Loaded by someone else: neither loaded nor unloaded, a failure as in test model.
  auto busy = big;
  busy.cause = BenchCause::in_use;
  EXPECT_EQ(engine::bench_exit(with({done_model("a"), busy})), engine::BenchExit::failed);
  // A load that failed for lack of memory: not possible here.
  BenchModel oom;
  oom.model = "z";
  oom.status = BenchModelStatus::failed;
  oom.cause = BenchCause::lack_of_memory;
  EXPECT_EQ(engine::bench_exit(with({done_model("a"), oom})), engine::BenchExit::not_possible);
  // A model whose unload could not be confirmed may still hold its memory: a failure, whatever its verdicts say.
  auto stuck = done_model("a");
  stuck.unload_error = "/api/ps still lists it 30 s after the unload";
  EXPECT_EQ(engine::bench_exit(with({stuck})), engine::BenchExit::failed);
  auto kept = done_model("a");
  kept.unload.verdict = UnloadVerdict::kept;
  EXPECT_EQ(engine::bench_exit(with({kept})), engine::BenchExit::failed);

  auto run = with({done_model("a")});
  run.interrupted = true;
  EXPECT_EQ(engine::bench_exit(run), engine::BenchExit::interrupted);
}

TEST(BenchText, ShowsLevelsVerdictsAndDashesForWhatIsMissing) {
  auto m = done_model("llama3.1:8b");
  m.load_s = 2.5;
  BenchLevel level;
  level.concurrency = 2;
  level.ttft_s.median = 0.25;
  level.throughput.completed = 4;
  level.throughput.failed = 1;
  m.levels.push_back(level);
  BenchModel skipped;
  skipped.model = "llama3.1:70b";
  skipped.status = BenchModelStatus::skipped;
  skipped.reason = "does not fit: needs 43 GiB";
  auto run = with({m, skipped});
  run.interrupted = true;
  const auto text = cli::render_bench_run(run);
  EXPECT_NE(text.find("INTERRUPTED"), std::string::npos) << text;
  EXPECT_NE(text.find("llama3.1:8b: done"), std::string::npos) << text;
  EXPECT_NE(text.find("load 2.50 s"), std::string::npos) << text;
  EXPECT_NE(text.find("RAM – measured"), std::string::npos) << "unmeasured is a dash: " << text;
  EXPECT_NE(text.find("0.25/–/–"), std::string::npos) << text;
  EXPECT_NE(text.find("llama3.1:70b: skipped — does not fit: needs 43 GiB"), std::string::npos) << text;
  EXPECT_NE(text.find("pass     memory returned"), std::string::npos) << text;
  EXPECT_EQ(text.find(" 0.00/"), std::string::npos) << "no missing figure shown as 0: " << text;
}

TEST(BenchText, ProgressLine) {
  engine::BenchProgress p;
  p.model = "m";
  p.model_index = 0;
  p.models = 2;
  p.phase = BenchPhase::level;
  p.concurrency = 4;
  p.done = 7;
  p.total = 20;
  p.failed = 1;
  p.last_tokens_per_s = 37.25;
  EXPECT_EQ(cli::bench_progress_line(p), "[1/2] m c=4: 7/20 requests, 1 failed, 37.2 tok/s");
  p.phase = BenchPhase::load;
  EXPECT_EQ(cli::bench_progress_line(p), "[1/2] m: loading");
}
