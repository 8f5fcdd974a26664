// `memwarden plan`: will a model fit on this host, and how big must its container be. Pure: the
// models' shapes (core/estimate, core/catalog) and the host's free memory come in, verdicts, limits
// and "what would make it fit" come out. The CLI finds the models and reads the host.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/catalog.hpp"
#include "core/error.hpp"
#include "core/estimate.hpp"

namespace mw {

struct GpuBudget {
  std::string name;  // "GPU 0 NVIDIA GeForce RTX 4080" or "hypothetical GPU"
  std::uint64_t total = 0;
  std::uint64_t free = 0;
};

// What the host has for models: measured (MemAvailable, NVML) or hypothetical (--ram, --vram).
struct HostBudget {
  std::optional<std::uint64_t> ram_total;  // MemTotal, or --ram
  std::uint64_t ram_available = 0;         // MemAvailable, or --ram
  std::uint64_t reserve = 4ULL << 30;      // kept for the critical services (the monitoring stack)
  std::vector<GpuBudget> gpus;
  std::optional<std::uint64_t> disk_available;  // where the models live; nullopt when unknown

  // RAM models may use: what is available less the reserve (0 when the reserve is larger).
  [[nodiscard]] std::uint64_t ram_usable() const { return ram_available > reserve ? ram_available - reserve : 0; }
  // The GPU a model is placed on: the one with the most free memory (nullptr without GPUs).
  [[nodiscard]] const GpuBudget* best_gpu() const;
  [[nodiscard]] std::uint64_t vram_total() const;
};

// Where a model's figures come from, which says how sure the plan is.
enum class FigureBasis {
  gguf_file,  // the GGUF header on disk: every tensor's real size
  server,     // a server's /api/show: the dimensions and quantization, tensors laid out from them
  catalog,    // the built-in catalog: published dimensions and download size, tensors laid out from them
};
[[nodiscard]] const char* basis_key(FigureBasis b);  // "file", "server", "catalog" (JSON)

// How sure the plan is: the weights exact or laid out, and how far off the whole may be.
struct Accuracy {
  FigureBasis basis = FigureBasis::gguf_file;
  bool weights_exact = true;    // from the tensors on disk
  bool cache_known = true;      // false: the architecture's KV cache and graph are not estimated
  unsigned margin_percent = 0;  // the total may be off by this much (architecture, plus the layout when laid out)
  std::string text;             // one line for people
};

// One model to plan for, found by the CLI.
struct PlanModel {
  std::string name;                 // as given: "codellama:34b", "/models/x.gguf"
  std::string source;               // where its figures came from: "GGUF file ...", "Ollama store ...", "catalog", ...
  ModelShape shape;                 // real tensor sizes (or the catalog's layout)
  std::optional<ModelDims> dims;    // when known, other quantizations can be sized
  std::string quantization;         // "q4_K_M" when known
  std::uint64_t file_bytes = 0;     // the model file (the download)
  bool downloaded = false;          // already on disk: nothing to download
  std::uint64_t extra_weights = 0;  // a projector (mmproj) loaded beside the model, on the GPU when it fits
  FigureBasis basis = FigureBasis::gguf_file;
  bool published_size = false;  // catalog: the layout was scaled to the published download size
};

// How sure a plan of this model is (plan_model fills ModelPlan::accuracy with it).
[[nodiscard]] Accuracy accuracy_of(const PlanModel& model);

struct PlanSettings {
  std::optional<std::uint64_t> num_ctx;  // per slot; nullopt: Ollama's default for the host's VRAM
  std::uint64_t parallel = 1;            // OLLAMA_NUM_PARALLEL
  KvType kv_type = KvType::f16;          // OLLAMA_KV_CACHE_TYPE (q8_0 and q4_0 turn on flash attention)
  WeightLoading loading = WeightLoading::mmap;
  std::uint64_t gpu_reserve = EstimateOptions{}.gpu_reserve;  // VRAM per GPU Ollama keeps free
  // RAM of the server and runner processes beside their buffers (Go runtime, CUDA host allocations).
  std::uint64_t runtime_ram = 512ULL << 20;
  // The container limit's margin above the need, in percent.
  std::uint64_t headroom_percent = 20;
};

// How an Ollama server is configured to size models, from its environment (a container's Config.Env):
// OLLAMA_CONTEXT_LENGTH, OLLAMA_NUM_PARALLEL, OLLAMA_KV_CACHE_TYPE, and where its store is
// (OLLAMA_MODELS). A value that does not parse is left out, with a note naming the server.
struct ServerSettings {
  std::optional<std::uint64_t> num_ctx;
  std::optional<std::uint64_t> parallel;
  std::optional<KvType> kv_type;
  std::optional<std::string> models_dir;  // inside the container
  std::vector<std::string> notes;
};
[[nodiscard]] ServerSettings server_settings_from_env(const std::map<std::string, std::string>& env,
                                                      std::string_view server);

// Ollama's default num_ctx since v0.15.5 when OLLAMA_CONTEXT_LENGTH is unset: 4096 below 24 GiB of VRAM,
// 32768 below 48 GiB, 262144 above (envconfig; ../shared/reference/ollama.md §3).
[[nodiscard]] std::uint64_t ollama_default_ctx(std::uint64_t vram_total);

enum class FitVerdict { gpu, split, cpu, no_fit };
[[nodiscard]] const char* to_string(FitVerdict v);    // "fits on GPU", "split", "CPU only", "does not fit"
[[nodiscard]] const char* verdict_key(FitVerdict v);  // "gpu", "split", "cpu", "no_fit" (JSON)

// A change that makes a model fit better, and what it would give.
struct Suggestion {
  std::string change;  // "--ctx 2048", "--kv-type q8_0", "--parallel 1", "quantization q4_K_M"
  std::string why;     // "a smaller KV cache (1.0 GiB instead of 4.0 GiB)"
  FitVerdict verdict = FitVerdict::no_fit;
  Placement placement;
  std::uint64_t ram_needed = 0;
};

struct ModelPlan {
  std::string name;
  std::string source;
  std::string quantization;
  EstimateOptions options;  // what the estimate used (num_ctx resolved, flash attention)
  std::vector<std::string> notes;
  Accuracy accuracy;
  Placement placement;
  FitVerdict verdict = FitVerdict::no_fit;
  std::uint64_t ram_needed = 0;       // RAM side: resident + mapped weights + the runtime
  std::uint64_t ram_short = 0;        // how much is missing (0 when it fits)
  std::uint64_t disk_needed = 0;      // to download (0 when on disk)
  bool disk_short = false;            // the download does not fit the free disk
  std::uint64_t container_limit = 0;  // recommended memory limit for the server's container
  std::vector<Suggestion> suggestions;
  // When not every layer is on the GPU: the VRAM that would hold them all (with this context and cache).
  std::optional<std::uint64_t> vram_full_offload;
};

// The verdict for one model; errors when its shape cannot be sized (a message naming the model).
[[nodiscard]] Result<ModelPlan> plan_model(const PlanModel& model, const PlanSettings& settings,
                                           const HostBudget& host);

// Several models in one server: loaded together (each one placed in what the ones before it left), or
// only one at a time (OLLAMA_MAX_LOADED_MODELS=1, the exclusive large-model mode).
struct TogetherPlan {
  // Every model fits while the ones before it stay loaded: Ollama loads a model beside others only when
  // it fits entirely on the GPU in what they left (on a host without GPUs: in RAM), else it unloads them.
  bool fit = false;
  std::vector<Placement> placements;  // in the order given, each in what the ones before it left
  std::vector<FitVerdict> verdicts;
  std::uint64_t ram_needed = 0;
  std::uint64_t vram_needed = 0;
  std::optional<std::uint64_t> container_limit_together;   // the container holding them all, when they fit
  std::optional<std::uint64_t> container_limit_exclusive;  // one at a time: the largest limit of those that fit
  std::uint64_t disk_needed = 0;                           // all the downloads
  bool disk_short = false;
  std::string advice;
};

[[nodiscard]] TogetherPlan plan_together(const std::vector<PlanModel>& models, const std::vector<ModelPlan>& alone,
                                         const PlanSettings& settings, const HostBudget& host);

// The recommended container limit for a RAM need: need plus headroom, rounded up to 256 MiB.
[[nodiscard]] std::uint64_t container_limit_for(std::uint64_t ram_needed, std::uint64_t headroom_percent);

}  // namespace mw
