#include "cli/bench_history.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <optional>

#include "engine/bench_json.hpp"

namespace mw::cli {

using nlohmann::json;

namespace {

constexpr const char* k_missing = "–";

std::string local_time(std::int64_t at_ms) {
  const auto t = static_cast<std::time_t>(at_ms / 1000);
  std::tm tm{};
  if (localtime_r(&t, &tm) == nullptr) {
    return k_missing;
  }
  char buf[32];
  return std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm) > 0 ? std::string(buf) : std::string(k_missing);
}

// Four significant digits, whole numbers from 1000 on: 0.1198, 45.71, 117.3, 1234.
std::string figure(const std::optional<double>& v) {
  if (!v || !std::isfinite(*v)) {
    return k_missing;
  }
  return std::fabs(*v) >= 1000 ? fmt::format("{:.0f}", *v) : fmt::format("{:.4g}", *v);
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) {
    out += out.empty() ? "" : ", ";
    out += i;
  }
  return out;
}

// "better", "worse", "same", or nullopt without a change.
std::optional<std::string> verdict_of(const BenchChange& c) {
  if (!c.change_percent) {
    return std::nullopt;
  }
  if (*c.change_percent == 0.0) {
    return "same";
  }
  return (*c.change_percent > 0) == c.higher_is_better ? "better" : "worse";
}

json opt(const std::optional<double>& v) {
  return v && std::isfinite(*v) ? json(*v) : json(nullptr);
}

std::string run_title(const BenchRun& r) {
  return fmt::format("run {} ({}, {}{})", r.id, local_time(r.started_at_ms), r.server,
                     r.interrupted ? ", interrupted: partial" : "");
}

json run_json(const BenchRun& r) {
  std::vector<std::string> models;
  for (const auto& m : r.models) {
    models.push_back(m.model);
  }
  return {{"id", r.id},
          {"started_at_ms", r.started_at_ms},
          {"started_at", engine::iso8601_utc(r.started_at_ms)},
          {"server", r.server},
          {"models", models},
          {"interrupted", r.interrupted}};
}

std::int64_t at_ms(const BenchRun& run, double seconds) {
  return run.started_at_ms + static_cast<std::int64_t>(std::llround(seconds * 1000.0));
}

const BenchLevel* level_of(const BenchModel& m, std::size_t concurrency) {
  const auto it =
      std::find_if(m.levels.begin(), m.levels.end(), [&](const BenchLevel& l) { return l.concurrency == concurrency; });
  return it == m.levels.end() ? nullptr : &*it;
}

std::string level_text(const BenchLevel* l) {
  return fmt::format("{} tok/s, TTFT p50 {} s", figure(l ? l->throughput.output_tokens_per_s : std::nullopt),
                     figure(l ? l->ttft_s.median : std::nullopt));
}

}  // namespace

std::string render_bench_list(const std::vector<engine::BenchRunSummary>& runs) {
  if (runs.empty()) {
    return "no benchmark runs stored yet: run `memwarden bench`\n";
  }
  std::string out = fmt::format("{:>6}  {:<16}  {:<20}  {}\n", "ID", "WHEN", "SERVER", "MODELS");
  for (const auto& r : runs) {
    out += fmt::format("{:>6}  {:<16}  {:<20}  {}{}\n", r.id, local_time(r.started_at_ms), r.server, joined(r.models),
                       r.interrupted ? "  [interrupted: partial]" : "");
  }
  return out;
}

json render_bench_list_json(const std::vector<engine::BenchRunSummary>& runs) {
  json out = json::array();
  for (const auto& r : runs) {
    out.push_back({{"id", r.id},
                   {"started_at_ms", r.started_at_ms},
                   {"started_at", engine::iso8601_utc(r.started_at_ms)},
                   {"server", r.server},
                   {"models", r.models},
                   {"interrupted", r.interrupted}});
  }
  return out;
}

std::string render_bench_compare(const BenchRun& a, const BenchRun& b, const std::vector<BenchChange>& changes) {
  std::string out = fmt::format("from {}\nto   {}\n", run_title(a), run_title(b));
  if (changes.empty()) {
    out += "the runs have no model and concurrency level in common\n";
    return out;
  }
  out +=
      fmt::format("\n{:<24} {:>4}  {:<22} {:>10} {:>10} {:>9}\n", "MODEL", "C", "METRIC", "BEFORE", "AFTER", "CHANGE");
  for (const auto& c : changes) {
    const auto word = verdict_of(c);
    out += fmt::format("{:<24} {:>4}  {:<22} {:>10} {:>10} {:>9}{}\n", c.model,
                       c.concurrency == 0 ? std::string() : std::to_string(c.concurrency), c.metric, figure(c.before),
                       figure(c.after),
                       c.change_percent ? fmt::format("{:+.1f}%", *c.change_percent) : std::string(k_missing),
                       word ? "  " + *word : std::string());
  }
  return out;
}

json render_bench_compare_json(const BenchRun& a, const BenchRun& b, const std::vector<BenchChange>& changes) {
  json list = json::array();
  for (const auto& c : changes) {
    const auto word = verdict_of(c);
    list.push_back({{"model", c.model},
                    {"concurrency", c.concurrency == 0 ? json(nullptr) : json(c.concurrency)},
                    {"metric", c.metric},
                    {"before", opt(c.before)},
                    {"after", opt(c.after)},
                    {"change_percent", opt(c.change_percent)},
                    {"higher_is_better", c.higher_is_better},
                    {"verdict", word ? json(*word) : json(nullptr)}});
  }
  return {{"before", run_json(a)}, {"after", run_json(b)}, {"changes", std::move(list)}};
}

json bench_annotations(const BenchRun& run) {
  json out = json::array();
  for (const auto& m : run.models) {
    std::optional<double> from, to, load_start, unload_end;
    for (const auto& mark : run.marks) {
      if (mark.model != m.model) {
        continue;
      }
      from = std::min(from.value_or(mark.start_s), mark.start_s);
      to = std::max(to.value_or(mark.end_s), mark.end_s);
      if (mark.phase == BenchPhase::load && !load_start) {
        load_start = mark.start_s;
      }
      if (mark.phase == BenchPhase::unload) {
        unload_end = mark.end_s;
      }
    }
    if (!from) {
      continue;  // never loaded (skipped): nothing on the timeline
    }
    std::string levels;
    for (const auto& l : m.levels) {
      levels += fmt::format("; c={}: {}", l.concurrency, level_text(&l));
    }
    out.push_back(
        {{"time", at_ms(run, load_start.value_or(*from))},
         {"timeEnd", at_ms(run, unload_end.value_or(*to))},
         {"tags", json::array({"memwarden", "bench", m.model})},
         {"text", fmt::format("bench {} ({}): load {} s{}", m.model, to_string(m.status), figure(m.load_s), levels)}});
    for (const auto& mark : run.marks) {
      if (mark.model != m.model || mark.phase != BenchPhase::level) {
        continue;
      }
      out.push_back({{"time", at_ms(run, mark.start_s)},
                     {"timeEnd", at_ms(run, mark.end_s)},
                     {"tags", json::array({"memwarden", "bench", m.model, fmt::format("c={}", mark.concurrency)})},
                     {"text", fmt::format("bench {} c={}: {}", m.model, mark.concurrency,
                                          level_text(level_of(m, mark.concurrency)))}});
    }
  }
  return out;
}

}  // namespace mw::cli
