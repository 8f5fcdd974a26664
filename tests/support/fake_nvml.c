/*
 * A fake libnvidia-ml.so.1 for memwarden's GPU probe tests. It implements only
 * the NVML entry points src/probes/gpu.cpp resolves, with the same signatures,
 * struct layouts and return codes as the real library, and is scripted through
 * environment variables, read at each nvmlInit (so setenv() before read_gpus()
 * takes effect even if the library stays loaded).
 *
 *   FAKE_NVML_SCENARIO   ok (default)
 *                        init_fails      nvmlInit returns FAKE_NVML_INIT_CODE (default 9, "Driver Not Loaded")
 *                        no_v2_memory    nvmlDeviceGetMemoryInfo_v2 returns 25 (ARGUMENT_VERSION_MISMATCH)
 *                                        whatever the version, like a library with an older struct
 *                        process_grows   between the count query (empty buffer) and the next call on GPU 0,
 *                                        FAKE_NVML_GROW_BY processes start; a buffer too small for them gets
 *                                        INSUFFICIENT_SIZE (7) with the new count, exactly like NVML
 *                        not_supported   temperature, utilisation, power, clock event reasons and both memory
 *                                        calls return 3 (NOT_SUPPORTED)
 *                        unified_memory  both memory calls succeed with total = free = used = 0 (an iGPU)
 *                        gpu_lost        every query on the last GPU returns 15 (GPU_IS_LOST); its handle works
 *                        huge            nvmlDeviceGetCount says 1000000 (handles exist for the first 128) and
 *                                        the process query always wants 1000000 entries
 *   FAKE_NVML_GPUS       number of GPUs, 0..128 (default 1)
 *   FAKE_NVML_PIDS       compute processes on GPU 0: "pid:bytes,pid:bytes"; bytes -1 = not available
 *                        (usedGpuMemory = ~0ULL); at most 256 entries; default none
 *   FAKE_NVML_GROW_BY    processes that appear in process_grows (default 12, more than the caller's slack of 8;
 *                        pids 90001.., 1 MiB each)
 *   FAKE_NVML_INIT_CODE  the return code of nvmlInit in init_fails (default 9)
 *   FAKE_NVML_LOG        if set, a file to which every call appends "<function> <return code>\n"
 *   FAKE_NVML_TEMP_START temperature in C at the first nvmlInit of the process (default 65)
 *   FAKE_NVML_TEMP_RISE_PER_S  C per second (decimals allowed, default 0): the temperature is
 *                        START + RISE x seconds since the process's first successful nvmlInit (CLOCK_MONOTONIC),
 *                        rounded down, so a run of a few seconds can cross a limit. The library is linked
 *                        -z nodelete, so closing and reopening it between reads does not restart the clock.
 *   FAKE_NVML_UTIL       GPU utilisation in % (default 87; memory utilisation stays 40)
 *   FAKE_NVML_POWER_MW   nvmlDeviceGetPowerUsage in milliwatts (default 150000)
 *   FAKE_NVML_THROTTLE   nvmlDeviceGetCurrentClocksEventReasons / ...ThrottleReasons bitmask (default 0), e.g.
 *                        0x20 (SW thermal slowdown) or 0x40 (HW slowdown); decimal, 0x hex or 0 octal
 *
 * Every GPU: total 17179869184 (16 GiB), reserved 268435456, used 2415919104 (v1 and v2 alike: nvml.h says v2's
 * used includes reserved), free 14763950080, temperature 65 C, utilisation 87% GPU / 40% memory, power 150 W, no
 * clock event reasons. GPU 0 is
 * "NVIDIA GeForce RTX 5070 Ti", GPU i > 0 "NVIDIA Fake GPU <i>". Device calls before nvmlInit return 1
 * (UNINITIALIZED); unknown handles and null pointers return 2 (INVALID_ARGUMENT).
 *
 * Built with -DFAKE_NVML_LEGACY it exports only the pre-v2 names (nvmlInit, nvmlDeviceGetCount,
 * nvmlDeviceGetHandleByIndex, nvmlDeviceGetMemoryInfo, nvmlDeviceGetComputeRunningProcesses with the v1
 * 16-byte process struct, and nvmlDeviceGetCurrentClocksThrottleReasons but not ...ClocksEventReasons), as a
 * driver older than 450 would.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef int nvmlReturn_t;
typedef struct nvmlDevice_st* nvmlDevice_t;

#define NVML_SUCCESS 0
#define NVML_ERROR_UNINITIALIZED 1
#define NVML_ERROR_INVALID_ARGUMENT 2
#define NVML_ERROR_NOT_SUPPORTED 3
#define NVML_ERROR_INSUFFICIENT_SIZE 7
#define NVML_ERROR_DRIVER_NOT_LOADED 9
#define NVML_ERROR_GPU_IS_LOST 15
#define NVML_ERROR_ARGUMENT_VERSION_MISMATCH 25

typedef struct nvmlMemory_st {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
} nvmlMemory_t;

typedef struct nvmlMemory_v2_st {
  unsigned int version;
  unsigned long long total;
  unsigned long long reserved;
  unsigned long long free;
  unsigned long long used;
} nvmlMemory_v2_t;

#define NVML_MEMORY_V2 ((unsigned int)sizeof(nvmlMemory_v2_t) | (2u << 24))

typedef struct nvmlUtilization_st {
  unsigned int gpu;
  unsigned int memory;
} nvmlUtilization_t;

typedef struct nvmlProcessInfo_st {
  unsigned int pid;
  unsigned long long usedGpuMemory;
  unsigned int gpuInstanceId;
  unsigned int computeInstanceId;
} nvmlProcessInfo_t;

typedef struct nvmlProcessInfo_v1_st {
  unsigned int pid;
  unsigned long long usedGpuMemory;
} nvmlProcessInfo_v1_t;

_Static_assert(sizeof(nvmlMemory_v2_t) == 40, "nvmlMemory_v2_t layout");
_Static_assert(NVML_MEMORY_V2 == 0x02000028u, "nvmlMemory_v2 version");
_Static_assert(sizeof(nvmlProcessInfo_t) == 24, "nvmlProcessInfo_t layout");
_Static_assert(sizeof(nvmlProcessInfo_v1_t) == 16, "nvmlProcessInfo_v1_t layout");

enum scenario {
  SC_OK,
  SC_INIT_FAILS,
  SC_NO_V2_MEMORY,
  SC_PROCESS_GROWS,
  SC_NOT_SUPPORTED,
  SC_UNIFIED,
  SC_GPU_LOST,
  SC_HUGE
};

#define MAX_GPUS 128u
#define MAX_PIDS 256u
#define HUGE_COUNT 1000000u
#define GIB 1073741824ULL
#define MIB 1048576ULL

struct fake_device {
  unsigned int index;
};

struct fake_process {
  unsigned int pid;
  unsigned long long bytes;
};

static struct fake_device g_devices[MAX_GPUS];
static struct fake_process g_processes[MAX_PIDS];
static unsigned int g_process_count;
static unsigned int g_gpu_count = 1;
static unsigned int g_grow_by = 12;
static int g_grown;
static int g_count_queried;
static int g_init_code = NVML_ERROR_DRIVER_NOT_LOADED;
static int g_init_refs;
static enum scenario g_scenario = SC_OK;
static double g_temp_start = 65;
static double g_temp_rise_per_s = 0;
static double g_t0 = -1; /* CLOCK_MONOTONIC seconds at the first successful nvmlInit; survives dlclose (nodelete) */
static unsigned int g_util = 87;
static unsigned int g_power_mw = 150000;
static unsigned long long g_throttle;

