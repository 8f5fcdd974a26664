#include "cli/optimize.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "core/bytes.hpp"

namespace mw::cli {

namespace {

using json = nlohmann::json;
using engine::ChangeKind;
using engine::ChangeOutcome;

std::string bytes_or(const std::optional<std::uint64_t>& v, const char* none) {
  return v ? format_bytes(*v) : std::string(none);
}

json bytes_json(const std::optional<std::uint64_t>& v) {
  return v ? json(*v) : json(nullptr);
}

bool changes(const engine::OptimizeItem& item) {
  return item.decision.target &&
         (item.decision.action == LimitAction::set || item.decision.action == LimitAction::raise ||
          item.decision.action == LimitAction::lower);
}

std::string host_line(const engine::HostFigures& h) {
  return fmt::format("RAM {}, {} available, swap {} used", bytes_or(h.mem_total, "unknown"),
                     bytes_or(h.mem_available, "unknown"), bytes_or(h.swap_used, "unknown"));
}

void render_fix_step(const engine::OptimizeRun& run, std::string& out) {
  if (!run.fix) {
    return;
  }
  const auto& d = run.fix->diagnosis;
  out += fmt::format("\n1. Audit and diagnose: {} server{}, {} finding{}\n", d.servers.size(),
                     d.servers.size() == 1 ? "" : "s", d.findings.size(), d.findings.size() == 1 ? "" : "s");
  for (const auto& f : d.findings) {
    out += fmt::format("   {:<8} {}\n", to_string(f.severity), f.summary);
  }
  for (const auto& p : run.fix->problems) {
    out += fmt::format("   problem  {}\n", p.line());
  }
  out += "\n2. Fix";
  if (run.fix->servers.empty()) {
    out += ": nothing to fix\n";
    return;
  }
  out += "\n";
  for (const auto& s : run.fix->servers) {
    out += fmt::format("   {}: {} ({})\n", s.server.name, s.message, to_string(s.outcome));
    for (const auto& p : s.plan) {
      out += fmt::format("      would: {}\n", p);
    }
  }
}

void render_limits(const engine::OptimizePlan& plan, bool applying, std::string& out) {
  out += "\n3-4. Memory limits (+ will change, ! needs consent)\n";
  out += fmt::format("   {:<1} {:<24} {:<6} {:>10} {:>10} {:>10}  {}\n", "", "CONTAINER", "KIND", "USES", "LIMIT",
                     "NEW", "WHY");
  for (const auto& item : plan.items) {
    const bool change = changes(item);
    const char* mark = change ? (item.allowed ? "+" : "!") : " ";
    std::string why = item.decision.action == LimitAction::skip ? item.decision.why : item.basis;
    if (change && !item.decision.why.empty()) {
      why += "; " + item.decision.why;
    }
    if (change && !item.allowed) {
      why += " (" + item.not_allowed + ")";
    }
    out += fmt::format("   {:<1} {:<24} {:<6} {:>10} {:>10} {:>10}  {}: {}\n", mark, item.name,
                       item.server ? "server" : "other", bytes_or(item.use, "?"), bytes_or(item.limit, "none"),
                       change ? format_bytes(*item.decision.target) : std::string("-"), to_string(item.decision.action),
                       why);
    if (item.served) {
      for (const auto& m : item.served->models) {
        if (m.plan) {
          out += fmt::format("       {:<30} needs {} ({})\n", m.name, format_bytes(m.plan->container_limit),
                             to_string(m.plan->verdict));
        }
      }
    }
  }
  const auto usable =
      plan.host.mem_total && *plan.host.mem_total > plan.reserve ? *plan.host.mem_total - plan.reserve : 0;
  if (!plan.reserve_holds) {
    out += fmt::format("   Whether the limits keep the {} reserve is unknown: a container's use could not be read\n",
                       format_bytes(plan.reserve));
    return;
  }
  out += fmt::format("   The limits {} add up to {} of the {} the host can give beside its {} reserve: {}\n",
                     applying ? "after the changes" : "after these changes", format_bytes(plan.limits_total),
                     format_bytes(usable), format_bytes(plan.reserve),
                     *plan.reserve_holds ? "the reserve holds" : "the reserve does NOT hold");
}

void render_settings(const engine::OptimizePlan& plan, engine::SettingsUse settings, std::string& out) {
  bool any = false;
  for (const auto& item : plan.items) {
    any = any || !item.settings.empty();
  }
  out += "\n5. Server settings";
  if (!any) {
    out += ": none needed\n";
    return;
  }
  out += "\n";
  for (const auto& item : plan.items) {
    if (item.settings.empty()) {
      continue;
    }
    for (const auto& s : item.settings) {
      out += fmt::format("   {} {}: {} {} -> {}  ({})\n", item.allowed ? "+" : "!", item.name, s.key,
                         s.before ? *s.before : std::string("unset"), s.after, s.why);
    }
    if (settings == engine::SettingsUse::recommend) {
      out += fmt::format("     applied by re-creating {} (rollback-safe): memwarden optimize --yes --recreate\n",
                         item.name);
    }
  }
}

void render_for(const engine::OptimizePlan& plan, std::string& out) {
  if (plan.for_models.empty()) {
    return;
  }
  out += "\n   --for on this host (its whole RAM less the reserve):\n";
  for (const auto& f : plan.for_models) {
    if (!f.plan) {
      out += fmt::format("   {}: {}\n", f.name, f.error);
      continue;
    }
    out += fmt::format("   {}: {} (RAM {}, limit {})\n", f.name, to_string(f.plan->verdict),
                       format_bytes(f.plan->ram_needed), format_bytes(f.plan->container_limit));
    if (f.plan->verdict == FitVerdict::no_fit) {
      for (const auto& n : f.plan->notes) {
        out += "     " + n + "\n";
      }
      for (const auto& s : f.plan->suggestions) {
        out += fmt::format("     try {}: {}\n", s.change, s.why);
      }
    }
  }
}

const engine::FiguresRow* row_of(const engine::Figures& f, const std::string& name) {
  auto it = std::find_if(f.rows.begin(), f.rows.end(), [&](const engine::FiguresRow& r) { return r.name == name; });
  return it == f.rows.end() ? nullptr : &*it;
}

void render_verify(const engine::OptimizeRun& run, std::string& out) {
  out += "\n6. Applied\n";
  if (run.applied.journal_problem) {
    out += "   nothing was changed: the journal could not record it: " + *run.applied.journal_problem + "\n";
  }
  if (run.applied.changes.empty() && !run.applied.journal_problem) {
    out += "   nothing to change\n";
  }
  for (const auto& c : run.applied.changes) {
    out += fmt::format("   {:<8} {} ({}){}\n", to_string(c.outcome), c.detail, to_string(c.kind),
                       c.journal_id ? fmt::format(" [journal {}]", *c.journal_id) : std::string());
  }
  if (run.applied.interrupted) {
    out += "   interrupted: the changes above were made; memwarden optimize --undo puts them back\n";
  }
  if (run.after) {
    out += "\n   Before and after\n";
    out += fmt::format("   {:<24} {:>12} {:>12}\n", "", "BEFORE", "AFTER");
    out += fmt::format("   {:<24} {:>12} {:>12}\n", "available RAM", bytes_or(run.before.host.mem_available, "?"),
                       bytes_or(run.after->host.mem_available, "?"));
    out += fmt::format("   {:<24} {:>12} {:>12}\n", "swap used", bytes_or(run.before.host.swap_used, "?"),
                       bytes_or(run.after->host.swap_used, "?"));
    for (const auto& r : run.after->rows) {
      const auto* b = row_of(run.before, r.name);
      out += fmt::format("   {:<24} {:>12} {:>12}  (limit)\n", r.name, b ? bytes_or(b->limit, "none") : "-",
                         bytes_or(r.limit, "none"));
      out +=
          fmt::format("   {:<24} {:>12} {:>12}  (uses)\n", "", b ? bytes_or(b->use, "?") : "-", bytes_or(r.use, "?"));
    }
  }
  if (run.readiness) {
    out += "\n   Readiness of the --for models (test model)\n";
    for (const auto& t : run.readiness->runs) {
      if (!t.plan) {
        out += fmt::format("   {}: {}\n", t.model, t.plan_error ? t.plan_error->line() : "not sized");
        continue;
      }
      std::string limit;
      if (run.readiness->server && run.readiness->server->memory_limit) {
        limit = fmt::format(", needs a limit of {} (the server has {})", format_bytes(t.plan->container_limit),
                            format_bytes(*run.readiness->server->memory_limit));
      }
      out += fmt::format("   {}: {}; RAM free now {}, VRAM {}{}\n", t.model, to_string(t.plan->verdict),
                         t.ram_fits ? "holds it" : "does not hold it", t.vram_fits ? "fits" : "does not fit", limit);
    }
  } else if (run.readiness_error) {
    out += "   readiness: " + run.readiness_error->line() + "\n";
  }
}

json change_json(const engine::AppliedChange& c) {
  return json{{"kind", to_string(c.kind)},
              {"container", c.name},
              {"outcome", to_string(c.outcome)},
              {"detail", c.detail},
              {"journal_id", c.journal_id ? json(*c.journal_id) : json(nullptr)},
              {"memory_after", bytes_json(c.memory_after)},
              {"cgroup_limit_after", bytes_json(c.cgroup_after)}};
}

json figures_json(const engine::Figures& f) {
  json rows = json::array();
  for (const auto& r : f.rows) {
    rows.push_back({{"container", r.name}, {"limit_bytes", bytes_json(r.limit)}, {"use_bytes", bytes_json(r.use)}});
  }
  return json{{"mem_total_bytes", bytes_json(f.host.mem_total)},
              {"mem_available_bytes", bytes_json(f.host.mem_available)},
              {"swap_used_bytes", bytes_json(f.host.swap_used)},
              {"containers", rows}};
}

}  // namespace

std::string render_optimize(const engine::OptimizeRun& run, engine::SettingsUse settings) {
  const bool applying = run.mode == engine::OptimizeMode::apply;
  std::string out = fmt::format("memwarden optimize{}\n", applying ? "" : ": nothing is changed without --yes");
  out += "Host: " + host_line(run.before.host) + "\n";
  render_fix_step(run, out);
  if (run.plan_error) {
    out += "\noptimize: " + run.plan_error->line() + "\n";
    return out;
  }
  if (!run.plan) {
    return out;
  }
  const bool planned = !run.plan->items.empty() || run.plan->for_models.empty();  // not the early --for stop
  if (planned) {
    render_limits(*run.plan, applying, out);
  }
  render_for(*run.plan, out);
  if (planned) {
    render_settings(*run.plan, settings, out);
  }
  for (const auto& p : run.plan->problems) {
    out += "   problem: " + p + "\n";
  }
  for (const auto& n : run.plan->notes) {
    out += "   note: " + n + "\n";
  }
  const bool no_fit = std::any_of(run.plan->for_models.begin(), run.plan->for_models.end(),
                                  [](const auto& f) { return f.plan && f.plan->verdict == FitVerdict::no_fit; });
  if (no_fit) {
    out += "\nNothing was changed: a --for model does not fit this host (above).\n";
    return out;
  }
  if (applying) {
    render_verify(run, out);
    return out;
  }
  std::size_t allowed = 0;
  std::size_t consent = 0;
  for (const auto& item : run.plan->items) {
    if (changes(item)) {
      (item.allowed ? allowed : consent) += 1;
    }
  }
  out += fmt::format("\nNothing was changed. memwarden optimize --yes makes the {} limit change{} marked +", allowed,
                     allowed == 1 ? "" : "s");
  out += consent > 0 ? fmt::format("; {} more need consent (marked !)\n", consent) : std::string("\n");
  return out;
}

json optimize_to_json(const engine::OptimizeRun& run) {
  json doc{{"mode", run.mode == engine::OptimizeMode::apply ? "apply" : "show"}, {"before", figures_json(run.before)}};
  if (run.fix) {
    json findings = json::array();
    for (const auto& f : run.fix->diagnosis.findings) {
      findings.push_back({{"detector", to_string(f.detector)},
                          {"severity", to_string(f.severity)},
                          {"subject", f.subject},
                          {"summary", f.summary},
                          {"action", f.action}});
    }
    json fixes = json::array();
    for (const auto& s : run.fix->servers) {
      fixes.push_back(
          {{"server", s.server.name}, {"outcome", to_string(s.outcome)}, {"message", s.message}, {"plan", s.plan}});
    }
    doc["findings"] = findings;
    doc["fixes"] = fixes;
  }
  if (run.plan_error) {
    doc["error"] = run.plan_error->line();
  }
  if (run.plan) {
    const auto& p = *run.plan;
    json items = json::array();
    for (const auto& item : p.items) {
      json settings = json::array();
      for (const auto& s : item.settings) {
        settings.push_back({{"key", s.key},
                            {"before", s.before ? json(*s.before) : json(nullptr)},
                            {"after", s.after},
                            {"why", s.why}});
      }
      json models = json::array();
      if (item.served) {
        for (const auto& m : item.served->models) {
          models.push_back({{"model", m.name},
                            {"container_limit_bytes", m.plan ? json(m.plan->container_limit) : json(nullptr)},
                            {"ram_bytes", m.plan ? json(m.plan->ram_needed) : json(nullptr)},
                            {"error", m.plan ? json(nullptr) : json(m.error)}});
        }
      }
      items.push_back({{"container", item.name},
                       {"id", item.id},
                       {"server", item.server},
                       {"allowed", item.allowed},
                       {"not_allowed", item.allowed ? json(nullptr) : json(item.not_allowed)},
                       {"use_bytes", bytes_json(item.use)},
                       {"limit_bytes", bytes_json(item.limit)},
                       {"floor_bytes", bytes_json(item.floor)},
                       {"action", to_string(item.decision.action)},
                       {"new_limit_bytes", changes(item) ? bytes_json(item.decision.target) : json(nullptr)},
                       {"capped", item.decision.capped},
                       {"basis", item.basis},
                       {"why", item.decision.why},
                       {"models", models},
                       {"settings", settings}});
    }
    json for_models = json::array();
    for (const auto& f : p.for_models) {
      for_models.push_back({{"model", f.name},
                            {"verdict", f.plan ? json(verdict_key(f.plan->verdict)) : json(nullptr)},
                            {"ram_bytes", f.plan ? json(f.plan->ram_needed) : json(nullptr)},
                            {"container_limit_bytes", f.plan ? json(f.plan->container_limit) : json(nullptr)},
                            {"error", f.plan ? json(nullptr) : json(f.error)}});
    }
    doc["reserve_bytes"] = p.reserve;
    doc["cgroup"] = p.cgroup_version ? json(to_string(*p.cgroup_version)) : json(nullptr);
    doc["containers"] = items;
    doc["for"] = for_models;
    doc["limits_total_bytes"] = p.reserve_holds ? json(p.limits_total) : json(nullptr);
    doc["reserve_holds"] = p.reserve_holds ? json(*p.reserve_holds) : json(nullptr);
    doc["notes"] = p.notes;
    doc["problems"] = p.problems;
  }
  json applied = json::array();
  for (const auto& c : run.applied.changes) {
    applied.push_back(change_json(c));
  }
  doc["applied"] = applied;
  doc["interrupted"] = run.applied.interrupted;
  doc["journal_problem"] = run.applied.journal_problem ? json(*run.applied.journal_problem) : json(nullptr);
  doc["after"] = run.after ? figures_json(*run.after) : json(nullptr);
  if (run.readiness) {
    json ready = json::array();
    for (const auto& t : run.readiness->runs) {
      ready.push_back({{"model", t.model},
                       {"verdict", t.plan ? json(verdict_key(t.plan->verdict)) : json(nullptr)},
                       {"ram_fits", t.ram_fits},
                       {"vram_fits", t.vram_fits}});
    }
    doc["readiness"] = ready;
  }
  return doc;
}

std::string render_undo(const engine::UndoReport& report) {
  if (report.journal_problem) {
    return "optimize --undo: nothing was changed: " + *report.journal_problem + "\n";
  }
  if (report.busy) {
    return "optimize --undo: nothing was changed: " + *report.busy + "\n";
  }
  if (report.nothing) {
    return "optimize --undo: " + *report.nothing + "\n";
  }
  std::string out = "optimize --undo\n";
  for (const auto& n : report.notes) {
    out += "   " + n + "\n";
  }
  for (const auto& c : report.changes) {
    out += fmt::format("   {:<8} {} ({}){}\n", to_string(c.outcome), c.detail, to_string(c.kind),
                       c.journal_id ? fmt::format(" [journal {}]", *c.journal_id) : std::string());
  }
  if (report.interrupted) {
    out += "   interrupted: the containers above were put back; memwarden optimize --undo goes on with the rest\n";
  }
  return out;
}

json undo_to_json(const engine::UndoReport& report) {
  json changes = json::array();
  for (const auto& c : report.changes) {
    changes.push_back(change_json(c));
  }
  return json{{"changes", changes},
              {"notes", report.notes},
              {"interrupted", report.interrupted},
              {"busy", report.busy ? json(*report.busy) : json(nullptr)},
              {"nothing", report.nothing ? json(*report.nothing) : json(nullptr)},
              {"journal_problem", report.journal_problem ? json(*report.journal_problem) : json(nullptr)}};
}

}  // namespace mw::cli
