// core/bench: the options of `memwarden bench` checked, the prompts it sends, one level's summary, the verdicts of
// a model from its part of the timeline, the bounded timeline and the comparison of two runs, all against values
// worked out by hand.
#include "core/bench.hpp"

#include <gtest/gtest.h>

#include <set>
#include <sstream>
#include <string>
#include <vector>

using namespace mw;

namespace {

constexpr std::uint64_t k_gib = 1ULL << 30;

std::vector<std::string> words_of(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> out;
  for (std::string w; in >> w;) {
    out.push_back(w);
  }
  return out;
}

std::string error_of(const Result<std::vector<std::size_t>>& r) {
  return r ? std::string("(no error)") : r.error().line();
}

}  // namespace

// ---------------------------------------------------------------- parse_concurrency

TEST(BenchConcurrency, GoodLists) {
  EXPECT_EQ(*parse_concurrency("1", "--concurrency"), (std::vector<std::size_t>{1}));
  EXPECT_EQ(*parse_concurrency("1,2,4", "--concurrency"), (std::vector<std::size_t>{1, 2, 4}));
  EXPECT_EQ(*parse_concurrency("8,1", "--concurrency"), (std::vector<std::size_t>{8, 1}));  // the order given
  EXPECT_EQ(*parse_concurrency("256", "--concurrency"), (std::vector<std::size_t>{256}));
}

TEST(BenchConcurrency, ZeroEmptyItemsAndNonNumbersNameTheItem) {
  const auto zero = parse_concurrency("1,0", "--concurrency");
  ASSERT_FALSE(zero);
  EXPECT_EQ(zero.error().source, "--concurrency");
  EXPECT_NE(zero.error().message.find("'0'"), std::string::npos) << error_of(zero);
  for (const auto* text : {"", "1,,2", "1,", ",1"}) {
    const auto r = parse_concurrency(text, "--concurrency");
    ASSERT_FALSE(r) << text;
    EXPECT_NE(r.error().message.find("''"), std::string::npos) << text << ": " << error_of(r);
  }
  for (const auto* text : {"x", "1,two", "2x", "-1", " 1", "1.5", "+2"}) {
    const auto r = parse_concurrency(text, "--concurrency");
    EXPECT_FALSE(r) << text;
  }
  const auto x = parse_concurrency("1,x", "--concurrency");
  ASSERT_FALSE(x);
  EXPECT_EQ(x.error().line().find('\n'), std::string::npos);
  EXPECT_NE(x.error().message.find("'x'"), std::string::npos) << error_of(x);
}

TEST(BenchConcurrency, RepeatsTooManyAndOverTheMaximum) {
  const auto twice = parse_concurrency("1,2,2", "--concurrency");
  ASSERT_FALSE(twice);
  EXPECT_NE(twice.error().message.find("2 is given twice"), std::string::npos) << error_of(twice);

  std::string sixteen, seventeen;
  for (std::size_t i = 1; i <= 17; ++i) {
    (i <= 16 ? sixteen : seventeen) += (i == 1 ? "" : ",") + std::to_string(i);
  }
  seventeen = sixteen + seventeen;
  ASSERT_EQ(parse_concurrency(sixteen, "--concurrency")->size(), k_max_bench_levels);
  const auto many = parse_concurrency(seventeen, "--concurrency");
  ASSERT_FALSE(many);
  EXPECT_NE(many.error().message.find("at most 16 levels"), std::string::npos) << error_of(many);

  const auto big = parse_concurrency("1,257", "--concurrency");
  ASSERT_FALSE(big);
  EXPECT_NE(big.error().message.find("'257'"), std::string::npos) << error_of(big);
  EXPECT_FALSE(parse_concurrency("99999999999999999999999", "--concurrency"));  // beyond size_t
}

// ---------------------------------------------------------------- check_settings

TEST(BenchSettingsCheck, DefaultsAndEdgesPass) {
  EXPECT_TRUE(check_settings(BenchSettings{}));
  BenchSettings s;
  s.runs = k_max_bench_runs;
  s.warmup = 0;
  s.prompt_tokens = 32768;
  s.max_tokens = 1;
  s.cooldown_s = 3600;
  s.num_ctx = 1ULL << 24;
  s.concurrency = {1, k_max_bench_concurrency};
  EXPECT_TRUE(check_settings(s));
  s.warmup = 100;
  s.cooldown_s = 0;
  s.runs = 1;
  EXPECT_TRUE(check_settings(s));
}

