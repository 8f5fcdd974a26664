// How much RAM and VRAM a model needs, and how Ollama would split it between
// the GPU and the CPU. Pure: the model's shape and tensor sizes come in (from a
// GGUF header or the catalog), the devices' free memory comes in, a placement
// comes out. Where each formula comes from is said next to it (estimate.cpp);
// the background is ../shared/reference/estimation.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/gguf.hpp"

namespace mw {

// Bounds on a model's dimensions from outside (a file's header, a server's answer): far above any real
// model (Llama 3.1 405B: embedding 16384, 128 heads; gemma3: 262144 tokens), low enough that their products
// cannot overflow. Byte figures are capped at 1 EiB, so that a sum of a few of them never wraps.
inline constexpr std::uint64_t k_max_model_width = 1ULL << 20;  // embedding, head, FFN and latent lengths
inline constexpr std::uint64_t k_max_model_heads = 1ULL << 14;  // heads, KV heads, experts
inline constexpr std::uint64_t k_max_model_vocab = 1ULL << 24;
inline constexpr std::uint64_t k_bytes_cap = 1ULL << 60;
[[nodiscard]] std::uint64_t add_capped(std::uint64_t a, std::uint64_t b);
[[nodiscard]] std::uint64_t mul_capped(std::uint64_t a, std::uint64_t b);

// How well memwarden sizes an architecture's KV cache and compute graph (estimate.cpp's table).
struct ArchitectureSizing {
  bool known = true;            // false: the KV cache and graph are not estimated (the weights still are)
  unsigned margin_percent = 5;  // how far the total may be off, for a known one
  std::string note;             // what is approximated, or why it is not sized
};
// "llama", "gemma3", "qwen3moe", ...: known ones with their margin; recurrent and hybrid models (mamba,
// rwkv, jamba, nemotron_h, qwen3next, ...) and architectures not in the table are not sized.
[[nodiscard]] ArchitectureSizing architecture_sizing(std::string_view architecture);
// Whether Ollama turns flash attention on for this architecture by itself (fs/ggml FlashAttention()).
[[nodiscard]] bool flash_attention_by_default(std::string_view architecture);
// The sliding-window period llama.cpp hard-codes for an architecture (set_swa_pattern): every n-th layer
// is global, the others slide; 0 for architectures without interleaved sliding-window attention.
[[nodiscard]] std::uint64_t default_swa_period(std::string_view architecture);
// Non-causal embedding models (bert, nomic-bert, ...): llama.cpp gives them no KV cache.
[[nodiscard]] bool is_embedding_architecture(std::string_view architecture);

// What the estimate needs to know about a model.
struct ModelShape {
  std::string architecture;       // general.architecture, e.g. "llama"
  std::uint64_t block_count = 0;  // <arch>.block_count
  std::uint64_t embedding_length = 0;
  std::uint64_t feed_forward_length = 0;  // (Ollama's mixtral graph formula)
  std::uint64_t head_count = 0;           // the largest when the GGUF gives one per layer
  std::uint64_t head_count_kv = 0;        // = head_count without grouped-query attention; the largest of an array
  std::uint64_t key_length = 0;           // per head; embedding_length / head_count when the file does not say
  std::uint64_t value_length = 0;
  std::uint64_t vocab_size = 0;
  std::uint64_t context_length = 0;  // trained context
  // KV heads per block when the GGUF gives an array (empty: head_count_kv for every block).
  std::vector<std::uint64_t> layer_head_count_kv;
  // Interleaved sliding-window attention: the blocks marked true keep only the last sliding_window tokens.
  std::uint64_t sliding_window = 0;
  std::vector<bool> layer_swa;  // empty: every block attends to the whole context
  // Mixture of experts: the routed experts' tensors (ffn_*_exps) of each block, a part of block_bytes.
  std::uint64_t expert_count = 0;
  std::uint64_t expert_used_count = 0;
  std::uint64_t expert_feed_forward_length = 0;   // each expert's FFN
  std::vector<std::uint64_t> block_expert_bytes;  // empty: a dense model
  std::uint64_t gate_exps_bytes = 0;              // blk.0.ffn_gate_exps (Ollama's mixtral 8x22b graph formula)
  bool embedding_only = false;                    // a non-causal embedding model (bert): no KV cache
  // v.* and mm.* tensors: a vision tower in the model's own file. Not in weight_bytes(): the plan places it
  // as a projector (on the GPU with the model, as Ollama does).
  std::uint64_t vision_bytes = 0;
  // Multi-head latent attention in llama.cpp's compressed form: the cache holds K only (key_length =
  // kv_lora_rank + the rope dimension, one KV head); V is read from it (llama.cpp PR #19067).
  bool latent_cache = false;
  ArchitectureSizing sizing;
  // Bytes of the weights, from the real tensor sizes.
  std::vector<std::uint64_t> block_bytes;  // blk.N.*, one entry per block
  std::uint64_t token_embd_bytes = 0;      // token_embd.*: always on the CPU
  std::uint64_t output_bytes = 0;          // output.* and output_norm.* (the output layer)
  // No output.weight: the output layer reuses token_embd. Its bytes are in output_bytes (the GPU holds a
  // copy when the layer is offloaded) but are in the file, and on the CPU side, only once.
  bool output_tied = false;

