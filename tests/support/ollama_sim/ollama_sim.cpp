// ollama-sim: a faithful-enough Ollama HTTP API simulator that holds real memory.
//
// Build (fully static, no third-party libraries):
//   g++ -std=c++20 -O2 -static -Wall -Wextra -Werror -pthread -o ollama-sim ollama_sim.cpp
//
// One single-threaded poll(2) loop serves HTTP/1.1 (keep-alive, pipelining, Content-Length and
// chunked request bodies, Expect: 100-continue).  Loading a model forks a "runner" child that
// re-executes this binary as `<argv0> runner --model <blob> ... --port N` (comm "ollama"), which
// allocates and touches the model's CPU-resident share of anonymous memory and then waits.
// Unloading kills and reaps it.  Fault modes leak/retain/orphan/cache real memory so that a
// memory watchdog sees exactly what it would see with a misbehaving Ollama.
// See README.md next to this file for flags, endpoints and log lines.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <climits>
#include <cmath>
#include <csignal>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <string>
#include <string_view>
#include <vector>

extern char** environ;

namespace {

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kMaxMiB = 1ull << 20;  // 1 TiB sanity cap for every *_MIB flag
constexpr size_t kMaxHeaderBytes = 64 * 1024;
constexpr size_t kMaxBodyBytes = 32 * 1024 * 1024;
constexpr size_t kMaxPipelinedBytes = 1024 * 1024;
constexpr size_t kMaxConns = 512;
constexpr int kMaxJsonDepth = 128;
constexpr size_t kMaxJsonNodes = 200000;
constexpr size_t kChunkThreshold = 2048;  // Go's net/http: bigger un-flushed bodies go chunked
constexpr int64_t kForeverNs = INT64_MAX;
constexpr int kMaxPredict = 32768;  // cap on options.num_predict / max_tokens

// ------------------------------------------------------------------------------------------------
// Options
// ------------------------------------------------------------------------------------------------

struct ModelSpec {
  std::string name;
  uint64_t size_mib = 0;
  uint64_t vram_mib = 0;
};

struct Options {
  std::string listen_host = "127.0.0.1";
  int listen_port = 11434;
  std::vector<ModelSpec> models;
  std::string version = "0.11.4-sim";
  int context_length = 4096;
  bool no_context_length = false;
  int64_t keep_alive_ns = 5LL * 60 * 1000000000LL;
  bool keep_alive_forever = false;
  uint64_t max_loaded = 3;
  uint64_t leak_per_request_mib = 0;
  uint64_t runner_cache_per_request_mib = 0;
  double leak_per_second_mib = 0;
  bool leak_always = false;
  uint64_t retain_after_unload_mib = 0;
  uint64_t bloat_at_start_mib = 0;
  bool orphan_runner = false;
  uint64_t orphan_mib = 0;
  bool orphan_mib_set = false;
  std::string cache_file;
  uint64_t cache_mib = 0;
  bool cache_mib_set = false;
  uint64_t slow_ms = 0;
  uint64_t request_timeout_ms = 10000;
  uint64_t idle_timeout_ms = 120000;
  uint64_t load_timeout_ms = 300000;
  std::string runner_argv0 = "/usr/bin/ollama";
  bool no_chunked = false;
  bool request_log = true;
  uint64_t ps_flood = 0;           // fake entries appended to /api/ps, names repeating every 100
  uint64_t ttft_ms = 0;            // --ttft-ms: first token this long after the model is ready
  double tokens_per_second = 0;    // --tokens-per-second: 0 = every token at once
  int64_t fail_stream_after = -1;  // --fail-stream-after N: an error in place of line N+1
  int64_t drop_stream_after = -1;  // --drop-stream-after N: close in place of line N+1
};

Options g_opt;

// ------------------------------------------------------------------------------------------------
// Small utilities: time, logging, errors
// ------------------------------------------------------------------------------------------------

int64_t mono_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

int64_t mono_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

struct RealTime {
  int64_t sec = 0;
  int64_t nsec = 0;
};

RealTime real_now() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return {static_cast<int64_t>(ts.tv_sec), static_cast<int64_t>(ts.tv_nsec)};
}

RealTime real_add_ns(RealTime t, int64_t ns) {
  t.sec += ns / 1000000000LL;
  t.nsec += ns % 1000000000LL;
  if (t.nsec >= 1000000000LL) {
    t.sec += 1;
    t.nsec -= 1000000000LL;
  }
  return t;
}

// RFC3339 with nanoseconds (trailing zeros trimmed, like Go's RFC3339Nano), in UTC.
std::string rfc3339(RealTime t) {
  time_t secs = static_cast<time_t>(t.sec);
  tm tmv{};
  if (gmtime_r(&secs, &tmv) == nullptr) {
    return "1970-01-01T00:00:00Z";
  }
  char buf[80];
  int n = snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d", tmv.tm_year + 1900, tmv.tm_mon + 1, tmv.tm_mday,
                   tmv.tm_hour, tmv.tm_min, tmv.tm_sec);
  std::string out(buf, static_cast<size_t>(n > 0 ? n : 0));
  if (t.nsec > 0) {
    char frac[24];
    snprintf(frac, sizeof frac, "%09lld", static_cast<long long>(t.nsec));
    std::string f(frac);
    while (!f.empty() && f.back() == '0') {
      f.pop_back();
    }
    out += '.';
    out += f;
  }
  out += 'Z';
  return out;
}

std::string http_date() {
  time_t secs = time(nullptr);
  tm tmv{};
  gmtime_r(&secs, &tmv);
  static const char* const kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char* const kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  char buf[64];
  snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[tmv.tm_wday % 7], tmv.tm_mday,
           kMonths[tmv.tm_mon % 12], tmv.tm_year + 1900, tmv.tm_hour, tmv.tm_min, tmv.tm_sec);
  return buf;
}

void write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) {
        continue;
      }
      return;  // stdout gone: logging is best effort
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

// One event line on stdout: "ollama-sim: <text> t=<monotonic ms>\n", written with one write(2).
__attribute__((format(printf, 1, 2))) void log_event(const char* fmt, ...) {
  char buf[1536];
  const size_t reserve = 40;  // room for " t=..." and the newline
  size_t len = static_cast<size_t>(snprintf(buf, sizeof buf, "ollama-sim: "));
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(buf + len, sizeof buf - len - reserve, fmt, ap);
  va_end(ap);
  if (m > 0) {
    len += std::min(static_cast<size_t>(m), sizeof buf - len - reserve - 1);
  }
  len += static_cast<size_t>(snprintf(buf + len, sizeof buf - len, " t=%lld\n", static_cast<long long>(mono_ms())));
  write_all(1, buf, len);
}

[[noreturn]] __attribute__((format(printf, 2, 3))) void die(int code, const char* fmt, ...) {
  char buf[1024];
  size_t len = static_cast<size_t>(snprintf(buf, sizeof buf, "ollama-sim: "));
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(buf + len, sizeof buf - len - 2, fmt, ap);
  va_end(ap);
  if (m > 0) {
    len += std::min(static_cast<size_t>(m), sizeof buf - len - 2);
  }
  buf[len++] = '\n';
  write_all(2, buf, len);
  _exit(code);
}

// Printable, bounded copy of untrusted text for log lines.
std::string sanitize(std::string_view s, size_t max = 200) {
  std::string out;
  for (char c : s.substr(0, std::min(s.size(), max))) {
    unsigned char u = static_cast<unsigned char>(c);
    out += (u < 0x21 || u > 0x7e) ? '?' : c;
  }
  if (s.size() > max) {
    out += "...";
  }
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z')
      x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z')
      y = static_cast<char>(y - 'A' + 'a');
    if (x != y) {
      return false;
    }
  }
  return true;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z')
      c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) --e;
  return std::string(s.substr(b, e - b));
}

// Strict unsigned decimal: digits only, no sign, no overflow, <= max.
bool parse_u64(std::string_view s, uint64_t max, uint64_t& out) {
  if (s.empty() || s.size() > 20) {
    return false;
  }
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') {
      return false;
    }
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) {
      return false;
    }
    v = v * 10 + d;
  }
  if (v > max) {
    return false;
  }
  out = v;
  return true;
}

// Non-negative decimal like "12" or "0.5".
bool parse_decimal(std::string_view s, double max, double& out) {
  if (s.empty() || s.size() > 32) {
    return false;
  }
  int dots = 0, digits = 0;
  for (char c : s) {
    if (c == '.') {
      ++dots;
    } else if (c >= '0' && c <= '9') {
      ++digits;
    } else {
      return false;
    }
  }
  if (dots > 1 || digits == 0) {
    return false;
  }
  std::string tmp(s);
  double v = strtod(tmp.c_str(), nullptr);
  if (!std::isfinite(v) || v < 0 || v > max) {
    return false;
  }
  out = v;
  return true;
}

// Go's time.ParseDuration: [-+]?([0-9]*(\.[0-9]*)?[a-z]+)+ or "0".  Saturates never: overflow fails.
bool parse_go_duration(std::string_view s, int64_t& ns, bool& negative) {
  negative = false;
  if (s.empty()) {
    return false;
  }
  if (s[0] == '-' || s[0] == '+') {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0") {
    ns = 0;
    return true;
  }
  if (s.empty()) {
    return false;
  }
  long double total = 0;
  while (!s.empty()) {
    long double v = 0;
    bool any = false;
    size_t i = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      v = v * 10 + (s[i] - '0');
      any = true;
      ++i;
    }
    if (i < s.size() && s[i] == '.') {
      ++i;
      long double scale = 0.1L;
      while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
        v += (s[i] - '0') * scale;
        scale /= 10;
        any = true;
        ++i;
      }
    }
    if (!any) {
      return false;
    }
    s.remove_prefix(i);
    size_t u = 0;
    while (u < s.size() && s[u] != '.' && (s[u] < '0' || s[u] > '9')) ++u;
    std::string_view unit = s.substr(0, u);
    s.remove_prefix(u);
    long double mult = 0;
    if (unit == "ns")
      mult = 1;
    else if (unit == "us" || unit == "\xc2\xb5s" || unit == "\xce\xbcs")
      mult = 1e3L;
    else if (unit == "ms")
      mult = 1e6L;
    else if (unit == "s")
      mult = 1e9L;
    else if (unit == "m")
      mult = 60e9L;
    else if (unit == "h")
      mult = 3600e9L;
    else
      return false;
    total += v * mult;
    if (total > static_cast<long double>(INT64_MAX)) {
      return false;
    }
  }
  ns = static_cast<int64_t>(total);
  return true;
}

// keep_alive text: a Go duration, or (leniently) a plain number of seconds.  Negative = forever.
bool parse_keep_alive_text(std::string_view s, int64_t& ns, bool& forever) {
  bool neg = false;
  int64_t v = 0;
  forever = false;
  if (parse_go_duration(s, v, neg)) {
    if (neg && v != 0) {
      forever = true;
      ns = kForeverNs;
    } else {
      ns = v;
    }
    return true;
  }
  std::string_view t = s;
  neg = false;
  if (!t.empty() && (t[0] == '-' || t[0] == '+')) {
    neg = t[0] == '-';
    t.remove_prefix(1);
  }
  double secs = 0;
  if (!parse_decimal(t, 9.2e9, secs)) {
    return false;
  }
  if (neg && secs > 0) {
    forever = true;
    ns = kForeverNs;
  } else {
    ns = static_cast<int64_t>(secs * 1e9);
  }
  return true;
}

// ------------------------------------------------------------------------------------------------
// SHA-256 (for deterministic digests derived from model names)
// ------------------------------------------------------------------------------------------------

