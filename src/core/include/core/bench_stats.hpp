// The figures of a benchmark (memwarden bench, issue 15), as LLM serving benchmarks define them (vLLM's
// `bench serve`, GuideLLM, genai-perf): the summary of a sample (median, p90, p99, standard deviation) and
// the per-request figures of a streamed generation from when its chunks arrived. Pure: the caller reads the
// clock and passes the times in; nothing here measures anything.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace mw {

// The summary of a sample. Every figure is nullopt where the sample cannot give it (an empty sample has no
// mean; one value has no standard deviation): a missing figure is never shown as 0.
struct SampleSummary {
  std::size_t count = 0;     // the finite values summarized
  std::size_t left_out = 0;  // values that were not finite (NaN, ±inf): not part of any figure
  std::optional<double> mean;
  std::optional<double> median;  // = p50
  std::optional<double> p90;
  std::optional<double> p99;
  std::optional<double> min;
  std::optional<double> max;
  std::optional<double> stddev;  // the sample standard deviation (divides by count − 1): two values at least
};

// The q-th percentile (0 ≤ q ≤ 100) of values sorted in ascending order, by linear interpolation between
// the closest ranks, as numpy.percentile's default ("linear", Hyndman–Fan type 7): the rank is
// (n − 1)·q/100, and a fractional rank lies on the straight line between the two values around it. So p50
// of {1, 2, 3, 4} is 2.5, p90 of {1..10} is 9.1. nullopt for an empty sample or a q outside 0..100 (or NaN).
// The values must be sorted and finite (summarize() takes care of both).
[[nodiscard]] std::optional<double> percentile_of_sorted(std::span<const double> sorted, double q);

// Count, mean, median, p90, p99, min, max and sample standard deviation of `values` (in any order).
[[nodiscard]] SampleSummary summarize(std::span<const double> values);

// When the pieces of one streamed answer arrived, each measured on the caller's monotonic clock from the
// moment the request was sent (so every time is ≥ 0).
struct StreamTimes {
  // When each content chunk (a non-empty piece of text; one token on Ollama) arrived, in order.
  std::vector<std::chrono::nanoseconds> chunks;
  // When the stream ended (the final line, "[DONE]" or the connection's end); the last chunk when absent.
  std::optional<std::chrono::nanoseconds> end;
  // The server's count of output tokens (Ollama's eval_count, OpenAI's usage.completion_tokens); the number
  // of chunks when absent (an OpenAI-compatible server may put several tokens in one chunk).
  std::optional<std::uint64_t> output_tokens;
};

// The figures of one request, in seconds (and tokens per second); nullopt where the stream cannot give
// them. The definitions are vLLM's (benchmarks/serve.py) and LLMPerf's:
struct RequestFigures {
  std::optional<double> ttft_s;  // time to first token: send → first content chunk
  std::vector<double> itl_s;     // inter-token latencies: the gaps between successive chunks
  std::optional<double> e2e_s;   // end-to-end latency: send → end of the stream
  std::optional<double> tpot_s;  // time per output token: (e2e − ttft) / (tokens − 1); 2 tokens at least
  std::optional<double> output_tokens_per_s;  // tokens / e2e, the whole request (LLMPerf's); nullopt if e2e = 0
  // (tokens − 1) / (e2e − ttft) = 1 / tpot: the generation rate after the first token, which Ollama's
  // eval_count / eval_duration measures on the server; nullopt when every token came at once (e2e = ttft).
  std::optional<double> decode_tokens_per_s;
  std::uint64_t output_tokens = 0;  // the count the figures use (the server's, else the chunks)
  bool tokens_from_server = false;  // output_tokens is the server's count, not the chunks'
};

// The figures of one request. Errors, naming `source` (the request): a negative time, chunks out of order,
// an end before the last chunk.
[[nodiscard]] Result<RequestFigures> request_figures(const StreamTimes& times, std::string_view source);

// One request of a run, on a clock shared by the run (e.g. from the run's start).
struct RunRequest {
  std::chrono::nanoseconds start{0};  // sent
  std::chrono::nanoseconds end{0};    // its stream ended (or it failed)
  std::uint64_t output_tokens = 0;    // RequestFigures::output_tokens; not counted for a failed request
  bool ok = true;                     // completed without an error
};

// The throughput of a run of several requests (one concurrency level), over its wall-clock window: from
// the first request sent to the last one ended, failed ones included (the time they took is the run's).
struct RunThroughput {
  std::size_t completed = 0;
  std::size_t failed = 0;
  std::uint64_t output_tokens = 0;            // of the completed requests
  std::optional<double> window_s;             // nullopt without requests
  std::optional<double> requests_per_s;       // completed / window; nullopt when the window is 0 or unknown
  std::optional<double> output_tokens_per_s;  // output_tokens / window; the same
};

// Errors, naming `source`: a request that ends before it starts.
[[nodiscard]] Result<RunThroughput> run_throughput(std::span<const RunRequest> requests, std::string_view source);

}  // namespace mw
