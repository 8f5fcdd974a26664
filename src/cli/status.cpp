#include "cli/status.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "core/bytes.hpp"

namespace mw::cli {

using engine::StatusResult;
using nlohmann::json;

// ---------------------------------------------------------------- table

namespace {

std::string opt_bytes(const std::optional<std::uint64_t>& v) {
  return v ? format_bytes(*v) : "-";
}

std::string fit(std::string_view text, std::size_t width) {
  if (text.size() <= width) {
    return std::string(text);
  }
  return std::string(text.substr(0, width - 1)) + "~";
}

std::string container_name_for(const StatusReport& report, const std::optional<std::string>& id) {
  if (!id) {
    return "host";
  }
  for (const auto& c : report.containers) {
    if (c.meta.id == *id) {
      return c.meta.name;
    }
  }
  return id->substr(0, 12);
}

void render_host(const StatusReport& r, std::string& out) {
  out += "HOST MEMORY\n";
  if (const auto& mi = r.host.meminfo) {
    out += fmt::format("  total {}   used {}   available {}   page cache {}\n", opt_bytes(mi->mem_total),
                       opt_bytes(mi->used()), opt_bytes(mi->mem_available), opt_bytes(mi->cached));
    std::string swap = "none configured";
    if (mi->swap_total && *mi->swap_total > 0) {
      swap = fmt::format("{} used of {}", opt_bytes(mi->swap_used()), format_bytes(*mi->swap_total));
    } else if (!mi->swap_total) {
      swap = "-";
    }
    std::string psi = "not available on this kernel";
    if (r.host.pressure) {
      const auto line = [](const std::optional<PressureLine>& l) {
        return l ? fmt::format("{:.1f}%", l->avg10) : std::string("-");
      };
      psi = fmt::format("some {} full {} (avg10)", line(r.host.pressure->some), line(r.host.pressure->full));
    } else if (r.host.pressure_supported) {
      psi = "unreadable";
    }
    out += fmt::format("  swap  {}   PSI memory {}\n", swap, psi);
  } else {
    out += "  host memory unavailable (see problems below)\n";
  }
}

void render_containers(const StatusResult& result, std::string& out) {
  const auto& r = result.report;
  out += "\n";
  if (!r.docker.reachable || r.docker.error) {
    out += fmt::format("CONTAINERS  unavailable: {}\n", r.docker.error ? r.docker.error->line() : "not queried");
    if (!r.docker.hint.empty()) {
      out += fmt::format("            {}\n", r.docker.hint);
    }
    return;
  }
  out += fmt::format("CONTAINERS  {} via {} (API {}, cgroup {})\n", r.containers.size(), r.docker.endpoint,
                     r.docker.api_version, result.cgroup_mode ? probes::to_string(*result.cgroup_mode) : "-");
  if (r.containers.empty()) {
    out += "  no containers running\n";
    return;
  }
  // 20+1+20+1+10+1+9+1+9+1+9+1+5+1+4+1+4 = 98 columns
  out += fmt::format("{:<20} {:<20} {:>10} {:>9} {:>9} {:>9} {:>5} {:>4} {:>4}\n", "NAME", "IMAGE", "LIMIT", "WORKSET",
                     "ANON", "CACHE", "%LIM", "OOM", "RST");
  for (const auto& c : r.containers) {
    const auto& m = c.memory;
    std::string limit = "-";
    if (c.meta.state.running) {
      if (m && m->limit) {
        limit = m->limit->is_unlimited() ? "UNLIMITED" : format_bytes(*m->limit->bytes);
      } else if (!c.meta.memory_limit) {
        limit = "UNLIMITED";
      } else {
        limit = format_bytes(*c.meta.memory_limit);
      }
    } else {
      limit = c.meta.state.status.empty() ? "stopped" : c.meta.state.status;
    }
    const auto pct = m ? m->percent_of_limit() : std::nullopt;
    const auto oom =
        m && m->oom_kills ? std::to_string(*m->oom_kills) : std::string(c.meta.state.oom_killed ? "yes" : "-");
    out += fmt::format("{:<20} {:<20} {:>10} {:>9} {:>9} {:>9} {:>5} {:>4} {:>4}\n", fit(c.meta.name, 20),
                       fit(c.meta.image, 20), fit(limit, 10), m ? opt_bytes(m->working_set()) : "-",
                       m ? opt_bytes(m->anon) : "-", m ? opt_bytes(m->file) : "-",
                       pct ? fmt::format("{:.0f}%", *pct) : "-", oom, c.meta.restart_count);
  }
}

void render_gpus(const StatusReport& r, std::string& out) {
  out += "\n";
  const auto& g = r.gpu;
  if (g.availability != GpuAvailability::available) {
    out += fmt::format("GPUS  {}\n", g.message);
    return;
  }
  if (g.gpus.empty()) {
    out += "GPUS  NVML found no GPU\n";
    return;
  }
  out += "GPUS\n";
  out += fmt::format("{:<3} {:<28} {:>21} {:>5} {:>5}  {}\n", "#", "NAME", "VRAM USED / TOTAL", "TEMP", "UTIL",
                     "PROCESSES");
  for (const auto& gpu : g.gpus) {
    std::string procs;
    for (const auto& p : gpu.processes) {
      if (!procs.empty()) {
        procs += ", ";
      }
      procs += fmt::format("{} {}", container_name_for(r, p.container_id), opt_bytes(p.used_bytes));
    }
    out += fmt::format("{:<3} {:<28} {:>21} {:>5} {:>5}  {}\n", gpu.index, fit(gpu.name, 28),
                       fmt::format("{} / {}", opt_bytes(gpu.memory_used), opt_bytes(gpu.memory_total)),
                       gpu.temperature_c ? fmt::format("{}C", *gpu.temperature_c) : "-",
                       gpu.utilisation_pct ? fmt::format("{}%", *gpu.utilisation_pct) : "-",
                       fit(procs.empty() ? "-" : procs, 30));
  }
}

}  // namespace

std::string render_status_table(const StatusResult& result) {
  std::string out;
  render_host(result.report, out);
  render_containers(result, out);
  render_gpus(result.report, out);
  if (!result.warnings.empty()) {
    out += "\nWARNINGS\n";
    for (const auto& w : result.warnings) {
      out += fmt::format("  ! {}\n", w.text);
    }
  }
  if (!result.report.problems.empty()) {
    out += "\nPROBLEMS (these parts of the report are missing)\n";
    for (const auto& p : result.report.problems) {
      out += fmt::format("  {}\n", p.line());
    }
  }
  return out;
}

// ---------------------------------------------------------------- JSON

namespace {

template <class T>
json or_null(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

json pressure_json(const std::optional<Pressure>& p) {
  if (!p) {
    return nullptr;
  }
  const auto line = [](const std::optional<PressureLine>& l) -> json {
    if (!l) {
      return nullptr;
    }
    return {{"avg10", l->avg10}, {"avg60", l->avg60}, {"avg300", l->avg300}, {"total_us", l->total_us}};
  };
  return {{"some", line(p->some)}, {"full", line(p->full)}};
}

json host_json(const HostSnapshot& h) {
  json memory = nullptr;
  if (const auto& mi = h.meminfo) {
    memory = {{"total_bytes", or_null(mi->mem_total)},         {"used_bytes", or_null(mi->used())},
              {"available_bytes", or_null(mi->mem_available)}, {"free_bytes", or_null(mi->mem_free)},
              {"buffers_bytes", or_null(mi->buffers)},         {"cached_bytes", or_null(mi->cached)},
              {"anon_bytes", or_null(mi->anon_pages)},         {"shmem_bytes", or_null(mi->shmem)},
              {"swap_total_bytes", or_null(mi->swap_total)},   {"swap_used_bytes", or_null(mi->swap_used())}};
  }
  json vmstat = nullptr;
  if (const auto& vs = h.vmstat) {
    vmstat = {{"pswpin", or_null(vs->pswpin)},
              {"pswpout", or_null(vs->pswpout)},
              {"pgmajfault", or_null(vs->pgmajfault)},
              {"oom_kill", or_null(vs->oom_kill)}};
  }
  return {{"memory", memory},
          {"psi_supported", h.pressure_supported},
          {"psi", pressure_json(h.pressure)},
          {"vmstat", vmstat}};
}

json container_json(const ContainerSnapshot& c) {
  const auto& meta = c.meta;
  const bool gpu = std::any_of(meta.device_requests.begin(), meta.device_requests.end(),
                               [](const DeviceRequest& d) { return d.requests_gpu(); });
  json memory = nullptr;
  if (const auto& m = c.memory) {
    json limit = nullptr;
    json unlimited = nullptr;
    if (m->limit) {
      limit = or_null(m->limit->bytes);
      unlimited = m->limit->is_unlimited();
    }
    memory = {{"cgroup_version", to_string(m->version)},
              {"cgroup_path", m->path},
              {"usage_bytes", or_null(m->usage)},
              {"limit_bytes", limit},
              {"unlimited", unlimited},
              {"working_set_bytes", or_null(m->working_set())},
              {"anon_bytes", or_null(m->anon)},
              {"file_bytes", or_null(m->file)},
              {"file_mapped_bytes", or_null(m->file_mapped)},
              {"shmem_bytes", or_null(m->shmem)},
              {"active_file_bytes", or_null(m->active_file)},
              {"inactive_file_bytes", or_null(m->inactive_file)},
              {"swap_bytes", or_null(m->swap)},
              {"peak_bytes", or_null(m->peak)},
              {"percent_of_limit", or_null(m->percent_of_limit())},
              {"limit_hits", or_null(m->limit_hits)},
              {"oom_events", or_null(m->oom_events)},
              {"oom_kills", or_null(m->oom_kills)},
              {"pressure", pressure_json(m->pressure)}};
  }
  return {{"id", meta.id},
          {"name", meta.name},
          {"image", meta.image},
          {"labels", meta.labels},
          {"state", meta.state.status},
          {"running", meta.state.running},
          {"pid", meta.state.pid > 0 ? json(meta.state.pid) : json(nullptr)},
          {"started_at", meta.state.started_at},
          {"oom_killed", meta.state.oom_killed},
          {"restart_count", meta.restart_count},
          {"restart_policy", meta.restart_policy.name},
          {"memory_limit_bytes", or_null(meta.memory_limit)},
          {"memory_swap_bytes", or_null(meta.memory_swap)},
          {"gpu_requested", gpu},
          {"memory", memory},
          {"memory_error", c.memory_error ? json(c.memory_error->line()) : json(nullptr)},
          {"advised_limit_bytes", or_null(c.advised_limit)},
          {"advised_limit_basis", c.advised_basis.empty() ? json(nullptr) : json(c.advised_basis)}};
}

json gpu_json(const StatusReport& r) {
  const auto& g = r.gpu;
  const char* status = g.availability == GpuAvailability::available    ? "available"
                       : g.availability == GpuAvailability::no_library ? "no_driver"
                                                                       : "failed";
  json devices = json::array();
  for (const auto& gpu : g.gpus) {
    json procs = json::array();
    for (const auto& p : gpu.processes) {
      json name = nullptr;
      if (p.container_id) {
        for (const auto& c : r.containers) {
          if (c.meta.id == *p.container_id) {
            name = c.meta.name;
          }
        }
      }
      procs.push_back({{"pid", p.pid},
                       {"used_bytes", or_null(p.used_bytes)},
                       {"container_id", or_null(p.container_id)},
                       {"container_name", name}});
    }
    devices.push_back({{"index", gpu.index},
                       {"name", gpu.name},
                       {"memory_total_bytes", or_null(gpu.memory_total)},
                       {"memory_used_bytes", or_null(gpu.memory_used)},
                       {"memory_free_bytes", or_null(gpu.memory_free)},
                       {"temperature_c", or_null(gpu.temperature_c)},
                       {"power_w", or_null(gpu.power_w)},
                       {"utilisation_percent", or_null(gpu.utilisation_pct)},
                       {"memory_utilisation_percent", or_null(gpu.memory_utilisation_pct)},
                       {"processes", procs}});
  }
  return {{"status", status}, {"message", g.message.empty() ? json(nullptr) : json(g.message)}, {"devices", devices}};
}

}  // namespace

json status_to_json(const StatusResult& result) {
  const auto& r = result.report;
  json containers = json::array();
  for (const auto& c : r.containers) {
    containers.push_back(container_json(c));
  }
  json warnings = json::array();
  for (const auto& w : result.warnings) {
    warnings.push_back({{"kind", to_string(w.kind)}, {"subject", w.subject}, {"text", w.text}});
  }
  json problems = json::array();
  for (const auto& p : r.problems) {
    problems.push_back({{"source", p.source}, {"message", p.message}});
  }
  return {{"schema", "memwarden.status/1"},
          {"host", host_json(r.host)},
          {"cgroup_mode", result.cgroup_mode ? json(probes::to_string(*result.cgroup_mode)) : json(nullptr)},
          {"docker",
           {{"reachable", r.docker.reachable},
            {"endpoint", r.docker.endpoint},
            {"api_version", r.docker.api_version.empty() ? json(nullptr) : json(r.docker.api_version)},
            {"error", r.docker.error ? json(r.docker.error->line()) : json(nullptr)},
            {"hint", r.docker.hint.empty() ? json(nullptr) : json(r.docker.hint)}}},
          {"containers", containers},
          {"gpus", gpu_json(r)},
          {"warnings", warnings},
          {"problems", problems}};
}

}  // namespace mw::cli