std::string sha256_hex(std::string_view data) {
  static const uint32_t k[64] = {
      0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
      0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
      0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
      0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
      0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
      0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
      0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
      0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
  uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  std::string msg(data);
  uint64_t bitlen = static_cast<uint64_t>(data.size()) * 8;
  msg += static_cast<char>(0x80);
  while (msg.size() % 64 != 56) {
    msg += '\0';
  }
  for (int i = 7; i >= 0; --i) {
    msg += static_cast<char>((bitlen >> (i * 8)) & 0xff);
  }
  auto rotr = [](uint32_t x, int n) { return (x >> n) | (x << (32 - n)); };
  for (size_t off = 0; off < msg.size(); off += 64) {
    uint32_t w[64];
    for (int i = 0; i < 16; ++i) {
      const auto* p = reinterpret_cast<const unsigned char*>(msg.data() + off + i * 4);
      w[i] = (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
    }
    for (int i = 16; i < 64; ++i) {
      uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; ++i) {
      uint32_t S1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
      uint32_t ch = (e & f) ^ (~e & g);
      uint32_t t1 = hh + S1 + ch + k[i] + w[i];
      uint32_t S0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
      uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
      uint32_t t2 = S0 + maj;
      hh = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += hh;
  }
  char out[65];
  for (int i = 0; i < 8; ++i) {
    snprintf(out + i * 8, 9, "%08x", h[i]);
  }
  return std::string(out, 64);
}

// ------------------------------------------------------------------------------------------------
// JSON: a small strict parser (RFC 8259) and output helpers
// ------------------------------------------------------------------------------------------------

struct JVal {
  enum class T : uint8_t { Null, Bool, Num, Str, Arr, Obj };
  T t = T::Null;
  bool b = false;
  double num = 0;
  std::string s;
  std::vector<JVal> items;        // array elements, or object values
  std::vector<std::string> keys;  // object keys, parallel to items

  // Object member lookup like Go's encoding/json: last exact match, else case-insensitive match.
  const JVal* get(std::string_view key) const {
    if (t != T::Obj) {
      return nullptr;
    }
    const JVal* exact = nullptr;
    const JVal* folded = nullptr;
    for (size_t i = 0; i < keys.size(); ++i) {
      if (keys[i] == key) {
        exact = &items[i];
      } else if (iequals(keys[i], key)) {
        folded = &items[i];
      }
    }
    return exact != nullptr ? exact : folded;
  }
};

void put_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

class JsonParser {
 public:
  explicit JsonParser(std::string_view text) : begin_(text.data()), p_(text.data()), e_(text.data() + text.size()) {}

  bool parse(JVal& out, std::string& err) {
    ws();
    bool ok = value(out, 0);
    if (ok) {
      ws();
      if (p_ != e_) {
        ok = fail("invalid character after top-level value");
      }
    }
    if (!ok) {
      err = err_;
    }
    return ok;
  }

 private:
  const char* begin_;
  const char* p_;
  const char* e_;
  std::string err_;
  size_t nodes_ = 0;

  bool fail(const char* what) {
    if (err_.empty()) {
      err_ = std::string(what) + " at offset " + std::to_string(p_ - begin_);
    }
    return false;
  }
  void ws() {
    while (p_ < e_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }
  bool literal(std::string_view w) {
    if (static_cast<size_t>(e_ - p_) < w.size() || std::string_view(p_, w.size()) != w) {
      return fail("invalid literal");
    }
    p_ += w.size();
    return true;
  }
  bool value(JVal& v, int depth) {
    if (++nodes_ > kMaxJsonNodes)
      return fail("too many JSON values");
    if (depth > kMaxJsonDepth)
      return fail("JSON nested too deeply");
    if (p_ >= e_)
      return fail("unexpected end of JSON input");
    switch (*p_) {
      case '{':
        return object(v, depth);
      case '[':
        return array(v, depth);
      case '"':
        v.t = JVal::T::Str;
        return string(v.s);
      case 't':
        v.t = JVal::T::Bool;
        v.b = true;
        return literal("true");
      case 'f':
        v.t = JVal::T::Bool;
        v.b = false;
        return literal("false");
      case 'n':
        v.t = JVal::T::Null;
        return literal("null");
      default:
        if (*p_ == '-' || (*p_ >= '0' && *p_ <= '9'))
          return number(v);
        return fail("invalid character looking for beginning of value");
    }
  }
  bool object(JVal& v, int depth) {
    v.t = JVal::T::Obj;
    ++p_;
    ws();
    if (p_ < e_ && *p_ == '}') {
      ++p_;
      return true;
    }
    for (;;) {
      ws();
      if (p_ >= e_ || *p_ != '"')
        return fail("expected string object key");
      std::string key;
      if (!string(key))
        return false;
      ws();
      if (p_ >= e_ || *p_ != ':')
        return fail("expected ':' after object key");
      ++p_;
      ws();
      v.keys.push_back(std::move(key));
      v.items.emplace_back();
      if (!value(v.items.back(), depth + 1))
        return false;
      ws();
      if (p_ >= e_)
        return fail("unexpected end of JSON input");
      if (*p_ == ',') {
        ++p_;
        continue;
      }
      if (*p_ == '}') {
        ++p_;
        return true;
      }
      return fail("expected ',' or '}' in object");
    }
  }
  bool array(JVal& v, int depth) {
    v.t = JVal::T::Arr;
    ++p_;
    ws();
    if (p_ < e_ && *p_ == ']') {
      ++p_;
      return true;
    }
    for (;;) {
      ws();
      v.items.emplace_back();
      if (!value(v.items.back(), depth + 1))
        return false;
      ws();
      if (p_ >= e_)
        return fail("unexpected end of JSON input");
      if (*p_ == ',') {
        ++p_;
        continue;
      }
      if (*p_ == ']') {
        ++p_;
        return true;
      }
      return fail("expected ',' or ']' in array");
    }
  }
  int hex4() {
    if (e_ - p_ < 4)
      return -1;
    int v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = p_[i];
      int d = (c >= '0' && c <= '9')   ? c - '0'
              : (c >= 'a' && c <= 'f') ? c - 'a' + 10
              : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                       : -1;
      if (d < 0)
        return -1;
      v = v * 16 + d;
    }
    p_ += 4;
    return v;
  }
  bool string(std::string& out) {
    ++p_;  // opening quote
    for (;;) {
      if (p_ >= e_)
        return fail("unterminated string");
      unsigned char c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        ++p_;
        return true;
      }
      if (c < 0x20)
        return fail("control character in string");
      if (c != '\\') {
        out += static_cast<char>(c);
        ++p_;
        continue;
      }
      ++p_;
      if (p_ >= e_)
        return fail("unterminated string");
      char esc = *p_++;
      switch (esc) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          int cp = hex4();
          if (cp < 0)
            return fail("invalid \\u escape");
          uint32_t code = static_cast<uint32_t>(cp);
          if (code >= 0xd800 && code <= 0xdbff) {
            if (e_ - p_ >= 6 && p_[0] == '\\' && p_[1] == 'u') {
              const char* save = p_;
              p_ += 2;
              int lo = hex4();
              if (lo >= 0xdc00 && lo <= 0xdfff) {
                code = 0x10000 + ((code - 0xd800) << 10) + (static_cast<uint32_t>(lo) - 0xdc00);
              } else {
                p_ = save;
                code = 0xfffd;
              }
            } else {
              code = 0xfffd;
            }
          } else if (code >= 0xdc00 && code <= 0xdfff) {
            code = 0xfffd;
          }
          put_utf8(out, code);
          break;
        }
        default:
          return fail("invalid escape in string");
      }
    }
  }
  bool number(JVal& v) {
    const char* start = p_;
    if (*p_ == '-')
      ++p_;
    if (p_ >= e_)
      return fail("invalid number");
    if (*p_ == '0') {
      ++p_;
    } else if (*p_ >= '1' && *p_ <= '9') {
      while (p_ < e_ && *p_ >= '0' && *p_ <= '9') ++p_;
    } else {
      return fail("invalid number");
    }
    if (p_ < e_ && *p_ == '.') {
      ++p_;
      if (p_ >= e_ || *p_ < '0' || *p_ > '9')
        return fail("invalid number");
      while (p_ < e_ && *p_ >= '0' && *p_ <= '9') ++p_;
    }
    if (p_ < e_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      if (p_ < e_ && (*p_ == '+' || *p_ == '-'))
        ++p_;
      if (p_ >= e_ || *p_ < '0' || *p_ > '9')
        return fail("invalid number");
      while (p_ < e_ && *p_ >= '0' && *p_ <= '9') ++p_;
    }
    std::string tmp(start, static_cast<size_t>(p_ - start));
    v.t = JVal::T::Num;
    v.num = strtod(tmp.c_str(), nullptr);
    return true;
  }
};

// JSON string literal; invalid UTF-8 becomes U+FFFD (like Go), control characters are escaped.
void jstr(std::string& o, std::string_view s) {
  o += '"';
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"':
          o += "\\\"";
          break;
        case '\\':
          o += "\\\\";
          break;
        case '\n':
          o += "\\n";
          break;
        case '\r':
          o += "\\r";
          break;
        case '\t':
          o += "\\t";
          break;
        default:
          if (c < 0x20) {
            char buf[8];
            snprintf(buf, sizeof buf, "\\u%04x", c);
            o += buf;
          } else {
            o += static_cast<char>(c);
          }
      }
      ++i;
      continue;
    }
    size_t len = (c >= 0xc2 && c <= 0xdf) ? 2 : (c >= 0xe0 && c <= 0xef) ? 3 : (c >= 0xf0 && c <= 0xf4) ? 4 : 0;
    bool ok = len > 0 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k) {
      ok = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
    }
    if (ok && len == 3) {
      unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
      ok = !(c == 0xe0 && c1 < 0xa0) && !(c == 0xed && c1 >= 0xa0);
    }
    if (ok && len == 4) {
      unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
      ok = !(c == 0xf0 && c1 < 0x90) && !(c == 0xf4 && c1 >= 0x90);
    }
    if (ok) {
      o.append(s.substr(i, len));
      i += len;
    } else {
      o += "\\ufffd";
      ++i;
    }
  }
  o += '"';
}

std::string jquote(std::string_view s) {
  std::string o;
  jstr(o, s);
  return o;
}

std::string error_json(std::string_view msg) {
  return "{\"error\":" + jquote(msg) + "}";
}

// ------------------------------------------------------------------------------------------------
// Memory helpers
// ------------------------------------------------------------------------------------------------

size_t page_size() {
  static size_t ps = [] {
    long v = sysconf(_SC_PAGESIZE);
    return v > 0 ? static_cast<size_t>(v) : size_t{4096};
  }();
  return ps;
}

// Maps `bytes` of private anonymous memory and writes to every page (in 64 MiB pieces, each
// pre-faulted with MAP_POPULATE, which is about twice as fast as faulting page by page).  Never
// freed by callers that want a leak.  `check` (optional) runs between pieces so long touches
// stay interruptible.  Returns false when a piece cannot be mapped.
bool alloc_touched(uint64_t bytes, void (*check)() = nullptr) {
  const uint64_t piece = 64 * kMiB;
  const size_t ps = page_size();
  for (uint64_t done = 0; done < bytes;) {
    uint64_t n = std::min(piece, bytes - done);
    void* p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED) {
      return false;
    }
    volatile unsigned char* q = static_cast<volatile unsigned char*>(p);
    for (uint64_t off = 0; off < n; off += ps) {
      q[off] = static_cast<unsigned char>(((off / ps) & 0x7f) | 1);
    }
    done += n;
    if (check != nullptr) {
      check();
    }
  }
  return true;
}

// ------------------------------------------------------------------------------------------------
// Runner child process
// ------------------------------------------------------------------------------------------------

char* g_argv_area = nullptr;  // original argv strings (contiguous), for the no-exec fallback
size_t g_argv_area_len = 0;
std::string g_self_exe;

// Serves `grow N` lines from the server on `cmd_fd` (--runner-cache-per-request-mib): maps and
// touches N more MiB that are never freed, then acknowledges with one byte on `ack_fd` ('G', or
// 'F' when the memory could not be mapped).  Returns when the server closes the command pipe.
void runner_serve_commands(int cmd_fd, int ack_fd) {
  std::string buf;
  char tmp[512];
  for (;;) {
    ssize_t r = read(cmd_fd, tmp, sizeof tmp);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return;
    buf.append(tmp, static_cast<size_t>(r));
    for (size_t nl = buf.find('\n'); nl != std::string::npos; nl = buf.find('\n')) {
      std::string line = buf.substr(0, nl);
      buf.erase(0, nl + 1);
      uint64_t mib = 0;
      if (line.rfind("grow ", 0) != 0 || !parse_u64(std::string_view(line).substr(5), kMaxMiB, mib))
        continue;
      char ack = alloc_touched(mib * kMiB) ? 'G' : 'F';
      ssize_t w = write(ack_fd, &ack, 1);
      (void)w;
    }
  }
}

[[noreturn]] void runner_body(uint64_t anon_mib, int ready_fd, int cmd_fd) {
  if (!alloc_touched(anon_mib * kMiB)) {
    const char msg[] = "ollama-sim runner: cannot allocate model memory\n";
    write_all(2, msg, sizeof msg - 1);
    _exit(1);
  }
  if (ready_fd >= 0) {
    char r = 'R';
    ssize_t w = write(ready_fd, &r, 1);
    (void)w;
  }
  if (cmd_fd >= 0 && ready_fd >= 0) {
    signal(SIGPIPE, SIG_IGN);  // an orphaned runner must outlive the server's end of the pipes
    runner_serve_commands(cmd_fd, ready_fd);
  }
  if (cmd_fd >= 0)
    close(cmd_fd);
  if (ready_fd >= 0)
    close(ready_fd);
  for (;;) {
    pause();
  }
}

// Entry point when re-executed as `<argv0> runner ...` with OLLAMA_SIM_RUNNER=1.
[[noreturn]] void runner_main() {
  prctl(PR_SET_NAME, "ollama", 0, 0, 0);
  uint64_t parent = 0, mib = 0, fd = 0, cfd = 0;
  const char* ps = getenv("OLLAMA_SIM_PARENT_PID");
  const char* ms = getenv("OLLAMA_SIM_ANON_MIB");
  const char* fs = getenv("OLLAMA_SIM_READY_FD");
  const char* cs = getenv("OLLAMA_SIM_CMD_FD");
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (ps != nullptr && parse_u64(ps, INT_MAX, parent) && static_cast<uint64_t>(getppid()) != parent) {
    _exit(0);  // the server died before we got here
  }
  if (ms == nullptr || !parse_u64(ms, kMaxMiB, mib))
    mib = 0;
  int ready = (fs != nullptr && parse_u64(fs, 65535, fd)) ? static_cast<int>(fd) : -1;
  int cmd = (cs != nullptr && parse_u64(cs, 65535, cfd)) ? static_cast<int>(cfd) : -1;
  runner_body(mib, ready, cmd);
}

// Rewrites our own argv area (fallback when exec of /proc/self/exe is impossible).
void set_proc_title(const std::vector<std::string>& args) {
  if (g_argv_area == nullptr || g_argv_area_len == 0) {
    return;
  }
  size_t pos = 0;
  for (const auto& a : args) {
    if (pos + a.size() + 1 > g_argv_area_len) {
      break;
    }
    memcpy(g_argv_area + pos, a.data(), a.size());
    pos += a.size();
    g_argv_area[pos++] = '\0';
  }
  memset(g_argv_area + pos, 0, g_argv_area_len - pos);
}

struct Spawned {
  pid_t pid = -1;
  int ready_fd = -1;  // runner -> server: 'R' when loaded, then one ack byte per command
  int cmd_fd = -1;    // server -> runner: "grow N" lines (only with `with_cmd`)
};

// `with_cmd` gives the runner a command pipe on fd 4 and keeps its ready pipe (fd 3) open for acks.
bool spawn_runner(const std::string& blob, uint64_t anon_mib, int ctx, int ngl, int port, bool with_cmd, Spawned& out,
                  std::string& err) {
  int p[2];
  int q[2] = {-1, -1};
  if (pipe2(p, O_CLOEXEC) != 0) {
    err = std::string("pipe: ") + strerror(errno);
    return false;
  }
  if (with_cmd && pipe2(q, O_CLOEXEC) != 0) {
    err = std::string("pipe: ") + strerror(errno);
    close(p[0]);
    close(p[1]);
    return false;
  }
  std::vector<std::string> args = {g_opt.runner_argv0, "runner",
                                   "--model",          blob,
                                   "--ctx-size",       std::to_string(ctx),
                                   "--batch-size",     "512",
                                   "--n-gpu-layers",   std::to_string(ngl),
                                   "--threads",        "2",
                                   "--parallel",       "1",
                                   "--port",           std::to_string(port)};
  std::vector<std::string> envs;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    if (strncmp(*e, "OLLAMA_SIM_", 11) != 0)
      envs.emplace_back(*e);
  }
  pid_t parent = getpid();
  envs.push_back("OLLAMA_SIM_RUNNER=1");
  envs.push_back("OLLAMA_SIM_ANON_MIB=" + std::to_string(anon_mib));
  envs.push_back("OLLAMA_SIM_READY_FD=3");
  if (with_cmd)
    envs.push_back("OLLAMA_SIM_CMD_FD=4");
  envs.push_back("OLLAMA_SIM_PARENT_PID=" + std::to_string(parent));
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : envs) envp.push_back(e.data());
  envp.push_back(nullptr);

  pid_t pid = fork();
  if (pid < 0) {
    err = std::string("fork: ") + strerror(errno);
    close(p[0]);
    close(p[1]);
    if (with_cmd) {
      close(q[0]);
      close(q[1]);
    }
    return false;
  }
  if (pid == 0) {
    // Child: only async-signal-safe work until exec (we are single-threaded anyway).
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int s : {SIGPIPE, SIGTERM, SIGINT, SIGCHLD, SIGHUP, SIGQUIT}) signal(s, SIG_DFL);
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (getppid() != parent)
      _exit(0);
    if (with_cmd) {
      // Move both ends above 4 first, so that dup2 to 3 and 4 can't clobber either of them.
      int a = fcntl(p[1], F_DUPFD, 5), b = fcntl(q[0], F_DUPFD, 5);
      if (a < 0 || b < 0 || dup2(a, 3) < 0 || dup2(b, 4) < 0)
        _exit(127);
    } else if (p[1] != 3) {
      if (dup2(p[1], 3) < 0)
        _exit(127);
    } else {
      fcntl(3, F_SETFD, 0);
    }
    if (!g_self_exe.empty()) {
      execve(g_self_exe.c_str(), argv.data(), envp.data());
    }
    // Fallback: become the runner in-process; drop every inherited descriptor above 3 (or 4).
    const unsigned first_extra = with_cmd ? 5U : 4U;
    if (syscall(SYS_close_range, first_extra, ~0U, 0U) != 0) {
      for (int fd = static_cast<int>(first_extra); fd < 4096; ++fd) close(fd);
    }
    prctl(PR_SET_NAME, "ollama", 0, 0, 0);
    set_proc_title(args);
    runner_body(anon_mib, 3, with_cmd ? 4 : -1);
  }
  close(p[1]);
  fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
  out.pid = pid;
  out.ready_fd = p[0];
  if (with_cmd) {
    close(q[0]);
    fcntl(q[1], F_SETFL, fcntl(q[1], F_GETFL) | O_NONBLOCK);
    out.cmd_fd = q[1];
  }
  return true;
}

