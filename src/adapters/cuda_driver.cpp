// The CUDA driver API through dlopen: the few entry points `memwarden test vram` uses, declared here with the
// signatures of cuda.h (CUdevice is an int, CUdeviceptr an unsigned long long, CUcontext an opaque pointer).
#include "adapters/cuda_driver.hpp"

#include <dlfcn.h>

#include <array>
#include <cstring>
#include <initializer_list>
#include <string_view>
#include <utility>

#include <fmt/format.h>

namespace mw::adapters {
namespace {

using CuContext = struct CuContextTag*;  // CUcontext: opaque

using InitFn = CuResult (*)(unsigned);
using DeviceGetCountFn = CuResult (*)(int*);
using DeviceGetFn = CuResult (*)(CuDevice*, int);
using DeviceGetNameFn = CuResult (*)(char*, int, CuDevice);
using DeviceGetPciBusIdFn = CuResult (*)(char*, int, CuDevice);
using DeviceTotalMemFn = CuResult (*)(std::size_t*, CuDevice);
using PrimaryCtxRetainFn = CuResult (*)(CuContext*, CuDevice);
using PrimaryCtxReleaseFn = CuResult (*)(CuDevice);
using CtxSetCurrentFn = CuResult (*)(CuContext);
using CtxSynchronizeFn = CuResult (*)();
using MemGetInfoFn = CuResult (*)(std::size_t*, std::size_t*);
using MemAllocFn = CuResult (*)(unsigned long long*, std::size_t);
using MemFreeFn = CuResult (*)(unsigned long long);
using MemsetD8Fn = CuResult (*)(unsigned long long, unsigned char, std::size_t);
using GetErrorTextFn = CuResult (*)(CuResult, const char**);

static_assert(sizeof(std::size_t) == 8 && sizeof(unsigned long long) == 8, "a 64-bit host");

constexpr std::string_view k_default_library = "libcuda.so.1";
constexpr int k_name_buffer = 256;
constexpr int k_bus_id_buffer = 64;  // "0000:01:00.0" needs 13; cuda.h asks for at least 13

// A text from the library on one line, at most 200 characters.
std::string one_line(std::string_view text) {
  std::string out;
  for (const char c : text.substr(0, 200)) {
    out.push_back(c == '\n' || c == '\r' || c == '\t' ? ' ' : c);
  }
  while (!out.empty() && out.back() == ' ') {
    out.pop_back();
  }
  return out;
}

template <class F>
F symbol(void* handle, std::initializer_list<const char*> names) {
  for (const char* name : names) {
    if (void* address = dlsym(handle, name)) {
      return reinterpret_cast<F>(address);
    }
  }
  return nullptr;
}

}  // namespace

CudaFailure classify_cuda_failure(CuResult code) {
  switch (code) {
    case cu::out_of_memory:
      return CudaFailure::out_of_memory;
    case cu::deinitialized:
    case cu::device_unavailable:
    case cu::ecc_uncorrectable:
    case cu::nvlink_uncorrectable:
    case cu::illegal_address:
    case cu::context_is_destroyed:
    case cu::not_permitted:
    case cu::unknown:
      return CudaFailure::gpu_lost;
    default:
      // 714 to 719: a hardware stack error, an illegal or misaligned instruction or address, an invalid PC, a
      // failed launch: the context is corrupt and every later call fails the same way.
      return code >= cu::hardware_stack_error && code <= cu::launch_failed ? CudaFailure::gpu_lost : CudaFailure::other;
  }
}

struct CudaDriver::State {
  void* handle = nullptr;
  std::string library;
  InitFn init = nullptr;
  DeviceGetCountFn device_count = nullptr;
  DeviceGetFn device_get = nullptr;
  DeviceGetNameFn device_name = nullptr;
  DeviceGetPciBusIdFn pci_bus_id = nullptr;
  DeviceTotalMemFn total_mem = nullptr;
  PrimaryCtxRetainFn retain = nullptr;
  PrimaryCtxReleaseFn release = nullptr;
  CtxSetCurrentFn set_current = nullptr;
  CtxSynchronizeFn synchronize = nullptr;
  MemGetInfoFn mem_info = nullptr;
  MemAllocFn mem_alloc = nullptr;
  MemFreeFn mem_free = nullptr;
  MemsetD8Fn memset_d8 = nullptr;
  GetErrorTextFn error_name = nullptr;
  GetErrorTextFn error_string = nullptr;

