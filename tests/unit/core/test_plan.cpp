// plan_model and plan_together: verdicts, container limits and the changes that would make a model fit,
// on catalog shapes and hypothetical hosts.
#include <gtest/gtest.h>

#include <numeric>

#include "core/catalog.hpp"
#include "core/plan.hpp"

using namespace mw;

namespace {

constexpr std::uint64_t k_gib = 1ULL << 30;
constexpr std::uint64_t k_mib = 1ULL << 20;

PlanModel from_catalog(std::string_view name) {
  auto match = catalog_find(name);
  EXPECT_TRUE(match) << name;
  auto shape = catalog_shape(name);
  EXPECT_TRUE(shape) << name;
  PlanModel m;
  m.name = std::string(name);
  m.source = "catalog";
  m.shape = *shape;
  m.dims = match->model->dims;
  m.quantization = match->quantization;
  m.file_bytes = std::accumulate(shape->block_bytes.begin(), shape->block_bytes.end(),
                                 shape->token_embd_bytes + shape->output_bytes);
  return m;
}

HostBudget host(std::uint64_t ram, std::uint64_t vram) {
  HostBudget h;
  h.ram_total = ram;
  h.ram_available = ram;
  if (vram > 0) {
    h.gpus.push_back({"GPU 0", vram, vram});
  }
  return h;
}

PlanSettings ctx(std::uint64_t n) {
  PlanSettings s;
  s.num_ctx = n;
  return s;
}

ModelPlan plan(const PlanModel& m, const PlanSettings& s, const HostBudget& h) {
  auto p = plan_model(m, s, h);
  EXPECT_TRUE(p) << p.error().line();
  return p ? *p : ModelPlan{};
}

const Suggestion* find(const ModelPlan& p, std::string_view change_prefix) {
  for (const auto& s : p.suggestions) {
    if (s.change.starts_with(change_prefix)) {
      return &s;
    }
  }
  return nullptr;
}

}  // namespace

TEST(Plan, OllamasDefaultContextFollowsTheVram) {
  EXPECT_EQ(ollama_default_ctx(0), 4096U);
  EXPECT_EQ(ollama_default_ctx(16 * k_gib), 4096U);
  EXPECT_EQ(ollama_default_ctx(24 * k_gib), 32768U);
  EXPECT_EQ(ollama_default_ctx(80 * k_gib), 262144U);

  const auto p = plan(from_catalog("mistral:7b"), PlanSettings{}, host(32 * k_gib, 16 * k_gib));
  EXPECT_EQ(p.options.num_ctx, 4096U);
  ASSERT_FALSE(p.notes.empty());
  EXPECT_NE(p.notes[0].find("default"), std::string::npos);
}

TEST(Plan, AContextBeyondTheTrainedOneIsClamped) {
  // codellama was trained for 16384 tokens.
  const auto p = plan(from_catalog("codellama:34b"), ctx(65536), host(64 * k_gib, 0));
  EXPECT_EQ(p.options.num_ctx, 16384U);
  const auto clamped = std::any_of(p.notes.begin(), p.notes.end(),
                                   [](const std::string& n) { return n.find("16384") != std::string::npos; });
  EXPECT_TRUE(clamped);
}

TEST(Plan, Codellama34bOnA16GiBGpuIsSplitAndItsLimitIsFarBelow28GiB) {
  // The incident's plan: 28-30 GB containers for 33-34B models on a 16 GB GPU.
  const auto m = from_catalog("codellama:34b");
  const auto h = host(32 * k_gib, 16 * k_gib);
  const auto p = plan(m, ctx(2048), h);
  EXPECT_EQ(p.verdict, FitVerdict::split);
  EXPECT_GT(p.placement.layers_on_gpu, 0U);
  EXPECT_LT(p.placement.layers_on_gpu, p.placement.layers_total);
  EXPECT_LE(p.placement.vram, 16 * k_gib);
  // The RAM side is the CPU layers' mapped weights, the CPU layers' KV cache and the runtime.
  EXPECT_EQ(p.ram_needed, p.placement.ram_resident + p.placement.ram_page_cache + PlanSettings{}.runtime_ram);
  EXPECT_EQ(p.ram_short, 0U);
  EXPECT_GE(p.container_limit, p.ram_needed * 12 / 10);
  EXPECT_LT(p.container_limit, p.ram_needed * 12 / 10 + 256 * k_mib);
  EXPECT_LT(p.container_limit, 16 * k_gib);
  // q4_0 is the smallest quantization known, the context is already 2048, and no KV cache makes 17.8 GiB
  // of weights fit 16 GiB: nothing to offer.
  EXPECT_EQ(find(p, "quantization"), nullptr);
  EXPECT_EQ(find(p, "--ctx"), nullptr);
  EXPECT_EQ(find(p, "--kv-type"), nullptr);
  // Not downloaded: the whole file is the download.
  EXPECT_EQ(p.disk_needed, m.file_bytes);
  // All 49 layers would need more than the GPU has: the weights alone are 17.7 GiB.
  ASSERT_TRUE(p.vram_full_offload);
  EXPECT_GT(*p.vram_full_offload, p.placement.weights - m.shape.token_embd_bytes);
  EXPECT_GT(*p.vram_full_offload, 16 * k_gib);
  EXPECT_EQ(*p.vram_full_offload, plan(m, ctx(2048), host(32 * k_gib, 64 * k_gib)).placement.vram);
}

