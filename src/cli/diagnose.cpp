#include "cli/diagnose.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>

#include "adapters/sample_store.hpp"
#include "core/bytes.hpp"

namespace mw::cli {

using nlohmann::json;

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
  const auto file = std::filesystem::path(lb.state_dir) / adapters::SampleStore::k_file_name;
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
    result.cgroup_mode = probes::to_string(*mode);
  }
}

DiagnoseResult run_diagnose(const DiagnoseOptions& options, Clock& clock) {
  SamplerOptions sampler_options = options.sampler;
  // Room for the look-back too (one sample a second at most, capped at an hour of them).
  const auto stored = static_cast<std::size_t>(std::clamp<std::int64_t>(options.lookback.span.count() / 1000, 0, 3600));
  sampler_options.capacity = std::max<std::size_t>(samples_for(options) + 1 + stored, 4);
  Sampler sampler(sampler_options, clock);
  DiagnoseResult result;
  sampler.discover();
  seed_from_history(sampler, options, clock, result);
  auto seeded_problems = result.problems;
  observe(sampler, options, clock, result);
  summarise(sampler, result);
  result.problems.insert(result.problems.begin(), seeded_problems.begin(), seeded_problems.end());
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

namespace {

std::string seconds(Duration d) {
  return fmt::format("{:.0f} s", static_cast<double>(d.count()) / 1000.0);
}

std::string opt_bytes(const std::optional<std::uint64_t>& v) {
  return v ? format_bytes(*v) : "-";
}

std::string upper(const char* s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return out;
}

std::string fit(std::string_view text, std::size_t width) {
  return text.size() <= width ? std::string(text) : std::string(text.substr(0, width - 1)) + "~";
}

}  // namespace

std::string render_diagnosis(const DiagnoseResult& r) {
  std::string out;
  out += fmt::format("DIAGNOSE  {} server{}, {} sample{} over {} (every {})\n", r.servers.size(),
                     r.servers.size() == 1 ? "" : "s", r.samples, r.samples == 1 ? "" : "s",
                     seconds(r.ended - r.started), seconds(r.interval));
  if (r.stored_samples > 0) {
    out += fmt::format("  with {} earlier sample{} from memwarden serve's history\n", r.stored_samples,
                       r.stored_samples == 1 ? "" : "s");
  }
  if (r.servers.empty()) {
    out +=
        "  no inference server found (containers whose image contains 'ollama' or labelled "
        "memwarden.kind=ollama, and host processes 'ollama serve')\n";
  } else {
    out += fmt::format("{:<24} {:<9} {:>6} {:>9} {:>9} {:>9}  {}\n", "SERVER", "KIND", "MODELS", "ANON", "CACHE",
                       "EXPECTED", "API");
    for (const auto& s : r.servers) {
      const auto& last = s.last;
      const auto* memory = last && last->memory ? &*last->memory : nullptr;
      std::string models = "-";
      std::string expected = "-";
      if (last && last->models) {
        models = std::to_string(model_count(*last->models));
        expected = format_bytes(expected_ram(*last->models, r.base_allowance));
      }
      std::string api = s.server.api_url.empty() ? "not found" : s.server.api_url;
      if (!s.api_version.empty()) {
        api += " (" + s.api_version + ")";
      }
      out += fmt::format("{:<24} {:<9} {:>6} {:>9} {:>9} {:>9}  {}\n", fit(s.server.name, 24),
                         s.server.kind == ServerKind::container ? "container" : "host", models,
                         memory ? opt_bytes(memory->anon) : "-", memory ? opt_bytes(memory->file) : "-", expected,
                         fit(api, 34));
    }
  }
  out += "\n";
  if (r.findings.empty()) {
    out += r.servers.empty() ? "HEALTHY  no findings for the host\n"
                             : "HEALTHY  no findings: every server's memory is explained by its loaded models\n";
  }
  for (const auto& f : r.findings) {
    out += fmt::format("{:<8} {}  {}\n", upper(to_string(f.severity)), f.detector, f.subject);
    out += fmt::format("  {}\n", f.summary);
    std::string evidence;
    for (const auto& e : f.evidence) {
      evidence += (evidence.empty() ? "" : ", ") + fmt::format("{} {}", e.name, e.text);
    }
    if (!evidence.empty()) {
      out += fmt::format("  evidence: {}\n", evidence);
    }
    if (f.remedy != Remedy::none || !f.action.empty()) {
      out += fmt::format("  action:   {}\n", f.action);
    }
    out += "\n";
  }
  if (!r.problems.empty()) {
    out += "PROBLEMS (the analysis went on without these)\n";
    for (const auto& p : r.problems) {
      out += fmt::format("  {}\n", p.line());
    }
  }
  return out;
}

namespace {

json memory_json(const std::optional<CgroupMemory>& m) {
  if (!m) {
    return nullptr;
  }
  const auto n = [](const std::optional<std::uint64_t>& v) { return v ? json(*v) : json(nullptr); };
  json limit = nullptr;
  if (m->limit && m->limit->bytes) {
    limit = *m->limit->bytes;
  }
  return {{"usage_bytes", n(m->usage)},   {"anon_bytes", n(m->anon)},
          {"file_bytes", n(m->file)},     {"working_set_bytes", n(m->working_set())},
          {"limit_bytes", limit},         {"unlimited", m->limit ? json(m->limit->is_unlimited()) : json(nullptr)},
          {"oom_kills", n(m->oom_kills)}, {"swap_bytes", n(m->swap)}};
}

json models_json(const std::optional<std::vector<OllamaModel>>& models) {
  if (!models) {
    return nullptr;
  }
  json out = json::array();
  for (const auto& m : *models) {
    out.push_back({{"name", m.name},
                   {"size_bytes", m.size},
                   {"size_vram_bytes", m.size_vram},
                   {"context_length", m.context_length ? json(*m.context_length) : json(nullptr)},
                   {"expires_at", m.expires_at},
                   {"folded", m.folded}});
  }
  return out;
}

}  // namespace

json diagnosis_to_json(const DiagnoseResult& r) {
  json servers = json::array();
  for (const auto& s : r.servers) {
    json processes = json::array();
    if (s.last) {
      for (const auto& p : s.last->processes) {
        processes.push_back({{"pid", p.pid},
                             {"comm", p.comm},
                             {"argv", p.argv},
                             {"rss_bytes", p.rss_bytes ? json(*p.rss_bytes) : json(nullptr)},
                             {"rss_anon_bytes", p.rss_anon_bytes ? json(*p.rss_anon_bytes) : json(nullptr)}});
      }
    }
    json expected = nullptr;
    if (s.last && s.last->models) {
      expected = expected_ram(*s.last->models, r.base_allowance);
    }
    servers.push_back(
        {{"name", s.server.name},
         {"kind", s.server.kind == ServerKind::container ? "container" : "host_process"},
         {"container_id", s.server.container_id.empty() ? json(nullptr) : json(s.server.container_id)},
         {"pid", s.server.pid > 0 ? json(s.server.pid) : json(nullptr)},
         {"api_url", s.server.api_url.empty() ? json(nullptr) : json(s.server.api_url)},
         {"api_url_source", s.server.api_url_source.empty() ? json(nullptr) : json(s.server.api_url_source)},
         {"api_version", s.api_version.empty() ? json(nullptr) : json(s.api_version)},
         {"api_error", s.last && s.last->api_error ? json(s.last->api_error->line()) : json(nullptr)},
         {"models", s.last ? models_json(s.last->models) : json(nullptr)},
         {"expected_ram_bytes", expected},
         {"memory", s.last ? memory_json(s.last->memory) : json(nullptr)},
         {"processes", processes}});
  }
  json findings = json::array();
  for (const auto& f : r.findings) {
    json evidence = json::object();
    for (const auto& e : f.evidence) {
      evidence[e.name] = {{"value", e.value}, {"text", e.text}};
    }
    json first = nullptr;
    if (const auto it = r.first_detected.find({f.detector, f.subject}); it != r.first_detected.end()) {
      first = it->second.count();
    }
    findings.push_back({{"detector", f.detector},
                        {"severity", to_string(f.severity)},
                        {"subject", f.subject},
                        {"summary", f.summary},
                        {"evidence", evidence},
                        {"remedy", to_string(f.remedy)},
                        {"action", f.action},
                        {"window_start_ms", f.window_start.count()},
                        {"window_end_ms", f.window_end.count()},
                        {"first_detected_ms", first}});
  }
  json problems = json::array();
  for (const auto& p : r.problems) {
    problems.push_back({{"source", p.source}, {"message", p.message}});
  }
  return {{"schema", "memwarden.diagnose/1"},
          {"started_ms", r.started.count()},
          {"ended_ms", r.ended.count()},
          {"interval_ms", r.interval.count()},
          {"samples", r.samples},
          {"stored_samples", r.stored_samples},
          {"cgroup_mode", r.cgroup_mode.empty() ? json(nullptr) : json(r.cgroup_mode)},
          {"servers", servers},
          {"findings", findings},
          {"problems", problems},
          {"exit_code", static_cast<int>(diagnose_exit_code(r))}};
}

}  // namespace mw::cli
