// Reads the call log of the fake libcuda.so.1 (tests/support/fake_cuda.c, FAKE_CUDA_LOG): which chunks were
// allocated, freed and tried, and whether the primary context was given back.
#pragma once

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace mw::test {

struct FakeCudaLedger {
  std::vector<std::string> lines;
  std::vector<std::string> allocated;     // pointers cuMemAlloc_v2 returned
  std::vector<std::string> alloc_failed;  // "bytes code" of the failed ones
  std::vector<std::string> freed;         // pointers cuMemFree_v2 freed (code 0)
  std::vector<std::string> free_tried;    // every pointer given to cuMemFree_v2
  int memsets = 0;
  int retained = 0;                   // cuDevicePrimaryCtxRetain that succeeded
  int released = 0;                   // cuDevicePrimaryCtxRelease_v2 that succeeded
  int release_tried = 0;              // every cuDevicePrimaryCtxRelease_v2
  std::optional<std::string> unload;  // "held=N contexts=M" when the library was unloaded

  // Every chunk allocated was handed to cuMemFree (whether a lost GPU let it go or not).
  [[nodiscard]] bool every_allocation_tried() const {
    return std::all_of(allocated.begin(), allocated.end(), [&](const std::string& p) {
      return std::find(free_tried.begin(), free_tried.end(), p) != free_tried.end();
    });
  }
  [[nodiscard]] bool every_allocation_freed() const {
    auto a = allocated;
    auto f = freed;
    std::sort(a.begin(), a.end());
    std::sort(f.begin(), f.end());
    return a == f;
  }
  [[nodiscard]] std::string text() const {
    std::string out;
    for (const auto& l : lines) {
      out += l + "\n";
    }
    return out;
  }
};

inline FakeCudaLedger read_fake_cuda_log(const std::filesystem::path& path) {
  FakeCudaLedger ledger;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    ledger.lines.push_back(line);
    std::istringstream words(line);
    std::string function;
    words >> function;
    std::vector<std::string> args;
    for (std::string w; words >> w;) {
      args.push_back(w);
    }
    const std::string code = args.empty() ? "" : args.back();
    if (function == "cuMemAlloc_v2" && args.size() == 3) {
      if (code == "0") {
        ledger.allocated.push_back(args[1]);
      } else {
        ledger.alloc_failed.push_back(args[0] + " " + code);
      }
    } else if (function == "cuMemFree_v2" && args.size() == 2) {
      ledger.free_tried.push_back(args[0]);
      if (code == "0") {
        ledger.freed.push_back(args[0]);
      }
    } else if (function == "cuMemsetD8_v2") {
      ++ledger.memsets;
    } else if (function == "cuDevicePrimaryCtxRetain" && code == "0") {
      ++ledger.retained;
    } else if (function == "cuDevicePrimaryCtxRelease_v2") {
      ++ledger.release_tried;
      ledger.released += code == "0" ? 1 : 0;
    } else if (function == "unload") {
      ledger.unload = line.substr(7);
    }
  }
  return ledger;
}

}  // namespace mw::test
