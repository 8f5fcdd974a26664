// The estimator per architecture against published figures: Ollama's scheduler lines and llama.cpp's load
// logs (sources in each test; the collection is docs/plan.md's accuracy table). Models come from the GGUF
// writer's presets (real metadata and tensor layouts), or from the catalog's dimensions where the figure is
// for another size of the family.
#include <gtest/gtest.h>

#include <algorithm>

#include "core/catalog.hpp"
#include "core/estimate.hpp"
#include "gguf_writer.hpp"

using namespace mw;

namespace {

constexpr double k_mib = 1 << 20;

ModelShape from_preset(test::GgufPreset preset) {
  const auto file = parse_gguf(test::gguf_header(test::gguf_preset(preset)), test::to_string(preset));
  EXPECT_TRUE(file) << file.error().line();
  if (!file) {
    return {};
  }
  auto shape = shape_from_gguf(*file, test::to_string(preset));
  EXPECT_TRUE(shape) << shape.error().line();
  return shape ? *shape : ModelShape{};
}

ModelShape from_catalog(std::string_view name, std::string_view quant) {
  const auto match = catalog_find(name);
  EXPECT_TRUE(match) << name;
  auto shape = quantized_shape(match->model->dims, quant, name);
  EXPECT_TRUE(shape) << shape.error().line();
  return shape ? *shape : ModelShape{};
}

EstimateOptions at(std::uint64_t ctx, std::uint64_t parallel = 1) {
  EstimateOptions o;
  o.num_ctx = ctx;
  o.parallel = parallel;
  return o;
}

double mib(std::uint64_t bytes) {
  return static_cast<double>(bytes) / k_mib;
}

std::uint64_t total(const std::vector<std::uint64_t>& v) {
  std::uint64_t sum = 0;
  for (const auto x : v) {
    sum += x;
  }
  return sum;
}

}  // namespace

TEST(EstimateArch, Gemma3SlidingLayersHoldTheWindowAndTheBatch) {
  // ollama#10341, gemma3:12b Q4_K_M on Ollama 0.6.5, num_ctx 2048: memory.required.kv="608.0 MiB".
  // 8 global layers × 2048 cells and 40 local ones × pad256(1024 + 512) = 1536 cells, 8 KiB a cell.
  const auto m = from_preset(test::GgufPreset::gemma3_12b_q4_k_m);
  ASSERT_EQ(m.layer_swa.size(), 48U);
  EXPECT_EQ(std::count(m.layer_swa.begin(), m.layer_swa.end(), false), 8);
  EXPECT_EQ(m.sliding_window, 1024U);
  EXPECT_EQ(m.key_length, 256U);
  const auto placed = place_model(m, at(2048), 12ULL << 30);
  ASSERT_TRUE(placed) << placed.error().line();
  EXPECT_NEAR(mib(placed->kv), 608.0, 608.0 * 0.02);
  EXPECT_EQ(placed->kv, 608ULL << 20);
  // Without the window every layer would hold 2048 cells: 768 MiB.
  auto dense = m;
  dense.layer_swa.clear();
  EXPECT_EQ(total(kv_bytes_per_layer(dense, at(2048))), 768ULL << 20);
  // The window is per slot: at 8192 and two slots a local layer holds 2 × 1536 cells, a global one 2 × 8192.
  const auto per_layer = kv_bytes_per_layer(m, at(8192, 2));
  EXPECT_EQ(per_layer[0], 2 * 1536 * 8192ULL);
  EXPECT_EQ(per_layer[5], 2 * 8192 * 8192ULL);
}

TEST(EstimateArch, GemmasGraphIsOllamasFormula) {
  // ollama#9791, gemma3:27b on Ollama 0.6.2 at 2048, split over two GPUs: memory.graph.partial="1.6 GiB"
  // (Ollama's gemma formula is dominated by the vocabulary: d·V·105/128 + 4·V·b for 262144 tokens).
  const auto m = from_catalog("gemma3:27b", "q4_K_M");
  const auto g = graph_bytes(m, at(2048));
  EXPECT_NEAR(static_cast<double>(g.partial) / (1ULL << 30), 1.6, 1.6 * 0.05);
  EXPECT_LT(g.full, g.partial);
}