TEST(Plan, AModelThatFitsTheGpuGetsNoSuggestions) {
  const auto p = plan(from_catalog("mistral:7b"), ctx(4096), host(32 * k_gib, 16 * k_gib));
  EXPECT_EQ(p.verdict, FitVerdict::gpu);
  EXPECT_TRUE(p.placement.full_offload());
  EXPECT_TRUE(p.suggestions.empty());
  EXPECT_FALSE(p.vram_full_offload);
  // Only token_embd stays on the CPU side, as mapped page cache.
  EXPECT_EQ(p.placement.ram_page_cache, from_catalog("mistral:7b").shape.token_embd_bytes);
}

TEST(Plan, TheContextSuggestedIsTheLargestThatFits) {
  const auto m = from_catalog("llama3.1:8b");
  const auto h = host(32 * k_gib, 8 * k_gib);
  const auto p = plan(m, ctx(32768), h);
  ASSERT_EQ(p.verdict, FitVerdict::split);
  const auto* s = find(p, "--ctx ");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->verdict, FitVerdict::gpu);
  const auto suggested = std::stoull(s->change.substr(6));
  EXPECT_EQ(suggested % 256, 0U);
  EXPECT_LT(suggested, 32768U);
  // At the suggested context it fits on the GPU; 256 more and it does not.
  EXPECT_EQ(plan(m, ctx(suggested), h).verdict, FitVerdict::gpu);
  EXPECT_EQ(plan(m, ctx(suggested + 256), h).verdict, FitVerdict::split);
}

TEST(Plan, AQuantizedKvCacheIsOfferedWithFlashAttention) {
  const auto m = from_catalog("llama3.1:8b");
  const auto h = host(32 * k_gib, 10 * k_gib);
  const auto p = plan(m, ctx(32768), h);
  ASSERT_EQ(p.verdict, FitVerdict::split);
  const auto* s = find(p, "--kv-type");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->change, "--kv-type q8_0");
  EXPECT_EQ(s->verdict, FitVerdict::gpu);
  // q8_0: 34 bytes per 32 values instead of 64.
  EXPECT_EQ(s->placement.kv, p.placement.kv / 64 * 34);
  EXPECT_NE(s->why.find("OLLAMA_FLASH_ATTENTION=1"), std::string::npos);

  PlanSettings q8 = ctx(32768);
  q8.kv_type = KvType::q8_0;
  const auto with_q8 = plan(m, q8, h);
  EXPECT_TRUE(with_q8.options.flash_attention);
  EXPECT_EQ(with_q8.verdict, FitVerdict::gpu);
  EXPECT_EQ(find(with_q8, "--kv-type"), nullptr);
}

TEST(Plan, FewerSlotsAreOfferedWhenParallelRequestsCostTheFit) {
  const auto m = from_catalog("llama3.1:8b");
  auto s = ctx(8192);
  s.parallel = 4;
  const auto p = plan(m, s, host(32 * k_gib, 8 * k_gib));
  EXPECT_EQ(p.options.parallel, 4U);
  EXPECT_NE(p.verdict, FitVerdict::gpu);
  const auto* fewer = find(p, "--parallel ");
  ASSERT_NE(fewer, nullptr);
  EXPECT_EQ(fewer->verdict, FitVerdict::gpu);
  // The most slots that fit: N fits on the GPU, N + 1 does not.
  const auto slots = std::stoull(fewer->change.substr(11));
  ASSERT_GE(slots, 1U);
  ASSERT_LT(slots, 4U);
  EXPECT_EQ(fewer->placement.kv * 4, p.placement.kv * slots);
  auto more = s;
  more.parallel = slots + 1;
  EXPECT_NE(plan(m, more, host(32 * k_gib, 8 * k_gib)).verdict, FitVerdict::gpu);
}