TEST(BenchSettingsCheck, EachOutOfRangeNamesItsOption) {
  const auto source_of = [](const BenchSettings& s) {
    const auto r = check_settings(s);
    return r ? std::string("(ok)") : r.error().source;
  };
  BenchSettings s;
  s.runs = 0;
  EXPECT_EQ(source_of(s), "--runs");
  s.runs = k_max_bench_runs + 1;
  EXPECT_EQ(source_of(s), "--runs");
  s = {};
  s.warmup = 101;
  EXPECT_EQ(source_of(s), "--warmup");
  s = {};
  s.prompt_tokens = 0;
  EXPECT_EQ(source_of(s), "--prompt-tokens");
  s.prompt_tokens = 32769;
  EXPECT_EQ(source_of(s), "--prompt-tokens");
  s = {};
  s.max_tokens = 0;
  EXPECT_EQ(source_of(s), "--max-tokens");
  s.max_tokens = 32769;
  EXPECT_EQ(source_of(s), "--max-tokens");
  s = {};
  s.concurrency = {};
  EXPECT_EQ(source_of(s), "--concurrency");
  s.concurrency = std::vector<std::size_t>(k_max_bench_levels + 1, 1);
  EXPECT_EQ(source_of(s), "--concurrency");
  s.concurrency = {1, 0};
  EXPECT_EQ(source_of(s), "--concurrency");
  s.concurrency = {k_max_bench_concurrency + 1};
  EXPECT_EQ(source_of(s), "--concurrency");
  s = {};
  s.cooldown_s = -1;
  EXPECT_EQ(source_of(s), "--cooldown");
  s.cooldown_s = 3600.5;
  EXPECT_EQ(source_of(s), "--cooldown");
  s.cooldown_s = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(source_of(s), "--cooldown");
  s = {};
  s.num_ctx = 0;
  EXPECT_EQ(source_of(s), "--ctx");
  s.num_ctx = (1ULL << 24) + 1;
  EXPECT_EQ(source_of(s), "--ctx");
}

// ---------------------------------------------------------------- bench_prompt

TEST(BenchPrompt, AboutTheAskedSize) {
  // One word ≈ 1.3 tokens: 256 tokens → 256·10/13 = 196 words, after the index.
  const auto words = words_of(bench_prompt(0, 256));
  ASSERT_EQ(words.size(), 197U);
  EXPECT_EQ(words.front(), "0:");
  EXPECT_EQ(words_of(bench_prompt(3, 1300)).size(), 1001U);
  EXPECT_EQ(words_of(bench_prompt(3, 1)).size(), 2U);  // one word at least
}

TEST(BenchPrompt, DifferentPerIndexFromTheFirstWordOnAndDeterministic) {
  std::set<std::string> firsts;
  std::set<std::vector<std::string>> walks;
  for (std::size_t i = 0; i < 50; ++i) {
    const auto p = bench_prompt(i, 64);
    EXPECT_EQ(p, bench_prompt(i, 64)) << i;
    auto words = words_of(p);
    ASSERT_EQ(words.size(), 50U);
    EXPECT_EQ(words.front(), std::to_string(i) + ":");
    firsts.insert(words.front());
    words.erase(words.begin());
    walks.insert(words);
  }
  EXPECT_EQ(firsts.size(), 50U);  // no two prompts share their first word
  EXPECT_EQ(walks.size(), 50U);   // nor the words after it
  // The same index with more tokens walks the same way, further.
  const auto short_one = bench_prompt(7, 13);
  EXPECT_EQ(bench_prompt(7, 26).substr(0, short_one.size()), short_one);
}

// ---------------------------------------------------------------- summarize_level

