#include "core/bench.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>

#include "core/bytes.hpp"

namespace mw {

namespace {

std::optional<double> median_of(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return percentile_of_sorted(values, 50.0);
}

bool inside(double t, const BenchMark& mark) {
  return t >= mark.start_s && t <= mark.end_s;
}

std::string pct(double v) {
  return fmt::format("{:.0f}%", v);
}

}  // namespace

const char* to_string(BenchApi api) {
  return api == BenchApi::ollama ? "ollama" : "openai";
}

const char* to_string(BenchPhase phase) {
  switch (phase) {
    case BenchPhase::load:
      return "load";
    case BenchPhase::warmup:
      return "warmup";
    case BenchPhase::level:
      return "level";
    case BenchPhase::unload:
      return "unload";
    case BenchPhase::cooldown:
      return "cooldown";
  }
  return "level";
}

const char* to_string(VerdictOutcome outcome) {
  switch (outcome) {
    case VerdictOutcome::pass:
      return "pass";
    case VerdictOutcome::fail:
      return "fail";
    case VerdictOutcome::unknown:
      return "unknown";
  }
  return "unknown";
}

const char* to_string(BenchCause cause) {
  switch (cause) {
    case BenchCause::none:
      return "none";
    case BenchCause::not_installed:
      return "not_installed";
    case BenchCause::no_room:
      return "no_room";
    case BenchCause::lack_of_memory:
      return "lack_of_memory";
    case BenchCause::in_use:
      return "in_use";
    case BenchCause::failed:
      return "failed";
  }
  return "none";
}

const char* to_string(BenchModelStatus status) {
  switch (status) {
    case BenchModelStatus::done:
      return "done";
    case BenchModelStatus::skipped:
      return "skipped";
    case BenchModelStatus::failed:
      return "failed";
    case BenchModelStatus::interrupted:
      return "interrupted";
  }
  return "done";
}

Result<std::vector<std::size_t>> parse_concurrency(std::string_view text, std::string_view source) {
  std::vector<std::size_t> levels;
  std::size_t begin = 0;
  for (;;) {
    const auto comma = text.find(',', begin);
    const auto item = text.substr(begin, comma == std::string_view::npos ? std::string_view::npos : comma - begin);
    std::size_t value = 0;
    const auto* end = item.data() + item.size();
    const auto [ptr, ec] = std::from_chars(item.data(), end, value);
    if (item.empty() || ec != std::errc{} || ptr != end || value == 0 || value > k_max_bench_concurrency) {
      return unexpected(Error{
          std::string(source),
          fmt::format("'{}' is not a number of concurrent requests from 1 to {}", item, k_max_bench_concurrency)});
    }
    if (std::find(levels.begin(), levels.end(), value) != levels.end()) {
      return unexpected(Error{std::string(source), fmt::format("{} is given twice", value)});
    }
    levels.push_back(value);
    if (levels.size() > k_max_bench_levels) {
      return unexpected(Error{std::string(source), fmt::format("at most {} levels", k_max_bench_levels)});
    }
    if (comma == std::string_view::npos) {
      break;
    }
    begin = comma + 1;
  }
  return levels;
}

Expected<void, Error> check_settings(const BenchSettings& s) {
  const auto bad = [](std::string_view option, std::string message) {
    return unexpected(Error{std::string(option), std::move(message)});
  };
  if (s.runs < 1 || s.runs > k_max_bench_runs) {
    return bad("--runs", fmt::format("{} is not from 1 to {}", s.runs, k_max_bench_runs));
  }
  if (s.warmup > 100) {
    return bad("--warmup", fmt::format("{} is not from 0 to 100", s.warmup));
  }
  if (s.prompt_tokens < 1 || s.prompt_tokens > 32768) {
    return bad("--prompt-tokens", fmt::format("{} is not from 1 to 32768", s.prompt_tokens));
  }
  if (s.max_tokens < 1 || s.max_tokens > 32768) {
    return bad("--max-tokens", fmt::format("{} is not from 1 to 32768", s.max_tokens));
  }
  if (s.concurrency.empty() || s.concurrency.size() > k_max_bench_levels) {
    return bad("--concurrency", fmt::format("give 1 to {} levels", k_max_bench_levels));
  }
  for (const auto c : s.concurrency) {
    if (c < 1 || c > k_max_bench_concurrency) {
      return bad("--concurrency", fmt::format("{} is not from 1 to {}", c, k_max_bench_concurrency));
    }
  }
  if (!(s.cooldown_s >= 0 && s.cooldown_s <= 3600)) {
    return bad("--cooldown", "not from 0 to 1h");
  }
  if (s.num_ctx && (*s.num_ctx < 1 || *s.num_ctx > (1ULL << 24))) {
    return bad("--ctx", fmt::format("{} is not from 1 to {}", *s.num_ctx, 1ULL << 24));
  }
  return {};
}

std::string bench_prompt(std::size_t index, std::size_t tokens) {
  // Plain words the llama tokenizers keep whole: about 1.3 tokens per word with the spaces; the server counts.
  static constexpr std::array<std::string_view, 32> k_words{
      "memory", "river",  "stone",  "window", "garden", "light",  "paper",  "orange", "silver", "market", "winter",
      "forest", "engine", "letter", "bridge", "candle", "planet", "summer", "castle", "number", "yellow", "doctor",
      "island", "pocket", "rocket", "spring", "thread", "valley", "wonder", "basket", "copper", "meadow"};
  std::string prompt = fmt::format("{}:", index);
  const auto words = std::max<std::size_t>(1, tokens * 10 / 13);
  // A different walk through the words per index, so prompts differ all along, not only at the start.
  std::size_t state = index * 2654435761U + 1;
  for (std::size_t i = 0; i < words; ++i) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    prompt += ' ';
    prompt += k_words[(state >> 33) % k_words.size()];
  }
  return prompt;
}

