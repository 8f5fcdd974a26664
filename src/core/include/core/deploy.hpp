// A model server to deploy (issue 13): everything `memwarden deploy` gives the Engine API and `memwarden
// export compose` writes into a Compose file, decided once from a profile and the plan. Pure: the limit
// comes from the plan, the store volume and the GPU from what the host has; this file only puts them
// together, and decides whether the host can hold it (admission control).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/profile.hpp"

namespace mw {

// The GPUs the container gets: none, all (Count -1), or the listed ones (DeviceIDs: "0", "GPU-<uuid>").
struct GpuRequest {
  enum class Kind { none, all, ids };
  Kind kind = Kind::none;
  std::vector<std::string> device_ids;
};
// "all", "none" or a comma-separated list of indexes or UUIDs; nullopt for anything else.
[[nodiscard]] std::optional<GpuRequest> parse_gpu_request(std::string_view text);
[[nodiscard]] std::string to_string(const GpuRequest& request);  // "all", "none", "0,1"

// How the server is reached: its port published on the host (bridge), or the host's network itself (host),
// where the server listens on bind_address:port.
enum class NetworkKind { bridge, host };
[[nodiscard]] const char* to_string(NetworkKind kind);
[[nodiscard]] std::optional<NetworkKind> parse_network_kind(std::string_view text);

struct HealthCheck {
  std::vector<std::string> test;  // {"CMD", "ollama", "list"}
  std::uint32_t interval_s = 30;
  std::uint32_t timeout_s = 10;
  std::uint32_t retries = 3;
  std::uint32_t start_period_s = 60;
};

// Labels every deployed container carries; memwarden.deployed marks one memwarden created (a re-deploy
// replaces only those without --replace).
inline constexpr std::string_view k_label_enable = "memwarden.enable";
inline constexpr std::string_view k_label_kind = "memwarden.kind";
inline constexpr std::string_view k_label_profile = "memwarden.profile";
inline constexpr std::string_view k_label_deployed = "memwarden.deployed";
inline constexpr std::string_view k_label_protect = "memwarden.protect";

struct DeploySpec {
  std::string name;                // the container's name
  Profile profile;                 // as deployed: the command line's --ctx, --parallel, --port applied
  std::string image;               // "ollama/ollama:latest"
  std::uint64_t memory_limit = 0;  // Memory and MemorySwap (no swap)
  bool flash_attention = false;    // OLLAMA_FLASH_ATTENTION=1 (the plan chose it, or a quantized KV cache)
  GpuRequest gpu;
  NetworkKind network = NetworkKind::bridge;
  std::string bind_address = "127.0.0.1";  // where the port is published (bridge) or the server listens (host)
  std::string store_volume;                // the named volume, mounted at profile.store_path
  std::map<std::string, std::string> env;  // in key order
  std::map<std::string, std::string> labels;
  HealthCheck health;
};

struct DeployChoices {
  std::string name;
  std::uint64_t memory_limit = 0;
  bool flash_attention = false;
  GpuRequest gpu;
  NetworkKind network = NetworkKind::bridge;
  std::string bind_address = "127.0.0.1";
  std::string store_volume;  // "" keeps the profile's
};

// The spec for `profile` with the plan's limit and the host's choices: the environment the server reads
// (OLLAMA_* for Ollama; LocalAI's for an OpenAI-compatible server), the labels and the health check.
[[nodiscard]] DeploySpec make_deploy_spec(const Profile& profile, const DeployChoices& choices);

// ---- admission control

// What another container holds of the host's RAM: its limit, or its peak (else current) use when it has none.
struct HeldMemory {
  std::string name;
  std::uint64_t bytes = 0;
  enum class Basis { limit, peak, usage, unknown };
  Basis basis = Basis::unknown;
  bool inference_server = false;
  bool protect = false;  // memwarden.protect=true: never stopped for a deployment
  bool running = true;
};
[[nodiscard]] const char* to_string(HeldMemory::Basis basis);

struct Admission {
  bool fits = false;
  std::uint64_t ram_total = 0;
  std::uint64_t reserve = 0;
  std::uint64_t limit = 0;
  std::uint64_t held = 0;             // by the others counted
  std::uint64_t shortfall = 0;        // limit + held + reserve - total when it does not fit
  std::vector<HeldMemory> counted;    // the others, largest first
  std::vector<HeldMemory> set_aside;  // servers an exclusive deployment stops, not counted
  // Containers whose stop would make room, largest first, just enough of them (none protected); empty when
  // stopping every unprotected one would not be enough.
  std::vector<HeldMemory> would_free;
  bool disk_fits = true;
  std::uint64_t disk_needed = 0;
  std::optional<std::uint64_t> disk_available;
};

enum class Exclusivity { shared, exclusive };

// The planned limit plus what the others hold plus the reserve must fit in ram_total, and the downloads in
// the free disk (unknown disk passes). An exclusive deployment sets the unprotected running inference
// servers aside: they will be stopped.
[[nodiscard]] Admission admit(std::uint64_t ram_total, std::uint64_t reserve, std::uint64_t limit,
                              std::vector<HeldMemory> others, Exclusivity exclusivity, std::uint64_t disk_needed,
                              std::optional<std::uint64_t> disk_available);

}  // namespace mw