TEST(EstimateArch, Gemma2AndGptOssAlternateLocalAndGlobalLayers) {
  // gemma2: even layers slide over 4096 tokens (llama.cpp set_swa_pattern(2)); below the window they hold the
  // whole context.
  const auto g2 = from_preset(test::GgufPreset::gemma2_9b_q4_0);
  ASSERT_EQ(g2.layer_swa.size(), 42U);
  EXPECT_TRUE(g2.layer_swa[0]);
  EXPECT_FALSE(g2.layer_swa[1]);
  const auto small = kv_bytes_per_layer(g2, at(2048));
  EXPECT_EQ(small[0], small[1]);
  const auto large = kv_bytes_per_layer(g2, at(32768));
  EXPECT_EQ(large[0] * 32768, large[1] * 4608);  // pad256(4096 + 512) cells against 32768
  // gpt-oss:20b at 8192 (ollama#11939, Ollama 0.11.4: memory.required.kv 0.3G): the 12 global layers hold
  // 12 × 8192 cells × 2 KiB = 192 MiB. Ollama's own engine kept 4096 + 512 cells in the 12 sliding layers
  // (108 MiB more); llama-server, which Ollama runs now, keeps pad256(128 + 512) = 768.
  const auto oss = from_preset(test::GgufPreset::gpt_oss_20b_mxfp4);
  const auto kv = kv_bytes_per_layer(oss, at(8192));
  ASSERT_EQ(kv.size(), 24U);
  std::uint64_t global = 0;
  std::uint64_t local = 0;
  for (std::size_t i = 0; i < kv.size(); ++i) {
    (oss.layer_swa[i] ? local : global) += kv[i];
  }
  EXPECT_EQ(global, 192ULL << 20);
  EXPECT_EQ(local, 12 * 768 * 2048ULL);
}

TEST(EstimateArch, ExpertsAreCountedAndOnlyTheRoutedOnesLeaveTheGpuFirst) {
  // ollama#17024, qwen3-coder:30b (Qwen3-30B-A3B) under llama-server's --fit: model 17524 + context 3072 +
  // compute 109 MiB = 20705 MiB. The context is 48 layers × 4 KV heads × 128 × 2 × 2 B = 96 KiB a token at
  // 32768 tokens.
  const auto m = from_preset(test::GgufPreset::qwen3_30b_a3b_q4_k_m);
  EXPECT_TRUE(m.moe());
  EXPECT_EQ(m.expert_count, 128U);
  EXPECT_EQ(m.expert_feed_forward_length, 768U);
  auto o = at(32768);
  o.flash_attention = true;  // Ollama's default for qwen3moe
  const auto full = place_model(m, o, 64ULL << 30);
  ASSERT_TRUE(full) << full.error().line();
  ASSERT_TRUE(full->full_offload());
  EXPECT_EQ(full->kv, 3072ULL << 20);
  const auto on_gpu = full->vram - o.gpu_reserve;  // llama-server's own breakdown has no reserve
  EXPECT_NEAR(mib(on_gpu), 20705.0, 20705.0 * 0.05);
  // On a 16 GiB GPU it does not fit whole: every layer's attention, the cache and the output stay on the
  // GPU, and the experts of the last layers are added while they fit (llama.cpp --fit). The CPU keeps
  // token_embd and the other layers' experts, mapped from the file.
  const auto split = place_model(m, o, 16ULL << 30);
  ASSERT_TRUE(split);
  EXPECT_TRUE(split->experts_split);
  EXPECT_GT(split->layers_on_gpu, 25U);
  EXPECT_LT(split->layers_on_gpu, 48U);
  EXPECT_LE(split->vram, 16ULL << 30);
  EXPECT_GT(split->vram, 15ULL << 30);
  std::uint64_t cpu_experts = 0;
  for (std::size_t i = 0; i < 48 - split->layers_on_gpu; ++i) {
    cpu_experts += m.block_expert_bytes[i];
  }
  EXPECT_EQ(split->ram_page_cache, m.token_embd_bytes + cpu_experts);
  EXPECT_EQ(split->ram_resident, 0U);  // the whole cache is on the GPU
  // Whole layers (Ollama's classic placement) would leave the cache of the CPU's layers in RAM.
  auto whole = m;
  whole.block_expert_bytes.clear();
  const auto classic = place_model(whole, o, 16ULL << 30);
  ASSERT_TRUE(classic);
  EXPECT_FALSE(classic->experts_split);
  EXPECT_GT(classic->ram_resident, 0U);
  // What a token reads: 3.3B of 30.5B.
  EXPECT_NEAR(static_cast<double>(m.active_weight_bytes()) / static_cast<double>(m.weight_bytes()), 0.11, 0.03);
}

