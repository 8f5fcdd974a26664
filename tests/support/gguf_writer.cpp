#include "gguf_writer.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <type_traits>

namespace mw::test {

namespace {

static_assert(std::endian::native == std::endian::little, "the GGUF writer assumes a little-endian host");

template <class T>
void append_le(std::string& out, T v) {
  char raw[sizeof(T)];
  std::memcpy(raw, &v, sizeof(T));
  out.append(raw, sizeof(T));
}

}  // namespace

GgufBytes& GgufBytes::raw(std::string_view bytes) {
  m_bytes.append(bytes);
  return *this;
}

GgufBytes& GgufBytes::u8(std::uint8_t v) {
  append_le(m_bytes, v);
  return *this;
}

GgufBytes& GgufBytes::u32(std::uint32_t v) {
  append_le(m_bytes, v);
  return *this;
}

GgufBytes& GgufBytes::u64(std::uint64_t v) {
  append_le(m_bytes, v);
  return *this;
}

GgufBytes& GgufBytes::str(std::string_view s) {
  u64(s.size());
  return raw(s);
}

GgufBytes& GgufBytes::header(std::uint32_t version, std::uint64_t tensor_count, std::uint64_t kv_count) {
  return raw("GGUF").u32(version).u64(tensor_count).u64(kv_count);
}

template <class T>
void GgufBytes::element(const T& x) {
  if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, std::string_view>) {
    str(x);
  } else if constexpr (std::is_same_v<T, GgufArray>) {
    array(x);
  } else if constexpr (std::is_same_v<T, bool>) {
    u8(x ? 1 : 0);
  } else {
    append_le(m_bytes, x);
  }
}

GgufBytes& GgufBytes::value(const GgufValue& v) {
  std::visit([this](const auto& x) { element(x); }, v.value);
  return *this;
}

GgufBytes& GgufBytes::array(const GgufArray& a) {
  u32(static_cast<std::uint32_t>(a.element_type()));
  u64(a.size());
  std::visit(
      [this](const auto& items) {
        for (const auto& item : items) {  // a const vector<bool> gives bools, GgufStrings string_views
          element(item);
        }
      },
      a.items);
  return *this;
}

GgufBytes& GgufBytes::key_value(const GgufKeyValue& kv) {
  str(kv.key);
  u32(static_cast<std::uint32_t>(kv.value.type()));
  return value(kv.value);
}

GgufBytes& GgufBytes::tensor_info(std::string_view name, const std::vector<std::uint64_t>& dims, std::uint32_t type,
                                  std::uint64_t offset) {
  str(name);
  u32(static_cast<std::uint32_t>(dims.size()));
  for (const auto d : dims) {
    u64(d);
  }
  return u32(type).u64(offset);
}

GgufBytes& GgufBytes::pad_to(std::uint64_t alignment) {
  while (m_bytes.size() % alignment != 0) {
    m_bytes.push_back('\0');
  }
  return *this;
}

void GgufSpec::set_alignment(std::uint32_t value) {
  alignment = value;
  add("general.alignment", GgufValue{value});
}

GgufSpec& GgufSpec::add(std::string key, GgufValue value) {
  metadata.push_back(GgufKeyValue{std::move(key), std::move(value)});
  return *this;
}

namespace {

std::uint64_t padded(std::uint64_t n, std::uint64_t alignment) {
  return (n + alignment - 1) / alignment * alignment;
}

std::uint64_t tensor_bytes(const GgufTensorSpec& t) {
  return ggml_tensor_bytes(t.type, t.dims).value_or(0);
}

}  // namespace

std::vector<std::uint64_t> gguf_offsets(const GgufSpec& spec) {
  std::vector<std::uint64_t> out;
  std::uint64_t next = 0;
  for (const auto& t : spec.tensors) {
    const auto offset = t.offset.value_or(next);
    out.push_back(offset);
    next = padded(offset + tensor_bytes(t), spec.alignment);
  }
  return out;
}

