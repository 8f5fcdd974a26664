#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <memory>

#include "core/gguf.hpp"
#include "gguf_writer.hpp"

using namespace mw;
using mw::test::GgufBytes;
using mw::test::GgufPreset;
using mw::test::GgufSpec;
using mw::test::GgufVocab;

namespace {

constexpr std::uint64_t k_max_u64 = std::numeric_limits<std::uint64_t>::max();

GgufSpec small_spec(std::uint32_t version) {
  GgufSpec spec;
  spec.version = version;
  spec.add("general.architecture", GgufValue{std::string("llama")});
  spec.add("llama.block_count", GgufValue{std::uint32_t{2}});
  for (auto& kv : test::gguf_every_value_type()) {
    spec.metadata.push_back(std::move(kv));
  }
  spec.tensors = {
      {"token_embd.weight", {64, 10}, ggml_id(GgmlType::q4_0), std::nullopt},
      {"blk.0.attn_q.weight", {256, 3}, ggml_id(GgmlType::q4_k), std::nullopt},
      {"blk.0.attn_norm.weight", {7}, ggml_id(GgmlType::f32), std::nullopt},
      {"blk.0.x.weight", {32, 2, 3, 4}, ggml_id(GgmlType::q8_0), std::nullopt},
      {"blk.0.y.weight", {5}, ggml_id(GgmlType::bf16), std::nullopt},
  };
  return spec;
}

// The error of parsing `bytes`, which must fail.
Error parse_error(std::string_view bytes, std::optional<std::uint64_t> file_size = std::nullopt) {
  auto parsed = parse_gguf(bytes, "model.gguf", file_size);
  EXPECT_FALSE(parsed) << "parsed although it should not";
  if (parsed) {
    return {};
  }
  const auto& e = parsed.error();
  EXPECT_EQ(e.line().rfind("model.gguf: ", 0), 0U) << e.line();
  EXPECT_EQ(e.line().find('\n'), std::string::npos) << e.line();
  return e;
}

void expect_matches_spec(const GgufFile& file, const GgufSpec& spec) {
  EXPECT_EQ(file.version, spec.version);
  EXPECT_EQ(file.metadata, spec.metadata);
  ASSERT_EQ(file.tensor_count(), spec.tensors.size());
  const auto offsets = test::gguf_offsets(spec);
  for (std::size_t i = 0; i < spec.tensors.size(); ++i) {
    const auto& t = file.tensors[i];
    EXPECT_EQ(t.name, spec.tensors[i].name);
    EXPECT_EQ(t.dims, spec.tensors[i].dims) << t.name;
    EXPECT_EQ(t.type, spec.tensors[i].type) << t.name;
    EXPECT_EQ(t.offset, offsets[i]) << t.name;
    EXPECT_EQ(t.bytes, ggml_tensor_bytes(t.type, t.dims)) << t.name;
  }
  EXPECT_EQ(file.alignment, spec.alignment);
}

}  // namespace

// ---- round trips

class GgufRoundTrip : public ::testing::TestWithParam<std::uint32_t> {};

TEST_P(GgufRoundTrip, EveryValueTypeAndNestedArrays) {
  const auto spec = small_spec(GetParam());
  const auto header = test::gguf_header(spec);
  const auto file = parse_gguf(header, "model.gguf");
  ASSERT_TRUE(file) << file.error().line();
  expect_matches_spec(*file, spec);
  EXPECT_EQ(file->data_offset, header.size()) << "the header is padded to the alignment";
  EXPECT_EQ(file->data_offset % 32, 0U);
  EXPECT_LE(file->header_bytes, file->data_offset);
  EXPECT_GT(file->header_bytes + 32, file->data_offset);
  EXPECT_FALSE(file->file_size);

  const auto* nested = file->get_array("test.array.nested");
  ASSERT_NE(nested, nullptr);
  EXPECT_EQ(nested->element_type(), GgufValueType::array);
  ASSERT_EQ(nested->size(), 2U);
  const auto& middle = std::get<std::vector<GgufArray>>(nested->items);
  ASSERT_EQ(middle[0].size(), 2U);
  const auto& innermost = std::get<std::vector<GgufArray>>(middle[0].items);
  EXPECT_EQ(std::get<std::vector<std::uint32_t>>(innermost[0].items), (std::vector<std::uint32_t>{1, 2}));
  EXPECT_EQ(innermost[1].element_type(), GgufValueType::int64);
  EXPECT_EQ(innermost[1].size(), 0U);
}

TEST_P(GgufRoundTrip, CustomAlignmentPadsHeaderAndOffsets) {
  auto spec = small_spec(GetParam());
  spec.set_alignment(64);
  const auto header = test::gguf_header(spec);
  const auto file = parse_gguf(header, "model.gguf");
  ASSERT_TRUE(file) << file.error().line();
  expect_matches_spec(*file, spec);
  EXPECT_EQ(file->alignment, 64U);
  EXPECT_EQ(file->data_offset, header.size());
  EXPECT_EQ(file->data_offset % 64, 0U);
  for (const auto& t : file->tensors) {
    EXPECT_EQ(t.offset % 64, 0U) << t.name;
  }
  const auto& last = file->tensors.back();
  EXPECT_EQ(file->data_bytes, last.offset + last.bytes);
}

INSTANTIATE_TEST_SUITE_P(Versions, GgufRoundTrip, ::testing::Values(2U, 3U));

TEST(Gguf, LookupHelpersConvertOnlyWhatFits) {
  const auto file = parse_gguf(test::gguf_header(small_spec(3)), "m");
  ASSERT_TRUE(file) << file.error().line();
  EXPECT_EQ(file->architecture(), "llama");
  EXPECT_EQ(file->arch_u64("block_count"), 2U);
  EXPECT_EQ(file->get_u64("test.uint8"), 200U);
  EXPECT_EQ(file->get_u64("test.uint64"), 18000000000000000000ULL);
  EXPECT_FALSE(file->get_u64("test.int8")) << "a negative value is no u64";
  EXPECT_EQ(file->get_i64("test.int64"), -9000000000000000000LL);
  EXPECT_FALSE(file->get_i64("test.uint64")) << "too big for an i64";
  EXPECT_EQ(file->get_f64("test.float32"), 1.5);
  EXPECT_EQ(file->get_f64("test.uint16"), 60000.0);
  EXPECT_FALSE(file->get_f64("test.string"));
  EXPECT_FALSE(file->get_u64("test.bool.true"));
  EXPECT_EQ(file->get_string("test.string"), "h\xc3\xa9llo, GGUF");
  EXPECT_FALSE(file->get_string("test.uint8"));
  EXPECT_FALSE(file->get_u64("no.such.key"));
  EXPECT_EQ(file->get_array("test.string"), nullptr);
  ASSERT_NE(file->get_array("test.array.bool"), nullptr);
  EXPECT_EQ(file->get_array("test.array.bool")->size(), 3U);
  ASSERT_NE(file->find_tensor("blk.0.x.weight"), nullptr);
  EXPECT_EQ(file->find_tensor("blk.0.x.weight")->elements(), 32U * 2 * 3 * 4);
  EXPECT_EQ(file->find_tensor("blk.0.x.weight")->type_name, "Q8_0");
  EXPECT_EQ(file->find_tensor("nope"), nullptr);
}