TEST(EstimateArch, MixtralFullOffloadMatchesLlamaCpp) {
  // abetlen/llama-cpp-python#1014: Mixtral-8x7B Q4_K_M, 24.62 GiB, n_ctx 2048, every layer on the GPU:
  // "KV self size = 256.00 MiB", "VRAM used: 25145.55 MiB".
  // That file's quantizer (Dec 2023) gave fewer tensors 6 bits than today's rules: the layout, which follows
  // today's, is 7% larger, so it is scaled to the file as a published size would be.
  const auto layout = from_catalog("mixtral:8x7b", "q4_K_M");
  EXPECT_NEAR(static_cast<double>(layout.weight_bytes()) / (1ULL << 30), 24.62, 24.62 * 0.10);
  const auto m = scaled_to(layout, static_cast<std::uint64_t>(24.62 * (1ULL << 30)));
  EXPECT_TRUE(m.moe());
  const auto placed = place_model(m, at(2048), 48ULL << 30);
  ASSERT_TRUE(placed) << placed.error().line();
  ASSERT_TRUE(placed->full_offload());
  EXPECT_EQ(placed->kv, 256ULL << 20);
  EXPECT_NEAR(mib(placed->vram), 25145.55, 25145.55 * 0.05);
}

TEST(EstimateArch, MixtralPresetIsAnExpertModelWithLlamasCache) {
  // Mixtral-8x7B as today's converter writes it (architecture "llama", 3-D expert tensors). Its cache is
  // llama's: abetlen/llama-cpp-python#1014 at n_ctx 2048, "KV self size = 256.00 MiB" (32 layers × 8 KV
  // heads × 128 × 2 (K and V) × 2 B × 2048 cells).
  const auto spec = test::gguf_preset(test::GgufPreset::mixtral_8x7b_q4_k_m);
  const auto file = parse_gguf(test::gguf_header(spec), "mixtral");
  ASSERT_TRUE(file) << file.error().line();
  const auto m = from_preset(test::GgufPreset::mixtral_8x7b_q4_k_m);
  EXPECT_EQ(m.architecture, "llama");
  EXPECT_EQ(m.expert_count, 8U);
  EXPECT_EQ(m.expert_used_count, 2U);
  EXPECT_EQ(m.expert_feed_forward_length, 14336U);
  EXPECT_TRUE(m.moe());
  const auto* gate = file->find_tensor("blk.0.ffn_gate_exps.weight");
  ASSERT_NE(gate, nullptr);
  EXPECT_EQ(m.gate_exps_bytes, gate->bytes);
  EXPECT_EQ(gate->bytes, 4096ULL * 14336 * 8 / 256 * 144);  // Q4_K: 144 bytes a block of 256
  EXPECT_EQ(total(kv_bytes_per_layer(m, at(2048))), 256ULL << 20);
  const auto placed = place_model(m, at(2048), 48ULL << 30);
  ASSERT_TRUE(placed) << placed.error().line();
  ASSERT_TRUE(placed->full_offload());
  EXPECT_EQ(placed->kv, 256ULL << 20);
  // What a token reads: the attention and 2 of the 8 experts, about 13B of 46.7B.
  EXPECT_NEAR(static_cast<double>(m.active_weight_bytes()) / static_cast<double>(m.weight_bytes()), 0.28, 0.03);
}

TEST(EstimateArch, CommandR7bSlidesInThreeLayersOfFour) {
  // cohere2: llama.cpp's set_swa_pattern(4) makes layers 0, 1 and 2 of every 4 slide over 4096 tokens and
  // every 4th global. At 32768: 8 global layers × 32768 cells and 24 local ones × pad256(4096 + 512) = 4608
  // cells, 8 KV heads × 128 × 2 × 2 B = 4 KiB a cell.
  const auto m = from_preset(test::GgufPreset::command_r7b_q4_k_m);
  EXPECT_EQ(m.architecture, "cohere2");
  EXPECT_EQ(m.sliding_window, 4096U);
  EXPECT_EQ(m.context_length, 8192U);
  EXPECT_TRUE(m.output_tied);
  EXPECT_FALSE(m.moe());
  ASSERT_EQ(m.layer_swa.size(), 32U);
  for (std::size_t i = 0; i < 32; ++i) {
    EXPECT_EQ(m.layer_swa[i], i % 4 != 3) << i;
  }
  const auto kv = kv_bytes_per_layer(m, at(32768));
  ASSERT_EQ(kv.size(), 32U);
  EXPECT_EQ(kv[0], 4608ULL * 4096);
  EXPECT_EQ(kv[3], 32768ULL * 4096);
  EXPECT_EQ(total(kv), (8 * 32768ULL + 24 * 4608ULL) * 4096);
  EXPECT_EQ(total(kv), 1456ULL << 20);
}

