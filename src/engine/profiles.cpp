#include "engine/profiles.hpp"

namespace mw::engine {

ProfilesResult plan_profiles(std::span<const Profile> profiles, const PlanOptions& base) {
  ProfilesResult out;
  for (const auto& profile : profiles) {
    PlanOptions o = base;
    o.models = profile.models;
    o.settings.num_ctx = profile.context_length;
    o.parallel = profile.parallel;
    o.kv_type = profile.kv_type;
    if (profile.gpu == GpuUse::none) {
      o.vram = 0;  // planned for the CPU: the container gets no GPU
    }
    auto plan = collect_plan(o);
    if (out.host_notes.empty()) {
      out.host = plan.host;
      out.host_notes = plan.host_notes;
    }
    ProfilePlan p;
    p.profile = profile;
    p.errors = std::move(plan.errors);
    for (const auto& m : plan.plans) {
      p.disk_needed += m.disk_needed;
    }
    const ModelPlan* largest = nullptr;
    const ModelPlan* failing = nullptr;
    for (const auto& m : plan.plans) {
      if (m.verdict == FitVerdict::no_fit) {
        failing = failing != nullptr ? failing : &m;
      } else if (largest == nullptr || m.container_limit > largest->container_limit) {
        largest = &m;
      }
    }
    if (failing != nullptr) {
      p.verdict = failing->verdict;  // a profile is deployable only as a whole
      p.largest_model = failing->name;
      p.plan = *failing;
    } else if (largest != nullptr) {
      p.verdict = largest->verdict;
      p.largest_model = largest->name;
      p.plan = *largest;
      if (p.errors.empty()) {
        p.limit = largest->container_limit;
      }
    }
    out.profiles.push_back(std::move(p));
  }
  return out;
}

}  // namespace mw::engine
