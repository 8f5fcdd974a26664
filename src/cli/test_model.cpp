#include "cli/test_model.hpp"

#include <cmath>
#include <ctime>
#include <map>

#include <fmt/format.h>

#include "cli/plan.hpp"
#include "core/bytes.hpp"

namespace mw::cli {

namespace {

using engine::ModelTestResult;
using engine::ModelTestRun;

nlohmann::json optional_json(const auto& value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

std::string bytes_or_dash(const std::optional<std::uint64_t>& b) {
  return b ? format_bytes(*b) : "-";
}

std::string percent(const std::optional<double>& p) {
  return p ? fmt::format("{:+.1f}%", *p) : "-";
}

void render_load(const engine::LoadMeasurement& m, std::string& out) {
  if (m.error) {
    out += fmt::format("  load     failed after {:.2f} s: {}\n", m.load_seconds, *m.error);
    return;
  }
  if (m.ps_error) {
    out += "  /api/ps  " + *m.ps_error + "\n";
  }
  if (!m.evicted.empty()) {
    std::string names;
    for (const auto& n : m.evicted) {
      names += (names.empty() ? "" : ", ") + n;
    }
    out += fmt::format(
        "  note     the server unloaded {} to make room: the container's change is not this model's "
        "alone, so RAM is not measured\n",
        names);
  }
  out += fmt::format("  load     {:.2f} s, {}, /api/ps size {} (VRAM {}){}\n", m.load_seconds,
                     m.processor.empty() ? "-" : m.processor, bytes_or_dash(m.ps_size), bytes_or_dash(m.ps_vram),
                     m.context_length ? fmt::format(", context {}", *m.context_length) : std::string());
  out += fmt::format("  memory   container anon {} → {}, mapped files {} → {} (page cache {} → {})\n",
                     bytes_or_dash(m.before.anon), bytes_or_dash(m.loaded.anon), bytes_or_dash(m.before.mapped),
                     bytes_or_dash(m.loaded.mapped), bytes_or_dash(m.before.file), bytes_or_dash(m.loaded.file));
  out += fmt::format("  {:<26} {:>10} {:>10} {:>8}\n", "ESTIMATE", "PLANNED", "MEASURED", "ERROR");
  for (const auto& c : m.checks) {
    std::string verdict;
    if (!c.measured) {
      verdict = "not measured";
    } else if (c.role == CheckRole::compares) {
      verdict = "the server's own estimate";
    } else {
      verdict = fmt::format("{} the plan's band {} to {}", c.within ? "within" : "OFF: outside", format_bytes(c.low),
                            format_bytes(c.high));
    }
    out += fmt::format("  {:<26} {:>10} {:>10} {:>8}  {}\n", c.what, format_bytes(c.planned), bytes_or_dash(c.measured),
                       percent(c.error_percent), verdict);
  }
  if (m.after_load == engine::AfterLoad::keep) {
    out += "  unload   kept loaded (--keep), for the server's default keep_alive\n";
    if (m.unload_error) {
      out += "  note     " + *m.unload_error + "\n";
    }
    return;
  }
  if (m.unload_error) {
    out += "  unload   " + *m.unload_error + "\n";
  }
  switch (m.unload.verdict) {
    case UnloadVerdict::returned:
      out += fmt::format("  unload   memory returned: anon {} after, {} before the load\n", bytes_or_dash(m.after.anon),
                         bytes_or_dash(m.before.anon));
      break;
    case UnloadVerdict::kept:
      out += fmt::format(
          "  unload   FINDING: the server keeps {} with the model unloaded (anon {} after, {} before "
          "the load); `memwarden diagnose` and `memwarden fix` deal with it\n",
          bytes_or_dash(m.unload.kept), bytes_or_dash(m.after.anon), bytes_or_dash(m.before.anon));
      break;
    case UnloadVerdict::unknown:
      if (!m.unload_error) {
        out += "  unload   done; the memory that came back is not known (not measured)\n";
      }
      break;
  }
}

nlohmann::json load_json(const engine::LoadMeasurement& m) {
  nlohmann::json checks = nlohmann::json::array();
  for (const auto& c : m.checks) {
    checks.push_back({{"what", c.what},
                      {"role", c.role == CheckRole::decides ? "decides" : "compares"},
                      {"planned_bytes", c.planned},
                      {"band_low_bytes", c.low},
                      {"band_high_bytes", c.high},
                      {"measured_bytes", optional_json(c.measured)},
                      {"error_percent", optional_json(c.error_percent)},
                      {"within_tolerance", c.measured ? nlohmann::json(c.within) : nlohmann::json(nullptr)}});
  }
  const auto memory = [](const engine::ContainerMemoryNow& n) {
    return nlohmann::json{{"anon_bytes", optional_json(n.anon)},
                          {"mapped_file_bytes", optional_json(n.mapped)},
                          {"page_cache_bytes", optional_json(n.file)}};
  };
  return {{"error", optional_json(m.error)},
          {"lack_of_memory", m.lack_of_memory},
          {"ps_error", optional_json(m.ps_error)},
          {"evicted", m.evicted},
          {"load_seconds", m.load_seconds},
          {"ps_size_bytes", optional_json(m.ps_size)},
          {"ps_vram_bytes", optional_json(m.ps_vram)},
          {"context_length", optional_json(m.context_length)},
          {"processor", m.processor.empty() ? nlohmann::json(nullptr) : nlohmann::json(m.processor)},
          {"container_before", memory(m.before)},
          {"container_loaded", memory(m.loaded)},
          {"container_after_unload", memory(m.after)},
          {"oom_kills", optional_json(m.oom_kills)},
          {"checks", checks},
          {"kept", m.after_load == engine::AfterLoad::keep},
          {"unload",
           {{"verdict", to_string(m.unload.verdict)},
            {"kept_bytes", optional_json(m.unload.kept)},
            {"error", optional_json(m.unload_error)}}},
          {"not_stored", optional_json(m.stored)}};
}

}  // namespace

std::string render_model_test(const ModelTestResult& r) {
  std::string out = render_plan(r.plan);
  out += "\nreadiness";
  if (r.server) {
    out += fmt::format(" (server {}{})", r.server->name,
                       r.server->name == r.server->url ? std::string() : " at " + r.server->url);
  }
  out += "\n";
  for (const auto& run : r.runs) {
    out += "\n" + run.model + "\n";
    if (run.plan_error) {
      out += "  not found or not sized: " + run.plan_error->line() + "\n";
      continue;
    }
    const auto yes_no = [](bool fits) { return fits ? "fits" : "DOES NOT FIT"; };
    out += fmt::format("  now      RAM {} ({} needed), VRAM {} ({}), disk {}\n", yes_no(run.ram_fits),
                       format_bytes(run.plan->ram_needed), yes_no(run.vram_fits),
                       format_bytes(run.plan->placement.vram), yes_no(run.disk_fits));
    if (run.not_loaded) {
      out += "  load     " + *run.not_loaded + "\n";
    }
    if (run.load) {
      render_load(*run.load, out);
    }
  }
  for (const auto& note : r.notes) {
    out += "note: " + note + "\n";
  }
  if (r.interrupted) {
    out += "interrupted\n";
  }
  return out;
}

nlohmann::json model_test_to_json(const ModelTestResult& r) {
  nlohmann::json runs = nlohmann::json::array();
  for (const auto& run : r.runs) {
    nlohmann::json j = {{"model", run.model},
                        {"error", run.plan_error ? nlohmann::json(run.plan_error->line()) : nlohmann::json(nullptr)}};
    if (run.plan) {
      j["fits_now"] = {{"ram", run.ram_fits}, {"vram", run.vram_fits}, {"disk", run.disk_fits}};
      j["planned"] = {{"ram_needed_bytes", run.plan->ram_needed},
                      {"model_ram_bytes", run.plan->placement.ram_resident + run.plan->placement.ram_page_cache},
                      {"vram_bytes", run.plan->placement.vram},
                      {"disk_needed_bytes", run.plan->disk_needed},
                      {"layers_total", run.plan->placement.layers_total},
                      {"layers_on_gpu", run.plan->placement.layers_on_gpu}};
    }
    j["not_loaded"] = optional_json(run.not_loaded);
    j["load"] = run.load ? load_json(*run.load) : nlohmann::json(nullptr);
    runs.push_back(std::move(j));
  }
  nlohmann::json server = nullptr;
  if (r.server) {
    server = {{"name", r.server->name},
              {"url", r.server->url},
              {"container_id",
               r.server->container_id.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.server->container_id)},
              {"memory_limit_bytes", optional_json(r.server->memory_limit)}};
  }
  return {{"schema", "memwarden.test-model/1"},
          {"tolerance", {{"percent", k_plan_tolerance.percent}, {"bytes", k_plan_tolerance.bytes}}},
          {"server", server},
          {"plan", plan_to_json(r.plan)},
          {"models", runs},
          {"notes", r.notes},
          {"interrupted", r.interrupted},
          {"exit_code", static_cast<int>(engine::model_test_exit(r))}};
}

namespace {

std::string local_time(std::int64_t at_ms) {
  const std::time_t t = static_cast<std::time_t>(at_ms / 1000);
  std::tm tm{};
  if (localtime_r(&t, &tm) == nullptr) {
    return "-";
  }
  char buf[32];
  return std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm) > 0 ? std::string(buf) : std::string("-");
}

std::optional<double> ram_error(const adapters::EstimateRecord& r) {
  if (!r.measured_ram || r.planned_ram == 0) {
    return std::nullopt;
  }
  return (static_cast<double>(*r.measured_ram) - static_cast<double>(r.planned_ram)) /
         static_cast<double>(r.planned_ram) * 100.0;
}

}  // namespace

