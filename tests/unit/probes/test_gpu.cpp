// read_gpus against tests/support/fake_nvml.c, built as libnvidia-ml.so.1 and
// scripted through FAKE_NVML_* environment variables (documented in that file).
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "probes/gpu.hpp"

#ifndef FAKE_NVML_PATH
#error "FAKE_NVML_PATH must name the fake libnvidia-ml.so.1"
#endif

namespace mw::probes {
namespace {

namespace fs = std::filesystem;

const std::string container_a = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const std::string container_b = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

constexpr std::uint64_t gib = 1024ULL * 1024 * 1024;
constexpr std::uint64_t mib = 1024ULL * 1024;
constexpr std::uint64_t total_bytes = 17179869184ULL;
constexpr std::uint64_t used_bytes = 2415919104ULL;  // 2 GiB allocated + 256 MiB reserved
constexpr std::uint64_t free_bytes = 14763950080ULL;

// A host root in a fresh temp directory, removed afterwards:
//   pid 1234: cgroup v1, cgroupfs driver      -> container_a
//   pid 5678: cgroup v2, systemd driver       -> container_b
//   pid 4242: a login session, no container
//   pid 7777: no /proc entry (exited)
class FixtureRoot {
 public:
  FixtureRoot() {
    static int counter = 0;
    m_dir = fs::temp_directory_path() / fmt::format("memwarden-test-gpu-{}-{}", getpid(), counter++);
    fs::remove_all(m_dir);
    fs::create_directories(m_dir);
    write("proc/1234/cgroup",
          fmt::format("12:pids:/docker/{0}\n4:memory:/docker/{0}\n1:name=systemd:/docker/{0}\n", container_a));
    write("proc/5678/cgroup", fmt::format("0::/system.slice/docker-{}.scope\n", container_b));
    write("proc/4242/cgroup", "0::/user.slice/user-1000.slice/session-3.scope\n");
  }
  FixtureRoot(const FixtureRoot&) = delete;
  FixtureRoot& operator=(const FixtureRoot&) = delete;
  ~FixtureRoot() {
    std::error_code ignored;
    fs::remove_all(m_dir, ignored);
  }

  [[nodiscard]] HostRoot host() const { return HostRoot(m_dir); }
  [[nodiscard]] const fs::path& dir() const { return m_dir; }

  void write(const fs::path& relative, const std::string& text) const {
    const auto path = m_dir / relative;
    fs::create_directories(path.parent_path());
    std::ofstream(path) << text;
  }

 private:
  fs::path m_dir;
};

// Sets FAKE_NVML_* for one test (all others cleared) and logs the fake's calls to a file under the fixture.
class FakeNvml {
  static constexpr const char* scripted[] = {"FAKE_NVML_SCENARIO",        "FAKE_NVML_GPUS",      "FAKE_NVML_PIDS",
                                             "FAKE_NVML_GROW_BY",         "FAKE_NVML_INIT_CODE", "FAKE_NVML_TEMP_START",
                                             "FAKE_NVML_TEMP_RISE_PER_S", "FAKE_NVML_UTIL",      "FAKE_NVML_POWER_MW",
                                             "FAKE_NVML_THROTTLE"};

 public:
  explicit FakeNvml(const FixtureRoot& root) : m_log(root.dir() / "nvml.log") {
    for (const char* name : scripted) {
      unsetenv(name);
    }
    setenv("FAKE_NVML_LOG", m_log.c_str(), 1);
  }
  FakeNvml(const FakeNvml&) = delete;
  FakeNvml& operator=(const FakeNvml&) = delete;
  ~FakeNvml() {
    for (const char* name : scripted) {
      unsetenv(name);
    }
    unsetenv("FAKE_NVML_LOG");
  }

  void set(const char* name, const std::string& value) const { setenv(name, value.c_str(), 1); }

  // "<function> <code>" per call, in order.
  [[nodiscard]] std::vector<std::string> calls() const {
    std::vector<std::string> lines;
    std::ifstream in(m_log);
    for (std::string line; std::getline(in, line);) {
      lines.push_back(line);
    }
    return lines;
  }

