#include "cli/plan.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "adapters/docker.hpp"
#include "adapters/ollama.hpp"
#include "core/bytes.hpp"
#include "core/catalog.hpp"
#include "core/discovery.hpp"
#include "core/ollama_name.hpp"
#include "probes/gguf_file.hpp"
#include "probes/gpu.hpp"
#include "probes/host_memory.hpp"
#include "probes/ollama_store.hpp"

namespace mw::cli {

using engine::PlanResult;

namespace {

// ---------------------------------------------------------------- text

std::string processor(const Placement& p) {
  // `ollama ps` (cmd/cmd.go): 100% CPU, 100% GPU, or round(cpu share)%/rest% CPU/GPU.
  if (p.vram == 0) {
    return "100% CPU";
  }
  const auto gpu = p.gpu_fraction();
  if (gpu >= 1.0) {
    return "100% GPU";
  }
  const auto cpu = static_cast<int>(std::lround((1.0 - gpu) * 100));
  return fmt::format("{}%/{}% CPU/GPU", cpu, 100 - cpu);
}

// A placement whose KV cache and graph are unknown is a lower bound, and says so.
const char* at_least(const Placement& p) {
  return p.cache_known ? "" : "at least: ";
}

std::string verdict_line(FitVerdict v, const Placement& p) {
  switch (v) {
    case FitVerdict::gpu:
      return fmt::format("fits on the GPU: {}/{} layers (100% GPU)", p.layers_on_gpu, p.layers_total);
    case FitVerdict::split:
      if (p.experts_split) {
        return fmt::format("split: every layer's attention on the GPU, the experts of {}/{} layers too ({})",
                           p.layers_on_gpu, p.layers_total - 1, processor(p));
      }
      return fmt::format("split: {}/{} layers on the GPU ({})", p.layers_on_gpu, p.layers_total, processor(p));
    case FitVerdict::cpu:
      return fmt::format("CPU only: 0/{} layers on the GPU", p.layers_total);
    case FitVerdict::no_fit:
      return p.vram > 0 ? fmt::format("does not fit: the RAM side is too large even with {}/{} layers on the GPU",
                                      p.layers_on_gpu, p.layers_total)
                        : std::string("does not fit in RAM");
  }
  return "?";
}

std::string docker_memory(std::uint64_t bytes) {
  return fmt::format("{}m", bytes >> 20);
}

void render_host(const PlanResult& r, std::string& out) {
  const auto& h = r.host;
  out += "Host\n";
  if (h.ram_total) {
    out += fmt::format("  RAM    {} total, {} available, {} reserved for other services: {} for models\n",
                       format_bytes(*h.ram_total), format_bytes(h.ram_available), format_bytes(h.reserve),
                       format_bytes(h.ram_usable()));
  } else {
    out += "  RAM    unknown\n";
  }
  for (const auto& g : h.gpus) {
    out += fmt::format("  {}: {} total, {} free\n", g.name, format_bytes(g.total), format_bytes(g.free));
  }
  if (h.disk_available && r.disk_path) {
    out += fmt::format("  disk   {} free at {}\n", format_bytes(*h.disk_available), *r.disk_path);
  }
  for (const auto& s : r.servers) {
    out += fmt::format("  Ollama container {}: memory limit {}, store {}\n", s.name,
                       s.memory_limit ? format_bytes(*s.memory_limit) : std::string("none"),
                       s.store ? *s.store : std::string("not on a volume or bind mount"));
  }
  for (const auto& n : r.host_notes) {
    out += "  - " + n + "\n";
  }
}

void render_model(const ModelPlan& p, const PlanModel& m, const PlanResult& r, std::string& out) {
  const auto& host = r.host;
  const auto& pl = p.placement;
  out += fmt::format("\n{}\n", p.name);
  out += fmt::format("  from       {}\n", p.source);
  out += fmt::format("  settings   {}context {} x {} slot{}, {} KV cache{}\n",
                     p.quantization.empty() ? "" : p.quantization + ", ", p.options.num_ctx, p.options.parallel,
                     p.options.parallel == 1 ? "" : "s", to_string(p.options.kv_type),
                     p.options.flash_attention ? ", flash attention" : "");
  out += fmt::format("  accuracy   {}\n", p.accuracy.text);
  out += fmt::format("  verdict    {}{}\n", at_least(pl), verdict_line(p.verdict, pl));
  if (pl.cache_known) {
    out += fmt::format("  weights    {}, KV cache {}, compute graph {}\n", format_bytes(pl.weights),
                       format_bytes(pl.kv), format_bytes(pl.full_offload() ? pl.graph.full : pl.graph.partial));
  } else {
    out += fmt::format("  weights    {}, KV cache unknown, compute graph unknown\n", format_bytes(pl.weights));
  }
  if (pl.vram > 0) {
    const auto* gpu = host.best_gpu();
    out += fmt::format("  VRAM       {}{}\n", format_bytes(pl.vram),
                       gpu == nullptr ? std::string() : fmt::format(" of {} free", format_bytes(gpu->free)));
  }
  out += fmt::format("  RAM        {}: {} mapped weights (page cache), {} resident, {} runtime\n",
                     format_bytes(p.ram_needed), format_bytes(pl.ram_page_cache), format_bytes(pl.ram_resident),
                     format_bytes(p.ram_needed - pl.ram_page_cache - pl.ram_resident));
  if (p.ram_short > 0) {
    out += fmt::format("             {} more RAM than the {} models may use\n", format_bytes(p.ram_short),
                       format_bytes(host.ram_usable()));
  }
  if (p.disk_needed > 0) {
    out += fmt::format("  disk       {} ({:.1f} GB, as `ollama list` counts) to download{}\n",
                       format_bytes(p.disk_needed), static_cast<double>(p.disk_needed) / 1e9,
                       host.disk_available ? fmt::format(" ({} free)", format_bytes(*host.disk_available)) : "");
  } else {
    out += fmt::format("  disk       {} on disk already\n", format_bytes(m.file_bytes));
  }
  if (p.verdict != FitVerdict::no_fit) {
    out += fmt::format("  container  memory limit {} (docker run --memory {}; the RAM need + headroom)\n",
                       format_bytes(p.container_limit), docker_memory(p.container_limit));
    if (r.servers.size() == 1) {
      const auto& s = r.servers.front();
      out += fmt::format("             {} has {} now\n", s.name,
                         s.memory_limit ? "a limit of " + format_bytes(*s.memory_limit) : std::string("no limit"));
    }
  }
  if (p.vram_full_offload) {
    const auto* gpu = host.best_gpu();
    const auto free = gpu == nullptr ? 0 : gpu->free;
    out += fmt::format("  all layers on the GPU would take {}{} of VRAM{}\n", pl.cache_known ? "" : "at least ",
                       format_bytes(*p.vram_full_offload),
                       *p.vram_full_offload > free
                           ? fmt::format(" ({} more than {})", format_bytes(*p.vram_full_offload - free),
                                         gpu == nullptr ? std::string("this host has") : std::string("is free"))
                           : std::string());
  }
  if (!p.suggestions.empty()) {
    out += "  to fit better:\n";
    for (const auto& s : p.suggestions) {
      out += fmt::format("    {:<20} {}{}: {}\n", s.change, at_least(s.placement), verdict_line(s.verdict, s.placement),
                         s.why);
    }
  }
  for (const auto& n : p.notes) {
    out += "  - " + n + "\n";
  }
}

void render_together(const PlanResult& r, std::string& out) {
  const auto& t = *r.together;
  out += "\nTogether\n";
  bool all_known = true;
  for (std::size_t i = 0; i < t.verdicts.size() && i < r.models.size(); ++i) {
    all_known = all_known && t.placements[i].cache_known;
    out += fmt::format("  {:<24} {}{}\n", r.models[i].name, at_least(t.placements[i]),
                       verdict_line(t.verdicts[i], t.placements[i]));
  }
  out += fmt::format("  {}RAM {}, VRAM {} loaded together\n", all_known ? "" : "at least: ", format_bytes(t.ram_needed),
                     format_bytes(t.vram_needed));
  out += "  " + t.advice + "\n";
}

nlohmann::json placement_json(const Placement& p) {
  const auto known = [&](std::uint64_t v) { return p.cache_known ? nlohmann::json(v) : nlohmann::json(nullptr); };
  return {{"layers_on_gpu", p.layers_on_gpu},
          {"layers_total", p.layers_total},
          {"processor", processor(p)},
          {"experts_split", p.experts_split},
          {"cache_known", p.cache_known},
          {"vram_bytes", p.vram},
          {"ram_resident_bytes", p.ram_resident},
          {"ram_page_cache_bytes", p.ram_page_cache},
          {"weights_bytes", p.weights},
          {"kv_bytes", known(p.kv)},
          {"graph_full_bytes", known(p.graph.full)},
          {"graph_partial_bytes", known(p.graph.partial)}};
}

template <class T>
nlohmann::json optional_json(const std::optional<T>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

}  // namespace

std::string render_plan(const PlanResult& r) {
  std::string out;
  render_host(r, out);
  for (std::size_t i = 0; i < r.plans.size(); ++i) {
    render_model(r.plans[i], r.models[i], r, out);
  }
  if (r.together) {
    render_together(r, out);
  }
  if (!r.errors.empty()) {
    out += "\n";
    for (const auto& e : r.errors) {
      out += "error: " + e.line() + "\n";
    }
  }
  return out;
}

nlohmann::json plan_to_json(const PlanResult& r) {
  const auto& h = r.host;
  nlohmann::json gpus = nlohmann::json::array();
  for (const auto& g : h.gpus) {
    gpus.push_back({{"name", g.name}, {"total_bytes", g.total}, {"free_bytes", g.free}});
  }
  nlohmann::json host = {{"ram_total_bytes", optional_json(h.ram_total)},
                         {"ram_available_bytes", h.ram_total ? nlohmann::json(h.ram_available) : nullptr},
                         {"reserve_bytes", h.reserve},
                         {"ram_usable_bytes", h.ram_total ? nlohmann::json(h.ram_usable()) : nullptr},
                         {"gpus", gpus},
                         {"disk_available_bytes", optional_json(h.disk_available)},
                         {"disk_path", optional_json(r.disk_path)},
                         {"notes", r.host_notes}};
  nlohmann::json models = nlohmann::json::array();
  for (std::size_t i = 0; i < r.plans.size(); ++i) {
    const auto& p = r.plans[i];
    nlohmann::json suggestions = nlohmann::json::array();
    for (const auto& s : p.suggestions) {
      suggestions.push_back({{"change", s.change},
                             {"why", s.why},
                             {"verdict", verdict_key(s.verdict)},
                             {"ram_needed_bytes", s.ram_needed},
                             {"placement", placement_json(s.placement)}});
    }
    models.push_back(
        {{"name", p.name},
         {"source", p.source},
         {"quantization", p.quantization.empty() ? nlohmann::json(nullptr) : nlohmann::json(p.quantization)},
         {"num_ctx", p.options.num_ctx},
         {"parallel", p.options.parallel},
         {"kv_type", to_string(p.options.kv_type)},
         {"flash_attention", p.options.flash_attention},
         {"verdict", verdict_key(p.verdict)},
         {"verdict_is_lower_bound", !p.placement.cache_known},
         {"accuracy",
          {{"basis", basis_key(p.accuracy.basis)},
           {"weights_exact", p.accuracy.weights_exact},
           {"cache_known", p.accuracy.cache_known},
           {"margin_percent", p.accuracy.cache_known ? nlohmann::json(p.accuracy.margin_percent) : nullptr},
           {"text", p.accuracy.text}}},
         {"architecture", r.models[i].shape.architecture},
         {"active_weights_bytes", r.models[i].shape.active_weight_bytes()},
         {"placement", placement_json(p.placement)},
         {"ram_needed_bytes", p.ram_needed},
         {"ram_short_bytes", p.ram_short},
         {"file_bytes", r.models[i].file_bytes},
         {"disk_needed_bytes", p.disk_needed},
         {"disk_short", p.disk_short},
         {"container_limit_bytes",
          p.verdict == FitVerdict::no_fit ? nlohmann::json(nullptr) : nlohmann::json(p.container_limit)},
         {"vram_full_offload_bytes", optional_json(p.vram_full_offload)},
         {"suggestions", suggestions},
         {"notes", p.notes}});
  }
  nlohmann::json errors = nlohmann::json::array();
  for (const auto& e : r.errors) {
    errors.push_back({{"source", e.source}, {"message", e.message}});
  }
  nlohmann::json together = nullptr;
  if (r.together) {
    const auto& t = *r.together;
    nlohmann::json verdicts = nlohmann::json::array();
    for (std::size_t i = 0; i < t.verdicts.size(); ++i) {
      verdicts.push_back({{"name", r.models[i].name},
                          {"verdict", verdict_key(t.verdicts[i])},
                          {"placement", placement_json(t.placements[i])}});
    }
    together = {{"fit", t.fit},
                {"models", verdicts},
                {"ram_needed_bytes", t.ram_needed},
                {"vram_needed_bytes", t.vram_needed},
                {"container_limit_together_bytes", optional_json(t.container_limit_together)},
                {"container_limit_exclusive_bytes", optional_json(t.container_limit_exclusive)},
                {"disk_needed_bytes", t.disk_needed},
                {"disk_short", t.disk_short},
                {"advice", t.advice}};
  }
  nlohmann::json servers = nlohmann::json::array();
  for (const auto& s : r.servers) {
    servers.push_back({{"name", s.name},
                       {"store", optional_json(s.store)},
                       {"memory_limit_bytes", optional_json(s.memory_limit)},
                       {"api_url", optional_json(s.api_url)},
                       {"num_ctx", optional_json(s.settings.num_ctx)},
                       {"parallel", optional_json(s.settings.parallel)},
                       {"kv_type", s.settings.kv_type ? nlohmann::json(to_string(*s.settings.kv_type)) : nullptr}});
  }
  return {{"host", host}, {"servers", servers}, {"models", models}, {"together", together}, {"errors", errors}};
}

}  // namespace mw::cli