static double monotonic_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double env_double(const char* name, double fallback) {
  const char* text = getenv(name);
  if (text == NULL || *text == '\0') {
    return fallback;
  }
  return strtod(text, NULL);
}

static nvmlReturn_t logged(const char* function, nvmlReturn_t rc) {
  const char* path = getenv("FAKE_NVML_LOG");
  if (path != NULL && *path != '\0') {
    FILE* file = fopen(path, "a");
    if (file != NULL) {
      fprintf(file, "%s %d\n", function, rc);
      fclose(file);
    }
  }
  return rc;
}

static unsigned long env_unsigned(const char* name, unsigned long fallback) {
  const char* text = getenv(name);
  if (text == NULL || *text == '\0') {
    return fallback;
  }
  return strtoul(text, NULL, 0);
}

static void parse_pids(void) {
  const char* text = getenv("FAKE_NVML_PIDS");
  g_process_count = 0;
  while (text != NULL && *text != '\0' && g_process_count < MAX_PIDS) {
    char* end = NULL;
    const unsigned long pid = strtoul(text, &end, 10);
    if (end == text || *end != ':') {
      return;
    }
    text = end + 1;
    const long long bytes = strtoll(text, &end, 10);
    if (end == text) {
      return;
    }
    g_processes[g_process_count].pid = (unsigned int)pid;
    g_processes[g_process_count].bytes = bytes < 0 ? ~0ULL : (unsigned long long)bytes;
    ++g_process_count;
    text = *end == ',' ? end + 1 : end;
  }
}