TEST(Plan, ASmallerQuantizationIsOfferedLargestFirst) {
  // f16 8B (16 GB) on an 8 GiB GPU: q8_0 (8.5 GB) still does not fit it, q6_K (6.6 GB) does.
  const auto m = from_catalog("llama3.1:8b-f16");
  ASSERT_EQ(m.quantization, "f16");
  const auto p = plan(m, ctx(4096), host(32 * k_gib, 8 * k_gib));
  EXPECT_EQ(p.verdict, FitVerdict::split);
  const auto* s = find(p, "quantization");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->change, "quantization q6_K");
  EXPECT_EQ(s->verdict, FitVerdict::gpu);
  EXPECT_LT(s->placement.weights, p.placement.weights / 2);
  EXPECT_GT(s->placement.weights, p.placement.weights * 2 / 5);
}

TEST(Plan, WithoutDimensionsNoOtherQuantizationIsGuessed) {
  auto m = from_catalog("llama3.1:8b-f16");
  m.dims.reset();
  const auto p = plan(m, ctx(4096), host(32 * k_gib, 8 * k_gib));
  EXPECT_EQ(find(p, "quantization"), nullptr);
}

TEST(Plan, A70BModelDoesNotFit32GiBAndTheShortfallIsSaid) {
  const auto p = plan(from_catalog("llama3.1:70b"), ctx(2048), host(32 * k_gib, 0));
  EXPECT_EQ(p.verdict, FitVerdict::no_fit);
  const auto usable = 28 * k_gib;  // 32 GiB less the 4 GiB reserve
  EXPECT_EQ(p.ram_short, p.ram_needed - usable);
  EXPECT_GT(p.ram_short, 10 * k_gib);
  // Even q4_0 (about 40 GB) does not fit: no quantization is offered.
  EXPECT_EQ(find(p, "quantization"), nullptr);
  // With 64 GiB it runs on the CPU.
  EXPECT_EQ(plan(from_catalog("llama3.1:70b"), ctx(2048), host(64 * k_gib, 0)).verdict, FitVerdict::cpu);
}

TEST(Plan, TheReserveComesOffTheAvailableRam) {
  const auto m = from_catalog("llama3.1:8b");
  auto h = host(32 * k_gib, 0);
  const auto need = plan(m, ctx(4096), h).ram_needed;
  h.ram_available = need + h.reserve;  // exactly enough
  EXPECT_EQ(plan(m, ctx(4096), h).verdict, FitVerdict::cpu);
  h.ram_available -= 1;
  const auto short_by_one = plan(m, ctx(4096), h);
  EXPECT_EQ(short_by_one.verdict, FitVerdict::no_fit);
  EXPECT_EQ(short_by_one.ram_short, 1U);
  h.reserve = 0;
  EXPECT_EQ(plan(m, ctx(4096), h).verdict, FitVerdict::cpu);
}

TEST(Plan, ADownloadLargerThanTheFreeDiskIsNoted) {
  auto m = from_catalog("codellama:34b");
  auto h = host(32 * k_gib, 16 * k_gib);
  h.disk_available = 10 * k_gib;
  const auto p = plan(m, ctx(2048), h);
  EXPECT_TRUE(p.disk_short);
  m.downloaded = true;
  const auto on_disk = plan(m, ctx(2048), h);
  EXPECT_EQ(on_disk.disk_needed, 0U);
  EXPECT_FALSE(on_disk.disk_short);
}

TEST(Plan, AProjectorGoesToTheGpuWithTheModel) {
  auto m = from_catalog("mistral:7b");
  const auto h = host(32 * k_gib, 16 * k_gib);
  const auto without = plan(m, ctx(4096), h);
  m.extra_weights = 600 * k_mib;
  const auto with = plan(m, ctx(4096), h);
  EXPECT_EQ(with.placement.vram, without.placement.vram + 600 * k_mib);
  EXPECT_EQ(with.ram_needed, without.ram_needed);
  // CPU only: it is mapped beside the weights.
  const auto cpu = plan(m, ctx(4096), host(32 * k_gib, 0));
  const auto cpu_without = plan(from_catalog("mistral:7b"), ctx(4096), host(32 * k_gib, 0));
  EXPECT_EQ(cpu.ram_needed, cpu_without.ram_needed + 600 * k_mib);
}

