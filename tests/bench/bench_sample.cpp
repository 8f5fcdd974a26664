// One container's memory sample: read_cgroup_memory (open/read/close of every
// file the probe reads, plus parsing) against the raw cost of opening, reading
// and closing exactly the same files into a buffer, without parsing.
//
// Cases (each registers BM_ReadCgroupMemory/<case> and BM_RawReads/<case>):
//   v1-hybrid-fixture  a temp copy of tests/fixtures/hosts/v1-hybrid-cgroupfs
//   v2-systemd-fixture a temp copy of tests/fixtures/hosts/v2-systemd-incident
//   live               only when MW_BENCH_CONTAINER_ID is set: that container's
//                      cgroup under MW_BENCH_CGROUP_ROOT (a host root as for
//                      `memwarden --root`, default "/"); MW_BENCH_PID (optional)
//                      is the container's pid, as `status` passes it.
// BM_LocateAndRead/<case> adds locate_container_cgroup (what `status` does per
// container) for reference. BM_ReadCgroupMemoryKept/<case> reads through the
// location's kept descriptors (probes::CgroupFiles: one pread per file, as serve
// reads each round; on a real cgroup file system only, so on the fixtures it is
// the same as BM_ReadCgroupMemory), BM_RawPreads/<case> is its raw counterpart:
// a pread to EOF on descriptors opened once. tests/bench/sample_ratio.sh prints
// the ratios.
//
// MW_BENCH_CONTAINERS="id[:pid],id[:pid],..." (ids of live containers under
// MW_BENCH_CGROUP_ROOT) adds BM_LocateAndReadAll/live-<n>: locate + read of all n
// containers per iteration, the cgroup share of one `memwarden status` run.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "probes/cgroup.hpp"
#include "probes/host_root.hpp"

