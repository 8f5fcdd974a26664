// The estimator's formulas against published figures and hand-checked placements.
#include <gtest/gtest.h>

#include "core/catalog.hpp"
#include "core/estimate.hpp"
#include "gguf_writer.hpp"

using namespace mw;

namespace {

constexpr std::uint64_t k_mib = 1ULL << 20;
constexpr std::uint64_t k_gib = 1ULL << 30;

// Architecture figures from the published configs (../shared/reference/estimation.md §5); weights are
// placeholders of 1 GiB a block unless a test sets them.
ModelShape shape(std::uint64_t blocks, std::uint64_t d, std::uint64_t heads, std::uint64_t kv_heads,
                 std::uint64_t vocab) {
  ModelShape m;
  m.architecture = "llama";
  m.block_count = blocks;
  m.embedding_length = d;
  m.head_count = heads;
  m.head_count_kv = kv_heads;
  m.vocab_size = vocab;
  m.block_bytes.assign(blocks, k_gib);
  m.token_embd_bytes = 100 * k_mib;
  m.output_bytes = 100 * k_mib;
  return m;
}

ModelShape codellama_34b() {
  return shape(48, 8192, 64, 8, 32000);
}
ModelShape mistral_7b() {
  return shape(32, 4096, 32, 8, 32768);
}

}  // namespace

TEST(Estimate, KvCacheMatchesThePublishedFigures) {
  EstimateOptions o;
  o.num_ctx = 2048;
  // Ollama's documentation of codellama:34b and mistral at ctx 2048 (ollama.md §4).
  EXPECT_EQ(kv_bytes_per_block(codellama_34b(), o) * 48, 384 * k_mib);
  EXPECT_EQ(kv_bytes_per_block(mistral_7b(), o) * 32, 256 * k_mib);
  const auto placed = place_model(codellama_34b(), o, 0);
  ASSERT_TRUE(placed) << placed.error().line();
  EXPECT_EQ(placed->kv, 384 * k_mib);
}

TEST(Estimate, QuantizedKvUsesTheTrueBlockBytesAndNeedsFlashAttention) {
  EstimateOptions o;
  o.num_ctx = 2048;
  o.kv_type = KvType::q8_0;
  EXPECT_FALSE(place_model(codellama_34b(), o, 0));  // no flash attention
  o.flash_attention = true;
  EXPECT_EQ(kv_bytes_per_block(codellama_34b(), o) * 48, 384 * k_mib / 64 * 34);  // 34 bytes per 32 elements
  o.kv_type = KvType::q4_0;
  EXPECT_EQ(kv_bytes_per_block(codellama_34b(), o) * 48, 384 * k_mib / 64 * 18);  // 18 bytes per 32
  auto odd = codellama_34b();
  odd.key_length = 80;  // not a multiple of the 32-element block
  odd.value_length = 80;
  const auto refused = place_model(odd, o, 0);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("divisible by 32"), std::string::npos);
}

TEST(Estimate, ContextIsPaddedTo256PerSlotAndMultipliedByParallel) {
  EstimateOptions o;
  o.num_ctx = 2000;
  EXPECT_EQ(kv_cells(o), 2048U);
  o.parallel = 4;
  EXPECT_EQ(kv_cells(o), 4 * 2048U);
  EXPECT_EQ(kv_bytes_per_block(mistral_7b(), o) * 32, 4 * 256 * k_mib);
  o.num_ctx = 2049;
  o.parallel = 1;
  EXPECT_EQ(kv_cells(o), 2304U);
}