TEST(Plan, TheHeadroomNeverTakesTheReserve) {
  // llama3.1:70b split on a 16 GiB GPU needs most of 32 GiB: 20% more would eat into the reserve.
  const auto p = plan(from_catalog("llama3.1:70b"), ctx(4096), host(32 * k_gib, 16 * k_gib));
  ASSERT_NE(p.verdict, FitVerdict::no_fit);
  EXPECT_GT(p.ram_needed * 12 / 10, 28 * k_gib);
  EXPECT_LE(p.container_limit, 28 * k_gib);
  EXPECT_GE(p.container_limit, p.ram_needed);
  const auto said = std::any_of(p.notes.begin(), p.notes.end(),
                                [](const std::string& n) { return n.find("headroom is cut") != std::string::npos; });
  EXPECT_TRUE(said);
}

TEST(Plan, ContainerLimitsAreTheNeedPlusHeadroomIn256MiBSteps) {
  EXPECT_EQ(container_limit_for(1000 * k_mib, 20), 1280 * k_mib);  // 1200 MiB rounded up
  EXPECT_EQ(container_limit_for(1024 * k_mib, 0), 1024 * k_mib);
  EXPECT_EQ(container_limit_for(1025 * k_mib, 0), 1280 * k_mib);
}

TEST(PlanTogether, TwoSmallModelsShareA16GiBGpu) {
  const std::vector<PlanModel> models{from_catalog("mistral:7b"), from_catalog("qwen2.5:7b")};
  const auto h = host(32 * k_gib, 16 * k_gib);
  std::vector<ModelPlan> alone{plan(models[0], ctx(4096), h), plan(models[1], ctx(4096), h)};
  const auto t = plan_together(models, alone, ctx(4096), h);
  EXPECT_TRUE(t.fit);
  ASSERT_EQ(t.verdicts.size(), 2U);
  EXPECT_EQ(t.verdicts[1], FitVerdict::gpu);
  EXPECT_EQ(t.ram_needed, alone[0].ram_needed + alone[1].ram_needed);
  EXPECT_EQ(t.vram_needed, alone[0].placement.vram + alone[1].placement.vram);
  EXPECT_EQ(t.container_limit_together, container_limit_for(t.ram_needed, 20));
  EXPECT_EQ(t.disk_needed, alone[0].disk_needed + alone[1].disk_needed);
  EXPECT_NE(t.advice.find("OLLAMA_MAX_LOADED_MODELS=2"), std::string::npos);
}

TEST(PlanTogether, ALaterModelMustFitTheGpuBesideTheOthers) {
  // Two 8B models each fit a 10 GiB GPU alone, not both: Ollama would unload the first to load the second.
  const std::vector<PlanModel> models{from_catalog("llama3.1:8b"), from_catalog("llama3.1:8b-q8_0")};
  const auto h = host(32 * k_gib, 10 * k_gib);
  std::vector<ModelPlan> alone{plan(models[0], ctx(4096), h), plan(models[1], ctx(4096), h)};
  ASSERT_EQ(alone[0].verdict, FitVerdict::gpu);
  ASSERT_EQ(alone[1].verdict, FitVerdict::gpu);
  const auto t = plan_together(models, alone, ctx(4096), h);
  EXPECT_FALSE(t.fit);
  EXPECT_EQ(t.verdicts[0], FitVerdict::gpu);
  EXPECT_NE(t.verdicts[1], FitVerdict::gpu);
  EXPECT_LT(t.placements[1].layers_on_gpu, alone[1].placement.layers_on_gpu);
  EXPECT_FALSE(t.container_limit_together);
  EXPECT_EQ(t.container_limit_exclusive, std::max(alone[0].container_limit, alone[1].container_limit));
  EXPECT_NE(t.advice.find("llama3.1:8b-q8_0 does not fit on the GPU beside"), std::string::npos) << t.advice;
  EXPECT_NE(t.advice.find("OLLAMA_MAX_LOADED_MODELS=1"), std::string::npos);
}

