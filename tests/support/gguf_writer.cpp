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
    default:
      break;  // not llama's block: gguf_preset() builds those
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

// The tokenizer's metadata: made-up strings, as many as the model's vocabulary (or 16 for a compact one).
struct Vocab {
  Tokenizer kind;
  const char* pre;  // tokenizer.ggml.pre (BPE only)
  std::uint32_t size;
  std::uint32_t merges;  // BPE only
  std::uint32_t bos;
  std::uint32_t eos;
};

void add_tokenizer(GgufSpec& spec, const Vocab& v, GgufVocab vocab) {
  const std::uint32_t entries = vocab == GgufVocab::full ? v.size : 16;
  GgufStrings tokens;
  std::vector<std::int32_t> token_types;
  for (std::uint32_t i = 0; i < entries; ++i) {
    tokens.push_back(token(i));
    token_types.push_back(i < 3 ? 3 : 1);  // control, normal
  }
  spec.add("tokenizer.ggml.model", GgufValue{std::string(v.kind == Tokenizer::gpt2 ? "gpt2" : "llama")});
  if (v.kind == Tokenizer::gpt2) {
    spec.add("tokenizer.ggml.pre", GgufValue{std::string(v.pre)});
  }
  spec.add("tokenizer.ggml.tokens", GgufValue{GgufArray{std::move(tokens)}});
  if (v.kind == Tokenizer::llama) {
    std::vector<float> scores;
    for (std::uint32_t i = 0; i < entries; ++i) {
      scores.push_back(-static_cast<float>(i));
    }
    spec.add("tokenizer.ggml.scores", GgufValue{GgufArray{std::move(scores)}});
  }
  spec.add("tokenizer.ggml.token_type", GgufValue{GgufArray{std::move(token_types)}});
  if (v.kind == Tokenizer::gpt2) {
    const std::uint32_t merge_count = vocab == GgufVocab::full ? v.merges : 16;
    GgufStrings merges;
    for (std::uint32_t i = 0; i < merge_count; ++i) {
      merges.push_back(token(i) + " " + token(i + 7));
    }
    spec.add("tokenizer.ggml.merges", GgufValue{GgufArray{std::move(merges)}});
  }
  spec.add("tokenizer.ggml.bos_token_id", GgufValue{v.bos});
  spec.add("tokenizer.ggml.eos_token_id", GgufValue{v.eos});
  spec.add("tokenizer.chat_template", GgufValue{std::string("{% for message in messages %}{{ message['content'] }}"
                                                            "{% endfor %}")});
}

