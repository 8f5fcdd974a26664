/*
 * memhog - deterministic memory consumer used as PID 1 in memwarden test
 * containers.  Build: gcc -std=c11 -static -O2 -Wall -Wextra -Werror
 *
 *   memhog --mib N                      touch N MiB anon memory, then pause()
 *   memhog --mib N --step-mib S --step-ms MS
 *                                       reach N MiB in S MiB steps, MS ms apart
 *   memhog --forever [--step-mib S] [--step-ms MS]
 *                                       allocate S MiB steps forever (OOM bait)
 *   memhog --cache-mib M [--cache-file PATH]
 *                                       write+fsync+read back an M MiB file
 *
 * Output lines (stdout, flushed):
 *   memhog: cache_mib=M            after the page-cache file is in place
 *   memhog: progress anon_mib=X    after each step (step/forever mode only)
 *   memhog: ready anon_mib=N       once N MiB are resident (not in --forever)
 * Errors: one line "memhog: ..." on stderr; exit 2 for bad arguments,
 * exit 1 for runtime failures.  SIGTERM/SIGINT exit 0 immediately.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MIB ((size_t)1 << 20)
#define MAX_MIB ((uint64_t)1 << 20) /* 1 TiB: sanity cap, avoids overflow */
#define MAX_MS ((uint64_t)86400000) /* one day */
#define DEFAULT_CACHE_FILE "/tmp/memhog.cache"
#define DEFAULT_FOREVER_STEP_MIB 8

static void on_signal(int sig) {
  (void)sig;
  _exit(0); /* async-signal-safe; nothing to clean up */
}

static void usage(FILE* out) {
  fputs(
      "usage: memhog [--mib N] [--step-mib S] [--step-ms MS] [--forever]\n"
      "              [--cache-mib M] [--cache-file PATH] [--help]\n"
      "  --mib N          allocate and touch N MiB of anonymous memory (default 0)\n"
      "  --step-mib S     allocate in steps of S MiB instead of all at once\n"
      "  --step-ms MS     sleep MS milliseconds between steps (default 0)\n"
      "  --forever        keep allocating steps forever (default step 8 MiB);\n"
      "                   use under a memory limit to provoke an OOM kill\n"
      "  --cache-mib M    write an M MiB file, fsync it and read it back once,\n"
      "                   so it sits in page cache charged to this cgroup\n"
      "  --cache-file P   file for --cache-mib (default " DEFAULT_CACHE_FILE
      ")\n"
      "  --help           show this help\n"
      "Prints 'memhog: ready anon_mib=N' when done, then waits for SIGTERM/SIGINT.\n",
      out);
}

__attribute__((format(printf, 1, 2))) static int bad_arg(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("memhog: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputs(" (try --help)\n", stderr);
  va_end(ap);
  return 2;
}

/* Strict decimal parse: digits only, 0..max. */
static int parse_u64(const char* s, uint64_t max, uint64_t* out) {
  uint64_t v = 0;
  if (s == NULL || *s == '\0')
    return -1;
  for (const char* p = s; *p; p++) {
    if (*p < '0' || *p > '9')
      return -1;
    v = v * 10 + (uint64_t)(*p - '0');
    if (v > max)
      return -1;
  }
  *out = v;
  return 0;
}

static void sleep_ms(uint64_t ms) {
  struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* mmap and touch mib MiB; returns 0 or -1 (message printed). */
static int hog(uint64_t mib) {
  if (mib == 0)
    return 0;
  size_t len = (size_t)mib * MIB;
  unsigned char* p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    fprintf(stderr, "memhog: mmap of %llu MiB failed: %s\n", (unsigned long long)mib, strerror(errno));
    return -1;
  }
  long pg = sysconf(_SC_PAGESIZE);
  size_t step = pg > 0 ? (size_t)pg : 4096;
  for (size_t off = 0; off < len; off += step) ((volatile unsigned char*)p)[off] = 0xA5;
  return 0; /* intentionally never unmapped */
}

static int write_all(int fd, const unsigned char* buf, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, buf, n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    buf += w;
    n -= (size_t)w;
  }
  return 0;
}

