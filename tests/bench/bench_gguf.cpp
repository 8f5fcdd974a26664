// The GGUF header of Llama 3.1 70B Q4_K_M (tests/support/gguf_writer.cpp's preset: 724 tensors, a
// 128256-token vocabulary and 280147 merges: 8.1 MiB):
//   BM_ParseGguf70B  mw::parse_gguf on the header in memory
//   BM_ScanGguf70B   mw::GgufHeaderScan over the header in memory, in one call (finds its end, builds nothing)
//   BM_ReadGguf70B   probes::read_gguf on a sparse 40 GiB file (reads only the header, page cache warm)
// docs/PERFORMANCE.md ("GGUF header reading") has the figures and the commands.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "core/gguf.hpp"
#include "gguf_writer.hpp"
#include "probes/gguf_file.hpp"

namespace {

namespace fs = std::filesystem;

void BM_ParseGguf70B(benchmark::State& state) {
  const auto header = mw::test::gguf_header(mw::test::gguf_preset(mw::test::GgufPreset::llama31_70b_q4_k_m));
  for (auto _ : state) {
    auto file = mw::parse_gguf(header, "70b");
    if (!file) {
      state.SkipWithError(file.error().line().c_str());
      return;
    }
    benchmark::DoNotOptimize(file);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(header.size()));
  state.counters["header_MiB"] = static_cast<double>(header.size()) / (1024.0 * 1024.0);
}
BENCHMARK(BM_ParseGguf70B)->Unit(benchmark::kMillisecond);

void BM_ScanGguf70B(benchmark::State& state) {
  const auto header = mw::test::gguf_header(mw::test::gguf_preset(mw::test::GgufPreset::llama31_70b_q4_k_m));
  for (auto _ : state) {
    mw::GgufHeaderScan scan(header.size());
    auto needed = scan.scan(header);
    if (needed || !scan.header_bytes()) {
      state.SkipWithError("the scan did not find the header's end");
      return;
    }
    benchmark::DoNotOptimize(scan);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(header.size()));
}
BENCHMARK(BM_ScanGguf70B)->Unit(benchmark::kMillisecond);

void BM_ReadGguf70B(benchmark::State& state) {
  const auto path = fs::temp_directory_path() / ("mw-bench-gguf-" + std::to_string(::getpid()) + ".gguf");
  mw::test::write_gguf(path, mw::test::gguf_preset(mw::test::GgufPreset::llama31_70b_q4_k_m));
  std::uint64_t bytes_read = 0;
  for (auto _ : state) {
    auto file = mw::probes::read_gguf(path);
    if (!file) {
      state.SkipWithError(file.error().line().c_str());
      break;
    }
    bytes_read = file->bytes_read;
    benchmark::DoNotOptimize(file);
  }
  state.counters["read_MiB"] = static_cast<double>(bytes_read) / (1024.0 * 1024.0);
  state.counters["file_GiB"] = static_cast<double>(fs::file_size(path)) / (1024.0 * 1024.0 * 1024.0);
  fs::remove(path);
}
BENCHMARK(BM_ReadGguf70B)->Unit(benchmark::kMillisecond);

}  // namespace
