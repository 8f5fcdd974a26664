// The built-in profiles planned on hypothetical hosts (--ram/--vram): the limit is the plan's, not the
// seed's guess, and a profile whose model cannot be placed gets no limit.
#include <gtest/gtest.h>

#include <algorithm>
#include <stdexcept>

#include "core/bytes.hpp"
#include "engine/profiles.hpp"
#include "test_support.hpp"

using namespace mw;
using namespace mw::engine;

namespace {

PlanOptions host(std::uint64_t ram, std::uint64_t vram) {
  PlanOptions o;
  o.root = probes::HostRoot(test::fixture_path("hosts/v2-systemd-incident"));
  o.nvml_library = "/nonexistent/libnvidia-ml.so.1";
  o.ram = ram;
  o.vram = vram;
  o.source = ModelSource::catalog;
  return o;
}

const ProfilePlan& plan_of(const ProfilesResult& r, const std::string& name) {
  for (const auto& p : r.profiles) {
    if (p.profile.name == name) {
      return p;
    }
  }
  throw std::runtime_error("no plan for " + name);
}

}  // namespace

TEST(PlanProfiles, TheLimitIsThePlansForTheProfilesSettings) {
  const auto base = host(32 * k_gib, 16 * k_gib);
  const auto r = plan_profiles(builtin_profiles(), base);
  ASSERT_EQ(r.profiles.size(), builtin_profiles().size());
  for (const auto& p : r.profiles) {
    ASSERT_TRUE(p.errors.empty()) << p.profile.name << ": " << p.errors[0].line();
    // The same plan as `memwarden plan MODEL --ctx N --parallel N --kv-type T` on that host.
    auto o = base;
    o.models = p.profile.models;
    o.settings.num_ctx = p.profile.context_length;
    o.parallel = p.profile.parallel;
    o.kv_type = p.profile.kv_type;
    const auto direct = collect_plan(o);
    ASSERT_EQ(direct.plans.size(), p.profile.models.size());
    std::uint64_t largest = 0;
    for (const auto& m : direct.plans) {
      largest = std::max(largest, m.container_limit);
    }
    ASSERT_TRUE(p.limit.has_value()) << p.profile.name;
    EXPECT_EQ(*p.limit, largest) << p.profile.name;
  }
}

TEST(PlanProfiles, A33bModelNeedsLessThanTheSeedsGuessOnAGpuAndMoreWithout) {
  const auto& profiles = builtin_profiles();
  const auto on_gpu = plan_profiles(profiles, host(32 * k_gib, 16 * k_gib));
  const auto cpu_only = plan_profiles(profiles, host(64 * k_gib, 0));
  const auto& gpu = plan_of(on_gpu, "large-33b");
  const auto& cpu = plan_of(cpu_only, "large-33b");
  ASSERT_TRUE(gpu.limit && cpu.limit);
  ASSERT_TRUE(gpu.profile.seed_limit_bytes);
  EXPECT_LT(*gpu.limit, *gpu.profile.seed_limit_bytes) << "layers on the GPU are not in the container's RAM";
  EXPECT_GT(*cpu.limit, *gpu.limit);
  EXPECT_EQ(cpu.verdict, FitVerdict::cpu);
  EXPECT_EQ(gpu.largest_model, "deepseek-coder:33b");
}

TEST(PlanProfiles, AProfileThatCannotBePlacedHasNoLimit) {
  const auto r = plan_profiles(builtin_profiles(), host(8 * k_gib, 0));
  const auto& large = plan_of(r, "large-70b");
  EXPECT_FALSE(large.limit.has_value());
  EXPECT_EQ(large.verdict, FitVerdict::no_fit);

  Profile unknown;
  unknown.name = "mystery";
  unknown.models = {"llama3.1:8b", "no-such-model:1b"};
  const auto u = plan_profiles(std::vector<Profile>{unknown}, host(32 * k_gib, 16 * k_gib));
  ASSERT_EQ(u.profiles.size(), 1U);
  EXPECT_FALSE(u.profiles[0].errors.empty());
  EXPECT_FALSE(u.profiles[0].limit.has_value()) << "deployable only as a whole";
}

TEST(PlanProfiles, AProfileWithoutTheGpuIsPlannedForTheCpu) {
  auto standard = builtin_profiles()[2];
  ASSERT_EQ(standard.name, "standard");
  standard.gpu = GpuUse::none;
  const auto r = plan_profiles(std::vector<Profile>{standard}, host(32 * k_gib, 16 * k_gib));
  ASSERT_EQ(r.profiles.size(), 1U);
  EXPECT_EQ(r.profiles[0].verdict, FitVerdict::cpu);
}