static int make_cache(uint64_t mib, const char* path) {
  unsigned char* buf = malloc(MIB);
  if (buf == NULL) {
    fprintf(stderr, "memhog: out of memory for cache buffer\n");
    return -1;
  }
  memset(buf, 0x5A, MIB);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    fprintf(stderr, "memhog: cannot create %s: %s\n", path, strerror(errno));
    free(buf);
    return -1;
  }
  for (uint64_t i = 0; i < mib; i++) {
    if (write_all(fd, buf, MIB) != 0) {
      fprintf(stderr, "memhog: write to %s failed: %s\n", path, strerror(errno));
      close(fd);
      free(buf);
      return -1;
    }
  }
  if (fsync(fd) != 0 || close(fd) != 0) {
    fprintf(stderr, "memhog: fsync/close of %s failed: %s\n", path, strerror(errno));
    free(buf);
    return -1;
  }
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    fprintf(stderr, "memhog: cannot reopen %s: %s\n", path, strerror(errno));
    free(buf);
    return -1;
  }
  for (;;) {
    ssize_t r = read(fd, buf, MIB);
    if (r == 0)
      break;
    if (r < 0) {
      if (errno == EINTR)
        continue;
      fprintf(stderr, "memhog: read of %s failed: %s\n", path, strerror(errno));
      close(fd);
      free(buf);
      return -1;
    }
  }
  close(fd);
  free(buf);
  return 0;
}

int main(int argc, char** argv) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  uint64_t mib = 0, step_mib = 0, step_ms = 0, cache_mib = 0;
  int have_step_mib = 0, have_step_ms = 0, have_cache_mib = 0, forever = 0;
  const char* cache_file = NULL;

  for (int i = 1; i < argc; i++) {
    const char* a = argv[i];
    uint64_t *dst = NULL, max = MAX_MIB;
    int* flag = NULL;
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return 0;
    } else if (strcmp(a, "--forever") == 0) {
      forever = 1;
      continue;
    } else if (strcmp(a, "--cache-file") == 0) {
      if (i + 1 >= argc || argv[i + 1][0] == '\0')
        return bad_arg("%s needs a path", a);
      cache_file = argv[++i];
      continue;
    } else if (strcmp(a, "--mib") == 0) {
      dst = &mib;
    } else if (strcmp(a, "--step-mib") == 0) {
      dst = &step_mib;
      flag = &have_step_mib;
    } else if (strcmp(a, "--step-ms") == 0) {
      dst = &step_ms;
      flag = &have_step_ms;
      max = MAX_MS;
    } else if (strcmp(a, "--cache-mib") == 0) {
      dst = &cache_mib;
      flag = &have_cache_mib;
    } else {
      return bad_arg("unknown argument '%s'", a);
    }
    if (i + 1 >= argc)
      return bad_arg("%s needs a value", a);
    if (parse_u64(argv[i + 1], max, dst) != 0)
      return bad_arg("invalid value for %s: '%s'", a, argv[i + 1]);
    if (flag)
      *flag = 1;
    i++;
  }

  if (have_step_mib && step_mib == 0)
    return bad_arg("--step-mib must be > 0");
  if (have_step_ms && !have_step_mib && !forever)
    return bad_arg("--step-ms requires --step-mib or --forever");
  if (cache_file && !have_cache_mib)
    return bad_arg("--cache-file requires --cache-mib");
  if (forever && !have_step_mib)
    step_mib = DEFAULT_FOREVER_STEP_MIB;
  if (cache_file == NULL)
    cache_file = DEFAULT_CACHE_FILE;

  if (have_cache_mib && cache_mib > 0) {
    if (make_cache(cache_mib, cache_file) != 0)
      return 1;
    printf("memhog: cache_mib=%llu\n", (unsigned long long)cache_mib);
    fflush(stdout);
  }

  if (step_mib == 0) {
    if (hog(mib) != 0)
      return 1;
  } else {
    uint64_t done = 0;
    while (forever || done < mib) {
      uint64_t chunk = step_mib;
      if (!forever && mib - done < chunk)
        chunk = mib - done;
      if (hog(chunk) != 0)
        return 1;
      done += chunk;
      printf("memhog: progress anon_mib=%llu\n", (unsigned long long)done);
      fflush(stdout);
      if ((forever || done < mib) && step_ms > 0)
        sleep_ms(step_ms);
    }
  }
  printf("memhog: ready anon_mib=%llu\n", (unsigned long long)mib);
  fflush(stdout);
  for (;;) pause();
}