TEST(BenchLevelSummary, OnlyItsConcurrencyFailedCountedNotSummarizedItlPooled) {
  std::vector<BenchSample> samples(4);
  // Another level: ignored.
  samples[0].concurrency = 1;
  samples[0].ok = true;
  samples[0].ttft_s = 100;
  samples[0].e2e_s = 100;
  samples[0].output_tokens = 1000;
  // Two completed and one failed request at concurrency 2.
  samples[1].concurrency = 2;
  samples[1].ok = true;
  samples[1].start_s = 10.0;
  samples[1].ttft_s = 0.5;
  samples[1].tpot_s = 0.15;
  samples[1].e2e_s = 2.0;
  samples[1].output_tokens_per_s = 5.0;
  samples[1].output_tokens = 10;
  samples[1].eval_count = 9;
  samples[1].eval_s = 1.5;  // 6 tok/s on the server
  samples[2].concurrency = 2;
  samples[2].ok = true;
  samples[2].start_s = 10.5;
  samples[2].ttft_s = 1.0;
  samples[2].tpot_s = 0.1;
  samples[2].e2e_s = 3.0;
  samples[2].output_tokens_per_s = 20.0 / 3.0;
  samples[2].output_tokens = 20;
  samples[3].concurrency = 2;
  samples[3].ok = false;
  samples[3].error = "connection reset";
  samples[3].start_s = 11.0;
  samples[3].ttft_s = 0.2;  // a first token came, then the stream broke: not summarized
  samples[3].e2e_s = 1.0;
  samples[3].output_tokens = 3;
  const std::vector<std::vector<double>> gaps{{9, 9}, {0.1, 0.2}, {0.3}, {5.0}};

  const auto level = summarize_level(2, samples, gaps);
  EXPECT_EQ(level.concurrency, 2U);
  EXPECT_FALSE(level.interrupted);
  EXPECT_EQ(level.ttft_s.count, 2U);
  EXPECT_DOUBLE_EQ(*level.ttft_s.median, 0.75);
  EXPECT_DOUBLE_EQ(*level.ttft_s.min, 0.5);
  EXPECT_DOUBLE_EQ(*level.ttft_s.max, 1.0);
  EXPECT_DOUBLE_EQ(*level.e2e_s.mean, 2.5);
  EXPECT_DOUBLE_EQ(*level.tpot_s.median, 0.125);
  // ITL over every gap of the completed requests of this level: {0.1, 0.2, 0.3}.
  EXPECT_EQ(level.itl_s.count, 3U);
  EXPECT_DOUBLE_EQ(*level.itl_s.median, 0.2);
  EXPECT_DOUBLE_EQ(*level.itl_s.max, 0.3);
  EXPECT_NEAR(*level.itl_s.mean, 0.2, 1e-12);
  EXPECT_EQ(level.output_tokens_per_s.count, 2U);
  // The server's rate only where it said: one sample.
  EXPECT_EQ(level.server_tokens_per_s.count, 1U);
  EXPECT_DOUBLE_EQ(*level.server_tokens_per_s.median, 6.0);
  EXPECT_FALSE(level.server_tokens_per_s.stddev);
  // The window: first sent at 10.0, last ended at 10.5 + 3.0 = 13.5 → 3.5 s; the failed one is counted as failed,
  // its tokens are not.
  EXPECT_EQ(level.throughput.completed, 2U);
  EXPECT_EQ(level.throughput.failed, 1U);
  EXPECT_EQ(level.throughput.output_tokens, 30U);
  EXPECT_DOUBLE_EQ(*level.throughput.window_s, 3.5);
  EXPECT_DOUBLE_EQ(*level.throughput.requests_per_s, 2.0 / 3.5);
  EXPECT_DOUBLE_EQ(*level.throughput.output_tokens_per_s, 30.0 / 3.5);
}

TEST(BenchLevelSummary, NoSamplesOfTheLevelGiveNothingNotZero) {
  std::vector<BenchSample> samples(1);
  samples[0].concurrency = 1;
  samples[0].ok = true;
  samples[0].e2e_s = 1;
  const auto level = summarize_level(4, samples, {});
  EXPECT_EQ(level.ttft_s.count, 0U);
  EXPECT_FALSE(level.ttft_s.median);
  EXPECT_FALSE(level.itl_s.mean);
  EXPECT_FALSE(level.throughput.window_s);
  EXPECT_FALSE(level.throughput.output_tokens_per_s);
}

TEST(BenchLevelSummary, OnlyFailedRequestsHaveAWindowAndRatesOfZero) {
  std::vector<BenchSample> samples(2);
  for (std::size_t i = 0; i < 2; ++i) {
    samples[i].concurrency = 1;
    samples[i].start_s = static_cast<double>(i);
    samples[i].e2e_s = 1.0;
  }
  const auto level = summarize_level(1, samples, {});
  EXPECT_EQ(level.throughput.failed, 2U);
  EXPECT_EQ(level.throughput.completed, 0U);
  EXPECT_DOUBLE_EQ(*level.throughput.window_s, 2.0);
  EXPECT_DOUBLE_EQ(*level.throughput.requests_per_s, 0.0);
  EXPECT_FALSE(level.e2e_s.median);
}

