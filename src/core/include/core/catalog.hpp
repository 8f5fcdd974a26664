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

// The dimensions of a llama-shaped model, as its published config (or its GGUF metadata, or
// Ollama's /api/show model_info) gives them. Enough to lay out its tensors for any quantization.
struct ModelDims {
  std::string architecture;  // "llama", "qwen2"
  std::uint64_t block_count = 0;
  std::uint64_t embedding_length = 0;
  std::uint64_t feed_forward_length = 0;
  std::uint64_t head_count = 0;
  std::uint64_t head_count_kv = 0;
  std::uint64_t vocab_size = 0;
  std::uint64_t context_length = 0;
  bool qkv_bias = false;  // qwen2's attn_q/k/v biases
};

// A model family member, e.g. codellama:34b.
struct CatalogModel {
  std::string name;  // "codellama:34b"
  ModelDims dims;
  std::string default_quantization;  // what the plain tag pulls: "q4_0", "q4_K_M"
};

[[nodiscard]] const std::vector<CatalogModel>& catalog();

// The quantizations memwarden can lay out: f16, q8_0, q4_0, q4_K_M, largest first.
[[nodiscard]] const std::vector<std::string>& catalog_quantizations();
// One of those, matched without regard to case ("Q4_K_M" from /api/show is q4_K_M); nullopt otherwise.
[[nodiscard]] std::optional<std::string> known_quantization(std::string_view text);

// The tensor sizes of a model with these dimensions in quantization `quant` (one of catalog_quantizations),
// laid out the way llama.cpp's quantize does it. Errors name `source`.
[[nodiscard]] Result<ModelShape> quantized_shape(const ModelDims& dims, std::string_view quant,
                                                 std::string_view source);

// The dimensions a GGUF header gives (nullopt when a figure is missing or the architecture is not
// llama-shaped, so its other quantizations cannot be sized).
[[nodiscard]] std::optional<ModelDims> dims_from_gguf(const GgufFile& file);
// The same from /api/show's model_info (keys "<arch>.block_count", ...); qwen2 has qkv biases.
[[nodiscard]] std::optional<ModelDims> dims_from_show(const OllamaShow& show);

// llama.cpp's name for a general.file_type (enum llama_ftype): 2 "Q4_0", 7 "Q8_0", 15 "Q4_K_M";
// nullopt for a number it does not define.
[[nodiscard]] std::optional<std::string_view> file_type_name(std::uint64_t file_type);

struct CatalogMatch {
  const CatalogModel* model = nullptr;
  std::string quantization;  // the tag's, or the model's default
};
// The catalog entry for a name like those catalog_shape takes.
[[nodiscard]] Result<CatalogMatch> catalog_find(std::string_view name);

// "codellama:34b", "codellama:34b-q8_0", "llama3.1:70b-instruct-q4_K_M" (the instruct/text part is ignored):
// the model's shape with tensor sizes for that quantization. Errors name the model and list what is known.
[[nodiscard]] Result<ModelShape> catalog_shape(std::string_view name);

}  // namespace mw