TEST(EstimateArch, DeepSeek2PerHeadCacheAndOllamasGraph) {
  // ollama#5136, deepseek-coder-v2:16b (a file without llama.cpp's compressed cache), 8192 × 2 slots:
  // memory.required.kv="4.2 GiB" memory.graph.full="568.0 MiB" memory.graph.partial="759.4 MiB".
  const auto m = from_preset(test::GgufPreset::deepseek_v2_lite_q4_k_m);
  EXPECT_FALSE(m.latent_cache);
  EXPECT_EQ(m.key_length, 192U);
  EXPECT_EQ(m.value_length, 128U);
  EXPECT_TRUE(m.moe());
  const auto o = at(8192, 2);
  EXPECT_NEAR(static_cast<double>(total(kv_bytes_per_layer(m, o))) / (1ULL << 30), 4.2, 4.2 * 0.02);
  const auto g = graph_bytes(m, o);
  EXPECT_NEAR(mib(g.full), 568.0, 568.0 * 0.02);
  EXPECT_NEAR(mib(g.partial), 759.4, 759.4 * 0.02);
  // ollama#8447, DeepSeek-V3 (61 layers of 128 heads, the same file layout) at 2048: KV self size 9760 MiB.
  ModelShape v3 = m;
  v3.block_count = 61;
  v3.head_count = v3.head_count_kv = 128;
  v3.embedding_length = 7168;
  v3.block_bytes.assign(61, 1ULL << 30);
  v3.block_expert_bytes.assign(61, 1ULL << 29);
  const auto placed = place_model(v3, at(2048), 0);
  ASSERT_TRUE(placed) << placed.error().line();
  EXPECT_EQ(placed->kv, 9760ULL << 20);
}

TEST(EstimateArch, LatentAttentionCachesOnlyTheCompressedKey) {
  // A file converted with llama.cpp's MLA support: key_length 576 (512 + 64) and one KV head; since
  // llama.cpp PR #19067 only K is cached. ik_llama.cpp PR #259, DeepSeek-R1 (61 layers) at 32768 with a
  // q8_0 cache: "c^KV (q8_0): 1166.62 MiB".
  const auto m = from_preset(test::GgufPreset::deepseek_v2_lite_mla_q4_k_m);
  EXPECT_TRUE(m.latent_cache);
  EXPECT_EQ(m.key_length, 576U);
  EXPECT_EQ(m.head_count_kv, 1U);
  ModelShape r1 = m;
  r1.block_count = 61;
  r1.block_bytes.assign(61, 1ULL << 30);
  r1.block_expert_bytes.assign(61, 1ULL << 29);
  auto o = at(32768);
  o.kv_type = KvType::q8_0;
  o.flash_attention = true;
  const auto placed = place_model(r1, o, 0);
  ASSERT_TRUE(placed) << placed.error().line();
  EXPECT_NEAR(mib(placed->kv), 1166.62, 0.01);
  // The old layout of the same model caches 16 heads × (192 + 128): 17.8 times as much.
  const auto old = from_preset(test::GgufPreset::deepseek_v2_lite_q4_k_m);
  EXPECT_NEAR(static_cast<double>(total(kv_bytes_per_layer(old, at(4096)))) /
                  static_cast<double>(total(kv_bytes_per_layer(m, at(4096)))),
              16.0 * 320 / 576, 0.01);
}

