// A benchmark run with every field of core/bench.hpp set (and some figures missing on purpose), for the tests of
// its JSON, its storage, the renderers and /metrics.
#pragma once

#include "core/bench.hpp"

namespace mw::test {

// Two models: "llama3.1:8b" measured at concurrency 1 and 4 on one GPU, "qwen2.5:7b" skipped; started
// 2026-12-05 11:13:20.250 UTC (1'796'469'200'250 ms).
inline BenchRun sample_bench_run() {
  BenchRun run;
  run.started_at_ms = 1'796'469'200'250;
  run.duration_s = 95.5;
  run.server = "ollama";
  run.url = "http://127.0.0.1:11434";
  run.settings.api = BenchApi::openai;
  run.settings.runs = 3;
  run.settings.warmup = 2;
  run.settings.prompt_tokens = 512;
  run.settings.max_tokens = 64;
  run.settings.concurrency = {1, 4};
  run.settings.num_ctx = 8192;
  run.settings.cooldown_s = 2.5;
  run.settings.seed = -7;
  run.settings.temperature_limit_c = 75;
  run.settings.gpu_utilisation_target_pct = 60;

  BenchModel m;
  m.model = "llama3.1:8b";
  m.status = BenchModelStatus::done;
  m.planned_ram = 1ULL << 30;
  m.planned_vram = 5'600'000'000ULL;
  m.load_s = 3.25;
  m.loaded_ram = 900'000'000;
  m.server_size = 6'000'000'000ULL;
  m.server_vram = 5'500'000'000ULL;
  m.processor = "100% GPU";
  m.unload = {UnloadVerdict::returned, 12'345'678};
  BenchSample ok;
  ok.concurrency = 1;
  ok.repetition = 0;
  ok.start_s = 10.125;
  ok.ok = true;
  ok.ttft_s = 0.1;
  ok.itl_mean_s = 0.02;
  ok.itl_p90_s = 0.025;
  ok.tpot_s = 0.021;
  ok.e2e_s = 1.4;
  ok.output_tokens_per_s = 64 / 1.4;
  ok.decode_tokens_per_s = 47.6;
  ok.output_tokens = 64;
  ok.prompt_tokens = 515;
  ok.load_s = 0.001;
  ok.prompt_eval_s = 0.09;
  ok.eval_s = 1.3;
  ok.eval_count = 64;
  ok.total_s = 1.39;
  m.samples.push_back(ok);
  BenchSample failed;
  failed.concurrency = 4;
  failed.repetition = 3;
  failed.start_s = 20;
  failed.ok = false;
  failed.error = "POST http://127.0.0.1:11434/v1/chat/completions: connection reset";
  failed.output_tokens = 2;
  m.samples.push_back(failed);

  BenchLevel one;
  one.concurrency = 1;
  one.ttft_s = {3, 0, 0.11, 0.1, 0.118, 0.1198, 0.09, 0.12, 0.01};
  one.itl_s = {189, 1, 0.02, 0.02, 0.025, 0.03, 0.015, 0.031, 0.003};
  one.tpot_s.count = 3;
  one.tpot_s.median = 0.021;
  one.e2e_s = {3, 0, 1.4, 1.4, 1.44, 1.449, 1.35, 1.45, 0.05};
  one.output_tokens_per_s.count = 3;
  one.output_tokens_per_s.median = 45.7;
  one.throughput = {3, 0, 192, 4.2, 3 / 4.2, 192 / 4.2};
  m.levels.push_back(one);
  BenchLevel four;
  four.concurrency = 4;
  four.ttft_s = {11, 0, 0.3, 0.25, 0.5, 0.59, 0.2, 0.6, 0.1};
  four.e2e_s = {11, 0, 2.0, 1.9, 2.5, 2.9, 1.5, 3.0, 0.4};
  four.throughput = {11, 1, 704, 6.0, 11 / 6.0, 704 / 6.0};
  four.interrupted = true;
  m.levels.push_back(four);
  m.verdicts = {{"temperature", VerdictOutcome::pass, "sustained 61 °C (median while generating), peak 66 °C"},
                {"gpu utilisation", VerdictOutcome::fail, "median 40% while generating; target 60%"},
                {"VRAM", VerdictOutcome::pass, "in the band"},
                {"RAM", VerdictOutcome::unknown, "not measured"},
                {"memory returned", VerdictOutcome::pass, "12 MiB stayed"}};
  run.models.push_back(m);

  BenchModel skipped;
  skipped.model = "qwen2.5:7b";
  skipped.status = BenchModelStatus::skipped;
  skipped.reason = "does not fit: 9.1 GiB planned, 4.0 GiB free";
  skipped.unload_error = "not loaded";
  run.models.push_back(skipped);

  BenchPoint p0;
  p0.t_s = 0;
  p0.anon = 100'000'000;
  p0.working_set = 150'000'000;
  p0.mem_available = 30'000'000'000ULL;
  p0.swap_in_pages = 0;
  BenchGpuPoint g;
  g.index = 0;
  g.vram_used = 1'000'000'000;
  g.utilisation_pct = 0;
  g.temperature_c = 40;
  g.power_w = 61.5;
  g.throttle_reasons = 4;
  p0.gpus.push_back(g);
  run.timeline.push_back(p0);
  BenchPoint p1;
  p1.t_s = 1;  // NVML silent: every figure unknown
  p1.gpus.push_back(BenchGpuPoint{1, std::nullopt, std::nullopt, std::nullopt, std::nullopt, std::nullopt});
  run.timeline.push_back(p1);

  run.marks = {
      {"llama3.1:8b", BenchPhase::load, 0, 1.0, 4.25},    {"llama3.1:8b", BenchPhase::warmup, 0, 4.25, 6.0},
      {"llama3.1:8b", BenchPhase::level, 1, 10.0, 14.2},  {"llama3.1:8b", BenchPhase::level, 4, 20.0, 26.0},
      {"llama3.1:8b", BenchPhase::unload, 0, 26.0, 28.0}, {"llama3.1:8b", BenchPhase::cooldown, 0, 28.0, 30.5}};
  run.notes = {"no swap-in figures: /proc/vmstat unreadable"};
  run.interrupted = true;
  return run;
}

}  // namespace mw::test