// ---- presets (compact vocabularies here; tests/unit/probes/test_gguf_file.cpp reads the full ones from files)

TEST(GgufPresets, EachReadsBackExactly) {
  for (const auto preset : test::all_gguf_presets()) {
    SCOPED_TRACE(test::to_string(preset));
    const auto spec = test::gguf_preset(preset, GgufVocab::compact);
    const auto file = parse_gguf(test::gguf_header(spec), test::to_string(preset));
    ASSERT_TRUE(file) << file.error().line();
    expect_matches_spec(*file, spec);
    // A CLIP projector has a vision tower's blocks, no language model's (clip.vision.block_count).
    const auto blocks = file->arch_u64(file->architecture() == "clip" ? "vision.block_count" : "block_count");
    ASSERT_TRUE(blocks);
    // At least 8 tensors a block (Command R7B: attn_norm, q, k, v, output, gate, up, down), token_embd and
    // output_norm.
    EXPECT_GE(file->tensor_count(), *blocks * 8 + 2);
  }
}

TEST(GgufPresets, Llama31_70bLayout) {
  const auto file = parse_gguf(test::gguf_header(test::gguf_preset(GgufPreset::llama31_70b_q4_k_m)), "70b");
  ASSERT_TRUE(file) << file.error().line();
  EXPECT_EQ(file->version, 3U);
  EXPECT_EQ(file->tensor_count(), 80U * 9 + 4);  // + token_embd, output_norm, output, rope_freqs
  EXPECT_EQ(file->architecture(), "llama");
  EXPECT_EQ(file->arch_u64("block_count"), 80U);
  EXPECT_EQ(file->arch_u64("embedding_length"), 8192U);
  EXPECT_EQ(file->arch_u64("feed_forward_length"), 28672U);
  EXPECT_EQ(file->arch_u64("attention.head_count"), 64U);
  EXPECT_EQ(file->arch_u64("attention.head_count_kv"), 8U);
  EXPECT_EQ(file->arch_u64("context_length"), 131072U);
  EXPECT_EQ(file->get_f64("llama.rope.freq_base"), 500000.0);
  ASSERT_NE(file->get_array("tokenizer.ggml.tokens"), nullptr);
  EXPECT_EQ(file->get_array("tokenizer.ggml.tokens")->size(), 128256U);
  EXPECT_EQ(file->get_array("tokenizer.ggml.merges")->size(), 280147U);

  const auto* embd = file->find_tensor("token_embd.weight");
  ASSERT_NE(embd, nullptr);
  EXPECT_EQ(embd->dims, (std::vector<std::uint64_t>{8192, 128256}));
  EXPECT_EQ(embd->type_name, "Q4_K");
  EXPECT_EQ(embd->bytes, 8192ULL / 256 * 144 * 128256);
  const auto* down = file->find_tensor("blk.79.ffn_down.weight");
  ASSERT_NE(down, nullptr);
  EXPECT_EQ(down->dims, (std::vector<std::uint64_t>{28672, 8192}));
  EXPECT_EQ(down->type_name, "Q6_K") << "the last eighth of the layers gets more bits";
  EXPECT_EQ(file->find_tensor("blk.40.ffn_down.weight")->type_name, "Q4_K");
  const auto* k = file->find_tensor("blk.0.attn_k.weight");
  EXPECT_EQ(k->dims, (std::vector<std::uint64_t>{8192, 1024}));
  EXPECT_EQ(file->find_tensor("output.weight")->type_name, "Q6_K");
  // Tensors are packed in file order: each offset is the previous end, aligned to 32.
  const auto& t = file->tensors;
  for (std::size_t i = 1; i < t.size(); ++i) {
    EXPECT_EQ(t[i].offset, (t[i - 1].offset + t[i - 1].bytes + 31) / 32 * 32) << t[i].name;
  }
  EXPECT_GT(file->data_bytes, 38ULL << 30);
  EXPECT_LT(file->data_bytes, 42ULL << 30);
}

TEST(GgufPresets, OtherModelsFigures) {
  const auto codellama =
      parse_gguf(test::gguf_header(test::gguf_preset(GgufPreset::codellama_34b_q4_0, GgufVocab::compact)), "c");
  ASSERT_TRUE(codellama) << codellama.error().line();
  EXPECT_EQ(codellama->tensor_count(), 48U * 9 + 3);
  EXPECT_EQ(codellama->get_u64("llama.feed_forward_length"), 22016U);
  EXPECT_EQ(codellama->get_f64("llama.rope.freq_base"), 1e6);
  EXPECT_EQ(codellama->find_tensor("blk.47.attn_q.weight")->bytes, 8192ULL * 8192 / 32 * 18);
  EXPECT_EQ(codellama->get_string("tokenizer.ggml.model"), "llama");

  const auto deepseek =
      parse_gguf(test::gguf_header(test::gguf_preset(GgufPreset::deepseek_coder_33b_q4_0, GgufVocab::compact)), "d");
  ASSERT_TRUE(deepseek) << deepseek.error().line();
  EXPECT_EQ(deepseek->arch_u64("block_count"), 62U);
  EXPECT_EQ(deepseek->arch_u64("embedding_length"), 7168U);
  EXPECT_EQ(deepseek->arch_u64("attention.head_count"), 56U);
  EXPECT_EQ(deepseek->get_string("llama.rope.scaling.type"), "linear");
  EXPECT_EQ(deepseek->get_f64("llama.rope.scaling.factor"), 4.0);
  EXPECT_EQ(deepseek->find_tensor("token_embd.weight")->dims, (std::vector<std::uint64_t>{7168, 32256}));

  const auto qwen =
      parse_gguf(test::gguf_header(test::gguf_preset(GgufPreset::qwen25_7b_q4_k_m, GgufVocab::compact)), "q");
  ASSERT_TRUE(qwen) << qwen.error().line();
  EXPECT_EQ(qwen->architecture(), "qwen2");
  EXPECT_EQ(qwen->arch_u64("attention.head_count_kv"), 4U);
  EXPECT_EQ(qwen->arch_u64("vocab_size"), 152064U);
  EXPECT_EQ(qwen->tensor_count(), 28U * 12 + 3);
  EXPECT_EQ(qwen->find_tensor("blk.3.attn_v.bias")->dims, (std::vector<std::uint64_t>{512}));
  EXPECT_EQ(qwen->find_tensor("blk.3.ffn_down.weight")->dims, (std::vector<std::uint64_t>{18944, 3584}));

  const auto mistral =
      parse_gguf(test::gguf_header(test::gguf_preset(GgufPreset::mistral_7b_q4_0, GgufVocab::compact)), "m");
  ASSERT_TRUE(mistral) << mistral.error().line();
  EXPECT_EQ(mistral->arch_u64("context_length"), 32768U);
  EXPECT_EQ(mistral->find_tensor("output.weight")->dims, (std::vector<std::uint64_t>{4096, 32768}));
}