  [[nodiscard]] std::vector<std::string> calls_to(const std::string& function) const {
    std::vector<std::string> out;
    for (const auto& line : calls()) {
      if (line.rfind(function + " ", 0) == 0) {
        out.push_back(line);
      }
    }
    return out;
  }

 private:
  fs::path m_log;
};

[[nodiscard]] NvmlOptions fake_library() {
  return NvmlOptions{FAKE_NVML_PATH};
}

void expect_full_memory(const Gpu& gpu) {
  EXPECT_EQ(gpu.memory_total, std::optional<std::uint64_t>(total_bytes));
  EXPECT_EQ(gpu.memory_used, std::optional<std::uint64_t>(used_bytes));
  EXPECT_EQ(gpu.memory_free, std::optional<std::uint64_t>(free_bytes));
}

TEST(ReadGpus, MissingLibraryIsNoLibraryWithOneLine) {
  const FixtureRoot root;
  const auto report = read_gpus(root.host(), NvmlOptions{(root.dir() / "absent" / "libnvidia-ml.so.1").string()});
  EXPECT_EQ(report.availability, GpuAvailability::no_library);
  EXPECT_TRUE(report.gpus.empty());
  EXPECT_NE(report.message.find("no NVIDIA driver"), std::string::npos) << report.message;
  EXPECT_NE(report.message.find("not found"), std::string::npos) << report.message;
  EXPECT_EQ(report.message.find('\n'), std::string::npos);
}

TEST(ReadGpus, DefaultNamesWithoutDriverSayWhich) {
  const FixtureRoot root;
  const auto report = read_gpus(root.host(), NvmlOptions{});
  if (report.availability != GpuAvailability::no_library) {
    GTEST_SKIP() << "this host has an NVIDIA driver";
  }
  EXPECT_EQ(report.message, "no NVIDIA driver: libnvidia-ml.so.1 not found (GPU columns omitted)");
}

TEST(ReadGpus, InitFailureIsFailedWithNvmlErrorString) {
  const FixtureRoot root;
  const FakeNvml fake(root);
  fake.set("FAKE_NVML_SCENARIO", "init_fails");
  const auto report = read_gpus(root.host(), fake_library());
  EXPECT_EQ(report.availability, GpuAvailability::failed);
  EXPECT_EQ(report.message, "NVML: Driver Not Loaded (code 9)");
  EXPECT_TRUE(report.gpus.empty());
  EXPECT_TRUE(fake.calls_to("nvmlShutdown").empty()) << "no shutdown after a failed init";
}

TEST(ReadGpus, InitFailureCarriesTheCode) {
  const FixtureRoot root;
  const FakeNvml fake(root);
  fake.set("FAKE_NVML_SCENARIO", "init_fails");
  fake.set("FAKE_NVML_INIT_CODE", "4");
  const auto report = read_gpus(root.host(), fake_library());
  EXPECT_EQ(report.availability, GpuAvailability::failed);
  EXPECT_EQ(report.message, "NVML: Insufficient Permissions (code 4)");
}

TEST(ReadGpus, HappyPathReportsExactNumbersAndContainers) {
  const FixtureRoot root;
  const FakeNvml fake(root);
  fake.set("FAKE_NVML_PIDS", "1234:1073741824,5678:536870912,4242:2097152,7777:1048576");
  const auto report = read_gpus(root.host(), fake_library());
  ASSERT_EQ(report.availability, GpuAvailability::available) << report.message;
  EXPECT_TRUE(report.message.empty());
  ASSERT_EQ(report.gpus.size(), 1U);
  const auto& gpu = report.gpus[0];
  EXPECT_EQ(gpu.index, 0U);
  EXPECT_EQ(gpu.name, "NVIDIA GeForce RTX 5070 Ti");
  expect_full_memory(gpu);
  EXPECT_EQ(gpu.temperature_c, std::optional<unsigned>(65));
  EXPECT_EQ(gpu.utilisation_pct, std::optional<unsigned>(87));
  EXPECT_EQ(gpu.memory_utilisation_pct, std::optional<unsigned>(40));
  EXPECT_EQ(gpu.power_w, std::optional<double>(150.0));
  EXPECT_EQ(gpu.throttle_reasons, std::optional<std::uint64_t>(0));  // read, and nothing holds the clocks down

  ASSERT_EQ(gpu.processes.size(), 4U);
  EXPECT_EQ(gpu.processes[0].pid, 1234U);
  EXPECT_EQ(gpu.processes[0].used_bytes, std::optional<std::uint64_t>(gib));
  EXPECT_EQ(gpu.processes[0].container_id, std::optional<std::string>(container_a));
  EXPECT_EQ(gpu.processes[1].pid, 5678U);
  EXPECT_EQ(gpu.processes[1].used_bytes, std::optional<std::uint64_t>(512 * mib));
  EXPECT_EQ(gpu.processes[1].container_id, std::optional<std::string>(container_b));
  EXPECT_EQ(gpu.processes[2].pid, 4242U);
  EXPECT_EQ(gpu.processes[2].container_id, std::nullopt);
  EXPECT_EQ(gpu.processes[3].pid, 7777U);
  EXPECT_EQ(gpu.processes[3].container_id, std::nullopt);

  // Newest entry points, v2 memory accepted first time, and NVML shut down at the end.
  const auto calls = fake.calls();
  ASSERT_FALSE(calls.empty());
  EXPECT_EQ(calls.front(), "nvmlInit_v2 0");
  EXPECT_EQ(calls.back(), "nvmlShutdown 0");
  EXPECT_EQ(fake.calls_to("nvmlDeviceGetMemoryInfo_v2"), std::vector<std::string>{"nvmlDeviceGetMemoryInfo_v2 0"});
  EXPECT_TRUE(fake.calls_to("nvmlDeviceGetMemoryInfo").empty());
  EXPECT_EQ(fake.calls_to("nvmlDeviceGetComputeRunningProcesses_v3"),
            (std::vector<std::string>{"nvmlDeviceGetComputeRunningProcesses_v3 7",
                                      "nvmlDeviceGetComputeRunningProcesses_v3 0"}));
  EXPECT_EQ(fake.calls_to("nvmlDeviceGetCurrentClocksEventReasons"),
            std::vector<std::string>{"nvmlDeviceGetCurrentClocksEventReasons 0"});
  EXPECT_TRUE(fake.calls_to("nvmlDeviceGetCurrentClocksThrottleReasons").empty());  // the newer name wins
}

TEST(ReadGpus, PowerThrottleReasonsAndUtilisationAsTheDriverSays) {
  const FixtureRoot root;
  const FakeNvml fake(root);
  fake.set("FAKE_NVML_POWER_MW", "287500");
  fake.set("FAKE_NVML_THROTTLE", "0x64");  // SW power cap | SW thermal slowdown | HW slowdown
  fake.set("FAKE_NVML_UTIL", "100");
  fake.set("FAKE_NVML_GPUS", "2");
  const auto report = read_gpus(root.host(), fake_library());
  ASSERT_EQ(report.availability, GpuAvailability::available) << report.message;
  ASSERT_EQ(report.gpus.size(), 2U);
  for (const auto& gpu : report.gpus) {
    EXPECT_EQ(gpu.power_w, std::optional<double>(287.5));
    EXPECT_EQ(gpu.throttle_reasons, std::optional<std::uint64_t>(0x64));
    EXPECT_EQ(gpu.utilisation_pct, std::optional<unsigned>(100));
  }
}

TEST(ReadGpus, TemperatureStartsWhereToldAndOnlyRises) {
  const FixtureRoot root;
  const FakeNvml fake(root);
  fake.set("FAKE_NVML_TEMP_START", "40");
  const auto flat = read_gpus(root.host(), fake_library());
  ASSERT_EQ(flat.gpus.size(), 1U);
  EXPECT_EQ(flat.gpus[0].temperature_c, std::optional<unsigned>(40));

  // Rising: at least the start, and never lower on a later read (no claim on how much time passed).
  fake.set("FAKE_NVML_TEMP_RISE_PER_S", "1000");
  const GpuReader reader(fake_library());
  const auto first = reader.read(root.host());
  const auto second = reader.read(root.host());
  ASSERT_EQ(first.gpus.size(), 1U);
  ASSERT_EQ(second.gpus.size(), 1U);
  ASSERT_TRUE(first.gpus[0].temperature_c.has_value());
  ASSERT_TRUE(second.gpus[0].temperature_c.has_value());
  EXPECT_GE(*first.gpus[0].temperature_c, 40U);
  EXPECT_GE(*second.gpus[0].temperature_c, *first.gpus[0].temperature_c);
}

TEST(ReadGpus, NoProcessesIsAnEmptyList) {
  const FixtureRoot root;
  const FakeNvml fake(root);
  const auto report = read_gpus(root.host(), fake_library());
  ASSERT_EQ(report.gpus.size(), 1U);
  EXPECT_TRUE(report.gpus[0].processes.empty());
}

TEST(ReadGpus, V2MemoryVersionMismatchFallsBackToV1) {
  const FixtureRoot root;
  const FakeNvml fake(root);
  fake.set("FAKE_NVML_SCENARIO", "no_v2_memory");
  const auto report = read_gpus(root.host(), fake_library());
  ASSERT_EQ(report.gpus.size(), 1U);
  expect_full_memory(report.gpus[0]);
  EXPECT_EQ(fake.calls_to("nvmlDeviceGetMemoryInfo_v2"), std::vector<std::string>{"nvmlDeviceGetMemoryInfo_v2 25"});
  EXPECT_EQ(fake.calls_to("nvmlDeviceGetMemoryInfo"), std::vector<std::string>{"nvmlDeviceGetMemoryInfo 0"});
}

TEST(ReadGpus, ProcessListGrowingPastTheSlackIsQueriedAgain) {
  const FixtureRoot root;
  const FakeNvml fake(root);
  fake.set("FAKE_NVML_SCENARIO", "process_grows");
  fake.set("FAKE_NVML_GROW_BY", "12");
  fake.set("FAKE_NVML_PIDS", "1234:1073741824");
  const auto report = read_gpus(root.host(), fake_library());
  ASSERT_EQ(report.gpus.size(), 1U);
  const auto& processes = report.gpus[0].processes;
  ASSERT_EQ(processes.size(), 13U);
  EXPECT_EQ(processes[0].pid, 1234U);
  EXPECT_EQ(processes[0].container_id, std::optional<std::string>(container_a));
  for (unsigned i = 1; i < 13; ++i) {
    EXPECT_EQ(processes[i].pid, 90000U + i);
    EXPECT_EQ(processes[i].used_bytes, std::optional<std::uint64_t>(mib));
    EXPECT_EQ(processes[i].container_id, std::nullopt);
  }
  EXPECT_EQ(fake.calls_to("nvmlDeviceGetComputeRunningProcesses_v3"),
            (std::vector<std::string>{"nvmlDeviceGetComputeRunningProcesses_v3 7",
                                      "nvmlDeviceGetComputeRunningProcesses_v3 7",
                                      "nvmlDeviceGetComputeRunningProcesses_v3 0"}));
}

TEST(ReadGpus, ProcessListGrowingWithinTheSlackNeedsNoRetry) {
  const FixtureRoot root;
  const FakeNvml fake(root);
  fake.set("FAKE_NVML_SCENARIO", "process_grows");
  fake.set("FAKE_NVML_GROW_BY", "2");
  fake.set("FAKE_NVML_PIDS", "1234:1073741824");
  const auto report = read_gpus(root.host(), fake_library());
  ASSERT_EQ(report.gpus.size(), 1U);
  ASSERT_EQ(report.gpus[0].processes.size(), 3U);
  EXPECT_EQ(report.gpus[0].processes[2].pid, 90002U);
  EXPECT_EQ(fake.calls_to("nvmlDeviceGetComputeRunningProcesses_v3").size(), 2U);
}

TEST(ReadGpus, UnavailableProcessMemoryIsNullopt) {
  const FixtureRoot root;
  const FakeNvml fake(root);
  fake.set("FAKE_NVML_PIDS", "5678:-1,1234:0");
  const auto report = read_gpus(root.host(), fake_library());
  ASSERT_EQ(report.gpus.size(), 1U);
  const auto& processes = report.gpus[0].processes;
  ASSERT_EQ(processes.size(), 2U);
  EXPECT_EQ(processes[0].pid, 5678U);
  EXPECT_EQ(processes[0].used_bytes, std::nullopt);
  EXPECT_EQ(processes[0].container_id, std::optional<std::string>(container_b));
  EXPECT_EQ(processes[1].used_bytes, std::optional<std::uint64_t>(0));  // zero is a value, not "unknown"
}

TEST(ReadGpus, NotSupportedLeavesFieldsUnknownNotZero) {
  const FixtureRoot root;
  const FakeNvml fake(root);
  fake.set("FAKE_NVML_SCENARIO", "not_supported");
  fake.set("FAKE_NVML_PIDS", "1234:1073741824");
  const auto report = read_gpus(root.host(), fake_library());
  ASSERT_EQ(report.availability, GpuAvailability::available);
  ASSERT_EQ(report.gpus.size(), 1U);
  const auto& gpu = report.gpus[0];
  EXPECT_EQ(gpu.name, "NVIDIA GeForce RTX 5070 Ti");
  EXPECT_EQ(gpu.temperature_c, std::nullopt);
  EXPECT_EQ(gpu.utilisation_pct, std::nullopt);
  EXPECT_EQ(gpu.memory_utilisation_pct, std::nullopt);
  EXPECT_EQ(gpu.memory_total, std::nullopt);
  EXPECT_EQ(gpu.memory_used, std::nullopt);
  EXPECT_EQ(gpu.memory_free, std::nullopt);
  EXPECT_EQ(gpu.power_w, std::nullopt);
  EXPECT_EQ(gpu.throttle_reasons, std::nullopt);
  EXPECT_EQ(fake.calls_to("nvmlDeviceGetPowerUsage"), std::vector<std::string>{"nvmlDeviceGetPowerUsage 3"});
  ASSERT_EQ(gpu.processes.size(), 1U);
  // v2 NOT_SUPPORTED is retried with v1, which says the same.
  EXPECT_EQ(fake.calls_to("nvmlDeviceGetMemoryInfo"), std::vector<std::string>{"nvmlDeviceGetMemoryInfo 3"});
}

TEST(ReadGpus, ZeroTotalMemoryIsUnknown) {
  const FixtureRoot root;
  const FakeNvml fake(root);
  fake.set("FAKE_NVML_SCENARIO", "unified_memory");
  const auto report = read_gpus(root.host(), fake_library());
  ASSERT_EQ(report.gpus.size(), 1U);
  EXPECT_EQ(report.gpus[0].memory_total, std::nullopt);
  EXPECT_EQ(report.gpus[0].memory_used, std::nullopt);
  EXPECT_EQ(report.gpus[0].memory_free, std::nullopt);
  EXPECT_EQ(report.gpus[0].temperature_c, std::optional<unsigned>(65));
}

TEST(ReadGpus, LostGpuIsStillListed) {
  const FixtureRoot root;
  const FakeNvml fake(root);
  fake.set("FAKE_NVML_SCENARIO", "gpu_lost");
  fake.set("FAKE_NVML_GPUS", "3");
  const auto report = read_gpus(root.host(), fake_library());
  ASSERT_EQ(report.availability, GpuAvailability::available);
  ASSERT_EQ(report.gpus.size(), 3U);
  EXPECT_EQ(report.gpus[1].index, 1U);
  EXPECT_EQ(report.gpus[1].name, "NVIDIA Fake GPU 1");
  expect_full_memory(report.gpus[1]);
  const auto& lost = report.gpus[2];
  EXPECT_EQ(lost.index, 2U);
  EXPECT_TRUE(lost.name.empty());
  EXPECT_EQ(lost.memory_total, std::nullopt);
  EXPECT_EQ(lost.temperature_c, std::nullopt);
  EXPECT_EQ(lost.utilisation_pct, std::nullopt);
  EXPECT_EQ(lost.power_w, std::nullopt);
  EXPECT_EQ(lost.throttle_reasons, std::nullopt);
  EXPECT_TRUE(lost.processes.empty());
  EXPECT_EQ(fake.calls().back(), "nvmlShutdown 0");
}

TEST(ReadGpus, HugeCountsAreCapped) {
  const FixtureRoot root;
  const FakeNvml fake(root);
  fake.set("FAKE_NVML_SCENARIO", "huge");
  const auto report = read_gpus(root.host(), fake_library());
  ASSERT_EQ(report.availability, GpuAvailability::available);
  ASSERT_EQ(report.gpus.size(), 64U);
  for (const auto& gpu : report.gpus) {
    EXPECT_TRUE(gpu.processes.empty());  // a million processes is more than memwarden holds
  }
  EXPECT_EQ(fake.calls().back(), "nvmlShutdown 0");
}

TEST(ReadGpus, LegacyLibraryUsesV1EntryPointsAndLayout) {
#ifndef FAKE_NVML_LEGACY_PATH
  GTEST_SKIP() << "FAKE_NVML_LEGACY_PATH not defined (fake_nvml.c built with -DFAKE_NVML_LEGACY)";
#else
  const FixtureRoot root;
  const FakeNvml fake(root);
  fake.set("FAKE_NVML_PIDS", "1234:1073741824,5678:-1,4242:3");
  const auto report = read_gpus(root.host(), NvmlOptions{FAKE_NVML_LEGACY_PATH});
  ASSERT_EQ(report.availability, GpuAvailability::available) << report.message;
  ASSERT_EQ(report.gpus.size(), 1U);
  const auto& gpu = report.gpus[0];
  expect_full_memory(gpu);
  ASSERT_EQ(gpu.processes.size(), 3U);
  EXPECT_EQ(gpu.processes[0].pid, 1234U);
  EXPECT_EQ(gpu.processes[0].used_bytes, std::optional<std::uint64_t>(gib));
  EXPECT_EQ(gpu.processes[1].pid, 5678U);
  EXPECT_EQ(gpu.processes[1].used_bytes, std::nullopt);
  EXPECT_EQ(gpu.processes[2].pid, 4242U);
  EXPECT_EQ(gpu.processes[2].used_bytes, std::optional<std::uint64_t>(3));
  EXPECT_EQ(gpu.power_w, std::optional<double>(150.0));
  // Before the rename (driver < 530) only ...ClocksThrottleReasons exists.
  EXPECT_EQ(gpu.throttle_reasons, std::optional<std::uint64_t>(0));
  EXPECT_EQ(fake.calls_to("nvmlDeviceGetCurrentClocksThrottleReasons"),
            std::vector<std::string>{"nvmlDeviceGetCurrentClocksThrottleReasons 0"});
  const auto calls = fake.calls();
  ASSERT_FALSE(calls.empty());
  EXPECT_EQ(calls.front(), "nvmlInit 0");
  EXPECT_EQ(calls.back(), "nvmlShutdown 0");
#endif
}

TEST(GpuReader, InitialisesOnceAndReadsMany) {
  const FixtureRoot root;
  const FakeNvml fake(root);
  {
    const GpuReader reader(fake_library());
    ASSERT_TRUE(reader.available());
    for (int i = 0; i < 3; ++i) {
      const auto report = reader.read(root.host());
      ASSERT_EQ(report.availability, GpuAvailability::available) << report.message;
      ASSERT_EQ(report.gpus.size(), 1U);
      expect_full_memory(report.gpus[0]);
    }
    EXPECT_EQ(fake.calls_to("nvmlInit_v2").size(), 1U);
    EXPECT_TRUE(fake.calls_to("nvmlShutdown").empty());  // still in use
  }
  EXPECT_EQ(fake.calls_to("nvmlShutdown").size(), 1U);  // at the end of the reader's life
}

TEST(GpuReader, WithoutALibraryEveryReadSaysWhy) {
  const FixtureRoot root;
  const GpuReader reader(NvmlOptions{(root.dir() / "missing" / "libnvidia-ml.so.1").string()});
  EXPECT_FALSE(reader.available());
  const auto report = reader.read(root.host());
  EXPECT_EQ(report.availability, GpuAvailability::no_library);
  EXPECT_NE(report.message.find("no NVIDIA driver"), std::string::npos) << report.message;
}

}  // namespace
}  // namespace mw::probes
