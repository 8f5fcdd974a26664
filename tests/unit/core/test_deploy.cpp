// The deploy spec (environment, labels, health check) and admission control.
#include <gtest/gtest.h>

#include "core/deploy.hpp"

namespace mw {
namespace {

constexpr std::uint64_t k_gib = 1ULL << 30;

Profile ollama_profile() {
  Profile p;
  p.name = "coder";
  p.models = {"qwen2.5-coder:7b"};
  p.context_length = 8192;
  p.parallel = 2;
  p.max_loaded_models = 1;
  p.keep_alive = "10m";
  p.port = 11440;
  p.tag = "0.11.4";
  return p;
}

TEST(GpuRequest, ParsesAllNoneAndLists) {
  EXPECT_EQ(parse_gpu_request("all")->kind, GpuRequest::Kind::all);
  EXPECT_EQ(parse_gpu_request("none")->kind, GpuRequest::Kind::none);
  const auto ids = parse_gpu_request("0,GPU-1a2b");
  ASSERT_TRUE(ids.has_value());
  EXPECT_EQ(ids->kind, GpuRequest::Kind::ids);
  EXPECT_EQ(ids->device_ids, (std::vector<std::string>{"0", "GPU-1a2b"}));
  EXPECT_EQ(to_string(*ids), "0,GPU-1a2b");
  for (const char* bad : {"", ",", "0,", ",0", "0;rm", "a b", "0,,1"}) {
    EXPECT_FALSE(parse_gpu_request(bad).has_value()) << bad;
  }
}

TEST(DeploySpec, OllamaEnvironmentLabelsAndHealthCheck) {
  DeployChoices c;
  c.memory_limit = 9 * k_gib;
  c.gpu = GpuRequest{GpuRequest::Kind::all, {}};
  const auto s = make_deploy_spec(ollama_profile(), c);
  EXPECT_EQ(s.name, "coder") << "the profile's name when --name is not given";
  EXPECT_EQ(s.image, "ollama/ollama:0.11.4");
  EXPECT_EQ(s.memory_limit, 9 * k_gib);
  EXPECT_EQ(s.gpu.kind, GpuRequest::Kind::all);
  EXPECT_EQ(s.env.at("OLLAMA_HOST"), "0.0.0.0:11434") << "behind a bridge the engine publishes the port";
  EXPECT_EQ(s.env.at("OLLAMA_CONTEXT_LENGTH"), "8192");
  EXPECT_EQ(s.env.at("OLLAMA_NUM_PARALLEL"), "2");
  EXPECT_EQ(s.env.at("OLLAMA_MAX_LOADED_MODELS"), "1");
  EXPECT_EQ(s.env.at("OLLAMA_KEEP_ALIVE"), "10m");
  EXPECT_EQ(s.env.at("OLLAMA_KV_CACHE_TYPE"), "f16");
  EXPECT_EQ(s.env.count("OLLAMA_FLASH_ATTENTION"), 0U);
  EXPECT_EQ(s.labels.at("memwarden.enable"), "true");
  EXPECT_EQ(s.labels.at("memwarden.kind"), "ollama");
  EXPECT_EQ(s.labels.at("memwarden.profile"), "coder");
  EXPECT_EQ(s.labels.at("memwarden.deployed"), "true");
  EXPECT_EQ(s.health.test, (std::vector<std::string>{"CMD", "ollama", "list"}));
  EXPECT_EQ(s.store_volume, "ollama");
}

TEST(DeploySpec, QuantizedCacheTurnsOnFlashAttention) {
  auto p = ollama_profile();
  p.kv_type = KvType::q8_0;
  const auto s = make_deploy_spec(p, DeployChoices{});
  EXPECT_EQ(s.env.at("OLLAMA_KV_CACHE_TYPE"), "q8_0");
  EXPECT_EQ(s.env.at("OLLAMA_FLASH_ATTENTION"), "1");

  DeployChoices chose;
  chose.flash_attention = true;
  EXPECT_EQ(make_deploy_spec(ollama_profile(), chose).env.at("OLLAMA_FLASH_ATTENTION"), "1");
}

TEST(DeploySpec, HostNetworkListensOnTheBindAddressAndPort) {
  DeployChoices c;
  c.network = NetworkKind::host;
  c.bind_address = "127.0.0.1";
  c.name = "mine";
  c.store_volume = "old-ollama";
  const auto s = make_deploy_spec(ollama_profile(), c);
  EXPECT_EQ(s.name, "mine");
  EXPECT_EQ(s.env.at("OLLAMA_HOST"), "127.0.0.1:11440");
  EXPECT_EQ(s.profile.container_port, 11440);
  EXPECT_EQ(s.store_volume, "old-ollama") << "an existing store volume is reused";
  c.bind_address = "::1";
  EXPECT_EQ(make_deploy_spec(ollama_profile(), c).env.at("OLLAMA_HOST"), "[::1]:11440");
}

TEST(DeploySpec, ProfileWithoutGpuGetsNoneWhateverTheHostHas) {
  auto p = ollama_profile();
  p.gpu = GpuUse::none;
  DeployChoices c;
  c.gpu = GpuRequest{GpuRequest::Kind::all, {}};
  EXPECT_EQ(make_deploy_spec(p, c).gpu.kind, GpuRequest::Kind::none);
}

TEST(DeploySpec, LocalAiSpeaksItsOwnSettings) {
  Profile p;
  p.name = "localai";
  p.api = ServerApi::openai;
  p.image = "localai/localai";
  p.tag = "latest-gpu-nvidia-cuda-12";
  p.port = 8080;
  p.container_port = 8080;
  p.store_path = "/models";
  p.parallel = 1;
  const auto s = make_deploy_spec(p, DeployChoices{});
  EXPECT_EQ(s.env.count("OLLAMA_HOST"), 0U);
  EXPECT_EQ(s.env.at("LOCALAI_ADDRESS"), "0.0.0.0:8080");
  EXPECT_EQ(s.env.at("LOCALAI_CONTEXT_SIZE"), "4096");
  EXPECT_EQ(s.env.at("LOCALAI_SINGLE_ACTIVE_BACKEND"), "true");
  EXPECT_EQ(s.env.at("LOCALAI_MODELS_PATH"), "/models");
  EXPECT_EQ(s.labels.at("memwarden.kind"), "localai");
  EXPECT_EQ(s.image, "localai/localai:latest-gpu-nvidia-cuda-12");
}

HeldMemory held(std::string name, std::uint64_t gib, bool server = false, bool protect = false) {
  HeldMemory h;
  h.name = std::move(name);
  h.bytes = gib * k_gib;
  h.basis = HeldMemory::Basis::limit;
  h.inference_server = server;
  h.protect = protect;
  return h;
}

TEST(Admission, FitsWhenLimitOthersAndReserveFitTheHost) {
  const auto a = admit(32 * k_gib, 4 * k_gib, 20 * k_gib, {held("grafana", 2), held("prometheus", 6)},
                       Exclusivity::shared, 0, std::nullopt);
  EXPECT_TRUE(a.admitted());
  EXPECT_EQ(a.held, 8 * k_gib);
  EXPECT_EQ(a.shortfall, 0U);
}

TEST(Admission, RefusesAndNamesJustEnoughContainersLargestFirstNeverProtected) {
  std::vector<HeldMemory> others{held("small", 1), held("ollama-a", 8, true), held("portainer", 10, false, true),
                                 held("ollama-b", 6, true)};
  auto stopped = held("exited", 30);
  stopped.running = false;
  others.push_back(stopped);
  const auto a = admit(32 * k_gib, 4 * k_gib, 18 * k_gib, others, Exclusivity::shared, 0, std::nullopt);
  EXPECT_FALSE(a.admitted());
  EXPECT_EQ(a.held, 25 * k_gib) << "a stopped container holds nothing";
  EXPECT_EQ(a.shortfall, 15 * k_gib);
  ASSERT_EQ(a.would_free.size(), 3U);
  EXPECT_EQ(a.would_free[0].name, "ollama-a");
  EXPECT_EQ(a.would_free[1].name, "ollama-b");
  EXPECT_EQ(a.would_free[2].name, "small");
  EXPECT_EQ(a.counted.front().name, "portainer") << "largest first";
}

TEST(Admission, NothingToSuggestWhenStoppingEverythingIsNotEnough) {
  const auto a =
      admit(16 * k_gib, 4 * k_gib, 40 * k_gib, {held("ollama", 4, true)}, Exclusivity::shared, 0, std::nullopt);
  EXPECT_FALSE(a.ram_fits);
  EXPECT_TRUE(a.would_free.empty());
}

TEST(Admission, ExclusiveSetsUnprotectedServersAside) {
  const auto a = admit(32 * k_gib, 4 * k_gib, 20 * k_gib,
                       {held("ollama-a", 8, true), held("keep-me", 6, true, true), held("grafana", 1)},
                       Exclusivity::exclusive, 0, std::nullopt);
  EXPECT_TRUE(a.ram_fits);
  ASSERT_EQ(a.set_aside.size(), 1U);
  EXPECT_EQ(a.set_aside[0].name, "ollama-a");
  EXPECT_EQ(a.held, 7 * k_gib) << "the protected server and the others still count";
}

TEST(Admission, DiskMustHoldTheDownloadsWhenKnown) {
  auto a = admit(32 * k_gib, 4 * k_gib, 8 * k_gib, {}, Exclusivity::shared, 20 * k_gib, 10 * k_gib);
  EXPECT_TRUE(a.ram_fits);
  EXPECT_FALSE(a.disk_fits);
  EXPECT_FALSE(a.admitted());
  a = admit(32 * k_gib, 4 * k_gib, 8 * k_gib, {}, Exclusivity::shared, 20 * k_gib, std::nullopt);
  EXPECT_TRUE(a.admitted()) << "an unknown free disk does not refuse";
}

}  // namespace
}  // namespace mw