std::optional<double> BenchSample::server_tokens_per_s() const {
  if (!eval_count || !eval_s || *eval_s <= 0) {
    return std::nullopt;
  }
  return static_cast<double>(*eval_count) / *eval_s;
}

BenchLevel summarize_level(std::size_t concurrency, std::span<const BenchSample> samples,
                           std::span<const std::vector<double>> itl_gaps) {
  BenchLevel level;
  level.concurrency = concurrency;
  std::vector<double> ttft, itl, tpot, e2e, tps, server_tps;
  std::vector<RunRequest> requests;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const auto& s = samples[i];
    if (s.concurrency != concurrency) {
      continue;
    }
    RunRequest r;
    r.start = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(s.start_s));
    r.end = r.start +
            std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(s.e2e_s.value_or(0.0)));
    r.ok = s.ok;
    r.output_tokens = s.ok ? s.output_tokens : 0;
    requests.push_back(r);
    if (!s.ok) {
      continue;
    }
    const auto add = [](std::vector<double>& to, const std::optional<double>& v) {
      if (v) {
        to.push_back(*v);
      }
    };
    add(ttft, s.ttft_s);
    add(tpot, s.tpot_s);
    add(e2e, s.e2e_s);
    add(tps, s.output_tokens_per_s);
    add(server_tps, s.server_tokens_per_s());
    if (i < itl_gaps.size()) {
      itl.insert(itl.end(), itl_gaps[i].begin(), itl_gaps[i].end());
    }
  }
  level.ttft_s = summarize(ttft);
  level.itl_s = summarize(itl);
  level.tpot_s = summarize(tpot);
  level.e2e_s = summarize(e2e);
  level.output_tokens_per_s = summarize(tps);
  level.server_tokens_per_s = summarize(server_tps);
  if (auto t = run_throughput(requests, "bench level")) {
    level.throughput = *t;
  }
  return level;
}

