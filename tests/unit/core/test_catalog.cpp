// The built-in catalog's tensor sizes against the sizes of the real files Ollama serves.
#include <gtest/gtest.h>

#include <numeric>

#include "core/catalog.hpp"
#include "gguf_writer.hpp"

using namespace mw;

namespace {

std::uint64_t weights(const ModelShape& m) {
  return std::accumulate(m.block_bytes.begin(), m.block_bytes.end(), m.token_embd_bytes + m.output_bytes);
}

}  // namespace

TEST(Catalog, Codellama34bQ4_0IsTheSizeOfOllamasFile) {
  const auto m = catalog_shape("codellama:34b");
  ASSERT_TRUE(m) << m.error().line();
  EXPECT_EQ(m->block_count, 48U);
  ASSERT_EQ(m->block_bytes.size(), 48U);
  // /api/tags for codellama:34b (q4_0): 19,052,049,085 bytes, of which the header (tokenizer) is under 1 MB.
  const auto total = static_cast<double>(weights(*m));
  EXPECT_LE(total, 19'052'049'085.0);
  EXPECT_GE(total, 19'052'049'085.0 - 1e6);
  // "weights about 17.8 GiB"
  EXPECT_NEAR(total / (1ULL << 30), 17.74, 0.05);
}

TEST(Catalog, QuantizedTagsLandWhereOllamaListsThem) {
  // `ollama list` sizes (decimal GB): llama3.1:8b 4.9 GB, llama3.1:70b 42 GB (43 GB on the site),
  // deepseek-coder:33b 18 GB (TheBloke's Q4_0 18.82 GB). Within what the listing's rounding allows.
  const auto gb = [](std::string_view name) {
    const auto m = catalog_shape(name);
    EXPECT_TRUE(m) << name;
    return m ? static_cast<double>(weights(*m)) / 1e9 : 0.0;
  };
  EXPECT_NEAR(gb("llama3.1:8b"), 4.9, 0.1);
  EXPECT_GE(gb("llama3.1:70b"), 42.0);
  EXPECT_LT(gb("llama3.1:70b"), 43.5);
  EXPECT_NEAR(gb("deepseek-coder:33b"), 18.8, 0.2);
  // A quantization suffix changes the sizes, f16 is about four times q4_0.
  EXPECT_GT(gb("codellama:34b-instruct-q8_0"), gb("codellama:34b") * 1.7);
  EXPECT_NEAR(gb("mistral:7b-f16"), 14.5, 0.2);
}

TEST(Catalog, UnknownNamesAndQuantizationsAreClearErrors) {
  const auto unknown = catalog_shape("llama9:1t");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().source, "llama9:1t");
  EXPECT_NE(unknown.error().message.find("codellama:34b"), std::string::npos);
  const auto quant = catalog_shape("mistral:7b-q3_K_S");
  ASSERT_FALSE(quant);
  EXPECT_NE(quant.error().message.find("q3_K_S"), std::string::npos);
}

TEST(Catalog, TheShapeFeedsTheEstimator) {
  const auto m = catalog_shape("codellama:34b");
  ASSERT_TRUE(m);
  EstimateOptions o;
  o.num_ctx = 2048;
  const auto placed = place_model(*m, o, 16ULL << 30);  // the incident host's 16 GiB GPU
  ASSERT_TRUE(placed) << placed.error().line();
  EXPECT_EQ(placed->kv, 384ULL << 20);
  EXPECT_GT(placed->layers_on_gpu, 30U);  // most of it on the GPU ...
  EXPECT_LT(placed->layers_on_gpu, 49U);  // ... but not all
  EXPECT_LE(placed->vram, 16ULL << 30);
}

TEST(Catalog, NamesAreMatchedAsOllamaMatchesThem) {
  // Without regard to case, fp16 as Ollama's tags spell it, and the plain family name is its latest tag.
  const auto upper = catalog_find("LLAMA3.1:8B");
  ASSERT_TRUE(upper) << upper.error().line();
  EXPECT_EQ(upper->model->name, "llama3.1:8b");
  const auto fp16 = catalog_find("codellama:34b-instruct-fp16");
  ASSERT_TRUE(fp16) << fp16.error().line();
  EXPECT_EQ(fp16->quantization, "f16");
  for (const auto* name : {"mistral", "mistral:latest", "Mistral:Latest"}) {
    const auto latest = catalog_find(name);
    ASSERT_TRUE(latest) << name;
    EXPECT_EQ(latest->model->name, "mistral:7b");
  }
  // deepseek-coder's latest tag is a 1.3B model the catalog does not know: no guess.
  EXPECT_FALSE(catalog_find("deepseek-coder"));
  EXPECT_EQ(known_quantization("Q4_K_M"), "q4_K_M");
  EXPECT_FALSE(known_quantization("q5_K_M"));
}

TEST(Catalog, OnlyDenseLlamaShapedFilesGetOtherQuantizations) {
  auto spec = test::gguf_preset(test::GgufPreset::mistral_7b_q4_0, test::GgufVocab::compact);
  const auto dims_of = [](const test::GgufSpec& s) {
    const auto file = parse_gguf(test::gguf_header(s), "t");
    EXPECT_TRUE(file) << file.error().line();
    return file ? dims_from_gguf(*file) : std::nullopt;
  };
  const auto dense = dims_of(spec);
  ASSERT_TRUE(dense);
  EXPECT_EQ(dense->feed_forward_length, 14336U);
  // Mixtral: the same metadata with experts.
  auto moe = spec;
  moe.add("llama.expert_count", GgufValue{std::uint32_t{8}});
  EXPECT_FALSE(dims_of(moe));
  // Mistral-Nemo: heads of 128 with an embedding of 5120 and 32 heads (160 each).
  auto nemo = spec;
  nemo.add("llama.attention.key_length", GgufValue{std::uint32_t{96}});
  EXPECT_FALSE(dims_of(nemo));
  auto stated = spec;
  stated.add("llama.attention.key_length", GgufValue{std::uint32_t{128}});  // 4096 / 32: plain
  EXPECT_TRUE(dims_of(stated));
}
