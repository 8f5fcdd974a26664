#include "engine/status.hpp"

#include "engine/inventory.hpp"
#include "probes/cgroup.hpp"
#include "probes/gpu.hpp"
#include "probes/host_memory.hpp"

namespace mw::engine {

HostSnapshot read_host(const probes::HostRoot& root, std::vector<Error>& problems) {
  HostSnapshot host;
  if (auto meminfo = probes::read_meminfo(root)) {
    host.meminfo = *meminfo;
  } else {
    problems.push_back(meminfo.error());
  }
  if (auto psi = probes::read_host_pressure(root)) {
    host.pressure_supported = psi->has_value();
    host.pressure = *psi;
  } else {
    host.pressure_supported = true;  // there, but unreadable this time
    problems.push_back(psi.error());
  }
  if (auto vmstat = probes::read_vmstat(root)) {
    host.vmstat = *vmstat;
  } else {
    problems.push_back(vmstat.error());
  }
  return host;
}

namespace {

void collect_containers(const StatusOptions& options, StatusResult& result) {
  auto& report = result.report;
  InventoryOptions io;
  io.root = options.root;
  io.docker_host = options.docker_host;
  io.timeout = options.docker_timeout;
  io.scope = options.scope;
  io.read_memory = true;  // read on the inspecting threads, while the engine answers the other inspects
  auto inv = read_inventory(io);
  report.docker = inv.docker;
  if (!inv.docker.reachable) {
    return;
  }
  if (inv.layout) {
    result.cgroup_mode = inv.layout->mode;
  }
  report.problems.insert(report.problems.end(), inv.problems.begin(), inv.problems.end());
  for (auto& meta : inv.containers) {
    ContainerSnapshot snap;
    snap.meta = std::move(meta);
    if (!snap.meta.state.running) {
      report.containers.push_back(std::move(snap));  // a stopped container has no cgroup
      continue;
    }
    if (const auto read = inv.memory.find(snap.meta.id); read != inv.memory.end()) {
      if (auto& memory = read->second.memory) {
        snap.memory = std::move(memory).value();
      } else {
        snap.memory_error = memory.error();
      }
      for (auto& p : read->second.problems) {
        report.problems.push_back(std::move(p));
      }
    } else if (const auto why = inv.cgroup_errors.find(snap.meta.id); why != inv.cgroup_errors.end()) {
      snap.memory_error = why->second;
    }
    if (snap.memory_error) {
      report.problems.push_back(*snap.memory_error);
    }
    report.containers.push_back(std::move(snap));
  }
  sort_by_working_set(report.containers);
}

}  // namespace

StatusResult collect_status(const StatusOptions& options) {
  StatusResult result;
  result.report.host = read_host(options.root, result.report.problems);
  collect_containers(options, result);
  probes::NvmlOptions nvml;
  nvml.library = options.nvml_library;
  result.report.gpu = probes::read_gpus(options.root, nvml);
  LimitAdviceOptions lo;
  lo.root = options.root;
  lo.reserve = options.thresholds.reserve_bytes;
  lo.api_timeout = options.api_timeout;
  lo.nvml_library = options.nvml_library;
  lo.plan = options.plan_limit;
  advise_unlimited(result.report, lo);
  result.warnings = evaluate_status(result.report, options.thresholds);
  return result;
}

StatusExit status_exit_code(const StatusResult& result) {
  const auto& r = result.report;
  if (!r.docker.reachable || r.docker.error || !r.problems.empty() || !r.host.meminfo) {
    return StatusExit::partial;
  }
  return StatusExit::ok;
}

}  // namespace mw::engine