// SIGKILL and reap synchronously (bounded), so the memory is gone when we answer.
void kill_and_reap(pid_t pid) {
  if (pid <= 0) {
    return;
  }
  kill(pid, SIGKILL);
  for (int i = 0; i < 5000; ++i) {
    int st = 0;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) {
      return;
    }
    timespec ts{0, 1000000};
    nanosleep(&ts, nullptr);
  }
}

// ------------------------------------------------------------------------------------------------
// Models
// ------------------------------------------------------------------------------------------------

struct Arch {
  int blocks, embedding, heads, heads_kv, ff;
};

struct Model {
  std::string name;
  uint64_t size_mib = 0, vram_mib = 0;
  std::string digest, blob;
  uint64_t params = 0;
  enum class St { Unloaded, Loading, Loaded } st = St::Unloaded;
  pid_t pid = -1;
  int ready_fd = -1;                    // while loading; with --runner-cache-per-request-mib also the ack pipe
  int cmd_fd = -1;                      // --runner-cache-per-request-mib: "grow N" commands to the runner
  uint64_t cache_mib = 0;               // prompt-cache MiB the runner has confirmed
  std::vector<uint64_t> cache_waiters;  // connection ids waiting for a grow ack, in command order
  int64_t load_start_ns = 0, load_deadline_ms = 0, last_load_ns = 0;
  bool forever = false;
  int64_t expires_ms = 0;   // monotonic
  RealTime expires_real{};  // for /api/ps
  int ctx = 4096;
  std::vector<uint64_t> waiters;  // connection ids waiting for the load

  uint64_t anon_mib() const { return size_mib - vram_mib; }
  Arch arch() const {
    if (params < 2000000000ull)
      return {16, 2048, 32, 8, 8192};
    if (params < 5000000000ull)
      return {28, 3072, 24, 8, 8192};
    if (params < 20000000000ull)
      return {32, 4096, 32, 8, 14336};
    if (params < 40000000000ull)
      return {48, 8192, 64, 8, 22016};
    return {80, 8192, 64, 8, 28672};
  }
};

struct Orphan {
  pid_t pid;
  uint64_t mib;
};

std::vector<Model> g_models;
std::vector<Orphan> g_orphans;
RealTime g_start_real{};

std::string normalize_name(std::string_view n) {
  std::string s(n);
  size_t slash = s.rfind('/');
  size_t colon = s.rfind(':');
  if (colon == std::string::npos || (slash != std::string::npos && colon < slash)) {
    s += ":latest";
  }
  return s;
}

int find_model(std::string_view requested) {
  std::string want = normalize_name(requested);
  for (size_t i = 0; i < g_models.size(); ++i) {
    if (iequals(g_models[i].name, want))
      return static_cast<int>(i);
  }
  return -1;
}

// Parameter count: from a tag like "8b", "0.5b", "135m" (up to the first '-'), else from the size
// assuming ~4.85 bits per weight (Q4_K_M).
uint64_t guess_params(const std::string& name, uint64_t size_mib) {
  size_t colon = name.rfind(':');
  if (colon != std::string::npos) {
    std::string tag = lower(name.substr(colon + 1));
    tag = tag.substr(0, tag.find('-'));
    if (tag.size() >= 2 && (tag.back() == 'b' || tag.back() == 'm')) {
      double v = 0;
      if (parse_decimal(std::string_view(tag).substr(0, tag.size() - 1), 1e6, v) && v > 0) {
        return static_cast<uint64_t>(v * (tag.back() == 'b' ? 1e9 : 1e6));
      }
    }
  }
  uint64_t p = static_cast<uint64_t>(static_cast<double>(size_mib * kMiB) * 8.0 / 4.85);
  return p > 0 ? p : 1000000;
}

std::string param_size_text(uint64_t params) {
  char buf[32];
  if (params >= 1000000000ull) {
    snprintf(buf, sizeof buf, "%.1fB", static_cast<double>(params) / 1e9);
  } else if (params >= 1000000ull) {
    snprintf(buf, sizeof buf, "%.2fM", static_cast<double>(params) / 1e6);
  } else {
    snprintf(buf, sizeof buf, "%.0fK", static_cast<double>(params) / 1e3);
  }
  return buf;
}

std::string details_json(const Model& m) {
  return "{\"parent_model\":\"\",\"format\":\"gguf\",\"family\":\"llama\",\"families\":[\"llama\"],"
         "\"parameter_size\":" +
         jquote(param_size_text(m.params)) + ",\"quantization_level\":\"Q4_K_M\"}";
}

size_t loaded_count() {
  size_t n = 0;
  for (const auto& m : g_models) n += m.st == Model::St::Loaded ? 1 : 0;
  return n;
}

// ------------------------------------------------------------------------------------------------
// Fault-mode memory in the server process
// ------------------------------------------------------------------------------------------------

uint64_t g_leaked_bytes = 0;
double g_leak_owed = 0;
int64_t g_leak_last_tick_ms = -1;
int64_t g_leak_last_log_ms = 0;
uint64_t g_leak_last_logged_mib = 0;
bool g_retained = false;

void leak_bytes(uint64_t bytes) {
  if (bytes == 0)
    return;
  if (!alloc_touched(bytes)) {
    log_event("leak failed bytes=%" PRIu64 " error=%s", bytes, strerror(errno));
    return;
  }
  g_leaked_bytes += bytes;
}

void log_leak_total() {
  g_leak_last_logged_mib = g_leaked_bytes / kMiB;
  g_leak_last_log_ms = mono_ms();
  log_event("leaked total_mib=%" PRIu64, g_leaked_bytes / kMiB);
}

void maybe_retain() {
  if (g_opt.retain_after_unload_mib == 0 || g_retained || loaded_count() != 0)
    return;
  for (const auto& m : g_models) {
    if (m.st == Model::St::Loading)
      return;
  }
  g_retained = true;
  if (!alloc_touched(g_opt.retain_after_unload_mib * kMiB)) {
    log_event("retain failed mib=%" PRIu64 " error=%s", g_opt.retain_after_unload_mib, strerror(errno));
    return;
  }
  log_event("retained_after_unload mib=%" PRIu64, g_opt.retain_after_unload_mib);
}

void leak_tick(int64_t now) {
  bool active = g_opt.leak_per_second_mib > 0 && (g_opt.leak_always || loaded_count() > 0);
  if (!active) {
    g_leak_last_tick_ms = -1;
    return;
  }
  if (g_leak_last_tick_ms < 0) {
    g_leak_last_tick_ms = now;
    return;
  }
  int64_t dt = now - g_leak_last_tick_ms;
  if (dt < 100)
    return;
  g_leak_last_tick_ms = now;
  dt = std::min<int64_t>(dt, 1000);
  g_leak_owed += g_opt.leak_per_second_mib * static_cast<double>(kMiB) * static_cast<double>(dt) / 1000.0;
  const double ps = static_cast<double>(page_size());
  uint64_t pages = static_cast<uint64_t>(g_leak_owed / ps);
  if (pages > 0) {
    uint64_t bytes = pages * page_size();
    g_leak_owed -= static_cast<double>(bytes);
    leak_bytes(bytes);
  }
  if (g_leaked_bytes / kMiB != g_leak_last_logged_mib && now - g_leak_last_log_ms >= 1000) {
    log_leak_total();
  }
}

// ------------------------------------------------------------------------------------------------
// HTTP connections
// ------------------------------------------------------------------------------------------------

struct Request {
  std::string method, path, target;
  bool http10 = false;
  bool head = false;
  bool close = false;
  std::string body;
};

struct Resp {
  int status = 200;
  std::string ctype = "application/json; charset=utf-8";
  std::string body;                // non-streamed body
  std::vector<std::string> parts;  // streamed NDJSON lines (chunked)
  bool stream = false;
};

struct GenJob {
  bool chat = false;
  bool stream = true;
  bool input_empty = true;
  int model = -1;
  bool ka_set = false;
  bool ka_forever = false;
  int64_t ka_ns = 0;
  int prompt_tokens = 0;
  bool triggered_load = false;
  bool cache_done = false;     // the runner confirmed this request's prompt-cache growth
  bool openai = false;         // POST /v1/chat/completions (chat is true as well)
  int num_predict = 0;         // options.num_predict / max_tokens (1..kMaxPredict); 0 = the default reply
  bool include_usage = false;  // OpenAI stream_options.include_usage
};

// A completion being sent token by token (--ttft-ms, --tokens-per-second), timed by the poll loop.
struct StreamState {
  int total = 0;                        // token lines to send
  int sent = 0;                         // token lines sent so far
  bool length = false;                  // done_reason "length" (num_predict/max_tokens) rather than "stop"
  bool buffered = false;                // one answer at the end: stream:false, HTTP/1.0 or --no-chunked
  bool head_sent = false;               // the status line and headers went out (with the first line)
  bool close = false;                   // Connection: close was announced
  int64_t req_start_ns = 0;             // the request arrived
  int64_t ready_ns = 0;                 // the model was ready for this request (after any load)
  int64_t interval_ns = 0;              // 1/R
  int64_t next_ns = 0;                  // when the next line is due
  int64_t first_ns = -1, last_ns = -1;  // first and last token line sent
  int64_t load_ns = 0;                  // load_duration
  std::string text;                     // the content so far (for buffered answers)
  std::string id;                       // OpenAI chatcmpl-N
  int64_t created = 0;                  // OpenAI created (unix seconds)
};

struct ParseState {
  bool hdr_done = false;
  size_t pos = 0;  // offset into Conn::in
  Request req;
  bool chunked = false;
  uint64_t content_length = 0;
  bool expect_continue = false;
  bool sent_continue = false;
  enum class C { Size, Data, DataEnd, Trailer } cst = C::Size;
  uint64_t chunk_left = 0;
};

struct Conn {
  uint64_t id = 0;
  int fd = -1;
  std::string in;
  std::string out;
  size_t out_off = 0;
  enum class St { Reading, WaitLoad, WaitRunner, Delayed, Streaming, Draining } st = St::Reading;
  bool dead = false;
  bool peer_eof = false;
  bool close_after = false;  // close once `out` is drained
  int64_t first_byte_ms = -1;
  int64_t last_active_ms = 0;
  int64_t last_write_ms = 0;
  int64_t req_start_ms = 0;
  int64_t req_start_ns = 0;
  int64_t drain_deadline_ms = 0;
  ParseState ps;
  // the request being answered
  Request cur;
  GenJob job;
  StreamState sj;
  // a finished answer waiting for --slow-ms
  std::string pending;
  bool pending_close = false;
  int64_t send_at_ms = 0;
};

std::map<uint64_t, Conn> g_conns;
uint64_t g_next_conn_id = 1;

void flush(Conn& c) {
  while (!c.dead && c.out_off < c.out.size()) {
    ssize_t w = send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
    if (w > 0) {
      c.out_off += static_cast<size_t>(w);
      c.last_write_ms = mono_ms();
      continue;
    }
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return;
    c.dead = true;
    return;
  }
  if (c.out_off >= c.out.size()) {
    c.out.clear();
    c.out_off = 0;
    if (c.close_after && c.st != Conn::St::Draining && !c.dead) {
      // Half-close and keep reading for a moment, so unread client data can't turn into an RST
      // that destroys the answer in flight (like Go's closeWriteAndWait).
      shutdown(c.fd, SHUT_WR);
      c.st = Conn::St::Draining;
      c.drain_deadline_ms = mono_ms() + 1000;
      if (c.peer_eof)
        c.dead = true;
    }
  }
}

void queue_out(Conn& c, const std::string& data) {
  if (c.out.empty())
    c.last_write_ms = mono_ms();
  c.out += data;
  flush(c);
}

