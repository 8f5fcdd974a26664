#include "engine/drift.hpp"

#include <algorithm>

#include "core/discovery.hpp"
#include "probes/cgroup.hpp"
#include "probes/host_memory.hpp"

namespace mw::engine {

ServerLimitPlan plan_container(const ContainerMeta& container, std::uint64_t cap, const LimitAdviceOptions& o) {
  ServerLimitOptions so;
  so.root = o.root;
  so.cap = cap;
  so.reserve = o.reserve;
  so.profiles = o.profiles.empty() ? builtin_profiles() : o.profiles;
  so.api_timeout = o.api_timeout;
  so.nvml_library = o.nvml_library;
  so.max_models = o.max_models;
  return o.plan ? o.plan(container, so) : plan_server_limit(container, so);
}

LimitAdvice advise_container(const ContainerMeta& container, const std::optional<CgroupMemory>& memory,
                             std::uint64_t cap, const LimitAdviceOptions& o) {
  const auto plan = plan_container(container, cap, o);
  auto advice = advise_server_limit(plan.limit, memory ? limit_floor(*memory) : std::nullopt, cap);
  if (!advice.limit && !plan.problems.empty()) {
    advice.basis += "; " + plan.problems.front();
  }
  return advice;
}

void advise_unlimited(StatusReport& report, const LimitAdviceOptions& o) {
  const bool total_known = report.host.meminfo && report.host.meminfo->mem_total;
  const std::uint64_t mem_total = total_known ? report.host.meminfo->mem_total.value_or(0) : 0;
  const std::uint64_t cap = total_known ? host_server_cap(mem_total, o.reserve, report.containers) : 0;
  for (auto& c : report.containers) {
    if (!c.meta.state.running || c.meta.memory_limit) {
      continue;
    }
    if (!is_inference_server(c.meta)) {
      c.advised_basis = peak_basis(c.meta.name);
      continue;
    }
    if (!total_known) {
      c.advised_basis = "the host's MemTotal could not be read, so what the host can give it is unknown";
      continue;
    }
    auto advice = advise_container(c.meta, c.memory, cap, o);
    c.advised_limit = advice.limit;
    c.advised_basis = std::move(advice.basis);
  }
}

void plan_unlimited_servers(Sampler& sampler, const Inventory& inventory, const LimitAdviceOptions& o,
                            std::vector<Error>& problems) {
  std::vector<const InferenceServer*> unlimited;
  for (const auto& w : sampler.servers()) {
    if (w->server.kind == ServerKind::container && !w->server.has_memory_limit) {
      unlimited.push_back(&w->server);
    }
  }
  if (unlimited.empty()) {
    return;
  }
  // The running containers and their memory now: the others' take from the host, and each server's floor.
  std::vector<ContainerSnapshot> containers;
  for (const auto& meta : inventory.containers) {
    if (!meta.state.running) {
      continue;
    }
    ContainerSnapshot c;
    c.meta = meta;
    // Unlimited ones only: a server's floor, another's working set (the limit stands for it otherwise).
    if (const auto where = inventory.cgroups.find(meta.id);
        !meta.memory_limit && inventory.layout && where != inventory.cgroups.end()) {
      std::vector<Error> ignored;  // optional files: the sampler reports them
      if (auto memory = probes::read_cgroup_memory(*inventory.layout, where->second, ignored)) {
        c.memory = std::move(memory).value();
      }
    }
    containers.push_back(std::move(c));
  }
  const auto meminfo = probes::read_meminfo(o.root);
  if (!meminfo) {
    problems.push_back(meminfo.error());
  }
  const bool total_known = meminfo && meminfo->mem_total;
  const std::uint64_t cap = total_known ? host_server_cap(meminfo->mem_total.value_or(0), o.reserve, containers) : 0;
  for (const auto* server : unlimited) {
    const auto it = std::find_if(containers.begin(), containers.end(),
                                 [&](const ContainerSnapshot& c) { return c.meta.id == server->container_id; });
    if (it == containers.end()) {
      continue;
    }
    if (!total_known) {
      sampler.set_planned_limit(server->name, std::nullopt,
                                "the host's MemTotal could not be read, so what the host can give it is unknown");
      continue;
    }
    auto advice = advise_container(it->meta, it->memory, cap, o);
    sampler.set_planned_limit(server->name, advice.limit, std::move(advice.basis));
  }
}

}  // namespace mw::engine