TEST(EstimateArch, Qwen3ComputeGraphFollowsLlamaCpp) {
  // ollama#11499, qwen3:32b at 8192 without flash attention: "KV self size = 2048.00 MiB",
  // "CUDA0 compute buffer size = 1092.00 MiB" (the f32 KQ matrix of 8192 × 512 × 64 heads is 1 GiB of it).
  const auto m = from_catalog("qwen3:32b", "q4_K_M");
  auto o = at(8192);
  o.flash_attention = false;
  EXPECT_EQ(total(kv_bytes_per_layer(m, o)), 2048ULL << 20);
  EXPECT_NEAR(mib(graph_bytes(m, o).full), 1092.0, 1092.0 * 0.05);
  // Flash attention never builds that matrix: the graph is the logits' then.
  o.flash_attention = true;
  EXPECT_LT(mib(graph_bytes(m, o).full), 400.0);
}

TEST(EstimateArch, EmbeddingModelsHaveNoCache) {
  // llama.cpp's create_memory gives BERT-style models none.
  auto m = from_catalog("nomic-embed-text:v1.5", "f16");
  EXPECT_TRUE(m.embedding_only);
  const auto placed = place_model(m, at(8192), 0);
  ASSERT_TRUE(placed) << placed.error().line();
  EXPECT_EQ(placed->kv, 0U);
  EXPECT_TRUE(placed->cache_known);
}

TEST(EstimateArch, AnUnknownArchitectureHasExactWeightsAndAnUnknownCache) {
  // A recurrent model and a made-up one: their weights come from the tensors, their KV cache and graph are
  // not guessed (unknown, not 0).
  for (const std::string arch : {"mamba2", "frobnicator"}) {
    auto spec = test::gguf_preset(test::GgufPreset::mistral_7b_q4_0, test::GgufVocab::compact);
    spec.metadata[0] = {"general.architecture", GgufValue{arch}};
    for (auto& kv : spec.metadata) {
      if (kv.key.starts_with("llama.")) {
        kv.key = arch + kv.key.substr(5);
      }
    }
    const auto file = parse_gguf(test::gguf_header(spec), "t");
    ASSERT_TRUE(file) << file.error().line();
    const auto m = shape_from_gguf(*file, "t");
    ASSERT_TRUE(m) << m.error().line();
    EXPECT_FALSE(m->sizing.known) << arch;
    EXPECT_NE(m->sizing.note.find(arch), std::string::npos) << m->sizing.note;
    std::uint64_t tensors = 0;
    for (const auto& t : file->tensors) {
      tensors += t.bytes;
    }
    const auto placed = place_model(*m, at(4096), 0);
    ASSERT_TRUE(placed) << placed.error().line();
    EXPECT_FALSE(placed->cache_known);
    EXPECT_EQ(placed->weights, tensors);
    EXPECT_EQ(placed->kv, 0U);
  }
  EXPECT_NE(architecture_sizing("mamba2").note.find("recurrent"), std::string::npos);
}

TEST(EstimateArch, PerLayerHeadCountsAreRead) {
  // OpenELM-style: a KV head count per layer. A layer with no heads is a recurrent one: not sized.
  auto spec = test::gguf_preset(test::GgufPreset::mistral_7b_q4_0, test::GgufVocab::compact);
  const auto with_kv_heads = [&](std::vector<std::int32_t> heads) {
    auto s = spec;
    for (auto& kv : s.metadata) {
      if (kv.key == "llama.attention.head_count_kv") {
        kv.value = GgufValue{GgufArray{std::move(heads)}};
      }
    }
    const auto file = parse_gguf(test::gguf_header(s), "t");
    EXPECT_TRUE(file) << file.error().line();
    return shape_from_gguf(*file, "t");
  };
  std::vector<std::int32_t> rising(32, 8);
  for (std::size_t i = 16; i < 32; ++i) {
    rising[i] = 4;
  }
  const auto m = with_kv_heads(rising);
  ASSERT_TRUE(m) << m.error().line();
  EXPECT_EQ(m->head_count_kv, 8U);
  const auto kv = kv_bytes_per_layer(*m, at(2048));
  EXPECT_EQ(kv[0], 2 * kv[31]);
  auto hybrid = rising;
  hybrid[3] = 0;
  const auto h = with_kv_heads(hybrid);
  ASSERT_TRUE(h);
  EXPECT_FALSE(h->sizing.known);
  const auto short_array = with_kv_heads(std::vector<std::int32_t>(5, 8));
  ASSERT_FALSE(short_array);
  EXPECT_NE(short_array.error().message.find("not 32 of them"), std::string::npos) << short_array.error().line();
}

