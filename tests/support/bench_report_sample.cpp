// Writes the HTML report of a representative, made-up bench run for the browser test (tests/CMakeLists.txt,
// browser.bench_html, with tests/browser/check-bench-html.sh):
//   mw-bench-report-sample REPORT.html [REPORT.csv]
// Two models, concurrency 1 and 2, a 60 s timeline at 1 Hz: the container's anon rises at each load and falls at
// each unload, the working set misses one point (a gap in its line), one GPU whose temperature passes the 70 °C
// limit during the second model; the phases marked; levels summarized and verdicts judged by core's own functions.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "cli/bench_report.hpp"
#include "core/bench.hpp"
#include "core/bytes.hpp"

namespace {

using namespace mw;

struct Plan {
  const char* name;
  double load_start;  // the model's phases follow each other from here: load 4 s, warm-up 2, levels 8 each,
                      // unload 3, cool-down 3
  std::uint64_t ram;
  std::uint64_t vram;
  double tpot;     // seconds per token at concurrency 1
  unsigned hot_c;  // the temperature its levels reach
};

constexpr Plan k_plans[] = {
    {"llama3.2:3b", 2, 2200 * k_mib, 2600 * k_mib, 0.012, 66},
    {"qwen2.5:7b-instruct-q4_K_M", 30, 4800 * k_mib, 5200 * k_mib, 0.025, 79},
};

std::vector<BenchMark> marks_of(const Plan& p) {
  const std::string m = p.name;
  const double t = p.load_start;
  return {{m, BenchPhase::load, 0, t, t + 4},         {m, BenchPhase::warmup, 0, t + 4, t + 6},
          {m, BenchPhase::level, 1, t + 6, t + 14},   {m, BenchPhase::level, 2, t + 14, t + 22},
          {m, BenchPhase::unload, 0, t + 22, t + 25}, {m, BenchPhase::cooldown, 0, t + 25, t + 28}};
}

// How far into its load (0..1) and whether it is generating, for model p at time t.
double loaded_fraction(const Plan& p, double t) {
  if (t < p.load_start || t >= p.load_start + 23) {
    return 0;
  }
  return std::min(1.0, (t - p.load_start) / 3.0);
}

bool generating(const Plan& p, double t) {
  return t >= p.load_start + 4 && t < p.load_start + 22;
}

BenchModel model_of(const Plan& p, const BenchSettings& settings, std::vector<std::vector<double>>& gaps) {
  BenchModel m;
  m.model = p.name;
  m.planned_ram = p.ram + 300 * k_mib;
  m.planned_vram = p.vram;
  m.load_s = 3.1;
  m.loaded_ram = p.ram;
  m.server_size = p.vram + 200 * k_mib;
  m.server_vram = p.vram;
  m.processor = "100% GPU";
  m.unload = {.verdict = UnloadVerdict::returned, .kept = 12 * k_mib};
  for (const std::size_t c : settings.concurrency) {
    const double level_start = p.load_start + (c == 1 ? 6 : 14);
    for (std::size_t r = 0; r < settings.runs * c; ++r) {
      BenchSample s;
      s.concurrency = c;
      s.repetition = r;
      s.start_s = level_start + static_cast<double>(r / c) * 2.5;
      const double jitter = 1.0 + 0.04 * static_cast<double>(r % 3);
      const double tpot = p.tpot * static_cast<double>(c) * jitter;
      if (c == 2 && r == 4 && p.load_start > 10) {
        s.error = "HTTP 500 from /api/generate: <html>llama runner process has terminated</html>";
        s.e2e_s = 0.4;
        gaps.emplace_back();
        m.samples.push_back(s);
        continue;
      }
      s.ok = true;
      s.ttft_s = 0.06 * static_cast<double>(c) * jitter + 0.01 * static_cast<double>(r);
      s.output_tokens = settings.max_tokens;
      s.tpot_s = tpot;
      s.e2e_s = *s.ttft_s + tpot * static_cast<double>(settings.max_tokens - 1);
      s.itl_mean_s = tpot;
      s.itl_p90_s = tpot * 1.1;
      s.output_tokens_per_s = static_cast<double>(settings.max_tokens) / *s.e2e_s;
      s.decode_tokens_per_s = 1.0 / tpot;
      s.prompt_tokens = static_cast<std::int64_t>(settings.prompt_tokens);
      s.eval_count = static_cast<std::int64_t>(settings.max_tokens);
      s.eval_s = tpot * static_cast<double>(settings.max_tokens) * 0.97;
      s.prompt_eval_s = 0.04;
      s.load_s = 0.0;
      m.samples.push_back(s);
      gaps.emplace_back(settings.max_tokens - 1, tpot);
    }
  }
  for (const std::size_t c : settings.concurrency) {
    m.levels.push_back(summarize_level(c, m.samples, gaps));
  }
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: %s REPORT.html [REPORT.csv]\n", argv[0]);
    return 2;
  }
  BenchRun run;
  run.id = 7;
  run.started_at_ms = 1764930000000;  // 2025-12-05T10:20:00Z
  run.duration_s = 60;
  run.server = "ollama";
  run.url = "http://127.0.0.1:11434";
  run.settings.runs = 3;
  run.settings.concurrency = {1, 2};
  run.settings.num_ctx = 4096;
  run.notes = {"GPU power is not shown: the report draws VRAM and temperature only."};

