// Deployment profiles: named, right-sized model servers (issue 13). A profile says what to run (the
// models, their context and slots, the KV cache) and how (image, GPU, port, the model store); the
// memory limit is not in it: it comes from the plan on the host the profile is deployed to. The
// built-in profiles mirror the four Portainer templates the seed incident's operator wrote by hand,
// whose fixed limits are kept beside them for comparison only.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/estimate.hpp"

namespace mw {

// How the server's models share the host: one large model with the RAM to itself (the other inference
// servers are stopped first), or one of several standard servers side by side.
enum class DeployMode { standard, exclusive };
[[nodiscard]] const char* to_string(DeployMode mode);
[[nodiscard]] std::optional<DeployMode> parse_deploy_mode(std::string_view text);

// The API the server speaks: Ollama's (/api/ps, /api/show), or an OpenAI-compatible one (LocalAI).
enum class ServerApi { ollama, openai };
[[nodiscard]] const char* to_string(ServerApi api);
[[nodiscard]] std::optional<ServerApi> parse_server_api(std::string_view text);

// Whether the container gets the GPUs (a device request for all of them) or none.
enum class GpuUse { all, none };
[[nodiscard]] const char* to_string(GpuUse use);
[[nodiscard]] std::optional<GpuUse> parse_gpu_use(std::string_view text);

struct Profile {
  std::string name;  // "large-33b"
  std::string description;
  ServerApi api = ServerApi::ollama;
  std::vector<std::string> models;      // Ollama names; the limit is planned for the largest
  std::uint64_t context_length = 4096;  // OLLAMA_CONTEXT_LENGTH
  std::uint32_t parallel = 1;           // OLLAMA_NUM_PARALLEL
  std::uint32_t max_loaded_models = 1;  // OLLAMA_MAX_LOADED_MODELS
  KvType kv_type = KvType::f16;         // OLLAMA_KV_CACHE_TYPE (a quantized one needs flash attention)
  std::string keep_alive = "5m";        // OLLAMA_KEEP_ALIVE
  std::string image = "ollama/ollama";
  std::string tag = "latest";
  GpuUse gpu = GpuUse::all;
  DeployMode mode = DeployMode::standard;
  std::uint16_t port = 11434;                // on the host; the container's own port is the API's
  std::uint16_t container_port = 11434;      // 11434 for Ollama, 8080 for LocalAI
  std::string store_volume = "ollama";       // the named volume with the models
  std::string store_path = "/root/.ollama";  // where the image keeps them
  // The fixed limit the seed's template used ("Ollama 33B": 28 GB), shown beside the planned one.
  std::optional<std::uint64_t> seed_limit_bytes;
};

// large-33b, large-70b, standard, localai.
[[nodiscard]] const std::vector<Profile>& builtin_profiles();

// The profile named `name` (case-insensitive) among `profiles`, or an error naming `source` that
// lists the names and suggests the closest one ("did you mean large-33b?").
[[nodiscard]] Result<Profile> find_profile(std::span<const Profile> profiles, std::string_view name,
                                           std::string_view source);

// `overrides` replace the built-in profiles of the same name and add the others, in the built-in order
// and then theirs.
[[nodiscard]] std::vector<Profile> merge_profiles(std::span<const Profile> builtin, std::span<const Profile> overrides);

}  // namespace mw