std::vector<BenchVerdict> judge_model(const BenchModel& model, std::span<const BenchPoint> timeline,
                                      std::span<const BenchMark> marks, const BenchSettings& settings) {
  std::vector<BenchVerdict> verdicts;
  // The points while this model generated (its level marks).
  std::vector<const BenchPoint*> generating;
  for (const auto& p : timeline) {
    for (const auto& m : marks) {
      if (m.model == model.model && m.phase == BenchPhase::level && inside(p.t_s, m)) {
        generating.push_back(&p);
        break;
      }
    }
  }
  std::vector<double> hottest, busiest;
  for (const auto* p : generating) {
    std::optional<unsigned> t, u;
    for (const auto& g : p->gpus) {
      if (g.temperature_c) {
        t = std::max(t.value_or(0), *g.temperature_c);
      }
      if (g.utilisation_pct) {
        u = std::max(u.value_or(0), *g.utilisation_pct);
      }
    }
    if (t) {
      hottest.push_back(*t);
    }
    if (u) {
      busiest.push_back(*u);
    }
  }
  BenchVerdict temperature{"temperature", VerdictOutcome::unknown, ""};
  if (hottest.empty()) {
    temperature.detail = generating.empty() ? "no point of the timeline while generating" : "no GPU temperature (NVML)";
  } else {
    const auto sustained = *median_of(hottest);
    const auto peak = *std::max_element(hottest.begin(), hottest.end());
    temperature.outcome = sustained < settings.temperature_limit_c ? VerdictOutcome::pass : VerdictOutcome::fail;
    temperature.detail = fmt::format("sustained {:.0f} °C (median while generating), peak {:.0f} °C; limit {} °C",
                                     sustained, peak, settings.temperature_limit_c);
  }
  verdicts.push_back(std::move(temperature));
  BenchVerdict utilisation{"gpu utilisation", VerdictOutcome::unknown, ""};
  if (model.server_vram && *model.server_vram == 0) {
    utilisation.detail = "the model runs on the CPU (size_vram 0)";
  } else if (busiest.empty()) {
    utilisation.detail = generating.empty() ? "no point of the timeline while generating" : "no GPU utilisation (NVML)";
  } else {
    const auto median = *median_of(busiest);
    utilisation.outcome = median >= settings.gpu_utilisation_target_pct ? VerdictOutcome::pass : VerdictOutcome::fail;
    utilisation.detail =
        fmt::format("median {} while generating; target {}", pct(median), pct(settings.gpu_utilisation_target_pct));
  }
  verdicts.push_back(std::move(utilisation));
  const auto against_plan = [&](const char* name, const std::optional<std::uint64_t>& planned,
                                const std::optional<std::uint64_t>& measured, std::uint64_t fills_later) {
    BenchVerdict v{name, VerdictOutcome::unknown, ""};
    if (!planned) {
      v.detail = "no plan";
    } else if (!measured) {
      v.detail = "not measured";
    } else {
      const auto check = check_estimate(name, *planned, measured, CheckRole::decides, fills_later);
      v.outcome = check.within ? VerdictOutcome::pass : VerdictOutcome::fail;
      v.detail = fmt::format("{} measured, {} planned (band {} to {})", format_bytes(*measured), format_bytes(*planned),
                             format_bytes(check.low), format_bytes(check.high));
    }
    return v;
  };
  // VRAM as NVML saw it: the GPUs' used memory at the load's start against the highest point while generating.
  std::optional<std::uint64_t> vram_base, vram_top;
  const auto vram_sum = [](const BenchPoint& p) {
    std::optional<std::uint64_t> sum;
    for (const auto& g : p.gpus) {
      if (g.vram_used) {
        sum = sum.value_or(0) + *g.vram_used;
      }
    }
    return sum;
  };
  for (const auto& m : marks) {
    if (m.model == model.model && m.phase == BenchPhase::load) {
      for (const auto& p : timeline) {
        if (inside(p.t_s, m) && !vram_base) {
          vram_base = vram_sum(p);
        }
      }
    }
  }
  for (const auto* p : generating) {
    if (const auto v = vram_sum(*p)) {
      vram_top = std::max(vram_top.value_or(0), *v);
    }
  }
  if (vram_base && vram_top) {
    verdicts.push_back(
        against_plan("VRAM", model.planned_vram, *vram_top > *vram_base ? *vram_top - *vram_base : 0, 0));
  } else {
    BenchVerdict v{"VRAM", VerdictOutcome::unknown, "no GPU memory figures (NVML) at the load and while generating"};
    if (model.server_vram) {
      v.detail += fmt::format("; the server's own estimate (size_vram) is {}", format_bytes(*model.server_vram));
    }
    verdicts.push_back(std::move(v));
  }
  // The KV cache and graph fill as the context is used: the RAM band reaches down by the part the plan says so.
  verdicts.push_back(against_plan("RAM", model.planned_ram, model.loaded_ram, model.ram_fills_later));
  BenchVerdict returned{"memory returned", VerdictOutcome::unknown, ""};
  switch (model.unload.verdict) {
    case UnloadVerdict::returned:
      returned.outcome = VerdictOutcome::pass;
      returned.detail =
          fmt::format("{} stayed above the level before the load", format_bytes(model.unload.kept.value_or(0)));
      break;
    case UnloadVerdict::kept:
      returned.outcome = VerdictOutcome::fail;
      returned.detail = fmt::format("the server kept {} after the unload (memwarden diagnose names the cause)",
                                    format_bytes(model.unload.kept.value_or(0)));
      break;
    case UnloadVerdict::unknown:
      returned.detail = model.unload_error.value_or("not unloaded, or the container's memory was not read");
      break;
  }
  verdicts.push_back(std::move(returned));
  return verdicts;
}

