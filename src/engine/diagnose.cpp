#include "engine/diagnose.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <memory>

#include "adapters/sample_store.hpp"

namespace mw::engine {

std::size_t samples_for(const DiagnoseOptions& options) {
  const Duration interval = std::max(options.interval, Duration(10));
  return static_cast<std::size_t>(options.window / interval) + 1;
}

void observe(Sampler& sampler, const DiagnoseOptions& options, Clock& clock, DiagnoseResult& result) {
  const Duration interval = std::max(options.interval, Duration(10));
  result.interval = interval;
  result.base_allowance = options.thresholds.base_allowance;
  result.started = clock.now();
  Timestamp next = result.started;
  const std::size_t steps = samples_for(options);
  for (std::size_t i = 0; i < steps; ++i) {
    clock.sleep_until(next);
    sampler.sample();
    ++result.samples;
    // Evaluate after every sample, so a fault is reported as soon as its condition holds.
    result.findings = run_detectors(sampler.states(), sampler.host(), options.thresholds);
    const Timestamp now = clock.now();
    bool stop = false;
    for (const auto& f : result.findings) {
      result.first_detected.try_emplace({f.detector, f.subject}, now);
      if (options.stop_on && f.severity >= *options.stop_on) {
        stop = true;
      }
    }
    if (stop) {
      break;
    }
    next += interval;
  }
  result.ended = clock.now();
}

namespace {

// A stored row as a sample: the cgroup figures it kept, and the loaded models as one entry of their
// total size (the history keeps sums, not names), so that expected RAM comes out the same.
ServerSample from_stored(const adapters::StoredSample& row, Timestamp at) {
  ServerSample s;
  s.at = at;
  if (row.anon || row.usage) {
    CgroupMemory m;
    m.usage = row.usage;
    m.anon = row.anon;
    m.file = row.file;
    m.swap = row.swap;
    if (row.limit) {
      m.limit = MemoryLimit::of(*row.limit);
    }
    s.memory = m;
  }
  if (row.models_loaded) {
    std::vector<OllamaModel> models;
    if (*row.models_loaded > 0) {
      OllamaModel all;
      all.name = fmt::format("({} models from history)", *row.models_loaded);
      all.size = row.models_bytes.value_or(0);
      all.size_vram = row.models_vram_bytes.value_or(0);
      all.folded = *row.models_loaded;
      models.push_back(std::move(all));
    }
    s.models = std::move(models);
  } else {
    s.api_error = Error{"history", "the API did not answer this sample"};
  }
  return s;
}

}  // namespace

void seed_from_history(Sampler& sampler, const DiagnoseOptions& options, Clock& clock, DiagnoseResult& result) {
  const auto& lb = options.lookback;
  if (lb.span.count() <= 0) {
    return;
  }
  const auto file = adapters::StateDir(lb.state_dir).samples();
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) {
    result.problems.push_back(Error{file.string(), "no sample history here (memwarden serve keeps it)", ENOENT});
    return;
  }
  auto store = adapters::SampleStore::open(lb.state_dir, {});
  if (!store) {
    result.problems.push_back(store.error());
    return;
  }
  const auto now = clock.now();
  const auto since = lb.now_wall_ms - lb.span.count();
  const auto place = [&](std::int64_t at_ms) { return now - Duration(lb.now_wall_ms - at_ms); };
  if (auto host = store->raw("host", since, lb.now_wall_ms)) {
    std::vector<HostSample> samples;
    for (const auto& row : *host) {
      HostSample h;
      h.at = place(row.at_ms);
      MemInfo mi;
      mi.mem_available = row.mem_available;
      mi.mem_total = row.limit;
      h.meminfo = mi;
      samples.push_back(std::move(h));
    }
    sampler.seed_host(samples);
  } else {
    result.problems.push_back(host.error());
  }
  for (const auto& w : sampler.servers()) {
    auto rows = store->raw(w->server.name, since, lb.now_wall_ms);
    if (!rows) {
      result.problems.push_back(rows.error());
      continue;
    }
    std::vector<ServerSample> samples;
    for (const auto& row : *rows) {
      samples.push_back(from_stored(row, place(row.at_ms)));
    }
    result.stored_samples += samples.size();
    sampler.seed(w->server.name, samples);
  }
}

void summarise(const Sampler& sampler, DiagnoseResult& result) {
  result.servers.clear();
  for (const auto& w : sampler.servers()) {
    DiagnoseServerSummary summary;
    summary.server = w->server;
    summary.api_version = w->api_version;
    if (!w->history.empty()) {
      summary.last = w->history.back();
    }
    result.servers.push_back(std::move(summary));
  }
  result.problems = sampler.problems();
  if (const auto mode = sampler.cgroup_mode()) {
    result.cgroup_mode = *mode;
  }
}

std::unique_ptr<Sampler> diagnose_window(const DiagnoseOptions& options, Clock& clock, DiagnoseResult& result,
                                         std::size_t spare_samples) {
  SamplerOptions sampler_options = options.sampler;
  // Room for the look-back too (one sample a second at most, capped at an hour of them).
  const auto stored = static_cast<std::size_t>(std::clamp<std::int64_t>(options.lookback.span.count() / 1000, 0, 3600));
  sampler_options.capacity = std::max<std::size_t>(samples_for(options) + spare_samples + stored, 4);
  auto sampler = std::make_unique<Sampler>(sampler_options, clock);
  const auto inventory = sampler->discover();
  {
    LimitAdviceOptions lo;
    lo.root = options.sampler.root;
    lo.reserve = options.thresholds.reserve;
    lo.api_timeout = options.sampler.api_timeout;
    lo.plan = options.plan_limit;
    std::vector<Error> unused;  // MemTotal: the sampler reports it with every sample
    plan_unlimited_servers(*sampler, inventory, lo, unused);
  }
  seed_from_history(*sampler, options, clock, result);
  auto seeded_problems = result.problems;
  observe(*sampler, options, clock, result);
  summarise(*sampler, result);
  result.problems.insert(result.problems.begin(), seeded_problems.begin(), seeded_problems.end());
  return sampler;
}

DiagnoseResult run_diagnose(const DiagnoseOptions& options, Clock& clock) {
  DiagnoseResult result;
  (void)diagnose_window(options, clock, result, 1);
  return result;
}

DiagnoseExit diagnose_exit_code(const DiagnoseResult& result) {
  Severity worst = Severity::info;
  for (const auto& f : result.findings) {
    worst = std::max(worst, f.severity);
  }
  switch (worst) {
    case Severity::critical:
      return DiagnoseExit::critical;
    case Severity::warning:
      return DiagnoseExit::warning;
    case Severity::info:
      break;
  }
  return result.problems.empty() ? DiagnoseExit::healthy : DiagnoseExit::partial;
}

}  // namespace mw::engine
