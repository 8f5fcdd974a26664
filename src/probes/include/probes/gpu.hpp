// GPUs through NVML, loaded at run time with dlopen so that memwarden builds
// and runs without CUDA headers or an NVIDIA driver.
#pragma once

#include <memory>
#include <string>

#include "core/gpu.hpp"
#include "probes/host_root.hpp"

namespace mw::probes {

struct NvmlOptions {
  // The library to dlopen; "" tries libnvidia-ml.so.1 and then libnvidia-ml.so.
  std::string library;
};

// NVML loaded and initialised once, read many times (the daemon reads it every second; loading
// and nvmlInit cost far more than a read). Never fails: without a driver every read says why.
class GpuReader {
 public:
  explicit GpuReader(const NvmlOptions& options);
  ~GpuReader();
  GpuReader(const GpuReader&) = delete;
  GpuReader& operator=(const GpuReader&) = delete;

  // NVML loaded and initialised.
  [[nodiscard]] bool available() const;
  [[nodiscard]] GpuReport read(const HostRoot& root) const;

 private:
  struct State;
  std::unique_ptr<State> m_state;
};

// Every GPU NVML sees: name, VRAM, temperature, utilisation and compute
// processes, each mapped to a container through <root>/proc/<pid>/cgroup.
// Never fails: without a driver the report says why in one line.
[[nodiscard]] GpuReport read_gpus(const HostRoot& root, const NvmlOptions& options);

}  // namespace mw::probes
