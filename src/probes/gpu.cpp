// NVML through dlopen: the project declares the few types and entry points it
// uses (layouts from nvml.h, x86-64), so it needs no CUDA headers and runs on
// hosts without an NVIDIA driver.
#include "probes/gpu.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "probes/cgroup.hpp"

namespace mw::probes {
namespace {

// ---- NVML's own declarations (nvml.h), restated ------------------------------------------------------------------

using NvmlReturn = int;                    // nvmlReturn_t
using NvmlDevice = struct NvmlDeviceTag*;  // nvmlDevice_t: opaque

constexpr NvmlReturn nvml_success = 0;
constexpr NvmlReturn nvml_error_not_supported = 3;
constexpr NvmlReturn nvml_error_insufficient_size = 7;
constexpr NvmlReturn nvml_error_argument_version_mismatch = 25;

constexpr unsigned nvml_temperature_gpu = 0;                    // NVML_TEMPERATURE_GPU
constexpr unsigned nvml_device_name_v2_buffer_size = 96;        // NVML_DEVICE_NAME_V2_BUFFER_SIZE
constexpr unsigned long long nvml_value_not_available = ~0ULL;  // NVML_VALUE_NOT_AVAILABLE

struct NvmlMemory {  // nvmlMemory_t
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};

struct NvmlMemoryV2 {  // nvmlMemory_v2_t
  unsigned version;
  unsigned long long total;
  unsigned long long reserved;
  unsigned long long free;
  unsigned long long used;
};

// NVML_STRUCT_VERSION(Memory, 2): sizeof | version << 24. A plain 2 is rejected with ARGUMENT_VERSION_MISMATCH.
constexpr unsigned nvml_memory_v2_version = static_cast<unsigned>(sizeof(NvmlMemoryV2)) | (2u << 24);

struct NvmlUtilization {  // nvmlUtilization_t
  unsigned gpu;
  unsigned memory;
};

struct NvmlProcessInfoV3 {  // nvmlProcessInfo_t (v2 and v3 share this layout)
  unsigned pid;
  unsigned long long used_gpu_memory;
  unsigned gpu_instance_id;
  unsigned compute_instance_id;
};

struct NvmlProcessInfoV1 {  // nvmlProcessInfo_v1_t
  unsigned pid;
  unsigned long long used_gpu_memory;
};

static_assert(sizeof(NvmlMemory) == 24);
static_assert(sizeof(NvmlMemoryV2) == 40);
static_assert(nvml_memory_v2_version == 0x02000028u);
static_assert(sizeof(NvmlUtilization) == 8);
static_assert(sizeof(NvmlProcessInfoV3) == 24);
static_assert(sizeof(NvmlProcessInfoV1) == 16);

using InitFn = NvmlReturn (*)();
using ShutdownFn = NvmlReturn (*)();
using ErrorStringFn = const char* (*)(NvmlReturn);
using GetCountFn = NvmlReturn (*)(unsigned*);
using GetHandleByIndexFn = NvmlReturn (*)(unsigned, NvmlDevice*);
using GetNameFn = NvmlReturn (*)(NvmlDevice, char*, unsigned);
using GetMemoryInfoFn = NvmlReturn (*)(NvmlDevice, NvmlMemory*);
using GetMemoryInfoV2Fn = NvmlReturn (*)(NvmlDevice, NvmlMemoryV2*);
using GetTemperatureFn = NvmlReturn (*)(NvmlDevice, unsigned, unsigned*);
using GetUtilizationRatesFn = NvmlReturn (*)(NvmlDevice, NvmlUtilization*);
using GetPowerUsageFn = NvmlReturn (*)(NvmlDevice, unsigned*);
using GetClocksEventReasonsFn = NvmlReturn (*)(NvmlDevice, unsigned long long*);
using GetProcessesV3Fn = NvmlReturn (*)(NvmlDevice, unsigned*, NvmlProcessInfoV3*);
using GetProcessesV1Fn = NvmlReturn (*)(NvmlDevice, unsigned*, NvmlProcessInfoV1*);

// Whatever the library claims, memwarden looks at no more than this.
constexpr unsigned max_devices = 64;
constexpr unsigned max_processes = 4096;
constexpr unsigned process_slack = 8;      // room for processes started between the two calls
constexpr int process_query_attempts = 4;  // the list may keep growing; give up after this many sized calls

constexpr std::string_view default_libraries[] = {"libnvidia-ml.so.1", "libnvidia-ml.so"};

// ---- Loading -----------------------------------------------------------------------------------------------------

// A dlopen handle, closed on destruction.
class Library {
 public:
  Library() = default;
  explicit Library(void* handle) : m_handle(handle) {}
  Library(const Library&) = delete;
  Library& operator=(const Library&) = delete;
  Library(Library&& other) noexcept : m_handle(std::exchange(other.m_handle, nullptr)) {}
  Library& operator=(Library&& other) noexcept {
    if (this != &other) {
      close();
      m_handle = std::exchange(other.m_handle, nullptr);
    }
    return *this;
  }
  ~Library() { close(); }

