#include "cli/diagnose.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>

#include "core/bytes.hpp"

namespace mw::cli {

using engine::DiagnoseResult;
using nlohmann::json;

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
    out += fmt::format("{:<8} {}  {}\n", upper(to_string(f.severity)), to_string(f.detector), f.subject);
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
      first = to_ms(it->second);
    }
    findings.push_back({{"detector", to_string(f.detector)},
                        {"severity", to_string(f.severity)},
                        {"subject", f.subject},
                        {"summary", f.summary},
                        {"evidence", evidence},
                        {"remedy", to_string(f.remedy)},
                        {"action", f.action},
                        {"window_start_ms", to_ms(f.window_start)},
                        {"window_end_ms", to_ms(f.window_end)},
                        {"first_detected_ms", first}});
  }
  json problems = json::array();
  for (const auto& p : r.problems) {
    problems.push_back({{"source", p.source}, {"message", p.message}});
  }
  return {{"schema", "memwarden.diagnose/1"},
          {"started_ms", to_ms(r.started)},
          {"ended_ms", to_ms(r.ended)},
          {"interval_ms", r.interval.count()},
          {"samples", r.samples},
          {"stored_samples", r.stored_samples},
          {"cgroup_mode", r.cgroup_mode ? json(probes::to_string(*r.cgroup_mode)) : json(nullptr)},
          {"servers", servers},
          {"findings", findings},
          {"problems", problems},
          {"exit_code", static_cast<int>(diagnose_exit_code(r))}};
}

}  // namespace mw::cli