void add_point(std::vector<BenchPoint>& timeline, BenchPoint point, std::size_t cap) {
  if (cap >= 2 && timeline.size() >= cap) {
    std::size_t kept = 0;
    for (std::size_t i = 0; i < timeline.size(); i += 2) {
      timeline[kept++] = std::move(timeline[i]);
    }
    timeline.resize(kept);
  }
  timeline.push_back(std::move(point));
}

std::vector<BenchChange> compare_runs(const BenchRun& before, const BenchRun& after) {
  std::vector<BenchChange> changes;
  const auto change = [&](const std::string& model, std::size_t concurrency, std::string metric,
                          std::optional<double> a, std::optional<double> b, bool higher_is_better) {
    BenchChange c;
    c.model = model;
    c.concurrency = concurrency;
    c.metric = std::move(metric);
    c.before = a;
    c.after = b;
    c.higher_is_better = higher_is_better;
    if (a && b && *a != 0.0) {
      c.change_percent = (*b - *a) / *a * 100.0;
    }
    changes.push_back(std::move(c));
  };
  for (const auto& m : after.models) {
    const auto old = std::find_if(before.models.begin(), before.models.end(),
                                  [&](const BenchModel& o) { return o.model == m.model; });
    if (old == before.models.end()) {
      continue;
    }
    if (old->load_s || m.load_s) {  // a model skipped in both runs (or benchmarked through OpenAI) has no load
      change(m.model, 0, "load s", old->load_s, m.load_s, false);
    }
    for (const auto& level : m.levels) {
      const auto was = std::find_if(old->levels.begin(), old->levels.end(),
                                    [&](const BenchLevel& l) { return l.concurrency == level.concurrency; });
      if (was == old->levels.end()) {
        continue;
      }
      const auto c = level.concurrency;
      change(m.model, c, "ttft p50 s", was->ttft_s.median, level.ttft_s.median, false);
      change(m.model, c, "ttft p90 s", was->ttft_s.p90, level.ttft_s.p90, false);
      change(m.model, c, "itl p50 s", was->itl_s.median, level.itl_s.median, false);
      change(m.model, c, "tpot p50 s", was->tpot_s.median, level.tpot_s.median, false);
      change(m.model, c, "e2e p50 s", was->e2e_s.median, level.e2e_s.median, false);
      change(m.model, c, "e2e p99 s", was->e2e_s.p99, level.e2e_s.p99, false);
      change(m.model, c, "tok/s per request p50", was->output_tokens_per_s.median, level.output_tokens_per_s.median,
             true);
      change(m.model, c, "requests/s", was->throughput.requests_per_s, level.throughput.requests_per_s, true);
      change(m.model, c, "tokens/s", was->throughput.output_tokens_per_s, level.throughput.output_tokens_per_s, true);
    }
  }
  return changes;
}

}  // namespace mw
