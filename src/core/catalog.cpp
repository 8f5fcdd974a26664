#include "core/catalog.hpp"

#include "core/text.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <optional>

namespace mw {

const std::vector<CatalogModel>& catalog() {
  // ../shared/reference/estimation.md §5 (litgpt configs, DeepSeek-Coder's Megatron config); all head_dim 128.
  static const std::vector<CatalogModel> models{
      {"llama3.1:8b", {"llama", 32, 4096, 14336, 32, 8, 128256, 131072, false}, "q4_K_M"},
      {"llama3.1:70b", {"llama", 80, 8192, 28672, 64, 8, 128256, 131072, false}, "q4_K_M"},
      {"codellama:34b", {"llama", 48, 8192, 22016, 64, 8, 32000, 16384, false}, "q4_0"},
      {"deepseek-coder:33b", {"llama", 62, 7168, 19200, 56, 8, 32256, 16384, false}, "q4_0"},
      {"qwen2.5:7b", {"qwen2", 28, 3584, 18944, 28, 4, 152064, 32768, true}, "q4_K_M"},
      {"qwen2.5:32b", {"qwen2", 64, 5120, 27648, 40, 8, 152064, 32768, true}, "q4_K_M"},
      {"mistral:7b", {"llama", 32, 4096, 14336, 32, 8, 32768, 32768, false}, "q4_0"},
  };
  return models;
}

const std::vector<std::string>& catalog_quantizations() {
  static const std::vector<std::string> names{"f16", "q8_0", "q4_K_M", "q4_0"};
  return names;
}

std::optional<std::string> known_quantization(std::string_view text) {
  if (equals_ignoring_case(text, "fp16")) {
    return "f16";  // Ollama's tags say fp16
  }
  for (const auto& q : catalog_quantizations()) {
    if (equals_ignoring_case(q, text)) {
      return q;
    }
  }
  return std::nullopt;
}

namespace {

// Bytes of `elements` values of a ggml type, in whole blocks (core/gguf's type traits).
std::uint64_t bytes_of(GgmlType type, std::uint64_t elements) {
  const auto t = *ggml_type_traits(ggml_id(type));
  return elements / t.block_size * t.type_size;
}

// llama.cpp quantize (src/llama-quant.cpp, use_more_bits): Q4_K_M gives attn_v and ffn_down Q6_K in the
// first and last eighth of the layers and in every third layer between.
bool more_bits(std::uint64_t layer, std::uint64_t layers) {
  return layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2;
}

struct Layout {
  GgmlType body;    // most matrices
  GgmlType v_down;  // attn_v and ffn_down where more bits are given
  GgmlType embd;    // token_embd
  GgmlType output;  // output
  bool mixed = false;
};

std::optional<Layout> layout_of(std::string_view quant) {
  // Q4_0 and Q4_K_M files keep output.weight at Q6_K (llama.cpp's default for the output tensor);
  // Q8_0 and f16 files keep it at their own type.
  if (quant == "f16") {
    return Layout{GgmlType::f16, GgmlType::f16, GgmlType::f16, GgmlType::f16};
  }
  if (quant == "q8_0") {
    return Layout{GgmlType::q8_0, GgmlType::q8_0, GgmlType::q8_0, GgmlType::q8_0};
  }
  if (quant == "q4_0") {
    return Layout{GgmlType::q4_0, GgmlType::q4_0, GgmlType::q4_0, GgmlType::q6_k};
  }
  if (quant == "q4_K_M") {
    return Layout{GgmlType::q4_k, GgmlType::q6_k, GgmlType::q4_k, GgmlType::q6_k, true};
  }
  return std::nullopt;
}

std::string known_names() {
  std::string out;
  for (const auto& m : catalog()) {
    out += (out.empty() ? "" : ", ") + m.name;
  }
  return out;
}

}  // namespace

Result<CatalogMatch> catalog_find(std::string_view given) {
  // "family:size[-variant...][-quant]", without regard to case (as Ollama's names); "family" and
  // "family:latest" are what `ollama pull family` gets.
  std::string lowered = ascii_lower(given);
  static const std::vector<std::pair<std::string_view, std::string_view>> k_latest{
      {"llama3.1", "llama3.1:8b"}, {"qwen2.5", "qwen2.5:7b"}, {"mistral", "mistral:7b"}};
  for (const auto& [family, latest] : k_latest) {
    if (lowered == family || lowered == std::string(family) + ":latest") {
      lowered = latest;
    }
  }
  const std::string_view name = lowered;
  const auto colon = name.find(':');
  const auto dash = colon == std::string_view::npos ? std::string_view::npos : name.find('-', colon);
  const auto base = name.substr(0, dash);
  const auto it =
      std::find_if(catalog().begin(), catalog().end(), [&](const CatalogModel& m) { return m.name == base; });
  if (it == catalog().end()) {
    return fail(std::string(given), fmt::format("not in the built-in catalog (it knows {})", known_names()));
  }
  CatalogMatch match{&*it, it->default_quantization};
  if (dash != std::string_view::npos) {
    const auto tail = name.substr(name.rfind('-') + 1);
    if (auto quant = known_quantization(tail)) {
      match.quantization = *quant;
    } else if (tail != "instruct" && tail != "text" && tail != "code" && tail != "python") {
      return fail(std::string(given), fmt::format("the catalog sizes the quantizations f16, q8_0, q4_K_M and q4_0, "
                                                  "not '{}'",
                                                  given.substr(given.size() - tail.size())));
    }
  }
  return match;
}

Result<ModelShape> catalog_shape(std::string_view name) {
  auto match = catalog_find(name);
  if (!match) {
    return unexpected(match.error());
  }
  return quantized_shape(match->model->dims, match->quantization, name);
}

Result<ModelShape> quantized_shape(const ModelDims& c, std::string_view quant, std::string_view source) {
  const auto known = known_quantization(quant);
  const auto layout = known ? layout_of(*known) : std::nullopt;
  if (!layout) {
    return fail(std::string(source), fmt::format("memwarden lays out f16, q8_0, q4_K_M and q4_0, not '{}'", quant));
  }
  if (c.block_count == 0 || c.head_count == 0 || c.head_count_kv == 0 || c.embedding_length % c.head_count != 0 ||
      c.feed_forward_length == 0 || c.vocab_size == 0) {
    return fail(std::string(source), "the model's dimensions are incomplete, so its tensors cannot be laid out");
  }
  const std::uint64_t dh = c.embedding_length / c.head_count;
  const std::uint64_t d = c.embedding_length;
  const std::uint64_t q_out = c.head_count * dh;
  const std::uint64_t kv_out = c.head_count_kv * dh;
  ModelShape m;
  m.architecture = c.architecture;
  m.block_count = c.block_count;
  m.embedding_length = d;
  m.head_count = c.head_count;
  m.head_count_kv = c.head_count_kv;
  m.key_length = dh;
  m.value_length = dh;
  m.vocab_size = c.vocab_size;
  m.context_length = c.context_length;
  for (std::uint64_t i = 0; i < c.block_count; ++i) {
    const auto vd = layout->mixed && more_bits(i, c.block_count) ? layout->v_down : layout->body;
    std::uint64_t b = 0;
    b += bytes_of(layout->body, d * q_out);                      // attn_q
    b += bytes_of(layout->body, d * kv_out);                     // attn_k
    b += bytes_of(vd, d * kv_out);                               // attn_v
    b += bytes_of(layout->body, q_out * d);                      // attn_output
    b += 2 * bytes_of(layout->body, d * c.feed_forward_length);  // ffn_gate, ffn_up
    b += bytes_of(vd, c.feed_forward_length * d);                // ffn_down
    b += 2 * bytes_of(GgmlType::f32, d);                         // attn_norm, ffn_norm
    if (c.qkv_bias) {
      b += bytes_of(GgmlType::f32, q_out + 2 * kv_out);
    }
    m.block_bytes.push_back(b);
  }
  m.token_embd_bytes = bytes_of(layout->embd, c.vocab_size * d);
  m.output_bytes = bytes_of(layout->output, c.vocab_size * d) + bytes_of(GgmlType::f32, d);  // output, output_norm
  return m;
}

namespace {

// A head length the file states agrees with embedding_length / head_count (or none is stated).
bool plain_heads(std::optional<std::uint64_t> length, const ModelDims& d) {
  return !length || (d.head_count > 0 && *length * d.head_count == d.embedding_length);
}

}  // namespace

std::optional<ModelDims> dims_from_gguf(const GgufFile& file) {
  const auto arch = file.architecture();
  if (!arch || (*arch != "llama" && *arch != "qwen2" && *arch != "mistral")) {
    return std::nullopt;
  }
  ModelDims d;
  d.architecture = std::string(*arch);
  d.block_count = file.arch_u64("block_count").value_or(0);
  d.embedding_length = file.arch_u64("embedding_length").value_or(0);
  d.feed_forward_length = file.arch_u64("feed_forward_length").value_or(0);
  d.head_count = file.arch_u64("attention.head_count").value_or(0);
  d.head_count_kv = file.arch_u64("attention.head_count_kv").value_or(d.head_count);
  const auto* tokens = file.get_array("tokenizer.ggml.tokens");
  d.vocab_size = tokens != nullptr ? tokens->size() : file.arch_u64("vocab_size").value_or(0);
  d.context_length = file.arch_u64("context_length").value_or(0);
  d.qkv_bias = file.find_tensor("blk.0.attn_q.bias") != nullptr;
  // A mixture of experts (Mixtral is "llama" with expert_count) or heads not of embedding/heads length
  // (Mistral-Nemo) are not laid out like a dense llama: leave their other quantizations unsized.
  if (file.arch_u64("expert_count").value_or(0) > 0 || !plain_heads(file.arch_u64("attention.key_length"), d) ||
      !plain_heads(file.arch_u64("attention.value_length"), d)) {
    return std::nullopt;
  }
  if (d.block_count == 0 || d.embedding_length == 0 || d.feed_forward_length == 0 || d.head_count == 0 ||
      d.vocab_size == 0) {
    return std::nullopt;
  }
  return d;
}

std::optional<ModelDims> dims_from_show(const OllamaShow& show) {
  const auto& arch = show.architecture;
  if (arch != "llama" && arch != "qwen2" && arch != "mistral") {
    return std::nullopt;
  }
  const auto get = [&](std::string_view suffix) -> std::uint64_t {
    const auto it = show.numeric_info.find(arch + "." + std::string(suffix));
    if (it == show.numeric_info.end() || !(it->second > 0) || it->second > 1e12) {
      return 0;
    }
    return static_cast<std::uint64_t>(it->second);
  };
  ModelDims d;
  d.architecture = arch;
  d.block_count = get("block_count");
  d.embedding_length = get("embedding_length");
  d.feed_forward_length = get("feed_forward_length");
  d.head_count = get("attention.head_count");
  d.head_count_kv = get("attention.head_count_kv");
  if (d.head_count_kv == 0) {
    d.head_count_kv = d.head_count;
  }
  d.vocab_size = get("vocab_size");
  d.context_length = get("context_length");
  d.qkv_bias = arch == "qwen2";
  const auto optional = [&](std::string_view suffix) -> std::optional<std::uint64_t> {
    const auto v = get(suffix);
    return v == 0 ? std::nullopt : std::optional<std::uint64_t>(v);
  };
  if (get("expert_count") > 0 || !plain_heads(optional("attention.key_length"), d) ||
      !plain_heads(optional("attention.value_length"), d)) {
    return std::nullopt;
  }
  if (d.block_count == 0 || d.embedding_length == 0 || d.feed_forward_length == 0 || d.head_count == 0 ||
      d.vocab_size == 0) {
    return std::nullopt;
  }
  return d;
}

std::optional<std::string_view> file_type_name(std::uint64_t file_type) {
  // llama.h enum llama_ftype (ids 4-6 and 33+ unused or removed).
  struct Row {
    std::uint64_t id;
    std::string_view name;
  };
  static constexpr std::array<Row, 31> k_names{{
      {0, "F32"},     {1, "F16"},     {2, "Q4_0"},     {3, "Q4_1"},    {7, "Q8_0"},    {8, "Q5_0"},    {9, "Q5_1"},
      {10, "Q2_K"},   {11, "Q3_K_S"}, {12, "Q3_K_M"},  {13, "Q3_K_L"}, {14, "Q4_K_S"}, {15, "Q4_K_M"}, {16, "Q5_K_S"},
      {17, "Q5_K_M"}, {18, "Q6_K"},   {19, "IQ2_XXS"}, {20, "IQ2_XS"}, {21, "Q2_K_S"}, {22, "IQ3_XS"}, {23, "IQ3_XXS"},
      {24, "IQ1_S"},  {25, "IQ4_NL"}, {26, "IQ3_S"},   {27, "IQ3_M"},  {28, "IQ2_S"},  {29, "IQ2_M"},  {30, "IQ4_XS"},
      {31, "IQ1_M"},  {32, "BF16"},   {38, "MXFP4"},
  }};
  for (const auto& row : k_names) {
    if (row.id == file_type) {
      return row.name;
    }
  }
  return std::nullopt;
}

}  // namespace mw
