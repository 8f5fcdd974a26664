// libFuzzer target for mw::parse_gguf (scripts/fuzz.sh builds and runs it under ASan and UBSan).
// Besides "no crash, no leak, no hang" it checks what the reader relies on:
//   - an error is one line; ENODATA comes with a need for more bytes than were given;
//   - a parsed header is consistent (aligned data offset, sizes that match the types);
//   - the first half of the input, parsed as the start of a file of the whole size, either parses the
//     same header or asks for more bytes, never more than the header takes;
//   - parsed from a shared buffer (string arrays as views into it), the header is the same;
//   - GgufHeaderScan (what probes::read_gguf uses to know how much to read), fed the input in two parts,
//     finds the header's end where the parser does, and never asks for more than the file;
//   - what `plan` does with a parsed header (mw::shape_from_gguf, place_model on a GPU and on the CPU,
//     dims_from_gguf and a layout of another quantization) ends in a result or an error, and a known
//     causal model's KV cache is never 0.
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>

#include "core/catalog.hpp"
#include "core/estimate.hpp"
#include "core/gguf.hpp"

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_gguf: invariant broken: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);  // NOLINT
  std::uint64_t needed = 0;
  const auto whole = mw::parse_gguf(bytes, "fuzz", std::nullopt, &needed);
  if (!whole) {
    check(whole.error().line().find('\n') == std::string::npos, "the error is one line");
    check(whole.error().code == 0 || whole.error().code == ENODATA, "the error code is 0 or ENODATA");
    if (whole.error().code == ENODATA) {
      check(needed > size, "ENODATA asks for more bytes than were given");
    }
  } else {
    const auto& f = *whole;
    check(f.version == 2 || f.version == 3, "version 2 or 3");
    check(f.header_bytes <= size, "the header lies within the bytes");
    check(f.data_offset >= f.header_bytes && f.data_offset % f.alignment == 0, "the data offset is aligned");
    check(f.data_offset - f.header_bytes < f.alignment, "the data offset is the padded header");
    for (const auto& t : f.tensors) {
      check(t.offset % f.alignment == 0, "tensor offsets are aligned");
      check(mw::ggml_tensor_bytes(t.type, t.dims) == t.bytes, "tensor sizes match their types");
      check(t.offset + t.bytes <= f.data_bytes, "data_bytes covers every tensor");
    }
  }

  const auto half = bytes.substr(0, size / 2);
  std::uint64_t half_needed = 0;
  const auto prefix = mw::parse_gguf(half, "fuzz", size, &half_needed);
  if (whole) {
    if (whole->header_bytes <= half.size()) {
      check(prefix.has_value(), "a header within the first half parses from it");
      check(prefix && prefix->tensors.size() == whole->tensors.size(), "the same header");
    } else {
      check(!prefix && prefix.error().code == ENODATA, "a header past the first half asks for more");
      check(half_needed > half.size() && half_needed <= whole->header_bytes,
            "it asks for more, but no more than the header");
    }
  } else if (!prefix && prefix.error().code == ENODATA) {
    check(half_needed > half.size() && half_needed <= size, "a prefix asks for more, within the file");
  }

  {
    auto shared = std::make_shared_for_overwrite<char[]>(size);
    if (size > 0) {
      std::memcpy(shared.get(), data, size);
    }
    const auto viewed = mw::parse_gguf(std::move(shared), size, "fuzz");
    check(viewed.has_value() == whole.has_value(), "a shared buffer parses as the bytes do");
    if (viewed && whole) {
      check(viewed->metadata == whole->metadata, "the same metadata from a shared buffer");
      check(viewed->tensors.size() == whole->tensors.size(), "the same tensors from a shared buffer");
    }
  }

  if (whole) {
    if (const auto shape = mw::shape_from_gguf(*whole, "fuzz")) {
      mw::EstimateOptions o;
      o.num_ctx = 4096;
      for (const std::uint64_t gpu : {std::uint64_t{0}, std::uint64_t{8} << 30}) {
        if (const auto placed = mw::place_model(*shape, o, gpu)) {
          check(placed->layers_on_gpu <= placed->layers_total, "no more layers on the GPU than there are");
          check(placed->cache_known || placed->kv == 0, "an unknown cache is not sized");
          // A known causal model with heads in every layer has a cache, never a wrapped-around 0.
          const bool heads_everywhere = shape->layer_head_count_kv.empty() ||
                                        std::find(shape->layer_head_count_kv.begin(), shape->layer_head_count_kv.end(),
                                                  0) == shape->layer_head_count_kv.end();
          check(!placed->cache_known || shape->embedding_only || !heads_everywhere || placed->kv > 0,
                "a known model's cache is not 0");
          check(placed->weights >= shape->token_embd_bytes, "the weights hold token_embd");
          check(gpu > 0 || placed->vram == 0, "nothing on a GPU that is not there");
        }
      }
    }
    if (const auto dims = mw::dims_from_gguf(*whole)) {
      (void)mw::quantized_shape(*dims, "q4_K_M", "fuzz");
    }
  }

  mw::GgufHeaderScan scan(size);
  auto more = scan.scan(half);
  if (more) {
    check(*more > half.size() && *more <= size, "the scan asks for more, within the file");
    more = scan.scan(bytes);
    check(!more, "with the whole file the scan can decide");
  }
  if (whole) {
    check(scan.header_bytes() == whole->header_bytes, "the scan finds the header's end where the parser does");
  }
  return 0;
}
