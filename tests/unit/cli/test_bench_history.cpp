// The renderers of `memwarden bench --list` and `--compare`, and a run's Grafana annotations.
#include "cli/bench_history.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <ctime>
#include <string>

#include "bench_run_sample.hpp"

using namespace mw;
using namespace mw::cli;
using nlohmann::json;

namespace {

std::string local_minute(std::int64_t at_ms) {
  const auto t = static_cast<std::time_t>(at_ms / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm);
  return buf;
}

std::vector<engine::BenchRunSummary> two_runs() {
  return {{7, 1'796'472'800'000, "ollama", {"llama3.1:8b"}, false},
          {3, 1'796'469'200'250, "http://127.0.0.1:11434", {"llama3.1:8b", "qwen2.5:7b"}, true}};
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    const auto end = text.find('\n', start);
    out.push_back(text.substr(start, end - start));
    start = end == std::string::npos ? text.size() : end + 1;
  }
  return out;
}

std::pair<BenchRun, BenchRun> before_after() {
  auto a = test::sample_bench_run();
  a.id = 3;
  auto b = a;
  b.id = 7;
  b.started_at_ms += 3'600'000;
  b.interrupted = false;
  b.models[0].load_s = 6.5;
  b.models[0].levels[0].ttft_s.median = 0.05;
  b.models[0].levels[0].throughput.output_tokens_per_s = 192 / 4.2 * 1.5;
  b.models[0].levels[0].e2e_s.median.reset();
  return {a, b};
}

}  // namespace

TEST(BenchList, TableNewestFirstWithInterruptedMarked) {
  const auto text = render_bench_list(two_runs());
  const auto lines = lines_of(text);
  ASSERT_EQ(lines.size(), 3U) << text;
  EXPECT_EQ(lines[0], "    ID  WHEN              SERVER                MODELS");
  EXPECT_EQ(lines[1], fmt::format("     7  {}  ollama                llama3.1:8b", local_minute(1'796'472'800'000)));
  EXPECT_EQ(lines[2], fmt::format("     3  {}  http://127.0.0.1:11434  llama3.1:8b, qwen2.5:7b  [interrupted: partial]",
                                  local_minute(1'796'469'200'250)));
  EXPECT_EQ(render_bench_list({}), "no benchmark runs stored yet: run `memwarden bench`\n");
}

TEST(BenchList, Json) {
  const auto doc = render_bench_list_json(two_runs());
  ASSERT_TRUE(doc.is_array());
  ASSERT_EQ(doc.size(), 2U);
  EXPECT_EQ(doc[1], json({{"id", 3},
                          {"started_at_ms", 1'796'469'200'250LL},
                          {"started_at", "2026-12-05T11:13:20.250Z"},
                          {"server", "http://127.0.0.1:11434"},
                          {"models", {"llama3.1:8b", "qwen2.5:7b"}},
                          {"interrupted", true}}));
  EXPECT_EQ(render_bench_list_json({}), json::array());
}

TEST(BenchCompareRender, PercentWithSignBetterWorseAndDashes) {
  const auto [a, b] = before_after();
  const auto changes = compare_runs(a, b);
  const auto text = render_bench_compare(a, b, changes);
  const auto lines = lines_of(text);
  ASSERT_GE(lines.size(), 5U) << text;
  EXPECT_EQ(lines[0], fmt::format("from run 3 ({}, ollama, interrupted: partial)", local_minute(a.started_at_ms)));
  EXPECT_EQ(lines[1], fmt::format("to   run 7 ({}, ollama)", local_minute(b.started_at_ms)));
  EXPECT_EQ(lines[3], "MODEL                       C  METRIC                     BEFORE      AFTER    CHANGE");
  EXPECT_EQ(lines[4], "llama3.1:8b                    load s                       3.25        6.5   +100.0%  worse");
  const auto has = [&](const std::string& line) { return std::find(lines.begin(), lines.end(), line) != lines.end(); };
  EXPECT_TRUE(has("llama3.1:8b                 1  ttft p50 s                    0.1       0.05    -50.0%  better"))
      << text;
  EXPECT_TRUE(has("llama3.1:8b                 1  tokens/s                    45.71      68.57    +50.0%  better"))
      << text;
  EXPECT_TRUE(has("llama3.1:8b                 1  e2e p50 s                     1.4          –         –")) << text;
  EXPECT_TRUE(has("llama3.1:8b                 4  ttft p50 s                   0.25       0.25     +0.0%  same"))
      << text;
  EXPECT_TRUE(has("llama3.1:8b                 4  itl p50 s                       –          –         –")) << text;

  BenchRun other = b;
  other.models[0].model = "mistral:7b";
  other.models.resize(1);
  EXPECT_NE(render_bench_compare(a, other, compare_runs(a, other)).find("no model and concurrency level in common"),
            std::string::npos);
}

