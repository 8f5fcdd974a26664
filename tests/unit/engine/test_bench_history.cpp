// Benchmark runs in the history database (engine/bench_history): stored as their JSON, listed, loaded and
// compared by id, and the newest figures of each model for the daemon's /metrics.
#include "engine/bench_history.hpp"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <filesystem>

#include "adapters/sample_store.hpp"
#include "bench_run_sample.hpp"
#include "engine/bench_json.hpp"
#include "test_support.hpp"

using namespace mw;
using namespace mw::engine;
using mw::test::TempDir;

TEST(BenchHistory, NothingStoredListsNothingAndCreatesNothing) {
  TempDir tmp;
  const auto dir = (tmp.path() / "state").string();
  const auto list = list_bench_runs(dir, 10);
  ASSERT_TRUE(list) << list.error().line();
  EXPECT_TRUE(list->empty());
  EXPECT_FALSE(std::filesystem::exists(tmp.path() / "state"));
  const auto load = load_bench_run(dir, 1);
  ASSERT_FALSE(load);
  EXPECT_NE(load.error().line().find("no benchmark run 1"), std::string::npos) << load.error().line();
}

TEST(BenchHistory, StoreListLoadCompare) {
  TempDir tmp;
  const auto dir = tmp.path().string();
  auto first = test::sample_bench_run();
  const auto id1 = store_bench_run(dir, first);
  ASSERT_TRUE(id1) << id1.error().line();
  auto second = first;
  second.started_at_ms += 3'600'000;
  second.interrupted = false;
  second.models[0].load_s = 6.5;  // twice as slow: +100 %
  second.models[0].levels[0].throughput.output_tokens_per_s = 192 / 4.2 / 2;
  const auto id2 = store_bench_run(dir, second);
  ASSERT_TRUE(id2) << id2.error().line();

  const auto list = list_bench_runs(dir, 10);
  ASSERT_TRUE(list) << list.error().line();
  ASSERT_EQ(list->size(), 2U);
  EXPECT_EQ((*list)[0].id, *id2);
  EXPECT_EQ((*list)[0].started_at_ms, second.started_at_ms);
  EXPECT_FALSE((*list)[0].interrupted);
  EXPECT_EQ((*list)[1].id, *id1);
  EXPECT_TRUE((*list)[1].interrupted);
  EXPECT_EQ((*list)[1].server, "ollama");
  EXPECT_EQ((*list)[1].models, (std::vector<std::string>{"llama3.1:8b", "qwen2.5:7b"}));
  EXPECT_EQ(list_bench_runs(dir, 1)->size(), 1U);

  const auto loaded = load_bench_run(dir, *id1);
  ASSERT_TRUE(loaded) << loaded.error().line();
  EXPECT_EQ(loaded->id, *id1);
  first.id = *id1;
  EXPECT_EQ(bench_run_json(*loaded), bench_run_json(first));

  const auto changes = compare_bench_runs(dir, *id1, *id2);
  ASSERT_TRUE(changes) << changes.error().line();
  ASSERT_FALSE(changes->empty());
  EXPECT_EQ(changes->front().metric, "load s");
  EXPECT_DOUBLE_EQ(*changes->front().change_percent, 100.0);
  bool tokens = false;
  for (const auto& c : *changes) {
    if (c.metric == "tokens/s" && c.concurrency == 1) {
      tokens = true;
      EXPECT_DOUBLE_EQ(*c.change_percent, -50.0);
    }
  }
  EXPECT_TRUE(tokens);
}

TEST(BenchHistory, UnknownIdsAndBrokenJsonAreNamed) {
  TempDir tmp;
  const auto dir = tmp.path().string();
  const auto id = store_bench_run(dir, test::sample_bench_run());
  ASSERT_TRUE(id);
  const auto missing = compare_bench_runs(dir, *id, *id + 41);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().line().find(fmt::format("no benchmark run {}", *id + 41)), std::string::npos)
      << missing.error().line();
  EXPECT_NE(missing.error().line().find("samples.db"), std::string::npos);
  const auto missing_a = compare_bench_runs(dir, 999, *id);
  ASSERT_FALSE(missing_a);
  EXPECT_NE(missing_a.error().line().find("no benchmark run 999"), std::string::npos);

  auto store = adapters::SampleStore::open(dir);
  ASSERT_TRUE(store);
  adapters::BenchRunRecord r;
  r.models = {"m"};
  r.json = R"({"schema":"other/1"})";
  const auto bad = store->append_bench_run(r);
  ASSERT_TRUE(bad);
  const auto load = load_bench_run(dir, *bad);
  ASSERT_FALSE(load);
  EXPECT_NE(load.error().line().find(fmt::format("(benchmark run {})", *bad)), std::string::npos)
      << load.error().line();
  EXPECT_NE(load.error().line().find("schema 'other/1'"), std::string::npos);
}

