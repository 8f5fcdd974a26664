// The rule optimize, diagnose, status and serve share for a container's memory limit (core/optimize.hpp).
#include <gtest/gtest.h>

#include <string>

#include "core/optimize.hpp"

using namespace mw;

namespace {

constexpr std::uint64_t k_mib = 1ULL << 20;
constexpr std::uint64_t k_gib = 1ULL << 30;

CgroupMemory memory(CgroupVersion v, std::uint64_t usage, std::uint64_t inactive_file) {
  CgroupMemory m;
  m.version = v;
  m.usage = usage;
  m.inactive_file = inactive_file;
  return m;
}

ModelPlan model_plan(std::string name, std::uint64_t ram, std::uint64_t limit) {
  ModelPlan p;
  p.name = std::move(name);
  p.ram_needed = ram;
  p.container_limit = limit;
  p.verdict = FitVerdict::cpu;
  return p;
}

ServedModel served(std::string name, std::uint64_t ram, std::uint64_t limit) {
  ServedModel m;
  m.name = name;
  m.plan = model_plan(std::move(name), ram, limit);
  return m;
}

LimitInput input(std::optional<std::uint64_t> current, std::uint64_t floor, std::uint64_t wanted, std::uint64_t cap) {
  LimitInput in;
  in.current = current;
  in.floor = floor;
  in.wanted = wanted;
  in.cap = cap;
  return in;
}

}  // namespace

TEST(LimitFloor, CgroupV1IsTheWorkingSetWithAMargin) {
  // 6 GiB used, 4 GiB of it inactive page cache the kernel can reclaim: 2 GiB working set + 256 MiB.
  const auto f = limit_floor(memory(CgroupVersion::v1, 6 * k_gib, 4 * k_gib));
  ASSERT_TRUE(f);
  EXPECT_EQ(*f, 2 * k_gib + 256 * k_mib);
}

TEST(LimitFloor, CgroupV2NeverGoesBelowCurrentUse) {
  // The same reading on v2: memory.max below memory.current reclaims at once and OOM-kills when it cannot.
  const auto f = limit_floor(memory(CgroupVersion::v2, 6 * k_gib, 4 * k_gib));
  ASSERT_TRUE(f);
  EXPECT_EQ(*f, 6 * k_gib);
}

TEST(LimitFloor, TheMarginIsTenPercentForLargeContainers) {
  const auto f = limit_floor(memory(CgroupVersion::v1, 20 * k_gib, 0));
  ASSERT_TRUE(f);
  EXPECT_EQ(*f, round_up_to_step(20 * k_gib + 2 * k_gib));
}

TEST(LimitFloor, UnknownUseGivesNoFloor) {
  CgroupMemory m;
  m.version = CgroupVersion::v1;
  EXPECT_FALSE(limit_floor(m));
  m.version = CgroupVersion::v2;
  m.inactive_file = 0;
  EXPECT_FALSE(limit_floor(m));
}

TEST(DecideLimit, AnUnlimitedContainerGetsTheWantedLimitRoundedUp) {
  const auto d = decide_limit(input(std::nullopt, 1 * k_gib, 9 * k_gib + 1, 19 * k_gib));
  EXPECT_EQ(d.action, LimitAction::set);
  ASSERT_TRUE(d.target);
  EXPECT_EQ(*d.target, 9 * k_gib + 256 * k_mib);
  EXPECT_FALSE(d.capped);
  EXPECT_FALSE(d.floored);
}

TEST(DecideLimit, NeverBelowTheFloor) {
  // An idle-bloated server using 25 GiB: the plan wants 9 GiB, the floor wins (fix it first).
  const auto d = decide_limit(input(std::nullopt, 25 * k_gib, 9 * k_gib, 28 * k_gib));
  ASSERT_TRUE(d.target);
  EXPECT_EQ(*d.target, 25 * k_gib);
  EXPECT_TRUE(d.floored);
}