std::string gguf_header(const GgufSpec& spec) {
  GgufBytes out;
  out.header(spec.version, spec.tensors.size(), spec.metadata.size());
  for (const auto& kv : spec.metadata) {
    out.key_value(kv);
  }
  const auto offsets = gguf_offsets(spec);
  for (std::size_t i = 0; i < spec.tensors.size(); ++i) {
    const auto& t = spec.tensors[i];
    out.tensor_info(t.name, t.dims, t.type, offsets[i]);
  }
  out.pad_to(spec.alignment);
  return out.bytes();
}

namespace {

std::uint64_t data_end(const GgufSpec& spec) {
  const auto offsets = gguf_offsets(spec);
  std::uint64_t end = 0;
  for (std::size_t i = 0; i < spec.tensors.size(); ++i) {
    end = std::max(end, offsets[i] + tensor_bytes(spec.tensors[i]));
  }
  return end;
}

}  // namespace

std::uint64_t gguf_file_size(const GgufSpec& spec) {
  return gguf_header(spec).size() + data_end(spec);
}

void write_gguf(const std::filesystem::path& path, const GgufSpec& spec) {
  const auto header = gguf_header(spec);
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    if (!out) {
      throw std::runtime_error("cannot write " + path.string());
    }
  }
  // The data section is a hole: resize_file (truncate(2)) allocates nothing.
  std::filesystem::resize_file(path, header.size() + data_end(spec));
}

// ---- presets