TEST(BenchFigures, NewestMeasuredRunOfEachModel) {
  auto older = test::sample_bench_run();
  older.id = 1;
  older.models[1].status = BenchModelStatus::done;  // qwen measured in the older run only
  older.models[1].load_s = 2.0;
  auto newer = test::sample_bench_run();
  newer.id = 2;
  newer.started_at_ms += 60'000;
  const std::vector<BenchRun> runs{newer, older};
  const auto figures = latest_bench_figures(runs);
  ASSERT_EQ(figures.size(), 2U);
  EXPECT_EQ(figures[0].model, "llama3.1:8b");
  EXPECT_EQ(figures[0].run_id, 2);
  EXPECT_EQ(figures[0].started_at_ms, newer.started_at_ms);
  EXPECT_EQ(figures[0].load_s, 3.25);
  ASSERT_EQ(figures[0].levels.size(), 2U);
  EXPECT_EQ(figures[0].levels[0].concurrency, 1U);
  EXPECT_EQ(figures[0].levels[0].output_tokens_per_s, 192 / 4.2);
  EXPECT_EQ(figures[0].levels[0].ttft_p50_s, 0.1);
  EXPECT_EQ(figures[0].levels[0].ttft_p99_s, 0.1198);
  EXPECT_EQ(figures[0].levels[1].e2e_p90_s, 2.5);
  EXPECT_EQ(figures[0].verdicts.size(), 5U);
  EXPECT_EQ(figures[1].model, "qwen2.5:7b");  // skipped in the newer run: the older one's figures
  EXPECT_EQ(figures[1].run_id, 1);
  EXPECT_EQ(figures[1].load_s, 2.0);
}

TEST(BenchFigures, ReadFromTheStoreOnlyWhenANewRunCame) {
  TempDir tmp;
  const auto dir = tmp.path().string();
  auto store = adapters::SampleStore::open(dir);
  ASSERT_TRUE(store);
  auto none = read_bench_figures(*store, -1);
  ASSERT_TRUE(none) << none.error().line();
  ASSERT_TRUE(none->has_value());
  EXPECT_EQ((*none)->newest_id, 0);
  EXPECT_TRUE((*none)->figures.empty());
  EXPECT_FALSE(read_bench_figures(*store, 0)->has_value());  // nothing new

  auto older = test::sample_bench_run();
  older.models[1].status = BenchModelStatus::done;
  ASSERT_TRUE(store_bench_run(dir, older));
  // A broken run between them is skipped and said.
  adapters::BenchRunRecord broken;
  broken.models = {"qwen2.5:7b"};
  broken.json = "{";
  ASSERT_TRUE(store->append_bench_run(broken));
  const auto newest = store_bench_run(dir, test::sample_bench_run());
  ASSERT_TRUE(newest);
  auto read = read_bench_figures(*store, 0);
  ASSERT_TRUE(read) << read.error().line();
  ASSERT_TRUE(read->has_value());
  EXPECT_EQ((*read)->newest_id, *newest);
  ASSERT_EQ((*read)->figures.size(), 2U);
  EXPECT_EQ((*read)->figures[0].run_id, *newest);
  EXPECT_EQ((*read)->figures[1].model, "qwen2.5:7b");
  EXPECT_EQ((*read)->figures[1].run_id, *newest - 2);
  ASSERT_EQ((*read)->problems.size(), 1U);
  EXPECT_NE((*read)->problems[0].line().find("not JSON"), std::string::npos);
  EXPECT_FALSE(read_bench_figures(*store, *newest)->has_value());
}
