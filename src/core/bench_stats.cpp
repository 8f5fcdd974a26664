#include "core/bench_stats.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string>

namespace mw {

namespace {

double seconds(std::chrono::nanoseconds d) {
  return std::chrono::duration<double>(d).count();
}

std::string ns_text(std::chrono::nanoseconds d) {
  return fmt::format("{} ns", d.count());
}

}  // namespace

std::optional<double> percentile_of_sorted(std::span<const double> sorted, double q) {
  if (sorted.empty() || !(q >= 0.0 && q <= 100.0)) {
    return std::nullopt;
  }
  const double rank = static_cast<double>(sorted.size() - 1) * q / 100.0;
  const double below = std::floor(rank);
  const auto lo = static_cast<std::size_t>(below);
  const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
  const double fraction = rank - below;
  // a + (b − a)·f, written so that equal neighbours give exactly their value.
  return sorted[lo] + (sorted[hi] - sorted[lo]) * fraction;
}

SampleSummary summarize(std::span<const double> values) {
  SampleSummary s;
  std::vector<double> sorted;
  sorted.reserve(values.size());
  for (const double v : values) {
    if (std::isfinite(v)) {
      sorted.push_back(v);
    } else {
      ++s.left_out;
    }
  }
  s.count = sorted.size();
  if (sorted.empty()) {
    return s;
  }
  std::sort(sorted.begin(), sorted.end());
  const auto n = static_cast<double>(sorted.size());
  // Two passes (the mean, then the squared deviations from it): exact enough for a benchmark's samples.
  double sum = 0.0;
  for (const double v : sorted) {
    sum += v;
  }
  const double mean = sum / n;
  s.mean = mean;
  s.min = sorted.front();
  s.max = sorted.back();
  s.median = percentile_of_sorted(sorted, 50.0);
  s.p90 = percentile_of_sorted(sorted, 90.0);
  s.p99 = percentile_of_sorted(sorted, 99.0);
  if (sorted.size() >= 2) {
    double squares = 0.0;
    for (const double v : sorted) {
      squares += (v - mean) * (v - mean);
    }
    s.stddev = std::sqrt(squares / (n - 1.0));
  }
  return s;
}

Result<RequestFigures> request_figures(const StreamTimes& times, std::string_view source) {
  const std::string src(source);
  std::chrono::nanoseconds previous{0};
  for (std::size_t i = 0; i < times.chunks.size(); ++i) {
    const auto t = times.chunks[i];
    if (t.count() < 0) {
      return fail(src, fmt::format("chunk {} arrived before the request was sent ({})", i + 1, ns_text(t)));
    }
    if (t < previous) {
      return fail(src,
                  fmt::format("chunk {} arrived before chunk {} ({} < {})", i + 1, i, ns_text(t), ns_text(previous)));
    }
    previous = t;
  }
  if (times.end) {
    if (times.end->count() < 0) {
      return fail(src, fmt::format("the stream ended before the request was sent ({})", ns_text(*times.end)));
    }
    if (*times.end < previous) {
      return fail(
          src, fmt::format("the stream ended before its last chunk ({} < {})", ns_text(*times.end), ns_text(previous)));
    }
  }

  RequestFigures f;
  f.tokens_from_server = times.output_tokens.has_value();
  f.output_tokens = times.output_tokens.value_or(times.chunks.size());
  if (!times.chunks.empty()) {
    f.ttft_s = seconds(times.chunks.front());
    f.itl_s.reserve(times.chunks.size() - 1);
    for (std::size_t i = 1; i < times.chunks.size(); ++i) {
      f.itl_s.push_back(seconds(times.chunks[i] - times.chunks[i - 1]));
    }
  }
  std::optional<std::chrono::nanoseconds> end = times.end;
  if (!end && !times.chunks.empty()) {
    end = times.chunks.back();
  }
  if (end) {
    f.e2e_s = seconds(*end);
    if (end->count() > 0) {
      f.output_tokens_per_s = static_cast<double>(f.output_tokens) / *f.e2e_s;
    }
  }
  if (f.ttft_s && f.e2e_s && f.output_tokens >= 2) {
    const double decode = *f.e2e_s - *f.ttft_s;
    f.tpot_s = decode / static_cast<double>(f.output_tokens - 1);
    if (decode > 0.0) {
      f.decode_tokens_per_s = static_cast<double>(f.output_tokens - 1) / decode;
    }
  }
  return f;
}

Result<RunThroughput> run_throughput(std::span<const RunRequest> requests, std::string_view source) {
  RunThroughput r;
  if (requests.empty()) {
    return r;
  }
  auto first = requests.front().start;
  auto last = requests.front().end;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const auto& q = requests[i];
    if (q.end < q.start) {
      return fail(std::string(source),
                  fmt::format("request {} ends before it starts ({} < {})", i + 1, ns_text(q.end), ns_text(q.start)));
    }
    first = std::min(first, q.start);
    last = std::max(last, q.end);
    if (q.ok) {
      ++r.completed;
      r.output_tokens += q.output_tokens;
    } else {
      ++r.failed;
    }
  }
  const double window = seconds(last - first);
  r.window_s = window;
  if (window > 0.0) {
    r.requests_per_s = static_cast<double>(r.completed) / window;
    r.output_tokens_per_s = static_cast<double>(r.output_tokens) / window;
  }
  return r;
}

}  // namespace mw