  [[nodiscard]] bool loaded() const { return m_handle != nullptr; }

  // The first of `names` the library exports, cast to F; nullptr when none is.
  template <class F>
  [[nodiscard]] F symbol(std::initializer_list<const char*> names) const {
    for (const char* name : names) {
      if (void* address = dlsym(m_handle, name)) {
        return reinterpret_cast<F>(address);
      }
    }
    return nullptr;
  }

 private:
  void close() {
    if (m_handle != nullptr) {
      dlclose(m_handle);
      m_handle = nullptr;
    }
  }

  void* m_handle = nullptr;
};

// A dlerror() text on one line.
[[nodiscard]] std::string one_line(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    out.push_back(c == '\n' || c == '\r' ? ' ' : c);
  }
  while (!out.empty() && out.back() == ' ') {
    out.pop_back();
  }
  return out;
}

struct Loaded {
  Library library;
  std::string name;   // the name that was tried last (the one that loaded, if any)
  std::string error;  // dlerror() of the last failure
};

[[nodiscard]] Loaded load(const NvmlOptions& options) {
  Loaded out;
  std::vector<std::string> names;
  if (options.library.empty()) {
    names.assign(std::begin(default_libraries), std::end(default_libraries));
  } else {
    names.push_back(options.library);
  }
  for (const auto& name : names) {
    out.name = name;
    dlerror();  // clear any stale error
    if (void* handle = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL)) {
      out.library = Library(handle);
      out.error.clear();
      return out;
    }
    const char* error = dlerror();
    out.error = error != nullptr ? one_line(error) : std::string();
  }
  out.name = names.front();  // report the primary name, as a user would look for it
  return out;
}

// The entry points, newest first. Only init, get-count and get-handle are required.
struct Api {
  InitFn init = nullptr;
  ShutdownFn shutdown = nullptr;
  ErrorStringFn error_string = nullptr;
  GetCountFn get_count = nullptr;
  GetHandleByIndexFn get_handle = nullptr;
  GetNameFn get_name = nullptr;
  GetMemoryInfoV2Fn get_memory_v2 = nullptr;
  GetMemoryInfoFn get_memory = nullptr;
  GetTemperatureFn get_temperature = nullptr;
  GetUtilizationRatesFn get_utilization = nullptr;
  GetPowerUsageFn get_power = nullptr;
  GetClocksEventReasonsFn get_clocks_event_reasons = nullptr;  // ...ClocksEventReasons or ...ClocksThrottleReasons
  GetProcessesV3Fn get_processes_v3 = nullptr;                 // _v3 or _v2: the same layout
  GetProcessesV1Fn get_processes_v1 = nullptr;