namespace {

namespace fs = std::filesystem;
using mw::probes::CgroupLayout;
using mw::probes::CgroupLocation;
using mw::probes::CgroupMode;
using mw::probes::HostRoot;

struct Case {
  std::string name;
  HostRoot root;
  std::int64_t pid = 0;
  std::string container_id;
  CgroupLayout layout;
  CgroupLocation where;            // with kept descriptors (from locate)
  CgroupLocation fresh;            // the same without: each read opens the files
  std::vector<std::string> files;  // every path read_cgroup_memory opens, in its order
  std::size_t present = 0;         // how many of them exist
  std::string setup_error;         // non-empty: the case's benchmarks report it and skip
};

// The files read_cgroup_memory opens for this layout (src/probes/cgroup.cpp).
std::vector<std::string> probe_files(const CgroupLayout& layout, const CgroupLocation& where) {
  const fs::path dir = layout.memory_root / where.memory_path;
  std::vector<std::string> files;
  if (layout.mode == CgroupMode::v2) {
    for (const char* name : {"memory.current", "memory.max", "memory.stat", "memory.swap.current", "memory.peak",
                             "memory.events", "memory.pressure"}) {
      files.push_back((dir / name).string());
    }
    return files;
  }
  for (const char* name : {"memory.usage_in_bytes", "memory.limit_in_bytes", "memory.stat", "memory.max_usage_in_bytes",
                           "memory.failcnt", "memory.oom_control"}) {
    files.push_back((dir / name).string());
  }
  if (layout.unified_root && where.unified_path) {
    files.push_back((*layout.unified_root / *where.unified_path / "memory.pressure").string());
  }
  return files;
}

// Temp copies of the fixture trees, removed at exit.
struct TempTrees {
  fs::path dir;
  ~TempTrees() {
    if (!dir.empty()) {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  }
};

TempTrees& temp_trees() {
  static TempTrees trees;
  return trees;
}

std::optional<fs::path> copy_fixture(const std::string& tree, std::string& error) {
  auto& trees = temp_trees();
  if (trees.dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/mw-bench-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      error = "mkdtemp " + pattern + ": " + std::strerror(errno);
      return std::nullopt;
    }
    trees.dir = pattern;
  }
  const fs::path from = fs::path(MEMWARDEN_FIXTURES_DIR) / "hosts" / tree;
  const fs::path to = trees.dir / tree;
  std::error_code ec;
  fs::copy(from, to, fs::copy_options::recursive, ec);
  if (ec) {
    error = "copy " + from.string() + " -> " + to.string() + ": " + ec.message();
    return std::nullopt;
  }
  return to;
}

Case prepare(std::string name, HostRoot root, std::int64_t pid, std::string container_id) {
  Case c{std::move(name), std::move(root), pid, std::move(container_id), {}, {}, {}, {}, 0, {}};
  auto layout = mw::probes::detect_cgroup_layout(c.root);
  if (!layout) {
    c.setup_error = layout.error().line();
    return c;
  }
  c.layout = *layout;
  auto where = mw::probes::locate_container_cgroup(c.root, c.layout, c.pid, c.container_id);
  if (!where) {
    c.setup_error = where.error().line();
    return c;
  }
  c.where = *where;
  c.fresh = CgroupLocation{c.where.memory_path, c.where.unified_path};
  c.files = probe_files(c.layout, c.where);
  for (const auto& f : c.files) {
    std::error_code ec;
    c.present += fs::exists(f, ec) ? 1U : 0U;
  }
  std::vector<mw::Error> problems;
  auto memory = mw::probes::read_cgroup_memory(c.layout, c.where, problems);
  if (!memory) {
    c.setup_error = memory.error().line();
  } else if (!problems.empty()) {
    c.setup_error = "read_cgroup_memory reported a problem: " + problems.front().line();
  }
  return c;
}

void BM_ReadCgroupMemory(benchmark::State& state, const Case* c) {
  if (!c->setup_error.empty()) {
    state.SkipWithError(c->setup_error.c_str());
    return;
  }
  for (auto _ : state) {
    std::vector<mw::Error> problems;
    auto memory = mw::probes::read_cgroup_memory(c->layout, c->fresh, problems);
    benchmark::DoNotOptimize(memory);
    benchmark::DoNotOptimize(problems);
  }
  state.counters["files"] = static_cast<double>(c->files.size());
  state.counters["present"] = static_cast<double>(c->present);
}

void BM_ReadCgroupMemoryKept(benchmark::State& state, const Case* c) {
  if (!c->setup_error.empty()) {
    state.SkipWithError(c->setup_error.c_str());
    return;
  }
  for (auto _ : state) {
    std::vector<mw::Error> problems;
    auto memory = mw::probes::read_cgroup_memory(c->layout, c->where, problems);
    benchmark::DoNotOptimize(memory);
    benchmark::DoNotOptimize(problems);
  }
  state.counters["kept"] = c->where.files ? static_cast<double>(c->where.files->kept()) : 0.0;
}

void BM_RawPreads(benchmark::State& state, const Case* c) {
  if (!c->setup_error.empty()) {
    state.SkipWithError(c->setup_error.c_str());
    return;
  }
  std::vector<int> fds;
  for (const auto& path : c->files) {
    if (const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC); fd >= 0) {
      fds.push_back(fd);
    }
  }
  static std::array<char, 65536> buffer;
  for (auto _ : state) {
    for (const int fd : fds) {
      off_t at = 0;
      for (;;) {
        const ssize_t n = ::pread(fd, buffer.data(), buffer.size(), at);
        if (n > 0) {
          at += n;
          continue;
        }
        if (n < 0 && errno == EINTR) {
          continue;
        }
        break;
      }
    }
    benchmark::DoNotOptimize(buffer.data());
    benchmark::ClobberMemory();
  }
  for (const int fd : fds) {
    ::close(fd);
  }
  state.counters["files"] = static_cast<double>(fds.size());
}

void BM_LocateAndRead(benchmark::State& state, const Case* c) {
  if (!c->setup_error.empty()) {
    state.SkipWithError(c->setup_error.c_str());
    return;
  }
  for (auto _ : state) {
    auto where = mw::probes::locate_container_cgroup(c->root, c->layout, c->pid, c->container_id);
    if (!where) {
      state.SkipWithError(where.error().line().c_str());
      break;
    }
    std::vector<mw::Error> problems;
    auto memory = mw::probes::read_cgroup_memory(c->layout, *where, problems);
    benchmark::DoNotOptimize(memory);
  }
}