TEST(PlanTogether, WithoutAGpuModelsShareTheRam) {
  const std::vector<PlanModel> models{from_catalog("mistral:7b"), from_catalog("llama3.1:8b")};
  const auto roomy = host(32 * k_gib, 0);
  const auto t =
      plan_together(models, {plan(models[0], ctx(4096), roomy), plan(models[1], ctx(4096), roomy)}, ctx(4096), roomy);
  EXPECT_TRUE(t.fit);
  EXPECT_EQ(t.verdicts[1], FitVerdict::cpu);
  // 14 GiB: each fits alone (about 5 GiB), both together (about 10 GiB) do not leave the 4 GiB reserve.
  const auto tight = host(14 * k_gib, 0);
  const std::vector<ModelPlan> alone{plan(models[0], ctx(4096), tight), plan(models[1], ctx(4096), tight)};
  ASSERT_EQ(alone[0].verdict, FitVerdict::cpu);
  ASSERT_EQ(alone[1].verdict, FitVerdict::cpu);
  const auto t2 = plan_together(models, alone, ctx(4096), tight);
  EXPECT_FALSE(t2.fit);
  EXPECT_EQ(t2.verdicts[1], FitVerdict::no_fit);
  EXPECT_NE(t2.advice.find("llama3.1:8b does not fit in the RAM the models before it left"), std::string::npos)
      << t2.advice;
}

TEST(PlanTogether, TheIncidentsLargeModelsOnlyFitOneAtATime) {
  const std::vector<PlanModel> models{from_catalog("deepseek-coder:33b"), from_catalog("codellama:34b"),
                                      from_catalog("llama3.1:70b")};
  // 24 GiB and a 16 GiB GPU: the 33B and 34B models fit alone (split); the 70B does not fit at all.
  const auto h = host(24 * k_gib, 16 * k_gib);
  std::vector<ModelPlan> alone;
  for (const auto& m : models) {
    alone.push_back(plan(m, ctx(2048), h));
  }
  ASSERT_EQ(alone[0].verdict, FitVerdict::split);
  ASSERT_EQ(alone[1].verdict, FitVerdict::split);
  ASSERT_EQ(alone[2].verdict, FitVerdict::no_fit);
  const auto two = plan_together({models[0], models[1]}, {alone[0], alone[1]}, ctx(2048), h);
  EXPECT_FALSE(two.fit);
  EXPECT_EQ(two.container_limit_exclusive, std::max(alone[0].container_limit, alone[1].container_limit));
  EXPECT_NE(
      two.advice.find("codellama:34b does not fit beside the models before it, neither on the GPU nor in the RAM"),
      std::string::npos)
      << two.advice;

  // The 70B model's limit (it does not fit) is no part of the exclusive limit, and the advice names it.
  const auto three = plan_together(models, alone, ctx(2048), h);
  EXPECT_FALSE(three.fit);
  EXPECT_EQ(three.container_limit_exclusive, two.container_limit_exclusive);
  EXPECT_LE(*three.container_limit_exclusive, h.ram_usable());
  EXPECT_NE(three.advice.find("llama3.1:70b does not fit this host even alone"), std::string::npos) << three.advice;
  EXPECT_NE(three.advice.find("plan the others (deepseek-coder:33b, codellama:34b) again"), std::string::npos);
}

TEST(PlanTogether, TheDownloadsAreAddedUp) {
  const std::vector<PlanModel> models{from_catalog("codellama:34b"), from_catalog("deepseek-coder:33b")};
  auto h = host(64 * k_gib, 0);
  h.disk_available = 30 * k_gib;  // room for either download, not both
  const std::vector<ModelPlan> alone{plan(models[0], ctx(2048), h), plan(models[1], ctx(2048), h)};
  ASSERT_FALSE(alone[0].disk_short);
  ASSERT_FALSE(alone[1].disk_short);
  const auto t = plan_together(models, alone, ctx(2048), h);
  EXPECT_EQ(t.disk_needed, models[0].file_bytes + models[1].file_bytes);
  EXPECT_TRUE(t.disk_short);
  EXPECT_NE(t.advice.find("the downloads"), std::string::npos);
}

TEST(PlanTogether, TheTogetherLimitNeverTakesTheReserve) {
  // Two models on the CPU that together need most of what the host has for models.
  const std::vector<PlanModel> models{from_catalog("mistral:7b"), from_catalog("llama3.1:8b")};
  const auto probe = host(64 * k_gib, 0);
  const auto need = plan(models[0], ctx(4096), probe).ram_needed + plan(models[1], ctx(4096), probe).ram_needed;
  const auto h = host(need + 4 * k_gib + 256 * k_mib, 0);  // fits, but not with 20% headroom
  const auto t = plan_together(models, {plan(models[0], ctx(4096), h), plan(models[1], ctx(4096), h)}, ctx(4096), h);
  ASSERT_TRUE(t.fit);
  ASSERT_TRUE(t.container_limit_together);
  EXPECT_LE(*t.container_limit_together, h.ram_usable());
  EXPECT_GE(*t.container_limit_together, need);
}