namespace {

std::uint64_t bytes_where(const GgufFile& file, std::string_view part) {
  std::uint64_t sum = 0;
  for (const auto& t : file.tensors) {
    sum += t.name.find(part) != std::string::npos ? t.bytes : 0;
  }
  return sum;
}

GgufFile compact(GgufPreset preset) {
  auto file = parse_gguf(test::gguf_header(test::gguf_preset(preset, GgufVocab::compact)), test::to_string(preset));
  EXPECT_TRUE(file) << file.error().line();
  return file ? std::move(*file) : GgufFile{};
}

}  // namespace

TEST(GgufPresets, SlidingWindowAndTiedModels) {
  const auto gemma3 = compact(GgufPreset::gemma3_12b_q4_k_m);
  EXPECT_EQ(gemma3.architecture(), "gemma3");
  EXPECT_EQ(gemma3.arch_u64("attention.key_length"), 256U);
  EXPECT_EQ(gemma3.arch_u64("attention.sliding_window"), 1024U);
  EXPECT_EQ(gemma3.tensor_count(), 48U * 13 + 2);
  EXPECT_EQ(gemma3.find_tensor("output.weight"), nullptr) << "tied embeddings";
  EXPECT_EQ(gemma3.find_tensor("token_embd.weight")->type_name, "Q6_K") << "typed as the output it stands for";
  EXPECT_EQ(gemma3.find_tensor("blk.0.attn_q.weight")->dims, (std::vector<std::uint64_t>{3840, 4096}));
  EXPECT_EQ(gemma3.find_tensor("blk.47.attn_k_norm.weight")->dims, (std::vector<std::uint64_t>{256}));
  EXPECT_NE(gemma3.find_tensor("blk.5.post_ffw_norm.weight"), nullptr);

  const auto gemma2 = compact(GgufPreset::gemma2_9b_q4_0);
  EXPECT_EQ(gemma2.get_f64("gemma2.attn_logit_softcapping"), 50.0);
  EXPECT_EQ(gemma2.get_f64("gemma2.final_logit_softcapping"), 30.0);
  EXPECT_EQ(gemma2.find_tensor("token_embd.weight")->type_name, "Q6_K");
  EXPECT_EQ(gemma2.find_tensor("blk.41.ffn_down.weight")->type_name, "Q4_0");
  EXPECT_EQ(gemma2.find_tensor("blk.0.attn_q_norm.weight"), nullptr);

  const auto r7b = compact(GgufPreset::command_r7b_q4_k_m);
  EXPECT_EQ(r7b.architecture(), "cohere2");
  EXPECT_EQ(r7b.arch_u64("attention.sliding_window"), 4096U);
  EXPECT_EQ(r7b.arch_u64("context_length"), 8192U);
  EXPECT_EQ(r7b.get_f64("cohere2.logit_scale"), 0.25);
  EXPECT_EQ(r7b.get_f64("cohere2.attention.layer_norm_epsilon"), static_cast<double>(1e-5F));
  EXPECT_EQ(r7b.get_string("tokenizer.ggml.pre"), "command-r");
  EXPECT_EQ(r7b.tensor_count(), 32U * 8 + 2);
  EXPECT_EQ(r7b.find_tensor("output.weight"), nullptr) << "tied embeddings";
  EXPECT_EQ(r7b.find_tensor("blk.0.ffn_norm.weight"), nullptr) << "attention and FFN read one norm";
  EXPECT_EQ(r7b.find_tensor("token_embd.weight")->type_name, "Q6_K");
  EXPECT_EQ(r7b.find_tensor("token_embd.weight")->dims, (std::vector<std::uint64_t>{4096, 256000}));
  EXPECT_EQ(r7b.find_tensor("blk.0.ffn_down.weight")->type_name, "Q6_K");
  EXPECT_EQ(r7b.find_tensor("blk.4.ffn_down.weight")->type_name, "Q4_K");
  EXPECT_EQ(r7b.find_tensor("blk.31.attn_k.weight")->dims, (std::vector<std::uint64_t>{4096, 1024}));
}