namespace {

enum class Tokenizer { llama, gpt2 };  // sentencepiece (scores) or BPE (merges)
enum class Mix { q4_0, q4_k_m };

struct Shape {
  const char* name;
  const char* arch;
  std::uint32_t blocks;
  std::uint32_t n_embd;
  std::uint32_t n_ff;
  std::uint32_t heads;
  std::uint32_t kv_heads;
  std::uint32_t context;
  std::uint32_t vocab;
  float rope_base;
  float rms_eps;
  Tokenizer tokenizer;
  const char* pre;       // tokenizer.ggml.pre (BPE only)
  std::uint32_t merges;  // BPE merges
  std::uint32_t bos;
  std::uint32_t eos;
  bool qkv_bias;              // Qwen2
  bool rope_freqs;            // Llama 3.1's rope_freqs.weight (llama3 rope scaling)
  float linear_rope_scaling;  // 0: none
  Mix mix;
};

// estimation.md §5 (litgpt configs, DeepSeek-Coder's Megatron settings).
Shape shape_of(GgufPreset preset) {
  switch (preset) {
    case GgufPreset::llama31_8b_q4_k_m:
      return {"Meta Llama 3.1 8B Instruct",
              "llama",
              32,
              4096,
              14336,
              32,
              8,
              131072,
              128256,
              500000.0F,
              1e-5F,
              Tokenizer::gpt2,
              "llama-bpe",
              280147,
              128000,
              128009,
              false,
              true,
              0.0F,
              Mix::q4_k_m};
    case GgufPreset::llama31_70b_q4_k_m:
      return {"Meta Llama 3.1 70B Instruct",
              "llama",
              80,
              8192,
              28672,
              64,
              8,
              131072,
              128256,
              500000.0F,
              1e-5F,
              Tokenizer::gpt2,
              "llama-bpe",
              280147,
              128000,
              128009,
              false,
              true,
              0.0F,
              Mix::q4_k_m};
    case GgufPreset::codellama_34b_q4_0:
      return {"CodeLlama 34B Instruct", "llama", 48, 8192, 22016, 64,    8,     16384, 32000,    1000000.0F, 1e-5F,
              Tokenizer::llama,         "",      0,  1,    2,     false, false, 0.0F,  Mix::q4_0};
    case GgufPreset::deepseek_coder_33b_q4_0:
      // The merge count is an estimate (vocabulary less bytes and special tokens).
      return {"DeepSeek Coder 33B Instruct",
              "llama",
              62,
              7168,
              19200,
              56,
              8,
              16384,
              32256,
              100000.0F,
              1e-6F,
              Tokenizer::gpt2,
              "deepseek-coder",
              31757,
              32013,
              32021,
              false,
              false,
              4.0F,
              Mix::q4_0};
    case GgufPreset::qwen25_7b_q4_k_m:
      return {"Qwen2.5 7B Instruct", "qwen2", 28,     3584,   18944,  28,   4,     32768, 152064,     1000000.0F, 1e-6F,
              Tokenizer::gpt2,       "qwen2", 151387, 151643, 151645, true, false, 0.0F,  Mix::q4_k_m};
    case GgufPreset::mistral_7b_q4_0:
      return {"Mistral 7B Instruct v0.3", "llama", 32, 4096, 14336, 32,    8,     32768, 32768,    1000000.0F, 1e-5F,
              Tokenizer::llama,           "",      0,  1,    2,     false, false, 0.0F,  Mix::q4_0};
  }
  throw std::logic_error("unknown preset");
}

// A made-up token of 2 to 10 letters, different for each index (a few bytes, like real vocabularies).
std::string token(std::uint32_t i) {
  std::string out;
  std::uint32_t x = i;
  do {
    out.push_back(static_cast<char>('a' + x % 26));
    x /= 26;
  } while (x != 0);
  const auto extra = (i * 2654435761U) % 6;
  out.append(extra, 'z');
  return out.size() < 2 ? out + "_" : out;
}

// llama.cpp's use_more_bits(): the first and last eighth of the layers, and every third in between.
bool more_bits(std::uint32_t i, std::uint32_t n) {
  return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

}  // namespace

const std::vector<GgufPreset>& all_gguf_presets() {
  static const std::vector<GgufPreset> all{GgufPreset::llama31_8b_q4_k_m,  GgufPreset::llama31_70b_q4_k_m,
                                           GgufPreset::codellama_34b_q4_0, GgufPreset::deepseek_coder_33b_q4_0,
                                           GgufPreset::qwen25_7b_q4_k_m,   GgufPreset::mistral_7b_q4_0};
  return all;
}

const char* to_string(GgufPreset preset) {
  switch (preset) {
    case GgufPreset::llama31_8b_q4_k_m:
      return "llama3.1-8b-q4_K_M";
    case GgufPreset::llama31_70b_q4_k_m:
      return "llama3.1-70b-q4_K_M";
    case GgufPreset::codellama_34b_q4_0:
      return "codellama-34b-q4_0";
    case GgufPreset::deepseek_coder_33b_q4_0:
      return "deepseek-coder-33b-q4_0";
    case GgufPreset::qwen25_7b_q4_k_m:
      return "qwen2.5-7b-q4_K_M";
    case GgufPreset::mistral_7b_q4_0:
      return "mistral-7b-q4_0";
  }
  return "unknown";
}

GgufSpec gguf_preset(GgufPreset preset, GgufVocab vocab) {
  const Shape s = shape_of(preset);
  const std::string arch = s.arch;
  const std::uint32_t head_dim = s.n_embd / s.heads;
  const std::uint32_t kv_dim = head_dim * s.kv_heads;
  const bool is_k_mix = s.mix == Mix::q4_k_m;

  GgufSpec spec;
  spec.add("general.architecture", GgufValue{arch});
  spec.add("general.name", GgufValue{std::string(s.name)});
  spec.add("general.file_type", GgufValue{std::uint32_t{is_k_mix ? 15U : 2U}});  // MOSTLY_Q4_K_M, MOSTLY_Q4_0
  spec.add("general.quantization_version", GgufValue{std::uint32_t{2}});
  spec.add(arch + ".block_count", GgufValue{s.blocks});
  spec.add(arch + ".context_length", GgufValue{s.context});
  spec.add(arch + ".embedding_length", GgufValue{s.n_embd});
  spec.add(arch + ".feed_forward_length", GgufValue{s.n_ff});
  spec.add(arch + ".attention.head_count", GgufValue{s.heads});
  spec.add(arch + ".attention.head_count_kv", GgufValue{s.kv_heads});
  spec.add(arch + ".rope.freq_base", GgufValue{s.rope_base});
  spec.add(arch + ".attention.layer_norm_rms_epsilon", GgufValue{s.rms_eps});
  spec.add(arch + ".rope.dimension_count", GgufValue{head_dim});
  spec.add(arch + ".vocab_size", GgufValue{s.vocab});
  if (s.linear_rope_scaling > 0.0F) {
    spec.add(arch + ".rope.scaling.type", GgufValue{std::string("linear")});
    spec.add(arch + ".rope.scaling.factor", GgufValue{s.linear_rope_scaling});
  }

  const std::uint32_t entries = vocab == GgufVocab::full ? s.vocab : 16;
  GgufStrings tokens;
  std::vector<std::int32_t> token_types;
  for (std::uint32_t i = 0; i < entries; ++i) {
    tokens.push_back(token(i));
    token_types.push_back(i < 3 ? 3 : 1);  // control, normal
  }
  spec.add("tokenizer.ggml.model", GgufValue{std::string(s.tokenizer == Tokenizer::gpt2 ? "gpt2" : "llama")});
  if (s.tokenizer == Tokenizer::gpt2) {
    spec.add("tokenizer.ggml.pre", GgufValue{std::string(s.pre)});
  }
  spec.add("tokenizer.ggml.tokens", GgufValue{GgufArray{std::move(tokens)}});
  if (s.tokenizer == Tokenizer::llama) {
    std::vector<float> scores;
    for (std::uint32_t i = 0; i < entries; ++i) {
      scores.push_back(-static_cast<float>(i));
    }
    spec.add("tokenizer.ggml.scores", GgufValue{GgufArray{std::move(scores)}});
  }
  spec.add("tokenizer.ggml.token_type", GgufValue{GgufArray{std::move(token_types)}});
  if (s.tokenizer == Tokenizer::gpt2) {
    const std::uint32_t merge_count = vocab == GgufVocab::full ? s.merges : 16;
    GgufStrings merges;
    for (std::uint32_t i = 0; i < merge_count; ++i) {
      merges.push_back(token(i) + " " + token(i + 7));
    }
    spec.add("tokenizer.ggml.merges", GgufValue{GgufArray{std::move(merges)}});
  }
  spec.add("tokenizer.ggml.bos_token_id", GgufValue{s.bos});
  spec.add("tokenizer.ggml.eos_token_id", GgufValue{s.eos});
  spec.add("tokenizer.chat_template", GgufValue{std::string("{% for message in messages %}{{ message['content'] }}"
                                                            "{% endfor %}")});

  const auto f32 = ggml_id(GgmlType::f32);
  const auto q_main = ggml_id(is_k_mix ? GgmlType::q4_k : GgmlType::q4_0);
  const auto q6 = ggml_id(GgmlType::q6_k);
  const std::uint64_t d = s.n_embd;
  const std::uint64_t ff = s.n_ff;
  const std::uint64_t kv = kv_dim;
  auto& t = spec.tensors;
  if (s.rope_freqs) {
    t.push_back({"rope_freqs.weight", {head_dim / 2}, f32, std::nullopt});
  }
  t.push_back({"token_embd.weight", {d, s.vocab}, q_main, std::nullopt});
  for (std::uint32_t i = 0; i < s.blocks; ++i) {
    const std::string blk = "blk." + std::to_string(i) + ".";
    const auto more = is_k_mix && more_bits(i, s.blocks) ? q6 : q_main;
    t.push_back({blk + "attn_norm.weight", {d}, f32, std::nullopt});
    t.push_back({blk + "attn_q.weight", {d, d}, q_main, std::nullopt});
    t.push_back({blk + "attn_k.weight", {d, kv}, q_main, std::nullopt});
    t.push_back({blk + "attn_v.weight", {d, kv}, more, std::nullopt});
    if (s.qkv_bias) {
      t.push_back({blk + "attn_q.bias", {d}, f32, std::nullopt});
      t.push_back({blk + "attn_k.bias", {kv}, f32, std::nullopt});
      t.push_back({blk + "attn_v.bias", {kv}, f32, std::nullopt});
    }
    t.push_back({blk + "attn_output.weight", {d, d}, q_main, std::nullopt});
    t.push_back({blk + "ffn_norm.weight", {d}, f32, std::nullopt});
    t.push_back({blk + "ffn_gate.weight", {d, ff}, q_main, std::nullopt});
    t.push_back({blk + "ffn_up.weight", {d, ff}, q_main, std::nullopt});
    t.push_back({blk + "ffn_down.weight", {ff, d}, more, std::nullopt});
  }
  t.push_back({"output_norm.weight", {d}, f32, std::nullopt});
  t.push_back({"output.weight", {d, s.vocab}, q6, std::nullopt});
  return spec;
}

std::vector<GgufKeyValue> gguf_every_value_type() {
  std::vector<GgufKeyValue> out{
      {"test.uint8", GgufValue{std::uint8_t{200}}},
      {"test.int8", GgufValue{std::int8_t{-100}}},
      {"test.uint16", GgufValue{std::uint16_t{60000}}},
      {"test.int16", GgufValue{std::int16_t{-30000}}},
      {"test.uint32", GgufValue{std::uint32_t{4000000000U}}},
      {"test.int32", GgufValue{std::int32_t{-2000000000}}},
      {"test.float32", GgufValue{1.5F}},
      {"test.bool.true", GgufValue{true}},
      {"test.bool.false", GgufValue{false}},
      {"test.string", GgufValue{std::string("h\xc3\xa9llo, GGUF")}},
      {"test.string.empty", GgufValue{std::string()}},
      {"test.uint64", GgufValue{std::uint64_t{18000000000000000000ULL}}},
      {"test.int64", GgufValue{std::int64_t{-9000000000000000000LL}}},
      {"test.float64", GgufValue{-2.25e300}},
      {"test.array.uint8", GgufValue{GgufArray{std::vector<std::uint8_t>{0, 1, 255}}}},
      {"test.array.int8", GgufValue{GgufArray{std::vector<std::int8_t>{-128, 0, 127}}}},
      {"test.array.uint16", GgufValue{GgufArray{std::vector<std::uint16_t>{1, 65535}}}},
      {"test.array.int16", GgufValue{GgufArray{std::vector<std::int16_t>{-32768, 32767}}}},
      {"test.array.uint32", GgufValue{GgufArray{std::vector<std::uint32_t>{7, 4294967295U}}}},
      {"test.array.int32", GgufValue{GgufArray{std::vector<std::int32_t>{-1, 3}}}},
      {"test.array.float32", GgufValue{GgufArray{std::vector<float>{0.25F, -8.0F}}}},
      {"test.array.bool", GgufValue{GgufArray{std::vector<bool>{true, false, true}}}},
      {"test.array.string", GgufValue{GgufArray{GgufStrings{"a", "", "tokens"}}}},
      {"test.array.uint64", GgufValue{GgufArray{std::vector<std::uint64_t>{0, 18446744073709551615ULL}}}},
      {"test.array.int64", GgufValue{GgufArray{std::vector<std::int64_t>{-5, 5}}}},
      {"test.array.float64", GgufValue{GgufArray{std::vector<double>{1e-300, 3.0}}}},
      {"test.array.empty", GgufValue{GgufArray{std::vector<std::uint32_t>{}}}},
  };
  // [[[1, 2], []], [["x"]]]: arrays of arrays of arrays.
  GgufArray inner_numbers{std::vector<std::uint32_t>{1, 2}};
  GgufArray inner_empty{std::vector<std::int64_t>{}};
  GgufArray inner_strings{GgufStrings{"x"}};
  GgufArray middle_a{std::vector<GgufArray>{inner_numbers, inner_empty}};
  GgufArray middle_b{std::vector<GgufArray>{inner_strings}};
  out.push_back({"test.array.nested", GgufValue{GgufArray{std::vector<GgufArray>{middle_a, middle_b}}}});
  return out;
}

}  // namespace mw::test