TEST(PlanServerSettings, TheServersEnvironmentSaysHowItSizesModels) {
  const auto s = server_settings_from_env({{"OLLAMA_CONTEXT_LENGTH", "8192"},
                                           {"OLLAMA_NUM_PARALLEL", "2"},
                                           {"OLLAMA_KV_CACHE_TYPE", "q8_0"},
                                           {"OLLAMA_MODELS", "/models"}},
                                          "ollama-gpu");
  EXPECT_EQ(s.num_ctx, 8192U);
  EXPECT_EQ(s.parallel, 2U);
  EXPECT_EQ(s.kv_type, KvType::q8_0);
  EXPECT_EQ(s.models_dir, "/models");
  EXPECT_TRUE(s.notes.empty());

  // 0 is Ollama's "automatic"; junk is left out with a note naming the server and the variable.
  const auto odd = server_settings_from_env(
      {{"OLLAMA_CONTEXT_LENGTH", "0"}, {"OLLAMA_NUM_PARALLEL", "lots"}, {"OLLAMA_KV_CACHE_TYPE", "q5_1"}}, "srv");
  EXPECT_FALSE(odd.num_ctx);
  EXPECT_FALSE(odd.parallel);
  EXPECT_FALSE(odd.kv_type);
  ASSERT_EQ(odd.notes.size(), 2U);
  EXPECT_EQ(odd.notes[0], "srv: OLLAMA_NUM_PARALLEL='lots' is not a count Ollama uses; ignored");
  EXPECT_NE(odd.notes[1].find("OLLAMA_KV_CACHE_TYPE='q5_1'"), std::string::npos);
  EXPECT_FALSE(server_settings_from_env({}, "srv").models_dir);
}

TEST(Plan, TheGpuReserveIsASetting) {
  const auto m = from_catalog("mistral:7b");
  const auto h = host(32 * k_gib, 16 * k_gib);
  auto s = ctx(4096);
  const auto classic = plan(m, s, h);
  s.gpu_reserve = k_gib;  // what newer Ollama keeps
  const auto newer = plan(m, s, h);
  EXPECT_EQ(newer.options.gpu_reserve, k_gib);
  EXPECT_EQ(newer.placement.vram, classic.placement.vram + k_gib - (457 * k_mib));
}

TEST(PlanServerSettings, ValuesAreReadAsOllamaReadsThem) {
  // Quotes and spaces from a compose file, an upper-case cache type, and a quantized cache without
  // flash attention (Ollama falls back to f16).
  const auto s = server_settings_from_env(
      {{"OLLAMA_CONTEXT_LENGTH", " \"8192\" "}, {"OLLAMA_KV_CACHE_TYPE", "'Q8_0'"}, {"OLLAMA_MODELS", "\"/models\""}},
      "srv");
  EXPECT_EQ(s.num_ctx, 8192U);
  EXPECT_EQ(s.kv_type, KvType::q8_0);
  EXPECT_EQ(s.models_dir, "/models");
  EXPECT_TRUE(s.notes.empty());
  const auto no_fa =
      server_settings_from_env({{"OLLAMA_KV_CACHE_TYPE", "q8_0"}, {"OLLAMA_FLASH_ATTENTION", "false"}}, "srv");
  EXPECT_EQ(no_fa.kv_type, KvType::f16);
  ASSERT_EQ(no_fa.notes.size(), 1U);
  EXPECT_NE(no_fa.notes[0].find("Ollama uses f16"), std::string::npos);
}

TEST(Plan, AMixtureOfExpertsWithOnlyItsAttentionOnTheGpuIsSplitNotCpuOnly) {
  // qwen3:30b on a GPU with 2 GiB free: not one layer's experts fit, but every layer's attention, the cache
  // and the output do (llama.cpp --fit). The GPU is used: split, and a projector would go there too.
  const auto m = from_catalog("qwen3:30b");
  const auto p = plan(m, ctx(4096), host(64 * k_gib, 2 * k_gib));
  EXPECT_TRUE(p.placement.experts_split);
  EXPECT_EQ(p.placement.layers_on_gpu, 0U);
  EXPECT_GT(p.placement.vram, 0U);
  EXPECT_EQ(p.verdict, FitVerdict::split);
}