static void configure(void) {
  const char* name = getenv("FAKE_NVML_SCENARIO");
  g_scenario = SC_OK;
  if (name != NULL) {
    if (strcmp(name, "init_fails") == 0)
      g_scenario = SC_INIT_FAILS;
    else if (strcmp(name, "no_v2_memory") == 0)
      g_scenario = SC_NO_V2_MEMORY;
    else if (strcmp(name, "process_grows") == 0)
      g_scenario = SC_PROCESS_GROWS;
    else if (strcmp(name, "not_supported") == 0)
      g_scenario = SC_NOT_SUPPORTED;
    else if (strcmp(name, "unified_memory") == 0)
      g_scenario = SC_UNIFIED;
    else if (strcmp(name, "gpu_lost") == 0)
      g_scenario = SC_GPU_LOST;
    else if (strcmp(name, "huge") == 0)
      g_scenario = SC_HUGE;
  }
  unsigned long gpus = env_unsigned("FAKE_NVML_GPUS", 1);
  g_gpu_count = gpus > MAX_GPUS ? MAX_GPUS : (unsigned int)gpus;
  for (unsigned int i = 0; i < MAX_GPUS; ++i) {
    g_devices[i].index = i;
  }
  unsigned long grow = env_unsigned("FAKE_NVML_GROW_BY", 12);
  g_grow_by = grow > 64 ? 64 : (unsigned int)grow;
  g_init_code = (int)env_unsigned("FAKE_NVML_INIT_CODE", NVML_ERROR_DRIVER_NOT_LOADED);
  g_temp_start = env_double("FAKE_NVML_TEMP_START", 65);
  g_temp_rise_per_s = env_double("FAKE_NVML_TEMP_RISE_PER_S", 0);
  g_util = (unsigned int)env_unsigned("FAKE_NVML_UTIL", 87);
  g_power_mw = (unsigned int)env_unsigned("FAKE_NVML_POWER_MW", 150000);
  {
    const char* text = getenv("FAKE_NVML_THROTTLE");
    g_throttle = text != NULL && *text != '\0' ? strtoull(text, NULL, 0) : 0;
  }
  g_grown = 0;
  g_count_queried = 0;
  parse_pids();
}

/* The device behind a handle, or NULL when the handle is not one of ours. */
static const struct fake_device* device_of(nvmlDevice_t device) {
  const struct fake_device* d = (const struct fake_device*)device;
  if (d < &g_devices[0] || d >= &g_devices[MAX_GPUS]) {
    return NULL;
  }
  return d;
}