// ---------------------------------------------------------------- judge_model

namespace {

BenchPoint point(double t, std::optional<unsigned> temperature, std::optional<unsigned> utilisation) {
  BenchPoint p;
  p.t_s = t;
  if (temperature || utilisation) {
    BenchGpuPoint g;
    g.temperature_c = temperature;
    g.utilisation_pct = utilisation;
    p.gpus.push_back(g);
  }
  return p;
}

std::vector<BenchPoint> timeline_of(const std::vector<unsigned>& temperatures, const std::vector<unsigned>& busy) {
  std::vector<BenchPoint> out;
  for (std::size_t i = 0; i < temperatures.size(); ++i) {
    out.push_back(point(static_cast<double>(i), temperatures[i], busy[i]));
  }
  return out;
}

BenchMark level_mark(const std::string& model, double start, double end, std::size_t c = 1) {
  return {model, BenchPhase::level, c, start, end};
}

const BenchVerdict& verdict(const std::vector<BenchVerdict>& verdicts, const std::string& criterion) {
  for (const auto& v : verdicts) {
    if (v.criterion == criterion) {
      return v;
    }
  }
  static const BenchVerdict none{"(absent)", VerdictOutcome::unknown, ""};
  ADD_FAILURE() << "no verdict " << criterion;
  return none;
}

}  // namespace

TEST(BenchJudge, VerdictsInOrder) {
  BenchModel m;
  m.model = "a";
  const auto v = judge_model(m, {}, {}, BenchSettings{});
  ASSERT_EQ(v.size(), 5U);
  EXPECT_EQ(v[0].criterion, "temperature");
  EXPECT_EQ(v[1].criterion, "gpu utilisation");
  EXPECT_EQ(v[2].criterion, "VRAM");
  EXPECT_EQ(v[3].criterion, "RAM");
  EXPECT_EQ(v[4].criterion, "memory returned");
  for (const auto& x : v) {
    EXPECT_EQ(x.outcome, VerdictOutcome::unknown) << x.criterion;
    EXPECT_FALSE(x.detail.empty()) << x.criterion;
  }
  EXPECT_EQ(v[0].detail, "no point of the timeline while generating");
  EXPECT_EQ(v[2].detail, "no GPU memory figures (NVML) at the load and while generating");
  EXPECT_EQ(v[3].detail, "no plan");
}

TEST(BenchJudge, TemperatureIsTheSustainedMedianNotASpike) {
  BenchModel m;
  m.model = "a";
  // Points 0..8; the level runs 2..6 (points 2, 3, 4, 5, 6). Hot points outside it do not count.
  const auto spike = timeline_of({99, 99, 60, 60, 95, 60, 62, 99, 99}, {0, 0, 90, 90, 90, 90, 90, 0, 0});
  const std::vector<BenchMark> marks{level_mark("a", 2, 6), level_mark("b", 0, 8)};
  auto v = verdict(judge_model(m, spike, marks, BenchSettings{}), "temperature");
  EXPECT_EQ(v.outcome, VerdictOutcome::pass);
  EXPECT_EQ(v.detail, "sustained 60 °C (median while generating), peak 95 °C; limit 70 °C");

  // 60, 75, 75, 75, 95 → median 75 ≥ 70.
  const auto hot = timeline_of({0, 0, 75, 60, 75, 95, 75, 0, 0}, {0, 0, 90, 90, 90, 90, 90, 0, 0});
  v = verdict(judge_model(m, hot, marks, BenchSettings{}), "temperature");
  EXPECT_EQ(v.outcome, VerdictOutcome::fail);
  EXPECT_EQ(v.detail, "sustained 75 °C (median while generating), peak 95 °C; limit 70 °C");

  // At the limit is a fail (under the limit passes); a higher limit passes it.
  const auto at = timeline_of({0, 0, 70, 70}, {0, 0, 90, 90});
  EXPECT_EQ(verdict(judge_model(m, at, marks, BenchSettings{}), "temperature").outcome, VerdictOutcome::fail);
  BenchSettings warm;
  warm.temperature_limit_c = 71;
  EXPECT_EQ(verdict(judge_model(m, at, marks, warm), "temperature").outcome, VerdictOutcome::pass);

  // The hottest GPU of each point: two GPUs, 50 and 80 → 80.
  auto two = timeline_of({0, 0, 50}, {0, 0, 90});
  BenchGpuPoint second;
  second.index = 1;
  second.temperature_c = 80;
  two[2].gpus.push_back(second);
  EXPECT_EQ(verdict(judge_model(m, two, marks, BenchSettings{}), "temperature").outcome, VerdictOutcome::fail);
}

