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
inline constexpr std::size_t k_max_models_kept = 8;
// The longest texts a sample keeps of a model entry: a name or model (Ollama allows host 350 + namespace 80
// + model 80 + tag 80 bytes and separators) and the others (a digest is "sha256:" and 64 hex digits). An
// entry with a longer name is added to the folded entry; a longer other text is cut.
inline constexpr std::size_t k_max_model_name_bytes = 640;
inline constexpr std::size_t k_max_model_detail_bytes = 128;

// The name of the folded entry (a stable label in /metrics).
inline constexpr std::string_view k_folded_models_name = "(other models)";

// Bounds what a sample keeps of /api/ps: at most `max` entries (max >= 2), the largest (by size, then name)
// one by one and the rest, with any entry whose name is longer than k_max_model_name_bytes, as one entry
// named k_folded_models_name with folded = N; other texts are cut to k_max_model_detail_bytes. Returns N
// (0 when nothing was folded).
std::size_t fold_models(std::vector<OllamaModel>& models, std::size_t max = k_max_models_kept);

// How many models a list stands for: the folded entry counts as the models it adds up.
[[nodiscard]] std::size_t model_count(const std::vector<OllamaModel>& models);

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