TEST(Estimate, BlocksGoOnTheGpuFromTheLastDownWhileTheyFit) {
  EstimateOptions o;
  o.num_ctx = 2048;
  auto m = mistral_7b();
  const auto kv = kv_bytes_per_block(m, o);
  const auto g = graph_bytes(m, o);
  const auto base = o.gpu_reserve + std::max(g.full, g.partial);
  // Room for exactly 10 blocks and their KV.
  const auto free = base + 10 * (k_gib + kv) + kv / 2;
  const auto placed = place_model(m, o, free);
  ASSERT_TRUE(placed) << placed.error().line();
  EXPECT_EQ(placed->layers_total, 33U);
  EXPECT_EQ(placed->layers_on_gpu, 10U);
  EXPECT_FALSE(placed->full_offload());
  EXPECT_EQ(placed->vram, o.gpu_reserve + g.partial + 10 * (k_gib + kv));
  // 22 blocks, token_embd and the output layer stay on the CPU, mapped from the file.
  EXPECT_EQ(placed->ram_page_cache, 22 * k_gib + 200 * k_mib);
  EXPECT_EQ(placed->ram_resident, 22 * kv);
  // `ollama ps` leaves token_embd (100 MiB) out of the model's size.
  EXPECT_NEAR(
      placed->gpu_fraction(),
      static_cast<double>(placed->vram) / static_cast<double>(placed->vram + 22 * k_gib + 100 * k_mib + 22 * kv),
      1e-12);

  // A GPU is used only when it holds two of the largest block: with a 20 GiB block it is not used at all.
  m.block_bytes.back() = 20 * k_gib;
  const auto uneven = place_model(m, o, free);
  ASSERT_TRUE(uneven);
  EXPECT_EQ(uneven->layers_on_gpu, 0U);
  EXPECT_EQ(uneven->vram, 0U);
}

TEST(Estimate, FullOffloadPlacesTheOutputLayerAndChargesTheFullGraph) {
  EstimateOptions o;
  o.num_ctx = 2048;
  const auto m = mistral_7b();
  const auto placed = place_model(m, o, 200 * k_gib);
  ASSERT_TRUE(placed);
  EXPECT_TRUE(placed->full_offload());
  EXPECT_EQ(placed->layers_on_gpu, 33U);
  EXPECT_EQ(placed->vram, o.gpu_reserve + placed->graph.full + 32 * k_gib + 100 * k_mib + placed->kv);
  EXPECT_EQ(placed->ram_page_cache, 100 * k_mib);  // token_embd stays on the CPU
  EXPECT_EQ(placed->ram_resident, 0U);
}

TEST(Estimate, WithoutAGpuOrRoomForTwoBlocksItIsCpuOnly) {
  EstimateOptions o;
  o.num_ctx = 2048;
  const auto m = mistral_7b();
  for (const std::uint64_t free : {std::uint64_t{0}, 2 * k_gib}) {
    const auto placed = place_model(m, o, free);
    ASSERT_TRUE(placed);
    EXPECT_EQ(placed->layers_on_gpu, 0U) << free;
    EXPECT_EQ(placed->vram, 0U);
  }
  o.loading = WeightLoading::no_mmap;  // weights read into memory: resident, not page cache
  const auto resident = place_model(m, o, 0);
  ASSERT_TRUE(resident);
  EXPECT_EQ(resident->ram_page_cache, 0U);
  EXPECT_EQ(resident->ram_resident, 32 * k_gib + 200 * k_mib + resident->kv + resident->graph.partial);
}

TEST(Estimate, ShapesThatCannotBeSizedAreRefused) {
  auto m = mistral_7b();
  m.block_bytes.pop_back();
  const auto r = place_model(m, {}, 0);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("31 block sizes for 32 blocks"), std::string::npos) << r.error().line();
  auto no_heads = mistral_7b();
  no_heads.head_count_kv = 0;
  EXPECT_FALSE(place_model(no_heads, {}, 0));
  EXPECT_EQ(parse_kv_type("q8_0"), KvType::q8_0);
  EXPECT_FALSE(parse_kv_type("q5_0").has_value());
}

