// The built-in catalog: its table against the sizes of the files Ollama serves, the layouts of every
// quantization, and names matched as Ollama matches them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>

#include "core/catalog.hpp"
#include "core/text.hpp"
#include "gguf_writer.hpp"

using namespace mw;

namespace {

const CatalogModel& entry(std::string_view name) {
  const auto m = catalog_find(name);
  EXPECT_TRUE(m) << name;
  return *m->model;
}

double layout_gb(std::string_view name, std::string_view quant) {
  const auto& e = entry(name);
  const auto m = quantized_shape(e.dims, quant, name);
  EXPECT_TRUE(m) << name << " " << quant;
  return m ? static_cast<double>(m->weight_bytes() + e.projector_bytes) / 1e9 : 0.0;
}

}  // namespace

TEST(Catalog, Codellama34bQ4_0LaysOutToTheSizeOfOllamasFile) {
  // /api/tags for codellama:34b (q4_0): 19,052,049,085 bytes, of which the header (tokenizer) is under 1 MB.
  // The layout from the dimensions alone, before any published size is applied.
  const auto m = quantized_shape(entry("codellama:34b").dims, "q4_0", "codellama:34b");
  ASSERT_TRUE(m) << m.error().line();
  EXPECT_EQ(m->block_count, 48U);
  const auto total = static_cast<double>(m->weight_bytes());
  EXPECT_LE(total, 19'052'049'085.0);
  EXPECT_GE(total, 19'052'049'085.0 - 1e6);
}

TEST(Catalog, EveryEntryLaysOutNearEachOfItsPublishedSizes) {
  // The table's dimensions and llama.cpp's quantization rules against every published download size: a
  // wrong layer count, FFN or vocabulary shows here. ollama.com rounds to 2 or 3 digits, and Ollama's own
  // quantizer keeps a few more tensors at 6 bits than llama.cpp's, hence 10%.
  ASSERT_GE(catalog().size(), 40U);
  for (const auto& e : catalog()) {
    ASSERT_FALSE(e.sizes.empty()) << e.name;
    EXPECT_EQ(e.sizes.front().quantization, e.default_quantization) << e.name;
    EXPECT_FALSE(e.source.empty()) << e.name;
    for (const auto& s : e.sizes) {
      const auto gb = layout_gb(e.name, s.quantization);
      const auto published = static_cast<double>(s.bytes) / 1e9;
      EXPECT_NEAR(gb, published, published * 0.10) << e.name << " " << s.quantization;
    }
  }
}

TEST(Catalog, NamesAndAliasesAreUniqueAndLowerCase) {
  std::set<std::string> seen;
  for (const auto& e : catalog()) {
    std::vector<std::string> names{e.name};
    names.insert(names.end(), e.aliases.begin(), e.aliases.end());
    for (const auto& n : names) {
      EXPECT_TRUE(seen.insert(n).second) << n << " twice";
      EXPECT_EQ(n, ascii_lower(n));
      const auto found = catalog_find(n);
      ASSERT_TRUE(found) << n;
      EXPECT_EQ(found->model, &e) << n;
      EXPECT_EQ(found->quantization, e.default_quantization);
    }
    EXPECT_TRUE(known_quantization(e.default_quantization)) << e.name;
  }
}

TEST(Catalog, APublishedSizeFixesTheTotalAndTheLayoutSpreadsIt) {
  // gemma3:12b: the layout is 0.1% short of Ollama's file; scaled to it, every block keeps its share.
  const auto match = catalog_find("gemma3:12b");
  ASSERT_TRUE(match);
  ASSERT_TRUE(match->published);
  const auto layout = quantized_shape(match->model->dims, match->quantization, "gemma3:12b");
  const auto scaled = catalog_shape("gemma3:12b");
  ASSERT_TRUE(layout && scaled);
  EXPECT_NEAR(static_cast<double>(scaled->weight_bytes() + match->model->projector_bytes),
              static_cast<double>(*match->published), 64.0);
  const double f = static_cast<double>(scaled->block_bytes[0]) / static_cast<double>(layout->block_bytes[0]);
  for (std::size_t i = 0; i < layout->block_bytes.size(); ++i) {
    EXPECT_NEAR(static_cast<double>(scaled->block_bytes[i]), static_cast<double>(layout->block_bytes[i]) * f, 1.0);
  }
  // A quantization without a published size is the layout itself.
  const auto q3 = catalog_find("gemma3:12b-it-q3_K_M");
  ASSERT_TRUE(q3);
  EXPECT_FALSE(q3->published);
  const auto q3_shape = catalog_shape("gemma3:12b-it-q3_K_M");
  ASSERT_TRUE(q3_shape);
  EXPECT_EQ(q3_shape->weight_bytes(), quantized_shape(match->model->dims, "q3_K_M", "gemma3:12b")->weight_bytes());
}

TEST(Catalog, EveryQuantizationLaysOutEveryEntryAndFewerBitsAreSmaller) {
  // The K-quant mixes by bits per weight. (Across families the order can turn: the IQ mixes keep the output
  // tensor at Q5_K where Q2_K keeps Q6_K, which decides a small model with a large vocabulary.)
  const std::vector<std::string> order{"f16", "q8_0", "q6_K", "q5_K_M", "q4_K_M", "q3_K_M", "q2_K"};
  for (const auto& e : catalog()) {
    std::uint64_t previous = UINT64_MAX;
    for (const auto& q : order) {
      const auto m = quantized_shape(e.dims, q, e.name);
      ASSERT_TRUE(m) << e.name << " " << q << ": " << m.error().line();
      EXPECT_LE(m->weight_bytes(), previous) << e.name << " " << q;
      previous = m->weight_bytes();
    }
    for (const auto& q : every_quantization()) {
      EXPECT_TRUE(quantized_shape(e.dims, q, e.name)) << e.name << " " << q;
    }
  }
  // f16 is about four times q4_0 for a dense model.
  EXPECT_NEAR(layout_gb("mistral:7b", "f16") / layout_gb("mistral:7b", "q4_0"), 3.55, 0.1);
}

TEST(Catalog, RowsThatAreNotWholeBlocksFallBackAsLlamaCppDoes) {
  // qwen2.5:0.5b's rows are 896 values, not a multiple of the K-quants' 256: llama.cpp stores those tensors
  // as Q5_0 instead of Q4_K (and Q8_0 instead of Q6_K). Ollama's file is 397,821,319 bytes.
  EXPECT_NEAR(layout_gb("qwen2.5:0.5b", "q4_K_M"), 0.398, 0.398 * 0.03);
}

TEST(Catalog, MixturesOfExpertsCountTheirExpertsAndWhatIsActive) {
  // qwen3:30b (Qwen3-30B-A3B): 30.5B weights, 3.3B active; llama.cpp's Q4_K_M is 17.35 GiB (llama.cpp#13217).
  const auto m = catalog_shape("qwen3:30b");
  ASSERT_TRUE(m) << m.error().line();
  EXPECT_TRUE(m->moe());
  EXPECT_EQ(m->expert_count, 128U);
  EXPECT_EQ(m->expert_used_count, 8U);
  const auto all = static_cast<double>(m->weight_bytes());
  EXPECT_GT(static_cast<double>(m->expert_bytes()), all * 0.85);  // nearly all of it is experts
  EXPECT_NEAR(static_cast<double>(m->active_weight_bytes()) / all, 3.3 / 30.5, 0.03);
  const auto layout = quantized_shape(entry("qwen3:30b").dims, "q4_K_M", "qwen3:30b");
  ASSERT_TRUE(layout);
  EXPECT_NEAR(static_cast<double>(layout->weight_bytes()) / (1ULL << 30), 17.35, 17.35 * 0.05);
  // gpt-oss:20b: MXFP4 experts (17 bytes per 32 weights), the rest BF16.
  const auto oss = catalog_shape("gpt-oss:20b");
  ASSERT_TRUE(oss);
  EXPECT_TRUE(oss->moe());
  EXPECT_EQ(oss->expert_count, 32U);
  EXPECT_EQ(oss->expert_used_count, 4U);
  // A dense model has no experts: all of it is active.
  const auto dense = catalog_shape("llama3.1:8b");
  ASSERT_TRUE(dense);
  EXPECT_FALSE(dense->moe());
  EXPECT_EQ(dense->active_weight_bytes(), dense->weight_bytes());
}

TEST(Catalog, SlidingWindowModelsMarkTheirLocalLayers) {
  // gemma3: five local layers then one global (llama.cpp set_swa_pattern(6)); gemma2 and gpt-oss alternate.
  const auto g3 = catalog_shape("gemma3:12b");
  ASSERT_TRUE(g3);
  ASSERT_EQ(g3->layer_swa.size(), 48U);
  EXPECT_EQ(g3->sliding_window, 1024U);
  EXPECT_EQ(std::count(g3->layer_swa.begin(), g3->layer_swa.end(), false), 8);
  EXPECT_FALSE(g3->layer_swa[5]);
  EXPECT_TRUE(g3->layer_swa[0]);
  EXPECT_TRUE(g3->layer_swa[4]);
  const auto g2 = catalog_shape("gemma2:9b");
  ASSERT_TRUE(g2);
  EXPECT_TRUE(g2->layer_swa[0]);
  EXPECT_FALSE(g2->layer_swa[1]);
  const auto llama = catalog_shape("llama3.1:8b");
  ASSERT_TRUE(llama);
  EXPECT_TRUE(llama->layer_swa.empty());
}

TEST(Catalog, UnknownNamesTagsAndQuantizationsAreClearErrors) {
  const auto unknown = catalog_shape("llama9:1t");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().source, "llama9:1t");
  EXPECT_NE(unknown.error().message.find("gemma3"), std::string::npos) << unknown.error().line();
  // A size the family does not come in: the nearest tag.
  const auto size = catalog_find("gemma3:13b");
  ASSERT_FALSE(size);
  EXPECT_NE(size.error().message.find("did you mean gemma3:12b?"), std::string::npos) << size.error().line();
  EXPECT_NE(size.error().message.find("1b, 4b, 12b, 27b"), std::string::npos) << size.error().line();
  const auto tag = catalog_find("qwen3:34b-q4_K_M");
  ASSERT_FALSE(tag);
  EXPECT_NE(tag.error().message.find("did you mean qwen3:32b?"), std::string::npos) << tag.error().line();
  // Something shaped like a quantization that llama.cpp does not make.
  const auto quant = catalog_shape("mistral:7b-q9_K");
  ASSERT_FALSE(quant);
  EXPECT_NE(quant.error().message.find("'q9_K' is not a quantization llama.cpp makes"), std::string::npos)
      << quant.error().line();
  // Every quantization llama.cpp makes is laid out, published or not.
  EXPECT_TRUE(catalog_shape("mistral:7b-instruct-q3_K_S"));
  EXPECT_TRUE(catalog_shape("llama3.1:70b-instruct-q3_K_M"));
  EXPECT_TRUE(catalog_shape("qwen2.5:7b-instruct-iq4_xs"));
}

TEST(Catalog, NamesAreMatchedAsOllamaMatchesThem) {
  // Without regard to case, fp16 as Ollama's tags spell it, and the plain family name is its latest tag.
  const auto upper = catalog_find("LLAMA3.1:8B");
  ASSERT_TRUE(upper) << upper.error().line();
  EXPECT_EQ(upper->model->name, "llama3.1:8b");
  const auto fp16 = catalog_find("codellama:34b-instruct-fp16");
  ASSERT_TRUE(fp16) << fp16.error().line();
  EXPECT_EQ(fp16->quantization, "f16");
  for (const auto* name : {"mistral", "mistral:latest", "Mistral:Latest", "library/mistral"}) {
    const auto latest = catalog_find(name);
    ASSERT_TRUE(latest) << name;
    EXPECT_EQ(latest->model->name, "mistral:7b");
  }
  const std::map<std::string, std::string> latest{
      {"llama3", "llama3:8b"},    {"gemma3", "gemma3:4b"},           {"qwen3", "qwen3:8b"},
      {"gpt-oss", "gpt-oss:20b"}, {"deepseek-r1", "deepseek-r1:8b"}, {"phi4", "phi4:14b"}};
  for (const auto& [name, model] : latest) {
    const auto found = catalog_find(name);
    ASSERT_TRUE(found) << name << ": " << found.error().line();
    EXPECT_EQ(found->model->name, model) << name;
  }
  // The variant words between size and quantization do not matter.
  const auto it = catalog_find("gemma3:27b-it-q8_0");
  ASSERT_TRUE(it);
  EXPECT_EQ(it->model->name, "gemma3:27b");
  EXPECT_EQ(it->quantization, "q8_0");
  EXPECT_EQ(known_quantization("Q4_K_M"), "q4_K_M");
  EXPECT_EQ(known_quantization("MXFP4"), "mxfp4");
  EXPECT_EQ(known_quantization("IQ2_XXS"), "iq2_xxs");
  EXPECT_FALSE(known_quantization("q7_K"));
}

TEST(Catalog, DimensionsFromAGgufFile) {
  auto spec = test::gguf_preset(test::GgufPreset::mistral_7b_q4_0, test::GgufVocab::compact);
  const auto dims_of = [](const test::GgufSpec& s) {
    const auto file = parse_gguf(test::gguf_header(s), "t");
    EXPECT_TRUE(file) << file.error().line();
    return file ? dims_from_gguf(*file) : std::nullopt;
  };
  const auto dense = dims_of(spec);
  ASSERT_TRUE(dense);
  EXPECT_EQ(dense->feed_forward_length, 14336U);
  EXPECT_EQ(dense->key_length, 0U);  // 4096 / 32: the plain head length
  // Mixtral: the same metadata with experts, each of feed_forward_length; laid out with its experts.
  auto moe = spec;
  moe.add("llama.expert_count", GgufValue{std::uint32_t{8}});
  moe.add("llama.expert_used_count", GgufValue{std::uint32_t{2}});
  const auto mixtral = dims_of(moe);
  ASSERT_TRUE(mixtral);
  EXPECT_EQ(mixtral->expert_feed_forward_length, 14336U);
  const auto laid = quantized_shape(*mixtral, "q4_0", "mixtral");
  ASSERT_TRUE(laid);
  EXPECT_TRUE(laid->moe());
  // Mistral-Nemo: heads of 128 with an embedding of 5120 and 32 heads (160 each).
  auto nemo = spec;
  nemo.add("llama.attention.key_length", GgufValue{std::uint32_t{96}});
  const auto stated = dims_of(nemo);
  ASSERT_TRUE(stated);
  EXPECT_EQ(stated->key_length, 96U);
  // An architecture memwarden does not size gives no dimensions.
  auto rwkv = spec;
  rwkv.metadata[0] = {"general.architecture", GgufValue{std::string("rwkv7")}};
  EXPECT_FALSE(dims_of(rwkv));
}

TEST(Catalog, SizedAliasesTakeTagsAndOddTailsAreSafe) {
  // phi3:medium is phi3:14b: its tags are phi3:medium-128k, phi3:medium-4k-instruct-q8_0.
  const auto medium = catalog_find("phi3:medium-128k");
  ASSERT_TRUE(medium) << medium.error().line();
  EXPECT_EQ(medium->model->name, "phi3:14b");
  const auto q8 = catalog_find("phi3:medium-4k-instruct-q8_0");
  ASSERT_TRUE(q8);
  EXPECT_EQ(q8->quantization, "q8_0");
  // Tails that only start like a quantization are variant words; sizes of 0 have no nearest size.
  for (const auto* name : {"llama3.1:8b-iq", "llama3.1:8b-fp", "llama3.1:8b-q"}) {
    const auto odd = catalog_find(name);
    ASSERT_TRUE(odd) << name;
    EXPECT_EQ(odd->quantization, "q4_K_M");
  }
  for (const auto* name : {"llama3:0b", "llama3:0x7b", "llama3:-1b"}) {
    const auto none = catalog_find(name);
    ASSERT_FALSE(none) << name;
    EXPECT_NE(none.error().message.find("did you mean"), std::string::npos) << none.error().line();
  }
}