TEST(BenchCompareRender, Json) {
  const auto [a, b] = before_after();
  const auto doc = render_bench_compare_json(a, b, compare_runs(a, b));
  EXPECT_EQ(doc["before"]["id"], 3);
  EXPECT_EQ(doc["before"]["interrupted"], true);
  EXPECT_EQ(doc["after"]["started_at"], "2026-12-05T12:13:20.250Z");
  EXPECT_EQ(doc["after"]["models"], json::array({"llama3.1:8b", "qwen2.5:7b"}));
  const auto& changes = doc["changes"];
  ASSERT_EQ(changes.size(), 19U);  // llama: its load, 9 metrics at c=1 and at c=4; qwen (skipped in both): nothing
  EXPECT_EQ(changes[0], json({{"model", "llama3.1:8b"},
                              {"concurrency", nullptr},
                              {"metric", "load s"},
                              {"before", 3.25},
                              {"after", 6.5},
                              {"change_percent", 100.0},
                              {"higher_is_better", false},
                              {"verdict", "worse"}}));
  bool e2e = false;
  for (const auto& c : changes) {
    if (c["metric"] == "e2e p50 s" && c["concurrency"] == 1) {
      e2e = true;
      EXPECT_EQ(c["before"], 1.4);
      EXPECT_TRUE(c["after"].is_null());
      EXPECT_TRUE(c["change_percent"].is_null());
      EXPECT_TRUE(c["verdict"].is_null());
    }
  }
  EXPECT_TRUE(e2e);
}

TEST(BenchAnnotations, OnePerModelLoadToUnloadAndOnePerLevel) {
  const auto run = test::sample_bench_run();
  const auto doc = bench_annotations(run);
  ASSERT_TRUE(doc.is_array());
  ASSERT_EQ(doc.size(), 3U) << doc.dump(2);  // the skipped model has no marks
  const std::int64_t t0 = run.started_at_ms;
  EXPECT_EQ(doc[0], json({{"time", t0 + 1000},
                          {"timeEnd", t0 + 28000},
                          {"tags", {"memwarden", "bench", "llama3.1:8b"}},
                          {"text",
                           "bench llama3.1:8b (done): load 3.25 s; c=1: 45.71 tok/s, TTFT p50 0.1 s; c=4: "
                           "117.3 tok/s, TTFT p50 0.25 s"}}));
  EXPECT_EQ(doc[1], json({{"time", t0 + 10000},
                          {"timeEnd", t0 + 14200},
                          {"tags", {"memwarden", "bench", "llama3.1:8b", "c=1"}},
                          {"text", "bench llama3.1:8b c=1: 45.71 tok/s, TTFT p50 0.1 s"}}));
  EXPECT_EQ(doc[2]["tags"][3], "c=4");
  EXPECT_EQ(doc[2]["time"], t0 + 20000);
  EXPECT_EQ(doc[2]["timeEnd"], t0 + 26000);
  // A level without figures: dashes, not 0.
  auto bare = run;
  bare.models[0].levels.clear();
  EXPECT_EQ(bench_annotations(bare)[1]["text"], "bench llama3.1:8b c=1: – tok/s, TTFT p50 – s");
  EXPECT_EQ(bench_annotations(BenchRun{}), json::array());
}