TEST(GgufPresets, ExpertModels) {
  const auto qwen = compact(GgufPreset::qwen3_30b_a3b_q4_k_m);
  EXPECT_EQ(qwen.architecture(), "qwen3moe");
  EXPECT_EQ(qwen.arch_u64("expert_count"), 128U);
  EXPECT_EQ(qwen.find_tensor("blk.0.ffn_down_exps.weight")->dims, (std::vector<std::uint64_t>{768, 2048, 128}));
  EXPECT_EQ(qwen.find_tensor("blk.0.ffn_down_exps.weight")->type_name, "Q6_K");
  EXPECT_EQ(qwen.find_tensor("blk.21.ffn_down_exps.weight")->type_name, "Q4_K");
  EXPECT_EQ(qwen.find_tensor("blk.3.ffn_gate_inp.weight")->type_name, "F32");
  EXPECT_GT(bytes_where(qwen, "_exps."), 17ULL * 1000 * 1000 * 1000);

  const auto oss = compact(GgufPreset::gpt_oss_20b_mxfp4);
  EXPECT_EQ(oss.architecture(), "gpt-oss");
  EXPECT_EQ(oss.find_tensor("blk.0.ffn_up_exps.weight")->type_name, "MXFP4");
  EXPECT_EQ(oss.find_tensor("blk.0.ffn_up_exps.weight")->bytes, 2880ULL / 32 * 17 * 2880 * 32);
  EXPECT_EQ(oss.find_tensor("blk.0.attn_q.weight")->type_name, "Q8_0");
  EXPECT_EQ(oss.find_tensor("output.weight")->type_name, "Q8_0");
  EXPECT_EQ(oss.find_tensor("blk.23.attn_sinks.weight")->dims, (std::vector<std::uint64_t>{64}));
  EXPECT_EQ(oss.find_tensor("blk.23.ffn_down_exps.bias")->dims, (std::vector<std::uint64_t>{2880, 32}));

  const auto ds = compact(GgufPreset::deepseek_v2_lite_q4_k_m);
  EXPECT_EQ(ds.arch_u64("attention.key_length"), 192U);
  EXPECT_EQ(ds.arch_u64("attention.head_count_kv"), 16U);
  EXPECT_NE(ds.find_tensor("blk.0.ffn_down.weight"), nullptr) << "the leading dense block";
  EXPECT_EQ(ds.find_tensor("blk.0.ffn_gate_exps.weight"), nullptr);
  // Rows of 1408 and 10944 are no whole k-quant blocks: Q4_K falls back to Q5_0, Q6_K to Q8_0.
  EXPECT_EQ(ds.find_tensor("blk.0.ffn_down.weight")->type_name, "Q8_0");
  EXPECT_EQ(ds.find_tensor("blk.1.ffn_down_exps.weight")->type_name, "Q8_0");
  EXPECT_EQ(ds.find_tensor("blk.10.ffn_down_exps.weight")->type_name, "Q5_0");
  EXPECT_EQ(ds.find_tensor("blk.10.ffn_down_shexp.weight")->dims, (std::vector<std::uint64_t>{2816, 2048}));
  EXPECT_EQ(ds.find_tensor("blk.3.attn_kv_b.weight")->dims, (std::vector<std::uint64_t>{512, 4096}));

  const auto mla = compact(GgufPreset::deepseek_v2_lite_mla_q4_k_m);
  EXPECT_EQ(mla.arch_u64("attention.key_length"), 576U);
  EXPECT_EQ(mla.arch_u64("attention.key_length_mla"), 192U);
  EXPECT_EQ(mla.arch_u64("attention.head_count_kv"), 1U);
  EXPECT_EQ(mla.find_tensor("blk.3.attn_kv_b.weight"), nullptr);
  EXPECT_EQ(mla.find_tensor("blk.3.attn_k_b.weight")->dims, (std::vector<std::uint64_t>{128, 512, 16}));
  EXPECT_EQ(bytes_where(mla, "_exps."), bytes_where(ds, "_exps."));

  const auto mixtral = compact(GgufPreset::mixtral_8x7b_q4_k_m);
  EXPECT_EQ(mixtral.architecture(), "llama");
  EXPECT_EQ(mixtral.arch_u64("expert_count"), 8U);
  EXPECT_EQ(mixtral.arch_u64("expert_used_count"), 2U);
  EXPECT_EQ(mixtral.tensor_count(), 32U * 10 + 3);
  EXPECT_EQ(mixtral.find_tensor("blk.0.ffn_gate_inp.weight")->dims, (std::vector<std::uint64_t>{4096, 8}));
  EXPECT_EQ(mixtral.find_tensor("blk.0.ffn_gate_inp.weight")->type_name, "F32");
  EXPECT_EQ(mixtral.find_tensor("blk.0.ffn_up_exps.weight")->dims, (std::vector<std::uint64_t>{4096, 14336, 8}));
  EXPECT_EQ(mixtral.find_tensor("blk.0.ffn_down_exps.weight")->dims, (std::vector<std::uint64_t>{14336, 4096, 8}));
  EXPECT_EQ(mixtral.find_tensor("blk.0.ffn_down_exps.weight")->type_name, "Q6_K");
  EXPECT_EQ(mixtral.find_tensor("blk.4.ffn_down_exps.weight")->type_name, "Q4_K");
  EXPECT_EQ(mixtral.find_tensor("blk.4.ffn_gate_exps.weight")->type_name, "Q4_K");
  // llama.cpp's rules for exactly 8 experts: attn_k and attn_v Q8_0, attn_output Q5_K.
  EXPECT_EQ(mixtral.find_tensor("blk.4.attn_k.weight")->type_name, "Q8_0");
  EXPECT_EQ(mixtral.find_tensor("blk.4.attn_v.weight")->type_name, "Q8_0");
  EXPECT_EQ(mixtral.find_tensor("blk.4.attn_output.weight")->type_name, "Q5_K");
  EXPECT_EQ(mixtral.find_tensor("blk.4.attn_q.weight")->type_name, "Q4_K");
  EXPECT_EQ(mixtral.find_tensor("output.weight")->type_name, "Q6_K");
  EXPECT_GT(bytes_where(mixtral, "_exps."), 27ULL * 1000 * 1000 * 1000);
}

TEST(GgufPresets, ClipProjector) {
  const auto clip = compact(GgufPreset::clip_llava_projector_f16);
  EXPECT_EQ(clip.architecture(), "clip");
  EXPECT_FALSE(clip.arch_u64("block_count"));
  EXPECT_EQ(clip.arch_u64("vision.block_count"), 23U);
  EXPECT_EQ(clip.get_string("clip.projector_type"), "mlp");
  EXPECT_EQ(clip.get_array("tokenizer.ggml.tokens"), nullptr);
  EXPECT_EQ(clip.find_tensor("mm.2.weight")->type_name, "F16");
  EXPECT_EQ(clip.find_tensor("v.blk.22.ffn_down.bias")->type_name, "F32");
  EXPECT_EQ(clip.find_tensor("v.blk.23.ln1.weight"), nullptr);
  EXPECT_GT(clip.data_bytes, 620ULL * 1000 * 1000);
  EXPECT_LT(clip.data_bytes, 630ULL * 1000 * 1000);
}

// ---- tensor sizes