const char* status_text(int s) {
  switch (s) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 408:
      return "Request Timeout";
    case 413:
      return "Request Entity Too Large";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

std::string render(const Resp& r, bool head, bool http10, bool close) {
  std::string body;
  if (r.stream) {
    for (const auto& p : r.parts) body += p;
  } else {
    body = r.body;
  }
  bool chunked = !http10 && !g_opt.no_chunked && (r.stream || body.size() >= kChunkThreshold);
  std::string o = "HTTP/1.1 " + std::to_string(r.status) + " " + status_text(r.status) + "\r\n";
  o += "Content-Type: " + r.ctype + "\r\n";
  o += "Date: " + http_date() + "\r\n";
  if (chunked) {
    o += "Transfer-Encoding: chunked\r\n";
  } else {
    o += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  if (close) {
    o += "Connection: close\r\n";
  } else if (http10) {
    o += "Connection: keep-alive\r\n";
  }
  o += "\r\n";
  if (head)
    return o;
  if (!chunked) {
    o += body;
    return o;
  }
  auto chunk = [&o](const std::string& part) {
    if (part.empty())
      return;
    char hex[32];
    snprintf(hex, sizeof hex, "%zx\r\n", part.size());
    o += hex;
    o += part;
    o += "\r\n";
  };
  if (r.stream) {
    for (const auto& p : r.parts) chunk(p);
  } else {
    chunk(body);
  }
  o += "0\r\n\r\n";
  return o;
}

void progress(Conn& c);

void deliver(Conn& c) {
  std::string data = std::move(c.pending);
  c.pending.clear();
  if (c.pending_close) {
    c.close_after = true;
  }
  c.st = Conn::St::Reading;
  queue_out(c, data);
}

// Finishes the current request with `r` (after --slow-ms, counted from the request's arrival).
void respond(Conn& c, const Resp& r) {
  bool close = c.cur.close || c.peer_eof;
  c.pending = render(r, c.cur.head, c.cur.http10, close);
  c.pending_close = close;
  c.send_at_ms = c.req_start_ms + static_cast<int64_t>(g_opt.slow_ms);
  c.st = Conn::St::Delayed;
  if (g_opt.request_log) {
    log_event("request %s %s status=%d", sanitize(c.cur.method, 16).c_str(), sanitize(c.cur.target).c_str(), r.status);
  }
  if (mono_ms() >= c.send_at_ms) {
    deliver(c);
  }
}

Resp json_resp(int status, std::string body) {
  Resp r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

Resp text_resp(int status, std::string body) {
  Resp r;
  r.status = status;
  r.ctype = "text/plain; charset=utf-8";
  r.body = std::move(body);
  return r;
}

// An error body of Ollama's OpenAI-compatible endpoints (openai.NewError): the type follows the status.
std::string openai_error_json(int status, std::string_view msg) {
  const char* type = status == 400 ? "invalid_request_error" : status == 404 ? "not_found_error" : "api_error";
  return "{\"error\":{\"message\":" + jquote(msg) + ",\"type\":\"" + type + "\",\"param\":null,\"code\":null}}";
}

// An error answer in the shape of the API the request used.
Resp job_error(const GenJob& job, int status, const std::string& msg) {
  return json_resp(status, job.openai ? openai_error_json(status, msg) : error_json(msg));
}

// Protocol-level error: answer and close the connection.
void protocol_error(Conn& c, int status, const std::string& msg) {
  c.cur = Request{};
  c.cur.method = "-";
  c.cur.target = "-";
  c.cur.close = true;
  c.req_start_ms = mono_ms();
  c.in.clear();
  c.ps = ParseState{};
  respond(c, json_resp(status, error_json(msg)));
}

// ---- request parsing (incremental) -------------------------------------------------------------

enum class PR { Incomplete, Complete, Error };

PR parse_head(Conn& c, int& status, std::string& msg) {
  ParseState& ps = c.ps;
  std::string_view in(c.in);
  // Skip leading empty lines (RFC 9112 §2.2).
  size_t start = 0;
  while (start < in.size() && (in[start] == '\r' || in[start] == '\n')) ++start;
  if (start > 0) {
    c.in.erase(0, start);
    in = c.in;
  }
  size_t end = std::string_view::npos, hdr_len = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '\n')
      continue;
    if (i + 1 < in.size() && in[i + 1] == '\n') {
      end = i;
      hdr_len = i + 2;
      break;
    }
    if (i + 2 < in.size() && in[i + 1] == '\r' && in[i + 2] == '\n') {
      end = i;
      hdr_len = i + 3;
      break;
    }
  }
  if (end == std::string_view::npos) {
    if (in.size() > kMaxHeaderBytes) {
      status = 431;
      msg = "request headers too large";
      return PR::Error;
    }
    return PR::Incomplete;
  }
  if (hdr_len > kMaxHeaderBytes) {
    status = 431;
    msg = "request headers too large";
    return PR::Error;
  }
  std::vector<std::string_view> lines;
  {
    std::string_view block = in.substr(0, end + 1);
    size_t p = 0;
    while (p < block.size()) {
      size_t nl = block.find('\n', p);
      if (nl == std::string_view::npos)
        nl = block.size();
      std::string_view line = block.substr(p, nl - p);
      if (!line.empty() && line.back() == '\r')
        line.remove_suffix(1);
      lines.push_back(line);
      p = nl + 1;
    }
  }
  status = 400;
  if (lines.empty()) {
    msg = "malformed request line";
    return PR::Error;
  }
  // Request line.
  std::string_view rl = lines[0];
  size_t sp1 = rl.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : rl.find(' ', sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos ||
      rl.find(' ', sp2 + 1) != std::string_view::npos) {
    msg = "malformed request line";
    return PR::Error;
  }
  Request& rq = ps.req;
  rq = Request{};
  rq.method = std::string(rl.substr(0, sp1));
  rq.target = std::string(rl.substr(sp1 + 1, sp2 - sp1 - 1));
  std::string_view ver = rl.substr(sp2 + 1);
  if (rq.method.empty() || rq.target.empty()) {
    msg = "malformed request line";
    return PR::Error;
  }
  for (char ch : rq.method) {
    if (ch < 'A' || ch > 'Z') {
      msg = "malformed method";
      return PR::Error;
    }
  }
  if (ver == "HTTP/1.1") {
    rq.http10 = false;
  } else if (ver == "HTTP/1.0") {
    rq.http10 = true;
  } else if (ver.starts_with("HTTP/")) {
    status = 505;
    msg = "unsupported HTTP version";
    return PR::Error;
  } else {
    msg = "malformed HTTP version";
    return PR::Error;
  }
  std::string_view path = rq.target;
  if (path.starts_with("http://") || path.starts_with("https://")) {
    size_t s = path.find('/', path.find("//") + 2);
    path = s == std::string_view::npos ? std::string_view("/") : path.substr(s);
  }
  path = path.substr(0, path.find_first_of("?#"));
  rq.path = std::string(path);
  rq.head = rq.method == "HEAD";
  rq.close = rq.http10;

  bool have_cl = false, have_te = false;
  uint64_t cl = 0;
  for (size_t i = 1; i < lines.size(); ++i) {
    std::string_view l = lines[i];
    if (l.empty())
      continue;
    if (l[0] == ' ' || l[0] == '\t') {
      msg = "obsolete header line folding";
      return PR::Error;
    }
    size_t colon = l.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      msg = "malformed header line";
      return PR::Error;
    }
    std::string name = lower(l.substr(0, colon));
    if (name.find_first_of(" \t") != std::string::npos) {
      msg = "malformed header name";
      return PR::Error;
    }
    std::string value = trim(l.substr(colon + 1));
    if (name == "content-length") {
      uint64_t v = 0;
      if (!parse_u64(value, UINT64_MAX / 2, v) || (have_cl && v != cl)) {
        msg = "invalid Content-Length";
        return PR::Error;
      }
      have_cl = true;
      cl = v;
    } else if (name == "transfer-encoding") {
      if (lower(value) != "chunked") {
        status = 501;
        msg = "unsupported transfer encoding";
        return PR::Error;
      }
      have_te = true;
    } else if (name == "connection") {
      std::string v = lower(value);
      size_t p = 0;
      while (p <= v.size()) {
        size_t comma = v.find(',', p);
        if (comma == std::string::npos)
          comma = v.size();
        std::string tok = trim(std::string_view(v).substr(p, comma - p));
        if (tok == "close")
          rq.close = true;
        if (tok == "keep-alive" && rq.http10)
          rq.close = false;
        p = comma + 1;
      }
    } else if (name == "expect") {
      if (lower(value) == "100-continue")
        ps.expect_continue = true;
    }
  }
  if (have_te) {
    ps.chunked = true;
    if (have_cl)
      rq.close = true;  // ambiguous framing: answer, then close
  } else if (have_cl) {
    if (cl > kMaxBodyBytes) {
      status = 413;
      msg = "request body too large";
      return PR::Error;
    }
    ps.content_length = cl;
  }
  ps.hdr_done = true;
  ps.pos = hdr_len;
  return PR::Complete;
}

PR parse_step(Conn& c, int& status, std::string& msg) {
  ParseState& ps = c.ps;
  if (!ps.hdr_done) {
    PR r = parse_head(c, status, msg);
    if (r != PR::Complete)
      return r;
  }
  if (!ps.chunked) {
    if (c.in.size() - ps.pos < ps.content_length)
      return PR::Incomplete;
    ps.req.body = c.in.substr(ps.pos, ps.content_length);
    c.in.erase(0, ps.pos + ps.content_length);
    return PR::Complete;
  }
  for (;;) {
    std::string_view in(c.in);
    switch (ps.cst) {
      case ParseState::C::Size: {
        size_t nl = in.find('\n', ps.pos);
        if (nl == std::string_view::npos) {
          if (in.size() - ps.pos > 1024) {
            status = 400;
            msg = "malformed chunk size";
            return PR::Error;
          }
          return PR::Incomplete;
        }
        std::string_view line = in.substr(ps.pos, nl - ps.pos);
        if (!line.empty() && line.back() == '\r')
          line.remove_suffix(1);
        line = line.substr(0, line.find(';'));
        while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
        if (line.empty() || line.size() > 15) {
          status = 400;
          msg = "malformed chunk size";
          return PR::Error;
        }
        uint64_t v = 0;
        for (char ch : line) {
          int d = (ch >= '0' && ch <= '9')   ? ch - '0'
                  : (ch >= 'a' && ch <= 'f') ? ch - 'a' + 10
                  : (ch >= 'A' && ch <= 'F') ? ch - 'A' + 10
                                             : -1;
          if (d < 0) {
            status = 400;
            msg = "malformed chunk size";
            return PR::Error;
          }
          v = v * 16 + static_cast<uint64_t>(d);
        }
        if (ps.req.body.size() + v > kMaxBodyBytes) {
          status = 413;
          msg = "request body too large";
          return PR::Error;
        }
        ps.pos = nl + 1;
        if (v == 0) {
          ps.cst = ParseState::C::Trailer;
        } else {
          ps.chunk_left = v;
          ps.cst = ParseState::C::Data;
        }
        break;
      }
      case ParseState::C::Data: {
        size_t avail = in.size() - ps.pos;
        if (avail == 0)
          return PR::Incomplete;
        size_t take = static_cast<size_t>(std::min<uint64_t>(avail, ps.chunk_left));
        ps.req.body.append(in.substr(ps.pos, take));
        ps.pos += take;
        ps.chunk_left -= take;
        if (ps.chunk_left > 0)
          return PR::Incomplete;
        ps.cst = ParseState::C::DataEnd;
        break;
      }
      case ParseState::C::DataEnd: {
        if (ps.pos >= in.size())
          return PR::Incomplete;
        if (in[ps.pos] == '\n') {
          ps.pos += 1;
          ps.cst = ParseState::C::Size;
          break;
        }
        if (in[ps.pos] != '\r') {
          status = 400;
          msg = "malformed chunk";
          return PR::Error;
        }
        if (ps.pos + 1 >= in.size())
          return PR::Incomplete;
        if (in[ps.pos + 1] != '\n') {
          status = 400;
          msg = "malformed chunk";
          return PR::Error;
        }
        ps.pos += 2;
        ps.cst = ParseState::C::Size;
        break;
      }
      case ParseState::C::Trailer: {
        size_t nl = in.find('\n', ps.pos);
        if (nl == std::string_view::npos) {
          if (in.size() - ps.pos > kMaxHeaderBytes) {
            status = 431;
            msg = "trailer too large";
            return PR::Error;
          }
          return PR::Incomplete;
        }
        std::string_view line = in.substr(ps.pos, nl - ps.pos);
        if (!line.empty() && line.back() == '\r')
          line.remove_suffix(1);
        ps.pos = nl + 1;
        if (line.empty()) {
          c.in.erase(0, ps.pos);
          return PR::Complete;
        }
        break;
      }
    }
  }
}

// ------------------------------------------------------------------------------------------------
// API
// ------------------------------------------------------------------------------------------------

void handle_request(Conn& c);
void finish_job(Conn& c);
void abort_streams(const Model& m, const std::string& why);

// Whether a completion of model `idx` is being streamed (Ollama does not expire or evict a busy model).
bool model_streaming(size_t idx) {
  for (const auto& [id, c] : g_conns) {
    if (!c.dead && c.st == Conn::St::Streaming && c.job.model == static_cast<int>(idx))
      return true;
  }
  return false;
}

void set_expiry(Model& m, bool ka_set, bool forever, int64_t ka_ns) {
  if (!ka_set) {
    forever = g_opt.keep_alive_forever;
    ka_ns = g_opt.keep_alive_ns;
  }
  m.forever = forever;
  if (forever) {
    m.expires_ms = INT64_MAX;
    m.expires_real = real_add_ns(real_now(), kForeverNs);
  } else {
    int64_t ms = ka_ns / 1000000;
    int64_t now = mono_ms();
    m.expires_ms = ms > INT64_MAX - now ? INT64_MAX : now + ms;
    m.expires_real = real_add_ns(real_now(), ka_ns);
  }
}

void fail_waiters(Model& m, const std::string& why) {
  std::vector<uint64_t> w;
  w.swap(m.waiters);
  for (uint64_t id : w) {
    auto it = g_conns.find(id);
    if (it == g_conns.end() || it->second.dead || it->second.st != Conn::St::WaitLoad)
      continue;
    respond(it->second, job_error(it->second.job, 500, why));
    progress(it->second);
  }
}

// Requests waiting for a prompt-cache ack from a runner that is gone.
void fail_cache_waiters(Model& m, const std::string& why) {
  std::vector<uint64_t> w;
  w.swap(m.cache_waiters);
  for (uint64_t id : w) {
    auto it = g_conns.find(id);
    if (it == g_conns.end() || it->second.dead || it->second.st != Conn::St::WaitRunner)
      continue;
    respond(it->second, job_error(it->second.job, 500, why));
    progress(it->second);
  }
}

void close_runner_fds(Model& m) {
  if (m.ready_fd >= 0) {
    close(m.ready_fd);
    m.ready_fd = -1;
  }
  if (m.cmd_fd >= 0) {
    close(m.cmd_fd);
    m.cmd_fd = -1;
  }
}

// Unload a loaded (or loading) model.  With --orphan-runner a loaded model's runner is forgotten
// instead of killed.
void unload_model(Model& m, const char* reason) {
  if (m.st == Model::St::Unloaded)
    return;
  bool was_loading = m.st == Model::St::Loading;
  close_runner_fds(m);
  pid_t pid = m.pid;
  uint64_t held_mib = m.anon_mib() + m.cache_mib;
  m.pid = -1;
  m.cache_mib = 0;
  m.st = Model::St::Unloaded;
  if (!was_loading && g_opt.orphan_runner) {
    g_orphans.push_back({pid, held_mib});
    log_event("unloaded %s reason=%s", m.name.c_str(), reason);
    log_event("orphaned runner_pid=%d mib=%" PRIu64, static_cast<int>(pid), held_mib);
  } else {
    kill_and_reap(pid);
    log_event("unloaded %s reason=%s", m.name.c_str(), reason);
  }
  if (was_loading) {
    fail_waiters(m, "llama runner process has terminated: signal: killed");
  } else {
    fail_cache_waiters(m, "llama runner process has terminated: signal: killed");
    abort_streams(m, "llama runner process has terminated: signal: killed");
  }
  maybe_retain();
}

// A runner we track exited on its own (OOM kill, external kill, crash).
void on_child_exit(pid_t pid, int status) {
  // `how` reads like Go's exec.ExitError ("signal: killed", "exit status 1"), as Ollama reports it.
  std::string how, code;
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    how = sig == SIGKILL   ? "signal: killed"
          : sig == SIGTERM ? "signal: terminated"
          : sig == SIGSEGV ? "signal: segmentation fault"
          : sig == SIGABRT ? "signal: aborted"
                           : "signal: " + std::to_string(sig);
    code = "signal=" + std::to_string(sig);
  } else {
    how = "exit status " + std::to_string(WEXITSTATUS(status));
    code = "exit=" + std::to_string(WEXITSTATUS(status));
  }
  for (auto& m : g_models) {
    if (m.pid != pid || m.st == Model::St::Unloaded)
      continue;
    bool was_loading = m.st == Model::St::Loading;
    close_runner_fds(m);
    m.pid = -1;
    m.cache_mib = 0;
    m.st = Model::St::Unloaded;
    log_event("runner exited %s runner_pid=%d %s", m.name.c_str(), static_cast<int>(pid), code.c_str());
    if (was_loading) {
      fail_waiters(m, "llama runner process has terminated: " + how);
    } else {
      log_event("unloaded %s reason=runner_exited", m.name.c_str());
      fail_cache_waiters(m, "llama runner process has terminated: " + how);
      abort_streams(m, "llama runner process has terminated: " + how);
    }
    maybe_retain();
    return;
  }
  for (size_t i = 0; i < g_orphans.size(); ++i) {
    if (g_orphans[i].pid == pid) {
      log_event("orphan exited runner_pid=%d %s", static_cast<int>(pid), code.c_str());
      g_orphans.erase(g_orphans.begin() + static_cast<long>(i));
      return;
    }
  }
  // Anything else (we may be PID 1 and inherit zombies): reaped silently.
}

void reap_children() {
  for (;;) {
    int st = 0;
    pid_t pid = waitpid(-1, &st, WNOHANG);
    if (pid <= 0)
      return;
    on_child_exit(pid, st);
  }
}

int g_runner_port_seq = 0;

bool start_load(Model& m, int ctx, std::string& err) {
  // OLLAMA_MAX_LOADED_MODELS: evict the loaded model that expires soonest.
  if (g_opt.max_loaded > 0) {
    size_t busy = 0;
    for (const auto& o : g_models) busy += o.st != Model::St::Unloaded ? 1 : 0;
    while (busy >= g_opt.max_loaded) {
      Model* victim = nullptr;
      for (auto& o : g_models) {
        if (&o == &m || o.st != Model::St::Loaded || model_streaming(static_cast<size_t>(&o - g_models.data())))
          continue;
        if (victim == nullptr || o.expires_ms < victim->expires_ms)
          victim = &o;
      }
      if (victim == nullptr)
        break;
      unload_model(*victim, "evicted");
      --busy;
    }
  }
  Arch a = m.arch();
  int ngl = m.size_mib == 0 ? 0
                            : static_cast<int>((static_cast<double>(a.blocks) + 1) * static_cast<double>(m.vram_mib) /
                                                   static_cast<double>(m.size_mib) +
                                               0.5);
  int port = 32768 + static_cast<int>(
                         (static_cast<unsigned>(getpid()) * 131u + static_cast<unsigned>(g_runner_port_seq++) * 7919u) %
                         28000u);
  Spawned sp;
  if (!spawn_runner(m.blob, m.anon_mib(), ctx, ngl, port, g_opt.runner_cache_per_request_mib > 0, sp, err)) {
    return false;
  }
  m.st = Model::St::Loading;
  m.pid = sp.pid;
  m.ready_fd = sp.ready_fd;
  m.cmd_fd = sp.cmd_fd;
  m.cache_mib = 0;
  m.ctx = ctx;
  m.load_start_ns = mono_ns();
  m.load_deadline_ms = mono_ms() + static_cast<int64_t>(g_opt.load_timeout_ms);
  return true;
}

