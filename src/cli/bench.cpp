#include "cli/bench.hpp"

#include <fmt/format.h>

#include "core/bytes.hpp"

namespace mw::cli {

namespace {

std::string figure(const std::optional<double>& v, double scale = 1.0, const char* spec = "{:.2f}") {
  return v ? fmt::format(fmt::runtime(spec), *v * scale) : std::string("–");
}

std::string bytes(const std::optional<std::uint64_t>& v) {
  return v ? format_bytes(*v) : std::string("–");
}

std::string levels_text(const std::vector<std::size_t>& levels) {
  std::string text;
  for (const auto l : levels) {
    text += (text.empty() ? "" : ",") + std::to_string(l);
  }
  return text;
}

}  // namespace

std::string render_bench_run(const BenchRun& run) {
  const auto& s = run.settings;
  std::string text = fmt::format(
      "bench on {} ({}), {} API: {} counted request(s) per client and level, {} warm-up, about {} prompt tokens, {} "
      "output tokens, concurrency {}{}\n",
      run.server, run.url, to_string(s.api), s.runs, s.warmup, s.prompt_tokens, s.max_tokens,
      levels_text(s.concurrency), s.num_ctx ? fmt::format(", context {}", *s.num_ctx) : std::string());
  if (run.interrupted) {
    text += "INTERRUPTED (Ctrl-C): partial results, marked below\n";
  }
  for (const auto& m : run.models) {
    text += fmt::format("\n{}: {}{}\n", m.model, to_string(m.status), m.reason.empty() ? "" : " — " + m.reason);
    if (m.status == BenchModelStatus::skipped) {
      continue;
    }
    text += fmt::format(
        "  load {} s (cold, apart from any request); RAM {} measured, {} planned; VRAM {} (server), {} "
        "planned{}\n",
        figure(m.load_s), bytes(m.loaded_ram), bytes(m.planned_ram), bytes(m.server_vram), bytes(m.planned_vram),
        m.processor.empty() ? "" : "; " + m.processor);
    if (!m.levels.empty()) {
      text += fmt::format("  {:>4} {:>5} {:>5}  {:>22}  {:>8}  {:>8}  {:>15}  {:>9}  {:>6}  {:>7}\n", "conc", "reqs",
                          "fail", "TTFT p50/p90/p99 s", "ITL ms", "TPOT ms", "e2e p50/p99 s", "tok/s/req", "req/s",
                          "tok/s");
    }
    for (const auto& l : m.levels) {
      const auto& t = l.throughput;
      text += fmt::format("  {:>4} {:>5} {:>5}  {:>22}  {:>8}  {:>8}  {:>15}  {:>9}  {:>6}  {:>7}{}\n", l.concurrency,
                          t.completed + t.failed, t.failed,
                          fmt::format("{}/{}/{}", figure(l.ttft_s.median), figure(l.ttft_s.p90), figure(l.ttft_s.p99)),
                          figure(l.itl_s.median, 1000.0, "{:.1f}"), figure(l.tpot_s.median, 1000.0, "{:.1f}"),
                          fmt::format("{}/{}", figure(l.e2e_s.median), figure(l.e2e_s.p99)),
                          figure(l.output_tokens_per_s.median, 1.0, "{:.1f}"), figure(t.requests_per_s, 1.0, "{:.2f}"),
                          figure(t.output_tokens_per_s, 1.0, "{:.1f}"), l.interrupted ? "  (interrupted)" : "");
      if (l.server_tokens_per_s.median) {
        text += fmt::format("       server's own rate (eval_count/eval_duration) p50: {:.1f} tok/s\n",
                            *l.server_tokens_per_s.median);
      }
    }
    std::size_t shown = 0;
    for (const auto& sample : m.samples) {
      if (!sample.ok && shown < 3) {
        text += fmt::format("  request {} at c={} failed: {}\n", sample.repetition, sample.concurrency, sample.error);
        ++shown;
      }
    }
    if (m.unload_error) {
      text += fmt::format("  unload: {}\n", *m.unload_error);
    }
    for (const auto& v : m.verdicts) {
      text += fmt::format("  {:<8} {}: {}\n", to_string(v.outcome), v.criterion, v.detail);
    }
  }
  for (const auto& note : run.notes) {
    text += fmt::format("note: {}\n", note);
  }
  text += fmt::format("took {:.1f} s; {} point(s) of memory and GPU timeline\n", run.duration_s, run.timeline.size());
  return text;
}

std::string bench_progress_line(const engine::BenchProgress& p) {
  std::string where = fmt::format("[{}/{}] {}", p.model_index + 1, p.models, p.model);
  switch (p.phase) {
    case BenchPhase::load:
      return where + ": loading";
    case BenchPhase::unload:
      return where + ": unloading, checking the memory comes back";
    case BenchPhase::cooldown:
      return where + ": cooling down before it";
    case BenchPhase::warmup:
      where += ": warm-up";
      break;
    case BenchPhase::level:
      where += fmt::format(" c={}", p.concurrency);
      break;
  }
  where += fmt::format(": {}/{} requests", p.done, p.total);
  if (p.failed > 0) {
    where += fmt::format(", {} failed", p.failed);
  }
  if (p.last_tokens_per_s) {
    where += fmt::format(", {:.1f} tok/s", *p.last_tokens_per_s);
  }
  return where;
}

}  // namespace mw::cli