  for (int i = 0; i < 60; ++i) {
    const double t = static_cast<double>(i);
    BenchPoint point;
    point.t_s = t;
    double anon = 300.0 * static_cast<double>(k_mib);
    double vram = 500.0 * static_cast<double>(k_mib);
    double temperature = 42;
    bool busy = false;
    for (const auto& p : k_plans) {
      anon += loaded_fraction(p, t) * static_cast<double>(p.ram);
      vram += loaded_fraction(p, t) * static_cast<double>(p.vram);
      if (generating(p, t)) {
        busy = true;
        temperature = std::min(static_cast<double>(p.hot_c), 48 + (t - p.load_start - 4) * 2.5);
      }
    }
    point.anon = static_cast<std::uint64_t>(anon);
    if (i != 40) {  // one point docker stats did not answer: a gap in the line
      point.working_set = static_cast<std::uint64_t>(anon) + 400 * k_mib;
    }
    point.mem_available = 30 * k_gib - static_cast<std::uint64_t>(anon);
    BenchGpuPoint gpu;
    gpu.index = 0;
    gpu.vram_used = static_cast<std::uint64_t>(vram);
    gpu.utilisation_pct = busy ? 92U : 0U;
    gpu.temperature_c = static_cast<unsigned>(std::lround(temperature));
    gpu.power_w = busy ? 240.0 : 35.0;
    gpu.throttle_reasons = 0;
    point.gpus.push_back(gpu);
    add_point(run.timeline, std::move(point));
  }
  for (const auto& p : k_plans) {
    const auto marks = marks_of(p);
    run.marks.insert(run.marks.end(), marks.begin(), marks.end());
  }
  for (const auto& p : k_plans) {
    std::vector<std::vector<double>> gaps;
    auto m = model_of(p, run.settings, gaps);
    m.verdicts = judge_model(m, run.timeline, run.marks, run.settings);
    run.models.push_back(std::move(m));
  }

  std::ofstream html(argv[1], std::ios::binary);
  html << cli::bench_html(run);
  if (!html.flush()) {
    std::fprintf(stderr, "%s: cannot write the report\n", argv[1]);
    return 1;
  }
  if (argc == 3) {
    std::ofstream csv(argv[2], std::ios::binary);
    csv << cli::bench_csv(run);
    if (!csv.flush()) {
      std::fprintf(stderr, "%s: cannot write the CSV\n", argv[2]);
      return 1;
    }
  }
  return 0;
}
