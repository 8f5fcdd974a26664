// GPUs through NVML, loaded at run time with dlopen so that memwarden builds
// and runs without CUDA headers or an NVIDIA driver.
#pragma once

#include <string>

#include "core/gpu.hpp"
#include "probes/host_root.hpp"

namespace mw::probes {

struct NvmlOptions {
  // The library to dlopen; "" tries libnvidia-ml.so.1 and then libnvidia-ml.so.
  std::string library;
};

// Every GPU NVML sees: name, VRAM, temperature, utilisation and compute
// processes, each mapped to a container through <root>/proc/<pid>/cgroup.
// Never fails: without a driver the report says why in one line.
[[nodiscard]] GpuReport read_gpus(const HostRoot& root, const NvmlOptions& options);

}  // namespace mw::probes