std::string render_estimate_history(const std::vector<adapters::EstimateRecord>& records) {
  if (records.empty()) {
    return "no model loads stored yet: run `memwarden test model NAME --load`\n";
  }
  std::string out = fmt::format("{:<16} {:<24} {:<12} {:>10} {:>10} {:>8} {:>8} {:>10}\n", "WHEN", "MODEL", "SERVER",
                                "PLANNED", "MEASURED", "ERROR", "LOAD", "KEPT");
  struct Sum {
    double total = 0;
    double worst = 0;
    int count = 0;
  };
  std::map<std::string, Sum> by_model;
  for (const auto& r : records) {
    const auto error = ram_error(r);
    out +=
        fmt::format("{:<16} {:<24} {:<12} {:>10} {:>10} {:>8} {:>8} {:>10}\n", local_time(r.at_ms), r.model, r.server,
                    format_bytes(r.planned_ram), bytes_or_dash(r.measured_ram), percent(error),
                    r.load_seconds ? fmt::format("{:.1f}s", *r.load_seconds) : "-", bytes_or_dash(r.kept_after_unload));
    if (error) {
      auto& s = by_model[r.model];
      s.total += *error;
      s.worst = std::fabs(*error) > std::fabs(s.worst) ? *error : s.worst;
      ++s.count;
    }
  }
  if (!by_model.empty()) {
    out += "\nthe plan's RAM error on this host, per model (mean, largest):\n";
    for (const auto& [model, s] : by_model) {
      out += fmt::format("  {:<24} {:+.1f}%  {:+.1f}%  ({} load{})\n", model, s.total / s.count, s.worst, s.count,
                         s.count == 1 ? "" : "s");
    }
  }
  return out;
}

nlohmann::json estimate_history_to_json(const std::vector<adapters::EstimateRecord>& records) {
  nlohmann::json loads = nlohmann::json::array();
  for (const auto& r : records) {
    loads.push_back({{"at_ms", r.at_ms},
                     {"model", r.model},
                     {"server", r.server},
                     {"quantization", r.quantization},
                     {"num_ctx", optional_json(r.num_ctx)},
                     {"planned_ram_bytes", r.planned_ram},
                     {"planned_vram_bytes", r.planned_vram},
                     {"measured_ram_bytes", optional_json(r.measured_ram)},
                     {"ram_error_percent", optional_json(ram_error(r))},
                     {"server_size_bytes", optional_json(r.server_size)},
                     {"server_vram_bytes", optional_json(r.server_vram)},
                     {"load_seconds", optional_json(r.load_seconds)},
                     {"kept_after_unload_bytes", optional_json(r.kept_after_unload)}});
  }
  return {{"schema", "memwarden.test-history/1"}, {"loads", loads}};
}

}  // namespace mw::cli