TEST(BenchJudge, UnknownWithoutGpuData) {
  BenchModel m;
  m.model = "a";
  std::vector<BenchPoint> timeline{point(1, std::nullopt, std::nullopt), point(2, std::nullopt, std::nullopt)};
  const std::vector<BenchMark> marks{level_mark("a", 0, 3)};
  const auto v = judge_model(m, timeline, marks, BenchSettings{});
  EXPECT_EQ(verdict(v, "temperature").outcome, VerdictOutcome::unknown);
  EXPECT_EQ(verdict(v, "temperature").detail, "no GPU temperature (NVML)");
  EXPECT_EQ(verdict(v, "gpu utilisation").outcome, VerdictOutcome::unknown);
  EXPECT_EQ(verdict(v, "gpu utilisation").detail, "no GPU utilisation (NVML)");
}

TEST(BenchJudge, UtilisationMedianAgainstTargetAndUnknownOnTheCpu) {
  BenchModel m;
  m.model = "a";
  const std::vector<BenchMark> marks{level_mark("a", 0, 4)};
  // 50, 85, 90, 95, 100 → median 90 ≥ 80.
  const auto busy = timeline_of({40, 40, 40, 40, 40}, {50, 85, 90, 95, 100});
  auto v = verdict(judge_model(m, busy, marks, BenchSettings{}), "gpu utilisation");
  EXPECT_EQ(v.outcome, VerdictOutcome::pass);
  EXPECT_EQ(v.detail, "median 90% while generating; target 80%");
  // 10, 20, 79, 100, 100 → median 79 < 80.
  const auto idle = timeline_of({40, 40, 40, 40, 40}, {10, 20, 79, 100, 100});
  EXPECT_EQ(verdict(judge_model(m, idle, marks, BenchSettings{}), "gpu utilisation").outcome, VerdictOutcome::fail);
  // On the CPU (size_vram 0) the GPU's utilisation says nothing about this model.
  m.server_vram = 0;
  v = verdict(judge_model(m, busy, marks, BenchSettings{}), "gpu utilisation");
  EXPECT_EQ(v.outcome, VerdictOutcome::unknown);
  EXPECT_EQ(v.detail, "the model runs on the CPU (size_vram 0)");
}

// A point with the GPUs' used VRAM.
BenchPoint vram_point(double t, std::vector<std::optional<std::uint64_t>> used) {
  BenchPoint p;
  p.t_s = t;
  for (unsigned i = 0; i < used.size(); ++i) {
    BenchGpuPoint g;
    g.index = i;
    g.vram_used = used[i];
    p.gpus.push_back(g);
  }
  return p;
}

TEST(BenchJudge, VramIsWhatNvmlSawRiseFromTheLoadAgainstThePlansBand) {
  BenchModel m;
  m.model = "a";
  m.server_vram = 3 * k_gib;  // the server's own estimate: shown, not judged
  // VRAM plan 10 GiB: slack max(10 %, 128 MiB) = 1 GiB → band 9..11 GiB.
  m.planned_vram = 10 * k_gib;
  BenchMark load;
  load.model = "a";
  load.phase = BenchPhase::load;
  load.start_s = 0;
  load.end_s = 1;
  const std::vector<BenchMark> marks{load, level_mark("a", 2, 4)};
  // Two GPUs: 1 GiB used before the load; 5.5 + 6 GiB at the highest point while generating: 10.5 GiB added.
  const std::vector<BenchPoint> timeline{vram_point(0, {k_gib / 2, k_gib / 2}), vram_point(3, {5 * k_gib, 6 * k_gib}),
                                         vram_point(4, {5 * k_gib + k_gib / 2, 6 * k_gib}),
                                         vram_point(9, {20 * k_gib, 20 * k_gib})};
  auto v = verdict(judge_model(m, timeline, marks, BenchSettings{}), "VRAM");
  EXPECT_EQ(v.outcome, VerdictOutcome::pass) << v.detail;
  EXPECT_EQ(v.detail, "10.5 GiB measured, 10.0 GiB planned (band 9.00 GiB to 11.0 GiB)");
  m.planned_vram = 4 * k_gib;
  EXPECT_EQ(verdict(judge_model(m, timeline, marks, BenchSettings{}), "VRAM").outcome, VerdictOutcome::fail);
  // Without NVML figures it is not judged on the server's estimate.
  const std::vector<BenchPoint> blind{vram_point(0, {std::nullopt}), vram_point(3, {std::nullopt})};
  v = verdict(judge_model(m, blind, marks, BenchSettings{}), "VRAM");
  EXPECT_EQ(v.outcome, VerdictOutcome::unknown);
  EXPECT_NE(v.detail.find("size_vram) is 3.00 GiB"), std::string::npos) << v.detail;
}

