// mw-gen-llama: writes a llama-architecture GGUF v3 with random weights that llama.cpp loads and runs, so the
// tests can load a real model into a real engine without downloading one. Same arguments, same bytes.
//
//   mw-gen-llama OUT.gguf [--n-embd 2048] [--n-layer 16] [--n-ff 5632] [--n-head 32] [--n-head-kv 4]
//                [--ctx 2048] [--dtype f16|f32] [--seed 1]
//
// The defaults are TinyLlama's shape with 16 layers: a 1.35 GiB f16 file. The vocabulary is SentencePiece-style
// ("llama"): <unk>, <s> (BOS), </s> (EOS), the 256 byte tokens, "▁" and the 94 printable ASCII characters.
// The output rows of the special and byte tokens are zero, so generated text is printable and EOS practically
// never comes. Writing 1.35 GiB takes a second or two: the noise is copied out of one pool of random values.
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "gguf_writer.hpp"

namespace {

using mw::GgmlType;
using mw::GgufArray;
using mw::GgufStrings;
using mw::GgufValue;
using mw::test::GgufSpec;
using mw::test::GgufTensorSpec;

struct Shape {
  std::uint64_t n_embd = 2048;
  std::uint64_t n_layer = 16;
  std::uint64_t n_ff = 5632;
  std::uint64_t n_head = 32;
  std::uint64_t n_head_kv = 4;
  std::uint64_t ctx = 2048;
  std::uint64_t seed = 1;
  bool f16 = true;
};

constexpr std::uint64_t k_special_tokens = 3;
constexpr std::uint64_t k_byte_tokens = 256;
constexpr std::uint32_t k_alignment = 32;

class Random {  // xorshift64*: fast and the same everywhere
 public:
  explicit Random(std::uint64_t seed) : m_state(seed * 0x9E3779B97F4A7C15ULL + 1) {}
  std::uint64_t next() {
    m_state ^= m_state >> 12;
    m_state ^= m_state << 25;
    m_state ^= m_state >> 27;
    return m_state * 0x2545F4914F6CDD1DULL;
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  double gauss(double sd) {  // Box-Muller
    const double u = 1.0 - uniform();
    return sd * std::sqrt(-2.0 * std::log(u)) * std::cos(6.283185307179586 * uniform());
  }

 private:
  std::uint64_t m_state;
};

std::uint16_t to_half(float f) {  // round to nearest; the weights are small normal numbers, no specials
  const auto bits = std::bit_cast<std::uint32_t>(f);
  const std::uint32_t sign = (bits >> 16) & 0x8000U;
  const int exponent = static_cast<int>((bits >> 23) & 0xFFU) - 127 + 15;
  std::uint32_t mantissa = bits & 0x7FFFFFU;
  if (exponent <= 0) {  // subnormal or zero in half precision
    if (exponent < -10) {
      return static_cast<std::uint16_t>(sign);
    }
    mantissa |= 0x800000U;
    const auto shift = static_cast<std::uint32_t>(14 - exponent);
    return static_cast<std::uint16_t>(sign | ((mantissa + (1U << (shift - 1))) >> shift));
  }
  if (exponent >= 31) {
    return static_cast<std::uint16_t>(sign | 0x7BFFU);  // the largest finite half
  }
  const std::uint32_t half = sign | (static_cast<std::uint32_t>(exponent) << 10) | (mantissa >> 13);
  return static_cast<std::uint16_t>(half + ((mantissa >> 12) & 1U));  // carries into the exponent correctly
}

// n values of standard deviation sd, as f16 or f32 bytes.
std::string noise(Random& rng, std::uint64_t n, double sd, bool f16) {
  std::string out(n * (f16 ? 2 : 4), '\0');
  for (std::uint64_t i = 0; i < n; ++i) {
    const auto v = static_cast<float>(rng.gauss(sd));
    if (f16) {
      const auto h = to_half(v);
      std::memcpy(out.data() + i * 2, &h, 2);
    } else {
      std::memcpy(out.data() + i * 4, &v, 4);
    }
  }
  return out;
}

GgufSpec make_spec(const Shape& s) {
  GgufStrings tokens{"<unk>", "<s>", "</s>"};
  std::vector<float> scores;
  std::vector<std::int32_t> types{2, 3, 3};  // unknown, control, control
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    tokens.push_back(name);
    types.push_back(6);  // byte
  }
  tokens.push_back("\xE2\x96\x81");  // "▁", SentencePiece's space
  types.push_back(1);
  for (char c = 0x21; c < 0x7F; ++c) {
    tokens.push_back(std::string_view(&c, 1));
    types.push_back(1);  // normal
  }
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    scores.push_back(-static_cast<float>(i));
  }
  const auto vocab = static_cast<std::uint64_t>(tokens.size());
  const auto head_dim = s.n_embd / s.n_head;
  const auto u32 = [](std::uint64_t v) { return GgufValue{static_cast<std::uint32_t>(v)}; };