/* Common checks for a device query: initialised, known handle, output pointer, lost GPU. */
static nvmlReturn_t check(nvmlDevice_t device, const void* out, const struct fake_device** d) {
  if (g_init_refs <= 0) {
    return NVML_ERROR_UNINITIALIZED;
  }
  *d = device_of(device);
  if (*d == NULL || out == NULL) {
    return NVML_ERROR_INVALID_ARGUMENT;
  }
  if (g_scenario == SC_GPU_LOST && g_gpu_count > 0 && (*d)->index == g_gpu_count - 1) {
    return NVML_ERROR_GPU_IS_LOST;
  }
  return NVML_SUCCESS;
}

/* ---- Init, shutdown, errors ---------------------------------------------------------------------------------- */

static nvmlReturn_t init(const char* function) {
  configure();
  if (g_scenario == SC_INIT_FAILS) {
    return logged(function, g_init_code);
  }
  ++g_init_refs;
  if (g_t0 < 0) {
    g_t0 = monotonic_s();
  }
  return logged(function, NVML_SUCCESS);
}

nvmlReturn_t nvmlInit(void) {
  return init("nvmlInit");
}

nvmlReturn_t nvmlShutdown(void) {
  if (g_init_refs <= 0) {
    return logged("nvmlShutdown", NVML_ERROR_UNINITIALIZED);
  }
  --g_init_refs;
  return logged("nvmlShutdown", NVML_SUCCESS);
}

const char* nvmlErrorString(nvmlReturn_t result) {
  switch (result) {
    case 0:
      return "Success";
    case 1:
      return "Uninitialized";
    case 2:
      return "Invalid Argument";
    case 3:
      return "Not Supported";
    case 4:
      return "Insufficient Permissions";
    case 7:
      return "Insufficient Size";
    case 9:
      return "Driver Not Loaded";
    case 15:
      return "GPU is lost";
    case 18:
      return "RM has detected an NVML/RM version mismatch.";
    case 25:
      return "Argument version mismatch";
    default:
      return "Unknown Error";
  }
}

/* ---- Devices ------------------------------------------------------------------------------------------------- */