TEST(EstimateArch, AProjectorFileIsNotAModel) {
  const auto file = parse_gguf(test::gguf_header(test::gguf_preset(test::GgufPreset::clip_llava_projector_f16)), "p");
  ASSERT_TRUE(file) << file.error().line();
  const auto m = shape_from_gguf(*file, "mmproj.gguf");
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message.find("--mmproj"), std::string::npos) << m.error().line();
}

TEST(EstimateArch, AbsurdDimensionsAreRefusedOrBoundedNeverWrapped) {
  // From an untrusted file: widths and head counts that would overflow the products are refused; a
  // window larger than the context is the context.
  const auto shape_with = [](std::string key, GgufValue value) {
    auto spec = test::gguf_preset(test::GgufPreset::mistral_7b_q4_0, test::GgufVocab::compact);
    bool replaced = false;
    for (auto& kv : spec.metadata) {
      if (kv.key == key) {
        kv.value = value;
        replaced = true;
      }
    }
    if (!replaced) {
      spec.add(key, value);
    }
    const auto file = parse_gguf(test::gguf_header(spec), "t");
    EXPECT_TRUE(file) << file.error().line();
    return shape_from_gguf(*file, "t");
  };
  for (const auto& key : {"llama.embedding_length", "llama.attention.key_length", "llama.attention.head_count_kv"}) {
    const auto m = shape_with(key, GgufValue{std::uint64_t{1} << 61});
    ASSERT_FALSE(m) << key;
    const auto& message = m.error().message;
    EXPECT_TRUE(message.find("not a model") != std::string::npos || message.find("out of range") != std::string::npos)
        << m.error().line();
  }
  auto g2 = from_preset(test::GgufPreset::gemma2_9b_q4_0);
  g2.sliding_window = UINT64_MAX - 100;
  const auto kv = kv_bytes_per_layer(g2, at(4096));
  EXPECT_EQ(kv[0], kv[1]);  // the window holds the whole context, not a wrapped-around few cells
  // A graph fed absurd figures is capped at 1 EiB instead of being undefined behaviour.
  auto big = from_preset(test::GgufPreset::qwen3_30b_a3b_q4_k_m);
  big.vocab_size = UINT64_MAX / 2;
  EXPECT_EQ(graph_bytes(big, at(4096)).full, k_bytes_cap);
}

TEST(EstimateArch, SlotsDoNotMultiplyTheAttentionScratch) {
  // Ollama's slots are llama.cpp streams: each stream's K·Q is its own cells by its share of the batch, so
  // the worst case does not grow with OLLAMA_NUM_PARALLEL (the cache does).
  const auto m = from_catalog("qwen3:32b", "q4_K_M");
  auto one = at(8192, 1);
  auto four = at(8192, 4);
  one.flash_attention = four.flash_attention = false;
  EXPECT_EQ(graph_bytes(m, one).full, graph_bytes(m, four).full);
  EXPECT_EQ(total(kv_bytes_per_layer(m, four)), 4 * total(kv_bytes_per_layer(m, one)));
}

TEST(EstimateArch, AVisionTowerInTheModelsFileIsKeptApart) {
  // Ollama's gemma3 and qwen2.5vl blobs carry v.* and mm.* tensors: not token_embd, which stays on the CPU.
  auto spec = test::gguf_preset(test::GgufPreset::gemma3_12b_q4_k_m, test::GgufVocab::compact);
  spec.tensors.push_back({"v.blk.0.attn_q.weight", {1152, 1152}, ggml_id(GgmlType::f16), std::nullopt});
  spec.tensors.push_back({"mm.input_projection.weight", {1152, 3840}, ggml_id(GgmlType::f16), std::nullopt});
  const auto file = parse_gguf(test::gguf_header(spec), "t");
  ASSERT_TRUE(file) << file.error().line();
  const auto m = shape_from_gguf(*file, "t");
  ASSERT_TRUE(m) << m.error().line();
  EXPECT_EQ(m->vision_bytes, (1152ULL * 1152 + 1152ULL * 3840) * 2);
  const auto plain = from_preset(test::GgufPreset::gemma3_12b_q4_k_m);
  EXPECT_EQ(m->token_embd_bytes, plain.token_embd_bytes);
  EXPECT_EQ(m->weight_bytes(), plain.weight_bytes());
}