  [[nodiscard]] std::uint64_t weight_bytes() const;  // the file's weights (a tied output layer once)
  [[nodiscard]] bool moe() const;
  // Marks the sliding-window layers of a `window`-token window with every `period`-th layer global, as
  // llama.cpp's set_swa_pattern does (layer i slides when i % period < period - 1).
  void set_sliding_window(std::uint64_t window, std::uint64_t period);
  // The cache as llama.cpp's MLA conversion keeps it: one K of kv_lora_rank + rope values per token and
  // layer, one KV head, no V.
  void set_latent_cache(std::uint64_t kv_lora_rank, std::uint64_t rope_dimension);
  [[nodiscard]] std::uint64_t expert_bytes() const;  // all routed experts' weights
  // The weights one token reads: all but the routed experts, and expert_used_count / expert_count of those.
  [[nodiscard]] std::uint64_t active_weight_bytes() const;
};

// The shape from a GGUF header: <arch>.block_count, embedding_length, attention.head_count(_kv),
// attention.key_length/value_length, context_length, the vocabulary, and the real tensor sizes
// grouped by blk.N / token_embd / output. Without output.weight (tied embeddings) the output layer is
// token_embd, as Ollama counts it. Errors name `source`.
[[nodiscard]] Result<ModelShape> shape_from_gguf(const GgufFile& file, std::string_view source);

enum class KvType { f16, q8_0, q4_0 };
[[nodiscard]] const char* to_string(KvType type);
[[nodiscard]] std::optional<KvType> parse_kv_type(std::string_view text);

enum class WeightLoading { mmap, no_mmap, mlock };

struct EstimateOptions {
  std::uint64_t num_ctx = 2048;  // per slot, as Ollama's num_ctx
  std::uint64_t parallel = 1;    // OLLAMA_NUM_PARALLEL: Ollama multiplies num_ctx by it
  std::uint64_t batch = 512;     // num_batch
  KvType kv_type = KvType::f16;
  bool flash_attention = false;              // OLLAMA_FLASH_ATTENTION; quantized KV needs it
  std::uint64_t gpu_reserve = 457ULL << 20;  // per GPU: Ollama's MinimumMemory for CUDA
  WeightLoading loading = WeightLoading::mmap;
};

// ctx × parallel with each slot padded to 256 cells (llama.cpp pads n_ctx_seq to 256).
[[nodiscard]] std::uint64_t kv_cells(const EstimateOptions& o);
// One full-attention block's K and V cache for all cells: row_size(type, length × head_count_kv) × cells.
[[nodiscard]] std::uint64_t kv_bytes_per_block(const ModelShape& m, const EstimateOptions& o);
// The cells of a sliding-window block: per slot min(pad256(num_ctx), pad256(window + batch)) (llama.cpp's iSWA
// cache), times the slots.
[[nodiscard]] std::uint64_t swa_cells(const ModelShape& m, const EstimateOptions& o);
// Each block's KV cache: its own KV heads, the window's cells for a sliding block, 0 for an embedding model.
[[nodiscard]] std::vector<std::uint64_t> kv_bytes_per_layer(const ModelShape& m, const EstimateOptions& o);
// Ollama's compute-graph formulas per architecture (full and partial offload; fs/ggml GraphSize).
struct GraphBytes {
  std::uint64_t full = 0;
  std::uint64_t partial = 0;
};
[[nodiscard]] GraphBytes graph_bytes(const ModelShape& m, const EstimateOptions& o);

struct Placement {
  std::uint64_t layers_total = 0;    // blocks + the output layer, as Ollama counts them
  std::uint64_t layers_on_gpu = 0;   // from the last block down
  std::uint64_t vram = 0;            // on the GPU: weights, KV, graph, reserve
  std::uint64_t ram_resident = 0;    // anonymous memory on the CPU side: KV, graph, and weights without mmap
  std::uint64_t ram_page_cache = 0;  // CPU-side weights mapped from the file (reclaimable) with mmap
  std::uint64_t weights = 0;         // the file's weights (a tied output layer counted once)
  std::uint64_t token_embd = 0;      // of those, on the CPU side whatever the split
  std::uint64_t kv = 0;
  GraphBytes graph;
  // false: the architecture's KV cache and graph are unknown, so kv and graph are 0 and the other figures
  // are the weights alone (a lower bound).
  bool cache_known = true;
  // A mixture of experts that does not fit whole: every block's attention and shared weights are on the GPU
  // and the routed experts of the blocks not counted in layers_on_gpu are on the CPU (llama.cpp's --fit).
  bool experts_split = false;
  [[nodiscard]] bool full_offload() const { return layers_total > 0 && layers_on_gpu == layers_total; }
  // The model's share on the GPU, as `ollama ps` prints "23%/77% CPU/GPU": size_vram / size, where
  // Ollama's size leaves out token_embd (always on the CPU); 1 with every layer on the GPU.
  [[nodiscard]] double gpu_fraction() const;
};

// Places the model on one GPU with `gpu_free` bytes free (0: CPU only), Ollama's way: a GPU is used only
// when it holds its reserve, the partial graph and two blocks; then blocks go on from the last down while
// they fit, and the output layer last. A mixture of experts that does not fit whole keeps every block's
// non-expert weights, the KV cache and the output layer on the GPU and adds the experts of the blocks from
// the last down while they fit, as llama.cpp's --fit does; when even that does not fit, whole blocks. Errors for a
// shape it cannot size (no blocks, quantized KV without flash attention, a head length that is not a multiple of 32 for
// quantized KV).
[[nodiscard]] Result<Placement> place_model(const ModelShape& m, const EstimateOptions& o, std::uint64_t gpu_free);

}  // namespace mw
