// The benchmark's figures (core/bench_stats): percentiles as numpy's default computes them, the summary of a
// sample with nothing made up for an empty one, and a streamed request's TTFT, ITL, TPOT and rates, all
// against values worked out by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "core/bench_stats.hpp"

using namespace mw;
using namespace std::chrono_literals;

namespace {

constexpr double k_eps = 1e-12;

RequestFigures figures(const StreamTimes& times) {
  auto f = request_figures(times, "POST /api/generate #1");
  EXPECT_TRUE(f) << (f ? "" : f.error().line());
  return f ? *f : RequestFigures{};
}

}  // namespace

TEST(Percentile, LinearBetweenClosestRanksAsNumpy) {
  // numpy.percentile([1, 2, 3, 4], q): rank (n − 1)·q/100.
  const std::vector<double> four{1, 2, 3, 4};
  EXPECT_DOUBLE_EQ(*percentile_of_sorted(four, 50), 2.5);   // rank 1.5
  EXPECT_DOUBLE_EQ(*percentile_of_sorted(four, 90), 3.7);   // rank 2.7: 3 + 0.7·(4 − 3)
  EXPECT_DOUBLE_EQ(*percentile_of_sorted(four, 99), 3.97);  // rank 2.97
  EXPECT_DOUBLE_EQ(*percentile_of_sorted(four, 25), 1.75);  // rank 0.75
  EXPECT_DOUBLE_EQ(*percentile_of_sorted(four, 0), 1.0);
  EXPECT_DOUBLE_EQ(*percentile_of_sorted(four, 100), 4.0);
  // An outlier pulls p99 most of the way: rank 2.97 between 30 and 1000 → 30 + 0.97·970.
  const std::vector<double> outlier{10, 20, 30, 1000};
  EXPECT_NEAR(*percentile_of_sorted(outlier, 99), 970.9, 1e-9);
  EXPECT_DOUBLE_EQ(*percentile_of_sorted(outlier, 50), 25.0);
  // Equal neighbours give their value exactly.
  const std::vector<double> flat{0.1, 0.1, 0.1};
  EXPECT_EQ(*percentile_of_sorted(flat, 90), 0.1);
}

TEST(Percentile, NothingForAnEmptySampleOrAQOutsideTheRange) {
  const std::vector<double> none;
  EXPECT_FALSE(percentile_of_sorted(none, 50));
  const std::vector<double> one{7};
  EXPECT_DOUBLE_EQ(*percentile_of_sorted(one, 99), 7.0);
  EXPECT_FALSE(percentile_of_sorted(one, -1));
  EXPECT_FALSE(percentile_of_sorted(one, 100.5));
  EXPECT_FALSE(percentile_of_sorted(one, std::numeric_limits<double>::quiet_NaN()));
}

TEST(Summarize, OneToTenInAnyOrder) {
  const std::vector<double> values{7, 3, 10, 1, 9, 2, 8, 4, 6, 5};
  const auto s = summarize(values);
  EXPECT_EQ(s.count, 10U);
  EXPECT_EQ(s.left_out, 0U);
  EXPECT_DOUBLE_EQ(*s.mean, 5.5);
  EXPECT_DOUBLE_EQ(*s.median, 5.5);  // rank 4.5
  EXPECT_DOUBLE_EQ(*s.p90, 9.1);     // rank 8.1: 9 + 0.1
  EXPECT_DOUBLE_EQ(*s.p99, 9.91);    // rank 8.91
  EXPECT_DOUBLE_EQ(*s.min, 1.0);
  EXPECT_DOUBLE_EQ(*s.max, 10.0);
  // Squared deviations sum to 82.5; / (10 − 1) = 9.1666…; its root.
  EXPECT_NEAR(*s.stddev, std::sqrt(82.5 / 9.0), k_eps);
  EXPECT_NEAR(*s.stddev, 3.0276503540974917, k_eps);
}

TEST(Summarize, SampleStandardDeviationDividesByNMinusOne) {
  // The textbook sample: mean 5, squared deviations 9+1+1+1+0+0+4+16 = 32; population sd 2, sample sd √(32/7).
  const std::vector<double> values{2, 4, 4, 4, 5, 5, 7, 9};
  const auto s = summarize(values);
  EXPECT_DOUBLE_EQ(*s.mean, 5.0);
  EXPECT_NEAR(*s.stddev, std::sqrt(32.0 / 7.0), k_eps);
  EXPECT_DOUBLE_EQ(*s.median, 4.5);
  EXPECT_DOUBLE_EQ(*s.p90, 7.6);  // rank 6.3: 7 + 0.3·(9 − 7)
}