  State() = default;
  State(const State&) = delete;
  State& operator=(const State&) = delete;
  ~State() {
    if (handle != nullptr) {
      dlclose(handle);
    }
  }
};

Result<CudaDriver> CudaDriver::open(const CudaDriverOptions& options) {
  auto st = std::make_unique<State>();
  st->library = options.library.empty() ? std::string(k_default_library) : options.library;
  dlerror();  // clear any stale error
  st->handle = dlopen(st->library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (st->handle == nullptr) {
    const char* error = dlerror();
    return fail(st->library, error != nullptr ? one_line(error) : std::string("cannot be loaded"));
  }
  void* h = st->handle;
  st->init = symbol<InitFn>(h, {"cuInit"});
  st->device_count = symbol<DeviceGetCountFn>(h, {"cuDeviceGetCount"});
  st->device_get = symbol<DeviceGetFn>(h, {"cuDeviceGet"});
  st->device_name = symbol<DeviceGetNameFn>(h, {"cuDeviceGetName"});
  st->pci_bus_id = symbol<DeviceGetPciBusIdFn>(h, {"cuDeviceGetPCIBusId"});
  st->total_mem = symbol<DeviceTotalMemFn>(h, {"cuDeviceTotalMem_v2"});
  st->retain = symbol<PrimaryCtxRetainFn>(h, {"cuDevicePrimaryCtxRetain"});
  st->release = symbol<PrimaryCtxReleaseFn>(h, {"cuDevicePrimaryCtxRelease_v2", "cuDevicePrimaryCtxRelease"});
  st->set_current = symbol<CtxSetCurrentFn>(h, {"cuCtxSetCurrent"});
  st->synchronize = symbol<CtxSynchronizeFn>(h, {"cuCtxSynchronize"});
  st->mem_info = symbol<MemGetInfoFn>(h, {"cuMemGetInfo_v2"});
  st->mem_alloc = symbol<MemAllocFn>(h, {"cuMemAlloc_v2"});
  st->mem_free = symbol<MemFreeFn>(h, {"cuMemFree_v2"});
  st->memset_d8 = symbol<MemsetD8Fn>(h, {"cuMemsetD8_v2"});
  st->error_name = symbol<GetErrorTextFn>(h, {"cuGetErrorName"});
  st->error_string = symbol<GetErrorTextFn>(h, {"cuGetErrorString"});
  const std::array<std::pair<const char*, bool>, 13> required{{
      {"cuInit", st->init != nullptr},
      {"cuDeviceGetCount", st->device_count != nullptr},
      {"cuDeviceGet", st->device_get != nullptr},
      {"cuDeviceGetName", st->device_name != nullptr},
      {"cuDeviceTotalMem_v2", st->total_mem != nullptr},
      {"cuDevicePrimaryCtxRetain", st->retain != nullptr},
      {"cuDevicePrimaryCtxRelease_v2", st->release != nullptr},
      {"cuCtxSetCurrent", st->set_current != nullptr},
      {"cuCtxSynchronize", st->synchronize != nullptr},
      {"cuMemGetInfo_v2", st->mem_info != nullptr},
      {"cuMemAlloc_v2", st->mem_alloc != nullptr},
      {"cuMemFree_v2", st->mem_free != nullptr},
      {"cuMemsetD8_v2", st->memset_d8 != nullptr},
  }};
  for (const auto& [name, found] : required) {
    if (!found) {
      return fail(st->library, fmt::format("lacks {} (a CUDA driver older than 11.0, or not libcuda)", name));
    }
  }
  return CudaDriver(std::move(st));
}

CudaDriver::CudaDriver(std::unique_ptr<State> state) : m_state(std::move(state)) {}
CudaDriver::CudaDriver(CudaDriver&&) noexcept = default;
CudaDriver& CudaDriver::operator=(CudaDriver&&) noexcept = default;
CudaDriver::~CudaDriver() = default;

const std::string& CudaDriver::library() const {
  return m_state->library;
}

CuResult CudaDriver::init() const {
  return m_state->init(0);
}

CuResult CudaDriver::device_count(int& count) const {
  count = 0;
  return m_state->device_count(&count);
}

CuResult CudaDriver::device(int ordinal, CuDevice& device) const {
  device = 0;
  return m_state->device_get(&device, ordinal);
}

std::optional<std::string> CudaDriver::device_name(CuDevice device) const {
  std::array<char, k_name_buffer> buffer{};
  if (m_state->device_name(buffer.data(), k_name_buffer - 1, device) != cu::success) {
    return std::nullopt;
  }
  buffer.back() = '\0';  // never trust the library to terminate it
  return one_line(std::string_view(buffer.data(), std::strlen(buffer.data())));
}

std::optional<std::string> CudaDriver::pci_bus_id(CuDevice device) const {
  if (m_state->pci_bus_id == nullptr) {
    return std::nullopt;
  }
  std::array<char, k_bus_id_buffer> buffer{};
  if (m_state->pci_bus_id(buffer.data(), k_bus_id_buffer - 1, device) != cu::success) {
    return std::nullopt;
  }
  buffer.back() = '\0';
  return one_line(std::string_view(buffer.data(), std::strlen(buffer.data())));
}

CuResult CudaDriver::total_memory(CuDevice device, std::uint64_t& bytes) const {
  std::size_t total = 0;
  const CuResult rc = m_state->total_mem(&total, device);
  bytes = total;
  return rc;
}

CuResult CudaDriver::retain_primary_context(CuDevice device) const {
  CuContext context = nullptr;
  if (const CuResult rc = m_state->retain(&context, device); rc != cu::success) {
    return rc;
  }
  if (const CuResult rc = m_state->set_current(context); rc != cu::success) {
    static_cast<void>(m_state->release(device));
    return rc;
  }
  return cu::success;
}

CuResult CudaDriver::release_primary_context(CuDevice device) const {
  return m_state->release(device);
}

CuResult CudaDriver::memory_info(std::uint64_t& free, std::uint64_t& total) const {
  std::size_t f = 0;
  std::size_t t = 0;
  const CuResult rc = m_state->mem_info(&f, &t);
  free = f;
  total = t;
  return rc;
}

CuResult CudaDriver::allocate(std::uint64_t bytes, CuDevicePtr& pointer) const {
  unsigned long long p = 0;
  const CuResult rc = m_state->mem_alloc(&p, bytes);
  pointer = rc == cu::success ? p : 0;
  return rc;
}

CuResult CudaDriver::memset8(CuDevicePtr pointer, unsigned char value, std::uint64_t bytes) const {
  return m_state->memset_d8(pointer, value, bytes);
}

CuResult CudaDriver::synchronize() const {
  return m_state->synchronize();
}

CuResult CudaDriver::free(CuDevicePtr pointer) const {
  return m_state->mem_free(pointer);
}

std::string CudaDriver::describe(CuResult code) const {
  const char* name = nullptr;
  const char* text = nullptr;
  if (m_state->error_name == nullptr || m_state->error_name(code, &name) != cu::success || name == nullptr) {
    name = nullptr;
  }
  if (m_state->error_string == nullptr || m_state->error_string(code, &text) != cu::success || text == nullptr) {
    text = nullptr;
  }
  const std::string label = name != nullptr ? one_line(name) : std::string("CUDA error");
  if (text == nullptr || *text == '\0') {
    return fmt::format("{} ({})", label, code);
  }
  return fmt::format("{} ({}): {}", label, code, one_line(text));
}

}  // namespace mw::adapters