  GgufSpec spec;
  spec.add("general.architecture", GgufValue{std::string("llama")});
  spec.add("general.name", GgufValue{std::string("memwarden-random-llama")});
  spec.add("general.file_type", u32(s.f16 ? 1 : 0));
  spec.set_alignment(k_alignment);
  spec.add("llama.vocab_size", u32(vocab));
  spec.add("llama.context_length", u32(s.ctx));
  spec.add("llama.embedding_length", u32(s.n_embd));
  spec.add("llama.block_count", u32(s.n_layer));
  spec.add("llama.feed_forward_length", u32(s.n_ff));
  spec.add("llama.attention.head_count", u32(s.n_head));
  spec.add("llama.attention.head_count_kv", u32(s.n_head_kv));
  spec.add("llama.rope.dimension_count", u32(head_dim));
  spec.add("llama.rope.freq_base", GgufValue{10000.0F});
  spec.add("llama.attention.layer_norm_rms_epsilon", GgufValue{1e-5F});
  spec.add("tokenizer.ggml.model", GgufValue{std::string("llama")});
  spec.add("tokenizer.ggml.tokens", GgufValue{GgufArray{std::move(tokens)}});
  spec.add("tokenizer.ggml.scores", GgufValue{GgufArray{std::move(scores)}});
  spec.add("tokenizer.ggml.token_type", GgufValue{GgufArray{std::move(types)}});
  spec.add("tokenizer.ggml.unknown_token_id", u32(0));
  spec.add("tokenizer.ggml.bos_token_id", u32(1));
  spec.add("tokenizer.ggml.eos_token_id", u32(2));
  spec.add("tokenizer.ggml.add_bos_token", GgufValue{true});
  spec.add("tokenizer.ggml.add_eos_token", GgufValue{false});

  const auto matrix = mw::ggml_id(s.f16 ? GgmlType::f16 : GgmlType::f32);
  const auto f32 = mw::ggml_id(GgmlType::f32);
  auto add = [&](std::string name, std::vector<std::uint64_t> dims, std::uint32_t type) {
    spec.tensors.push_back(GgufTensorSpec{std::move(name), std::move(dims), type, std::nullopt});
  };
  add("token_embd.weight", {s.n_embd, vocab}, matrix);
  for (std::uint64_t i = 0; i < s.n_layer; ++i) {
    const auto b = "blk." + std::to_string(i) + ".";
    add(b + "attn_norm.weight", {s.n_embd}, f32);
    add(b + "attn_q.weight", {s.n_embd, s.n_embd}, matrix);
    add(b + "attn_k.weight", {s.n_embd, head_dim * s.n_head_kv}, matrix);
    add(b + "attn_v.weight", {s.n_embd, head_dim * s.n_head_kv}, matrix);
    add(b + "attn_output.weight", {s.n_embd, s.n_embd}, matrix);
    add(b + "ffn_norm.weight", {s.n_embd}, f32);
    add(b + "ffn_gate.weight", {s.n_embd, s.n_ff}, matrix);
    add(b + "ffn_up.weight", {s.n_embd, s.n_ff}, matrix);
    add(b + "ffn_down.weight", {s.n_ff, s.n_embd}, matrix);
  }
  add("output_norm.weight", {s.n_embd}, f32);
  add("output.weight", {s.n_embd, vocab}, matrix);
  return spec;
}