TEST(BenchJudge, RamAgainstThePlansBand) {
  BenchModel m;
  m.model = "a";
  // RAM plan 2 GiB: slack max(204.8 MiB, 128 MiB) → band about 1.8..2.2 GiB; 3 GiB is out.
  m.planned_ram = 2 * k_gib;
  m.loaded_ram = 3 * k_gib;
  EXPECT_EQ(verdict(judge_model(m, {}, {}, BenchSettings{}), "RAM").outcome, VerdictOutcome::fail);
  m.loaded_ram = 2 * k_gib - 100 * (1ULL << 20);
  EXPECT_EQ(verdict(judge_model(m, {}, {}, BenchSettings{}), "RAM").outcome, VerdictOutcome::pass);
  // What the runtime fills later (the KV cache, the graph) widens the RAM band downwards: 1 GiB loaded of a 2 GiB
  // plan of which 1 GiB is KV cache is within it.
  m.loaded_ram = k_gib;
  EXPECT_EQ(verdict(judge_model(m, {}, {}, BenchSettings{}), "RAM").outcome, VerdictOutcome::fail);
  m.ram_fills_later = k_gib;
  EXPECT_EQ(verdict(judge_model(m, {}, {}, BenchSettings{}), "RAM").outcome, VerdictOutcome::pass);
  m.planned_ram.reset();
  EXPECT_EQ(verdict(judge_model(m, {}, {}, BenchSettings{}), "RAM").detail, "no plan");
}

TEST(BenchJudge, UnloadVerdicts) {
  BenchModel m;
  m.model = "a";
  m.unload = {UnloadVerdict::returned, 10ULL << 20};
  EXPECT_EQ(verdict(judge_model(m, {}, {}, BenchSettings{}), "memory returned").outcome, VerdictOutcome::pass);
  m.unload = {UnloadVerdict::kept, 2 * k_gib};
  auto v = verdict(judge_model(m, {}, {}, BenchSettings{}), "memory returned");
  EXPECT_EQ(v.outcome, VerdictOutcome::fail);
  EXPECT_NE(v.detail.find("2.00 GiB"), std::string::npos) << v.detail;
  m.unload = {};
  m.unload_error = "POST /api/generate keep_alive 0: timed out";
  v = verdict(judge_model(m, {}, {}, BenchSettings{}), "memory returned");
  EXPECT_EQ(v.outcome, VerdictOutcome::unknown);
  EXPECT_EQ(v.detail, "POST /api/generate keep_alive 0: timed out");
}

// ---------------------------------------------------------------- add_point

TEST(BenchTimeline, HalvesWhenFull) {
  std::vector<BenchPoint> timeline;
  const auto times = [&] {
    std::vector<double> out;
    for (const auto& p : timeline) {
      out.push_back(p.t_s);
    }
    return out;
  };
  for (int i = 0; i < 4; ++i) {
    add_point(timeline, point(i, std::nullopt, std::nullopt), 4);
  }
  EXPECT_EQ(times(), (std::vector<double>{0, 1, 2, 3}));
  add_point(timeline, point(4, std::nullopt, std::nullopt), 4);  // full: every second one dropped, then added
  EXPECT_EQ(times(), (std::vector<double>{0, 2, 4}));
  add_point(timeline, point(5, std::nullopt, std::nullopt), 4);
  add_point(timeline, point(6, std::nullopt, std::nullopt), 4);
  EXPECT_EQ(times(), (std::vector<double>{0, 4, 6}));
  for (int i = 7; i < 1000; ++i) {
    add_point(timeline, point(i, std::nullopt, std::nullopt), 4);
    ASSERT_LE(timeline.size(), 4U);
  }
  EXPECT_EQ(timeline.back().t_s, 999);
}