// llama.cpp's use_more_bits(): the first and last eighth of the layers, and every third in between.
bool more_bits(std::uint32_t i, std::uint32_t n) {
  return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

// ---- presets whose blocks are not llama's (sliding windows, experts, MLA, a vision encoder)

// llama.cpp's llama_ftype, written as general.file_type.
enum class FileType : std::uint32_t { f16 = 1, q4_0 = 2, q4_k_m = 15, mxfp4_moe = 38 };

// How llama-quantize (src/llama-quant.cpp) types a tensor.
enum class Role {
  kept,       // 1-D tensors, biases, norms, ffn_gate_inp, attention sinks: F32, never quantized
  weight,     // any other 2-D or 3-D weight
  sensitive,  // attn_v, attn_kv_b (attn_v-like) and every ffn_down*: more bits in some layers (Q4_K_M)
  output,     // output.weight, and token_embd.weight where the embeddings are tied
};

// llama.cpp's tensor_type_fallback(): a row that is no whole number of 256-element k-quant blocks takes the
// 32-element type next to it.
std::uint32_t fit_row(GgmlType type, std::uint64_t row) {
  if (row % 256 == 0) {
    return ggml_id(type);
  }
  switch (type) {
    case GgmlType::q4_k:
      return ggml_id(GgmlType::q5_0);
    case GgmlType::q5_k:
      return ggml_id(GgmlType::q5_1);
    case GgmlType::q6_k:
      return ggml_id(GgmlType::q8_0);
    default:
      return ggml_id(type);
  }
}

// llama_tensor_get_type() for the four file types here, in layer `layer` of `blocks`.
std::uint32_t quant_type(FileType ftype, Role role, const std::vector<std::uint64_t>& dims, std::uint32_t layer,
                         std::uint32_t blocks) {
  if (role == Role::kept) {
    return ggml_id(GgmlType::f32);
  }
  switch (ftype) {
    case FileType::f16:  // the CLIP converter: 2-D and 4-D weights F16, 1-D ones F32
      return ggml_id(dims.size() == 1 ? GgmlType::f32 : GgmlType::f16);
    case FileType::mxfp4_moe:  // experts (3-D) MXFP4, everything else Q8_0
      return ggml_id(role != Role::output && dims.size() == 3 ? GgmlType::mxfp4 : GgmlType::q8_0);
    case FileType::q4_0:
      return role == Role::output ? fit_row(GgmlType::q6_k, dims[0]) : ggml_id(GgmlType::q4_0);
    case FileType::q4_k_m: {
      const bool more = role == Role::output || (role == Role::sensitive && more_bits(layer, blocks));
      return fit_row(more ? GgmlType::q6_k : GgmlType::q4_k, dims[0]);
    }
  }
  throw std::logic_error("unknown file type");
}

// Writes one preset: general.* first, then the architecture's keys, then the tokenizer and the tensors.
class PresetWriter {
 public:
  PresetWriter(GgufSpec& spec, std::string arch, const char* name, FileType ftype, std::uint32_t blocks)
      : m_spec(spec), m_arch(std::move(arch)), m_ftype(ftype), m_blocks(blocks) {
    m_spec.add("general.architecture", GgufValue{m_arch});
    m_spec.add("general.name", GgufValue{std::string(name)});
    m_spec.add("general.file_type", GgufValue{static_cast<std::uint32_t>(ftype)});
    if (ftype != FileType::f16) {
      m_spec.add("general.quantization_version", GgufValue{std::uint32_t{2}});
    }
  }

  // "<arch>.<key>"
  void key(std::string_view key, GgufValue value) { m_spec.add(m_arch + "." + std::string(key), std::move(value)); }
  void u32(std::string_view k, std::uint32_t v) { key(k, GgufValue{v}); }
  void f32(std::string_view k, float v) { key(k, GgufValue{v}); }

  // The model's hparams.n_expert, which llama-quantize's rules look at (see tensor()).
  void set_expert_count(std::uint32_t experts) { m_experts = experts; }

  // A tensor of block `layer` (or none: the layer only matters to Role::sensitive).
  void tensor(std::string name, std::vector<std::uint64_t> dims, Role role, std::uint32_t layer = 0) {
    auto type = quant_type(m_ftype, role, dims, layer, m_blocks);
    // llama_tensor_get_type() for a model of exactly 8 experts (Mixtral): attn_k and attn_v Q8_0 ("trades just
    // ~128MB"), attn_output Q5_K at Q4_K_M.
    if (m_experts == 8 && m_ftype == FileType::q4_k_m) {
      if (name.ends_with("attn_k.weight") || name.ends_with("attn_v.weight")) {
        type = ggml_id(GgmlType::q8_0);
      } else if (name.ends_with("attn_output.weight")) {
        type = fit_row(GgmlType::q5_k, dims[0]);
      }
    }
    m_spec.tensors.push_back({std::move(name), std::move(dims), type, std::nullopt});
  }
  void kept(std::string name, std::vector<std::uint64_t> dims) { tensor(std::move(name), std::move(dims), Role::kept); }

 private:
  GgufSpec& m_spec;
  std::string m_arch;
  FileType m_ftype;
  std::uint32_t m_blocks;
  std::uint32_t m_experts = 0;
};

// The keys convert_hf_to_gguf.py's TextModel.set_gguf_parameters() writes for most models, in its order.
struct TextKeys {
  std::uint32_t blocks, context, d, ff, heads, kv_heads;
  float rope_base, rms_eps;
  std::uint32_t experts, experts_used;  // 0: a dense model
  std::uint32_t head_dim;               // attention.key_length and value_length; 0: none in the config
};

void add_text_keys(PresetWriter& w, const TextKeys& k) {
  w.u32("block_count", k.blocks);
  w.u32("context_length", k.context);
  w.u32("embedding_length", k.d);
  w.u32("feed_forward_length", k.ff);
  w.u32("attention.head_count", k.heads);
  w.u32("attention.head_count_kv", k.kv_heads);
  w.f32("rope.freq_base", k.rope_base);
  w.f32("attention.layer_norm_rms_epsilon", k.rms_eps);
  if (k.experts != 0) {
    w.u32("expert_count", k.experts);
    w.u32("expert_used_count", k.experts_used);
  }
  if (k.head_dim != 0) {
    w.u32("attention.key_length", k.head_dim);
    w.u32("attention.value_length", k.head_dim);
  }
}

std::string blk(std::uint32_t i) {
  return "blk." + std::to_string(i) + ".";
}

// Attention with separate q, k and v (q may be wider than the embedding: heads x head_dim).
struct Attention {
  std::uint64_t d;
  std::uint64_t heads;
  std::uint64_t kv_heads;
  std::uint64_t head_dim;
  bool qk_norm;  // attn_q_norm, attn_k_norm (Gemma 3, Qwen 3)
  bool bias;     // q, k, v and output biases (gpt-oss)
};

void add_attention(PresetWriter& w, std::uint32_t i, const Attention& a) {
  const auto b = blk(i);
  const auto q = a.heads * a.head_dim;
  const auto kv = a.kv_heads * a.head_dim;
  w.tensor(b + "attn_q.weight", {a.d, q}, Role::weight);
  w.tensor(b + "attn_k.weight", {a.d, kv}, Role::weight);
  w.tensor(b + "attn_v.weight", {a.d, kv}, Role::sensitive, i);
  w.tensor(b + "attn_output.weight", {q, a.d}, Role::weight);
  if (a.bias) {
    w.kept(b + "attn_q.bias", {q});
    w.kept(b + "attn_k.bias", {kv});
    w.kept(b + "attn_v.bias", {kv});
    w.kept(b + "attn_output.bias", {a.d});
  }
  if (a.qk_norm) {
    w.kept(b + "attn_q_norm.weight", {a.head_dim});
    w.kept(b + "attn_k_norm.weight", {a.head_dim});
  }
}

// A dense feed-forward block (gate, up, down); `suffix` "" or "_shexp" (DeepSeek's shared experts).
void add_ffn(PresetWriter& w, std::uint32_t i, std::uint64_t d, std::uint64_t ff, const std::string& suffix = "") {
  const auto b = blk(i);
  w.tensor(b + "ffn_gate" + suffix + ".weight", {d, ff}, Role::weight);
  w.tensor(b + "ffn_up" + suffix + ".weight", {d, ff}, Role::weight);
  w.tensor(b + "ffn_down" + suffix + ".weight", {ff, d}, Role::sensitive, i);
}

// Routed experts: the router (ffn_gate_inp) and gate, up and down of all experts as 3-D tensors.
void add_experts(PresetWriter& w, std::uint32_t i, std::uint64_t d, std::uint64_t ff, std::uint64_t n, bool bias) {
  const auto b = blk(i);
  w.kept(b + "ffn_gate_inp.weight", {d, n});
  if (bias) {
    w.kept(b + "ffn_gate_inp.bias", {n});
  }
  w.tensor(b + "ffn_gate_exps.weight", {d, ff, n}, Role::weight);
  w.tensor(b + "ffn_up_exps.weight", {d, ff, n}, Role::weight);
  w.tensor(b + "ffn_down_exps.weight", {ff, d, n}, Role::sensitive, i);
  if (bias) {
    w.kept(b + "ffn_gate_exps.bias", {ff, n});
    w.kept(b + "ffn_up_exps.bias", {ff, n});
    w.kept(b + "ffn_down_exps.bias", {d, n});
  }
}

// token_embd, block(i) for each block, output_norm and output: none where the embeddings are tied, and
// token_embd is then typed as the output it stands for.
template <class Block>
void add_model(PresetWriter& w, std::uint32_t blocks, std::uint64_t d, std::uint64_t vocab, bool tied,
               const Block& block) {
  w.tensor("token_embd.weight", {d, vocab}, tied ? Role::output : Role::weight);
  for (std::uint32_t i = 0; i < blocks; ++i) {
    block(i, blk(i));
  }
  w.kept("output_norm.weight", {d});
  if (!tied) {
    w.tensor("output.weight", {d, vocab}, Role::output);
  }
}

void add_yarn(PresetWriter& w, float factor, std::uint32_t original_context) {
  w.key("rope.scaling.type", GgufValue{std::string("yarn")});
  w.f32("rope.scaling.factor", factor);
  w.u32("rope.scaling.original_context_length", original_context);
}

// Gemma 2 and 3 (convert_hf_to_gguf.py's Gemma2Model, Gemma3Model): head_dim 256 whatever the width,
// sliding-window layers, four norms a block, tied embeddings.
struct Gemma {
  const char* arch;
  const char* name;
  FileType ftype;
  std::uint32_t blocks, d, ff, heads, kv_heads, context, vocab, sliding_window;
  bool gemma3;
};

GgufSpec gemma(const Gemma& g, GgufVocab vocab) {
  constexpr std::uint32_t head_dim = 256;
  GgufSpec spec;
  PresetWriter w(spec, g.arch, g.name, g.ftype, g.blocks);
  w.u32("context_length", g.context);
  w.u32("embedding_length", g.d);
  w.u32("block_count", g.blocks);
  w.u32("feed_forward_length", g.ff);
  w.u32("attention.head_count", g.heads);
  w.u32("attention.head_count_kv", g.kv_heads);
  w.f32("attention.layer_norm_rms_epsilon", 1e-6F);
  w.u32("attention.key_length", head_dim);
  w.u32("attention.value_length", head_dim);
  if (g.gemma3) {
    w.f32("rope.freq_base", 1000000.0F);  // global layers; the sliding ones use 10000
    w.u32("attention.sliding_window", g.sliding_window);
    w.key("rope.scaling.type", GgufValue{std::string("linear")});
    w.f32("rope.scaling.factor", 8.0F);
  } else {
    w.f32("attn_logit_softcapping", 50.0F);
    w.f32("final_logit_softcapping", 30.0F);
    w.u32("attention.sliding_window", g.sliding_window);
  }
  add_tokenizer(spec, {Tokenizer::llama, "", g.vocab, 0, 2, 1}, vocab);

  const Attention attention{g.d, g.heads, g.kv_heads, head_dim, g.gemma3, false};
  add_model(w, g.blocks, g.d, g.vocab, true, [&](std::uint32_t i, const std::string& b) {
    w.kept(b + "attn_norm.weight", {g.d});
    add_attention(w, i, attention);
    w.kept(b + "post_attention_norm.weight", {g.d});
    w.kept(b + "ffn_norm.weight", {g.d});
    add_ffn(w, i, g.d, g.ff);
    w.kept(b + "post_ffw_norm.weight", {g.d});
  });
  return spec;
}

// Qwen3-30B-A3B (the April 2025 release: 40960 context; the 2507 update has 262144): 128 experts of 768,
// 8 used, no shared expert, q wider than the embedding (32 x 128 = 4096 > 2048).
GgufSpec qwen3_30b_a3b(GgufVocab vocab) {
  constexpr std::uint32_t blocks = 48;
  constexpr std::uint32_t d = 2048;
  constexpr std::uint32_t n_vocab = 151936;
  GgufSpec spec;
  PresetWriter w(spec, "qwen3moe", "Qwen3 30B A3B", FileType::q4_k_m, blocks);
  add_text_keys(w, {blocks, 40960, d, 6144, 32, 4, 1000000.0F, 1e-6F, 128, 8, 128});
  w.u32("expert_feed_forward_length", 768);
  add_tokenizer(spec, {Tokenizer::gpt2, "qwen2", n_vocab, 151387, 151643, 151645}, vocab);

  add_model(w, blocks, d, n_vocab, false, [&](std::uint32_t i, const std::string& b) {
    w.kept(b + "attn_norm.weight", {d});
    add_attention(w, i, {d, 32, 4, 128, true, false});
    w.kept(b + "ffn_norm.weight", {d});
    add_experts(w, i, d, 768, 128, false);
  });
  return spec;
}

// gpt-oss-20b as ggml-org/gpt-oss-20b-GGUF has it (llama-quantize's MXFP4_MOE: experts MXFP4, the other
// weights Q8_0): 32 experts of 2880, 4 used, attention sinks, biases everywhere, alternating 128-token
// sliding windows, YaRN to 131072 from 4096.
GgufSpec gpt_oss_20b(GgufVocab vocab) {
  constexpr std::uint32_t blocks = 24;
  constexpr std::uint32_t d = 2880;
  constexpr std::uint32_t n_vocab = 201088;
  GgufSpec spec;
  PresetWriter w(spec, "gpt-oss", "Gpt Oss 20b", FileType::mxfp4_moe, blocks);
  add_text_keys(w, {blocks, 131072, d, 2880, 64, 8, 150000.0F, 1e-5F, 32, 4, 64});
  w.u32("attention.sliding_window", 128);
  w.u32("expert_feed_forward_length", 2880);
  add_yarn(w, 32.0F, 4096);
  add_tokenizer(spec, {Tokenizer::gpt2, "gpt-4o", n_vocab, 446189, 199998, 200002}, vocab);

  add_model(w, blocks, d, n_vocab, false, [&](std::uint32_t i, const std::string& b) {
    w.kept(b + "attn_norm.weight", {d});
    add_attention(w, i, {d, 64, 8, 64, false, true});
    w.kept(b + "attn_sinks.weight", {64});
    w.kept(b + "post_attention_norm.weight", {d});
    add_experts(w, i, d, 2880, 32, true);
  });
  return spec;
}

// DeepSeek-Coder-V2-Lite (deepseek-coder-v2:16b): multi-head latent attention without q compression,
// 64 routed experts of 1408 (6 used) plus 2 shared, block 0 dense. `mla`: today's converter, which stores
// the cache as one 576-wide head (head_count_kv 1, key_length 576, value_length 512, the per-head sizes
// under *_mla) and splits attn_kv_b into attn_k_b and attn_v_b; otherwise the older file Ollama ships.
GgufSpec deepseek_v2_lite(bool mla, GgufVocab vocab) {
  constexpr std::uint32_t blocks = 27;
  constexpr std::uint32_t d = 2048;
  constexpr std::uint32_t heads = 16;
  constexpr std::uint32_t kv_lora = 512;
  constexpr std::uint32_t rope = 64;
  constexpr std::uint32_t nope = 128;
  constexpr std::uint32_t v_dim = 128;
  constexpr std::uint32_t ff_exp = 1408;
  constexpr std::uint32_t n_vocab = 102400;
  GgufSpec spec;
  PresetWriter w(spec, "deepseek2", "DeepSeek-Coder-V2-Lite-Instruct", FileType::q4_k_m, blocks);
  add_text_keys(w, {blocks, 163840, d, 10944, heads, mla ? 1 : heads, 10000.0F, 1e-6F, 64, 6, 0});
  w.u32("leading_dense_block_count", 1);
  w.u32("vocab_size", n_vocab);
  w.u32("attention.kv_lora_rank", kv_lora);
  w.u32("attention.key_length", mla ? kv_lora + rope : nope + rope);
  w.u32("attention.value_length", mla ? kv_lora : v_dim);
  if (mla) {
    w.u32("attention.key_length_mla", nope + rope);
    w.u32("attention.value_length_mla", v_dim);
  }
  w.u32("expert_feed_forward_length", ff_exp);
  w.u32("expert_shared_count", 2);
  w.f32("expert_weights_scale", 1.0F);
  if (mla) {
    w.u32("expert_gating_func", 1);  // softmax
  }
  w.u32("rope.dimension_count", rope);
  add_yarn(w, 40.0F, 4096);
  w.f32("rope.scaling.yarn_log_multiplier", 0.0707F);
  add_tokenizer(spec, {Tokenizer::gpt2, "deepseek-llm", n_vocab, 99757, 100000, 100001}, vocab);

  add_model(w, blocks, d, n_vocab, false, [&](std::uint32_t i, const std::string& b) {
    w.kept(b + "attn_norm.weight", {d});
    w.tensor(b + "attn_q.weight", {d, heads * (nope + rope)}, Role::weight);
    w.tensor(b + "attn_kv_a_mqa.weight", {d, kv_lora + rope}, Role::weight);
    w.kept(b + "attn_kv_a_norm.weight", {kv_lora});
    if (mla) {
      w.tensor(b + "attn_k_b.weight", {nope, kv_lora, heads}, Role::weight);
      w.tensor(b + "attn_v_b.weight", {kv_lora, v_dim, heads}, Role::weight);
    } else {
      w.tensor(b + "attn_kv_b.weight", {kv_lora, heads * (nope + v_dim)}, Role::sensitive, i);
    }
    w.tensor(b + "attn_output.weight", {heads * v_dim, d}, Role::weight);
    w.kept(b + "ffn_norm.weight", {d});
    if (i == 0) {
      add_ffn(w, i, d, 10944);
    } else {
      add_experts(w, i, d, ff_exp, 64, false);
      add_ffn(w, i, d, 2 * ff_exp, "_shexp");
    }
  });
  return spec;
}

// Mixtral-8x7B-Instruct-v0.1 (mixtral:8x7b): llama's block with 8 experts of 14336 (2 used) in place of the
// FFN, as today's converter writes them (3-D ffn_*_exps; files converted before April 2024 had a 2-D tensor
// per expert) and today's llama-quantize types them: ffn_down_exps Q6_K in the use_more_bits layers, and for
// 8 experts attn_k and attn_v Q8_0, attn_output Q5_K. That is about 28.4 GB; the files published in December
// 2023 (TheBloke's 26.44 GB, Ollama's 26 GB) gave fewer tensors 6 bits.
GgufSpec mixtral_8x7b(GgufVocab vocab) {
  constexpr std::uint32_t blocks = 32;
  constexpr std::uint32_t d = 4096;
  constexpr std::uint32_t ff = 14336;
  constexpr std::uint32_t experts = 8;
  constexpr std::uint32_t n_vocab = 32000;
  GgufSpec spec;
  PresetWriter w(spec, "llama", "Mixtral 8x7B Instruct v0.1", FileType::q4_k_m, blocks);
  w.set_expert_count(experts);
  add_text_keys(w, {blocks, 32768, d, ff, 32, 8, 1000000.0F, 1e-5F, experts, 2, 0});
  w.u32("vocab_size", n_vocab);
  w.u32("rope.dimension_count", d / 32);
  add_tokenizer(spec, {Tokenizer::llama, "", n_vocab, 0, 1, 2}, vocab);

  add_model(w, blocks, d, n_vocab, false, [&](std::uint32_t i, const std::string& b) {
    w.kept(b + "attn_norm.weight", {d});
    add_attention(w, i, {d, 32, 8, 128, false, false});
    w.kept(b + "ffn_norm.weight", {d});
    add_experts(w, i, d, ff, experts, false);
  });
  return spec;
}

// C4AI Command R7B (command-r7b): cohere2, LayerNorm (attention.layer_norm_epsilon) and one norm a block, the
// attention and the FFN reading it in parallel (no ffn_norm); three sliding-window layers of 4096 to each
// global one (llama.cpp's set_swa_pattern(4)), logit_scale, tied embeddings. The context is the config's
// max_position_embeddings, 8192 (ollama#8465: cohere2.context_length 8192; the model card says 128K).
GgufSpec command_r7b(GgufVocab vocab) {
  constexpr std::uint32_t blocks = 32;
  constexpr std::uint32_t d = 4096;
  constexpr std::uint32_t ff = 14336;
  constexpr std::uint32_t head_dim = 128;
  constexpr std::uint32_t n_vocab = 256000;
  GgufSpec spec;
  PresetWriter w(spec, "cohere2", "C4AI Command R7B", FileType::q4_k_m, blocks);
  w.u32("block_count", blocks);
  w.u32("context_length", 8192);
  w.u32("embedding_length", d);
  w.u32("feed_forward_length", ff);
  w.u32("attention.head_count", 32);
  w.u32("attention.head_count_kv", 8);
  w.f32("rope.freq_base", 50000.0F);
  w.f32("attention.layer_norm_epsilon", 1e-5F);
  w.u32("attention.key_length", head_dim);
  w.u32("attention.value_length", head_dim);
  w.f32("logit_scale", 0.25F);
  w.u32("attention.sliding_window", 4096);
  w.u32("vocab_size", n_vocab);
  w.u32("rope.dimension_count", head_dim);  // rotary_pct 1.0 of 4096 / 32
  w.key("rope.scaling.type", GgufValue{std::string("none")});
  add_tokenizer(spec, {Tokenizer::gpt2, "command-r", n_vocab, 253333, 5, 255001}, vocab);

  add_model(w, blocks, d, n_vocab, true, [&](std::uint32_t i, const std::string& b) {
    w.kept(b + "attn_norm.weight", {d});
    add_attention(w, i, {d, 32, 8, head_dim, false, false});
    add_ffn(w, i, d, ff);
  });
  return spec;
}

// llava:7b's projector as the LLaVA CLIP converter wrote it: the ViT-L/14-336 vision tower less its last
// block (23 of 24; LLaVA reads the second-to-last layer's output, post_layernorm dropped too), a two-layer
// MLP projector, F16. Its MLP tensors carry the converter's swapped names: fc1 (1024 -> 4096) is ffn_down.
GgufSpec clip_llava_projector() {
  constexpr std::uint32_t blocks = 23;
  constexpr std::uint32_t d = 1024;
  constexpr std::uint32_t ff = 4096;
  constexpr std::uint64_t patches = (336 / 14) * (336 / 14) + 1;  // + the class embedding
  GgufSpec spec;
  PresetWriter w(spec, "clip", "openai/clip-vit-large-patch14-336", FileType::f16, blocks);
  spec.add("general.description", GgufValue{std::string("image encoder for LLaVA")});
  w.key("has_text_encoder", GgufValue{false});
  w.key("has_vision_encoder", GgufValue{true});
  w.key("has_llava_projector", GgufValue{true});
  w.key("projector_type", GgufValue{std::string("mlp")});
  w.u32("vision.image_size", 336);
  w.u32("vision.patch_size", 14);
  w.u32("vision.embedding_length", d);
  w.u32("vision.feed_forward_length", ff);
  w.u32("vision.projection_dim", 768);
  w.u32("vision.attention.head_count", 16);
  w.f32("vision.attention.layer_norm_epsilon", 1e-5F);
  w.u32("vision.block_count", blocks);
  w.key("vision.image_mean", GgufValue{GgufArray{std::vector<float>{0.48145466F, 0.4578275F, 0.40821073F}}});
  w.key("vision.image_std", GgufValue{GgufArray{std::vector<float>{0.26862954F, 0.26130258F, 0.27577711F}}});
  w.key("use_gelu", GgufValue{false});

  const auto linear = [&w](const std::string& name, std::uint64_t in, std::uint64_t out) {
    w.tensor(name + ".weight", {in, out}, Role::weight);
    w.kept(name + ".bias", {out});
  };
  linear("mm.0", d, ff);
  linear("mm.2", ff, ff);
  w.kept("v.class_embd", {d});
  w.tensor("v.patch_embd.weight", {14, 14, 3, d}, Role::weight);
  w.tensor("v.position_embd.weight", {d, patches}, Role::weight);
  w.kept("v.pre_ln.weight", {d});
  w.kept("v.pre_ln.bias", {d});
  for (std::uint32_t i = 0; i < blocks; ++i) {
    const auto b = "v." + blk(i);
    for (const char* proj : {"attn_k", "attn_q", "attn_v", "attn_out"}) {
      linear(b + proj, d, d);
    }
    w.kept(b + "ln1.weight", {d});
    w.kept(b + "ln1.bias", {d});
    linear(b + "ffn_down", d, ff);
    linear(b + "ffn_up", ff, d);
    w.kept(b + "ln2.weight", {d});
    w.kept(b + "ln2.bias", {d});
  }
  return spec;
}

}  // namespace