TEST(DecideLimit, TheV1AndV2FloorsGiveDifferentLimitsForTheSameContainer) {
  const auto use = memory(CgroupVersion::v1, 6 * k_gib, 4 * k_gib);
  auto v2 = use;
  v2.version = CgroupVersion::v2;
  const auto d1 = decide_limit(input(std::nullopt, *limit_floor(use), 3 * k_gib, 20 * k_gib));
  const auto d2 = decide_limit(input(std::nullopt, *limit_floor(v2), 3 * k_gib, 20 * k_gib));
  EXPECT_EQ(*d1.target, 3 * k_gib);
  EXPECT_EQ(*d2.target, 6 * k_gib);
}

TEST(DecideLimit, CappedAtWhatTheHostCanGive) {
  const auto d = decide_limit(input(std::nullopt, 1 * k_gib, 40 * k_gib, 19 * k_gib + 100));
  ASSERT_TRUE(d.target);
  EXPECT_EQ(*d.target, 19 * k_gib);
  EXPECT_TRUE(d.capped);
  EXPECT_NE(d.why.find("capped"), std::string::npos);
}

TEST(DecideLimit, AFloorOverTheCapIsSkippedNotSetBelowUse) {
  const auto d = decide_limit(input(std::nullopt, 20 * k_gib, 9 * k_gib, 19 * k_gib));
  EXPECT_EQ(d.action, LimitAction::skip);
  EXPECT_FALSE(d.target);
  EXPECT_NE(d.why.find("reserve"), std::string::npos);
}

TEST(DecideLimit, RaisesATooSmallLimitAndKeepsOneCloseEnough) {
  auto raise = decide_limit(input(2 * k_gib, 1 * k_gib, 9 * k_gib, 19 * k_gib));
  EXPECT_EQ(raise.action, LimitAction::raise);
  EXPECT_EQ(*raise.target, 9 * k_gib);
  auto keep = decide_limit(input(9 * k_gib + 256 * k_mib, 1 * k_gib, 9 * k_gib, 19 * k_gib));
  EXPECT_EQ(keep.action, LimitAction::keep);
  auto lower = decide_limit(input(28 * k_gib, 1 * k_gib, 9 * k_gib, 40 * k_gib));
  EXPECT_EQ(lower.action, LimitAction::lower);
  EXPECT_EQ(*lower.target, 9 * k_gib);
}

TEST(DecideLimit, ALimitBelowTheFloorIsRaisedEvenWithinTheTolerance) {
  const auto d = decide_limit(input(3 * k_gib, 3 * k_gib + 256 * k_mib, 3 * k_gib, 19 * k_gib));
  EXPECT_EQ(d.action, LimitAction::raise);
  EXPECT_EQ(*d.target, 3 * k_gib + 256 * k_mib);
}

TEST(DecideLimit, NoBasisOrNoReadingIsASkipWithTheReason) {
  LimitInput in;
  in.floor = 1 * k_gib;
  in.cap = 10 * k_gib;
  in.why_no_basis = "only 3 h of stored history";
  auto d = decide_limit(in);
  EXPECT_EQ(d.action, LimitAction::skip);
  EXPECT_EQ(d.why, "only 3 h of stored history");
  in.wanted = 2 * k_gib;
  in.floor.reset();
  d = decide_limit(in);
  EXPECT_EQ(d.action, LimitAction::skip);
  EXPECT_NE(d.why.find("blind"), std::string::npos);
}

TEST(ServerCap, SubtractsTheReserveAndWhatTheOthersMayTake) {
  // 32 GiB host, 4 GiB reserve, Grafana limited to 1 GiB, Prometheus unlimited using 700 MiB.
  const auto cap = server_cap(32 * k_gib, 4 * k_gib, {{1 * k_gib, 300 * k_mib}, {std::nullopt, 700 * k_mib}});
  EXPECT_EQ(cap, 32 * k_gib - 4 * k_gib - 1 * k_gib - 700 * k_mib);
  EXPECT_EQ(server_cap(4 * k_gib, 8 * k_gib, {}), 0U);
  EXPECT_EQ(server_cap(8 * k_gib, 1 * k_gib, {{100 * k_gib, std::nullopt}}), 0U);
  EXPECT_EQ(server_cap(8 * k_gib, 1 * k_gib, {{std::nullopt, std::nullopt}}), 7 * k_gib);
}

