#include "core/estimate.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <numeric>
#include <type_traits>
#include <utility>
#include <variant>

#include "core/bytes.hpp"

namespace mw {

std::uint64_t add_capped(std::uint64_t a, std::uint64_t b) {
  return a >= k_bytes_cap || b >= k_bytes_cap - a ? k_bytes_cap : a + b;
}

std::uint64_t mul_capped(std::uint64_t a, std::uint64_t b) {
  return a != 0 && b > k_bytes_cap / a ? k_bytes_cap : std::min(a * b, k_bytes_cap);
}

const char* to_string(KvType type) {
  switch (type) {
    case KvType::f16:
      return "f16";
    case KvType::q8_0:
      return "q8_0";
    case KvType::q4_0:
      return "q4_0";
  }
  return "?";
}

std::optional<KvType> parse_kv_type(std::string_view text) {
  for (const auto t : {KvType::f16, KvType::q8_0, KvType::q4_0}) {
    if (text == to_string(t)) {
      return t;
    }
  }
  return std::nullopt;
}

namespace {

// ggml's row_size: a row of n elements takes n / block × block bytes (core/gguf's type traits): f16 is
// 1 element in 2 bytes; q8_0 32 in 34 (a f16 scale + 32 int8); q4_0 32 in 18 (a f16 scale + 16 bytes).
std::uint64_t row_size(KvType kv, std::uint64_t elements) {
  const auto type = kv == KvType::q8_0 ? GgmlType::q8_0 : kv == KvType::q4_0 ? GgmlType::q4_0 : GgmlType::f16;
  const auto t = *ggml_type_traits(ggml_id(type));
  return elements / t.block_size * t.type_size;
}

std::uint64_t pad_to(std::uint64_t n, std::uint64_t multiple) {
  return (std::min<std::uint64_t>(n, UINT64_MAX - multiple) + multiple - 1) / multiple * multiple;
}

// A double as bytes, capped (a formula fed absurd dimensions must not be undefined behaviour, nor wrap a sum).
std::uint64_t saturated(double v) {
  if (!(v > 0)) {
    return 0;
  }
  return v >= static_cast<double>(k_bytes_cap) ? k_bytes_cap : static_cast<std::uint64_t>(v);
}

constexpr std::uint64_t k_max_width = k_max_model_width;
constexpr std::uint64_t k_max_heads = k_max_model_heads;

std::uint64_t key_length(const ModelShape& m) {
  return m.key_length > 0 ? m.key_length : (m.head_count > 0 ? m.embedding_length / m.head_count : 0);
}

std::uint64_t value_length(const ModelShape& m) {
  return m.value_length > 0 ? m.value_length : key_length(m);
}

}  // namespace

// ---------------------------------------------------------------- architectures

namespace {

struct ArchRow {
  std::string_view name;
  unsigned margin_percent;
  std::string_view note;
};

// The architectures memwarden sizes, and how far off it may be. 5%: a graph formula of Ollama's own and
// the llama.cpp KV cache; 10%: the graph from llama.cpp's worst case (Ollama has no formula), a mixture of
// experts, or a vision model's image graph left out; 15%: latent attention and vision-language models whose
// extra buffers are not modelled.
constexpr std::array<ArchRow, 37> k_arch_rows{{
    {"llama", 5, ""},
    {"llama4", 15, "chunked attention is sized as full attention"},
    {"mistral", 5, ""},
    {"qwen2", 5, ""},
    {"gemma", 5, ""},
    {"gemma2", 5, ""},
    {"gemma3", 10, "the image graph of the vision models (4b and up; about 1 GiB in Ollama's logs) is not counted"},
    {"command-r", 5, ""},
    {"phi2", 5, ""},
    {"stablelm", 5, ""},
    {"qwen3", 10, "compute graph estimated from llama.cpp's worst case (Ollama has no formula)"},
    {"phi3", 10, "compute graph estimated from llama.cpp's worst case (Ollama has no formula)"},
    {"starcoder2", 10, "compute graph estimated from llama.cpp's worst case (Ollama has no formula)"},
    {"granite", 10, "compute graph estimated from llama.cpp's worst case (Ollama has no formula)"},
    {"olmo2", 10, "compute graph estimated from llama.cpp's worst case (Ollama has no formula)"},
    {"olmo", 10, "compute graph estimated from llama.cpp's worst case (Ollama has no formula)"},
    {"exaone", 10, "compute graph estimated from llama.cpp's worst case (Ollama has no formula)"},
    {"internlm2", 10, "compute graph estimated from llama.cpp's worst case (Ollama has no formula)"},
    {"cohere2", 10, "compute graph estimated from llama.cpp's worst case (Ollama has no formula)"},
    {"mistral3", 15, "the vision encoder's buffers are not modelled"},
    {"qwen2vl", 15, "the vision encoder's buffers are not modelled"},
    {"qwen25vl", 15, "the vision encoder's buffers are not modelled"},
    {"mllama", 15, "the cross-attention cache for images is not modelled"},
    {"qwen2moe", 10, "a mixture of experts; compute graph from llama.cpp's worst case"},
    {"qwen3moe", 10, "a mixture of experts; compute graph from llama.cpp's worst case"},
    {"granitemoe", 10, "a mixture of experts; compute graph from llama.cpp's worst case"},
    {"olmoe", 10, "a mixture of experts; compute graph from llama.cpp's worst case"},
    {"gpt-oss", 10, "a mixture of experts with Ollama's rough graph estimate"},
    {"gptoss", 10, "a mixture of experts with Ollama's rough graph estimate"},
    {"deepseek2", 15, "latent attention and a mixture of experts"},
    {"deepseek", 10, "a mixture of experts"},
    {"chatglm", 10, "compute graph from llama.cpp's worst case"},
    {"bert", 10, "an embedding model: no KV cache"},
    {"nomic-bert", 10, "an embedding model: no KV cache"},
    {"nomic-bert-moe", 10, "an embedding model: no KV cache"},
    {"jina-bert-v2", 10, "an embedding model: no KV cache"},
    {"gemma-embedding", 10, "an embedding model: no KV cache"},
}};

// Recurrent and hybrid (attention + state-space) models: their state is not a KV cache.
constexpr std::array<std::string_view, 14> k_recurrent{
    "mamba",     "mamba2",        "rwkv6",      "rwkv6qwen2",     "rwkv7", "arwkv7",    "jamba",
    "falcon-h1", "granitehybrid", "nemotron_h", "nemotron_h_moe", "lfm2",  "qwen3next", "plamo2"};

}  // namespace

bool is_embedding_architecture(std::string_view arch) {
  return arch == "bert" || arch == "nomic-bert" || arch == "nomic-bert-moe" || arch == "jina-bert-v2" ||
         arch == "gemma-embedding";
}

ArchitectureSizing architecture_sizing(std::string_view arch) {
  if (std::find(k_recurrent.begin(), k_recurrent.end(), arch) != k_recurrent.end()) {
    return {false, 0,
            fmt::format("'{}' is a recurrent or hybrid model: its state is not a KV cache, and memwarden does not "
                        "size it",
                        arch)};
  }
  for (const auto& row : k_arch_rows) {
    if (row.name == arch) {
      return {true, row.margin_percent, std::string(row.note)};
    }
  }
  return {false, 0,
          fmt::format("memwarden does not know the architecture '{}': its KV cache and compute graph are "
                      "not estimated",
                      arch)};
}

// Ollama fs/ggml/ggml.go FlashAttention(): the architectures it runs with flash attention unless told not to.
bool flash_attention_by_default(std::string_view arch) {
  constexpr std::array<std::string_view, 13> k_on{"bert",    "gemma3",     "gptoss",   "gpt-oss", "mistral3",
                                                  "olmo3",   "qwen3",      "qwen3moe", "qwen35",  "qwen35moe",
                                                  "qwen3vl", "qwen3vlmoe", "lfm2"};
  return std::find(k_on.begin(), k_on.end(), arch) != k_on.end();
}

// llama.cpp src/llama-model.cpp load_hparams: hparams.set_swa_pattern(n) marks layer il as sliding when
// il % n < n - 1, so the last layer of each period is global. gemma2 (2), gemma3 (6), cohere2 (4), gpt-oss (2).
std::uint64_t default_swa_period(std::string_view arch) {
  if (arch == "gemma2" || arch == "gpt-oss" || arch == "gptoss") {
    return 2;
  }
  if (arch == "gemma3") {
    return 6;
  }
  if (arch == "cohere2") {
    return 4;
  }
  return 0;
}

bool ModelShape::moe() const {
  return std::any_of(block_expert_bytes.begin(), block_expert_bytes.end(), [](std::uint64_t b) { return b > 0; });
}

void ModelShape::set_sliding_window(std::uint64_t window, std::uint64_t period) {
  if (window == 0 || period == 0) {
    return;
  }
  sliding_window = window;
  layer_swa.assign(block_count, false);
  for (std::uint64_t i = 0; i < block_count; ++i) {
    layer_swa[i] = i % period < period - 1;
  }
}

void ModelShape::set_latent_cache(std::uint64_t kv_lora_rank, std::uint64_t rope_dimension) {
  key_length = kv_lora_rank + rope_dimension;
  value_length = kv_lora_rank;
  head_count_kv = 1;
  layer_head_count_kv.clear();
  latent_cache = true;
}

std::uint64_t ModelShape::expert_bytes() const {
  return std::accumulate(block_expert_bytes.begin(), block_expert_bytes.end(), std::uint64_t{0});
}

std::uint64_t ModelShape::weight_bytes() const {
  return std::accumulate(block_bytes.begin(), block_bytes.end(), token_embd_bytes + (output_tied ? 0 : output_bytes));
}

std::uint64_t ModelShape::active_weight_bytes() const {
  const auto all = weight_bytes();
  const auto experts = expert_bytes();
  if (experts == 0 || expert_count == 0) {
    return all;
  }
  const auto used = std::min(expert_used_count, expert_count);
  return all - experts +
         static_cast<std::uint64_t>(static_cast<double>(experts) * static_cast<double>(used) /
                                    static_cast<double>(expert_count));
}

namespace {

// A per-layer metadata value: a number, or an array of numbers (openelm's head counts, a hybrid model's 0
// for its recurrent layers). nullopt when absent or not numbers.
std::optional<std::vector<std::uint64_t>> arch_counts(const GgufFile& file, std::string_view arch,
                                                      std::string_view suffix) {
  const auto* value = file.find(fmt::format("{}.{}", arch, suffix));
  if (value == nullptr) {
    return std::nullopt;
  }
  if (const auto one = value->as_u64()) {
    return std::vector<std::uint64_t>{*one};
  }
  const auto* array = value->as_array();
  if (array == nullptr) {
    return std::nullopt;
  }
  std::vector<std::uint64_t> out;
  bool ok = true;
  std::visit(
      [&](const auto& items) {
        using Items = std::decay_t<decltype(items)>;
        if constexpr (std::is_same_v<Items, std::vector<std::uint32_t>> ||
                      std::is_same_v<Items, std::vector<std::int32_t>> ||
                      std::is_same_v<Items, std::vector<std::uint64_t>> ||
                      std::is_same_v<Items, std::vector<std::int64_t>> ||
                      std::is_same_v<Items, std::vector<std::uint16_t>> ||
                      std::is_same_v<Items, std::vector<std::int16_t>> ||
                      std::is_same_v<Items, std::vector<std::uint8_t>> ||
                      std::is_same_v<Items, std::vector<std::int8_t>>) {
          for (const auto v : items) {
            if (v < 0) {
              ok = false;
              return;
            }
            out.push_back(static_cast<std::uint64_t>(v));
          }
        } else {
          ok = false;
        }
      },
      array->items);
  if (!ok) {
    return std::nullopt;
  }
  return out;
}

std::uint64_t largest(const std::vector<std::uint64_t>& v) {
  return v.empty() ? 0 : *std::max_element(v.begin(), v.end());
}

// Tensor names of routed experts: ffn_gate_exps, ffn_up_exps, ffn_down_exps, ffn_gate_up_exps and their biases.
bool is_expert_tensor(std::string_view name) {
  return name.find("_exps.") != std::string_view::npos;
}

}  // namespace

Result<ModelShape> shape_from_gguf(const GgufFile& file, std::string_view source) {
  const std::string src(source);
  const auto arch = file.architecture();
  if (!arch) {
    return fail(src, "no general.architecture: not a model file memwarden can size");
  }
  if (*arch == "clip" || *arch == "mmproj") {
    return fail(src,
                "a vision projector (mmproj), not a model: plan the model it belongs to, with --mmproj "
                "naming this file");
  }
  ModelShape m;
  m.architecture = std::string(*arch);
  m.sizing = architecture_sizing(*arch);
  const auto need = [&](std::string_view suffix) -> Result<std::uint64_t> {
    if (auto v = file.arch_u64(suffix); v && *v > 0) {
      return *v;
    }
    return fail(src, fmt::format("{}.{} is missing", *arch, suffix));
  };
  for (const auto& [field, suffix] :
       {std::pair{&m.block_count, "block_count"}, std::pair{&m.embedding_length, "embedding_length"}}) {
    auto v = need(suffix);
    if (!v) {
      return unexpected(v.error());
    }
    *field = *v;
  }
  if (m.block_count > 4096) {
    return fail(src, fmt::format("{} blocks is not a model", m.block_count));
  }
  if (m.embedding_length > k_max_width) {
    return fail(src, fmt::format("an embedding of {} is not a model", m.embedding_length));
  }
  // Head counts, one value or one per layer.
  const auto heads = arch_counts(file, *arch, "attention.head_count");
  const auto kv_heads = arch_counts(file, *arch, "attention.head_count_kv");
  const auto per_layer_ok = [&](const std::optional<std::vector<std::uint64_t>>& v) {
    return !v || v->size() == 1 || v->size() == m.block_count;
  };
  if (!per_layer_ok(heads) || !per_layer_ok(kv_heads)) {
    return fail(src, fmt::format("{}.attention.head_count(_kv) has a value per layer, but not {} of them", *arch,
                                 m.block_count));
  }
  m.head_count = heads ? largest(*heads) : 0;
  if (largest(heads.value_or(std::vector<std::uint64_t>{})) > k_max_heads ||
      largest(kv_heads.value_or(std::vector<std::uint64_t>{})) > k_max_heads) {
    return fail(src, fmt::format("{}.attention.head_count(_kv) of more than {} is not a model", *arch, k_max_heads));
  }
  if (m.head_count == 0 && m.sizing.known) {
    return fail(src, fmt::format("{}.attention.head_count is missing", *arch));
  }
  m.head_count_kv = kv_heads ? largest(*kv_heads) : m.head_count;
  if (kv_heads && kv_heads->size() == m.block_count && m.block_count > 1) {
    m.layer_head_count_kv = *kv_heads;
    if (std::find(kv_heads->begin(), kv_heads->end(), 0) != kv_heads->end() && m.sizing.known) {
      m.sizing = {false, 0,
                  fmt::format("'{}' has layers without attention heads (recurrent or hybrid layers): memwarden does "
                              "not size their state",
                              *arch)};
    }
  }
  const auto per_head = m.head_count > 0 ? m.embedding_length / m.head_count : 0;
  m.key_length = file.arch_u64("attention.key_length").value_or(per_head);
  m.value_length = file.arch_u64("attention.value_length").value_or(m.key_length);
  m.feed_forward_length = file.arch_u64("feed_forward_length").value_or(0);
  m.context_length = file.arch_u64("context_length").value_or(0);
  if (m.key_length > k_max_width || m.value_length > k_max_width || m.feed_forward_length > k_max_width) {
    return fail(src, fmt::format("{}.attention.key_length, value_length or feed_forward_length is out of range "
                                 "(more than {})",
                                 *arch, k_max_width));
  }
  m.embedding_only = is_embedding_architecture(*arch) || file.arch_u64("pooling_type").has_value();
  if (const auto* tokens = file.get_array("tokenizer.ggml.tokens")) {
    m.vocab_size = tokens->size();
  } else {
    m.vocab_size = file.arch_u64("vocab_size").value_or(0);
  }
  if (m.vocab_size > k_max_model_vocab) {
    return fail(src, fmt::format("a vocabulary of {} tokens is not a model", m.vocab_size));
  }
  // Sliding-window attention: the window from the file, the pattern as llama.cpp sets it for the
  // architecture (or the file's sliding_window_pattern period).
  if (const auto window = file.arch_u64("attention.sliding_window"); window && *window > 0 && *window <= (1ULL << 32)) {
    m.set_sliding_window(*window,
                         file.arch_u64("attention.sliding_window_pattern").value_or(default_swa_period(*arch)));
  }
  m.expert_count = std::min<std::uint64_t>(file.arch_u64("expert_count").value_or(0), k_max_heads);
  m.expert_used_count = std::min(file.arch_u64("expert_used_count").value_or(0), m.expert_count);
  if (m.expert_count > 0 && m.expert_used_count == 0) {
    return fail(src, fmt::format("{}.expert_used_count is missing: how many of the {} experts a token reads is "
                                 "not said (llama.cpp refuses such a file too)",
                                 *arch, m.expert_count));
  }
  m.expert_feed_forward_length = std::min<std::uint64_t>(
      file.arch_u64("expert_feed_forward_length").value_or(m.expert_count > 0 ? m.feed_forward_length : 0),
      k_max_width);

  m.block_bytes.assign(m.block_count, 0);
  m.block_expert_bytes.assign(m.block_count, 0);
  bool has_output = false;
  for (const auto& t : file.tensors) {
    const std::string_view name = t.name;
    if (name.starts_with("blk.")) {
      const auto dot = name.find('.', 4);
      const auto index = parse_u64(name.substr(4, dot == std::string_view::npos ? name.npos : dot - 4));
      if (!index || *index >= m.block_count) {
        return fail(src, fmt::format("tensor {} is outside the {} blocks", name, m.block_count));
      }
      m.block_bytes[*index] += t.bytes;
      if (is_expert_tensor(name)) {
        m.block_expert_bytes[*index] += t.bytes;
        if (*index == 0 && name.starts_with("blk.0.ffn_gate_exps.")) {
          m.gate_exps_bytes += t.bytes;
        }
      }
    } else if (name.starts_with("output.") || name.starts_with("output_norm.")) {
      has_output = has_output || name == "output.weight";
      m.output_bytes += t.bytes;
    } else if (name.starts_with("v.") || name.starts_with("mm.")) {
      m.vision_bytes += t.bytes;  // a vision tower in the model's own file (Ollama's gemma3, qwen2.5vl, ...)
    } else {
      m.token_embd_bytes += t.bytes;  // token_embd and the rest (rope factors, ...) stay on the CPU
    }
  }
  if (!m.moe()) {
    m.block_expert_bytes.clear();
  }
  if (!has_output) {
    if (const auto* embd = file.find_tensor("token_embd.weight")) {
      m.output_bytes += embd->bytes;  // tied: the output layer on the GPU is a copy of token_embd
      m.output_tied = true;
    }
  }
  // Multi-head latent attention (deepseek2 converted since llama.cpp's MLA support): the file's
  // key_length_mla is the per-head query/key length, and key_length / value_length are the compressed
  // cache's: kv_lora_rank + the rope dimension, and kv_lora_rank, with one KV head. Since llama.cpp PR #19067
  // (2026-01) only K is cached (has_v = !is_mla). Older files (Ollama's deepseek-coder-v2 and deepseek-v3) have
  // no *_mla keys and cache K and V per head: key_length 192 and value_length 128 times the heads.
  if (file.arch_u64("attention.key_length_mla")) {
    const auto rank = file.arch_u64("attention.kv_lora_rank").value_or(0);
    const auto rope = file.arch_u64("rope.dimension_count").value_or(0);
    if (rank > k_max_width || rope > k_max_width) {
      return fail(src, fmt::format("{}.attention.kv_lora_rank or rope.dimension_count is out of range (more than {})",
                                   *arch, k_max_width));
    }
    if (rank > 0) {
      m.set_latent_cache(rank, rope);
    }
  }
  return m;
}

double Placement::gpu_fraction() const {
  if (full_offload()) {
    return 1.0;
  }
  const auto cpu = ram_resident + ram_page_cache;
  const auto total = vram + (cpu > token_embd ? cpu - token_embd : 0);
  return total == 0 ? 0.0 : static_cast<double>(vram) / static_cast<double>(total);
}

// llama.cpp: n_ctx_seq = pad256(n_ctx / n_seq), n_ctx = n_ctx_seq × n_seq (llama-context.cpp). Ollama passes
// -c num_ctx × parallel -np parallel, so each slot holds pad256(num_ctx) cells.
std::uint64_t kv_cells(const EstimateOptions& o) {
  return pad_to(std::max<std::uint64_t>(o.num_ctx, 1), 256) * std::max<std::uint64_t>(o.parallel, 1);
}

// llama.cpp src/llama-kv-cache-iswa.cpp: size_swa = min(size_base, GGML_PAD(n_swa × (unified ? n_seq : 1) +
// n_ubatch, n_pad)) per stream; Ollama's KV is not unified, n_pad is 256 and n_ubatch its batch (512).
std::uint64_t swa_cells(const ModelShape& m, const EstimateOptions& o) {
  const auto slot = pad_to(std::max<std::uint64_t>(o.num_ctx, 1), 256);
  const auto window = pad_to(
      std::min(m.sliding_window, slot) + std::min<std::uint64_t>(std::max<std::uint64_t>(o.batch, 1), slot), 256);
  return std::min(slot, window) * std::max<std::uint64_t>(o.parallel, 1);
}

namespace {

// K plus V of one cell of a block with `kv_heads` KV heads (llama-kv-cache.cpp: K is
// [n_embd_k_gqa = key_length × head_count_kv, cells] of type_k, V alike).
std::uint64_t kv_bytes_per_cell(const ModelShape& m, const EstimateOptions& o, std::uint64_t kv_heads) {
  const auto k = row_size(o.kv_type, key_length(m) * kv_heads);
  return m.latent_cache ? k : k + row_size(o.kv_type, value_length(m) * kv_heads);
}

}  // namespace

std::uint64_t kv_bytes_per_block(const ModelShape& m, const EstimateOptions& o) {
  return mul_capped(kv_bytes_per_cell(m, o, m.head_count_kv), kv_cells(o));
}

std::vector<std::uint64_t> kv_bytes_per_layer(const ModelShape& m, const EstimateOptions& o) {
  std::vector<std::uint64_t> out(m.block_count, 0);
  if (m.embedding_only || !m.sizing.known) {
    return out;  // llama.cpp gives non-causal embedding models no KV cache; unknown ones are not sized
  }
  const auto full = kv_cells(o);
  const auto window = m.sliding_window > 0 ? swa_cells(m, o) : full;
  for (std::uint64_t i = 0; i < m.block_count; ++i) {
    const auto heads = m.layer_head_count_kv.empty() ? m.head_count_kv : m.layer_head_count_kv[i];
    const bool sliding = i < m.layer_swa.size() && m.layer_swa[i];
    out[i] = mul_capped(kv_bytes_per_cell(m, o, heads), sliding ? window : full);
  }
  return out;
}

// Ollama fs/ggml/ggml.go GraphSize (b = batch, d = embedding, c = context × parallel, h = heads, hkv = KV
// heads, dk = key length per head, dh = d / h, V = vocab), one pair of formulas per architecture:
//   llama     full    = max(4b(1 + 4d + c(1 + h)), 4b(d + V))
//             partial = 4bd + max(4b(1 + d + max(c, d)) + d²·9/16 + 4c(b·h + dh·hkv), 4b(d + V) + d·V·105/128)
//             with ffn_gate_exps (mixtral 8x22b style):
//             partial = max(3·|gate_exps| + 4b(2ff + hkv + d + c + dh·hkv), 4(c·b·h + c·dh·hkv + 1024b + dh·hkv·b))
//   gemma*    full    = max(4b(d + V), 4b(2 + c + c·h + 2d + 2dk·h))
//             partial = max(4db + d·V·105/128 + 4Vb, 4b(2d + 1 + 2dk·h + c + c·h) + 32dk·c + d·dk·h·9/16)
//   command-r full    = max(4b(d + V), 4b(2 + 4d + c(1 + h)))
//             partial = max(4b(d + V) + d·V·105/128, 4b(1 + 2d + c(1 + h)) + 4dc + d²·9/16)
//   qwen2     full    = max(4b(d + V), 4b(1 + 2d + c + c·h))
//             partial = max(4b(d + V) + d·V·105/128, 4(b(1 + 2d + c(1 + h)) + d(1 + c)))
//   phi2      full    = max(4b(d + V), 4b(1 + 4d + c + c·h))
//             partial = max(4b(2d + V) + d·V·105/128, 4b(2 + 3d + c + c·h))
//   stablelm  full    = 4b(c(1 + h) + 3d + 2), partial = max(4b(V + 2d), full)
//   deepseek2 full    = max(4b(3d + V), 4b(3d + 2 + c(1 + hkv) + 2dk·hkv))
//             partial = max(4b(3d + V) + d·V·105/128, 4b(2d + 1 + 2dk·hkv + c + c·hkv) + 4dk·c·hkv + d·dk·hkv·9/16)
//   gpt-oss   partial = 2·h / hkv · KV / 6, or with flash attention (4·parallel + c/1024 + 110) MiB; full = partial
// KV there is Ollama's own full-context total over every block; the graph does not depend on where the
// blocks go.
// The architectures without a formula of Ollama's get llama.cpp's worst case at one ubatch of b tokens, as
// gguf-parser-go estimates it (estimation.md §3): the largest of the attention's intermediates (Q, K, V and
// the output, and without flash attention the f32 KQ matrix of n_kv × b × h), the FFN's (b × the FFN a
// token reads, three f32 tensors) and the logits (b × V, f32). For qwen3:32b at 8192 without flash
// attention that is 1060 MiB; llama.cpp measured 1092 MiB (ollama#11499). Ollama's own fallback there,
// (h / hkv) · KV / 6, says 2731 MiB.
GraphBytes graph_bytes(const ModelShape& m, const EstimateOptions& o) {
  if (!m.sizing.known) {
    return {};
  }
  const double c = static_cast<double>(std::max<std::uint64_t>(o.num_ctx, 1) * std::max<std::uint64_t>(o.parallel, 1));
  const double b = static_cast<double>(std::min<std::uint64_t>(o.batch, std::max<std::uint64_t>(o.num_ctx, 1)));
  const double d = static_cast<double>(m.embedding_length);
  const double h = static_cast<double>(m.head_count);
  const double hkv = static_cast<double>(std::max<std::uint64_t>(m.head_count_kv, 1));
  const double v = static_cast<double>(m.vocab_size);
  const double dh = m.head_count > 0 ? d / h : 0;
  const double dk = static_cast<double>(key_length(m));
  const double dv = static_cast<double>(value_length(m));
  const double ff = static_cast<double>(m.feed_forward_length);
  // Ollama's KV total: every block at the whole context, at its bytes per element (q8_0 1, q4_0 0.5).
  const double per_element = o.kv_type == KvType::q8_0 ? 1.0 : o.kv_type == KvType::q4_0 ? 0.5 : 2.0;
  const double kv_total = c * (dk + dv) * hkv * per_element * static_cast<double>(m.embedding_only ? 0 : m.block_count);
  const std::string_view a = m.architecture;
  double full = 0;
  double partial = 0;
  if (a == "llama" || a == "llama4" || a == "mistral") {
    full = std::max(4 * b * (1 + 4 * d + c * (1 + h)), 4 * b * (d + v));
    partial = 4 * b * d + std::max(4 * b * (1 + d + std::max(c, d)) + d * d * 9 / 16 + 4 * c * (b * h + dh * hkv),
                                   4 * b * (d + v) + d * v * 105 / 128);
    if (m.gate_exps_bytes > 0) {
      partial = std::max(3 * static_cast<double>(m.gate_exps_bytes) + 4 * b * (2 * ff + hkv + d + c + dh * hkv),
                         4 * (c * b * h + c * dh * hkv + b * 1024 + dh * hkv * b));
    }
  } else if (a == "gemma" || a == "gemma2" || a == "gemma3") {
    full = std::max(4 * b * (d + v), 4 * b * (2 + c + c * h + 2 * d + 2 * dk * h));
    partial = std::max(4 * d * b + d * v * 105 / 128 + 4 * v * b,
                       4 * b * (2 * d + 1 + 2 * dk * h + c + c * h) + 4 * dk * c * 8 + d * dk * h * 9 / 16);
  } else if (a == "command-r") {
    full = std::max(4 * b * (d + v), 4 * b * (2 + 4 * d + c * (1 + h)));
    partial =
        std::max(4 * b * (d + v) + d * v * 105 / 128, 4 * b * (1 + 2 * d + c * (1 + h)) + 4 * d * c + d * d * 9 / 16);
  } else if (a == "qwen2") {
    full = std::max(4 * b * (d + v), 4 * b * (1 + 2 * d + c + c * h));
    partial = std::max(4 * b * (d + v) + d * v * 105 / 128, 4 * (b * (1 + 2 * d + c * (1 + h)) + d * (1 + c)));
  } else if (a == "phi2") {
    full = std::max(4 * b * (d + v), 4 * b * (1 + 4 * d + c + c * h));
    partial = std::max(4 * b * (2 * d + v) + d * v * 105 / 128, 4 * b * (2 + 3 * d + c + c * h));
  } else if (a == "stablelm") {
    full = 4 * b * (c * (1 + h) + 3 * d + 2);
    partial = std::max(4 * b * (v + 2 * d), full);
  } else if (a == "deepseek2") {
    full = std::max(4 * b * (3 * d + v), 4 * b * (3 * d + 2 + c * (1 + hkv) + 2 * dk * hkv));
    partial = std::max(4 * b * (3 * d + v) + d * v * 105 / 128,
                       4 * b * (2 * d + 1 + 2 * dk * hkv + c + c * hkv) + 4 * dk * c * hkv + d * dk * hkv * 9 / 16);
  } else if (a == "gpt-oss" || a == "gptoss") {
    partial = o.flash_attention
                  ? (4 * static_cast<double>(std::max<std::uint64_t>(o.parallel, 1)) + std::floor(c / 1024) + 110) *
                        static_cast<double>(1 << 20)
                  : 2 * h / hkv * kv_total / 6;
    full = partial;
  } else {
    // Ollama's slots are separate streams: each one's KQ is its own cells by its share of the batch.
    const double n_kv = static_cast<double>(pad_to(std::max<std::uint64_t>(o.num_ctx, 1), 256));
    const double qkvo = 4 * b * (h * dk + hkv * (dk + dv) + h * dv);
    const double attention = qkvo + (o.flash_attention ? 0 : 4 * n_kv * b * h);
    const double ff_token =
        m.expert_count > 0 && m.expert_feed_forward_length > 0
            ? static_cast<double>(std::min(m.expert_used_count, m.expert_count) * m.expert_feed_forward_length)
            : ff;
    const double ffn = 3 * 4 * b * ff_token;
    const double logits = 4 * b * v;
    partial = std::max({attention, ffn, logits});
    full = partial;
  }
  return {saturated(full), saturated(partial)};
}

namespace {

// What went on the GPU: weights (blocks, experts, the output layer), KV cache, and the layers counted as
// there (ollama ps's N/M).
struct OnGpu {
  std::uint64_t weights = 0;
  std::uint64_t kv = 0;
  std::uint64_t layers = 0;
  bool experts_split = false;
};

// Layers on the GPU from the last block down while each fits (whole blocks, Ollama's classic placement), and
// the output layer when every block did and it fits.
OnGpu place_blocks(const ModelShape& m, const std::vector<std::uint64_t>& kv, std::uint64_t base,
                   std::uint64_t gpu_free) {
  OnGpu g;
  std::uint64_t used = base;
  for (std::size_t i = m.block_bytes.size(); i-- > 0;) {
    const auto need = m.block_bytes[i] + kv[i];
    if (used + need > gpu_free) {
      break;
    }
    used += need;
    g.weights += m.block_bytes[i];
    g.kv += kv[i];
    ++g.layers;
  }
  if (g.layers == m.block_count && used + m.output_bytes <= gpu_free) {
    g.weights += m.output_bytes;
    ++g.layers;
  }
  return g;
}

// A mixture of experts that does not fit whole, as llama.cpp's --fit (common/fit.cpp) places it: the routed
// experts go to the CPU first, so every block's attention and shared weights, the whole KV cache (`kv_all`)
// and the output layer stay on the GPU, and the experts of the blocks from the last down are added while
// they fit; layers counts the blocks whole on the GPU. nullopt when even the non-expert part does not fit.
std::optional<OnGpu> place_experts_split(const ModelShape& m, std::uint64_t kv_all, std::uint64_t base,
                                         std::uint64_t gpu_free) {
  std::uint64_t dense = 0;
  for (std::size_t i = 0; i < m.block_bytes.size(); ++i) {
    dense += m.block_bytes[i] - m.block_expert_bytes[i];
  }
  std::uint64_t used = base + dense + kv_all + m.output_bytes;
  if (used > gpu_free) {
    return std::nullopt;
  }
  OnGpu g{dense + m.output_bytes, kv_all, 0, true};
  for (std::size_t i = m.block_bytes.size(); i-- > 0;) {
    if (used + m.block_expert_bytes[i] > gpu_free) {
      break;
    }
    used += m.block_expert_bytes[i];
    g.weights += m.block_expert_bytes[i];
    ++g.layers;
  }
  return g;
}

}  // namespace

Result<Placement> place_model(const ModelShape& m, const EstimateOptions& o, std::uint64_t gpu_free) {
  const std::string source = m.architecture.empty() ? "model" : m.architecture + " model";
  if (m.block_count == 0 || m.block_bytes.size() != m.block_count) {
    return fail(source, fmt::format("{} block sizes for {} blocks: the tensor list does not match the architecture",
                                    m.block_bytes.size(), m.block_count));
  }
  if (!m.block_expert_bytes.empty() && m.block_expert_bytes.size() != m.block_count) {
    return fail(source, fmt::format("{} expert sizes for {} blocks", m.block_expert_bytes.size(), m.block_count));
  }
  if (!m.layer_head_count_kv.empty() && m.layer_head_count_kv.size() != m.block_count) {
    return fail(source, fmt::format("{} KV head counts for {} blocks", m.layer_head_count_kv.size(), m.block_count));
  }
  const bool sized = m.sizing.known && !m.embedding_only;
  if (sized && (m.head_count_kv == 0 || key_length(m) == 0)) {
    return fail(source, "the head counts are missing, so the KV cache cannot be sized");
  }
  if (o.kv_type != KvType::f16 && sized) {
    if (!o.flash_attention) {
      return fail(source,
                  fmt::format("a {} KV cache needs flash attention (OLLAMA_FLASH_ATTENTION=1)", to_string(o.kv_type)));
    }
    if (key_length(m) % 32 != 0 || value_length(m) % 32 != 0) {
      return fail(source, fmt::format("a {} KV cache needs head lengths divisible by 32 (these are {} and {})",
                                      to_string(o.kv_type), key_length(m), value_length(m)));
    }
  }
  Placement p;
  p.cache_known = m.sizing.known;
  p.layers_total = m.block_count + 1;
  p.graph = graph_bytes(m, o);
  const auto kv = kv_bytes_per_layer(m, o);
  p.kv = std::accumulate(kv.begin(), kv.end(), std::uint64_t{0}, add_capped);
  p.token_embd = m.token_embd_bytes;
  p.weights = m.weight_bytes();

  // Ollama llm/memory.go: a GPU is used only if it holds the reserve, the larger graph and two blocks.
  std::uint64_t largest_block = 0;
  for (std::size_t i = 0; i < m.block_bytes.size(); ++i) {
    largest_block = std::max(largest_block, m.block_bytes[i] + kv[i]);
  }
  const auto base = o.gpu_reserve + std::max(p.graph.full, p.graph.partial);
  OnGpu gpu;
  if (gpu_free >= base + 2 * largest_block) {
    gpu = place_blocks(m, kv, base, gpu_free);
  }
  if (gpu.layers != p.layers_total && m.moe() && gpu_free > 0) {
    if (auto split = place_experts_split(m, p.kv, base, gpu_free)) {
      gpu = *split;
    }
  }
  p.layers_on_gpu = gpu.layers;
  p.experts_split = gpu.experts_split;
  const auto gpu_weights = gpu.weights;
  const auto gpu_kv = gpu.kv;
  const bool on_gpu = gpu_weights > 0;
  const auto graph = p.full_offload() ? p.graph.full : p.graph.partial;
  p.vram = on_gpu ? o.gpu_reserve + graph + gpu_weights + gpu_kv : 0;
  // CPU side: token_embd always, every weight not offloaded, the output layer unless offloaded (a tied one is
  // token_embd itself), their KV, and the graph when nothing runs on the GPU.
  const bool output_on_gpu = p.full_offload() || p.experts_split;
  const auto gpu_block_weights = gpu_weights - (output_on_gpu ? m.output_bytes : 0);
  const auto cpu_weights = p.weights - gpu_block_weights - (output_on_gpu && !m.output_tied ? m.output_bytes : 0);
  const auto cpu_kv = p.kv - gpu_kv;
  p.ram_resident = cpu_kv + (on_gpu ? 0 : p.graph.partial);
  if (o.loading == WeightLoading::mmap) {
    p.ram_page_cache = cpu_weights;  // mapped from the file: clean page cache, reclaimable
  } else {
    p.ram_resident += cpu_weights;  // read into anonymous memory, or locked
  }
  return p;
}

}  // namespace mw