  explicit Api(const Library& lib)
      : init(lib.symbol<InitFn>({"nvmlInit_v2", "nvmlInit"})),
        shutdown(lib.symbol<ShutdownFn>({"nvmlShutdown"})),
        error_string(lib.symbol<ErrorStringFn>({"nvmlErrorString"})),
        get_count(lib.symbol<GetCountFn>({"nvmlDeviceGetCount_v2", "nvmlDeviceGetCount"})),
        get_handle(lib.symbol<GetHandleByIndexFn>({"nvmlDeviceGetHandleByIndex_v2", "nvmlDeviceGetHandleByIndex"})),
        get_name(lib.symbol<GetNameFn>({"nvmlDeviceGetName"})),
        get_memory_v2(lib.symbol<GetMemoryInfoV2Fn>({"nvmlDeviceGetMemoryInfo_v2"})),
        get_memory(lib.symbol<GetMemoryInfoFn>({"nvmlDeviceGetMemoryInfo"})),
        get_temperature(lib.symbol<GetTemperatureFn>({"nvmlDeviceGetTemperature"})),
        get_utilization(lib.symbol<GetUtilizationRatesFn>({"nvmlDeviceGetUtilizationRates"})),
        get_power(lib.symbol<GetPowerUsageFn>({"nvmlDeviceGetPowerUsage"})),
        get_clocks_event_reasons(lib.symbol<GetClocksEventReasonsFn>(
            {"nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons"})),
        get_processes_v3(lib.symbol<GetProcessesV3Fn>(
            {"nvmlDeviceGetComputeRunningProcesses_v3", "nvmlDeviceGetComputeRunningProcesses_v2"})),
        get_processes_v1(lib.symbol<GetProcessesV1Fn>({"nvmlDeviceGetComputeRunningProcesses"})) {}

  // "NVML: <nvmlErrorString> (code N)"
  [[nodiscard]] std::string describe(NvmlReturn code) const {
    const char* text = error_string != nullptr ? error_string(code) : nullptr;
    if (text == nullptr || *text == '\0') {
      return fmt::format("NVML: error (code {})", code);
    }
    return fmt::format("NVML: {} (code {})", one_line(text), code);
  }
};

// nvmlInit succeeded: nvmlShutdown on destruction. Destroyed before the Library that owns the code.
class Session {
 public:
  explicit Session(ShutdownFn shutdown) : m_shutdown(shutdown) {}
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session() {
    if (m_shutdown != nullptr) {
      static_cast<void>(m_shutdown());
    }
  }

 private:
  ShutdownFn m_shutdown;
};

// ---- Per device --------------------------------------------------------------------------------------------------

void read_name(const Api& api, NvmlDevice device, Gpu& gpu) {
  if (api.get_name == nullptr) {
    return;
  }
  std::array<char, nvml_device_name_v2_buffer_size> buffer{};
  if (api.get_name(device, buffer.data(), nvml_device_name_v2_buffer_size) == nvml_success) {
    buffer.back() = '\0';  // never trust the library to terminate it
    gpu.name = one_line(std::string_view(buffer.data(), std::strlen(buffer.data())));
  }
}

void set_memory(unsigned long long total, unsigned long long free, unsigned long long used, Gpu& gpu) {
  if (total == 0) {
    return;  // a unified-memory iGPU: no dedicated VRAM to report
  }
  gpu.memory_total = total;
  gpu.memory_free = free;
  // "Used" here includes what the driver reserves. nvml.h is inconsistent about whether v2's `used` contains
  // `reserved`, so derive it from total and free, which both versions agree on.
  gpu.memory_used = free <= total ? total - free : used;
}

void read_memory(const Api& api, NvmlDevice device, Gpu& gpu) {
  if (api.get_memory_v2 != nullptr) {
    NvmlMemoryV2 memory{};
    memory.version = nvml_memory_v2_version;
    const NvmlReturn rc = api.get_memory_v2(device, &memory);
    if (rc == nvml_success) {
      set_memory(memory.total, memory.free, memory.used, gpu);
      return;
    }
    if (rc != nvml_error_argument_version_mismatch && rc != nvml_error_not_supported) {
      return;  // a real failure (GPU lost, no permission): v1 would fail the same way
    }
  }
  if (api.get_memory != nullptr) {
    NvmlMemory memory{};
    if (api.get_memory(device, &memory) == nvml_success) {
      set_memory(memory.total, memory.free, memory.used, gpu);
    }
  }
}