TEST(GgmlTensorBytes, KnownShapes) {
  const auto bytes = [](GgmlType type, std::vector<std::uint64_t> dims) {
    return ggml_tensor_bytes(ggml_id(type), dims);
  };
  EXPECT_EQ(bytes(GgmlType::q4_0, {4096, 4096}), 9437184U);
  EXPECT_EQ(bytes(GgmlType::q4_k, {4096, 4096}), 9437184U) << "4.5 bits per weight, like Q4_0";
  EXPECT_EQ(bytes(GgmlType::q8_0, {4096, 4096}), 4096ULL / 32 * 34 * 4096);
  EXPECT_EQ(bytes(GgmlType::q6_k, {4096, 128256}), 430940160U);
  EXPECT_EQ(bytes(GgmlType::f16, {4096, 32000}), 262144000U);
  EXPECT_EQ(bytes(GgmlType::bf16, {4096, 32000}), 262144000U);
  EXPECT_EQ(bytes(GgmlType::f32, {4096}), 16384U);
  EXPECT_EQ(bytes(GgmlType::q5_k, {14336, 4096}), 14336ULL / 256 * 176 * 4096);
  EXPECT_EQ(bytes(GgmlType::q2_k, {256, 2}), 168U);
  EXPECT_EQ(bytes(GgmlType::iq2_xxs, {4096, 4096}), 4325376U);
  EXPECT_EQ(bytes(GgmlType::iq4_nl, {64, 1}), 36U);
  EXPECT_EQ(bytes(GgmlType::mxfp4, {32, 3, 2}), 17U * 6);
  EXPECT_EQ(bytes(GgmlType::i64, {3}), 24U);
  EXPECT_EQ(bytes(GgmlType::q8_0, {0, 5}), 0U);
  EXPECT_EQ(ggml_row_bytes(ggml_id(GgmlType::q8_0), 128), 136U);
}

TEST(GgmlTensorBytes, BitsPerWeightMatchTheTable) {
  // estimation.md §1: bits per weight = 8 * bytes per block / block.
  const std::vector<std::pair<GgmlType, double>> table{
      {GgmlType::q4_1, 5.0},     {GgmlType::q5_0, 5.5},     {GgmlType::q5_1, 6.0},      {GgmlType::q8_1, 9.0},
      {GgmlType::q3_k, 3.4375},  {GgmlType::q8_k, 9.125},   {GgmlType::iq2_xs, 2.3125}, {GgmlType::iq3_xxs, 3.0625},
      {GgmlType::iq1_s, 1.5625}, {GgmlType::iq3_s, 3.4375}, {GgmlType::iq2_s, 2.5625},  {GgmlType::iq4_xs, 4.25},
      {GgmlType::iq1_m, 1.75},   {GgmlType::tq1_0, 1.6875}, {GgmlType::tq2_0, 2.0625},  {GgmlType::nvfp4, 4.5},
      {GgmlType::q1_0, 1.125},   {GgmlType::q2_0, 2.25},
  };
  for (const auto& [type, bits] : table) {
    const auto traits = ggml_type_traits(ggml_id(type));
    ASSERT_TRUE(traits) << ggml_id(type);
    EXPECT_DOUBLE_EQ(8.0 * traits->type_size / traits->block_size, bits) << traits->name;
  }
}

TEST(GgmlTensorBytes, UnknownTypeBadRowOrOverflowIsUnknown) {
  EXPECT_FALSE(ggml_tensor_bytes(4, {32})) << "Q4_2 was removed";
  EXPECT_FALSE(ggml_tensor_bytes(31, {32}));
  EXPECT_FALSE(ggml_tensor_bytes(43, {32}));
  EXPECT_FALSE(ggml_tensor_bytes(ggml_id(GgmlType::q4_0), {100, 2})) << "100 is not a multiple of 32";
  EXPECT_FALSE(ggml_tensor_bytes(ggml_id(GgmlType::q4_k), {4096 + 32}));
  EXPECT_FALSE(ggml_tensor_bytes(ggml_id(GgmlType::f32), {}));
  EXPECT_FALSE(ggml_tensor_bytes(ggml_id(GgmlType::f32), {1ULL << 32, 1ULL << 31}));
  EXPECT_FALSE(ggml_type_traits(5));
  EXPECT_EQ(ggml_type_traits(ggml_id(GgmlType::iq2_xxs))->name, "IQ2_XXS");
}

// ---- bad input: a clear one-line error naming the source, never a crash

TEST(GgufErrors, WrongMagic) {
  const auto e = parse_error(
      "\x7f"
      "ELF\x02\x01\x01\x00 and more bytes of something else");
  EXPECT_NE(e.message.find("not a GGUF file"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("7f 45 4c 46"), std::string::npos) << e.message;
}

TEST(GgufErrors, VersionOneAndUnknownVersions) {
  EXPECT_EQ(parse_error(GgufBytes().header(1, 0, 0).bytes()).message,
            "GGUF version 1 is not supported (only versions 2 and 3)");
  EXPECT_NE(parse_error(GgufBytes().header(4, 0, 0).bytes()).message.find("unsupported GGUF version 4"),
            std::string::npos);
  EXPECT_NE(parse_error(GgufBytes().header(0x03000000, 0, 0).bytes()).message.find("big-endian"), std::string::npos);
}

TEST(GgufErrors, ShortInputAsksForMore) {
  std::uint64_t needed = 0;
  auto parsed = parse_gguf("", "m", std::nullopt, &needed);
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().code, ENODATA);
  EXPECT_EQ(needed, 4U);
  parsed = parse_gguf("GGUF\x03", "m", std::nullopt, &needed);
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().code, ENODATA);
  EXPECT_EQ(needed, 8U);
}

// Every prefix of a valid header: ENODATA, asking for more than it has and no more than the header;
// the same bytes as a whole file of that size: corrupt (code 0).
TEST(GgufErrors, EveryTruncationIsReported) {
  const auto header = test::gguf_header(small_spec(3));
  const auto full = parse_gguf(header, "m");
  ASSERT_TRUE(full);
  for (std::size_t n = 0; n < full->header_bytes; ++n) {
    const auto prefix = std::string_view(header).substr(0, n);
    std::uint64_t needed = 0;
    const auto as_prefix = parse_gguf(prefix, "m", header.size(), &needed);
    ASSERT_FALSE(as_prefix) << n;
    ASSERT_EQ(as_prefix.error().code, ENODATA) << n << ": " << as_prefix.error().line();
    EXPECT_GT(needed, n);
    EXPECT_LE(needed, full->header_bytes) << n;
    const auto as_file = parse_gguf(prefix, "m", n);
    ASSERT_FALSE(as_file) << n;
    EXPECT_EQ(as_file.error().code, 0) << n << ": " << as_file.error().line();
    EXPECT_NE(as_file.error().message.find("the file"), std::string::npos) << as_file.error().line();
  }
}

