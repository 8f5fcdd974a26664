// The JSON of a benchmark run (engine/bench_json): every field written, missing figures as null, read back
// exactly, and bad input refused in one line that names its source.
#include "engine/bench_json.hpp"

#include <gtest/gtest.h>

#include <string>

#include "bench_run_sample.hpp"

using namespace mw;
using namespace mw::engine;
using nlohmann::json;

namespace {

BenchRun parsed(const std::string& text) {
  auto run = parse_bench_run(text, "run.json");
  EXPECT_TRUE(run) << (run ? "" : run.error().line());
  return run ? *run : BenchRun{};
}

std::string error_of(const std::string& text) {
  const auto run = parse_bench_run(text, "run.json");
  if (run) {
    ADD_FAILURE() << "accepted: " << text.substr(0, 200);
    return "";
  }
  const auto line = run.error().line();
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  EXPECT_EQ(run.error().source, "run.json");
  return line;
}

// The sample run's JSON with one field replaced.
std::string with(const std::string& pointer, const json& value) {
  auto doc = bench_run_json(test::sample_bench_run());
  doc[json::json_pointer(pointer)] = value;
  return doc.dump();
}

}  // namespace

TEST(BenchJson, EveryFieldWithSchemaTimesAndBytes) {
  const auto doc = bench_run_json(test::sample_bench_run());
  EXPECT_EQ(doc["schema"], "memwarden.bench/1");
  EXPECT_EQ(doc["started_at_ms"], 1'796'469'200'250LL);
  EXPECT_EQ(doc["started_at"], "2026-12-05T11:13:20.250Z");
  EXPECT_EQ(doc["duration_s"], 95.5);
  EXPECT_EQ(doc["server"], "ollama");
  EXPECT_EQ(doc["url"], "http://127.0.0.1:11434");
  EXPECT_EQ(doc["interrupted"], true);
  const auto& s = doc["settings"];
  EXPECT_EQ(s["api"], "openai");
  EXPECT_EQ(s["concurrency"], json::array({1, 4}));
  EXPECT_EQ(s["num_ctx"], 8192);
  EXPECT_EQ(s["seed"], -7);
  EXPECT_EQ(s["cooldown_s"], 2.5);
  const auto& m = doc["models"][0];
  EXPECT_EQ(m["model"], "llama3.1:8b");
  EXPECT_EQ(m["status"], "done");
  EXPECT_TRUE(m["server_vram"].is_number_unsigned());
  EXPECT_EQ(m["server_vram"], 5'500'000'000ULL);
  EXPECT_EQ(m["unload"], json({{"verdict", "returned"}, {"kept", 12'345'678}}));
  EXPECT_EQ(m["samples"][0]["ttft_s"], 0.1);
  EXPECT_EQ(m["samples"][1]["error"], "POST http://127.0.0.1:11434/v1/chat/completions: connection reset");
  const auto& level = m["levels"][0];
  EXPECT_EQ(level["ttft_s"], json({{"count", 3},
                                   {"left_out", 0},
                                   {"mean", 0.11},
                                   {"median", 0.1},
                                   {"p90", 0.118},
                                   {"p99", 0.1198},
                                   {"min", 0.09},
                                   {"max", 0.12},
                                   {"stddev", 0.01}}));
  EXPECT_EQ(level["throughput"]["output_tokens"], 192);
  EXPECT_EQ(level["throughput"]["window_s"], 4.2);
  EXPECT_EQ(m["levels"][1]["interrupted"], true);
  EXPECT_EQ(m["verdicts"][1], json({{"criterion", "gpu utilisation"},
                                    {"outcome", "fail"},
                                    {"detail", "median 40% while generating; target 60%"}}));
  EXPECT_EQ(doc["models"][1]["status"], "skipped");
  EXPECT_EQ(doc["timeline"][0]["gpus"][0]["power_w"], 61.5);
  EXPECT_EQ(doc["timeline"][0]["mem_available"], 30'000'000'000ULL);
  EXPECT_EQ(
      doc["marks"][2],
      json({{"model", "llama3.1:8b"}, {"phase", "level"}, {"concurrency", 1}, {"start_s", 10.0}, {"end_s", 14.2}}));
  EXPECT_EQ(doc["notes"], json::array({"no swap-in figures: /proc/vmstat unreadable"}));
}

TEST(BenchJson, MissingFiguresAreNullNeverZero) {
  const auto doc = bench_run_json(test::sample_bench_run());
  const auto& skipped = doc["models"][1];
  for (const auto* key : {"planned_ram", "planned_vram", "load_s", "loaded_ram", "server_size", "server_vram"}) {
    EXPECT_TRUE(skipped[key].is_null()) << key;
  }
  EXPECT_TRUE(skipped["unload"]["kept"].is_null());
  const auto& failed = doc["models"][0]["samples"][1];
  for (const auto* key :
       {"ttft_s", "itl_mean_s", "tpot_s", "e2e_s", "output_tokens_per_s", "prompt_tokens", "eval_count", "total_s"}) {
    EXPECT_TRUE(failed[key].is_null()) << key;
  }
  const auto& four = doc["models"][0]["levels"][1];
  EXPECT_TRUE(four["itl_s"]["median"].is_null());
  EXPECT_EQ(four["itl_s"]["count"], 0);
  const auto& silent = doc["timeline"][1];
  EXPECT_TRUE(silent["anon"].is_null());
  EXPECT_TRUE(silent["gpus"][0]["temperature_c"].is_null());
  EXPECT_TRUE(silent["gpus"][0]["throttle_reasons"].is_null());
  BenchRun no_ctx;
  EXPECT_TRUE(bench_run_json(no_ctx)["settings"]["num_ctx"].is_null());
  // A figure that is not finite cannot be JSON: null.
  BenchRun nan;
  nan.models.resize(1);
  nan.models[0].load_s = std::numeric_limits<double>::quiet_NaN();
  EXPECT_TRUE(bench_run_json(nan)["models"][0]["load_s"].is_null());
}

TEST(BenchJson, RoundTripIsExact) {
  const auto original = test::sample_bench_run();
  const auto text = bench_run_json(original).dump();
  const auto back = parsed(text);
  EXPECT_EQ(bench_run_json(back), bench_run_json(original));
  EXPECT_EQ(bench_run_json(back).dump(), text);
  // What the compare and the reports use, field by field.
  EXPECT_EQ(back.started_at_ms, original.started_at_ms);
  EXPECT_EQ(back.settings.concurrency, original.settings.concurrency);
  EXPECT_EQ(back.settings.num_ctx, original.settings.num_ctx);
  EXPECT_EQ(back.settings.api, BenchApi::openai);
  ASSERT_EQ(back.models.size(), 2U);
  const auto& m = back.models[0];
  EXPECT_EQ(m.load_s, 3.25);
  EXPECT_EQ(m.unload.verdict, UnloadVerdict::returned);
  ASSERT_EQ(m.levels.size(), 2U);
  EXPECT_EQ(m.levels[0].ttft_s.p99, 0.1198);
  EXPECT_EQ(m.levels[0].throughput.output_tokens_per_s, 192 / 4.2);
  EXPECT_EQ(m.levels[1].throughput.requests_per_s, 11 / 6.0);
  EXPECT_FALSE(m.levels[1].itl_s.median);
  EXPECT_TRUE(m.levels[1].interrupted);
  ASSERT_EQ(m.samples.size(), 2U);
  EXPECT_EQ(m.samples[0].output_tokens_per_s, 64 / 1.4);
  EXPECT_FALSE(m.samples[1].ttft_s);
  EXPECT_EQ(m.verdicts[1].outcome, VerdictOutcome::fail);
  EXPECT_EQ(back.models[1].status, BenchModelStatus::skipped);
  EXPECT_EQ(back.models[1].unload_error, "not loaded");
  EXPECT_FALSE(back.models[1].load_s);
  ASSERT_EQ(back.timeline.size(), 2U);
  EXPECT_EQ(back.timeline[0].gpus[0].throttle_reasons, 4U);
  EXPECT_FALSE(back.timeline[1].gpus[0].vram_used);
  ASSERT_EQ(back.marks.size(), 6U);
  EXPECT_EQ(back.marks[5].phase, BenchPhase::cooldown);
  EXPECT_EQ(back.marks[3].concurrency, 4U);
  EXPECT_TRUE(back.interrupted);
  // Compared with itself: every change 0 %.
  const auto changes = compare_runs(back, original);
  ASSERT_FALSE(changes.empty());
  std::size_t with_percent = 0;
  for (const auto& c : changes) {
    if (c.change_percent) {
      EXPECT_EQ(*c.change_percent, 0.0) << c.metric;
      ++with_percent;
    }
  }
  EXPECT_GE(with_percent, 5U);
}

TEST(BenchJson, FiguresOnlyLeavesOutSamplesAndTimeline) {
  const auto original = test::sample_bench_run();
  const auto text = bench_run_json(original).dump();
  const auto figures = parse_bench_run(text, "t", BenchParse::figures_only);
  ASSERT_TRUE(figures) << figures.error().line();
  EXPECT_TRUE(figures->timeline.empty());
  ASSERT_EQ(figures->models.size(), original.models.size());
  EXPECT_TRUE(figures->models[0].samples.empty());
  EXPECT_EQ(figures->models[0].levels.size(), original.models[0].levels.size());
  EXPECT_EQ(figures->models[0].levels[0].ttft_s.p99, original.models[0].levels[0].ttft_s.p99);
  EXPECT_EQ(figures->models[0].verdicts.size(), original.models[0].verdicts.size());
  EXPECT_EQ(figures->marks.size(), original.marks.size());
}

TEST(BenchJson, UnknownFieldsIgnoredAbsentOnesDefault) {
  auto doc = bench_run_json(test::sample_bench_run());
  doc["written_by"] = "memwarden 9.9";
  doc["models"][0]["future"] = {{"a", 1}};
  EXPECT_EQ(bench_run_json(parsed(doc.dump())), bench_run_json(test::sample_bench_run()));
  const auto bare = parsed(R"({"schema":"memwarden.bench/1"})");
  EXPECT_TRUE(bare.models.empty());
  EXPECT_EQ(bare.settings.runs, BenchSettings{}.runs);
  EXPECT_EQ(bare.settings.concurrency, BenchSettings{}.concurrency);
}

TEST(BenchJson, BadInputIsOneLineNamingTheSource) {
  EXPECT_NE(error_of("").find("run.json: not JSON"), std::string::npos);
  EXPECT_NE(error_of("{\"schema\":").find("not JSON"), std::string::npos);
  EXPECT_NE(error_of("[1, 2]").find("expected a JSON object"), std::string::npos);
  EXPECT_NE(error_of("{}").find("no \"schema\""), std::string::npos);
  EXPECT_NE(error_of(R"({"schema":"memwarden.bench/2"})").find("schema 'memwarden.bench/2' is not memwarden.bench/1"),
            std::string::npos);
  EXPECT_NE(error_of(with("/models/0/load_s", "fast")).find("models[0].load_s: expected a number"), std::string::npos);
  EXPECT_NE(error_of(with("/models/0/server_vram", -1)).find("models[0].server_vram: expected a whole number"),
            std::string::npos);
  EXPECT_NE(error_of(with("/models/0/levels/1/ttft_s/median", json::array()))
                .find("models[0].levels[1].ttft_s.median: expected a number"),
            std::string::npos);
  EXPECT_NE(error_of(with("/models/0/status", "gone")).find("models[0].status: 'gone' is not one of done, skipped"),
            std::string::npos);
  EXPECT_NE(error_of(with("/timeline/0/gpus/0/temperature_c", 1ULL << 40))
                .find("timeline[0].gpus[0].temperature_c: 1099511627776 is over"),
            std::string::npos);
  EXPECT_NE(error_of(with("/marks", "none")).find("marks: expected an array"), std::string::npos);
  EXPECT_NE(error_of(with("/models/1", 5)).find("models[1]: expected an object"), std::string::npos);
  EXPECT_NE(error_of(with("/interrupted", "yes")).find("interrupted: expected true or false"), std::string::npos);
  EXPECT_NE(error_of(with("/notes/0", 1)).find("notes[0]: expected a string"), std::string::npos);
  EXPECT_NE(error_of(with("/settings/concurrency/1", 2.5)).find("settings.concurrency[1]"), std::string::npos);
  // Bounded: more models than a run has, nesting, size.
  EXPECT_NE(error_of(with("/models", json::array_t(k_max_bench_models + 1, json::object()))).find("models: 33 items"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(1000, '[') + std::string(1000, ']')).find("nested deeper"), std::string::npos);
  EXPECT_NE(error_of(std::string(k_max_bench_json_bytes + 1, ' ')).find("more than a benchmark run has"),
            std::string::npos);
  // Control characters from the file are escaped in the one line.
  EXPECT_EQ(error_of(R"({"schema":"x\ny"})").find('\n'), std::string::npos);
}

TEST(BenchJson, Iso8601Utc) {
  EXPECT_EQ(iso8601_utc(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(iso8601_utc(1'796'469'200'250), "2026-12-05T11:13:20.250Z");
  EXPECT_EQ(iso8601_utc(-1), "1969-12-31T23:59:59.999Z");
}