void on_runner_ready(Model& m) {
  char buf[8];
  ssize_t r = read(m.ready_fd, buf, sizeof buf);
  if (r < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (r <= 0) {
    // Runner died before it was ready; SIGCHLD tells how.  Reap now if possible.
    int st = 0;
    pid_t pid = m.pid;
    close_runner_fds(m);
    kill(pid, SIGKILL);
    pid_t w = waitpid(pid, &st, 0);
    if (w == pid) {
      on_child_exit(pid, st);
    } else {
      m.pid = -1;
      m.st = Model::St::Unloaded;
      fail_waiters(m, "llama runner process has terminated");
    }
    return;
  }
  if (m.cmd_fd < 0) {
    close(m.ready_fd);
    m.ready_fd = -1;
  }  // else: the ready pipe now carries the acks of "grow N" commands
  m.st = Model::St::Loaded;
  m.last_load_ns = mono_ns() - m.load_start_ns;
  set_expiry(m, false, false, 0);
  log_event("loaded %s anon_mib=%" PRIu64 " runner_pid=%d", m.name.c_str(), m.anon_mib(), static_cast<int>(m.pid));
  std::vector<uint64_t> w;
  w.swap(m.waiters);
  for (uint64_t id : w) {
    auto it = g_conns.find(id);
    if (it == g_conns.end() || it->second.dead || it->second.st != Conn::St::WaitLoad)
      continue;
    finish_job(it->second);
    progress(it->second);
  }
}

// --runner-cache-per-request-mib: the runner acknowledged prompt-cache growth ('G' done,
// 'F' could not map).  Each byte answers the oldest waiting request.
void on_runner_ack(Model& m) {
  char buf[64];
  ssize_t r = read(m.ready_fd, buf, sizeof buf);
  if (r < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  pid_t pid = m.pid;
  if (r <= 0) {
    // The runner is gone; SIGCHLD tells how.  Reap now if possible.
    close_runner_fds(m);
    kill(pid, SIGKILL);
    int st = 0;
    if (waitpid(pid, &st, 0) == pid)
      on_child_exit(pid, st);
    return;
  }
  for (ssize_t i = 0; i < r; ++i) {
    // Answering may unload the model (keep_alive 0) or start the next pipelined request.
    if (m.st != Model::St::Loaded || m.pid != pid || m.cache_waiters.empty())
      return;
    uint64_t id = m.cache_waiters.front();
    m.cache_waiters.erase(m.cache_waiters.begin());
    if (buf[i] == 'G') {
      m.cache_mib += g_opt.runner_cache_per_request_mib;
      log_event("runner_cache name=%s total_mib=%" PRIu64, m.name.c_str(), m.cache_mib);
    } else {
      log_event("runner_cache failed name=%s mib=%" PRIu64 " total_mib=%" PRIu64, m.name.c_str(),
                g_opt.runner_cache_per_request_mib, m.cache_mib);
    }
    auto it = g_conns.find(id);
    if (it == g_conns.end() || it->second.dead || it->second.st != Conn::St::WaitRunner)
      continue;
    it->second.job.cache_done = true;
    finish_job(it->second);
    progress(it->second);
  }
}

std::string ps_json() {
  std::vector<const Model*> loaded;
  for (const auto& m : g_models) {
    if (m.st == Model::St::Loaded)
      loaded.push_back(&m);
  }
  std::stable_sort(loaded.begin(), loaded.end(),
                   [](const Model* a, const Model* b) { return a->expires_ms > b->expires_ms; });
  std::string o = "{\"models\":[";
  bool first = true;
  for (const Model* m : loaded) {
    if (!first)
      o += ',';
    first = false;
    o += "{\"name\":" + jquote(m->name) + ",\"model\":" + jquote(m->name) +
         ",\"size\":" + std::to_string(m->size_mib * kMiB) + ",\"digest\":" + jquote(m->digest) +
         ",\"details\":" + details_json(*m) + ",\"expires_at\":" + jquote(rfc3339(m->expires_real)) +
         ",\"size_vram\":" + std::to_string(m->vram_mib * kMiB);
    if (!g_opt.no_context_length)
      o += ",\"context_length\":" + std::to_string(m->ctx);
    o += '}';
  }
  // A broken or hostile server: thousands of "loaded" models, the same names again and again, and a
  // list that changes every second (the sizes follow the clock).
  const uint64_t tick = static_cast<uint64_t>(time(nullptr));
  for (uint64_t i = 0; i < g_opt.ps_flood; ++i) {
    if (!first)
      o += ',';
    first = false;
    o += "{\"name\":\"flood-" + std::to_string(i % 100) + ":latest\",\"size\":" + std::to_string(1000 + i + tick % 7) +
         ",\"size_vram\":0}";
  }
  o += "]}";
  return o;
}

std::string tags_json() {
  std::string o = "{\"models\":[";
  bool first = true;
  for (const auto& m : g_models) {
    if (!first)
      o += ',';
    first = false;
    o += "{\"name\":" + jquote(m.name) + ",\"model\":" + jquote(m.name) +
         ",\"modified_at\":" + jquote(rfc3339(g_start_real)) + ",\"size\":" + std::to_string(m.size_mib * kMiB) +
         ",\"digest\":" + jquote(m.digest) + ",\"details\":" + details_json(m) + "}";
  }
  o += "]}";
  return o;
}

// GET /v1/models, the OpenAI-compatible list (Ollama and LocalAI both serve it).
std::string openai_models_json() {
  std::string o = "{\"object\":\"list\",\"data\":[";
  bool first = true;
  for (const auto& m : g_models) {
    if (!first)
      o += ',';
    first = false;
    o += "{\"id\":" + jquote(m.name) + ",\"object\":\"model\",\"owned_by\":\"library\"}";
  }
  o += "]}";
  return o;
}

std::string show_json(const Model& m) {
  Arch a = m.arch();
  int head_dim = a.embedding / a.heads;
  std::string mi = "{\"general.architecture\":\"llama\",\"general.file_type\":15,\"general.parameter_count\":" +
                   std::to_string(m.params) + ",\"general.quantization_version\":2" +
                   ",\"llama.attention.head_count\":" + std::to_string(a.heads) +
                   ",\"llama.attention.head_count_kv\":" + std::to_string(a.heads_kv) +
                   ",\"llama.attention.layer_norm_rms_epsilon\":0.00001" +
                   ",\"llama.block_count\":" + std::to_string(a.blocks) + ",\"llama.context_length\":131072" +
                   ",\"llama.embedding_length\":" + std::to_string(a.embedding) +
                   ",\"llama.feed_forward_length\":" + std::to_string(a.ff) +
                   ",\"llama.rope.dimension_count\":" + std::to_string(head_dim) +
                   ",\"llama.rope.freq_base\":500000,\"llama.vocab_size\":128256" +
                   ",\"tokenizer.ggml.model\":\"gpt2\",\"tokenizer.ggml.pre\":\"llama-bpe\"" +
                   ",\"tokenizer.ggml.tokens\":[],\"tokenizer.ggml.token_type\":[],\"tokenizer.ggml.merges\":[]}";
  std::string modelfile =
      "# Modelfile generated by \"ollama show\"\n# To build a new Modelfile based on this, replace FROM with:\n# "
      "FROM " +
      m.name + "\n\nFROM " + m.blob + "\nTEMPLATE \"{{ .Prompt }}\"\n";
  return "{\"license\":\"simulated\",\"modelfile\":" + jquote(modelfile) +
         ",\"parameters\":\"stop                           \\\"<|eot_id|>\\\"\"" +
         ",\"template\":\"{{ .Prompt }}\",\"details\":" + details_json(m) + ",\"model_info\":" + mi +
         ",\"capabilities\":[\"completion\"],\"modified_at\":" + jquote(rfc3339(g_start_real)) + "}";
}

int count_words(std::string_view s) {
  int n = 0;
  bool in = false;
  for (char ch : s) {
    bool space = ch == ' ' || ch == '\n' || ch == '\t' || ch == '\r';
    if (!space && !in)
      ++n;
    in = !space;
  }
  return n;
}

// Reads a JSON body into `root` (an object); on failure responds 400 and returns false.
bool parse_body(Conn& c, JVal& root) {
  if (c.cur.body.empty()) {
    respond(c, json_resp(400, error_json("missing request body")));
    return false;
  }
  std::string err;
  JsonParser parser(c.cur.body);
  if (!parser.parse(root, err)) {
    respond(c, json_resp(400, error_json("invalid JSON: " + err)));
    return false;
  }
  if (root.t != JVal::T::Obj) {
    respond(c, json_resp(400, error_json("invalid JSON: expected an object")));
    return false;
  }
  return true;
}

// "model" (or the older "name"); responds on error and returns false.
bool model_field(Conn& c, const JVal& root, std::string& name) {
  const JVal* v = root.get("model");
  if (v == nullptr || v->t == JVal::T::Null || (v->t == JVal::T::Str && v->s.empty())) {
    v = root.get("name");
  }
  if (v != nullptr && v->t != JVal::T::Null && v->t != JVal::T::Str) {
    respond(c, json_resp(400, error_json("json: cannot unmarshal model: expected a string")));
    return false;
  }
  if (v == nullptr || v->t != JVal::T::Str || v->s.empty()) {
    respond(c, json_resp(400, error_json("model is required")));
    return false;
  }
  name = v->s;
  return true;
}

void api_show(Conn& c) {
  JVal root;
  if (!parse_body(c, root))
    return;
  std::string name;
  if (!model_field(c, root, name))
    return;
  int idx = find_model(name);
  if (idx < 0) {
    respond(c, json_resp(404, error_json("model '" + name + "' not found")));
    return;
  }
  respond(c, json_resp(200, show_json(g_models[static_cast<size_t>(idx)])));
}

std::string head_fields(const Model& m) {
  return "{\"model\":" + jquote(m.name) + ",\"created_at\":" + jquote(rfc3339(real_now()));
}

std::string empty_reply(const Model& m, bool chat, const char* reason) {
  std::string o = head_fields(m);
  o += chat ? ",\"message\":{\"role\":\"assistant\",\"content\":\"\"}" : ",\"response\":\"\"";
  o += ",\"done\":true,\"done_reason\":\"";
  o += reason;
  o += "\"}";
  return o;
}

void start_job(Conn& c, const GenJob& job, Model& m, int ctx);

void api_model(Conn& c, bool chat) {
  JVal root;
  if (!parse_body(c, root))
    return;
  std::string name;
  if (!model_field(c, root, name))
    return;
  GenJob job;
  job.chat = chat;
  // Input.
  if (chat) {
    const JVal* msgs = root.get("messages");
    if (msgs != nullptr && msgs->t != JVal::T::Null && msgs->t != JVal::T::Arr) {
      respond(c, json_resp(400, error_json("json: cannot unmarshal messages: expected an array")));
      return;
    }
    if (msgs != nullptr && msgs->t == JVal::T::Arr) {
      job.input_empty = msgs->items.empty();
      for (const auto& msg : msgs->items) {
        const JVal* content = msg.get("content");
        if (content != nullptr && content->t == JVal::T::Str)
          job.prompt_tokens += count_words(content->s);
      }
    }
  } else {
    const JVal* prompt = root.get("prompt");
    if (prompt != nullptr && prompt->t != JVal::T::Null && prompt->t != JVal::T::Str) {
      respond(c, json_resp(400, error_json("json: cannot unmarshal prompt: expected a string")));
      return;
    }
    if (prompt != nullptr && prompt->t == JVal::T::Str) {
      job.input_empty = prompt->s.empty();
      job.prompt_tokens = count_words(prompt->s);
    }
  }
  job.prompt_tokens += 10;  // template tokens
  // stream
  const JVal* stream = root.get("stream");
  if (stream != nullptr && stream->t != JVal::T::Null) {
    if (stream->t != JVal::T::Bool) {
      respond(c, json_resp(400, error_json("json: cannot unmarshal stream: expected a bool")));
      return;
    }
    job.stream = stream->b;
  }
  // keep_alive (api.Duration): number = seconds, string = Go duration, negative = forever.
  const JVal* ka = root.get("keep_alive");
  if (ka != nullptr && ka->t != JVal::T::Null) {
    job.ka_set = true;
    if (ka->t == JVal::T::Num) {
      if (ka->num < 0) {
        job.ka_forever = true;
        job.ka_ns = kForeverNs;
      } else {
        double ns = ka->num * 1e9;
        job.ka_ns = ns >= 9.2e18 ? INT64_MAX : static_cast<int64_t>(ns);
      }
    } else if (ka->t == JVal::T::Str) {
      // As Ollama: a string is a Go duration ("5m", "-1s", "0"); a number without a unit is not one.
      bool negative = false;
      if (!parse_go_duration(ka->s, job.ka_ns, negative)) {
        respond(c, json_resp(400, error_json("time: invalid duration " + jquote(ka->s))));
        return;
      }
      if (negative && job.ka_ns != 0) {
        job.ka_forever = true;
        job.ka_ns = kForeverNs;
      }
    } else {
      respond(c, json_resp(400, error_json("Unsupported type for keep_alive")));
      return;
    }
  }
  // options.num_ctx
  int ctx = g_opt.context_length;
  const JVal* options = root.get("options");
  if (options != nullptr && options->t == JVal::T::Obj) {
    const JVal* nc = options->get("num_ctx");
    if (nc != nullptr && nc->t == JVal::T::Num && nc->num >= 1 && nc->num <= 16777216) {
      ctx = static_cast<int>(nc->num);
    }
    const JVal* np = options->get("num_predict");
    if (np != nullptr && np->t == JVal::T::Num && np->num >= 1) {
      job.num_predict = static_cast<int>(std::min<double>(np->num, kMaxPredict));
    }
  }
  int idx = find_model(name);
  if (idx < 0) {
    respond(c, json_resp(404, error_json("model '" + name + "' not found")));
    return;
  }
  Model& m = g_models[static_cast<size_t>(idx)];
  job.model = idx;
  // Unload: empty input with keep_alive 0.
  if (job.input_empty && job.ka_set && !job.ka_forever && job.ka_ns == 0) {
    unload_model(m, "keep_alive");
    respond(c, json_resp(200, empty_reply(m, chat, "unload")));
    return;
  }
  start_job(c, job, m, ctx);
}

// Leaks (--leak-per-request-mib), then answers at once or after the load (one load for all waiters).
void start_job(Conn& c, const GenJob& job, Model& m, int ctx) {
  if (g_opt.leak_per_request_mib > 0) {
    leak_bytes(g_opt.leak_per_request_mib * kMiB);
    log_leak_total();
  }
  c.job = job;
  if (m.st == Model::St::Loaded) {
    finish_job(c);
    return;
  }
  if (m.st == Model::St::Unloaded) {
    std::string err;
    if (!start_load(m, ctx, err)) {
      respond(c, job_error(job, 500, "failed to start runner: " + err));
      return;
    }
    c.job.triggered_load = true;
  }
  m.waiters.push_back(c.id);
  c.st = Conn::St::WaitLoad;
}

// POST /v1/chat/completions, as Ollama's OpenAI-compatible middleware serves it (over /api/chat).
void api_openai_chat(Conn& c) {
  GenJob job;
  job.chat = true;
  job.openai = true;
  job.input_empty = false;
  job.stream = false;  // OpenAI's default
  auto fail = [&c](int status, const std::string& msg) {
    respond(c, json_resp(status, openai_error_json(status, msg)));
  };
  if (c.cur.body.empty())
    return fail(400, "missing request body");
  JVal root;
  std::string err;
  JsonParser parser(c.cur.body);
  if (!parser.parse(root, err))
    return fail(400, "invalid JSON: " + err);
  if (root.t != JVal::T::Obj)
    return fail(400, "invalid JSON: expected an object");
  const JVal* model = root.get("model");
  if (model == nullptr || model->t != JVal::T::Str || model->s.empty())
    return fail(400, "model is required");
  const JVal* msgs = root.get("messages");
  if (msgs == nullptr || msgs->t != JVal::T::Arr || msgs->items.empty())
    return fail(400, "[] is too short - 'messages'");
  for (const auto& msg : msgs->items) {
    const JVal* content = msg.get("content");
    if (content != nullptr && content->t == JVal::T::Str) {
      job.prompt_tokens += count_words(content->s);
    } else if (content != nullptr && content->t == JVal::T::Arr) {
      for (const auto& part : content->items) {
        const JVal* text = part.get("text");
        if (text != nullptr && text->t == JVal::T::Str)
          job.prompt_tokens += count_words(text->s);
      }
    }
  }
  job.prompt_tokens += 10;  // template tokens, as /api/chat
  const JVal* stream = root.get("stream");
  if (stream != nullptr && stream->t != JVal::T::Null) {
    if (stream->t != JVal::T::Bool)
      return fail(400, "json: cannot unmarshal stream: expected a bool");
    job.stream = stream->b;
  }
  for (const char* key : {"max_completion_tokens", "max_tokens"}) {
    const JVal* mt = root.get(key);
    if (mt != nullptr && mt->t == JVal::T::Num && mt->num >= 1)
      job.num_predict = static_cast<int>(std::min<double>(mt->num, kMaxPredict));
  }
  const JVal* so = root.get("stream_options");
  if (so != nullptr && so->t == JVal::T::Obj) {
    const JVal* iu = so->get("include_usage");
    job.include_usage = iu != nullptr && iu->t == JVal::T::Bool && iu->b;
  }
  int idx = find_model(model->s);
  if (idx < 0)
    return fail(404, "model \"" + model->s + "\" not found, try pulling it first");
  job.model = idx;
  start_job(c, job, g_models[static_cast<size_t>(idx)], g_opt.context_length);
}

// ---- completions, token by token ---------------------------------------------------------------

const char* const kWords[] = {"This", " is", " a", " simulated", " reply", " from", " ollama-sim", "."};
constexpr int kDefaultWords = static_cast<int>(sizeof kWords / sizeof kWords[0]);
uint64_t g_chat_seq = 0;

// Token i of every completion: the default sentence, repeated (one word per token, never empty).
std::string token_text(int i) {
  std::string t = kWords[i % kDefaultWords];
  if (i > 0 && i % kDefaultWords == 0)
    t.insert(0, " ");
  return t;
}

std::string ollama_piece(const Conn& c, const Model& m, const std::string& text) {
  std::string o = head_fields(m);
  if (c.job.chat) {
    o += ",\"message\":{\"role\":\"assistant\",\"content\":" + jquote(text) + "}";
  } else {
    o += ",\"response\":" + jquote(text);
  }
  return o;
}

// The final Ollama line (or the whole non-streamed answer), with the real durations.
std::string ollama_done(const Conn& c, const Model& m, const std::string& text, int64_t now) {
  const StreamState& s = c.sj;
  std::string o = ollama_piece(c, m, text);
  o += ",\"done\":true,\"done_reason\":";
  o += s.length ? "\"length\"" : "\"stop\"";
  if (!c.job.chat) {
    o += ",\"context\":[128006,882,128007,271,2028,374,264,46836]";
  }
  int64_t first = s.first_ns >= 0 ? s.first_ns : now;
  int64_t last = s.last_ns >= 0 ? s.last_ns : now;
  o += ",\"total_duration\":" + std::to_string(now - s.req_start_ns) +
       ",\"load_duration\":" + std::to_string(s.ready_ns - s.req_start_ns) +
       ",\"prompt_eval_count\":" + std::to_string(c.job.prompt_tokens) +
       ",\"prompt_eval_duration\":" + std::to_string(first - s.ready_ns) + ",\"eval_count\":" + std::to_string(s.sent) +
       ",\"eval_duration\":" + std::to_string(last - first) + "}";
  return o;
}

std::string openai_head(const Conn& c, const Model& m, const char* object) {
  return "{\"id\":" + jquote(c.sj.id) + ",\"object\":\"" + object + "\",\"created\":" + std::to_string(c.sj.created) +
         ",\"model\":" + jquote(m.name) + ",\"system_fingerprint\":\"fp_ollama\"";
}

std::string openai_usage(const Conn& c) {
  int p = c.job.prompt_tokens;
  int n = c.sj.sent;
  return "\"usage\":{\"prompt_tokens\":" + std::to_string(p) + ",\"completion_tokens\":" + std::to_string(n) +
         ",\"total_tokens\":" + std::to_string(p + n) + "}";
}

const char* finish_reason(const Conn& c) {
  return c.sj.length ? "\"length\"" : "\"stop\"";
}

// One line of a streamed answer: sent as one chunk (the head goes with the first), or kept for a
// buffered answer. An empty line only sends the head.
void stream_line(Conn& c, const std::string& line) {
  StreamState& s = c.sj;
  if (s.buffered) {
    s.text += line;
    return;
  }
  if (!s.head_sent) {
    s.head_sent = true;
    std::string h = "HTTP/1.1 200 OK\r\nContent-Type: ";
    h += c.job.openai ? "text/event-stream" : "application/x-ndjson";
    h += "\r\nDate: " + http_date() + "\r\nTransfer-Encoding: chunked\r\n";
    if (s.close)
      h += "Connection: close\r\n";
    queue_out(c, h + "\r\n");
  }
  if (line.empty())
    return;
  char hex[32];
  snprintf(hex, sizeof hex, "%zx\r\n", line.size());
  queue_out(c, hex + line + "\r\n");
}

// After the answer (whole, failed or dropped): the keep-alive runs from now; keep_alive 0 unloads
// once no other completion of the model is streaming.
void stream_after(Conn& c) {
  size_t idx = static_cast<size_t>(c.job.model);
  Model& m = g_models[idx];
  if (m.st != Model::St::Loaded)
    return;
  set_expiry(m, c.job.ka_set, c.job.ka_forever, c.job.ka_ns);
  if (c.job.ka_set && !c.job.ka_forever && c.job.ka_ns == 0 && !model_streaming(idx)) {
    unload_model(m, "keep_alive");
  }
}

// Ends the answer: the chunked terminator, or the buffered body in one piece (after --slow-ms).
void stream_finish(Conn& c, int status) {
  StreamState& s = c.sj;
  c.st = Conn::St::Reading;
  if (s.buffered) {
    Resp r;
    r.status = status;
    if (c.job.stream)
      r.ctype = c.job.openai ? "text/event-stream" : "application/x-ndjson";
    r.body = std::move(s.text);
    respond(c, r);
  } else {
    if (s.close || c.peer_eof)
      c.close_after = true;
    queue_out(c, "0\r\n\r\n");
  }
  stream_after(c);
}

// An error in place of the next line ({"error":...} as Ollama's handlers send it mid-stream).
void stream_fail(Conn& c, const std::string& why) {
  StreamState& s = c.sj;
  if (!c.job.stream) {
    s.text = c.job.openai ? openai_error_json(500, why) : error_json(why);
    stream_finish(c, 500);
    return;
  }
  stream_line(c, c.job.openai ? "data: " + openai_error_json(500, why) + "\n\n" : error_json(why) + "\n");
  stream_finish(c, 200);
}

// The runner of a model went away during its completions: each ends with an error.
void abort_streams(const Model& m, const std::string& why) {
  int idx = static_cast<int>(&m - g_models.data());
  for (auto& [id, c] : g_conns) {
    if (c.dead || c.st != Conn::St::Streaming || c.job.model != idx)
      continue;
    log_event("stream_aborted name=%s sent=%d", m.name.c_str(), c.sj.sent);
    stream_fail(c, why);
    progress(c);
  }
}

// Sends every line that is due: token lines at first_due + k/R, then the final line(s) with the last
// token, or the fault of --fail-stream-after / --drop-stream-after in place of line N+1.
void stream_tick(Conn& c) {
  StreamState& s = c.sj;
  const Model& m = g_models[static_cast<size_t>(c.job.model)];
  int64_t now = mono_ns();
  while (c.st == Conn::St::Streaming && !c.dead && now >= s.next_ns) {
    if (g_opt.fail_stream_after >= 0 && s.sent == g_opt.fail_stream_after) {
      log_event("stream_fault fail name=%s sent=%d", m.name.c_str(), s.sent);
      stream_fail(c, "an error was encountered while running the model: unexpected EOF");
      return;
    }
    if (g_opt.drop_stream_after >= 0 && s.sent == g_opt.drop_stream_after) {
      log_event("stream_fault drop name=%s sent=%d", m.name.c_str(), s.sent);
      if (!s.buffered)
        stream_line(c, "");
      c.st = Conn::St::Reading;
      c.in.clear();
      c.ps = ParseState{};
      c.close_after = true;
      flush(c);
      stream_after(c);
      return;
    }
    if (s.sent < s.total) {
      std::string t = token_text(s.sent);
      if (c.job.openai && c.job.stream) {
        stream_line(c, "data: " + openai_head(c, m, "chat.completion.chunk") +
                           ",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":" + jquote(t) +
                           "},\"finish_reason\":null}]}\n\n");
      } else if (c.job.stream) {
        stream_line(c, ollama_piece(c, m, t) + ",\"done\":false}\n");
      } else {
        s.text += t;
      }
      if (s.first_ns < 0)
        s.first_ns = now;
      s.last_ns = now;
      if (++s.sent < s.total)
        s.next_ns += s.interval_ns;
      continue;
    }
    if (c.job.openai && c.job.stream) {
      stream_line(
          c, "data: " + openai_head(c, m, "chat.completion.chunk") +
                 ",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":" +
                 finish_reason(c) + "}]}\n\n");
      if (c.job.include_usage)
        stream_line(
            c, "data: " + openai_head(c, m, "chat.completion.chunk") + ",\"choices\":[]," + openai_usage(c) + "}\n\n");
      stream_line(c, "data: [DONE]\n\n");
    } else if (c.job.openai) {
      s.text = openai_head(c, m, "chat.completion") +
               ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":" + jquote(s.text) +
               "},\"finish_reason\":" + finish_reason(c) + "}]," + openai_usage(c) + "}";
    } else if (c.job.stream) {
      stream_line(c, ollama_done(c, m, "", now) + "\n");
    } else {
      s.text = ollama_done(c, m, s.text, now);
    }
    stream_finish(c, 200);
    return;
  }
}

// Starts the completion of a request whose model is ready: the first token --ttft-ms from now (not
// before --slow-ms after the request), then one every 1/--tokens-per-second.
void stream_start(Conn& c) {
  StreamState& s = c.sj;
  s = StreamState{};
  s.req_start_ns = c.req_start_ns;
  s.ready_ns = mono_ns();
  s.total = c.job.num_predict > 0 ? c.job.num_predict : kDefaultWords;
  s.length = c.job.num_predict > 0;
  s.buffered = !c.job.stream || c.cur.http10 || g_opt.no_chunked;
  s.close = c.cur.close || c.peer_eof;
  s.interval_ns = g_opt.tokens_per_second > 0 ? std::llround(1e9 / g_opt.tokens_per_second) : 0;
  s.next_ns = std::max(s.ready_ns + static_cast<int64_t>(g_opt.ttft_ms) * 1000000,
                       s.req_start_ns + static_cast<int64_t>(g_opt.slow_ms) * 1000000);
  if (c.job.openai) {
    s.id = "chatcmpl-" + std::to_string(++g_chat_seq);
    s.created = static_cast<int64_t>(time(nullptr));
  }
  c.st = Conn::St::Streaming;
  if (!s.buffered && g_opt.request_log) {
    log_event("request %s %s status=200", sanitize(c.cur.method, 16).c_str(), sanitize(c.cur.target).c_str());
  }
  stream_tick(c);
}

// Answers a generate/chat request whose model is loaded.
void finish_job(Conn& c) {
  const GenJob& job = c.job;
  Model& m = g_models[static_cast<size_t>(job.model)];
  if (m.st != Model::St::Loaded) {
    // Unloaded meanwhile (e.g. another waiter said keep_alive 0): load it again, like Ollama.
    if (m.st == Model::St::Unloaded) {
      std::string err;
      if (!start_load(m, m.ctx, err)) {
        respond(c, job_error(c.job, 500, "failed to start runner: " + err));
        return;
      }
      c.job.triggered_load = true;
    }
    m.waiters.push_back(c.id);
    c.st = Conn::St::WaitLoad;
    return;
  }
  if (g_opt.runner_cache_per_request_mib > 0 && !job.input_empty && !job.cache_done && m.cmd_fd >= 0) {
    // The runner grows its prompt cache first; on_runner_ack answers once it confirmed.
    std::string cmd = "grow " + std::to_string(g_opt.runner_cache_per_request_mib) + "\n";
    if (write(m.cmd_fd, cmd.data(), cmd.size()) != static_cast<ssize_t>(cmd.size())) {
      respond(c, job_error(c.job, 500, std::string("llama runner: cannot send command: ") + strerror(errno)));
      return;
    }
    m.cache_waiters.push_back(c.id);
    c.st = Conn::St::WaitRunner;
    return;
  }
  set_expiry(m, job.ka_set, job.ka_forever, job.ka_ns);
  if (!job.input_empty) {
    stream_start(c);  // answers (now or later) and unloads after it when keep_alive is 0
    return;
  }
  respond(c, json_resp(200, empty_reply(m, job.chat, "load")));
  if (job.ka_set && !job.ka_forever && job.ka_ns == 0) {
    unload_model(m, "keep_alive");
  }
}

void handle_request(Conn& c) {
  const Request& rq = c.cur;
  const std::string& p = rq.path;
  bool get = rq.method == "GET" || rq.method == "HEAD";
  bool post = rq.method == "POST";
  if (p == "/" && get) {
    respond(c, text_resp(200, "Ollama is running"));
  } else if (p == "/api/version" && get) {
    respond(c, json_resp(200, "{\"version\":" + jquote(g_opt.version) + "}"));
  } else if (p == "/api/ps" && get) {
    respond(c, json_resp(200, ps_json()));
  } else if (p == "/api/tags" && get) {
    respond(c, json_resp(200, tags_json()));
  } else if (p == "/v1/models" && get) {
    respond(c, json_resp(200, openai_models_json()));
  } else if (p == "/api/show" && post) {
    api_show(c);
  } else if (p == "/api/generate" && post) {
    api_model(c, false);
  } else if (p == "/api/chat" && post) {
    api_model(c, true);
  } else if (p == "/v1/chat/completions" && post) {
    api_openai_chat(c);
  } else {
    respond(c, text_resp(404, "404 page not found"));
  }
}

void progress(Conn& c) {
  while (!c.dead && c.st == Conn::St::Reading && !c.close_after) {
    if (c.in.empty() && !c.ps.hdr_done) {
      c.first_byte_ms = -1;
      break;
    }
    if (c.first_byte_ms < 0)
      c.first_byte_ms = mono_ms();
    int status = 400;
    std::string msg;
    PR r = parse_step(c, status, msg);
    if (r == PR::Incomplete) {
      if (c.ps.hdr_done && c.ps.expect_continue && !c.ps.sent_continue && !c.ps.req.http10) {
        c.ps.sent_continue = true;
        queue_out(c, "HTTP/1.1 100 Continue\r\n\r\n");
      }
      break;
    }
    if (r == PR::Error) {
      protocol_error(c, status, msg);
      break;
    }
    c.cur = std::move(c.ps.req);
    c.ps = ParseState{};
    c.first_byte_ms = -1;
    c.req_start_ms = mono_ms();
    c.req_start_ns = mono_ns();
    try {
      handle_request(c);
    } catch (...) {
      // std::bad_alloc and friends: answer instead of dying.
      if (c.st == Conn::St::Reading) {
        respond(c, json_resp(500, error_json("internal error")));
      }
    }
  }
  if (!c.dead && c.peer_eof && c.st == Conn::St::Reading && c.out.empty()) {
    c.dead = true;  // client finished sending and nothing is owed
  }
}

// ------------------------------------------------------------------------------------------------
// Flags
// ------------------------------------------------------------------------------------------------

void usage(FILE* f) {
  fputs(
      "usage: ollama-sim [flags]\n"
      "  --listen ADDR                 HOST:PORT, :PORT or [V6]:PORT (default 127.0.0.1:11434;\n"
      "                                OLLAMA_HOST is used when --listen is absent)\n"
      "  --model NAME=SIZE_MIB[:VRAM_MIB]  a model (repeatable); loading it makes a runner child\n"
      "                                that touches SIZE-VRAM MiB of anonymous memory\n"
      "  --version-string S            /api/version answer (default 0.11.4-sim)\n"
      "  --context-length N            /api/ps context_length (default 4096)\n"
      "  --no-context-length           omit context_length from /api/ps (Ollama < 0.10)\n"
      "  --keep-alive DUR              default keep_alive (default 5m; negative = forever)\n"
      "  --max-loaded N                OLLAMA_MAX_LOADED_MODELS (default 3; 0 = unlimited)\n"
      "  --leak-per-request-mib N      leak N MiB in the server per generate/chat (not unload)\n"
      "  --leak-per-second-mib N       leak N MiB/s in the server while a model is loaded\n"
      "  --runner-cache-per-request-mib N  the model's runner keeps N more MiB per served\n"
      "                                generate/chat (prompt cache; not in /api/ps size)\n"
      "  --leak-always                 ... even with nothing loaded\n"
      "  --retain-after-unload-mib N   keep N MiB in the server once the last model unloads\n"
      "  --bloat-at-start-mib N        allocate N MiB in the server at start\n"
      "  --orphan-runner               on unload forget the runner instead of killing it\n"
      "  --orphan-mib N                at start, spawn an orphan runner holding N MiB\n"
      "  --cache-file PATH             file for --cache-mib (default /tmp/ollama-sim-cache.gguf)\n"
      "  --cache-mib N                 create PATH with N MiB, mmap it read-only, read every page\n"
      "  --slow-ms N                   delay every answer by N ms\n"
      "  --request-timeout-ms N        max time to receive a request / drain an answer (10000)\n"
      "  --idle-timeout-ms N           close idle keep-alive connections after N ms (120000)\n"
      "  --load-timeout-ms N           give up on a runner that is not ready (300000)\n"
      "  --runner-argv0 PATH           argv[0] of runner children (default /usr/bin/ollama)\n"
      "  --ps-flood N                  append N fake entries to /api/ps (names repeat every 100)\n"
      "  --ttft-ms N                   first token N ms after the model is ready (default 0)\n"
      "  --tokens-per-second R         one token every 1/R s after the first (default 0 = at once)\n"
      "  --fail-stream-after N         a completion sends N tokens, then an error, and ends\n"
      "  --drop-stream-after N         a completion sends N tokens, then the connection closes\n"
      "  --no-chunked                  never use chunked transfer encoding in answers\n"
      "  --no-request-log              do not log one line per HTTP request\n"
      "  --help                        this text\n",
      f);
}

bool parse_listen(std::string_view s, std::string& host, int& port) {
  if (s.starts_with("http://"))
    s.remove_prefix(7);
  else if (s.starts_with("https://"))
    s.remove_prefix(8);
  while (!s.empty() && s.back() == '/') s.remove_suffix(1);
  if (s.empty())
    return false;
  std::string_view h, p;
  if (s[0] == '[') {
    size_t rb = s.find(']');
    if (rb == std::string_view::npos)
      return false;
    h = s.substr(1, rb - 1);
    std::string_view rest = s.substr(rb + 1);
    if (rest.empty()) {
      p = "11434";
    } else if (rest[0] == ':') {
      p = rest.substr(1);
    } else {
      return false;
    }
    in6_addr a6{};
    if (inet_pton(AF_INET6, std::string(h).c_str(), &a6) != 1)
      return false;
  } else {
    size_t colon = s.rfind(':');
    if (colon == std::string_view::npos) {
      h = s;
      p = "11434";
    } else {
      h = s.substr(0, colon);
      p = s.substr(colon + 1);
    }
    if (h.empty())
      h = "0.0.0.0";
    if (h == "localhost")
      h = "127.0.0.1";
    in_addr a4{};
    if (inet_pton(AF_INET, std::string(h).c_str(), &a4) != 1)
      return false;
  }
  uint64_t pv = 0;
  if (!parse_u64(p, 65535, pv))
    return false;
  host = std::string(h);
  port = static_cast<int>(pv);
  return true;
}

void parse_model_flag(const std::string& v) {
  size_t eq = v.rfind('=');
  if (eq == std::string::npos || eq == 0)
    die(2, "--model '%s': expected NAME=SIZE_MIB[:VRAM_MIB]", sanitize(v).c_str());
  std::string name = v.substr(0, eq);
  std::string sizes = v.substr(eq + 1);
  for (char ch : name) {
    unsigned char u = static_cast<unsigned char>(ch);
    if (u <= 0x20 || u == 0x7f || ch == '"' || ch == '\\')
      die(2, "--model '%s': bad character in model name", sanitize(v).c_str());
  }
  if (name.size() > 200)
    die(2, "--model: model name too long");
  ModelSpec ms;
  ms.name = normalize_name(name);
  size_t colon = sizes.find(':');
  std::string s1 = sizes.substr(0, colon);
  if (!parse_u64(s1, kMaxMiB, ms.size_mib))
    die(2, "--model '%s': bad SIZE_MIB", sanitize(v).c_str());
  if (colon != std::string::npos && !parse_u64(sizes.substr(colon + 1), kMaxMiB, ms.vram_mib)) {
    die(2, "--model '%s': bad VRAM_MIB", sanitize(v).c_str());
  }
  if (ms.vram_mib > ms.size_mib)
    die(2, "--model '%s': VRAM_MIB exceeds SIZE_MIB", sanitize(v).c_str());
  for (const auto& o : g_opt.models) {
    if (iequals(o.name, ms.name))
      die(2, "--model '%s': duplicate model", sanitize(ms.name).c_str());
  }
  g_opt.models.push_back(ms);
}

void parse_args(int argc, char** argv) {
  bool listen_set = false;
  bool cache_file_set = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    std::string val;
    bool has_inline = false;
    if (a.starts_with("--")) {
      size_t eq = a.find('=');
      if (eq != std::string::npos) {
        val = a.substr(eq + 1);
        a = a.substr(0, eq);
        has_inline = true;
      }
    }
    auto need = [&]() -> std::string {
      if (has_inline)
        return val;
      if (i + 1 >= argc)
        die(2, "%s needs a value", sanitize(a).c_str());
      return argv[++i];
    };
    auto flag = [&]() {
      if (has_inline)
        die(2, "%s takes no value", sanitize(a).c_str());
    };
    auto mib = [&]() -> uint64_t {
      std::string v = need();
      uint64_t n = 0;
      if (!parse_u64(v, kMaxMiB, n))
        die(2, "%s '%s': expected a number of MiB (0..%" PRIu64 ")", a.c_str(), sanitize(v).c_str(), kMaxMiB);
      return n;
    };
    auto ms = [&]() -> uint64_t {
      std::string v = need();
      uint64_t n = 0;
      if (!parse_u64(v, 86400000ull, n))
        die(2, "%s '%s': expected milliseconds (0..86400000)", a.c_str(), sanitize(v).c_str());
      return n;
    };
    if (a == "--help" || a == "-h") {
      usage(stdout);
      exit(0);
    } else if (a == "--listen") {
      std::string v = need();
      if (!parse_listen(v, g_opt.listen_host, g_opt.listen_port))
        die(2, "--listen '%s': expected HOST:PORT", sanitize(v).c_str());
      listen_set = true;
    } else if (a == "--model") {
      parse_model_flag(need());
    } else if (a == "--version-string") {
      g_opt.version = need();
    } else if (a == "--context-length") {
      std::string v = need();
      uint64_t n = 0;
      if (!parse_u64(v, 16777216, n) || n == 0)
        die(2, "--context-length '%s': expected 1..16777216", sanitize(v).c_str());
      g_opt.context_length = static_cast<int>(n);
    } else if (a == "--no-context-length") {
      flag();
      g_opt.no_context_length = true;
    } else if (a == "--keep-alive") {
      std::string v = need();
      if (!parse_keep_alive_text(v, g_opt.keep_alive_ns, g_opt.keep_alive_forever))
        die(2, "--keep-alive '%s': expected a duration like 5m, 300, -1", sanitize(v).c_str());
    } else if (a == "--max-loaded") {
      std::string v = need();
      if (!parse_u64(v, 1000, g_opt.max_loaded))
        die(2, "--max-loaded '%s': expected 0..1000", sanitize(v).c_str());
    } else if (a == "--leak-per-request-mib") {
      g_opt.leak_per_request_mib = mib();
    } else if (a == "--runner-cache-per-request-mib") {
      g_opt.runner_cache_per_request_mib = mib();
    } else if (a == "--leak-per-second-mib") {
      std::string v = need();
      if (!parse_decimal(v, 65536, g_opt.leak_per_second_mib))
        die(2, "--leak-per-second-mib '%s': expected a number like 4 or 0.5", sanitize(v).c_str());
    } else if (a == "--leak-always") {
      flag();
      g_opt.leak_always = true;
    } else if (a == "--retain-after-unload-mib") {
      g_opt.retain_after_unload_mib = mib();
    } else if (a == "--bloat-at-start-mib") {
      g_opt.bloat_at_start_mib = mib();
    } else if (a == "--orphan-runner") {
      flag();
      g_opt.orphan_runner = true;
    } else if (a == "--orphan-mib") {
      g_opt.orphan_mib = mib();
      g_opt.orphan_mib_set = true;
    } else if (a == "--cache-file") {
      g_opt.cache_file = need();
      if (g_opt.cache_file.empty())
        die(2, "--cache-file needs a path");
      cache_file_set = true;
    } else if (a == "--cache-mib") {
      g_opt.cache_mib = mib();
      g_opt.cache_mib_set = true;
    } else if (a == "--slow-ms") {
      g_opt.slow_ms = ms();
    } else if (a == "--request-timeout-ms") {
      g_opt.request_timeout_ms = std::max<uint64_t>(ms(), 1);
    } else if (a == "--idle-timeout-ms") {
      g_opt.idle_timeout_ms = std::max<uint64_t>(ms(), 1);
    } else if (a == "--load-timeout-ms") {
      g_opt.load_timeout_ms = std::max<uint64_t>(ms(), 1);
    } else if (a == "--runner-argv0") {
      g_opt.runner_argv0 = need();
      if (g_opt.runner_argv0.empty())
        die(2, "--runner-argv0 needs a value");
    } else if (a == "--ps-flood") {
      std::string v = need();
      if (!parse_u64(v, 1000000, g_opt.ps_flood))
        die(2, "--ps-flood '%s': expected 0..1000000", sanitize(v).c_str());
    } else if (a == "--ttft-ms") {
      g_opt.ttft_ms = ms();
    } else if (a == "--tokens-per-second") {
      std::string v = need();
      if (!parse_decimal(v, 1000000, g_opt.tokens_per_second))
        die(2, "--tokens-per-second '%s': expected a rate like 20 or 2.5 (0 = at once)", sanitize(v).c_str());
    } else if (a == "--fail-stream-after" || a == "--drop-stream-after") {
      std::string v = need();
      uint64_t n = 0;
      if (!parse_u64(v, static_cast<uint64_t>(kMaxPredict), n))
        die(2, "%s '%s': expected a number of tokens (0..%d)", a.c_str(), sanitize(v).c_str(), kMaxPredict);
      (a == "--fail-stream-after" ? g_opt.fail_stream_after : g_opt.drop_stream_after) = static_cast<int64_t>(n);
    } else if (a == "--no-chunked") {
      flag();
      g_opt.no_chunked = true;
    } else if (a == "--no-request-log") {
      flag();
      g_opt.request_log = false;
    } else {
      die(2, "unknown argument '%s' (see --help)", sanitize(argv[i]).c_str());
    }
  }
  if (cache_file_set && !g_opt.cache_mib_set)
    die(2, "--cache-file needs --cache-mib");
  if (g_opt.cache_mib_set && g_opt.cache_file.empty())
    g_opt.cache_file = "/tmp/ollama-sim-cache.gguf";
  if (!listen_set) {
    const char* env = getenv("OLLAMA_HOST");
    if (env == nullptr || *env == '\0')
      env = getenv("LOCALAI_ADDRESS");  // standing in for LocalAI's image in deploy tests
    if (env != nullptr && *env != '\0' && !parse_listen(env, g_opt.listen_host, g_opt.listen_port)) {
      die(2, "OLLAMA_HOST '%s': expected HOST:PORT", sanitize(env).c_str());
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Startup work and the event loop
// ------------------------------------------------------------------------------------------------

int g_sigfd = -1;
int g_listen_fd = -1;
int64_t g_listen_pause_until = 0;

[[noreturn]] void shutdown_now(int sig) {
  log_event("shutdown signal=%s", sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT" : "SIGQUIT");
  for (auto& m : g_models) {
    if (m.pid > 0)
      kill(m.pid, SIGKILL);
  }
  // Orphans are "forgotten": PR_SET_PDEATHSIG takes them down with us (and as PID 1 the kernel
  // kills the whole container anyway).
  _exit(0);
}

void on_noop_signal(int) {}

// Drains the signalfd: exits on TERM/INT/QUIT, reaps on CHLD.
void handle_signals() {
  for (;;) {
    signalfd_siginfo si{};
    ssize_t r = read(g_sigfd, &si, sizeof si);
    if (r != static_cast<ssize_t>(sizeof si))
      return;
    int sig = static_cast<int>(si.ssi_signo);
    if (sig == SIGTERM || sig == SIGINT || sig == SIGQUIT)
      shutdown_now(sig);
    if (sig == SIGCHLD)
      reap_children();
  }
}

void startup_check() {
  handle_signals();
}

void setup_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGTERM, SIGINT, SIGQUIT, SIGCHLD, SIGHUP}) sigaddset(&set, s);
  // Handlers are installed too: a PID 1 only receives signals it handles.
  struct sigaction sa {};
  sa.sa_handler = on_noop_signal;
  sigemptyset(&sa.sa_mask);
  for (int s : {SIGTERM, SIGINT, SIGQUIT, SIGCHLD, SIGHUP}) sigaction(s, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  if (sigprocmask(SIG_BLOCK, &set, nullptr) != 0)
    die(1, "sigprocmask: %s", strerror(errno));
  g_sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (g_sigfd < 0)
    die(1, "signalfd: %s", strerror(errno));
}

std::string setup_listen() {
  bool v6 = g_opt.listen_host.find(':') != std::string::npos;
  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    die(1, "socket: %s", strerror(errno));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(static_cast<uint16_t>(g_opt.listen_port));
    inet_pton(AF_INET6, g_opt.listen_host.c_str(), &a->sin6_addr);
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(static_cast<uint16_t>(g_opt.listen_port));
    inet_pton(AF_INET, g_opt.listen_host.c_str(), &a->sin_addr);
    len = sizeof *a;
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    die(1, "listen %s:%d: %s", g_opt.listen_host.c_str(), g_opt.listen_port, strerror(errno));
  }
  if (listen(fd, 128) != 0)
    die(1, "listen: %s", strerror(errno));
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  int port = g_opt.listen_port;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen) == 0) {
    port = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                    : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  }
  g_listen_fd = fd;
  return (v6 ? "[" + g_opt.listen_host + "]" : g_opt.listen_host) + ":" + std::to_string(port);
}