TEST(GgufErrors, AbsurdCountsFailBeforeAllocating) {
  const auto tensors = parse_error(GgufBytes().header(3, 1ULL << 60, 0).bytes());
  EXPECT_EQ(tensors.code, ENODATA) << "without a file size the bytes given are all there is";
  EXPECT_NE(tensors.message.find("the tensor infos: 1152921504606846976 entries"), std::string::npos)
      << tensors.message;
  const auto kvs = parse_error(GgufBytes().header(3, 0, k_max_u64).bytes(), 1ULL << 40);
  EXPECT_EQ(kvs.code, 0) << "with a file size, a count that cannot fit in it is corrupt";
  EXPECT_NE(kvs.message.find("cannot fit in the 1099511627752 bytes left in the file"), std::string::npos)
      << kvs.message;
  // A count the file could hold but the bytes read so far cannot: read more.
  std::uint64_t needed = 0;
  const auto more = parse_gguf(GgufBytes().header(3, 0, 1000).bytes(), "m", 1ULL << 20, &needed);
  ASSERT_FALSE(more);
  EXPECT_EQ(more.error().code, ENODATA);
  EXPECT_EQ(needed, 24U + 8);
}

TEST(GgufErrors, HugeStringAndArrayLengths) {
  const auto key = parse_error(GgufBytes().header(3, 0, 1).u64(1ULL << 62).raw("abc").bytes(), 1ULL << 30);
  EXPECT_NE(key.message.find("metadata entry 0: the key (4611686018427387904 bytes at byte 32) runs past the end "
                             "of the file"),
            std::string::npos)
      << key.message;
  const auto value = parse_error(GgufBytes().header(3, 0, 1).str("k").u32(8).u64(k_max_u64).bytes());
  EXPECT_NE(value.message.find("metadata entry 0 'k': the header is cut off: a string value"), std::string::npos)
      << value.message;
  const auto array =
      parse_error(GgufBytes().header(3, 0, 1).str("k").u32(9).u32(4).u64(1ULL << 40).u32(1).bytes(), 1ULL << 30);
  EXPECT_NE(array.message.find("an array of uint32: 1099511627776 entries"), std::string::npos) << array.message;
  const auto strings =
      parse_error(GgufBytes().header(3, 0, 1).str("k").u32(9).u32(8).u64(1ULL << 61).str("x").bytes(), 1ULL << 30);
  EXPECT_NE(strings.message.find("an array of strings"), std::string::npos) << strings.message;
  const auto long_key = std::string(70000, 'k');
  const auto too_long = parse_error(GgufBytes().header(3, 0, 1).str(long_key).u32(0).u8(1).bytes());
  EXPECT_NE(too_long.message.find("longer than the limit of 65535"), std::string::npos) << too_long.message;
}

TEST(GgufErrors, NestingDeeperThanEightLevels) {
  const auto nested = [](int depth) {
    GgufBytes b;
    b.header(3, 0, 1).str("deep").u32(9);
    for (int i = 1; i < depth; ++i) {
      b.u32(9).u64(1);  // an array holding one array
    }
    b.u32(0).u64(1).u8(7);  // the innermost: one uint8
    return b.bytes();
  };
  const auto eight = parse_gguf(nested(8), "m");
  ASSERT_TRUE(eight) << eight.error().line();
  const auto* a = eight->get_array("deep");
  for (int i = 1; i < 8; ++i) {
    ASSERT_NE(a, nullptr);
    a = &std::get<std::vector<GgufArray>>(a->items).at(0);
  }
  EXPECT_EQ(std::get<std::vector<std::uint8_t>>(a->items), (std::vector<std::uint8_t>{7}));
  const auto nine = parse_error(nested(9));
  EXPECT_NE(nine.message.find("arrays are nested more than 8 deep"), std::string::npos) << nine.message;
  const auto very = parse_error(nested(100000));
  EXPECT_NE(very.message.find("nested more than 8 deep"), std::string::npos) << very.message;
}

TEST(GgufErrors, UnknownValueTypes) {
  const auto scalar = parse_error(GgufBytes().header(3, 0, 1).str("k").u32(13).u64(0).bytes());
  EXPECT_EQ(scalar.message, "metadata entry 0 'k': unknown value type 13");
  const auto element = parse_error(GgufBytes().header(3, 0, 1).str("k").u32(9).u32(99).u64(0).bytes());
  EXPECT_EQ(element.message, "metadata entry 0 'k': unknown array element type 99");
}

TEST(GgufErrors, DuplicateKeysAndBadAlignment) {
  const auto dup = parse_error(GgufBytes()
                                   .header(3, 0, 2)
                                   .key_value({"a", GgufValue{std::uint8_t{1}}})
                                   .key_value({"a", GgufValue{std::uint8_t{2}}})
                                   .bytes());
  EXPECT_EQ(dup.message, "metadata entry 1 'a': the key appears more than once");
  const auto odd =
      parse_error(GgufBytes().header(3, 0, 1).key_value({"general.alignment", GgufValue{std::uint32_t{48}}}).bytes());
  EXPECT_EQ(odd.message, "general.alignment 48 is not a power of 2");
  const auto wide =
      parse_error(GgufBytes().header(3, 0, 1).key_value({"general.alignment", GgufValue{std::uint64_t{64}}}).bytes());
  EXPECT_EQ(wide.message, "general.alignment is a uint64, not a uint32");
}

