// The deployment profiles planned on a host (issue 13): for each profile, the memory limit the plan
// gives its largest model at the profile's context, slots and KV cache, beside the fixed limit the
// seed's template used.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/plan.hpp"
#include "core/profile.hpp"
#include "engine/plan.hpp"

namespace mw::engine {

struct ProfilePlan {
  Profile profile;
  // The container limit for the profile: the largest of its models' limits. nullopt when a model could
  // not be sized (see errors) or does not fit at all (see verdict).
  std::optional<std::uint64_t> limit;
  std::optional<FitVerdict> verdict;  // of the model that sets the limit, or of one that does not fit
  std::string largest_model;          // that model's name
  std::optional<ModelPlan> plan;      // that model's plan
  std::uint64_t disk_needed = 0;      // all the profile's downloads
  std::vector<Error> errors;          // models that could not be found or sized
};

struct ProfilesResult {
  HostBudget host;
  std::vector<std::string> host_notes;
  std::vector<ProfilePlan> profiles;  // in the order given
};

// Plans every profile with `base` (the host root, --ram/--vram, the reserve, the model sources); the
// profile's models, context, slots and KV cache replace base's.
[[nodiscard]] ProfilesResult plan_profiles(std::span<const Profile> profiles, const PlanOptions& base);

}  // namespace mw::engine