static nvmlReturn_t get_count(const char* function, unsigned int* count) {
  if (g_init_refs <= 0) {
    return logged(function, NVML_ERROR_UNINITIALIZED);
  }
  if (count == NULL) {
    return logged(function, NVML_ERROR_INVALID_ARGUMENT);
  }
  *count = g_scenario == SC_HUGE ? HUGE_COUNT : g_gpu_count;
  return logged(function, NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetCount(unsigned int* count) {
  return get_count("nvmlDeviceGetCount", count);
}

static nvmlReturn_t get_handle(const char* function, unsigned int index, nvmlDevice_t* device) {
  if (g_init_refs <= 0) {
    return logged(function, NVML_ERROR_UNINITIALIZED);
  }
  const unsigned int count = g_scenario == SC_HUGE ? MAX_GPUS : g_gpu_count;
  if (device == NULL || index >= count) {
    return logged(function, NVML_ERROR_INVALID_ARGUMENT);
  }
  *device = (nvmlDevice_t)&g_devices[index];
  return logged(function, NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t* device) {
  return get_handle("nvmlDeviceGetHandleByIndex", index, device);
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char* name, unsigned int length) {
  const struct fake_device* d = NULL;
  nvmlReturn_t rc = check(device, name, &d);
  if (rc != NVML_SUCCESS) {
    return logged("nvmlDeviceGetName", rc);
  }
  char buffer[96];
  if (d->index == 0) {
    snprintf(buffer, sizeof buffer, "NVIDIA GeForce RTX 5070 Ti");
  } else {
    snprintf(buffer, sizeof buffer, "NVIDIA Fake GPU %u", d->index);
  }
  if (strlen(buffer) + 1 > length) {
    return logged("nvmlDeviceGetName", NVML_ERROR_INSUFFICIENT_SIZE);
  }
  memcpy(name, buffer, strlen(buffer) + 1);
  return logged("nvmlDeviceGetName", NVML_SUCCESS);
}

static const unsigned long long k_total = 16 * GIB;
static const unsigned long long k_used = 256 * MIB + 2 * GIB;

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t* memory) {
  const struct fake_device* d = NULL;
  nvmlReturn_t rc = check(device, memory, &d);
  if (rc != NVML_SUCCESS) {
    return logged("nvmlDeviceGetMemoryInfo", rc);
  }
  if (g_scenario == SC_NOT_SUPPORTED) {
    return logged("nvmlDeviceGetMemoryInfo", NVML_ERROR_NOT_SUPPORTED);
  }
  const int unified = g_scenario == SC_UNIFIED;
  memory->total = unified ? 0 : k_total;
  memory->used = unified ? 0 : k_used;
  memory->free = unified ? 0 : k_total - k_used;
  return logged("nvmlDeviceGetMemoryInfo", NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device, int sensor, unsigned int* temperature) {
  const struct fake_device* d = NULL;
  nvmlReturn_t rc = check(device, temperature, &d);
  if (rc == NVML_SUCCESS && sensor != 0) {
    rc = NVML_ERROR_INVALID_ARGUMENT;
  }
  if (rc == NVML_SUCCESS && g_scenario == SC_NOT_SUPPORTED) {
    rc = NVML_ERROR_NOT_SUPPORTED;
  }
  if (rc == NVML_SUCCESS) {
    const double celsius = g_temp_start + g_temp_rise_per_s * (monotonic_s() - g_t0);
    *temperature = celsius <= 0 ? 0 : celsius >= 4294967295.0 ? 4294967295u : (unsigned int)celsius;
  }
  return logged("nvmlDeviceGetTemperature", rc);
}

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t* utilization) {
  const struct fake_device* d = NULL;
  nvmlReturn_t rc = check(device, utilization, &d);
  if (rc == NVML_SUCCESS && g_scenario == SC_NOT_SUPPORTED) {
    rc = NVML_ERROR_NOT_SUPPORTED;
  }
  if (rc == NVML_SUCCESS) {
    utilization->gpu = g_util;
    utilization->memory = 40;
  }
  return logged("nvmlDeviceGetUtilizationRates", rc);
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int* power) {
  const struct fake_device* d = NULL;
  nvmlReturn_t rc = check(device, power, &d);
  if (rc == NVML_SUCCESS && g_scenario == SC_NOT_SUPPORTED) {
    rc = NVML_ERROR_NOT_SUPPORTED;
  }
  if (rc == NVML_SUCCESS) {
    *power = g_power_mw;
  }
  return logged("nvmlDeviceGetPowerUsage", rc);
}

static nvmlReturn_t clocks_event_reasons(const char* function, nvmlDevice_t device, unsigned long long* reasons) {
  const struct fake_device* d = NULL;
  nvmlReturn_t rc = check(device, reasons, &d);
  if (rc == NVML_SUCCESS && g_scenario == SC_NOT_SUPPORTED) {
    rc = NVML_ERROR_NOT_SUPPORTED;
  }
  if (rc == NVML_SUCCESS) {
    *reasons = g_throttle;
  }
  return logged(function, rc);
}

nvmlReturn_t nvmlDeviceGetCurrentClocksThrottleReasons(nvmlDevice_t device, unsigned long long* reasons) {
  return clocks_event_reasons("nvmlDeviceGetCurrentClocksThrottleReasons", device, reasons);
}

/* ---- Processes ----------------------------------------------------------------------------------------------- */

/* How many processes GPU `index` has now; process_grows adds its processes after the first count query. */
static unsigned int process_count(unsigned int index) {
  if (g_scenario == SC_HUGE) {
    return HUGE_COUNT;
  }
  if (index != 0) {
    return 0;
  }
  return g_process_count + (g_grown ? g_grow_by : 0);
}

static struct fake_process process_at(unsigned int i) {
  if (i < g_process_count) {
    return g_processes[i];
  }
  struct fake_process grown = {90001u + (i - g_process_count), MIB};
  return grown;
}

/* Shared by every version: the size protocol, then `store` for each entry. Returns the NVML code. */
static nvmlReturn_t processes(const char* function, nvmlDevice_t device, unsigned int* count, void* infos,
                              void (*store)(void*, unsigned int, struct fake_process)) {
  const struct fake_device* d = NULL;
  nvmlReturn_t rc = check(device, count, &d);
  if (rc != NVML_SUCCESS) {
    return logged(function, rc);
  }
  if (g_scenario == SC_PROCESS_GROWS && d->index == 0 && g_count_queried && !g_grown) {
    g_grown = 1; /* processes started between the caller's two calls */
  }
  const unsigned int have = process_count(d->index);
  if (*count < have || (infos == NULL && have > 0)) {
    if (infos == NULL && d->index == 0) {
      g_count_queried = 1;
    }
    *count = have;
    return logged(function, NVML_ERROR_INSUFFICIENT_SIZE);
  }
  if (infos == NULL && *count > 0) {
    return logged(function, NVML_ERROR_INVALID_ARGUMENT);
  }
  for (unsigned int i = 0; i < have; ++i) {
    store(infos, i, process_at(i));
  }
  *count = have;
  return logged(function, NVML_SUCCESS);
}

static void store_v1(void* infos, unsigned int i, struct fake_process p) {
  nvmlProcessInfo_v1_t* out = (nvmlProcessInfo_v1_t*)infos + i;
  out->pid = p.pid;
  out->usedGpuMemory = p.bytes;
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t device, unsigned int* count,
                                                  nvmlProcessInfo_v1_t* infos) {
  return processes("nvmlDeviceGetComputeRunningProcesses", device, count, infos, store_v1);
}

/* ---- The newer names, absent from a legacy build ------------------------------------------------------------ */

#ifndef FAKE_NVML_LEGACY

nvmlReturn_t nvmlDeviceGetCurrentClocksEventReasons(nvmlDevice_t device, unsigned long long* reasons) {
  return clocks_event_reasons("nvmlDeviceGetCurrentClocksEventReasons", device, reasons);
}

static void store_v3(void* infos, unsigned int i, struct fake_process p) {
  nvmlProcessInfo_t* out = (nvmlProcessInfo_t*)infos + i;
  out->pid = p.pid;
  out->usedGpuMemory = p.bytes;
  out->gpuInstanceId = 0xFFFFFFFFu; /* not MIG */
  out->computeInstanceId = 0xFFFFFFFFu;
}

nvmlReturn_t nvmlInit_v2(void) {
  return init("nvmlInit_v2");
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int* count) {
  return get_count("nvmlDeviceGetCount_v2", count);
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t* device) {
  return get_handle("nvmlDeviceGetHandleByIndex_v2", index, device);
}

nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t* memory) {
  const struct fake_device* d = NULL;
  nvmlReturn_t rc = check(device, memory, &d);
  if (rc != NVML_SUCCESS) {
    return logged("nvmlDeviceGetMemoryInfo_v2", rc);
  }
  if (memory->version != NVML_MEMORY_V2 || g_scenario == SC_NO_V2_MEMORY) {
    return logged("nvmlDeviceGetMemoryInfo_v2", NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
  }
  if (g_scenario == SC_NOT_SUPPORTED) {
    return logged("nvmlDeviceGetMemoryInfo_v2", NVML_ERROR_NOT_SUPPORTED);
  }
  const int unified = g_scenario == SC_UNIFIED;
  memory->total = unified ? 0 : k_total;
  memory->reserved = unified ? 0 : 256 * MIB;
  memory->used = unified ? 0 : k_used;
  memory->free = unified ? 0 : k_total - k_used;
  return logged("nvmlDeviceGetMemoryInfo_v2", NVML_SUCCESS);
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t device, unsigned int* count,
                                                     nvmlProcessInfo_t* infos) {
  return processes("nvmlDeviceGetComputeRunningProcesses_v2", device, count, infos, store_v3);
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device, unsigned int* count,
                                                     nvmlProcessInfo_t* infos) {
  return processes("nvmlDeviceGetComputeRunningProcesses_v3", device, count, infos, store_v3);
}

#endif