TEST(GgufErrors, BadTensorInfos) {
  const auto one = [](std::string_view name, std::vector<std::uint64_t> dims, std::uint32_t type,
                      std::uint64_t offset) {
    return GgufBytes().header(3, 1, 0).tensor_info(name, dims, type, offset).bytes();
  };
  EXPECT_EQ(parse_error(one("w", {32}, 4, 0)).message,
            "tensor 0 'w': ggml type 4 is not one memwarden knows, so the tensor's size cannot be read");
  EXPECT_EQ(parse_error(one("w", {}, 0, 0)).message, "tensor 0 'w': 0 dimensions (1 to 8 are accepted)");
  EXPECT_EQ(parse_error(one("w", std::vector<std::uint64_t>(9, 1), 0, 0)).message,
            "tensor 0 'w': 9 dimensions (1 to 8 are accepted)");
  EXPECT_TRUE(parse_gguf(one("w", {2, 2, 2, 2, 2}, 0, 0), "m")) << "5 dimensions are accepted";
  EXPECT_EQ(parse_error(one("w", {100, 2}, ggml_id(GgmlType::q4_0), 0)).message,
            "tensor 0 'w': a row of 100 elements is not a multiple of Q4_0's block of 32");
  EXPECT_EQ(parse_error(one("w", {32}, 0, 16)).message,
            "tensor 0 'w': offset 16 is not a multiple of the alignment 32");
  EXPECT_EQ(parse_error(one("w", {1ULL << 40, 1ULL << 40}, 0, 0)).message,
            "tensor 0 'w': the dimensions 1099511627776 x 1099511627776 overflow a 64-bit element count");
  EXPECT_EQ(parse_error(one("w", {1ULL << 62}, 0, 0)).message, "tensor 0 'w': its size in bytes overflows 64 bits");
  EXPECT_EQ(parse_error(one("w", {64}, 0, k_max_u64 - 31)).message,
            "tensor 0 'w': offset 18446744073709551584 + 256 bytes overflows 64 bits");
  EXPECT_EQ(parse_error(one(std::string(64, 'n'), {32}, 0, 0)).message.substr(0, 14), "tensor 0 'nnnn");
  EXPECT_TRUE(parse_gguf(one(std::string(63, 'n'), {32}, 0, 0), "m"));
  const auto name = parse_error(one("bad\nname", {32}, 99, 0));
  EXPECT_EQ(name.message,
            "tensor 0 'bad?name': ggml type 99 is not one memwarden knows, so the tensor's size cannot be read");
}

TEST(GgufErrors, DuplicateOrOverlappingTensors) {
  const auto dup = GgufBytes().header(3, 2, 0).tensor_info("w", {8}, 0, 0).tensor_info("w", {8}, 0, 32).bytes();
  EXPECT_EQ(parse_error(dup).message, "tensor 1 'w': the name appears more than once");
  const auto overlap = GgufBytes().header(3, 2, 0).tensor_info("b", {16}, 0, 32).tensor_info("a", {16}, 0, 0).bytes();
  EXPECT_EQ(parse_error(overlap).message, "the data of tensors 'a' (bytes 0 to 64) and 'b' (from byte 32) overlap");
  const auto out_of_order =
      GgufBytes().header(3, 2, 0).tensor_info("b", {16}, 0, 64).tensor_info("a", {16}, 0, 0).bytes();
  const auto file = parse_gguf(out_of_order, "m");
  ASSERT_TRUE(file) << file.error().line();
  EXPECT_EQ(file->data_bytes, 128U);
}

// Single-byte corruptions of a valid header: errors or (rarely) a different valid header, never a crash.
TEST(GgufErrors, CorruptedBytesNeverCrash) {
  const auto header = test::gguf_header(small_spec(3));
  int failures = 0;
  for (std::size_t i = 0; i < header.size(); ++i) {
    for (const char replacement : {'\x00', '\xff', '\x09'}) {
      auto copy = header;
      copy[i] = replacement;
      const auto parsed = parse_gguf(copy, "m");
      if (!parsed) {
        ++failures;
        EXPECT_EQ(parsed.error().line().find('\n'), std::string::npos);
      }
    }
  }
  EXPECT_GT(failures, 0);
}

// ---- GgufStrings filled in one go (parse_gguf's fast path) and one by one (a cut-off array)

TEST(GgufStrings, EveryLengthAroundTheCopyChunkRoundTrips) {
  GgufStrings strings;
  for (std::size_t length = 0; length <= 40; ++length) {
    strings.push_back(std::string(length, static_cast<char>('a' + length % 26)));
  }
  strings.push_back(std::string(1000, 'z'));
  strings.push_back("");
  for (std::size_t length = 1; length <= 17; ++length) {  // short ones at the end of the array
    strings.push_back(std::string(length, 'e'));
  }
  GgufSpec spec;
  spec.add("tokens", GgufValue{GgufArray{strings}});  // the last bytes of the header
  const auto parsed = parse_gguf(test::gguf_header(spec), "m");
  ASSERT_TRUE(parsed) << parsed.error().line();
  const auto* array = parsed->get_array("tokens");
  ASSERT_NE(array, nullptr);
  const auto* got = std::get_if<GgufStrings>(&array->items);
  ASSERT_NE(got, nullptr);
  ASSERT_EQ(got->size(), strings.size());
  for (std::size_t i = 0; i < strings.size(); ++i) {
    EXPECT_EQ((*got)[i], strings[i]) << i;
  }
  EXPECT_EQ(*got, strings);
}

TEST(GgufStrings, ACutOffArraySaysWhichString) {
  // Three strings, the third cut off: the error names it and asks for the bytes that hold it.
  const auto bytes = GgufBytes().header(3, 0, 1).str("tokens").u32(9).u32(8).u64(3).str("ab").str("").u64(5).raw("xy");
  std::uint64_t needed = 0;
  const auto parsed = parse_gguf(bytes.bytes(), "m", 1000, &needed);
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().code, ENODATA);
  EXPECT_NE(parsed.error().message.find("a string in an array"), std::string::npos) << parsed.error().message;
  EXPECT_EQ(needed, bytes.size() + 3);
}

// ---- GgufHeaderScan

namespace {

struct ScanRun {
  std::optional<std::uint64_t> header_bytes;
  std::uint64_t given = 0;  // the bytes given to the last scan() call
};

// Scans `file` (all of a file) giving it what the scan asks for, and at least `step` more bytes each time.
ScanRun scan_in_pieces(std::string_view file, std::uint64_t step) {
  GgufHeaderScan scan(file.size());
  std::uint64_t given = std::min<std::uint64_t>(step, file.size());
  for (;;) {
    const auto needed = scan.scan(file.substr(0, given));
    if (!needed) {
      break;
    }
    EXPECT_GT(*needed, given);
    EXPECT_LE(*needed, file.size());
    if (*needed <= given || *needed > file.size()) {
      break;
    }
    given = std::min<std::uint64_t>(std::max(*needed, given + step), file.size());
  }
  return {scan.header_bytes(), given};
}

}  // namespace

TEST(GgufHeaderScan, FindsWhereEveryPresetsHeaderEnds) {
  for (const auto preset : test::all_gguf_presets()) {
    SCOPED_TRACE(test::to_string(preset));
    const auto header = test::gguf_header(test::gguf_preset(preset, GgufVocab::compact));
    const auto parsed = parse_gguf(header, "m");
    ASSERT_TRUE(parsed) << parsed.error().line();
    for (const std::uint64_t step : {1ULL, 7ULL, 4096ULL, 1ULL << 20}) {
      const auto run = scan_in_pieces(header, step);
      EXPECT_EQ(run.header_bytes, parsed->header_bytes) << step;
      EXPECT_LT(run.given, parsed->header_bytes + std::max<std::uint64_t>(step, 64)) << step;
    }
  }
  const auto big = test::gguf_header(test::gguf_preset(GgufPreset::llama31_70b_q4_k_m));
  const auto parsed = parse_gguf(big, "m");
  ASSERT_TRUE(parsed) << parsed.error().line();
  const auto run = scan_in_pieces(big, 1ULL << 20);
  EXPECT_EQ(run.header_bytes, parsed->header_bytes);
  EXPECT_LT(run.given, parsed->header_bytes + (1ULL << 20));
}

