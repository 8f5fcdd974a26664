// Popular models by their Ollama names, for planning before a download: the
// architecture figures from the published configs and the tensor layout of a
// llama-style model, quantized the way llama.cpp's quantize does it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/estimate.hpp"
#include "core/gguf.hpp"
#include "core/ollama.hpp"

namespace mw {

// The dimensions of a model, as its published config (or its GGUF metadata, or Ollama's /api/show
// model_info) gives them: enough to lay out its tensors for any quantization and to size its KV cache.
// A field left 0 does not apply (no sliding window, no experts, no latent attention).
struct ModelDims {
  std::string architecture;  // general.architecture: "llama", "qwen2", "gemma3", "qwen3moe", "gpt-oss", ...
  std::uint64_t block_count = 0;
  std::uint64_t embedding_length = 0;
  std::uint64_t feed_forward_length = 0;  // a dense block's FFN; for a mixture of experts, its dense blocks' (0: none)
  std::uint64_t head_count = 0;
  std::uint64_t head_count_kv = 0;
  std::uint64_t vocab_size = 0;
  std::uint64_t context_length = 0;
  bool qkv_bias = false;           // attn_q/k/v biases (qwen2, gpt-oss)
  std::uint64_t key_length = 0;    // per head; 0: embedding_length / head_count (gemma3 and qwen3 state 128 or 256)
  std::uint64_t value_length = 0;  // per head; 0: key_length
  bool tied_embeddings = false;    // no output.weight: the output layer is token_embd (gemma, small qwen, phi4-mini)
  // Interleaved sliding-window attention: every swa_period-th layer (the last of each period) attends to the
  // whole context, the others to the last sliding_window tokens (gemma2 and gpt-oss 2, cohere2 4, gemma3 6).
  std::uint64_t sliding_window = 0;
  std::uint64_t swa_period = 0;
  // Mixture of experts: expert_count experts of expert_feed_forward_length each per block, expert_used_count of
  // them active per token, expert_shared_count always-on shared experts, the first leading_dense_block_count
  // blocks dense (deepseek2).
  std::uint64_t expert_count = 0;
  std::uint64_t expert_used_count = 0;
  std::uint64_t expert_feed_forward_length = 0;
  std::uint64_t expert_shared_count = 0;
  std::uint64_t leading_dense_block_count = 0;
  // Multi-head latent attention (deepseek2): the KV cache holds kv_lora_rank + rope_dimension per token and
  // layer; q_lora_rank 0 means q is not compressed (the lite models).
  std::uint64_t kv_lora_rank = 0;
  std::uint64_t q_lora_rank = 0;
  std::uint64_t rope_dimension = 0;
  // The file caches the compressed latent (llama.cpp's MLA conversion: K only, kv_lora_rank + rope values)
  // rather than K and V per head (Ollama's older deepseek2 files).
  bool latent_cache = false;
};

// A published size: what `ollama pull NAME:TAG` downloads for one quantization (the model blob).
struct CatalogSize {
  std::string quantization;  // as memwarden names it: "q4_K_M", "q8_0", "f16", "mxfp4", "bf16"
  std::uint64_t bytes = 0;   // ollama.com's figure in bytes ("8.1GB" is 8'100'000'000)
};

// A model of the Ollama library in one parameter size, e.g. gemma3:12b.
struct CatalogModel {
  std::string name;                  // "gemma3:12b": family:size as the library tags it
  std::vector<std::string> aliases;  // other names of the same default tag: "gemma3", "gemma3:latest"
  ModelDims dims;
  std::string default_quantization;   // what the plain tag pulls: "q4_K_M"
  std::vector<CatalogSize> sizes;     // published download sizes, the default quantization's first
  std::uint64_t projector_bytes = 0;  // a vision model's projector (its own blob or v.* tensors), 0: none
  std::string source;                 // where the dimensions and sizes come from
};

[[nodiscard]] const std::vector<CatalogModel>& catalog();

// The quantizations a plan may suggest instead of a model's own, largest first: f16, q8_0, q6_K, q5_K_M,
// q4_K_M, q4_0, q3_K_M.
[[nodiscard]] const std::vector<std::string>& catalog_quantizations();
// Every llama.cpp file type (llama_ftype) by memwarden's spelling: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0,
// q5_1, the K-quants (q2_K ... q6_K with their _S/_M/_L mixes), the IQ quants and mxfp4.
[[nodiscard]] const std::vector<std::string>& every_quantization();
// One of those, matched without regard to case ("Q4_K_M" from /api/show is q4_K_M; Ollama's "fp16" is f16);
// nullopt otherwise.
[[nodiscard]] std::optional<std::string> known_quantization(std::string_view text);

// The tensor sizes of a model with these dimensions in quantization `quant` (one of every_quantization),
// laid out as llama.cpp's quantize does it (llama-quant.cpp llama_tensor_get_type, simplified: which
// tensors get more bits in the _M and _L mixes, the output tensor at Q6_K). Attention as the
// architecture has it (grouped-query, latent), dense or expert FFNs, tied embeddings. Errors name `source`.
[[nodiscard]] Result<ModelShape> quantized_shape(const ModelDims& dims, std::string_view quant,
                                                 std::string_view source);

// The dimensions a GGUF header gives, for sizing its other quantizations (nullopt when a figure is missing
// or the architecture's KV cache is not sized).
[[nodiscard]] std::optional<ModelDims> dims_from_gguf(const GgufFile& file);
// The same from /api/show's model_info (keys "<arch>.block_count", ...).
[[nodiscard]] std::optional<ModelDims> dims_from_show(const OllamaShow& show);

// llama.cpp's name for a general.file_type (enum llama_ftype): 2 "Q4_0", 7 "Q8_0", 15 "Q4_K_M";
// nullopt for a number it does not define.
[[nodiscard]] std::optional<std::string_view> file_type_name(std::uint64_t file_type);

struct CatalogMatch {
  const CatalogModel* model = nullptr;
  std::string quantization;                // the tag's, or the model's default
  std::optional<std::uint64_t> published;  // the published download size of that quantization, when known
};
// The catalog entry for a name as Ollama names it: "gemma3" and "gemma3:latest" (what `ollama pull gemma3`
// gets), "gemma3:12b", "gemma3:12b-it-q8_0", "llama3.1:70b-instruct-q3_K_M" (the words between size and
// quantization are ignored), without regard to case. Errors name the model: an unknown family lists what is
// known; an unknown size of a known family says the nearest tag ("did you mean gemma3:12b?").
[[nodiscard]] Result<CatalogMatch> catalog_find(std::string_view name);

// The model's shape for that quantization. With a published size, the layout's tensors are scaled to it (the
// file is what it is; the dimensions only say how it is spread over the blocks).
[[nodiscard]] Result<ModelShape> catalog_shape(std::string_view name);
[[nodiscard]] Result<ModelShape> catalog_shape(const CatalogMatch& match, std::string_view source);

// The shape's weights scaled so that they add up to `bytes` (a published file size).
[[nodiscard]] ModelShape scaled_to(ModelShape shape, std::uint64_t bytes);

}  // namespace mw