void read_temperature(const Api& api, NvmlDevice device, Gpu& gpu) {
  unsigned celsius = 0;
  if (api.get_temperature != nullptr && api.get_temperature(device, nvml_temperature_gpu, &celsius) == nvml_success) {
    gpu.temperature_c = celsius;
  }
}

void read_utilisation(const Api& api, NvmlDevice device, Gpu& gpu) {
  NvmlUtilization rates{};
  if (api.get_utilization != nullptr && api.get_utilization(device, &rates) == nvml_success) {
    gpu.utilisation_pct = rates.gpu;
    gpu.memory_utilisation_pct = rates.memory;
  }
}

// Milliwatts from NVML.
void read_power(const Api& api, NvmlDevice device, Gpu& gpu) {
  unsigned milliwatts = 0;
  if (api.get_power != nullptr && api.get_power(device, &milliwatts) == nvml_success) {
    gpu.power_w = static_cast<double>(milliwatts) / 1000.0;
  }
}

void read_throttle_reasons(const Api& api, NvmlDevice device, Gpu& gpu) {
  unsigned long long reasons = 0;
  if (api.get_clocks_event_reasons != nullptr && api.get_clocks_event_reasons(device, &reasons) == nvml_success) {
    gpu.throttle_reasons = static_cast<std::uint64_t>(reasons);
  }
}

// The two-call dance: ask for the count with an empty buffer, then fetch into a buffer with some slack; if the
// list grew past it in between (INSUFFICIENT_SIZE again), try again with the new count.
template <class Info, class F>
[[nodiscard]] std::vector<Info> query_processes(F get, NvmlDevice device) {
  unsigned count = 0;
  NvmlReturn rc = get(device, &count, nullptr);
  if (rc != nvml_error_insufficient_size) {
    return {};  // success with an empty buffer means no processes; anything else is a failure
  }
  for (int attempt = 0; attempt < process_query_attempts; ++attempt) {
    const unsigned capacity = count >= max_processes - process_slack ? max_processes : count + process_slack;
    std::vector<Info> infos(capacity);
    unsigned filled = capacity;
    rc = get(device, &filled, infos.data());
    if (rc == nvml_success) {
      infos.resize(std::min(filled, capacity));
      return infos;
    }
    if (rc != nvml_error_insufficient_size || (capacity == max_processes && filled >= max_processes)) {
      return {};  // failed, or more processes than memwarden is willing to hold
    }
    count = filled;
  }
  return {};
}

template <class Info>
void append_processes(const std::vector<Info>& infos, Gpu& gpu) {
  gpu.processes.reserve(infos.size());
  for (const auto& info : infos) {
    GpuProcess process;
    process.pid = info.pid;
    if (info.used_gpu_memory != nvml_value_not_available) {
      process.used_bytes = info.used_gpu_memory;
    }
    gpu.processes.push_back(std::move(process));
  }
}

void read_processes(const Api& api, NvmlDevice device, Gpu& gpu) {
  if (api.get_processes_v3 != nullptr) {
    append_processes(query_processes<NvmlProcessInfoV3>(api.get_processes_v3, device), gpu);
  } else if (api.get_processes_v1 != nullptr) {
    append_processes(query_processes<NvmlProcessInfoV1>(api.get_processes_v1, device), gpu);
  }
}

// ---- Containers --------------------------------------------------------------------------------------------------

// Host pid -> container id through <root>/proc/<pid>/cgroup; cached, as one pid may use several GPUs.
class ContainerLookup {
 public:
  explicit ContainerLookup(const HostRoot& root) : m_root(root) {}

