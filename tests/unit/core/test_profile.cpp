// Deployment profiles: the built-in four, finding one by name, and overriding them.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "core/catalog.hpp"
#include "core/profile.hpp"

namespace mw {
namespace {

Profile named(std::string name, std::uint16_t port) {
  Profile p;
  p.name = std::move(name);
  p.port = port;
  return p;
}

TEST(BuiltinProfiles, MirrorTheSeedsFourTemplates) {
  const auto& all = builtin_profiles();
  std::set<std::string> names;
  std::set<std::uint16_t> side_by_side_ports;  // standard servers run beside each other and one large one
  std::set<std::uint16_t> exclusive_ports;
  for (const auto& p : all) {
    EXPECT_TRUE(names.insert(p.name).second) << p.name << " twice";
    if (p.mode == DeployMode::exclusive) {
      exclusive_ports.insert(p.port);
    } else {
      EXPECT_TRUE(side_by_side_ports.insert(p.port).second) << p.name << ": port " << p.port << " twice";
    }
    ASSERT_FALSE(p.models.empty()) << p.name;
    for (const auto& model : p.models) {
      EXPECT_TRUE(catalog_find(model).has_value()) << p.name << ": " << model << " is not in the catalog";
    }
    ASSERT_TRUE(p.seed_limit_bytes.has_value()) << p.name;
    EXPECT_FALSE(p.store_volume.empty()) << p.name;
  }
  EXPECT_EQ(names, (std::set<std::string>{"large-33b", "large-70b", "standard", "localai"}));
  EXPECT_EQ(exclusive_ports.size(), 1U) << "one large model at a time: its clients keep one address";
  for (const auto port : exclusive_ports) {
    EXPECT_EQ(side_by_side_ports.count(port), 0U) << port;
  }

  const auto large33 = find_profile(all, "large-33b", "test");
  ASSERT_TRUE(large33.has_value());
  EXPECT_EQ(large33->models, std::vector<std::string>{"deepseek-coder:33b"});
  EXPECT_EQ(large33->mode, DeployMode::exclusive);
  EXPECT_EQ(*large33->seed_limit_bytes, 28'000'000'000U);
  EXPECT_EQ(*find_profile(all, "large-70b", "test")->seed_limit_bytes, 30'000'000'000U);
  EXPECT_EQ(find_profile(all, "standard", "test")->mode, DeployMode::standard);

  const auto localai = find_profile(all, "localai", "test");
  ASSERT_TRUE(localai.has_value());
  EXPECT_EQ(localai->api, ServerApi::openai);
  EXPECT_EQ(localai->image, "localai/localai");
  EXPECT_EQ(localai->container_port, 8080);
  EXPECT_EQ(localai->store_path, "/models");
  EXPECT_EQ(*localai->seed_limit_bytes, 12'000'000'000U);
}

TEST(FindProfile, IgnoresCaseAndSuggestsTheClosestName) {
  const auto& all = builtin_profiles();
  EXPECT_EQ(find_profile(all, "Large-33B", "cli")->name, "large-33b");
  const auto typo = find_profile(all, "large-3b", "--profile");
  ASSERT_FALSE(typo.has_value());
  EXPECT_EQ(typo.error().source, "--profile");
  EXPECT_NE(typo.error().message.find("did you mean large-33b?"), std::string::npos) << typo.error().message;
  const auto unknown = find_profile(all, "mixtral", "cli");
  ASSERT_FALSE(unknown.has_value());
  EXPECT_EQ(unknown.error().message.find("did you mean"), std::string::npos) << unknown.error().message;
  EXPECT_NE(unknown.error().message.find("large-33b, large-70b, standard, localai"), std::string::npos)
      << unknown.error().message;
  const auto odd = find_profile(all, "a\nb", "cli");
  ASSERT_FALSE(odd.has_value());
  EXPECT_EQ(odd.error().message.find('\n'), std::string::npos) << "control characters are escaped";
  EXPECT_NE(find_profile({}, "standard", "cli").error().message.find("there are none"), std::string::npos);
}

TEST(MergeProfiles, AnOverrideReplacesItsNamesakeAndNewOnesFollow) {
  const std::vector<Profile> builtin{named("a", 1), named("b", 2)};
  const std::vector<Profile> overrides{named("c", 3), named("b", 20)};
  const auto merged = merge_profiles(builtin, overrides);
  ASSERT_EQ(merged.size(), 3U);
  EXPECT_EQ(merged[0].name, "a");
  EXPECT_EQ(merged[1].name, "b");
  EXPECT_EQ(merged[1].port, 20);
  EXPECT_EQ(merged[2].name, "c");
}

TEST(ProfileEnums, NamesReadBack) {
  for (const auto m : {DeployMode::standard, DeployMode::exclusive}) {
    EXPECT_EQ(parse_deploy_mode(to_string(m)), m);
  }
  for (const auto a : {ServerApi::ollama, ServerApi::openai}) {
    EXPECT_EQ(parse_server_api(to_string(a)), a);
  }
  for (const auto g : {GpuUse::all, GpuUse::none}) {
    EXPECT_EQ(parse_gpu_use(to_string(g)), g);
  }
  EXPECT_FALSE(parse_deploy_mode("Exclusive").has_value());
  EXPECT_FALSE(parse_gpu_use("").has_value());
}

}  // namespace
}  // namespace mw