void setup_cache_file() {
  const std::string& path = g_opt.cache_file;
  uint64_t want = g_opt.cache_mib * kMiB;
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    die(1, "cache file %s: %s", path.c_str(), strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0)
    die(1, "cache file %s: %s", path.c_str(), strerror(errno));
  uint64_t have = static_cast<uint64_t>(st.st_size);
  if (have < want) {
    std::vector<char> buf(kMiB);
    for (size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<char>("GGUF"[i & 3] ^ (i >> 12));
    uint64_t off = have & ~(kMiB - 1);
    while (off < want) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(kMiB, want - off));
      ssize_t w = pwrite(fd, buf.data(), n, static_cast<off_t>(off));
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0)
        die(1, "cache file %s: write: %s", path.c_str(), strerror(errno));
      off += static_cast<uint64_t>(w);
      if ((off & (64 * kMiB - 1)) == 0)
        startup_check();
    }
  }
  if (want > 0) {
    void* p = mmap(nullptr, want, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
      die(1, "cache file %s: mmap: %s", path.c_str(), strerror(errno));
    madvise(p, want, MADV_WILLNEED);
    const volatile unsigned char* q = static_cast<const volatile unsigned char*>(p);
    unsigned sum = 0;
    for (uint64_t off = 0; off < want; off += page_size()) {
      sum += q[off];
      if ((off & (64 * kMiB - 1)) == 0)
        startup_check();
    }
    (void)sum;  // the mapping is kept for the life of the process
  }
  close(fd);
  log_event("cache_mib=%" PRIu64 " file=%s", g_opt.cache_mib, path.c_str());
}

