#include "core/estimate.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "core/bytes.hpp"

namespace mw {

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
  return (n + multiple - 1) / multiple * multiple;
}

std::uint64_t key_length(const ModelShape& m) {
  return m.key_length > 0 ? m.key_length : (m.head_count > 0 ? m.embedding_length / m.head_count : 0);
}

std::uint64_t value_length(const ModelShape& m) {
  return m.value_length > 0 ? m.value_length : key_length(m);
}

}  // namespace

Result<ModelShape> shape_from_gguf(const GgufFile& file, std::string_view source) {
  const std::string src(source);
  const auto arch = file.architecture();
  if (!arch) {
    return fail(src, "no general.architecture: not a model file memwarden can size");
  }
  ModelShape m;
  m.architecture = std::string(*arch);
  const auto need = [&](std::string_view suffix) -> Result<std::uint64_t> {
    if (auto v = file.arch_u64(suffix); v && *v > 0) {
      return *v;
    }
    return fail(src, fmt::format("{}.{} is missing", *arch, suffix));
  };
  for (const auto& [field, suffix] :
       {std::pair{&m.block_count, "block_count"}, std::pair{&m.embedding_length, "embedding_length"},
        std::pair{&m.head_count, "attention.head_count"}}) {
    auto v = need(suffix);
    if (!v) {
      return unexpected(v.error());
    }
    *field = *v;
  }
  m.head_count_kv = file.arch_u64("attention.head_count_kv").value_or(m.head_count);
  m.key_length = file.arch_u64("attention.key_length").value_or(m.embedding_length / m.head_count);
  m.value_length = file.arch_u64("attention.value_length").value_or(m.key_length);
  m.context_length = file.arch_u64("context_length").value_or(0);
  if (const auto* tokens = file.get_array("tokenizer.ggml.tokens")) {
    m.vocab_size = tokens->size();
  } else {
    m.vocab_size = file.arch_u64("vocab_size").value_or(0);
  }
  if (m.block_count > 4096) {
    return fail(src, fmt::format("{} blocks is not a model", m.block_count));
  }
  m.block_bytes.assign(m.block_count, 0);
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
    } else if (name.starts_with("output.") || name.starts_with("output_norm.")) {
      has_output = has_output || name == "output.weight";
      m.output_bytes += t.bytes;
    } else {
      m.token_embd_bytes += t.bytes;  // token_embd and the rest (rope factors, ...) stay on the CPU
    }
  }
  if (!has_output) {
    if (const auto* embd = file.find_tensor("token_embd.weight")) {
      m.output_bytes += embd->bytes;  // tied: the output layer on the GPU is a copy of token_embd
      m.output_tied = true;
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

// llama-kv-cache.cpp: per layer K is [n_embd_k_gqa = key_length × head_count_kv, cells] of type_k, V alike.
std::uint64_t kv_bytes_per_block(const ModelShape& m, const EstimateOptions& o) {
  const auto cells = kv_cells(o);
  return (row_size(o.kv_type, key_length(m) * m.head_count_kv) +
          row_size(o.kv_type, value_length(m) * m.head_count_kv)) *
         cells;
}

// Ollama fs/ggml/ggml.go GraphSize, case "llama" (b = batch, d = embedding, c = context, h = heads,
// V = vocab; context is num_ctx × parallel):
//   full    = max(4b(1 + 4d + c(1 + h)), 4b(d + V))
//   partial = 4bd + max(4b(1 + d + max(c, d)) + d²·9/16 + 4c(b·h + d_head·h_kv), 4b(d + V) + d·V·105/128)
// Used for every architecture here: the ones memwarden plans for (llama, mistral, qwen2) are llama-shaped.
GraphBytes graph_bytes(const ModelShape& m, const EstimateOptions& o) {
  const double c = static_cast<double>(std::max<std::uint64_t>(o.num_ctx, 1) * std::max<std::uint64_t>(o.parallel, 1));
  const double b = static_cast<double>(std::min<std::uint64_t>(o.batch, std::max<std::uint64_t>(o.num_ctx, 1)));
  const double d = static_cast<double>(m.embedding_length);
  const double h = static_cast<double>(m.head_count);
  const double hkv = static_cast<double>(m.head_count_kv);
  const double v = static_cast<double>(m.vocab_size);
  const double dh = static_cast<double>(key_length(m));
  const double full = std::max(4 * b * (1 + 4 * d + c * (1 + h)), 4 * b * (d + v));
  const double partial =
      4 * b * d + std::max(4 * b * (1 + d + std::max(c, d)) + d * d * 9 / 16 + 4 * c * (b * h + dh * hkv),
                           4 * b * (d + v) + d * v * 105 / 128);
  return {static_cast<std::uint64_t>(full), static_cast<std::uint64_t>(partial)};
}

Result<Placement> place_model(const ModelShape& m, const EstimateOptions& o, std::uint64_t gpu_free) {
  const std::string source = m.architecture.empty() ? "model" : m.architecture + " model";
  if (m.block_count == 0 || m.block_bytes.size() != m.block_count) {
    return fail(source, fmt::format("{} block sizes for {} blocks: the tensor list does not match the architecture",
                                    m.block_bytes.size(), m.block_count));
  }
  if (m.head_count_kv == 0 || key_length(m) == 0) {
    return fail(source, "the head counts are missing, so the KV cache cannot be sized");
  }
  if (o.kv_type != KvType::f16) {
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
  p.layers_total = m.block_count + 1;
  p.graph = graph_bytes(m, o);
  const auto kv_block = kv_bytes_per_block(m, o);
  p.kv = kv_block * m.block_count;
  p.token_embd = m.token_embd_bytes;
  p.weights = m.token_embd_bytes + (m.output_tied ? 0 : m.output_bytes);
  for (const auto b : m.block_bytes) {
    p.weights += b;
  }

  // Ollama llm/memory.go: a GPU is used only if it holds the reserve, the larger graph and two blocks.
  std::uint64_t gpu_weights = 0;
  std::uint64_t gpu_kv = 0;
  const auto largest_block = *std::max_element(m.block_bytes.begin(), m.block_bytes.end()) + kv_block;
  const auto base = o.gpu_reserve + std::max(p.graph.full, p.graph.partial);
  if (gpu_free >= base + 2 * largest_block) {
    std::uint64_t used = base;
    // From the last block down, while each fits.
    for (std::size_t i = m.block_bytes.size(); i-- > 0;) {
      const auto need = m.block_bytes[i] + kv_block;
      if (used + need > gpu_free) {
        break;
      }
      used += need;
      gpu_weights += m.block_bytes[i];
      gpu_kv += kv_block;
      ++p.layers_on_gpu;
    }
    // The output layer is one more "layer", placed when every block is on the GPU and it fits.
    if (p.layers_on_gpu == m.block_count && used + m.output_bytes <= gpu_free) {
      gpu_weights += m.output_bytes;
      ++p.layers_on_gpu;
    }
  }
  const bool on_gpu = p.layers_on_gpu > 0;
  const auto graph = p.full_offload() ? p.graph.full : p.graph.partial;
  p.vram = on_gpu ? o.gpu_reserve + graph + gpu_weights + gpu_kv : 0;
  // CPU side: token_embd always, every block not offloaded, the output layer unless offloaded (a tied one is
  // token_embd itself), their KV, and the graph when nothing runs on the GPU.
  const bool output_on_gpu = p.full_offload();
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
