/*
 * A fake libcuda.so.1 for `memwarden test vram`. It exports the CUDA driver entry points
 * src/adapters/cuda_driver.cpp resolves, with the signatures and CUresult codes of cuda.h, and really tracks
 * its allocations (a table of fake device pointers and sizes, rounded up to 2 MiB pages as the driver does), so
 * free memory drops with each cuMemAlloc and comes back with each cuMemFree, like a GPU. The primary context
 * takes FAKE_CUDA_CONTEXT_BYTES while it is retained. It is scripted by environment variables read at cuInit
 * (every cuInit starts over: no allocation, no context):
 *
 *   FAKE_CUDA_DEVICES      number of GPUs, 0..16 (default 1); cuInit with 0 returns 100 (NO_DEVICE)
 *   FAKE_CUDA_TOTAL        bytes per GPU (default 17179869184, 16 GiB)
 *   FAKE_CUDA_USED         bytes others already hold on each GPU (default 0)
 *   FAKE_CUDA_CONTEXT_BYTES  what the primary context takes (default 268435456, 256 MiB)
 *   FAKE_CUDA_INIT_CODE    if set and not 0, cuInit returns it (100 NO_DEVICE, 34 STUB_LIBRARY, 999 UNKNOWN)
 *   FAKE_CUDA_RETAIN_CODE  if set and not 0, cuDevicePrimaryCtxRetain returns it
 *   FAKE_CUDA_OOM_AT       the N-th cuMemAlloc (1-based) returns 2 (OUT_OF_MEMORY) whatever is free
 *   FAKE_CUDA_LOST_AT      the N-th cuMemsetD8 (1-based) loses the GPU: it and every later call (cuMemFree,
 *                          cuMemGetInfo, cuDevicePrimaryCtxRelease included) return FAKE_CUDA_LOST_CODE; the
 *                          allocations stay in the table (a lost GPU cannot be asked to free them)
 *   FAKE_CUDA_LOST_CODE    the sticky error of a lost GPU (default 46, DEVICE_UNAVAILABLE)
 *   FAKE_CUDA_MEMSET_MS    each cuMemsetD8 sleeps this many milliseconds (so a test can send Ctrl-C mid-test)
 *   FAKE_CUDA_NAME         GPU 0's name (default "NVIDIA GeForce RTX 5070 Ti"); GPU i > 0 "NVIDIA Fake GPU <i>"
 *   FAKE_CUDA_LOG          if set, a file to which each call appends one line: "<function> <args...> <code>",
 *                          e.g. "cuMemAlloc_v2 268435456 0x7f0000000000 0"; when the library is unloaded
 *                          (dlclose, or the process exits) a last line
 *                          "unload held=<allocations still held> contexts=<contexts still retained>"
 *
 * Calls before cuInit return 3 (NOT_INITIALIZED); memory calls without a current context 201 (INVALID_CONTEXT);
 * an unknown ordinal 101 (INVALID_DEVICE); an unknown pointer, a zero size or a memset past the allocation 1
 * (INVALID_VALUE). Only the _v2 names of the memory calls are exported, as a driver of CUDA 11 or later has them.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef struct CUctx_st* CUcontext;

#define CUDA_SUCCESS 0
#define CUDA_ERROR_INVALID_VALUE 1
#define CUDA_ERROR_OUT_OF_MEMORY 2
#define CUDA_ERROR_NOT_INITIALIZED 3
#define CUDA_ERROR_STUB_LIBRARY 34
#define CUDA_ERROR_DEVICE_UNAVAILABLE 46
#define CUDA_ERROR_NO_DEVICE 100
#define CUDA_ERROR_INVALID_DEVICE 101
#define CUDA_ERROR_INVALID_CONTEXT 201
#define CUDA_ERROR_ILLEGAL_ADDRESS 700
#define CUDA_ERROR_UNKNOWN 999

#define MAX_DEVICES 16
#define MAX_ALLOCATIONS 65536
#define PAGE (2ULL << 20)

struct allocation {
  CUdeviceptr pointer;
  unsigned long long bytes; /* rounded up to PAGE */
  unsigned long long asked;
  int device;
};

