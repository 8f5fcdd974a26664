// What an Ollama server says about its models (GET /api/ps, /api/tags, POST /api/show).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mw {

struct OllamaModel {
  std::string name;   // "llama3.1:8b"
  std::string model;  // usually the same as name
  std::string digest;
  std::uint64_t size = 0;       // /api/ps: bytes the loaded model takes (RAM + VRAM); /api/tags: bytes on disk
  std::uint64_t size_vram = 0;  // /api/ps only: bytes of it in VRAM
  std::optional<std::uint64_t> context_length;  // /api/ps since Ollama 0.10
  std::string expires_at;                       // RFC 3339, /api/ps only
  std::string family;                           // details.family
  std::string parameter_size;                   // details.parameter_size, e.g. "8.0B"
  std::string quantization_level;               // details.quantization_level, e.g. "Q4_K_M"
  // Not a model: how many models the server listed beyond what a sample keeps, summed up in this one
  // entry (its sizes are theirs added up). 0 for a real model.
  std::uint32_t folded = 0;
};

// What one sample keeps of a server's /api/ps (docs/serve.md, "Memory"): the `k_max_models_kept - 1`
// largest models one by one, the rest as one folded entry, so that expected RAM still counts them.
inline constexpr std::size_t k_max_models_kept = 16;
// The longest string fields of a model entry that are accepted (a longer one makes the answer malformed):
// name and model; digest ("sha256:" and 64 hex digits), expires_at and the details.
inline constexpr std::size_t k_max_model_name_bytes = 256;
inline constexpr std::size_t k_max_model_detail_bytes = 128;

// The name of the folded entry (a stable label in /metrics).
inline constexpr std::string_view k_folded_models_name = "(other models)";

// Folds `models` down to at most `max` entries (max >= 2): the largest (by size, then name) stay, the
// rest become one entry named k_folded_models_name with folded = N. Returns N (0 when nothing was folded).
std::size_t fold_models(std::vector<OllamaModel>& models, std::size_t max = k_max_models_kept);

// POST /api/show: the parts memwarden uses.
struct OllamaShow {
  std::string family;
  std::string parameter_size;
  std::string quantization_level;
  std::string architecture;                      // model_info["general.architecture"]
  std::optional<std::uint64_t> parameter_count;  // model_info["general.parameter_count"]
  std::map<std::string, double> numeric_info;    // every numeric model_info entry, e.g. "llama.block_count"
};

}  // namespace mw
