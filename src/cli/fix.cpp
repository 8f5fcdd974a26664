#include "cli/fix.hpp"

#include "cli/diagnose.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "adapters/ollama.hpp"
#include "core/bytes.hpp"
#include "core/discovery.hpp"
#include "probes/cgroup.hpp"
#include "probes/connections.hpp"

namespace mw::cli {

using engine::FixResult;
using engine::RunMode;
using engine::ServerFixReport;
using nlohmann::json;

namespace {

std::string seconds_text(Duration d) {
  return fmt::format("{:.1f} s", static_cast<double>(d.count()) / 1000.0);
}

}  // namespace

std::string render_fix(const FixResult& r, RunMode mode) {
  std::string out;
  out += fmt::format("FIX{}  {} server{} diagnosed, {} with something to fix\n",
                     mode == RunMode::dry_run ? " (dry run: nothing will be changed)" : "", r.diagnosis.servers.size(),
                     r.diagnosis.servers.size() == 1 ? "" : "s", r.servers.size());
  if (r.servers.empty()) {
    out += "  nothing to fix\n";
  }
  for (const auto& s : r.servers) {
    out += fmt::format("\n{}  {}\n", s.server.name, to_string(s.outcome));
    for (const auto& f : s.findings) {
      out += fmt::format("  finding: {} ({}): {}\n", to_string(f.detector), to_string(f.severity), f.summary);
    }
    for (const auto& step : s.steps) {
      out += fmt::format("  {:<11} {:>7}  {}{}\n", to_string(step.step), seconds_text(step.took),
                         step.ok ? "" : "FAILED: ", step.detail);
    }
    for (const auto& line : s.plan) {
      out += fmt::format("  plan: {}\n", line);
    }
    out += fmt::format("  {}\n", s.message);
    if (s.journal_id) {
      out += fmt::format("  journal record #{}\n", *s.journal_id);
    }
  }
  if (!r.diagnosis.problems.empty() || !r.problems.empty()) {
    out += "\nPROBLEMS\n";
    for (const auto* list : {&r.diagnosis.problems, &r.problems}) {
      for (const auto& p : *list) {
        out += fmt::format("  {}\n", p.line());
      }
    }
  }
  return out;
}

json fix_to_json(const FixResult& r, RunMode mode) {
  json servers = json::array();
  for (const auto& s : r.servers) {
    json steps = json::array();
    for (const auto& step : s.steps) {
      steps.push_back(
          {{"name", to_string(step.step)}, {"detail", step.detail}, {"ms", step.took.count()}, {"ok", step.ok}});
    }
    json findings = json::array();
    for (const auto& f : s.findings) {
      findings.push_back(
          {{"detector", to_string(f.detector)}, {"severity", to_string(f.severity)}, {"summary", f.summary}});
    }
    const auto n = [](const std::optional<std::uint64_t>& v) { return v ? json(*v) : json(nullptr); };
    servers.push_back({{"name", s.server.name},
                       {"container_id", s.server.container_id.empty() ? json(nullptr) : json(s.server.container_id)},
                       {"findings", findings},
                       {"eligibility", to_string(s.verdict.eligibility)},
                       {"verdict", s.verdict.reason},
                       {"retry_at_ms", s.verdict.retry_at_ms ? json(*s.verdict.retry_at_ms) : json(nullptr)},
                       {"outcome", to_string(s.outcome)},
                       {"kind", s.kind ? json(to_string(*s.kind)) : json(nullptr)},
                       {"message", s.message},
                       {"before_anon_bytes", n(s.before_anon)},
                       {"after_anon_bytes", n(s.after_anon)},
                       {"steps", steps},
                       {"plan", s.plan},
                       {"total_ms", s.total.count()},
                       {"journal_id", s.journal_id ? json(*s.journal_id) : json(nullptr)},
                       {"journal_unavailable", s.journal_unavailable}});
  }
  json problems = json::array();
  for (const auto& p : r.problems) {
    problems.push_back({{"source", p.source}, {"message", p.message}});
  }
  return {{"schema", "memwarden.fix/1"},
          {"dry_run", mode == RunMode::dry_run},
          {"diagnosis", diagnosis_to_json(r.diagnosis)},
          {"servers", servers},
          {"problems", problems},
          {"exit_code", static_cast<int>(fix_exit_code(r))}};
}

}  // namespace mw::cli
