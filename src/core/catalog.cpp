#include "core/catalog.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <numeric>
#include <optional>

#include "core/text.hpp"

namespace mw {

const std::vector<CatalogModel>& catalog() {
  // One reviewed table with its sources: catalog_data.inc (docs/catalog.md says where each figure is from).
  static const std::vector<CatalogModel> models{
#include "catalog_data.inc"
  };
  return models;
}

const std::vector<std::string>& catalog_quantizations() {
  static const std::vector<std::string> names{"f16", "q8_0", "q6_K", "q5_K_M", "q4_K_M", "q4_0", "q3_K_M"};
  return names;
}

const std::vector<std::string>& every_quantization() {
  static const std::vector<std::string> names{
      "f32",     "f16",  "bf16",   "q8_0",   "q6_K",  "q5_K_M", "q5_K_S",  "q5_1",   "q5_0",  "q4_K_M", "q4_K_S",
      "q4_1",    "q4_0", "iq4_xs", "iq4_nl", "mxfp4", "q3_K_L", "q3_K_M",  "q3_K_S", "iq3_m", "iq3_s",  "iq3_xs",
      "iq3_xxs", "q2_K", "q2_K_S", "iq2_m",  "iq2_s", "iq2_xs", "iq2_xxs", "iq1_m",  "iq1_s", "tq2_0",  "tq1_0"};
  return names;
}

std::optional<std::string> known_quantization(std::string_view text) {
  if (equals_ignoring_case(text, "fp16")) {
    return "f16";  // Ollama's tags say fp16
  }
  if (equals_ignoring_case(text, "fp32")) {
    return "f32";
  }
  if (equals_ignoring_case(text, "mxfp4_moe")) {
    return "mxfp4";  // llama.cpp's file type name for gpt-oss's mix
  }
  for (const auto& q : every_quantization()) {
    if (equals_ignoring_case(q, text)) {
      return q;
    }
  }
  return std::nullopt;
}

namespace {

// Bytes of `elements` values of a ggml type, in whole blocks (core/gguf's type traits).
std::uint64_t bytes_of(GgmlType type, std::uint64_t elements) {
  const auto t = *ggml_type_traits(ggml_id(type));
  return elements / t.block_size * t.type_size;
}

// llama.cpp quantize (src/llama-quant.cpp, use_more_bits): the first and last eighth of the layers and every
// third layer between get more bits in the _M mixes.
bool more_bits(std::uint64_t layer, std::uint64_t layers) {
  return layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2;
}

// Which layers get attn_v's and ffn_down's `better` type.
enum class Bits : std::uint8_t {
  same,          // none: every layer the body type
  more_bits,     // use_more_bits (Q4_K_M, Q5_K_M, Q3_K_M's attn_v)
  first_eighth,  // i < n/8 (Q4_K_S's ffn_down, Q3_K_M's ffn_down at n/16 is close enough)
  all,           // every layer (Q3_K_L, Q2_K)
};

// One llama_ftype's types: the body of the matrices, the better type of attn_v and ffn_down and where it is
// given, attn_output's, token_embd's and the output tensor's.
struct Layout {
  std::string_view name;
  GgmlType body;
  GgmlType better;
  Bits bits;
  GgmlType attn_output;
  GgmlType embd;
  GgmlType output;
  GgmlType experts;  // the routed experts' matrices (mxfp4 keeps the rest at bf16)
};

// llama-quant.cpp llama_tensor_get_type, simplified: output.weight is Q6_K unless the file is 8 bits or
// more (Q5_K for the 1- and 2-bit IQ mixes); token_embd is the body type (Q2_K for the IQ1/IQ2 mixes).
constexpr std::array<Layout, 33> k_layouts{{
    {"f32", GgmlType::f32, GgmlType::f32, Bits::same, GgmlType::f32, GgmlType::f32, GgmlType::f32, GgmlType::f32},
    {"f16", GgmlType::f16, GgmlType::f16, Bits::same, GgmlType::f16, GgmlType::f16, GgmlType::f16, GgmlType::f16},
    {"bf16", GgmlType::bf16, GgmlType::bf16, Bits::same, GgmlType::bf16, GgmlType::bf16, GgmlType::bf16,
     GgmlType::bf16},
    {"q8_0", GgmlType::q8_0, GgmlType::q8_0, Bits::same, GgmlType::q8_0, GgmlType::q8_0, GgmlType::q8_0,
     GgmlType::q8_0},
    {"q6_K", GgmlType::q6_k, GgmlType::q6_k, Bits::same, GgmlType::q6_k, GgmlType::q6_k, GgmlType::q6_k,
     GgmlType::q6_k},
    {"q5_K_M", GgmlType::q5_k, GgmlType::q6_k, Bits::more_bits, GgmlType::q5_k, GgmlType::q5_k, GgmlType::q6_k,
     GgmlType::q5_k},
    {"q5_K_S", GgmlType::q5_k, GgmlType::q5_k, Bits::same, GgmlType::q5_k, GgmlType::q5_k, GgmlType::q6_k,
     GgmlType::q5_k},
    {"q5_1", GgmlType::q5_1, GgmlType::q5_1, Bits::same, GgmlType::q5_1, GgmlType::q5_1, GgmlType::q6_k,
     GgmlType::q5_1},
    {"q5_0", GgmlType::q5_0, GgmlType::q5_0, Bits::same, GgmlType::q5_0, GgmlType::q5_0, GgmlType::q6_k,
     GgmlType::q5_0},
    {"q4_K_M", GgmlType::q4_k, GgmlType::q6_k, Bits::more_bits, GgmlType::q4_k, GgmlType::q4_k, GgmlType::q6_k,
     GgmlType::q4_k},
    {"q4_K_S", GgmlType::q4_k, GgmlType::q5_k, Bits::first_eighth, GgmlType::q4_k, GgmlType::q4_k, GgmlType::q6_k,
     GgmlType::q4_k},
    {"q4_1", GgmlType::q4_1, GgmlType::q4_1, Bits::same, GgmlType::q4_1, GgmlType::q4_1, GgmlType::q6_k,
     GgmlType::q4_1},
    {"q4_0", GgmlType::q4_0, GgmlType::q4_0, Bits::same, GgmlType::q4_0, GgmlType::q4_0, GgmlType::q6_k,
     GgmlType::q4_0},
    {"iq4_xs", GgmlType::iq4_xs, GgmlType::iq4_xs, Bits::same, GgmlType::iq4_xs, GgmlType::iq4_xs, GgmlType::q6_k,
     GgmlType::iq4_xs},
    {"iq4_nl", GgmlType::iq4_nl, GgmlType::iq4_nl, Bits::same, GgmlType::iq4_nl, GgmlType::iq4_nl, GgmlType::q6_k,
     GgmlType::iq4_nl},
    {"mxfp4", GgmlType::bf16, GgmlType::bf16, Bits::same, GgmlType::bf16, GgmlType::bf16, GgmlType::bf16,
     GgmlType::mxfp4},
    {"q3_K_L", GgmlType::q3_k, GgmlType::q5_k, Bits::all, GgmlType::q5_k, GgmlType::q3_k, GgmlType::q6_k,
     GgmlType::q3_k},
    {"q3_K_M", GgmlType::q3_k, GgmlType::q5_k, Bits::more_bits, GgmlType::q4_k, GgmlType::q3_k, GgmlType::q6_k,
     GgmlType::q3_k},
    {"q3_K_S", GgmlType::q3_k, GgmlType::q3_k, Bits::same, GgmlType::q3_k, GgmlType::q3_k, GgmlType::q6_k,
     GgmlType::q3_k},
    {"iq3_m", GgmlType::iq3_s, GgmlType::q4_k, Bits::more_bits, GgmlType::iq3_s, GgmlType::iq3_s, GgmlType::q6_k,
     GgmlType::iq3_s},
    {"iq3_s", GgmlType::iq3_s, GgmlType::iq3_s, Bits::same, GgmlType::iq3_s, GgmlType::iq3_s, GgmlType::q6_k,
     GgmlType::iq3_s},
    {"iq3_xs", GgmlType::iq3_xxs, GgmlType::iq3_s, Bits::all, GgmlType::iq3_xxs, GgmlType::iq3_xxs, GgmlType::q6_k,
     GgmlType::iq3_xxs},
    {"iq3_xxs", GgmlType::iq3_xxs, GgmlType::iq3_xxs, Bits::same, GgmlType::iq3_xxs, GgmlType::iq3_xxs, GgmlType::q5_k,
     GgmlType::iq3_xxs},
    {"q2_K", GgmlType::q2_k, GgmlType::q3_k, Bits::all, GgmlType::q3_k, GgmlType::q2_k, GgmlType::q6_k, GgmlType::q2_k},
    {"q2_K_S", GgmlType::q2_k, GgmlType::q2_k, Bits::same, GgmlType::q2_k, GgmlType::q2_k, GgmlType::q6_k,
     GgmlType::q2_k},
    {"iq2_m", GgmlType::iq2_s, GgmlType::iq3_s, Bits::more_bits, GgmlType::iq2_s, GgmlType::q2_k, GgmlType::q5_k,
     GgmlType::iq2_s},
    {"iq2_s", GgmlType::iq2_xs, GgmlType::iq2_s, Bits::all, GgmlType::iq2_xs, GgmlType::q2_k, GgmlType::q5_k,
     GgmlType::iq2_xs},
    {"iq2_xs", GgmlType::iq2_xs, GgmlType::iq2_xs, Bits::same, GgmlType::iq2_xs, GgmlType::q2_k, GgmlType::q5_k,
     GgmlType::iq2_xs},
    {"iq2_xxs", GgmlType::iq2_xxs, GgmlType::iq2_xxs, Bits::same, GgmlType::iq2_xxs, GgmlType::q2_k, GgmlType::q5_k,
     GgmlType::iq2_xxs},
    {"iq1_m", GgmlType::iq1_m, GgmlType::iq2_xxs, Bits::all, GgmlType::iq1_m, GgmlType::q2_k, GgmlType::q5_k,
     GgmlType::iq1_m},
    {"iq1_s", GgmlType::iq1_s, GgmlType::iq2_xxs, Bits::all, GgmlType::iq1_s, GgmlType::q2_k, GgmlType::q5_k,
     GgmlType::iq1_s},
    {"tq2_0", GgmlType::tq2_0, GgmlType::tq2_0, Bits::same, GgmlType::tq2_0, GgmlType::q4_k, GgmlType::q6_k,
     GgmlType::tq2_0},
    {"tq1_0", GgmlType::tq1_0, GgmlType::tq1_0, Bits::same, GgmlType::tq1_0, GgmlType::q4_k, GgmlType::q6_k,
     GgmlType::tq1_0},
}};

const Layout* layout_of(std::string_view quant) {
  for (const auto& l : k_layouts) {
    if (l.name == quant) {
      return &l;
    }
  }
  return nullptr;
}

bool gets_better(Bits bits, std::uint64_t layer, std::uint64_t layers) {
  switch (bits) {
    case Bits::same:
      return false;
    case Bits::more_bits:
      return more_bits(layer, layers);
    case Bits::first_eighth:
      return layer < std::max<std::uint64_t>(layers / 8, 1);
    case Bits::all:
      return true;
  }
  return false;
}

// The type llama.cpp's quantize uses for a tensor whose rows are not a whole number of the type's blocks
// (llama-quant.cpp, "fallback quantization"): the K and IQ types' 256-element blocks become 32-element ones.
GgmlType fallback(GgmlType type) {
  switch (type) {
    case GgmlType::tq1_0:
    case GgmlType::tq2_0:
      return GgmlType::q4_0;
    case GgmlType::iq2_xxs:
    case GgmlType::iq2_xs:
    case GgmlType::iq2_s:
    case GgmlType::iq3_xxs:
    case GgmlType::iq3_s:
    case GgmlType::iq1_s:
    case GgmlType::iq1_m:
    case GgmlType::q2_k:
    case GgmlType::q3_k:
    case GgmlType::iq4_xs:
      return GgmlType::iq4_nl;
    case GgmlType::q4_k:
      return GgmlType::q5_0;
    case GgmlType::q5_k:
      return GgmlType::q5_1;
    case GgmlType::q6_k:
      return GgmlType::q8_0;
    default:
      return GgmlType::f16;
  }
}

// A matrix of `rows` × `cols` values, rows of `cols` in whole blocks of the type (or its fallback; f16 when
// even that does not divide the row).
std::uint64_t matrix(GgmlType type, std::uint64_t cols, std::uint64_t rows) {
  if (cols % ggml_type_traits(ggml_id(type))->block_size != 0) {
    type = fallback(type);
    if (cols % ggml_type_traits(ggml_id(type))->block_size != 0) {
      type = GgmlType::f16;
    }
  }
  return bytes_of(type, cols * rows);
}

// Architectures whose FFN has no gate (up and down only).
bool ffn_without_gate(std::string_view arch) {
  return arch == "starcoder2" || arch == "phi2" || arch == "bert" || arch == "gpt2" || arch == "starcoder";
}

// Architectures with q/k norms per head (f32 vectors of the head length).
bool has_qk_norm(std::string_view arch) {
  return arch == "gemma3" || arch == "qwen3" || arch == "qwen3moe" || arch == "olmo2" || arch == "cohere2";
}

// Gemma 2 and 3 normalise after attention and after the FFN as well.
bool post_norms(std::string_view arch) {
  return arch == "gemma2" || arch == "gemma3";
}

// "gemma3" of "gemma3:12b".
std::string_view family_of(const CatalogModel& m) {
  return std::string_view(m.name).substr(0, m.name.find(':'));
}

std::string known_families() {
  std::vector<std::string_view> families;
  for (const auto& m : catalog()) {
    const auto family = family_of(m);
    if (std::find(families.begin(), families.end(), family) == families.end()) {
      families.push_back(family);
    }
  }
  std::string out;
  for (const auto f : families) {
    out += out.empty() ? std::string(f) : fmt::format(", {}", f);
  }
  return out;
}

std::string quantization_list() {
  std::string out;
  for (const auto& q : every_quantization()) {
    out += (out.empty() ? "" : ", ") + q;
  }
  return out;
}

// A tag's parameter count in billions: "12b" 12, "0.6b" 0.6, "335m" 0.335, "8x7b" 56; nullopt for other tags.
std::optional<double> billions(std::string_view tag) {
  double factor = 1;
  if (const auto x = tag.find('x'); x != std::string_view::npos) {
    const auto n = parse_u64(tag.substr(0, x));
    if (!n) {
      return std::nullopt;
    }
    factor = static_cast<double>(*n);
    tag.remove_prefix(x + 1);
  }
  if (tag.size() < 2 || (tag.back() != 'b' && tag.back() != 'm')) {
    return std::nullopt;
  }
  const auto n = parse_double(tag.substr(0, tag.size() - 1));
  if (!n || !(*n > 0) || !std::isfinite(*n)) {
    return std::nullopt;
  }
  return factor * *n * (tag.back() == 'm' ? 1e-3 : 1.0);
}

const CatalogModel* by_alias(std::string_view name) {
  for (const auto& m : catalog()) {
    if (m.name == name || std::find(m.aliases.begin(), m.aliases.end(), name) != m.aliases.end()) {
      return &m;
    }
  }
  return nullptr;
}

std::optional<std::uint64_t> published_size(const CatalogModel& m, std::string_view quant) {
  for (const auto& s : m.sizes) {
    if (s.quantization == quant && s.bytes > 0) {
      return s.bytes;
    }
  }
  return std::nullopt;
}

}  // namespace

Result<CatalogMatch> catalog_find(std::string_view given) {
  // "family[:size[-variant...][-quant]]" without regard to case, as Ollama's names; "registry/library/" and
  // "library/" prefixes are Ollama's spelling of the same model.
  std::string lowered = ascii_lower(given);
  for (const std::string_view prefix : {"registry.ollama.ai/library/", "ollama.com/library/", "library/"}) {
    if (std::string_view(lowered).starts_with(prefix)) {
      lowered.erase(0, prefix.size());
    }
  }
  const auto with_quantization = [](const CatalogModel& m, const std::string& quant) {
    return CatalogMatch{&m, quant, published_size(m, quant)};
  };
  if (const auto* m = by_alias(lowered)) {
    return with_quantization(*m, m->default_quantization);
  }
  const std::string_view name = lowered;
  const auto colon = name.find(':');
  // The longest catalog name that the given one starts with, followed by '-' or nothing: "gemma3:12b" for
  // "gemma3:12b-it-q8_0".
  const CatalogModel* found = nullptr;
  std::size_t found_length = 0;
  for (const auto& m : catalog()) {
    // The entry's name and its sized aliases ("phi3:medium" for "phi3:medium-128k"), not the family's.
    std::vector<std::string_view> candidates{m.name};
    for (const auto& a : m.aliases) {
      if (a.find(':') != std::string::npos && !a.ends_with(":latest")) {
        candidates.emplace_back(a);
      }
    }
    for (const auto c : candidates) {
      if (name.starts_with(c) && (name.size() == c.size() || name[c.size()] == '-') && c.size() > found_length) {
        found = &m;
        found_length = c.size();
      }
    }
  }
  if (found == nullptr) {
    // A known family with a size it does not have: the nearest tag of that family.
    const auto family = name.substr(0, colon);
    const auto tag = colon == std::string_view::npos ? std::string_view() : name.substr(colon + 1);
    const auto size = tag.substr(0, tag.find('-'));
    std::string nearest;
    std::size_t best = std::string::npos;
    std::string sizes;
    for (const auto& m : catalog()) {
      if (family_of(m) != family) {
        continue;
      }
      // The nearest size in parameters when both are sizes ("13b" is nearest 12b), else in spelling.
      const auto ours = billions(std::string_view(m.name).substr(m.name.find(':') + 1));
      const auto wanted = billions(size);
      const auto d = ours && wanted
                         ? static_cast<std::size_t>(std::min(std::fabs(std::log(*ours / *wanted)), 100.0) * 1000)
                         : 1000000 + edit_distance_ignoring_case(m.name, fmt::format("{}:{}", family, size));
      if (d < best) {
        best = d;
        nearest = m.name;
      }
      sizes += (sizes.empty() ? "" : ", ") + m.name.substr(m.name.find(':') + 1);
    }
    if (nearest.empty()) {
      return fail(std::string(given), fmt::format("not in the built-in catalog (it knows {})", known_families()));
    }
    return fail(std::string(given),
                fmt::format("the catalog has no such tag: did you mean {}? ({} comes in {})", nearest, family, sizes));
  }
  if (name.size() > found_length) {
    // The last word may be a quantization; the words before it (instruct, it, text, chat, code, ...) are
    // variants that share the model's dimensions.
    const auto tail = name.substr(name.rfind('-') + 1);
    if (auto quant = known_quantization(tail)) {
      return with_quantization(*found, *quant);
    }
    if (const std::size_t digit = tail.starts_with("q") ? 1 : 2;
        (tail.starts_with("q") || tail.starts_with("iq") || tail.starts_with("fp")) && tail.size() > digit &&
        std::isdigit(static_cast<unsigned char>(tail[digit])) != 0) {
      return fail(std::string(given), fmt::format("'{}' is not a quantization llama.cpp makes (it makes {})",
                                                  given.substr(given.size() - tail.size()), quantization_list()));
    }
  }
  return with_quantization(*found, found->default_quantization);
}

ModelShape scaled_to(ModelShape shape, std::uint64_t bytes) {
  const auto total = shape.weight_bytes();
  if (total == 0 || bytes == 0) {
    return shape;
  }
  const double f = static_cast<double>(bytes) / static_cast<double>(total);
  const auto scale = [f](std::uint64_t& v) {
    v = static_cast<std::uint64_t>(std::llround(static_cast<double>(v) * f));
  };
  for (auto& b : shape.block_bytes) {
    scale(b);
  }
  for (auto& b : shape.block_expert_bytes) {
    scale(b);
  }
  scale(shape.token_embd_bytes);
  scale(shape.output_bytes);
  scale(shape.gate_exps_bytes);
  // Each tensor class was rounded on its own: what is left over (a few bytes either way) goes to token_embd,
  // so that the total is the size exactly.
  const auto scaled = shape.weight_bytes();
  if (scaled > bytes && shape.token_embd_bytes >= scaled - bytes) {
    shape.token_embd_bytes -= scaled - bytes;
  } else if (scaled < bytes) {
    shape.token_embd_bytes += bytes - scaled;
  }
  return shape;
}

Result<ModelShape> catalog_shape(const CatalogMatch& match, std::string_view source) {
  auto shape = quantized_shape(match.model->dims, match.quantization, source);
  if (!shape) {
    return shape;
  }
  if (match.published) {
    // The published size is the whole download: the projector is a blob of its own.
    const auto projector = match.model->projector_bytes;
    if (*match.published > projector) {
      return scaled_to(std::move(*shape), *match.published - projector);
    }
  }
  return shape;
}

Result<ModelShape> catalog_shape(std::string_view name) {
  auto match = catalog_find(name);
  if (!match) {
    return unexpected(match.error());
  }
  return catalog_shape(*match, name);
}

Result<ModelShape> quantized_shape(const ModelDims& c, std::string_view quant, std::string_view source) {
  const auto known = known_quantization(quant);
  const auto* layout = known ? layout_of(*known) : nullptr;
  if (layout == nullptr) {
    return fail(std::string(source), fmt::format("memwarden lays out {}, not '{}'", quantization_list(), quant));
  }
  const bool moe = c.expert_count > 0;
  if (c.block_count == 0 || c.head_count == 0 || c.head_count_kv == 0 || c.vocab_size == 0 ||
      (c.key_length == 0 && c.embedding_length % c.head_count != 0) || (!moe && c.feed_forward_length == 0) ||
      (moe && (c.expert_feed_forward_length == 0 || c.expert_used_count == 0))) {
    return fail(std::string(source), "the model's dimensions are incomplete, so its tensors cannot be laid out");
  }
  const auto wide = [](std::uint64_t v) { return v > k_max_model_width; };
  if (c.block_count > 4096 || wide(c.embedding_length) || c.vocab_size > k_max_model_vocab ||
      c.head_count > k_max_model_heads || c.head_count_kv > k_max_model_heads || c.expert_count > k_max_model_heads ||
      c.expert_used_count > c.expert_count || c.expert_shared_count > k_max_model_heads || wide(c.key_length) ||
      wide(c.value_length) || wide(c.feed_forward_length) || wide(c.expert_feed_forward_length) ||
      wide(c.kv_lora_rank) || wide(c.q_lora_rank) || wide(c.rope_dimension) ||
      c.leading_dense_block_count > c.block_count || c.sliding_window > (1ULL << 32)) {
    return fail(std::string(source), "the model's dimensions are out of range");
  }
  const std::uint64_t d = c.embedding_length;
  const std::uint64_t dk = c.key_length > 0 ? c.key_length : d / c.head_count;
  const std::uint64_t dv = c.value_length > 0 ? c.value_length : dk;
  const std::uint64_t q_out = c.head_count * dk;
  const std::uint64_t v_out = c.head_count * dv;
  const std::uint64_t kv_out_k = c.head_count_kv * dk;
  const std::uint64_t kv_out_v = c.head_count_kv * dv;
  ModelShape m;
  m.architecture = c.architecture;
  m.sizing = architecture_sizing(c.architecture);
  m.block_count = c.block_count;
  m.embedding_length = d;
  m.feed_forward_length = c.feed_forward_length;
  m.head_count = c.head_count;
  m.head_count_kv = c.head_count_kv;
  m.key_length = dk;
  m.value_length = dv;
  m.vocab_size = c.vocab_size;
  m.context_length = c.context_length;
  m.expert_count = c.expert_count;
  m.expert_used_count = c.expert_used_count;
  m.expert_feed_forward_length = c.expert_feed_forward_length;
  m.embedding_only = is_embedding_architecture(c.architecture);
  m.set_sliding_window(c.sliding_window, c.swa_period > 0 ? c.swa_period : default_swa_period(c.architecture));
  const bool mla = c.kv_lora_rank > 0;
  if (mla && c.rope_dimension > dk) {
    return fail(std::string(source), "the rope dimension is longer than the heads' key length");
  }
  const auto f32 = [](std::uint64_t n) { return bytes_of(GgmlType::f32, n); };
  for (std::uint64_t i = 0; i < c.block_count; ++i) {
    const bool better = gets_better(layout->bits, i, c.block_count);
    const auto vd = better ? layout->better : layout->body;
    std::uint64_t b = 0;
    // Attention.
    if (mla) {
      // deepseek2: q (or q_a/q_b with q_lora_rank), kv_a_mqa to kv_lora_rank + rope, kv_b back to the heads'
      // keys (without the rope part) and values, output.
      if (c.q_lora_rank > 0) {
        b += matrix(layout->body, d, c.q_lora_rank) + f32(c.q_lora_rank) + matrix(layout->body, c.q_lora_rank, q_out);
      } else {
        b += matrix(layout->body, d, q_out);
      }
      b += matrix(layout->body, d, c.kv_lora_rank + c.rope_dimension) + f32(c.kv_lora_rank);
      b += matrix(vd, c.kv_lora_rank, c.head_count * (dk - c.rope_dimension + dv));
      b += matrix(layout->attn_output, v_out, d);
      // Ollama's files of these models predate llama.cpp's compressed cache: full K and V per head.
    } else {
      b += matrix(layout->body, d, q_out) + matrix(layout->body, d, kv_out_k) + matrix(vd, d, kv_out_v);
      b += matrix(layout->attn_output, v_out, d);
      if (c.qkv_bias) {
        b += f32(q_out + kv_out_k + kv_out_v);
      }
    }
    if (has_qk_norm(c.architecture)) {
      b += f32(2 * dk);
    }
    b += f32((post_norms(c.architecture) ? 4 : 2) * d);
    // FFN: dense, or experts.
    const bool dense = !moe || i < c.leading_dense_block_count;
    if (dense) {
      const auto ff = c.feed_forward_length;
      b += (ffn_without_gate(c.architecture) ? 1 : 2) * matrix(layout->body, d, ff) + matrix(vd, ff, d);
      m.block_expert_bytes.push_back(0);
    } else {
      const auto eff = c.expert_feed_forward_length;
      const auto n = c.expert_count;
      b += f32(d * n);  // ffn_gate_inp, the router
      const auto experts =
          2 * matrix(layout->experts, d, eff * n) + matrix(better ? layout->better : layout->experts, eff, d * n);
      if (i == 0) {
        m.gate_exps_bytes = matrix(layout->experts, d, eff * n);
      }
      b += experts;
      m.block_expert_bytes.push_back(experts);
      if (c.expert_shared_count > 0) {
        const auto sff = eff * c.expert_shared_count;
        b += 2 * matrix(layout->body, d, sff) + matrix(vd, sff, d);
      }
    }
    m.block_bytes.push_back(b);
  }
  if (!m.moe()) {
    m.block_expert_bytes.clear();
    m.gate_exps_bytes = 0;
  }
  if (mla && c.latent_cache) {
    m.set_latent_cache(c.kv_lora_rank, c.rope_dimension);
  }
  if (c.architecture != "llama" && c.architecture != "mistral") {
    m.gate_exps_bytes = 0;  // Ollama's formula with it is the llama one (mixtral)
  }
  const auto output_type = c.tied_embeddings ? layout->output : layout->embd;
  m.token_embd_bytes = matrix(output_type, d, c.vocab_size);
  if (c.tied_embeddings) {
    m.output_bytes = m.token_embd_bytes + f32(d);  // the GPU's copy of token_embd, and output_norm
    m.output_tied = true;
  } else {
    m.output_bytes = matrix(layout->output, d, c.vocab_size) + f32(d);
  }
  return m;
}

namespace {

// A figure of the model's dimensions from wherever they come (GGUF metadata, /api/show's model_info).
template <class Get>
std::optional<ModelDims> dims_from(std::string_view arch, Get get) {
  const auto sizing = architecture_sizing(arch);
  if (!sizing.known) {
    return std::nullopt;
  }
  ModelDims d;
  d.architecture = std::string(arch);
  d.block_count = get("block_count");
  d.embedding_length = get("embedding_length");
  d.feed_forward_length = get("feed_forward_length");
  d.head_count = get("attention.head_count");
  d.head_count_kv = get("attention.head_count_kv");
  if (d.head_count_kv == 0) {
    d.head_count_kv = d.head_count;
  }
  d.vocab_size = get("vocab_size");
  d.context_length = get("context_length");
  d.key_length = get("attention.key_length");
  d.value_length = get("attention.value_length");
  d.sliding_window = get("attention.sliding_window");
  d.swa_period = d.sliding_window > 0 ? default_swa_period(arch) : 0;
  d.expert_count = get("expert_count");
  d.expert_used_count = get("expert_used_count");
  d.expert_feed_forward_length = get("expert_feed_forward_length");
  d.expert_shared_count = get("expert_shared_count");
  d.leading_dense_block_count = get("leading_dense_block_count");
  d.kv_lora_rank = get("attention.kv_lora_rank");
  d.q_lora_rank = get("attention.q_lora_rank");
  d.rope_dimension = d.kv_lora_rank > 0 ? get("rope.dimension_count") : 0;
  if (d.key_length > 0 && d.head_count > 0 && d.key_length * d.head_count == d.embedding_length) {
    d.key_length = 0;  // the plain embedding / heads
  }
  if (d.value_length > 0 &&
      d.value_length ==
          (d.key_length > 0 ? d.key_length : d.embedding_length / std::max<std::uint64_t>(d.head_count, 1))) {
    d.value_length = 0;
  }
  if (d.expert_count > 0 && d.expert_used_count == 0) {
    return std::nullopt;  // how many experts a token reads is not said
  }
  if (d.expert_count > 0 && d.expert_feed_forward_length == 0) {
    d.expert_feed_forward_length = d.feed_forward_length;  // mixtral's files state only feed_forward_length
  }
  // A file converted with llama.cpp's compressed latent cache states the cache's lengths; the layout needs
  // the heads' (key_length_mla, value_length_mla).
  if (const auto k = get("attention.key_length_mla"); k > 0) {
    d.key_length = k;
    d.value_length = get("attention.value_length_mla");
    d.head_count_kv = d.head_count;
    d.latent_cache = d.kv_lora_rank > 0;
  }
  if (d.block_count == 0 || d.embedding_length == 0 || d.head_count == 0 || d.vocab_size == 0 ||
      (d.expert_count == 0 && d.feed_forward_length == 0)) {
    return std::nullopt;
  }
  return d;
}

}  // namespace

std::optional<ModelDims> dims_from_gguf(const GgufFile& file) {
  const auto arch = file.architecture();
  if (!arch) {
    return std::nullopt;
  }
  auto d = dims_from(*arch, [&](std::string_view suffix) { return file.arch_u64(suffix).value_or(0); });
  if (!d) {
    return d;
  }
  const auto* tokens = file.get_array("tokenizer.ggml.tokens");
  if (tokens != nullptr) {
    d->vocab_size = tokens->size();
  }
  if (d->vocab_size == 0) {
    return std::nullopt;
  }
  d->qkv_bias = file.find_tensor("blk.0.attn_q.bias") != nullptr;
  d->tied_embeddings = file.find_tensor("output.weight") == nullptr;
  if (const auto period = file.arch_u64("attention.sliding_window_pattern"); period && d->sliding_window > 0) {
    d->swa_period = *period;
  }
  // A per-layer head count (an array) is not laid out again.
  if (file.arch_u64("attention.head_count") == std::nullopt) {
    return std::nullopt;
  }
  return d;
}

std::optional<ModelDims> dims_from_show(const OllamaShow& show) {
  const auto& arch = show.architecture;
  const auto get = [&](std::string_view suffix) -> std::uint64_t {
    const auto it = show.numeric_info.find(arch + "." + std::string(suffix));
    if (it == show.numeric_info.end() || !(it->second > 0) || it->second > 1e12) {
      return 0;
    }
    return static_cast<std::uint64_t>(it->second);
  };
  auto d = dims_from(arch, get);
  if (!d) {
    return d;
  }
  // /api/show gives no tensor names: what the architecture has.
  d->qkv_bias = arch == "qwen2" || arch == "qwen2moe" || arch == "gptoss" || arch == "gpt-oss" || arch == "qwen2vl" ||
                arch == "qwen25vl";
  d->tied_embeddings =
      arch == "gemma" || arch == "gemma2" || arch == "gemma3" || arch == "bert" || arch == "nomic-bert";
  return d;
}

std::optional<std::string_view> file_type_name(std::uint64_t file_type) {
  // llama.h enum llama_ftype (ids 4-6 and 33+ unused or removed).
  struct Row {
    std::uint64_t id;
    std::string_view name;
  };
  static constexpr std::array<Row, 33> k_names{{
      {0, "F32"},     {1, "F16"},     {2, "Q4_0"},     {3, "Q4_1"},    {7, "Q8_0"},    {8, "Q5_0"},    {9, "Q5_1"},
      {10, "Q2_K"},   {11, "Q3_K_S"}, {12, "Q3_K_M"},  {13, "Q3_K_L"}, {14, "Q4_K_S"}, {15, "Q4_K_M"}, {16, "Q5_K_S"},
      {17, "Q5_K_M"}, {18, "Q6_K"},   {19, "IQ2_XXS"}, {20, "IQ2_XS"}, {21, "Q2_K_S"}, {22, "IQ3_XS"}, {23, "IQ3_XXS"},
      {24, "IQ1_S"},  {25, "IQ4_NL"}, {26, "IQ3_S"},   {27, "IQ3_M"},  {28, "IQ2_S"},  {29, "IQ2_M"},  {30, "IQ4_XS"},
      {31, "IQ1_M"},  {32, "BF16"},   {36, "TQ1_0"},   {37, "TQ2_0"},  {38, "MXFP4"},
  }};
  for (const auto& row : k_names) {
    if (row.id == file_type) {
      return row.name;
    }
  }
  return std::nullopt;
}

}  // namespace mw