TEST(EstimateArch, LatentAttentionSurvivesALayoutFromDimensions) {
  // The other quantizations of an MLA file (and /api/show of one) keep the compressed cache.
  const auto file =
      parse_gguf(test::gguf_header(test::gguf_preset(test::GgufPreset::deepseek_v2_lite_mla_q4_k_m)), "t");
  ASSERT_TRUE(file);
  const auto dims = dims_from_gguf(*file);
  ASSERT_TRUE(dims);
  EXPECT_TRUE(dims->latent_cache);
  EXPECT_EQ(dims->key_length, 192U);  // the heads' query/key length for the layout
  const auto q8 = quantized_shape(*dims, "q8_0", "t");
  ASSERT_TRUE(q8) << q8.error().line();
  EXPECT_TRUE(q8->latent_cache);
  const auto own = shape_from_gguf(*file, "t");
  ASSERT_TRUE(own);
  EXPECT_EQ(total(kv_bytes_per_layer(*q8, at(4096))), total(kv_bytes_per_layer(*own, at(4096))));
}

TEST(EstimateArch, FiguresFromCraftedFilesAreCappedNotWrapped) {
  // A second review's inputs: a vocabulary of 2^62, a latent rank of 2^62, a MoE without expert_used_count,
  // and a cache whose product passes 2^64 at the largest context the command line takes.
  auto spec = test::gguf_preset(test::GgufPreset::mistral_7b_q4_0, test::GgufVocab::compact);
  const auto shape_of = [](const test::GgufSpec& s) {
    const auto file = parse_gguf(test::gguf_header(s), "t");
    EXPECT_TRUE(file) << file.error().line();
    return shape_from_gguf(*file, "t");
  };
  auto no_tokens = spec;
  std::erase_if(no_tokens.metadata, [](const GgufKeyValue& kv) {
    return kv.key.starts_with("tokenizer.ggml.") || kv.key == "llama.vocab_size";
  });
  no_tokens.add("llama.vocab_size", GgufValue{std::uint64_t{1} << 62});
  const auto vocab = shape_of(no_tokens);
  ASSERT_FALSE(vocab);
  EXPECT_NE(vocab.error().message.find("vocabulary"), std::string::npos);
  auto moe = spec;
  moe.add("llama.expert_count", GgufValue{std::uint32_t{8}});
  const auto used = shape_of(moe);
  ASSERT_FALSE(used);
  EXPECT_NE(used.error().message.find("expert_used_count is missing"), std::string::npos);
  const auto mla = test::gguf_preset(test::GgufPreset::deepseek_v2_lite_mla_q4_k_m, test::GgufVocab::compact);
  auto rank = mla;
  for (auto& kv : rank.metadata) {
    if (kv.key == "deepseek2.attention.kv_lora_rank") {
      kv.value = GgufValue{std::uint64_t{1} << 62};
    }
  }
  EXPECT_FALSE(shape_of(rank));
  // Within the bounds, a cache larger than 2^64 bytes is capped at 1 EiB, not wrapped to a small number.
  const auto parsed = shape_of(spec);
  ASSERT_TRUE(parsed);
  auto m = *parsed;
  m.key_length = m.value_length = k_max_model_width;
  m.head_count_kv = k_max_model_heads;
  const auto placed = place_model(m, at(1ULL << 24, 16), 8ULL << 30);
  ASSERT_TRUE(placed) << placed.error().line();
  EXPECT_EQ(placed->kv, k_bytes_cap);
  EXPECT_EQ(placed->vram, 0U);  // nothing that large goes on an 8 GiB GPU
  EXPECT_EQ(add_capped(k_bytes_cap, 1), k_bytes_cap);
  EXPECT_EQ(mul_capped(1ULL << 40, 1ULL << 40), k_bytes_cap);
  EXPECT_EQ(mul_capped(3, 5), 15U);
  // The layout from dimensions refuses the same absurd figures.
  ModelDims d = catalog_find("qwen3:30b")->model->dims;
  d.expert_count = 1ULL << 44;
  EXPECT_FALSE(quantized_shape(d, "q4_K_M", "t"));
  d = catalog_find("deepseek-coder-v2:16b")->model->dims;
  d.rope_dimension = 4096;
  EXPECT_FALSE(quantized_shape(d, "q4_K_M", "t"));
}
