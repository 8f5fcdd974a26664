// Popular models by their Ollama names, for planning before a download: the
// architecture figures from the published configs and the tensor layout of a
// llama-style model, quantized the way llama.cpp's quantize does it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/estimate.hpp"

namespace mw {

// A model family member, e.g. codellama:34b.
struct CatalogModel {
  std::string name;  // "codellama:34b"
  std::string architecture;
  std::uint64_t block_count = 0;
  std::uint64_t embedding_length = 0;
  std::uint64_t feed_forward_length = 0;
  std::uint64_t head_count = 0;
  std::uint64_t head_count_kv = 0;
  std::uint64_t vocab_size = 0;
  std::uint64_t context_length = 0;
  bool qkv_bias = false;             // qwen2
  std::string default_quantization;  // what the plain tag pulls: "q4_0", "q4_K_M"
};

[[nodiscard]] const std::vector<CatalogModel>& catalog();

// The quantizations the catalog can size: f16, q8_0, q4_0, q4_K_M.
[[nodiscard]] const std::vector<std::string>& catalog_quantizations();

// "codellama:34b", "codellama:34b-q8_0", "llama3.1:70b-instruct-q4_K_M" (the instruct/text part is ignored):
// the model's shape with tensor sizes for that quantization. Errors name the model and list what is known.
[[nodiscard]] Result<ModelShape> catalog_shape(std::string_view name);

}  // namespace mw
