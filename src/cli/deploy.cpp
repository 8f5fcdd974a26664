#include "cli/deploy.hpp"

#include <fmt/format.h>

#include "core/bytes.hpp"

namespace mw::cli {

namespace {

std::string bytes_or_dash(const std::optional<std::uint64_t>& b) {
  return b ? format_bytes(*b) : std::string("-");
}

nlohmann::json opt(const std::optional<std::uint64_t>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

std::string models_text(const Profile& p) {
  std::string out;
  for (const auto& m : p.models) {
    out += out.empty() ? m : ", " + m;
  }
  return out;
}

}  // namespace

std::string render_profiles(const engine::ProfilesResult& result) {
  std::string out = fmt::format("Host: {} RAM, {} available, {} reserved", bytes_or_dash(result.host.ram_total),
                                format_bytes(result.host.ram_available), format_bytes(result.host.reserve));
  out +=
      result.host.gpus.empty() ? ", no GPU\n" : fmt::format(", {} of VRAM\n", format_bytes(result.host.vram_total()));
  out += fmt::format("{:<14} {:<10} {:>6} {:>4} {:>12} {:>12}  {:<12} {}\n", "PROFILE", "MODE", "CTX", "PAR", "PLANNED",
                     "SEED", "VERDICT", "MODELS");
  for (const auto& p : result.profiles) {
    const std::string verdict = p.verdict ? to_string(*p.verdict) : "-";
    out += fmt::format("{:<14} {:<10} {:>6} {:>4} {:>12} {:>12}  {:<12} {}\n", p.profile.name,
                       to_string(p.profile.mode), p.profile.context_length, p.profile.parallel, bytes_or_dash(p.limit),
                       bytes_or_dash(p.profile.seed_limit_bytes), verdict, models_text(p.profile));
    for (const auto& e : p.errors) {
      out += fmt::format("  {}\n", e.line());
    }
  }
  out +=
      "PLANNED: the container limit the plan gives the largest model on this host; SEED: the fixed limit the "
      "hand-written template used.\n";
  return out;
}

nlohmann::json profiles_to_json(const engine::ProfilesResult& result) {
  auto list = nlohmann::json::array();
  for (const auto& p : result.profiles) {
    auto errors = nlohmann::json::array();
    for (const auto& e : p.errors) {
      errors.push_back(e.line());
    }
    list.push_back({{"name", p.profile.name},
                    {"description", p.profile.description},
                    {"api", to_string(p.profile.api)},
                    {"mode", to_string(p.profile.mode)},
                    {"models", p.profile.models},
                    {"context_length", p.profile.context_length},
                    {"parallel", p.profile.parallel},
                    {"kv_type", to_string(p.profile.kv_type)},
                    {"image", p.profile.image + ":" + p.profile.tag},
                    {"port", p.profile.port},
                    {"gpu", to_string(p.profile.gpu)},
                    {"planned_limit_bytes", opt(p.limit)},
                    {"seed_limit_bytes", opt(p.profile.seed_limit_bytes)},
                    {"verdict", p.verdict ? nlohmann::json(verdict_key(*p.verdict)) : nlohmann::json(nullptr)},
                    {"largest_model", p.largest_model},
                    {"errors", errors}});
  }
  return {{"host",
           {{"ram_total_bytes", opt(result.host.ram_total)},
            {"ram_available_bytes", result.host.ram_available},
            {"reserve_bytes", result.host.reserve},
            {"vram_total_bytes", result.host.vram_total()}}},
          {"host_notes", result.host_notes},
          {"profiles", list}};
}

std::string render_prepared(const engine::PreparedDeployment& prepared) {
  const auto& s = prepared.spec;
  const auto& a = prepared.admission;
  std::string out = fmt::format("{}: profile {}, image {}\n", s.name, s.profile.name, s.image);
  out += fmt::format("  models: {} (ctx {}, {} slot{}, KV {}{})\n", models_text(s.profile), s.profile.context_length,
                     s.profile.parallel, s.profile.parallel == 1 ? "" : "s", to_string(s.profile.kv_type),
                     s.flash_attention ? ", flash attention" : "");
  if (prepared.plan) {
    out += fmt::format(
        "  memory: limit {} (Memory = MemorySwap, no swap): {} needs {} of RAM, {} on the GPU, "
        "plus headroom ({})\n",
        format_bytes(s.memory_limit), prepared.plan->name, format_bytes(prepared.plan->ram_needed),
        format_bytes(prepared.plan->placement.vram), to_string(prepared.plan->verdict));
  }
  if (s.profile.seed_limit_bytes) {
    out += fmt::format("  the seed's template used {}\n", format_bytes(*s.profile.seed_limit_bytes));
  }
  out += fmt::format("  gpus: {}; network: {}; port {}:{}\n", to_string(s.gpu), to_string(s.network), s.bind_address,
                     s.profile.port);
  for (const auto& note : prepared.store_notes) {
    out += "  " + note + "\n";
  }
  out += fmt::format("  admission: {} + {} held by {} other container{} + {} reserve = {} of {}: {}\n",
                     format_bytes(a.limit), format_bytes(a.held), a.counted.size(), a.counted.size() == 1 ? "" : "s",
                     format_bytes(a.reserve), format_bytes(a.limit + a.held + a.reserve), format_bytes(a.ram_total),
                     a.admitted() ? "fits" : "does not fit");
  if (!prepared.to_stop.empty()) {
    out += "  exclusive: stops";
    for (const auto& c : prepared.to_stop) {
      out += " " + c.name;
    }
    out += "\n";
  }
  if (prepared.existing) {
    out += fmt::format("  replaces the container {} ({}), kept as {}-old until the new one answers\n", s.name,
                       prepared.existing->id.substr(0, 12), s.name);
  }
  for (const auto& p : prepared.problems) {
    out += "  note: " + p + "\n";
  }
  return out;
}

nlohmann::json prepared_to_json(const engine::PreparedDeployment& prepared) {
  const auto& s = prepared.spec;
  const auto& a = prepared.admission;
  auto held = [](const std::vector<HeldMemory>& list) {
    auto out = nlohmann::json::array();
    for (const auto& h : list) {
      out.push_back({{"name", h.name}, {"bytes", h.bytes}, {"basis", to_string(h.basis)}, {"protect", h.protect}});
    }
    return out;
  };
  auto to_stop = nlohmann::json::array();
  for (const auto& c : prepared.to_stop) {
    to_stop.push_back(c.name);
  }
  return {{"name", s.name},
          {"profile", s.profile.name},
          {"image", s.image},
          {"models", s.profile.models},
          {"memory_bytes", s.memory_limit},
          {"memory_swap_bytes", s.memory_limit},
          {"seed_limit_bytes", opt(s.profile.seed_limit_bytes)},
          {"ram_needed_bytes", prepared.plan ? nlohmann::json(prepared.plan->ram_needed) : nlohmann::json(nullptr)},
          {"gpus", to_string(s.gpu)},
          {"network", to_string(s.network)},
          {"port", s.profile.port},
          {"store_volume", s.store_volume},
          {"env", s.env},
          {"labels", s.labels},
          {"replaces", prepared.existing ? nlohmann::json(prepared.existing->id) : nlohmann::json(nullptr)},
          {"stops", to_stop},
          {"admission",
           {{"admitted", a.admitted()},
            {"ram_total_bytes", a.ram_total},
            {"reserve_bytes", a.reserve},
            {"held_bytes", a.held},
            {"shortfall_bytes", a.shortfall},
            {"counted", held(a.counted)},
            {"would_free", held(a.would_free)},
            {"disk_needed_bytes", a.disk_needed},
            {"disk_available_bytes", opt(a.disk_available)}}},
          {"problems", prepared.problems}};
}

std::string render_report(const engine::DeployReport& report) {
  std::string out;
  for (const auto& step : report.steps) {
    out +=
        fmt::format("  {} {}{}\n", step.ok ? "ok  " : "FAIL", step.name, step.detail.empty() ? "" : ": " + step.detail);
  }
  out += fmt::format("deployed: {} answers at {}\n", report.container_id.substr(0, 12), report.api_url);
  if (!report.stopped.empty()) {
    out += "stopped for it (memwarden deploy --restore starts them again):";
    for (const auto& name : report.stopped) {
      out += " " + name;
    }
    out += "\n";
  }
  return out;
}

nlohmann::json report_to_json(const engine::DeployReport& report) {
  auto steps = nlohmann::json::array();
  for (const auto& s : report.steps) {
    steps.push_back({{"name", s.name}, {"detail", s.detail}, {"ok", s.ok}});
  }
  return {{"container_id", report.container_id},
          {"api_url", report.api_url},
          {"steps", steps},
          {"stopped", report.stopped},
          {"journal_id", report.journal_id ? nlohmann::json(*report.journal_id) : nlohmann::json(nullptr)}};
}

std::string render_load(const std::vector<engine::LoadComparison>& loads) {
  std::string out = fmt::format("{:<28} {:>12} {:>12} {:>12} {:>12} {:>12} {:>8}\n", "MODEL", "PLAN RAM", "PLAN VRAM",
                                "PS SIZE", "PS VRAM", "CONTAINER", "LOAD");
  for (const auto& l : loads) {
    out += fmt::format("{:<28} {:>12} {:>12} {:>12} {:>12} {:>12} {:>7.1f}s\n", l.model, format_bytes(l.planned_ram),
                       format_bytes(l.planned_vram), bytes_or_dash(l.size), bytes_or_dash(l.size_vram),
                       bytes_or_dash(l.container_bytes), l.load_seconds);
    if (l.error) {
      out += "  " + *l.error + "\n";
    }
  }
  return out;
}

nlohmann::json load_to_json(const std::vector<engine::LoadComparison>& loads) {
  auto out = nlohmann::json::array();
  for (const auto& l : loads) {
    out.push_back({{"model", l.model},
                   {"planned_ram_bytes", l.planned_ram},
                   {"planned_vram_bytes", l.planned_vram},
                   {"limit_bytes", l.limit},
                   {"ps_size_bytes", opt(l.size)},
                   {"ps_size_vram_bytes", opt(l.size_vram)},
                   {"container_bytes", opt(l.container_bytes)},
                   {"load_seconds", l.load_seconds},
                   {"error", l.error ? nlohmann::json(*l.error) : nlohmann::json(nullptr)}});
  }
  return out;
}

}  // namespace mw::cli