const std::vector<GgufPreset>& all_gguf_presets() {
  static const std::vector<GgufPreset> all{GgufPreset::llama31_8b_q4_k_m,
                                           GgufPreset::llama31_70b_q4_k_m,
                                           GgufPreset::codellama_34b_q4_0,
                                           GgufPreset::deepseek_coder_33b_q4_0,
                                           GgufPreset::qwen25_7b_q4_k_m,
                                           GgufPreset::mistral_7b_q4_0,
                                           GgufPreset::gemma3_12b_q4_k_m,
                                           GgufPreset::qwen3_30b_a3b_q4_k_m,
                                           GgufPreset::gpt_oss_20b_mxfp4,
                                           GgufPreset::deepseek_v2_lite_q4_k_m,
                                           GgufPreset::deepseek_v2_lite_mla_q4_k_m,
                                           GgufPreset::gemma2_9b_q4_0,
                                           GgufPreset::clip_llava_projector_f16,
                                           GgufPreset::mixtral_8x7b_q4_k_m,
                                           GgufPreset::command_r7b_q4_k_m};
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
    case GgufPreset::gemma3_12b_q4_k_m:
      return "gemma3-12b-q4_K_M";
    case GgufPreset::qwen3_30b_a3b_q4_k_m:
      return "qwen3-30b-a3b-q4_K_M";
    case GgufPreset::gpt_oss_20b_mxfp4:
      return "gpt-oss-20b-mxfp4";
    case GgufPreset::deepseek_v2_lite_q4_k_m:
      return "deepseek-v2-lite-q4_K_M";
    case GgufPreset::deepseek_v2_lite_mla_q4_k_m:
      return "deepseek-v2-lite-mla-q4_K_M";
    case GgufPreset::gemma2_9b_q4_0:
      return "gemma2-9b-q4_0";
    case GgufPreset::clip_llava_projector_f16:
      return "clip-llava-projector-f16";
    case GgufPreset::mixtral_8x7b_q4_k_m:
      return "mixtral-8x7b-q4_K_M";
    case GgufPreset::command_r7b_q4_k_m:
      return "command-r7b-q4_K_M";
  }
  return "unknown";
}