static struct {
  int initialised;
  int devices;
  unsigned long long total;
  unsigned long long used_by_others;
  unsigned long long context_bytes;
  CUresult retain_code;
  long oom_at;
  long lost_at;
  CUresult lost_code;
  long memset_ms;
  char name[128];
  char log[4096];

  int retained[MAX_DEVICES]; /* primary context reference counts */
  int current;               /* the device whose context is current, -1 none */
  int lost;
  long allocs;
  long memsets;
  CUdeviceptr next_pointer;
  struct allocation table[MAX_ALLOCATIONS];
  long held;
} g;

static unsigned long long env_u64(const char* name, unsigned long long fallback) {
  const char* v = getenv(name);
  if (v == NULL || *v == '\0') {
    return fallback;
  }
  return strtoull(v, NULL, 10);
}

static void trace(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
static void trace(const char* fmt, ...) {
  if (g.log[0] == '\0') {
    return;
  }
  FILE* f = fopen(g.log, "a");
  if (f == NULL) {
    return;
  }
  va_list ap;
  va_start(ap, fmt);
  vfprintf(f, fmt, ap);
  va_end(ap);
  fputc('\n', f);
  fclose(f);
}

/* When the library is unloaded (dlclose) or the process exits: what was never given back. */
__attribute__((destructor)) static void on_unload(void) {
  int contexts = 0;
  for (int i = 0; i < MAX_DEVICES; ++i) {
    contexts += g.retained[i];
  }
  trace("unload held=%ld contexts=%d", g.held, contexts);
}

static unsigned long long used_on(int device) {
  unsigned long long used = g.used_by_others + (g.retained[device] > 0 ? g.context_bytes : 0);
  for (long i = 0; i < g.held; ++i) {
    if (g.table[i].device == device) {
      used += g.table[i].bytes;
    }
  }
  return used;
}

static unsigned long long free_on(int device) {
  const unsigned long long used = used_on(device);
  return used >= g.total ? 0 : g.total - used;
}

/* The state every call but cuInit checks first: 0 to go on. */
static CUresult gate(void) {
  if (!g.initialised) {
    return CUDA_ERROR_NOT_INITIALIZED;
  }
  if (g.lost) {
    return g.lost_code;
  }
  return CUDA_SUCCESS;
}

static CUresult gate_context(void) {
  const CUresult rc = gate();
  if (rc != CUDA_SUCCESS) {
    return rc;
  }
  return g.current < 0 ? CUDA_ERROR_INVALID_CONTEXT : CUDA_SUCCESS;
}

CUresult cuInit(unsigned int flags) {
  memset(&g, 0, sizeof g);
  const char* log = getenv("FAKE_CUDA_LOG");
  if (log != NULL) {
    snprintf(g.log, sizeof g.log, "%s", log);
  }
  g.current = -1;
  g.devices = (int)env_u64("FAKE_CUDA_DEVICES", 1);
  if (g.devices > MAX_DEVICES) {
    g.devices = MAX_DEVICES;
  }
  g.total = env_u64("FAKE_CUDA_TOTAL", 16ULL << 30);
  g.used_by_others = env_u64("FAKE_CUDA_USED", 0);
  g.context_bytes = env_u64("FAKE_CUDA_CONTEXT_BYTES", 256ULL << 20);
  g.retain_code = (CUresult)env_u64("FAKE_CUDA_RETAIN_CODE", 0);
  g.oom_at = (long)env_u64("FAKE_CUDA_OOM_AT", 0);
  g.lost_at = (long)env_u64("FAKE_CUDA_LOST_AT", 0);
  g.lost_code = (CUresult)env_u64("FAKE_CUDA_LOST_CODE", CUDA_ERROR_DEVICE_UNAVAILABLE);
  g.memset_ms = (long)env_u64("FAKE_CUDA_MEMSET_MS", 0);
  const char* name = getenv("FAKE_CUDA_NAME");
  snprintf(g.name, sizeof g.name, "%s", name != NULL ? name : "NVIDIA GeForce RTX 5070 Ti");
  g.next_pointer = 0x7f0000000000ULL;
  CUresult rc = (CUresult)env_u64("FAKE_CUDA_INIT_CODE", 0);
  if (rc == CUDA_SUCCESS && g.devices == 0) {
    rc = CUDA_ERROR_NO_DEVICE;
  }
  g.initialised = rc == CUDA_SUCCESS && flags == 0;
  if (rc == CUDA_SUCCESS && flags != 0) {
    rc = CUDA_ERROR_INVALID_VALUE;
  }
  trace("cuInit %u %d", flags, rc);
  return rc;
}

CUresult cuDriverGetVersion(int* version) {
  if (version == NULL) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  *version = 12080;
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetCount(int* count) {
  CUresult rc = gate();
  if (rc == CUDA_SUCCESS && count == NULL) {
    rc = CUDA_ERROR_INVALID_VALUE;
  }
  if (rc == CUDA_SUCCESS) {
    *count = g.devices;
  }
  trace("cuDeviceGetCount %d", rc);
  return rc;
}

CUresult cuDeviceGet(CUdevice* device, int ordinal) {
  CUresult rc = gate();
  if (rc == CUDA_SUCCESS && device == NULL) {
    rc = CUDA_ERROR_INVALID_VALUE;
  } else if (rc == CUDA_SUCCESS && (ordinal < 0 || ordinal >= g.devices)) {
    rc = CUDA_ERROR_INVALID_DEVICE;
  }
  if (rc == CUDA_SUCCESS) {
    *device = ordinal;
  }
  trace("cuDeviceGet %d %d", ordinal, rc);
  return rc;
}

static CUresult check_device(CUdevice device) {
  const CUresult rc = gate();
  if (rc != CUDA_SUCCESS) {
    return rc;
  }
  return device < 0 || device >= g.devices ? CUDA_ERROR_INVALID_DEVICE : CUDA_SUCCESS;
}

CUresult cuDeviceGetName(char* name, int len, CUdevice device) {
  CUresult rc = check_device(device);
  if (rc == CUDA_SUCCESS && (name == NULL || len <= 0)) {
    rc = CUDA_ERROR_INVALID_VALUE;
  }
  if (rc == CUDA_SUCCESS) {
    if (device == 0) {
      snprintf(name, (size_t)len, "%s", g.name);
    } else {
      snprintf(name, (size_t)len, "NVIDIA Fake GPU %d", device);
    }
  }
  trace("cuDeviceGetName %d %d", device, rc);
  return rc;
}

CUresult cuDeviceGetPCIBusId(char* bus_id, int len, CUdevice device) {
  CUresult rc = check_device(device);
  if (rc == CUDA_SUCCESS && (bus_id == NULL || len < 13)) {
    rc = CUDA_ERROR_INVALID_VALUE;
  }
  if (rc == CUDA_SUCCESS) {
    snprintf(bus_id, (size_t)len, "0000:%02X:00.0", device + 1);
  }
  trace("cuDeviceGetPCIBusId %d %d", device, rc);
  return rc;
}

CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice device) {
  CUresult rc = check_device(device);
  if (rc == CUDA_SUCCESS && bytes == NULL) {
    rc = CUDA_ERROR_INVALID_VALUE;
  }
  if (rc == CUDA_SUCCESS) {
    *bytes = g.total;
  }
  trace("cuDeviceTotalMem_v2 %d %d", device, rc);
  return rc;
}

CUresult cuDevicePrimaryCtxRetain(CUcontext* context, CUdevice device) {
  CUresult rc = check_device(device);
  if (rc == CUDA_SUCCESS && context == NULL) {
    rc = CUDA_ERROR_INVALID_VALUE;
  }
  if (rc == CUDA_SUCCESS && g.retain_code != 0) {
    rc = g.retain_code;
  }
  if (rc == CUDA_SUCCESS && g.retained[device] == 0 && free_on(device) < g.context_bytes) {
    rc = CUDA_ERROR_OUT_OF_MEMORY;
  }
  if (rc == CUDA_SUCCESS) {
    ++g.retained[device];
    *context = (CUcontext)(uintptr_t)(0x1000 + device);
  }
  trace("cuDevicePrimaryCtxRetain %d %d", device, rc);
  return rc;
}

CUresult cuDevicePrimaryCtxRelease_v2(CUdevice device) {
  CUresult rc = check_device(device);
  if (rc == CUDA_SUCCESS && g.retained[device] == 0) {
    rc = CUDA_ERROR_INVALID_CONTEXT;
  }
  if (rc == CUDA_SUCCESS) {
    --g.retained[device];
    if (g.retained[device] == 0 && g.current == device) {
      g.current = -1;
    }
  }
  trace("cuDevicePrimaryCtxRelease_v2 %d %d", device, rc);
  return rc;
}

CUresult cuCtxSetCurrent(CUcontext context) {
  CUresult rc = gate();
  if (rc == CUDA_SUCCESS) {
    if (context == NULL) {
      g.current = -1;
    } else {
      const int device = (int)((uintptr_t)context - 0x1000);
      if (device < 0 || device >= g.devices || g.retained[device] == 0) {
        rc = CUDA_ERROR_INVALID_CONTEXT;
      } else {
        g.current = device;
      }
    }
  }
  trace("cuCtxSetCurrent %d", rc);
  return rc;
}

CUresult cuCtxSynchronize(void) {
  const CUresult rc = gate_context();
  trace("cuCtxSynchronize %d", rc);
  return rc;
}

CUresult cuMemGetInfo_v2(size_t* free, size_t* total) {
  CUresult rc = gate_context();
  if (rc == CUDA_SUCCESS && (free == NULL || total == NULL)) {
    rc = CUDA_ERROR_INVALID_VALUE;
  }
  if (rc == CUDA_SUCCESS) {
    *free = free_on(g.current);
    *total = g.total;
    trace("cuMemGetInfo_v2 %llu %llu %d", (unsigned long long)*free, (unsigned long long)*total, rc);
  } else {
    trace("cuMemGetInfo_v2 - - %d", rc);
  }
  return rc;
}

CUresult cuMemAlloc_v2(CUdeviceptr* pointer, size_t bytes) {
  CUresult rc = gate_context();
  if (rc == CUDA_SUCCESS && (pointer == NULL || bytes == 0)) {
    rc = CUDA_ERROR_INVALID_VALUE;
  }
  const unsigned long long rounded = (bytes + PAGE - 1) / PAGE * PAGE;
  if (rc == CUDA_SUCCESS) {
    ++g.allocs;
    if ((g.oom_at > 0 && g.allocs == g.oom_at) || rounded > free_on(g.current) || g.held >= MAX_ALLOCATIONS) {
      rc = CUDA_ERROR_OUT_OF_MEMORY;
    }
  }
  if (rc == CUDA_SUCCESS) {
    struct allocation* a = &g.table[g.held++];
    a->pointer = g.next_pointer;
    a->bytes = rounded;
    a->asked = bytes;
    a->device = g.current;
    g.next_pointer += rounded;
    *pointer = a->pointer;
    trace("cuMemAlloc_v2 %zu 0x%llx %d", bytes, a->pointer, rc);
  } else {
    trace("cuMemAlloc_v2 %zu - %d", bytes, rc);
  }
  return rc;
}

static long find(CUdeviceptr pointer) {
  for (long i = 0; i < g.held; ++i) {
    if (g.table[i].pointer == pointer) {
      return i;
    }
  }
  return -1;
}

CUresult cuMemsetD8_v2(CUdeviceptr pointer, unsigned char value, size_t count) {
  CUresult rc = gate_context();
  if (rc == CUDA_SUCCESS) {
    ++g.memsets;
    if (g.lost_at > 0 && g.memsets == g.lost_at) {
      g.lost = 1;
      rc = g.lost_code;
    }
  }
  if (rc == CUDA_SUCCESS) {
    const long i = find(pointer);
    if (i < 0 || count > g.table[i].asked) {
      rc = CUDA_ERROR_INVALID_VALUE;
    }
  }
  if (rc == CUDA_SUCCESS && g.memset_ms > 0) {
    struct timespec left = {g.memset_ms / 1000, (g.memset_ms % 1000) * 1000000L};
    while (nanosleep(&left, &left) != 0 && errno == EINTR) {
    }
  }
  trace("cuMemsetD8_v2 0x%llx %u %zu %d", pointer, (unsigned)value, count, rc);
  return rc;
}

CUresult cuMemFree_v2(CUdeviceptr pointer) {
  CUresult rc = gate_context();
  long i = -1;
  if (rc == CUDA_SUCCESS) {
    i = find(pointer);
    if (i < 0) {
      rc = CUDA_ERROR_INVALID_VALUE;
    }
  }
  if (rc == CUDA_SUCCESS) {
    g.table[i] = g.table[--g.held];
  }
  trace("cuMemFree_v2 0x%llx %d", pointer, rc);
  return rc;
}

static const char* error_name(CUresult code) {
  switch (code) {
    case CUDA_SUCCESS:
      return "CUDA_SUCCESS";
    case CUDA_ERROR_INVALID_VALUE:
      return "CUDA_ERROR_INVALID_VALUE";
    case CUDA_ERROR_OUT_OF_MEMORY:
      return "CUDA_ERROR_OUT_OF_MEMORY";
    case CUDA_ERROR_NOT_INITIALIZED:
      return "CUDA_ERROR_NOT_INITIALIZED";
    case CUDA_ERROR_STUB_LIBRARY:
      return "CUDA_ERROR_STUB_LIBRARY";
    case CUDA_ERROR_DEVICE_UNAVAILABLE:
      return "CUDA_ERROR_DEVICE_UNAVAILABLE";
    case CUDA_ERROR_NO_DEVICE:
      return "CUDA_ERROR_NO_DEVICE";
    case CUDA_ERROR_INVALID_DEVICE:
      return "CUDA_ERROR_INVALID_DEVICE";
    case CUDA_ERROR_INVALID_CONTEXT:
      return "CUDA_ERROR_INVALID_CONTEXT";
    case CUDA_ERROR_ILLEGAL_ADDRESS:
      return "CUDA_ERROR_ILLEGAL_ADDRESS";
    case CUDA_ERROR_UNKNOWN:
      return "CUDA_ERROR_UNKNOWN";
    default:
      return NULL;
  }
}

static const char* error_string(CUresult code) {
  switch (code) {
    case CUDA_SUCCESS:
      return "no error";
    case CUDA_ERROR_INVALID_VALUE:
      return "invalid argument";
    case CUDA_ERROR_OUT_OF_MEMORY:
      return "out of memory";
    case CUDA_ERROR_NOT_INITIALIZED:
      return "initialization error";
    case CUDA_ERROR_STUB_LIBRARY:
      return "CUDA driver is a stub library";
    case CUDA_ERROR_DEVICE_UNAVAILABLE:
      return "CUDA-capable device(s) is/are busy or unavailable";
    case CUDA_ERROR_NO_DEVICE:
      return "no CUDA-capable device is detected";
    case CUDA_ERROR_INVALID_DEVICE:
      return "invalid device ordinal";
    case CUDA_ERROR_INVALID_CONTEXT:
      return "invalid device context";
    case CUDA_ERROR_ILLEGAL_ADDRESS:
      return "an illegal memory access was encountered";
    case CUDA_ERROR_UNKNOWN:
      return "unknown error";
    default:
      return NULL;
  }
}

CUresult cuGetErrorName(CUresult code, const char** text) {
  if (text == NULL) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  *text = error_name(code);
  return *text != NULL ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult cuGetErrorString(CUresult code, const char** text) {
  if (text == NULL) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  *text = error_string(code);
  return *text != NULL ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}