void spawn_start_orphan() {
  Spawned sp;
  std::string err;
  std::string blob = "/root/.ollama/models/blobs/sha256-" + sha256_hex("orphan-at-start");
  if (!spawn_runner(blob, g_opt.orphan_mib, g_opt.context_length, 0, 40001, false, sp, err))
    die(1, "orphan runner: %s", err.c_str());
  int64_t deadline = mono_ms() + static_cast<int64_t>(g_opt.load_timeout_ms);
  for (;;) {
    pollfd pf[2] = {{sp.ready_fd, POLLIN, 0}, {g_sigfd, POLLIN, 0}};
    int64_t left = deadline - mono_ms();
    if (left <= 0)
      die(1, "orphan runner did not become ready");
    int n = poll(pf, 2, static_cast<int>(std::min<int64_t>(left, 1000)));
    if (n < 0 && errno != EINTR)
      die(1, "poll: %s", strerror(errno));
    if (pf[1].revents != 0)
      startup_check();
    if (pf[0].revents != 0) {
      char b = 0;
      ssize_t r = read(sp.ready_fd, &b, 1);
      if (r < 0 && (errno == EAGAIN || errno == EINTR))
        continue;
      close(sp.ready_fd);
      if (r != 1)
        die(1, "orphan runner died while allocating %" PRIu64 " MiB", g_opt.orphan_mib);
      break;
    }
  }
  g_orphans.push_back({sp.pid, g_opt.orphan_mib});
  log_event("orphaned runner_pid=%d mib=%" PRIu64, static_cast<int>(sp.pid), g_opt.orphan_mib);
}