TEST(Summarize, EmptyAndSingleSamplesLeaveWhatTheyCannotTellUnknown) {
  const auto empty = summarize(std::vector<double>{});
  EXPECT_EQ(empty.count, 0U);
  EXPECT_FALSE(empty.mean);
  EXPECT_FALSE(empty.median);
  EXPECT_FALSE(empty.p90);
  EXPECT_FALSE(empty.p99);
  EXPECT_FALSE(empty.min);
  EXPECT_FALSE(empty.max);
  EXPECT_FALSE(empty.stddev);

  const auto one = summarize(std::vector<double>{0.25});
  EXPECT_EQ(one.count, 1U);
  EXPECT_DOUBLE_EQ(*one.mean, 0.25);
  EXPECT_DOUBLE_EQ(*one.median, 0.25);
  EXPECT_DOUBLE_EQ(*one.p90, 0.25);
  EXPECT_DOUBLE_EQ(*one.p99, 0.25);
  EXPECT_DOUBLE_EQ(*one.min, 0.25);
  EXPECT_DOUBLE_EQ(*one.max, 0.25);
  EXPECT_FALSE(one.stddev);  // one value has no spread to estimate, which is not a spread of 0

  const auto two = summarize(std::vector<double>{1, 3});
  EXPECT_NEAR(*two.stddev, std::sqrt(2.0), k_eps);
}

TEST(Summarize, NonFiniteValuesAreLeftOutAndCounted) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  const auto s = summarize(std::vector<double>{nan, 3, inf, 1, -inf});
  EXPECT_EQ(s.count, 2U);
  EXPECT_EQ(s.left_out, 3U);
  EXPECT_DOUBLE_EQ(*s.mean, 2.0);
  EXPECT_DOUBLE_EQ(*s.max, 3.0);
  const auto only_nan = summarize(std::vector<double>{nan});
  EXPECT_EQ(only_nan.count, 0U);
  EXPECT_EQ(only_nan.left_out, 1U);
  EXPECT_FALSE(only_nan.mean);
}

TEST(RequestFigures, TtftItlTpotAndRatesOfAStream) {
  // Sent at 0; chunks at 100, 150, 200 and 300 ms; the final line at 310 ms; one token per chunk.
  StreamTimes t;
  t.chunks = {100ms, 150ms, 200ms, 300ms};
  t.end = 310ms;
  const auto f = figures(t);
  EXPECT_EQ(f.output_tokens, 4U);
  EXPECT_FALSE(f.tokens_from_server);
  EXPECT_NEAR(*f.ttft_s, 0.100, k_eps);
  ASSERT_EQ(f.itl_s.size(), 3U);
  EXPECT_NEAR(f.itl_s[0], 0.050, k_eps);
  EXPECT_NEAR(f.itl_s[1], 0.050, k_eps);
  EXPECT_NEAR(f.itl_s[2], 0.100, k_eps);
  EXPECT_NEAR(*f.e2e_s, 0.310, k_eps);
  EXPECT_NEAR(*f.tpot_s, 0.070, k_eps);                   // (0.310 − 0.100) / (4 − 1)
  EXPECT_NEAR(*f.output_tokens_per_s, 4.0 / 0.31, 1e-9);  // 12.90…
  EXPECT_NEAR(*f.decode_tokens_per_s, 3.0 / 0.21, 1e-9);  // 14.28…, = 1 / tpot
}

TEST(RequestFigures, TheServersTokenCountWinsOverTheChunks) {
  // An OpenAI-compatible server that sends two tokens per chunk: usage says 8.
  StreamTimes t;
  t.chunks = {200ms, 300ms, 400ms, 500ms};
  t.end = 500ms;
  t.output_tokens = 8;
  const auto f = figures(t);
  EXPECT_EQ(f.output_tokens, 8U);
  EXPECT_TRUE(f.tokens_from_server);
  EXPECT_NEAR(*f.tpot_s, 0.3 / 7.0, k_eps);
  EXPECT_NEAR(*f.output_tokens_per_s, 16.0, 1e-9);
  EXPECT_EQ(f.itl_s.size(), 3U);  // ITL stays the gaps between chunks
}

TEST(RequestFigures, WithoutAnEndTheLastChunkEndsTheRequest) {
  StreamTimes t;
  t.chunks = {1s, 1500ms};
  const auto f = figures(t);
  EXPECT_NEAR(*f.e2e_s, 1.5, k_eps);
  EXPECT_NEAR(*f.tpot_s, 0.5, k_eps);
  EXPECT_NEAR(*f.decode_tokens_per_s, 2.0, k_eps);
}