TEST(LimitFromHistory, NeedsADayOfSamples) {
  HistoryPeak p;
  p.peak = 300 * k_mib;
  p.samples = 500;
  p.span_ms = 23LL * 3600 * 1000;
  auto b = limit_from_history(p);
  EXPECT_FALSE(b.wanted);
  EXPECT_NE(b.why.find("23 h"), std::string::npos) << b.why;
  EXPECT_NE(b.why.find("24 h"), std::string::npos) << b.why;
  p.span_ms = k_min_history_ms;
  b = limit_from_history(p);
  ASSERT_TRUE(b.wanted);
  EXPECT_EQ(*b.wanted, round_up_to_step(300 * k_mib + 75 * k_mib));
  EXPECT_NE(b.why.find("peak 300"), std::string::npos) << b.why;
}

TEST(LimitFromHistory, NoSamplesIsNoBasis) {
  HistoryPeak p;
  const auto b = limit_from_history(p);
  EXPECT_FALSE(b.wanted);
  EXPECT_NE(b.why.find("no stored history"), std::string::npos);
}

TEST(LimitFromModels, TheLargestModelSetsIt) {
  ServedModel broken;
  broken.name = "mystery:latest";
  broken.error = "HTTP 404";
  const auto b =
      limit_from_models({served("small:1b", 1 * k_gib, 2 * k_gib), served("big:32b", 20 * k_gib, 24 * k_gib), broken},
                        "installed models");
  ASSERT_TRUE(b.wanted);
  EXPECT_EQ(*b.wanted, 24 * k_gib);
  EXPECT_EQ(b.largest, "big:32b");
  EXPECT_NE(b.why.find("2 models"), std::string::npos) << b.why;
  EXPECT_NE(b.why.find("mystery:latest"), std::string::npos) << b.why;
}

TEST(LimitFromModels, NoModelsIsNoBasis) {
  const auto b = limit_from_models({}, "installed models");
  EXPECT_FALSE(b.wanted);
  EXPECT_NE(b.why.find("no models"), std::string::npos);
}

TEST(RecommendSettings, ModelsThatDoNotFitTogetherLoadOneAtATime) {
  ServerEnv env;
  env.env["OLLAMA_KEEP_ALIVE"] = "-1";
  const auto changes = recommend_settings({served("a:8b", 6 * k_gib, 8 * k_gib), served("b:8b", 6 * k_gib, 8 * k_gib)},
                                          env, 8 * k_gib, 20);
  ASSERT_EQ(changes.size(), 2U);
  EXPECT_EQ(changes[0].key, "OLLAMA_MAX_LOADED_MODELS");
  EXPECT_FALSE(changes[0].before);
  EXPECT_EQ(changes[0].after, "1");
  EXPECT_EQ(changes[1].key, "OLLAMA_KEEP_ALIVE");
  EXPECT_EQ(*changes[1].before, "-1");
  EXPECT_EQ(changes[1].after, "5m");
}

TEST(RecommendSettings, NothingWhenTheyFitOrAreOneAtATimeAlready) {
  ServerEnv env;
  EXPECT_TRUE(
      recommend_settings({served("a", 2 * k_gib, 3 * k_gib), served("b", 2 * k_gib, 3 * k_gib)}, env, 8 * k_gib, 20)
          .empty());
  env.env["OLLAMA_MAX_LOADED_MODELS"] = "1";
  env.env["OLLAMA_KEEP_ALIVE"] = "10m";
  EXPECT_TRUE(
      recommend_settings({served("a", 6 * k_gib, 8 * k_gib), served("b", 6 * k_gib, 8 * k_gib)}, env, 8 * k_gib, 20)
          .empty());
}