TEST(Estimate, ShapeFromAGgufHeaderAgreesWithTheCatalog) {
  // Two independent constructions of codellama:34b Q4_0: the test writer's tensor list, parsed back from
  // its header, and the catalog's arithmetic from the published config.
  const auto header = test::gguf_header(test::gguf_preset(test::GgufPreset::codellama_34b_q4_0));
  const auto file = parse_gguf(header, "codellama.gguf");
  ASSERT_TRUE(file) << file.error().line();
  const auto from_file = shape_from_gguf(*file, "codellama.gguf");
  ASSERT_TRUE(from_file) << from_file.error().line();
  const auto from_catalog = catalog_shape("codellama:34b");
  ASSERT_TRUE(from_catalog);
  EXPECT_EQ(from_file->block_count, 48U);
  EXPECT_EQ(from_file->head_count_kv, 8U);
  EXPECT_EQ(from_file->key_length, 128U);
  EXPECT_EQ(from_file->vocab_size, 32000U);
  EstimateOptions o;
  o.num_ctx = 2048;
  const auto placed = place_model(*from_file, o, 0);
  ASSERT_TRUE(placed) << placed.error().line();
  EXPECT_EQ(placed->kv, 384 * k_mib);                                    // published: 384 MiB
  EXPECT_NEAR(static_cast<double>(placed->weights) / k_gib, 17.8, 0.1);  // published: about 17.8 GiB
  const auto catalog_weights = place_model(*from_catalog, o, 0)->weights;
  EXPECT_NEAR(static_cast<double>(placed->weights), static_cast<double>(catalog_weights),
              0.01 * static_cast<double>(catalog_weights));
}

TEST(Estimate, ShapeFromGgufRefusesWhatItCannotSize) {
  GgufFile f;
  EXPECT_FALSE(shape_from_gguf(f, "x.gguf"));  // no architecture
  f.metadata.push_back({"general.architecture", GgufValue{std::string("llama")}});
  const auto missing = shape_from_gguf(f, "x.gguf");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("llama.block_count is missing"), std::string::npos) << missing.error().line();
  f.metadata.push_back({"llama.block_count", GgufValue{std::uint32_t{2}}});
  f.metadata.push_back({"llama.embedding_length", GgufValue{std::uint32_t{64}}});
  f.metadata.push_back({"llama.attention.head_count", GgufValue{std::uint32_t{4}}});
  GgufTensorInfo stray;
  stray.name = "blk.7.attn_q.weight";
  stray.bytes = 10;
  f.tensors.push_back(stray);
  const auto outside = shape_from_gguf(f, "x.gguf");
  ASSERT_FALSE(outside);
  EXPECT_NE(outside.error().message.find("outside the 2 blocks"), std::string::npos);
}

TEST(Estimate, ATiedOutputLayerIsInTheFileAndOnTheCpuOnce) {
  auto tied = mistral_7b();
  tied.output_bytes = tied.token_embd_bytes;  // shape_from_gguf's copy of token_embd
  tied.output_tied = true;
  auto separate = mistral_7b();
  EstimateOptions o;
  const auto blocks = 32 * k_gib;
  // CPU only: the mapped file holds token_embd and the blocks; the tied output layer is token_embd.
  const auto cpu = place_model(tied, o, 0);
  ASSERT_TRUE(cpu);
  EXPECT_EQ(cpu->weights, blocks + tied.token_embd_bytes);
  EXPECT_EQ(cpu->ram_page_cache, cpu->weights);
  const auto cpu_separate = place_model(separate, o, 0);
  EXPECT_EQ(cpu_separate->ram_page_cache, blocks + separate.token_embd_bytes + separate.output_bytes);
  // Fully offloaded: the GPU holds a copy of it, the CPU side keeps token_embd.
  const auto gpu = place_model(tied, o, 80 * k_gib);
  ASSERT_TRUE(gpu && gpu->full_offload());
  EXPECT_EQ(gpu->ram_page_cache, tied.token_embd_bytes);
  EXPECT_EQ(gpu->vram, place_model(separate, o, 80 * k_gib)->vram);
  EXPECT_EQ(gpu->gpu_fraction(), 1.0);
}

TEST(Estimate, TheSplitLeavesTokenEmbdOutAsOllamaPsDoes) {
  const auto m = mistral_7b();
  EstimateOptions o;
  const auto p = place_model(m, o, 20 * k_gib);
  ASSERT_TRUE(p);
  ASSERT_FALSE(p->full_offload());
  const auto cpu = p->ram_resident + p->ram_page_cache - m.token_embd_bytes;
  EXPECT_DOUBLE_EQ(p->gpu_fraction(), static_cast<double>(p->vram) / static_cast<double>(p->vram + cpu));
}
