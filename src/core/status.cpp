#include "core/status.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "core/bytes.hpp"
#include "core/discovery.hpp"
#include "core/drift.hpp"

namespace mw {

const char* to_string(WarningKind kind) {
  switch (kind) {
    case WarningKind::unlimited_container:
      return "unlimited_container";
    case WarningKind::near_limit:
      return "near_limit";
    case WarningKind::oom_killed:
      return "oom_killed";
    case WarningKind::swap_in_use:
      return "swap_in_use";
    case WarningKind::low_available:
      return "low_available";
    case WarningKind::memory_pressure:
      return "memory_pressure";
  }
  return "unknown";
}

void sort_by_working_set(std::vector<ContainerSnapshot>& containers) {
  const auto working_set = [](const ContainerSnapshot& c) -> std::optional<std::uint64_t> {
    return c.memory ? c.memory->working_set() : std::nullopt;
  };
  std::stable_sort(containers.begin(), containers.end(), [&](const auto& a, const auto& b) {
    const auto wa = working_set(a);
    const auto wb = working_set(b);
    if (wa.has_value() != wb.has_value()) {
      return wa.has_value();
    }
    if (wa && *wa != *wb) {
      return *wa > *wb;
    }
    return a.meta.name < b.meta.name;
  });
}

namespace {

void container_warnings(const ContainerSnapshot& c, const StatusReport& report, const StatusThresholds& t,
                        std::vector<Warning>& out) {
  const auto& name = c.meta.name;
  const bool running = c.meta.state.running;
  const bool engine_unlimited = !c.meta.memory_limit.has_value();
  const bool cgroup_unlimited = c.memory && c.memory->limit && c.memory->limit->is_unlimited();
  if (running && engine_unlimited && (!c.memory || !c.memory->limit || cgroup_unlimited)) {
    std::string reach = "all of the host's RAM";
    if (report.host.meminfo && report.host.meminfo->mem_total) {
      reach = fmt::format("all {} of the host's RAM", format_bytes(*report.host.meminfo->mem_total));
    }
    std::string now;
    if (c.memory && c.memory->working_set()) {
      now = fmt::format(" (it uses {} now)", format_bytes(*c.memory->working_set()));
    }
    std::string advice;
    if (c.advised_limit) {
      advice = fmt::format("memwarden optimize --yes {} sets {} ({})", name, format_bytes(*c.advised_limit),
                           c.advised_basis);
    } else if (is_inference_server(c.meta)) {
      advice = c.advised_basis.empty()
                   ? fmt::format("memwarden optimize --yes {} sets one from the plan of its installed models", name)
                   : fmt::format("memwarden optimize plans one from its installed models, but could not now: {}",
                                 c.advised_basis);
    } else {
      advice = peak_basis(name);
    }
    out.push_back({WarningKind::unlimited_container, name,
                   fmt::format("{} has no memory limit and can take {}{}; {} (or by hand: docker update --memory, "
                               "compose mem_limit)",
                               name, reach, now, advice)});
  }
  if (c.memory) {
    if (const auto pct = c.memory->percent_of_limit(); pct && *pct >= t.near_limit_pct) {
      out.push_back({WarningKind::near_limit, name,
                     fmt::format("{} is at {:.0f}% of its {} limit; the kernel will reclaim and then "
                                 "OOM-kill inside it",
                                 name, *pct, format_bytes(*c.memory->limit->bytes))});
    }
  }
  const std::uint64_t kills = c.memory && c.memory->oom_kills ? *c.memory->oom_kills : 0;
  if (kills > 0) {
    out.push_back(
        {WarningKind::oom_killed, name,
         fmt::format("{} has had {} OOM kill{} inside its memory limit", name, kills, kills == 1 ? "" : "s")});
  } else if (c.meta.state.oom_killed) {
    out.push_back({WarningKind::oom_killed, name, fmt::format("{} was OOM-killed when it last stopped", name)});
  }
}

}  // namespace

std::vector<Warning> evaluate_status(const StatusReport& report, const StatusThresholds& t) {
  std::vector<Warning> out;
  if (const auto& mi = report.host.meminfo) {
    if (const auto swap = mi->swap_used(); swap && *swap > t.swap_warn_bytes) {
      out.push_back({WarningKind::swap_in_use, "host",
                     fmt::format("{} of swap in use (above {}): the host is short of RAM and pages are "
                                 "being pushed to disk",
                                 format_bytes(*swap), format_bytes(t.swap_warn_bytes))});
    }
    if (mi->mem_available && *mi->mem_available < t.reserve_bytes) {
      out.push_back({WarningKind::low_available, "host",
                     fmt::format("only {} of RAM available, under the {} reserve kept for the "
                                 "monitoring stack and the system",
                                 format_bytes(*mi->mem_available), format_bytes(t.reserve_bytes))});
    }
  }
  if (const auto& psi = report.host.pressure; psi && psi->full && psi->full->avg10 > t.psi_full_avg10_pct) {
    out.push_back({WarningKind::memory_pressure, "host",
                   fmt::format("memory pressure: all tasks stalled on memory {:.1f}% of the last 10 s "
                               "(PSI full avg10, above {:.0f}%)",
                               psi->full->avg10, t.psi_full_avg10_pct)});
  }
  for (const auto& c : report.containers) {
    container_warnings(c, report, t, out);
  }
  return out;
}

}  // namespace mw