// ---------------------------------------------------------------- compare_runs

namespace {

BenchLevel level_with(std::size_t c, std::optional<double> ttft_median, std::optional<double> tokens_per_s) {
  BenchLevel l;
  l.concurrency = c;
  l.ttft_s.median = ttft_median;
  l.throughput.output_tokens_per_s = tokens_per_s;
  return l;
}

const BenchChange* find_change(const std::vector<BenchChange>& changes, const std::string& model, std::size_t c,
                               const std::string& metric) {
  for (const auto& ch : changes) {
    if (ch.model == model && ch.concurrency == c && ch.metric == metric) {
      return &ch;
    }
  }
  return nullptr;
}

}  // namespace

TEST(BenchCompare, PercentMissingAndOnlyWhatBothRunsHave) {
  BenchRun before, after;
  BenchModel a0;
  a0.model = "a";
  a0.load_s = 10;
  a0.levels = {level_with(1, 2.0, 100.0), level_with(2, 1.0, 0.0)};
  BenchModel c0;
  c0.model = "c";  // only before
  before.models = {a0, c0};

  BenchModel b1;
  b1.model = "b";  // only after
  b1.levels = {level_with(1, 1.0, 1.0)};
  BenchModel a1;
  a1.model = "a";
  a1.load_s = 12;
  a1.levels = {level_with(4, 1.0, 1.0), level_with(2, std::nullopt, 50.0), level_with(1, 1.5, 150.0)};
  after.models = {b1, a1};

  const auto changes = compare_runs(before, after);
  // Model a: its load, then levels 2 and 1 (in the order of `after`; level 4 is only in after), 9 metrics each.
  ASSERT_EQ(changes.size(), 1U + 9U + 9U);
  for (const auto& ch : changes) {
    EXPECT_EQ(ch.model, "a");
    EXPECT_NE(ch.concurrency, 4U);
  }
  EXPECT_EQ(changes[0].metric, "load s");
  EXPECT_EQ(changes[0].concurrency, 0U);
  EXPECT_DOUBLE_EQ(*changes[0].change_percent, 20.0);
  EXPECT_FALSE(changes[0].higher_is_better);
  EXPECT_EQ(changes[1].concurrency, 2U);
  EXPECT_EQ(changes[10].concurrency, 1U);

  const auto* ttft = find_change(changes, "a", 1, "ttft p50 s");
  ASSERT_NE(ttft, nullptr);
  EXPECT_DOUBLE_EQ(*ttft->before, 2.0);
  EXPECT_DOUBLE_EQ(*ttft->after, 1.5);
  EXPECT_DOUBLE_EQ(*ttft->change_percent, -25.0);
  EXPECT_FALSE(ttft->higher_is_better);
  const auto* tokens = find_change(changes, "a", 1, "tokens/s");
  ASSERT_NE(tokens, nullptr);
  EXPECT_DOUBLE_EQ(*tokens->change_percent, 50.0);
  EXPECT_TRUE(tokens->higher_is_better);
  // Missing on one side: no change, the side that is there kept.
  const auto* gone = find_change(changes, "a", 2, "ttft p50 s");
  ASSERT_NE(gone, nullptr);
  EXPECT_DOUBLE_EQ(*gone->before, 1.0);
  EXPECT_FALSE(gone->after);
  EXPECT_FALSE(gone->change_percent);
  const auto* p90 = find_change(changes, "a", 1, "ttft p90 s");
  ASSERT_NE(p90, nullptr);
  EXPECT_FALSE(p90->before);
  EXPECT_FALSE(p90->change_percent);
  // From 0: no percentage.
  const auto* from_zero = find_change(changes, "a", 2, "tokens/s");
  ASSERT_NE(from_zero, nullptr);
  EXPECT_DOUBLE_EQ(*from_zero->before, 0.0);
  EXPECT_DOUBLE_EQ(*from_zero->after, 50.0);
  EXPECT_FALSE(from_zero->change_percent);
}

TEST(BenchCompare, NothingInCommonIsNoChange) {
  BenchRun before, after;
  before.models.resize(1);
  before.models[0].model = "x";
  after.models.resize(1);
  after.models[0].model = "y";
  EXPECT_TRUE(compare_runs(before, after).empty());
  EXPECT_TRUE(compare_runs({}, {}).empty());
}
