/* memwarden-alloc: the allocation behind `memwarden test ram` (issue 14). Statically linked, so that
 * memwarden can put it into an image of its own (docker import) and run it inside the same kind of memory
 * limit a model server gets.
 *
 *   memwarden-alloc SIZE [--chunk BYTES] [--reserve BYTES] [--psi-full-max PERCENT] [--hold-ms MS] [--proc DIR]
 *
 * Allocates SIZE bytes in chunks (256 MiB by default) and writes every page (MADV_POPULATE_WRITE where the
 * kernel has it, else one write per page). Before every chunk it checks the host (the same rules as
 * core/ram_test.cpp's check_floor): MemAvailable must stay above the reserve after the chunk, nothing may
 * have been swapped in or out since the start (/proc/vmstat pswpin, pswpout), PSI full avg10 must stay under the
 * threshold; an unreadable MemAvailable or pswpin stops it too. It runs with oom_score_adj 1000, so the
 * kernel kills it first. With --hold-ms it then holds the whole size for that long, checking the floor (no
 * next chunk) every 250 ms. With the last chunk held it reads the host once more (the peak), then frees
 * everything and prints one JSON line:
 *   {"size":N,"reached":N,"seconds":S,"held_seconds":S,"min_available":N,"swap_in_pages":N,"swap_out_pages":N,
 *    "psi_full_peak":P,"stop":"reached"}
 * ("min_available" and "psi_full_peak" are null when unknown). Exit 0 when the size was reached, 3 when the
 * floor stopped it, 4 when an allocation failed, 5 when interrupted, 2 on a bad command line. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define MAX_CHUNKS 65536 /* 16 TiB of 256 MiB chunks: nothing is unbounded */

static volatile sig_atomic_t g_stop_signal = 0;
static void on_signal(int sig) {
  g_stop_signal = sig;
}

struct gauge {
  int has_available, has_pswpin, has_pswpout, has_psi;
  uint64_t available, pswpin, pswpout;
  double psi_full;
};