void BM_RawReads(benchmark::State& state, const Case* c) {
  if (!c->setup_error.empty()) {
    state.SkipWithError(c->setup_error.c_str());
    return;
  }
  static std::array<char, 65536> buffer;
  std::int64_t bytes = 0;
  for (auto _ : state) {
    for (const auto& path : c->files) {
      const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        continue;  // absent on this kernel: the probe tries it too
      }
      for (;;) {
        const ssize_t n = ::read(fd, buffer.data(), buffer.size());
        if (n > 0) {
          bytes += n;
          continue;
        }
        if (n < 0 && errno == EINTR) {
          continue;
        }
        break;
      }
      ::close(fd);
    }
    benchmark::DoNotOptimize(buffer.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(bytes);
  state.counters["files"] = static_cast<double>(c->files.size());
  state.counters["present"] = static_cast<double>(c->present);
}

struct Many {
  HostRoot root;
  CgroupLayout layout;
  std::vector<std::pair<std::string, std::int64_t>> containers;  // id, pid
};

void BM_LocateAndReadAll(benchmark::State& state, const Many* many) {
  for (auto _ : state) {
    for (const auto& [id, pid] : many->containers) {
      auto where = mw::probes::locate_container_cgroup(many->root, many->layout, pid, id);
      if (!where) {
        state.SkipWithError(where.error().line().c_str());
        return;
      }
      std::vector<mw::Error> problems;
      auto memory = mw::probes::read_cgroup_memory(many->layout, *where, problems);
      if (!memory) {
        state.SkipWithError(memory.error().line().c_str());
        return;
      }
      benchmark::DoNotOptimize(memory);
    }
  }
  state.counters["containers"] = static_cast<double>(many->containers.size());
}

void add_many(const char* root, const std::string& list) {
  static Many many;
  many.root = HostRoot(root != nullptr && *root != '\0' ? root : "/");
  auto layout = mw::probes::detect_cgroup_layout(many.root);
  if (!layout) {
    std::fprintf(stderr, "mw_bench_sample: MW_BENCH_CONTAINERS: %s\n", layout.error().line().c_str());
    return;
  }
  many.layout = *layout;
  std::size_t start = 0;
  while (start < list.size()) {
    auto end = list.find_first_of(", ", start);
    if (end == std::string::npos) {
      end = list.size();
    }
    const std::string item = list.substr(start, end - start);
    start = end + 1;
    if (item.empty()) {
      continue;
    }
    const auto colon = item.find(':');
    const std::int64_t pid = colon == std::string::npos ? 0 : std::strtoll(item.c_str() + colon + 1, nullptr, 10);
    many.containers.emplace_back(item.substr(0, colon), pid);
  }
  benchmark::RegisterBenchmark(("BM_LocateAndReadAll/live-" + std::to_string(many.containers.size())).c_str(),
                               BM_LocateAndReadAll, &many);
}

std::vector<std::unique_ptr<Case>>& cases() {
  static std::vector<std::unique_ptr<Case>> all;
  return all;
}

void add_case(Case c) {
  if (!c.setup_error.empty()) {
    std::fprintf(stderr, "mw_bench_sample: case %s: %s\n", c.name.c_str(), c.setup_error.c_str());
  }
  cases().push_back(std::make_unique<Case>(std::move(c)));
  const Case* p = cases().back().get();
  benchmark::RegisterBenchmark(("BM_ReadCgroupMemory/" + p->name).c_str(), BM_ReadCgroupMemory, p);
  benchmark::RegisterBenchmark(("BM_RawReads/" + p->name).c_str(), BM_RawReads, p);
  benchmark::RegisterBenchmark(("BM_LocateAndRead/" + p->name).c_str(), BM_LocateAndRead, p);
  benchmark::RegisterBenchmark(("BM_ReadCgroupMemoryKept/" + p->name).c_str(), BM_ReadCgroupMemoryKept, p);
  benchmark::RegisterBenchmark(("BM_RawPreads/" + p->name).c_str(), BM_RawPreads, p);
}

void add_fixture_case(const std::string& name, const std::string& tree, std::int64_t pid, const std::string& id) {
  std::string error;
  if (auto root = copy_fixture(tree, error)) {
    add_case(prepare(name, HostRoot(*root), pid, id));
  } else {
    Case c;
    c.name = name;
    c.setup_error = error;
    add_case(std::move(c));
  }
}

bool register_all() {
  add_fixture_case("v1-hybrid-fixture", "v1-hybrid-cgroupfs", 15798,
                   "1a41e922df86006078d99eb27e8cdf5cd62c8b9ada79ffb2cc02328721727c2b");
  add_fixture_case("v2-systemd-fixture", "v2-systemd-incident", 4242,
                   "3f1c9a7e5b2d4c6f8a0e1d3b5c7f9a2e4d6b8c0a1e3f5d7b9c2a4e6f8d0b1c3a");
  if (const char* id = std::getenv("MW_BENCH_CONTAINER_ID"); id != nullptr && *id != '\0') {
    const char* root = std::getenv("MW_BENCH_CGROUP_ROOT");
    const char* pid = std::getenv("MW_BENCH_PID");
    add_case(prepare("live", HostRoot(root != nullptr && *root != '\0' ? root : "/"),
                     pid != nullptr ? std::strtoll(pid, nullptr, 10) : 0, id));
  }
  if (const char* list = std::getenv("MW_BENCH_CONTAINERS"); list != nullptr && *list != '\0') {
    add_many(std::getenv("MW_BENCH_CGROUP_ROOT"), list);
  }
  return true;
}

const bool g_registered = register_all();

}  // namespace