TEST(RecommendSettings, AModelOverTheLimitTakesThePlansOwnSuggestion) {
  auto m = served("big:32b", 20 * k_gib, 24 * k_gib);
  m.plan->suggestions.push_back({"--ctx 2048", "a context of 2048", FitVerdict::cpu, {}, 15 * k_gib});
  m.plan->suggestions.push_back({"--kv-type q8_0", "a q8_0 KV cache", FitVerdict::cpu, {}, 15 * k_gib});
  m.plan->suggestions.push_back({"--parallel 1", "one request at a time", FitVerdict::cpu, {}, 30 * k_gib});
  m.plan->suggestions.push_back({"quantization q3_K_M", "smaller weights", FitVerdict::cpu, {}, 10 * k_gib});
  ServerEnv env;
  env.env["OLLAMA_NUM_PARALLEL"] = "4";
  const auto changes = recommend_settings({m}, env, 19 * k_gib, 20);
  // --parallel 1 does not bring it under 19 GiB; the KV cache comes before a shorter context.
  ASSERT_EQ(changes.size(), 2U);
  EXPECT_EQ(changes[0].key, "OLLAMA_KV_CACHE_TYPE");
  EXPECT_EQ(changes[0].after, "q8_0");
  EXPECT_EQ(changes[1].key, "OLLAMA_FLASH_ATTENTION");
  EXPECT_EQ(changes[1].after, "1");
  EXPECT_NE(changes[0].why.find("big:32b"), std::string::npos);
}

TEST(RecommendSettings, NoSuggestionThatFitsMeansNoSetting) {
  auto m = served("huge:70b", 40 * k_gib, 48 * k_gib);
  m.plan->suggestions.push_back({"--ctx 2048", "a context of 2048", FitVerdict::no_fit, {}, 39 * k_gib});
  EXPECT_TRUE(recommend_settings({m}, ServerEnv{}, 19 * k_gib, 20).empty());
}

TEST(DecideLimit, AnIncompleteBasisOnlyRaises) {
  auto in = input(std::nullopt, 1 * k_gib, 8 * k_gib, 19 * k_gib);
  in.only_raise = true;
  in.incomplete = "could not size llama3.1:70b";
  auto d = decide_limit(in);
  EXPECT_EQ(d.action, LimitAction::skip);
  EXPECT_FALSE(d.target);
  EXPECT_NE(d.why.find("llama3.1:70b"), std::string::npos) << d.why;
  in.current = 28 * k_gib;
  EXPECT_EQ(decide_limit(in).action, LimitAction::skip) << "not lowered either";
  in.current = 2 * k_gib;
  d = decide_limit(in);
  EXPECT_EQ(d.action, LimitAction::raise) << "raising is safe whatever was left out";
  EXPECT_EQ(*d.target, 8 * k_gib);
}

TEST(LimitFromModels, AModelThatCouldNotBeSizedMakesTheBasisIncomplete) {
  ServedModel broken;
  broken.name = "llama3.1:70b";
  broken.error = "timed out";
  EXPECT_TRUE(limit_from_models({served("a", 1 * k_gib, 2 * k_gib)}, "installed models").complete);
  EXPECT_FALSE(limit_from_models({served("a", 1 * k_gib, 2 * k_gib), broken}, "installed models").complete);
}

TEST(UseFloor, IsWhatItUsesWithoutAMargin) {
  EXPECT_EQ(use_floor(memory(CgroupVersion::v1, 6 * k_gib, 4 * k_gib)), 2 * k_gib);
  EXPECT_EQ(use_floor(memory(CgroupVersion::v2, 6 * k_gib, 4 * k_gib)), 6 * k_gib);
  EXPECT_FALSE(use_floor(CgroupMemory{}));
}

TEST(RecommendSettings, TheSmallestContextSeveralModelsNeedWins) {
  auto a = served("a:14b", 12 * k_gib, 14 * k_gib);
  a.plan->suggestions.push_back({"--ctx 8192", "a context of 8192", FitVerdict::cpu, {}, 9 * k_gib});
  auto b = served("b:32b", 14 * k_gib, 16 * k_gib);
  b.plan->suggestions.push_back({"--ctx 4096", "a context of 4096", FitVerdict::cpu, {}, 10 * k_gib});
  ServerEnv env;
  env.env["OLLAMA_MAX_LOADED_MODELS"] = "1";
  const auto changes = recommend_settings({a, b}, env, 12 * k_gib, 20);
  ASSERT_EQ(changes.size(), 1U);
  EXPECT_EQ(changes[0].key, "OLLAMA_CONTEXT_LENGTH");
  EXPECT_EQ(changes[0].after, "4096");
  EXPECT_NE(changes[0].why.find("b:32b"), std::string::npos);
}