GgufSpec gguf_preset(GgufPreset preset, GgufVocab vocab) {
  switch (preset) {
    case GgufPreset::gemma3_12b_q4_k_m:
      return gemma({"gemma3", "Gemma 3 12b It", FileType::q4_k_m, 48, 3840, 15360, 16, 8, 131072, 262144, 1024, true},
                   vocab);
    case GgufPreset::gemma2_9b_q4_0:
      return gemma({"gemma2", "gemma-2-9b-it", FileType::q4_0, 42, 3584, 14336, 16, 8, 8192, 256000, 4096, false},
                   vocab);
    case GgufPreset::qwen3_30b_a3b_q4_k_m:
      return qwen3_30b_a3b(vocab);
    case GgufPreset::gpt_oss_20b_mxfp4:
      return gpt_oss_20b(vocab);
    case GgufPreset::deepseek_v2_lite_q4_k_m:
      return deepseek_v2_lite(false, vocab);
    case GgufPreset::deepseek_v2_lite_mla_q4_k_m:
      return deepseek_v2_lite(true, vocab);
    case GgufPreset::clip_llava_projector_f16:
      return clip_llava_projector();
    case GgufPreset::mixtral_8x7b_q4_k_m:
      return mixtral_8x7b(vocab);
    case GgufPreset::command_r7b_q4_k_m:
      return command_r7b(vocab);
    default:
      break;  // llama's block
  }
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

  add_tokenizer(spec, {s.tokenizer, s.pre, s.vocab, s.merges, s.bos, s.eos}, vocab);

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
