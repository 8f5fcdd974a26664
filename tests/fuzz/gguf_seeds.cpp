// Writes the fuzzer's seed corpus into the directory given: every preset's header with a compact
// vocabulary (whole), the first 64 KiB of each full-size header, and small headers with every value
// type in versions 2 and 3. Built and run by scripts/fuzz.sh.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "gguf_writer.hpp"

namespace {

constexpr std::size_t k_max_len = 65536;  // scripts/fuzz.sh: -max_len

void save(const std::filesystem::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(std::min(bytes.size(), k_max_len)));
  if (!out) {
    std::fprintf(stderr, "gguf_seeds: cannot write %s\n", path.c_str());
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: gguf_seeds DIR\n");
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  std::filesystem::create_directories(dir);
  int written = 0;
  for (const auto preset : mw::test::all_gguf_presets()) {
    const std::string name = mw::test::to_string(preset);
    save(dir / (name + "-compact"), mw::test::gguf_header(mw::test::gguf_preset(preset, mw::test::GgufVocab::compact)));
    save(dir / (name + "-start"), mw::test::gguf_header(mw::test::gguf_preset(preset)));
    written += 2;
  }
  for (const std::uint32_t version : {2U, 3U}) {
    mw::test::GgufSpec spec;
    spec.version = version;
    spec.metadata = mw::test::gguf_every_value_type();
    if (version == 2) {
      spec.set_alignment(64);
    }
    spec.tensors = {{"a", {64, 2}, mw::ggml_id(mw::GgmlType::q4_0), std::nullopt},
                    {"b", {256}, mw::ggml_id(mw::GgmlType::q6_k), std::nullopt},
                    {"c", {3, 2}, mw::ggml_id(mw::GgmlType::f16), std::nullopt}};
    save(dir / ("every-value-type-v" + std::to_string(version)), mw::test::gguf_header(spec));
    ++written;
  }
  std::printf("gguf_seeds: %d seeds in %s\n", written, dir.c_str());
  return 0;
}
