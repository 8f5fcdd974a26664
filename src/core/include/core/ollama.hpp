// What an Ollama server says about its models (GET /api/ps, /api/tags, POST /api/show).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
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
};

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
