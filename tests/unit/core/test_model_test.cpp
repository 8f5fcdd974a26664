#include <gtest/gtest.h>

#include "core/model_test.hpp"

using namespace mw;

namespace {
constexpr std::uint64_t k_mib = 1ULL << 20;
constexpr std::uint64_t k_gib = 1ULL << 30;
}  // namespace

TEST(CheckEstimate, TheErrorIsSignedAndRelativeToThePlan) {
  const auto over = check_estimate("RAM", 10 * k_gib, 11 * k_gib);
  ASSERT_TRUE(over.error_percent);
  EXPECT_DOUBLE_EQ(*over.error_percent, 10.0);
  EXPECT_TRUE(over.within) << "10% is the edge of the stated error";
  const auto under = check_estimate("RAM", 10 * k_gib, 8 * k_gib);
  EXPECT_DOUBLE_EQ(*under.error_percent, -20.0);
  EXPECT_FALSE(under.within);
  EXPECT_EQ(under.role, CheckRole::decides);
}

TEST(CheckEstimate, ASmallModelGetsTheAbsoluteAllowance) {
  // 500 MiB planned, 600 MiB measured: 20% off, but within 128 MiB.
  const auto c = check_estimate("RAM", 500 * k_mib, 600 * k_mib);
  EXPECT_NEAR(*c.error_percent, 20.0, 1e-9);
  EXPECT_TRUE(c.within);
  EXPECT_FALSE(check_estimate("RAM", 500 * k_mib, 700 * k_mib).within);
}

TEST(CheckEstimate, UnmeasuredHasNoErrorAndIsNotWithin) {
  const auto c = check_estimate("RAM", 5 * k_gib, std::nullopt);
  EXPECT_FALSE(c.measured);
  EXPECT_FALSE(c.error_percent);
  EXPECT_FALSE(c.within);
}

TEST(CheckEstimate, NothingPlannedHasNoPercentButIsJudgedByBytes) {
  const auto none = check_estimate("VRAM", 0, 0);
  EXPECT_FALSE(none.error_percent);
  EXPECT_TRUE(none.within);
  EXPECT_FALSE(check_estimate("VRAM", 0, 2 * k_gib).within) << "a CPU plan on a server that used the GPU";
  EXPECT_EQ(check_estimate("size", 1, 1, CheckRole::compares).role, CheckRole::compares);
}

TEST(CheckEstimate, ATighterToleranceIsHonoured) {
  const EstimateTolerance tight{1.0, 0};
  EXPECT_FALSE(check_estimate("RAM", 10 * k_gib, 10 * k_gib + 200 * k_mib, CheckRole::decides, 0, tight).within);
  EXPECT_TRUE(check_estimate("RAM", 10 * k_gib, 10 * k_gib + 100 * k_mib, CheckRole::decides, 0, tight).within);
}

TEST(CheckUnload, MemoryThatComesBackIsReturned) {
  const auto c = check_unload(50 * k_mib, 1500 * k_mib, 60 * k_mib);
  EXPECT_EQ(c.verdict, UnloadVerdict::returned);
  EXPECT_EQ(c.kept, 10 * k_mib);
  EXPECT_EQ(check_unload(50 * k_mib, 1500 * k_mib, 40 * k_mib).kept, 0U) << "less than before is nothing kept";
}

TEST(CheckUnload, AServerThatKeepsMemoryIsAFinding) {
  // 25 GB held with no model loaded (the seed incident), and a small retention on a small load.
  const auto seed = check_unload(26 * k_mib, 5 * k_gib, 25 * k_gib);
  EXPECT_EQ(seed.verdict, UnloadVerdict::kept);
  EXPECT_EQ(seed.kept, 25 * k_gib - 26 * k_mib);
  EXPECT_EQ(check_unload(50 * k_mib, 450 * k_mib, 350 * k_mib).verdict, UnloadVerdict::kept);
}

TEST(CheckUnload, TheAllowanceGrowsWithTheLoad) {
  // 10% of a 20 GiB load is 2 GiB: allocator arenas of 1 GiB left behind are not a finding.
  EXPECT_EQ(check_unload(1 * k_gib, 21 * k_gib, 2 * k_gib).verdict, UnloadVerdict::returned);
  EXPECT_EQ(check_unload(1 * k_gib, 21 * k_gib, 4 * k_gib).verdict, UnloadVerdict::kept);
  EXPECT_EQ(check_unload(100 * k_mib, 200 * k_mib, 160 * k_mib).verdict, UnloadVerdict::returned) << "64 MiB floor";
}

TEST(CheckUnload, AMissingFigureIsUnknown) {
  EXPECT_EQ(check_unload(std::nullopt, 1 * k_gib, 1 * k_gib).verdict, UnloadVerdict::unknown);
  EXPECT_EQ(check_unload(1 * k_gib, 1 * k_gib, std::nullopt).verdict, UnloadVerdict::unknown);
  EXPECT_FALSE(check_unload(1 * k_gib, 1 * k_gib, std::nullopt).kept);
  EXPECT_EQ(check_unload(1 * k_gib, std::nullopt, 1 * k_gib).verdict, UnloadVerdict::returned);
  EXPECT_STREQ(to_string(UnloadVerdict::kept), "kept");
}

TEST(ProcessorSplit, AsOllamaPsPrintsIt) {
  EXPECT_EQ(processor_split(10 * k_gib, 0), "100% CPU");
  EXPECT_EQ(processor_split(10 * k_gib, 10 * k_gib), "100% GPU");
  EXPECT_EQ(processor_split(100, 52), "48%/52% CPU/GPU");
  EXPECT_EQ(processor_split(0, 0), "100% CPU");
}

TEST(CheckEstimate, WhatFillsWithTheContextMayBeMissingAfterALoad) {
  // A 1.32 GiB model whose plan adds 176 MiB of KV cache and graph: a load touches the weights only.
  const std::uint64_t planned = 1526 * k_mib;
  const auto c = check_estimate("RAM", planned, 1365 * k_mib, CheckRole::decides, 176 * k_mib);
  EXPECT_TRUE(c.within) << c.low << ".." << c.high;
  EXPECT_EQ(c.low, planned - 176 * k_mib - planned / 10);
  EXPECT_EQ(c.high, planned + planned / 10);
  EXPECT_FALSE(check_estimate("RAM", planned, 900 * k_mib, CheckRole::decides, 176 * k_mib).within)
      << "the weights did not arrive";
  EXPECT_FALSE(check_estimate("RAM", planned, 1800 * k_mib, CheckRole::decides, 176 * k_mib).within)
      << "more than the plan";
  // What fills later never takes the band below zero.
  EXPECT_EQ(check_estimate("RAM", 100 * k_mib, 0, CheckRole::decides, 500 * k_mib).low, 0U);
}