  [[nodiscard]] std::optional<std::string> find(std::uint32_t pid) {
    if (const auto it = m_cache.find(pid); it != m_cache.end()) {
      return it->second;
    }
    auto id = lookup(pid);
    m_cache.emplace(pid, id);
    return id;
  }

 private:
  [[nodiscard]] std::optional<std::string> lookup(std::uint32_t pid) const {
    const auto path = m_root.proc(std::to_string(pid) + "/cgroup");
    const auto text = read_file(path);
    if (!text) {
      return std::nullopt;  // the process exited, or is not visible from here
    }
    const auto entries = parse_proc_cgroup(*text, path.string());
    if (!entries) {
      return std::nullopt;
    }
    for (const auto& entry : *entries) {
      if (auto id = container_id_from_cgroup_path(entry.path)) {
        return id;
      }
    }
    return std::nullopt;
  }

  const HostRoot& m_root;
  std::map<std::uint32_t, std::optional<std::string>> m_cache;
};

}  // namespace

// The library, its entry points and the NVML session, in the order they must be torn down.
struct GpuReader::State {
  Loaded loaded;
  std::optional<Api> api;
  std::optional<Session> session;  // shut down before `loaded` closes the library
  GpuReport failure;               // why there is no session
};

GpuReader::GpuReader(const NvmlOptions& options) : m_state(std::make_unique<State>()) {
  auto& st = *m_state;
  st.loaded = load(options);
  auto& report = st.failure;
  if (!st.loaded.library.loaded()) {
    report.availability = GpuAvailability::no_library;
    const bool absent = st.loaded.error.empty() || st.loaded.error.find("No such file") != std::string::npos;
    report.message = absent ? fmt::format("no NVIDIA driver: {} not found (GPU columns omitted)", st.loaded.name)
                            : fmt::format("no NVIDIA driver: {} (GPU columns omitted)", st.loaded.error);
    return;
  }
  st.api.emplace(st.loaded.library);
  const auto& api = *st.api;
  if (api.init == nullptr || api.get_count == nullptr || api.get_handle == nullptr) {
    report.availability = GpuAvailability::failed;
    report.message =
        fmt::format("NVML: {} lacks nvmlInit, nvmlDeviceGetCount or nvmlDeviceGetHandleByIndex", st.loaded.name);
    return;
  }
  if (const NvmlReturn rc = api.init(); rc != nvml_success) {
    report.availability = GpuAvailability::failed;
    report.message = api.describe(rc);
    return;
  }
  st.session.emplace(api.shutdown);
}

GpuReader::~GpuReader() = default;

bool GpuReader::available() const {
  return m_state->session.has_value();
}

GpuReport GpuReader::read(const HostRoot& root) const {
  const auto& st = *m_state;
  if (!st.session) {
    return st.failure;
  }
  const auto& api = *st.api;
  GpuReport report;
  unsigned count = 0;
  if (const NvmlReturn rc = api.get_count(&count); rc != nvml_success) {
    report.availability = GpuAvailability::failed;
    report.message = api.describe(rc);
    return report;
  }
  report.availability = GpuAvailability::available;
  count = std::min(count, max_devices);

  ContainerLookup containers(root);
  report.gpus.reserve(count);
  for (unsigned index = 0; index < count; ++index) {
    Gpu gpu;
    gpu.index = index;
    NvmlDevice device = nullptr;
    if (api.get_handle(index, &device) == nvml_success && device != nullptr) {
      read_name(api, device, gpu);
      read_memory(api, device, gpu);
      read_temperature(api, device, gpu);
      read_utilisation(api, device, gpu);
      read_power(api, device, gpu);
      read_throttle_reasons(api, device, gpu);
      read_processes(api, device, gpu);
      for (auto& process : gpu.processes) {
        process.container_id = containers.find(process.pid);
      }
    }
    report.gpus.push_back(std::move(gpu));
  }
  return report;
}

GpuReport read_gpus(const HostRoot& root, const NvmlOptions& options) {
  return GpuReader(options).read(root);
}

}  // namespace mw::probes