// Any prefix, scanned from the start, asks for more than it has and no more than the header.
TEST(GgufHeaderScan, EveryPrefixAsksForNoMoreThanTheHeader) {
  const auto header = test::gguf_header(small_spec(2));
  const auto full = parse_gguf(header, "m");
  ASSERT_TRUE(full);
  for (std::uint64_t n = 0; n < full->header_bytes; ++n) {
    GgufHeaderScan scan(header.size());
    const auto needed = scan.scan(std::string_view(header).substr(0, n));
    ASSERT_TRUE(needed) << n;
    EXPECT_GT(*needed, n);
    EXPECT_LE(*needed, full->header_bytes) << n;
    EXPECT_FALSE(scan.header_bytes());
  }
  GgufHeaderScan scan(header.size());
  EXPECT_FALSE(scan.scan(header));
  EXPECT_EQ(scan.header_bytes(), full->header_bytes);
  EXPECT_FALSE(scan.scan(header)) << "a finished scan stays finished";

  GgufHeaderScan empty(24);
  EXPECT_FALSE(empty.scan(GgufBytes().header(3, 0, 0).bytes()));
  EXPECT_EQ(empty.header_bytes(), 24U);
}

// Where parse_gguf refuses a header, the scan stops (nullopt, no end found) and parse_gguf decides: an
// error that is not ENODATA.
TEST(GgufHeaderScan, StopsWhereParseRefuses) {
  constexpr std::uint64_t k_file = 1ULL << 30;
  GgufBytes too_deep = GgufBytes().header(3, 0, 1).str("k").u32(9);
  for (std::size_t i = 0; i < k_gguf_max_nesting; ++i) {
    too_deep.u32(9).u64(1);
  }
  too_deep.u32(4).u64(0);
  const std::vector<std::pair<std::string, std::string>> cases{
      {"magic", GgufBytes()
                    .raw("\x7f"
                         "ELF")
                    .u32(3)
                    .u64(0)
                    .u64(0)
                    .bytes()},
      {"version", GgufBytes().header(1, 0, 0).bytes()},
      {"tensor count", GgufBytes().header(3, k_max_u64 / 2, 0).bytes()},
      {"metadata count", GgufBytes().header(3, 0, k_max_u64).bytes()},
      {"key length", GgufBytes().header(3, 0, 1).str(std::string(70000, 'k')).u32(4).u32(1).bytes()},
      {"value type", GgufBytes().header(3, 0, 1).str("k").u32(13).u64(0).bytes()},
      {"element type", GgufBytes().header(3, 0, 1).str("k").u32(9).u32(42).u64(1).u64(0).bytes()},
      {"array length", GgufBytes().header(3, 0, 1).str("k").u32(9).u32(8).u64(k_max_u64 / 4).bytes()},
      {"nesting", too_deep.bytes()},
      {"string past the file", GgufBytes().header(3, 0, 1).str("k").u32(8).u64(k_file).raw("abc").bytes()},
      {"tensor name", GgufBytes().header(3, 1, 0).tensor_info(std::string(64, 'n'), {32}, 0, 0).bytes()},
      {"no dimensions", GgufBytes().header(3, 1, 0).str("w").u32(0).u32(0).u64(0).bytes()},
      {"nine dimensions", GgufBytes().header(3, 1, 0).tensor_info("w", std::vector<std::uint64_t>(9, 1), 0, 0).bytes()},
  };
  for (const auto& [what, bytes] : cases) {
    GgufHeaderScan scan(k_file);
    EXPECT_FALSE(scan.scan(bytes)) << what;
    EXPECT_FALSE(scan.header_bytes()) << what;
    const auto parsed = parse_gguf(bytes, "m", k_file);
    ASSERT_FALSE(parsed) << what;
    EXPECT_NE(parsed.error().code, ENODATA) << what << ": " << parsed.error().line();
  }
}

TEST(GgufStrings, ParsedFromASharedBufferTheyAreViewsThatOutliveIt) {
  const auto header = test::gguf_header(small_spec(3));
  auto buffer = std::make_shared_for_overwrite<char[]>(header.size());
  std::memcpy(buffer.get(), header.data(), header.size());
  auto file = parse_gguf(buffer, header.size(), "shared");
  buffer.reset();  // the parsed file keeps it alive
  ASSERT_TRUE(file) << file.error().line();
  const auto by_copy = parse_gguf(header, "copied");
  ASSERT_TRUE(by_copy);
  EXPECT_EQ(file->metadata, by_copy->metadata);
  const auto* strings = file->get_array("test.array.string");
  ASSERT_NE(strings, nullptr);
  auto copy = std::get<GgufStrings>(strings->items);
  ASSERT_EQ(copy.size(), 3U);
  EXPECT_EQ(copy[0], "a");
  EXPECT_EQ(copy[1], "");
  EXPECT_EQ(copy[2], "tokens");
  // Adding to a view makes it its own copy; the parsed array is unchanged.
  copy.push_back("more");
  EXPECT_EQ(copy, (GgufStrings{"a", "", "tokens", "more"}));
  EXPECT_EQ(std::get<GgufStrings>(strings->items), (GgufStrings{"a", "", "tokens"}));
}

TEST(GgufStrings, AMovedFromArrayIsEmptyAndUsable) {
  const auto header = test::gguf_header(small_spec(3));
  auto buffer = std::make_shared_for_overwrite<char[]>(header.size());
  std::memcpy(buffer.get(), header.data(), header.size());
  const auto file = parse_gguf(buffer, header.size(), "shared");
  ASSERT_TRUE(file);
  auto view = std::get<GgufStrings>(file->get_array("test.array.string")->items);
  auto taken = std::move(view);
  EXPECT_EQ(taken.size(), 3U);
  view.push_back("hello");  // NOLINT(bugprone-use-after-move): a moved-from array must stay usable
  ASSERT_EQ(view.size(), 1U);
  EXPECT_EQ(view[0], "hello");
}
