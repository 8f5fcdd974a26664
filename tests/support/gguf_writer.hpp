// Writes GGUF files for tests: any metadata (every value type, nested arrays), tensor infos, padding to
// the alignment, and tensor data as a hole (the file is extended to its full size, nothing is written),
// so a 40 GiB model costs a few MiB of disk. Presets carry the architecture metadata and tensor layout
// of real models. Used by the unit tests, the GGUF benchmark and the fuzzer's seed corpus (no GoogleTest
// here).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/gguf.hpp"

namespace mw::test {

// Raw GGUF bytes, little-endian, for headers that a test wants exactly so (corrupt ones included).
class GgufBytes {
 public:
  GgufBytes& raw(std::string_view bytes);
  GgufBytes& u8(std::uint8_t v);
  GgufBytes& u32(std::uint32_t v);
  GgufBytes& u64(std::uint64_t v);
  GgufBytes& str(std::string_view s);  // u64 length, then the bytes
  // "GGUF", version, tensor count, metadata count.
  GgufBytes& header(std::uint32_t version, std::uint64_t tensor_count, std::uint64_t kv_count);
  GgufBytes& value(const GgufValue& v);          // the value's bytes, without its type
  GgufBytes& array(const GgufArray& a);          // element type, count, elements
  GgufBytes& key_value(const GgufKeyValue& kv);  // key, type, value
  GgufBytes& tensor_info(std::string_view name, const std::vector<std::uint64_t>& dims, std::uint32_t type,
                         std::uint64_t offset);
  GgufBytes& pad_to(std::uint64_t alignment);  // zeros up to a multiple of `alignment`
  [[nodiscard]] const std::string& bytes() const { return m_bytes; }
  [[nodiscard]] std::size_t size() const { return m_bytes.size(); }

 private:
  template <class T>
  void element(const T& x);  // one value of any type, as a value or an array element
  std::string m_bytes;
};

struct GgufTensorSpec {
  std::string name;
  std::vector<std::uint64_t> dims;  // ne[0] first
  std::uint32_t type = ggml_id(GgmlType::f32);
  std::optional<std::uint64_t> offset;  // default: packed after the previous tensor, aligned
};

struct GgufSpec {
  std::uint32_t version = 3;
  std::vector<GgufKeyValue> metadata;  // written in this order
  std::vector<GgufTensorSpec> tensors;
  // Padding of the header and between tensors. set_alignment() also writes general.alignment.
  std::uint64_t alignment = k_gguf_default_alignment;

  void set_alignment(std::uint32_t alignment);
  GgufSpec& add(std::string key, GgufValue value);
};

// The tensors' offsets as written: the spec's, or packed in order, each aligned.
[[nodiscard]] std::vector<std::uint64_t> gguf_offsets(const GgufSpec& spec);
// The header: magic to the end of the tensor infos, padded to the alignment (where the data starts).
[[nodiscard]] std::string gguf_header(const GgufSpec& spec);
// The header plus the data section (each tensor's ggml_tensor_bytes; unknown types count 0).
[[nodiscard]] std::uint64_t gguf_file_size(const GgufSpec& spec);
// Writes the header and extends the file to gguf_file_size() without writing data. Throws on failure.
void write_gguf(const std::filesystem::path& path, const GgufSpec& spec);

// Real models' architecture metadata (from their published configs, see estimation.md §5) and tensor
// layouts: names, shapes and the types llama.cpp's Q4_0, Q4_K_M or MXFP4_MOE mix gives them (the keys and
// tensor names convert_hf_to_gguf.py writes). The vocabulary strings are made up; their number is the
// model's. The first six are llama-shaped; the others have sliding windows, experts (Mixtral: llama's
// architecture with experts), latent attention, one norm a block (Command R7B), or (the CLIP projector) no
// language model at all: no tokenizer, no "<arch>.block_count".
enum class GgufPreset {
  llama31_8b_q4_k_m,
  llama31_70b_q4_k_m,
  codellama_34b_q4_0,
  deepseek_coder_33b_q4_0,
  qwen25_7b_q4_k_m,
  mistral_7b_q4_0,
  gemma3_12b_q4_k_m,            // gemma3: 48 blocks, head_dim 256 (q 4096 > d 3840), tied, sliding window 1024
  qwen3_30b_a3b_q4_k_m,         // qwen3moe: 128 experts (8 used) of 768, q 4096 > d 2048
  gpt_oss_20b_mxfp4,            // gpt-oss: 32 experts (4 used) in MXFP4, the rest Q8_0, attention sinks
  deepseek_v2_lite_q4_k_m,      // deepseek2 (deepseek-coder-v2:16b): MLA, 64 + 2 shared experts, as Ollama has it
  deepseek_v2_lite_mla_q4_k_m,  // the same as today's converter writes it (attn_k_b/attn_v_b, *_mla keys)
  gemma2_9b_q4_0,               // gemma2: 42 blocks, head_dim 256, soft-capping, sliding window 4096, tied
  clip_llava_projector_f16,     // clip: llava:7b's mmproj (ViT-L/14-336 less a block, MLP projector), F16
  mixtral_8x7b_q4_k_m,          // llama with 8 experts (2 used) of 14336: 3-D ffn_*_exps, attn_k/attn_v Q8_0
  command_r7b_q4_k_m,           // cohere2: one norm a block (parallel attention and FFN), sliding window 4096
                                // in 3 layers of 4, logit_scale, tied (token_embd Q6_K), LayerNorm epsilon
};
enum class GgufVocab {
  full,     // tokenizer arrays as long as the model's vocabulary (a header of several MiB)
  compact,  // 16 entries each (headers of tens of KiB: fuzzer seeds)
};

[[nodiscard]] const std::vector<GgufPreset>& all_gguf_presets();
[[nodiscard]] const char* to_string(GgufPreset preset);
[[nodiscard]] GgufSpec gguf_preset(GgufPreset preset, GgufVocab vocab = GgufVocab::full);

// One metadata entry of each value type, arrays of each element type, and arrays nested three deep.
[[nodiscard]] std::vector<GgufKeyValue> gguf_every_value_type();

}  // namespace mw::test