/* Reads at most 64 KiB of DIR/NAME into buf; 0 on success. */
static int read_small(const char* dir, const char* name, char* buf, size_t cap) {
  char path[4096];
  if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
    return -1;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  size_t n = 0;
  while (n + 1 < cap) {
    ssize_t r = read(fd, buf + n, cap - 1 - n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    n += (size_t)r;
  }
  close(fd);
  buf[n] = '\0';
  return 0;
}

/* "KEY <spaces> NUMBER" at a line start. */
static int find_number(const char* text, const char* key, uint64_t* out) {
  size_t klen = strlen(key);
  for (const char* p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
    if (strncmp(p, key, klen) == 0 && (p[klen] == ' ' || p[klen] == ':' || p[klen] == '\t')) {
      const char* q = p + klen;
      while (*q == ' ' || *q == ':' || *q == '\t') q++;
      if (*q < '0' || *q > '9')
        return -1;
      char* end = NULL;
      errno = 0;
      unsigned long long v = strtoull(q, &end, 10);
      if (errno != 0 || end == q)
        return -1;
      *out = (uint64_t)v;
      return 0;
    }
  }
  return -1;
}

static void read_gauge(const char* proc, struct gauge* g) {
  static char buf[65536];
  memset(g, 0, sizeof *g);
  uint64_t kb = 0;
  if (read_small(proc, "meminfo", buf, sizeof buf) == 0 && find_number(buf, "MemAvailable", &kb) == 0 &&
      kb <= UINT64_MAX / 1024) {
    g->available = kb * 1024;
    g->has_available = 1;
  }
  if (read_small(proc, "vmstat", buf, sizeof buf) == 0) {
    g->has_pswpin = find_number(buf, "pswpin", &g->pswpin) == 0;
    g->has_pswpout = find_number(buf, "pswpout", &g->pswpout) == 0;
  }
  if (read_small(proc, "pressure/memory", buf, sizeof buf) == 0) {
    const char* full = strstr(buf, "full avg10=");
    if (full) {
      char* end = NULL;
      double v = strtod(full + 11, &end);
      if (end != full + 11 && v >= 0 && v <= 100) {
        g->psi_full = v;
        g->has_psi = 1;
      }
    }
  }
}

/* The same rules as core/ram_test.cpp check_floor; NULL to go on. */
static const char* check_floor(uint64_t reserve, double psi_max, const struct gauge* base, const struct gauge* now,
                               uint64_t next) {
  if (!now->has_available || !now->has_pswpin || !base->has_pswpin)
    return "unreadable";
  if (now->pswpin > base->pswpin)
    return "swap-in";
  if (now->has_pswpout && base->has_pswpout && now->pswpout > base->pswpout)
    return "swap-out";
  if (now->has_psi && now->psi_full > psi_max)
    return "pressure";
  if (now->available < reserve || now->available - reserve < next)
    return "reserve";
  return NULL;
}

/* The lowest MemAvailable and the highest PSI full seen so far. */
struct extremes {
  int has_min, has_psi;
  uint64_t min_available;
  double psi_peak;
};

static void note_extremes(const struct gauge* g, struct extremes* e) {
  if (g->has_available && (!e->has_min || g->available < e->min_available)) {
    e->min_available = g->available;
    e->has_min = 1;
  }
  if (g->has_psi && (!e->has_psi || g->psi_full > e->psi_peak)) {
    e->psi_peak = g->psi_full;
    e->has_psi = 1;
  }
}

static int parse_u64(const char* s, uint64_t* out) {
  if (!s || *s < '0' || *s > '9')
    return -1;
  char* end = NULL;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0')
    return -1;
  *out = (uint64_t)v;
  return 0;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(const char* why) {
  fprintf(stderr,
          "memwarden-alloc: %s\nusage: memwarden-alloc SIZE_BYTES [--chunk BYTES] [--reserve BYTES] "
          "[--psi-full-max PERCENT] [--hold-ms MS] [--proc DIR]\n",
          why);
  exit(2);
}

int main(int argc, char** argv) {
  uint64_t size = 0, chunk = 256ULL << 20, reserve = 4ULL << 30;
  uint64_t hold_ms = 0;
  double psi_max = 10.0;
  const char* proc = "/proc";
  if (argc < 2 || parse_u64(argv[1], &size) != 0 || size == 0)
    usage("SIZE must be a whole number of bytes above 0");
  for (int i = 2; i < argc; i++) {
    if (i + 1 >= argc)
      usage("an option needs a value");
    const char* v = argv[++i];
    if (strcmp(argv[i - 1], "--chunk") == 0) {
      if (parse_u64(v, &chunk) != 0 || chunk < 4096 || chunk > (1ULL << 34))
        usage("--chunk: 4096 to 16 GiB");
    } else if (strcmp(argv[i - 1], "--reserve") == 0) {
      if (parse_u64(v, &reserve) != 0)
        usage("--reserve: bytes");
    } else if (strcmp(argv[i - 1], "--psi-full-max") == 0) {
      char* end = NULL;
      psi_max = strtod(v, &end);
      if (end == v || *end != '\0' || !(psi_max >= 0 && psi_max <= 100))
        usage("--psi-full-max: 0 to 100");
    } else if (strcmp(argv[i - 1], "--hold-ms") == 0) {
      if (parse_u64(v, &hold_ms) != 0 || hold_ms > 86400000ULL)
        usage("--hold-ms: 0 to 86400000 (a day)");
    } else if (strcmp(argv[i - 1], "--proc") == 0) {
      proc = v;
    } else {
      usage("unknown option");
    }
  }
  if (size / chunk >= MAX_CHUNKS)
    usage("SIZE is more than 65536 chunks");

  /* The kernel's first choice when memory runs out; raising it needs no privilege. */
  int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
  if (fd >= 0) {
    if (write(fd, "1000", 4) != 4) { /* not fatal: the floor still holds */
    }
    close(fd);
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);

  static void* chunks[MAX_CHUNKS];
  static uint64_t lengths[MAX_CHUNKS];
  size_t n_chunks = 0;
  uint64_t reached = 0;
  struct gauge base, now;
  read_gauge(proc, &base);
  struct extremes seen = {0, 0, 0, 0};
  note_extremes(&base, &seen);
  const char* stop = NULL;
  long page = sysconf(_SC_PAGESIZE);
  if (page <= 0)
    page = 4096;
  double start = now_s();
  while (reached < size) {
    if (g_stop_signal) {
      stop = "interrupted";
      break;
    }
    uint64_t next = size - reached < chunk ? size - reached : chunk;
    read_gauge(proc, &now);
    note_extremes(&now, &seen);
    stop = check_floor(reserve, psi_max, &base, &now, next);
    if (stop)
      break;
    void* p = mmap(NULL, (size_t)next, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
      stop = "allocation-failed";
      break;
    }
    chunks[n_chunks] = p;
    lengths[n_chunks++] = next;
    if (madvise(p, (size_t)next, MADV_POPULATE_WRITE) != 0) {
      if (errno == EINVAL) { /* before Linux 5.14: write every page */
        for (uint64_t off = 0; off < next; off += (uint64_t)page) ((volatile char*)p)[off] = 1;
      } else if (errno == EINTR && g_stop_signal) {
        stop = "interrupted";
        break;
      } else {
        stop = "allocation-failed";
        break;
      }
    }
    reached += next;
  }
  double seconds = now_s() - start;
  /* --hold-ms: the whole size stays held, and the floor is still checked (a signal ends the sleep at once). */
  double held_start = now_s();
  if (!stop && hold_ms > 0) {
    double until = held_start + (double)hold_ms / 1000.0;
    for (;;) {
      if (g_stop_signal) {
        stop = "interrupted";
        break;
      }
      double left = until - now_s();
      if (left <= 0)
        break;
      read_gauge(proc, &now);
      note_extremes(&now, &seen);
      stop = check_floor(reserve, psi_max, &base, &now, 0);
      if (stop)
        break;
      double step = left < 0.25 ? left : 0.25;
      struct timespec ts = {(time_t)step, (long)((step - (double)(time_t)step) * 1e9)};
      nanosleep(&ts, NULL);
    }
  }
  double held = now_s() - held_start;
  /* The host at the peak, with everything still held: the lowest MemAvailable, the highest pressure, and
   * whether the last chunk made the host swap. */
  read_gauge(proc, &now);
  note_extremes(&now, &seen);
  uint64_t swapped_in = (base.has_pswpin && now.has_pswpin && now.pswpin > base.pswpin) ? now.pswpin - base.pswpin : 0;
  uint64_t swapped_out =
      (base.has_pswpout && now.has_pswpout && now.pswpout > base.pswpout) ? now.pswpout - base.pswpout : 0;
  if (!stop) /* held to the end: the host at the peak must still have kept the floor */
    stop = swapped_in > 0                                   ? "swap-in"
           : swapped_out > 0                                ? "swap-out"
           : (now.has_available && now.available < reserve) ? "reserve"
           : (now.has_psi && now.psi_full > psi_max)        ? "pressure"
                                                            : "reached";
  /* Free at once, before anything else. */
  for (size_t i = 0; i < n_chunks; i++) munmap(chunks[i], (size_t)lengths[i]);
  char min_text[32], psi_text[32];
  if (seen.has_min)
    snprintf(min_text, sizeof min_text, "%" PRIu64, seen.min_available);
  else
    strcpy(min_text, "null");
  if (seen.has_psi)
    snprintf(psi_text, sizeof psi_text, "%.2f", seen.psi_peak);
  else
    strcpy(psi_text, "null");
  printf("{\"size\":%" PRIu64 ",\"reached\":%" PRIu64
         ",\"seconds\":%.3f,\"held_seconds\":%.3f,\"min_available\":%s,"
         "\"swap_in_pages\":%" PRIu64 ",\"swap_out_pages\":%" PRIu64 ",\"psi_full_peak\":%s,\"stop\":\"%s\"}\n",
         size, reached, seconds, held, min_text, swapped_in, swapped_out, psi_text, stop);
  fflush(stdout);
  if (strcmp(stop, "reached") == 0)
    return 0;
  if (strcmp(stop, "allocation-failed") == 0)
    return 4;
  if (strcmp(stop, "interrupted") == 0)
    return 5;
  return 3;
}