bool write_model(const std::string& path, const Shape& s) {
  const auto spec = make_spec(s);
  const auto offsets = mw::test::gguf_offsets(spec);
  const auto header = mw::test::gguf_header(spec);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) {
    std::fprintf(stderr, "mw-gen-llama: %s: cannot write\n", path.c_str());
    return false;
  }
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  Random rng(s.seed);
  // One pool of noise, doubled so that any window of pool_values is contiguous; each tensor copies windows
  // from random places in it.
  constexpr std::uint64_t pool_values = 1ULL << 20;
  const std::size_t element = s.f16 ? 2 : 4;
  std::string pool = noise(rng, pool_values, 0.02, s.f16);
  pool += pool;
  const auto vocab = spec.tensors.front().dims[1];
  std::uint64_t position = 0;  // from the start of the data section
  for (std::size_t t = 0; t < spec.tensors.size(); ++t) {
    const auto& tensor = spec.tensors[t];
    out.write(std::string(offsets[t] - position, '\0').data(), static_cast<std::streamsize>(offsets[t] - position));
    std::uint64_t count = 1;
    for (const auto d : tensor.dims) {
      count *= d;
    }
    if (tensor.type == mw::ggml_id(GgmlType::f32) && tensor.dims.size() == 1) {  // a norm: ones
      const std::vector<float> ones(count, 1.0F);
      out.write(reinterpret_cast<const char*>(ones.data()), static_cast<std::streamsize>(count * 4));
      position = offsets[t] + count * 4;
      continue;
    }
    if (tensor.name == "output.weight") {  // zero rows for the special and byte tokens, wider noise for text
      const auto silent = (k_special_tokens + k_byte_tokens) * s.n_embd;
      out.write(std::string(silent * element, '\0').data(), static_cast<std::streamsize>(silent * element));
      const auto text = noise(rng, (vocab - k_special_tokens - k_byte_tokens) * s.n_embd,
                              4.0 / std::sqrt(static_cast<double>(s.n_embd)), s.f16);
      out.write(text.data(), static_cast<std::streamsize>(text.size()));
      position = offsets[t] + count * element;
      continue;
    }
    for (std::uint64_t left = count; left > 0;) {
      const auto n = std::min(left, pool_values);
      const auto start = (rng.next() % pool_values) * element;
      out.write(pool.data() + start, static_cast<std::streamsize>(n * element));
      left -= n;
    }
    position = offsets[t] + count * element;
  }
  out.close();
  if (!out) {
    std::fprintf(stderr, "mw-gen-llama: %s: write failed\n", path.c_str());
    return false;
  }
  std::printf("%s: %llu bytes, vocab %llu, n_embd %llu, n_layer %llu, n_ff %llu, heads %llu/%llu, %s\n", path.c_str(),
              static_cast<unsigned long long>(mw::test::gguf_file_size(spec)), static_cast<unsigned long long>(vocab),
              static_cast<unsigned long long>(s.n_embd), static_cast<unsigned long long>(s.n_layer),
              static_cast<unsigned long long>(s.n_ff), static_cast<unsigned long long>(s.n_head),
              static_cast<unsigned long long>(s.n_head_kv), s.f16 ? "f16" : "f32");
  return true;
}

bool parse_number(std::string_view text, std::uint64_t& out) {
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && ptr == end && !text.empty();
}

}  // namespace

int main(int argc, char** argv) {
  Shape s;
  std::string path;
  const std::vector<std::pair<std::string_view, std::uint64_t*>> numbers{
      {"--n-embd", &s.n_embd},       {"--n-layer", &s.n_layer}, {"--n-ff", &s.n_ff}, {"--n-head", &s.n_head},
      {"--n-head-kv", &s.n_head_kv}, {"--ctx", &s.ctx},         {"--seed", &s.seed}};
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--dtype" && i + 1 < argc) {
      const std::string_view v = argv[++i];
      if (v != "f16" && v != "f32") {
        std::fprintf(stderr, "mw-gen-llama: --dtype: '%s' is not f16 or f32\n", argv[i]);
        return 2;
      }
      s.f16 = v == "f16";
      continue;
    }
    bool matched = false;
    for (const auto& [name, target] : numbers) {
      if (arg == name) {
        matched = true;
        if (i + 1 >= argc || !parse_number(argv[i + 1], *target) || *target == 0) {
          std::fprintf(stderr, "mw-gen-llama: %s needs a positive number\n", argv[i]);
          return 2;
        }
        ++i;
      }
    }
    if (matched) {
      continue;
    }
    if (arg.starts_with("-") || !path.empty()) {
      std::fprintf(stderr,
                   "mw-gen-llama: unexpected argument '%s' (usage: mw-gen-llama OUT.gguf [--n-embd N] "
                   "[--n-layer N] [--n-ff N] [--n-head N] [--n-head-kv N] [--ctx N] [--dtype f16|f32] "
                   "[--seed N])\n",
                   argv[i]);
      return 2;
    }
    path = arg;
  }
  if (path.empty()) {
    std::fprintf(stderr, "mw-gen-llama: no output file given\n");
    return 2;
  }
  if (s.n_embd % s.n_head != 0 || s.n_head % s.n_head_kv != 0) {
    std::fprintf(stderr, "mw-gen-llama: --n-embd must be a multiple of --n-head, and --n-head of --n-head-kv\n");
    return 2;
  }
  return write_model(path, s) ? 0 : 1;
}