TEST(RequestFigures, ShortStreamsLeaveWhatTheyCannotTellUnknown) {
  StreamTimes none;
  none.end = 50ms;  // the server answered done without a token
  const auto f0 = figures(none);
  EXPECT_FALSE(f0.ttft_s);
  EXPECT_TRUE(f0.itl_s.empty());
  EXPECT_FALSE(f0.tpot_s);
  EXPECT_FALSE(f0.decode_tokens_per_s);
  EXPECT_NEAR(*f0.e2e_s, 0.05, k_eps);
  EXPECT_EQ(f0.output_tokens, 0U);
  EXPECT_DOUBLE_EQ(*f0.output_tokens_per_s, 0.0);  // measured: no tokens in 50 ms

  StreamTimes one;
  one.chunks = {80ms};
  one.end = 90ms;
  const auto f1 = figures(one);
  EXPECT_NEAR(*f1.ttft_s, 0.08, k_eps);
  EXPECT_TRUE(f1.itl_s.empty());
  EXPECT_FALSE(f1.tpot_s);  // one token has no time per output token after the first
  EXPECT_FALSE(f1.decode_tokens_per_s);

  const auto nothing = figures(StreamTimes{});
  EXPECT_FALSE(nothing.e2e_s);
  EXPECT_FALSE(nothing.output_tokens_per_s);

  StreamTimes burst;  // every token at once, at the end
  burst.chunks = {100ms, 100ms};
  const auto fb = figures(burst);
  EXPECT_DOUBLE_EQ(*fb.tpot_s, 0.0);
  EXPECT_FALSE(fb.decode_tokens_per_s);  // not infinite
  EXPECT_DOUBLE_EQ(fb.itl_s.at(0), 0.0);
}

TEST(RequestFigures, TimesOutOfOrderAreErrorsNamingTheRequest) {
  StreamTimes back;
  back.chunks = {100ms, 90ms};
  auto r = request_figures(back, "POST /api/generate #3");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().line(), "POST /api/generate #3: chunk 2 arrived before chunk 1 (90000000 ns < 100000000 ns)");

  StreamTimes negative;
  negative.chunks = {-1ms};
  r = request_figures(negative, "req");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("before the request was sent"), std::string::npos) << r.error().line();

  StreamTimes early_end;
  early_end.chunks = {100ms};
  early_end.end = 50ms;
  r = request_figures(early_end, "req");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("ended before its last chunk"), std::string::npos) << r.error().line();
}

TEST(RunThroughput, CompletedRequestsAndTheirTokensOverTheWallClockWindow) {
  // Concurrency 2: [0, 1 s] 10 tokens, [0.5 s, 2 s] 20 tokens, and [1 s, 1.5 s] failed.
  const std::vector<RunRequest> run{
      {0ms, 1000ms, 10, true},
      {500ms, 2000ms, 20, true},
      {1000ms, 1500ms, 5, false},
  };
  auto r = run_throughput(run, "bench llama3 c=2");
  ASSERT_TRUE(r) << r.error().line();
  EXPECT_EQ(r->completed, 2U);
  EXPECT_EQ(r->failed, 1U);
  EXPECT_EQ(r->output_tokens, 30U);
  EXPECT_DOUBLE_EQ(*r->window_s, 2.0);
  EXPECT_DOUBLE_EQ(*r->requests_per_s, 1.0);
  EXPECT_DOUBLE_EQ(*r->output_tokens_per_s, 15.0);

  // The window starts at the first request sent, not at 0.
  const std::vector<RunRequest> later{{3s, 4s, 100, true}, {3500ms, 5s, 100, true}};
  r = run_throughput(later, "run");
  ASSERT_TRUE(r);
  EXPECT_DOUBLE_EQ(*r->window_s, 2.0);
  EXPECT_DOUBLE_EQ(*r->output_tokens_per_s, 100.0);
}

TEST(RunThroughput, NoRequestsOrNoTimeGiveNoRates) {
  auto r = run_throughput(std::vector<RunRequest>{}, "run");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->completed, 0U);
  EXPECT_FALSE(r->window_s);
  EXPECT_FALSE(r->requests_per_s);
  EXPECT_FALSE(r->output_tokens_per_s);

  r = run_throughput(std::vector<RunRequest>{{1s, 1s, 3, true}}, "run");
  ASSERT_TRUE(r);
  EXPECT_DOUBLE_EQ(*r->window_s, 0.0);
  EXPECT_FALSE(r->requests_per_s);

  r = run_throughput(std::vector<RunRequest>{{2s, 1s, 3, true}}, "bench x c=1");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().line(), "bench x c=1: request 1 ends before it starts (1000000000 ns < 2000000000 ns)");
}