void accept_all() {
  for (int i = 0; i < 64 && g_conns.size() < kMaxConns; ++i) {
    int fd = accept4(g_listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        g_listen_pause_until = mono_ms() + 100;
      }
      return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    Conn c;
    c.id = g_next_conn_id++;
    c.fd = fd;
    c.last_active_ms = mono_ms();
    g_conns.emplace(c.id, std::move(c));
  }
}

void on_conn_readable(Conn& c) {
  char buf[65536];
  for (int i = 0; i < 16; ++i) {
    ssize_t r = recv(c.fd, buf, sizeof buf, 0);
    if (r > 0) {
      c.last_active_ms = mono_ms();
      if (c.st == Conn::St::Draining)
        continue;  // discard
      c.in.append(buf, static_cast<size_t>(r));
      if (c.in.size() > kMaxBodyBytes + kMaxHeaderBytes + 65536)
        break;
      continue;
    }
    if (r == 0) {
      c.peer_eof = true;
      break;
    }
    if (errno == EINTR)
      continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      c.dead = true;
    break;
  }
  if (c.st == Conn::St::Draining) {
    if (c.peer_eof)
      c.dead = true;
    return;
  }
  if (c.st == Conn::St::Reading)
    progress(c);
  if (!c.dead && c.peer_eof && c.st == Conn::St::Reading && !c.out.empty())
    c.close_after = true;
}

void run_timers() {
  int64_t now = mono_ms();
  for (auto& [id, c] : g_conns) {
    if (c.dead)
      continue;
    switch (c.st) {
      case Conn::St::Delayed:
        if (now >= c.send_at_ms) {
          deliver(c);
          progress(c);
        }
        break;
      case Conn::St::Reading:
        if (c.first_byte_ms >= 0 && now - c.first_byte_ms > static_cast<int64_t>(g_opt.request_timeout_ms)) {
          protocol_error(c, 408, "request timeout");
        } else if (c.first_byte_ms < 0 && c.out.empty() &&
                   now - c.last_active_ms > static_cast<int64_t>(g_opt.idle_timeout_ms)) {
          c.dead = true;
        }
        break;
      case Conn::St::Draining:
        if (now >= c.drain_deadline_ms)
          c.dead = true;
        break;
      case Conn::St::Streaming:
        if (mono_ns() >= c.sj.next_ns) {
          stream_tick(c);
          progress(c);
        }
        break;
      case Conn::St::WaitLoad:
      case Conn::St::WaitRunner:
        break;
    }
    if (!c.dead && !c.out.empty() && now - c.last_write_ms > static_cast<int64_t>(g_opt.request_timeout_ms)) {
      c.dead = true;  // client stopped reading
    }
  }
  for (size_t i = 0; i < g_models.size(); ++i) {
    Model& m = g_models[i];
    if (m.st == Model::St::Loaded && !m.forever && now >= m.expires_ms && !model_streaming(i)) {
      unload_model(m, "expired");
    } else if (m.st == Model::St::Loading && now >= m.load_deadline_ms) {
      log_event("load timeout %s runner_pid=%d", m.name.c_str(), static_cast<int>(m.pid));
      unload_model(m, "load_timeout");
    }
  }
  leak_tick(now);
}

int poll_timeout() {
  int64_t now = mono_ms();
  int64_t next = now + 1000;
  for (const auto& [id, c] : g_conns) {
    if (c.st == Conn::St::Delayed)
      next = std::min(next, c.send_at_ms);
    if (c.st == Conn::St::Streaming)
      next = std::min(next, (c.sj.next_ns + 999999) / 1000000);
    if (c.st == Conn::St::Reading && c.first_byte_ms >= 0) {
      next = std::min(next, c.first_byte_ms + static_cast<int64_t>(g_opt.request_timeout_ms) + 1);
    }
  }
  for (size_t i = 0; i < g_models.size(); ++i) {
    const Model& m = g_models[i];
    if (m.st == Model::St::Loaded && !m.forever && !model_streaming(i))
      next = std::min(next, m.expires_ms);
  }
  if (g_opt.leak_per_second_mib > 0 && (g_opt.leak_always || loaded_count() > 0)) {
    next = std::min(next, g_leak_last_tick_ms < 0 ? now : g_leak_last_tick_ms + 100);
  }
  return static_cast<int>(std::clamp<int64_t>(next - now, 0, 1000));
}

[[noreturn]] void event_loop() {
  std::vector<pollfd> pfds;
  std::vector<std::pair<int, uint64_t>> tags;  // 0 signal, 1 listen, 2 model ready, 3 connection
  for (;;) {
    run_timers();
    for (auto it = g_conns.begin(); it != g_conns.end();) {
      if (it->second.dead) {
        if (it->second.st == Conn::St::Streaming) {
          // The client went away mid-answer: the request ends here (keep-alive, keep_alive 0).
          it->second.st = Conn::St::Reading;
          stream_after(it->second);
        }
        close(it->second.fd);
        it = g_conns.erase(it);
      } else {
        ++it;
      }
    }
    pfds.clear();
    tags.clear();
    pfds.push_back({g_sigfd, POLLIN, 0});
    tags.emplace_back(0, 0);
    int64_t now = mono_ms();
    if (g_conns.size() < kMaxConns && now >= g_listen_pause_until) {
      pfds.push_back({g_listen_fd, POLLIN, 0});
      tags.emplace_back(1, 0);
    }
    for (size_t i = 0; i < g_models.size(); ++i) {
      const Model& m = g_models[i];
      bool acks = m.st == Model::St::Loaded && m.cmd_fd >= 0 && !m.cache_waiters.empty();
      if ((m.st == Model::St::Loading || acks) && m.ready_fd >= 0) {
        pfds.push_back({m.ready_fd, POLLIN, 0});
        tags.emplace_back(2, i);
      }
    }
    for (auto& [id, c] : g_conns) {
      short ev = 0;
      size_t cap = c.st == Conn::St::Reading ? kMaxBodyBytes + kMaxHeaderBytes + 65536 : kMaxPipelinedBytes;
      if (!c.peer_eof && (c.in.size() < cap || c.st == Conn::St::Draining))
        ev |= POLLIN;
      if (c.out_off < c.out.size())
        ev |= POLLOUT;
      pfds.push_back({c.fd, ev, 0});
      tags.emplace_back(3, id);
    }
    int n = poll(pfds.data(), pfds.size(), poll_timeout());
    if (n < 0) {
      if (errno == EINTR)
        continue;
      die(1, "poll: %s", strerror(errno));
    }
    if (n == 0)
      continue;
    for (size_t i = 0; i < pfds.size(); ++i) {
      if (pfds[i].revents == 0)
        continue;
      auto [kind, key] = tags[i];
      if (kind == 0) {
        handle_signals();
      } else if (kind == 1) {
        accept_all();
      } else if (kind == 2) {
        Model& m = g_models[key];
        if (m.st == Model::St::Loading && m.ready_fd == pfds[i].fd)
          on_runner_ready(m);
        else if (m.st == Model::St::Loaded && m.ready_fd == pfds[i].fd)
          on_runner_ack(m);
      } else {
        auto it = g_conns.find(key);
        if (it == g_conns.end() || it->second.dead)
          continue;
        Conn& c = it->second;
        short re = pfds[i].revents;
        if (re & POLLOUT)
          flush(c);
        if (!c.dead && (re & (POLLIN | POLLHUP | POLLERR))) {
          if ((re & POLLERR) && !(re & POLLIN)) {
            c.dead = true;
          } else {
            on_conn_readable(c);
          }
        }
        // POLLHUP: both directions are down (RST, or FIN after our SHUT_WR); nothing can be sent.
        if (re & POLLHUP)
          c.dead = true;
        if (c.dead)
          continue;
      }
    }
  }
}

}  // namespace

// `ollama list`, as a health check runs it: GET /api/tags from the server at OLLAMA_HOST; exit 0 on HTTP 200.
int list_main() {
  std::string host = "127.0.0.1";
  int port = 11434;
  const char* env = getenv("OLLAMA_HOST");
  if (env != nullptr && *env != '\0' && !parse_listen(env, host, port)) {
    fprintf(stderr, "OLLAMA_HOST '%s': expected HOST:PORT\n", sanitize(env).c_str());
    return 2;
  }
  if (host.empty() || host == "0.0.0.0")
    host = "127.0.0.1";
  if (host == "::")
    host = "::1";
  const bool v6 = host.find(':') != std::string::npos;
  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return 1;
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET6, host.c_str(), &a->sin6_addr);
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, host.c_str(), &a->sin_addr);
    len = sizeof *a;
  }
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    fprintf(stderr, "Error: could not connect to ollama app, is it running?\n");
    close(fd);
    return 1;
  }
  const std::string req = "GET /api/tags HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
  if (write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    close(fd);
    return 1;
  }
  char buf[64] = {};
  const ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  const bool ok = n > 12 && strncmp(buf, "HTTP/1.1 200", 12) == 0;
  printf("NAME    ID    SIZE    MODIFIED\n");
  return ok ? 0 : 1;
}

int main(int argc, char** argv) {
  if (argc >= 2 && strcmp(argv[1], "runner") == 0) {
    const char* r = getenv("OLLAMA_SIM_RUNNER");
    if (r != nullptr && strcmp(r, "1") == 0)
      runner_main();
  }
  if (argc >= 2 && strcmp(argv[1], "list") == 0)
    return list_main();
  if (argc >= 2 && strcmp(argv[1], "serve") == 0) {
    // `ollama serve`, as the official image's CMD runs it: the options that follow are the simulator's.
    argv[1] = argv[0];
    ++argv;
    --argc;
  }
  if (argc > 0 && argv[0] != nullptr) {
    g_argv_area = argv[0];
    char* end = argv[argc - 1] + strlen(argv[argc - 1]);
    g_argv_area_len = static_cast<size_t>(end - g_argv_area);  // excludes the final NUL
  }
  parse_args(argc, argv);
  {
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n > 0) {
      buf[n] = '\0';
      // A deleted or replaced binary can't be re-executed by path; use the in-process fallback.
      if (access(buf, X_OK) == 0)
        g_self_exe = buf;
    }
  }
  g_start_real = real_now();
  for (const auto& spec : g_opt.models) {
    Model m;
    m.name = spec.name;
    m.size_mib = spec.size_mib;
    m.vram_mib = spec.vram_mib;
    m.digest = sha256_hex(spec.name);
    m.blob = "/root/.ollama/models/blobs/sha256-" + sha256_hex("blob:" + spec.name);
    m.params = guess_params(spec.name, spec.size_mib);
    m.ctx = g_opt.context_length;
    g_models.push_back(std::move(m));
  }
  setup_signals();
  std::string addr = setup_listen();
  if (g_opt.bloat_at_start_mib > 0) {
    if (!alloc_touched(g_opt.bloat_at_start_mib * kMiB, startup_check)) {
      die(1, "cannot allocate --bloat-at-start-mib %" PRIu64 ": %s", g_opt.bloat_at_start_mib, strerror(errno));
    }
    log_event("bloat_at_start mib=%" PRIu64, g_opt.bloat_at_start_mib);
  }
  if (g_opt.cache_mib_set)
    setup_cache_file();
  if (g_opt.orphan_mib_set)
    spawn_start_orphan();
  log_event("listening %s", addr.c_str());
  event_loop();
}
