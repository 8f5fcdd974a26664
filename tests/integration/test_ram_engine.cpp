// `memwarden test ram` on the private engine: memwarden imports its own helper as an image, runs each size
// in a container limited to it, and leaves nothing behind.
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "engine/ram_test.hpp"
#include "engine_support.hpp"
#include "probes/test_cgroup.hpp"

using namespace mw;
using namespace mw::it;

namespace {

std::uint64_t meminfo(const std::string& wanted) {
  std::ifstream in("/proc/meminfo");
  std::string key;
  std::uint64_t kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit) {
    if (key == wanted) {
      return kb * 1024;
    }
  }
  return 0;
}
std::uint64_t mem_available() {
  return meminfo("MemAvailable:");
}
std::uint64_t mem_total() {
  return meminfo("MemTotal:");
}

std::size_t test_containers() {
  const auto r = docker({"ps", "-aq", "--filter", "label=memwarden.test=ram"});
  return static_cast<std::size_t>(std::count(r.out.begin(), r.out.end(), '\n'));
}

std::size_t running_test_containers() {
  const auto r = docker({"ps", "-q", "--filter", "label=memwarden.test=ram", "--filter", "status=running"});
  return static_cast<std::size_t>(std::count(r.out.begin(), r.out.end(), '\n'));
}

// Polls `done` every 100 ms until it holds or `limit` passes.
template <class F>
bool eventually(F done, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return done();
}

// The memory came back to the host: MemAvailable back within `slack` of `before`, or risen by most of the size
// from `holding` (read while it was held), whichever is reached first: other work on a shared host moves
// MemAvailable by hundreds of MiB either way, and some sandboxes update /proc/meminfo seconds late. Memory
// still held fails both (it stays near `holding`, `size` under `before`).
bool memory_came_back(std::uint64_t before, std::uint64_t holding, std::uint64_t slack) {
  return eventually([&] { return mem_available() + slack >= before || mem_available() >= holding + (1ULL << 30); },
                    60s);
}

// Where memwarden with this pid makes its n-th test cgroup (the same plan it follows).
std::string test_cgroup_of(int pid, int n) {
  const auto facts = probes::read_test_cgroup_facts(probes::HostRoot("/"));
  if (!facts) {
    return "";
  }
  const auto plan = plan_test_cgroup(*facts, 1, pid, n);
  return plan ? plan->directory : "";
}

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The size memwarden holds in the Ctrl-C tests, and how near MemAvailable must come back to where it was.
constexpr std::uint64_t k_held = 2048 * k_mib;
constexpr std::uint64_t k_slack = 768 * k_mib;

nlohmann::json report_of(const std::string& output) {
  auto j = nlohmann::json::parse(output, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << output;
  return j.is_discarded() ? nlohmann::json::object() : j;
}

}  // namespace

TEST(RamTestEngine, CtrlCWhileHoldingStopsFreesAndRemovesTheContainer) {
  ASSERT_EQ(test_containers(), 0U);
  const auto before = mem_available();
  ASSERT_GT(before, k_held + (3ULL << 30));
  test::BackgroundProcess run({MEMWARDEN_BIN, "test", "ram", "2G", "--reserve", "1G", "--hold", "5m", "--json",
                               "--docker-host", docker_host()});
  ASSERT_TRUE(eventually([] { return running_test_containers() == 1; }, 120s)) << run.output();
  const auto id = docker({"ps", "-q", "--filter", "label=memwarden.test=ram", "--filter", "status=running"}).out;
  const auto helper = std::stoi(docker({"inspect", "-f", "{{.State.Pid}}", id.substr(0, id.find('\n'))}).out);
  // Holding: the helper has touched the whole size.
  ASSERT_TRUE(eventually([&] { return test::resident_bytes(helper) >= k_held; }, 120s))
      << test::resident_bytes(helper) << run.output();
  const auto holding = mem_available();
  run.signal(SIGINT);
  EXPECT_EQ(run.wait(), 130) << run.output();
  const auto j = report_of(run.output());
  ASSERT_EQ(j["runs"].size(), 1U) << run.output();
  EXPECT_EQ(j["runs"][0]["stop"], "interrupted");
  EXPECT_EQ(j["runs"][0]["reached_bytes"], k_held) << "it was holding all of it";
  EXPECT_TRUE(j["runs"][0]["error"].is_null()) << run.output();
  EXPECT_EQ(test_containers(), 0U) << "the container is gone";
  EXPECT_FALSE(std::filesystem::exists("/proc/" + std::to_string(helper))) << "the helper is gone";
  EXPECT_TRUE(memory_came_back(before, holding, k_slack))
      << "MemAvailable " << mem_available() << ", before " << before << ", holding " << holding;
}

TEST(RamTestEngine, LeftoversOfAKilledRunAreRemovedAndARunningOneIsNamed) {
  // A stopped ram-test container, as a memwarden killed mid-run leaves it, and one another memwarden runs now.
  (void)docker({"rm", "-f", "mwit-ram-left"});
  const auto left = docker({"run", "--name", "mwit-ram-left", "--network", "none", "--label", "memwarden.test=ram",
                            "--label", "memwarden.pid=2147483600", k_hog_image, "/bin/memhog", "--help"});
  ASSERT_EQ(left.exit_code, 0) << left.err;
  Container busy("mwit-ram-busy", {"--label", "memwarden.test=ram", "--label", "memwarden.pid=1"},
                 {"/bin/memhog", "--mib", "8"});
  ASSERT_TRUE(busy.wait_for_log("memhog: ready"));
  const auto r = memwarden({"test", "ram", "64M", "--reserve", "1G", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto j = parse_output(r);
  const auto notes = j["notes"].dump();
  EXPECT_NE(notes.find("removed mwit-ram-left, a ram-test container left exited by an earlier memwarden (pid "
                       "2147483600)"),
            std::string::npos)
      << notes;
  EXPECT_NE(notes.find("mwit-ram-busy is a ram test of another memwarden (pid 1), running: left alone"),
            std::string::npos)
      << notes;
  EXPECT_NE(docker({"inspect", "mwit-ram-left"}).exit_code, 0) << "removed";
  EXPECT_EQ(running_test_containers(), 1U) << "the running one is left alone";
  EXPECT_EQ(test_containers(), 1U) << "and nothing else is left";
}

// --no-docker: the helper in a transient cgroup of its own (needs root and a writable cgroup file system).
class RamTestNoDocker : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0 || test_cgroup_of(::getpid(), 0).empty()) {
      GTEST_SKIP() << "not root, or no memory cgroup here";
    }
  }
};

TEST_F(RamTestNoDocker, ReachesASizeAndSaysAnOomInsideASmallerLimit) {
  auto r = test::run_process({MEMWARDEN_BIN, "test", "ram", "1G", "--reserve", "1G", "--no-docker", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto j = parse_output(r);
  EXPECT_EQ(j["isolation"], "cgroup");
  EXPECT_TRUE(j["image"].is_null());
  ASSERT_EQ(j["runs"].size(), 1U);
  EXPECT_EQ(j["runs"][0]["stop"], "reached");
  EXPECT_EQ(j["runs"][0]["reached_bytes"].get<std::uint64_t>(), 1024 * k_mib);
  const auto dir = j["runs"][0]["cgroup"].get<std::string>();
  EXPECT_NE(dir.find("/memwarden-test-"), std::string::npos) << dir;
  EXPECT_FALSE(std::filesystem::exists(dir)) << "removed afterwards";

  r = test::run_process(
      {MEMWARDEN_BIN, "test", "ram", "256M", "--container-limit", "128M", "--reserve", "1G", "--no-docker", "--json"});
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  j = parse_output(r);
  ASSERT_EQ(j["runs"].size(), 1U);
  EXPECT_EQ(j["runs"][0]["stop"], "oom-killed") << r.out;
  EXPECT_EQ(j["runs"][0]["oom_killed"], true);
  EXPECT_TRUE(j["runs"][0]["error"].is_null()) << "not a crash: " << r.out;
  EXPECT_FALSE(std::filesystem::exists(j["runs"][0]["cgroup"].get<std::string>()));
}

TEST_F(RamTestNoDocker, CtrlCWhileHoldingReapsTheChildAndRemovesTheCgroup) {
  const auto before = mem_available();
  ASSERT_GT(before, k_held + (3ULL << 30));
  test::BackgroundProcess run(
      {MEMWARDEN_BIN, "test", "ram", "2G", "--reserve", "1G", "--hold", "5m", "--json", "--no-docker"});
  const auto dir = std::filesystem::path(test_cgroup_of(run.pid(), 0));
  std::string procs;
  ASSERT_TRUE(eventually(
      [&] {
        procs = read_text(dir / "cgroup.procs");
        return !procs.empty();
      },
      60s))
      << run.output();
  const auto child = std::stoi(procs);
  EXPECT_NE(child, run.pid()) << "the helper, not memwarden, is in the cgroup";
  ASSERT_TRUE(eventually([&] { return test::resident_bytes(child) >= k_held; }, 120s))
      << test::resident_bytes(child) << run.output();
  const auto holding = mem_available();
  run.signal(SIGINT);
  EXPECT_EQ(run.wait(), 130) << run.output();
  const auto j = report_of(run.output());
  ASSERT_EQ(j["runs"].size(), 1U) << run.output();
  EXPECT_EQ(j["runs"][0]["stop"], "interrupted");
  EXPECT_EQ(j["runs"][0]["reached_bytes"], k_held);
  EXPECT_FALSE(std::filesystem::exists(dir)) << "the cgroup is gone";
  EXPECT_FALSE(std::filesystem::exists("/proc/" + std::to_string(child))) << "the child was reaped";
  EXPECT_TRUE(memory_came_back(before, holding, k_slack))
      << "MemAvailable " << mem_available() << ", before " << before << ", holding " << holding;
}

TEST_F(RamTestNoDocker, LeftoverCgroupsOfAGoneMemwardenAreRemovedOthersNamed) {
  // Beside where the next memwarden makes its own: one of a pid that is gone, one of a pid that lives (1).
  const auto sibling = std::filesystem::path(test_cgroup_of(::getpid(), 0)).parent_path();
  int gone = 4000000;
  while (std::filesystem::exists("/proc/" + std::to_string(gone))) {
    ++gone;
  }
  const auto stale = sibling / mw::test_cgroup_name(gone, 0);
  const auto alive = sibling / mw::test_cgroup_name(1, 7);
  ASSERT_TRUE(std::filesystem::create_directory(stale));
  ASSERT_TRUE(std::filesystem::create_directory(alive));
  const auto r = test::run_process({MEMWARDEN_BIN, "test", "ram", "64M", "--reserve", "1G", "--no-docker", "--json"});
  std::error_code ec;
  const bool stale_was_there = std::filesystem::remove(stale, ec);
  const bool alive_was_there = std::filesystem::remove(alive, ec);
  EXPECT_FALSE(stale_was_there) << "removed by memwarden";
  EXPECT_TRUE(alive_was_there) << "left alone";
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto notes = parse_output(r)["notes"].dump();
  EXPECT_NE(notes.find("removed " + stale.string()), std::string::npos) << notes;
  EXPECT_NE(notes.find(alive.string() + " is a test cgroup of another memwarden (pid 1): left alone"),
            std::string::npos)
      << notes;
}

TEST(RamTestEngine, OneGigabyteIsReachedInsideItsLimitAndNothingIsLeft) {
  const auto r = memwarden({"test", "ram", "1G", "--reserve", "1G", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto j = parse_output(r);
  EXPECT_EQ(j["image"].get<std::string>().rfind("memwarden/alloc:", 0), 0U) << "memwarden's own image";
  ASSERT_EQ(j["runs"].size(), 1U);
  const auto& run = j["runs"][0];
  EXPECT_EQ(run["reached"], true);
  EXPECT_EQ(run["reached_bytes"].get<std::uint64_t>(), 1024 * k_mib);
  EXPECT_EQ(run["container_limit_bytes"].get<std::uint64_t>(), engine::ram_test_limit(1024 * k_mib));
  EXPECT_EQ(run["stop"], "reached");
  EXPECT_GT(run["min_available_bytes"].get<std::uint64_t>(), 1ULL << 30);
  EXPECT_LT(run["min_available_bytes"].get<std::uint64_t>(), mem_available() + 512 * k_mib)
      << "read with the gigabyte held";
  EXPECT_FALSE(run["oom_killed"].get<bool>());
  EXPECT_EQ(test_containers(), 0U);
}

TEST(RamTestEngine, AFloorAboveWhatIsFreeStopsItEarlyAndFreesTheMemory) {
  const auto before = mem_available();
  ASSERT_GT(before, 3ULL << 30);
  // 384 MiB above the reserve: the first 256 MiB chunk fits, and a later one would break it. The size is the
  // most the host may be asked for with that reserve (MemTotal less it), so it is not refused first. (Where
  // MemAvailable follows allocations late, as in some sandboxes, it stops a chunk or two later.)
  const auto reserve = before - 384 * k_mib;
  const auto size = mem_total() - reserve;
  ASSERT_GE(size, 512 * k_mib) << "room for two chunks";
  const auto r = memwarden({"test", "ram", std::to_string(size), "--reserve", std::to_string(reserve), "--json"});
  EXPECT_EQ(r.exit_code, 4) << "not possible on this host\n" << r.out << r.err;
  const auto j = parse_output(r);
  ASSERT_EQ(j["runs"].size(), 1U);
  const auto& run = j["runs"][0];
  EXPECT_EQ(run["stop"], "reserve");
  EXPECT_EQ(run["reached"], false);
  const auto reached = run["reached_bytes"].get<std::uint64_t>();
  EXPECT_GE(reached, 256 * k_mib) << "the first chunk fitted";
  EXPECT_LT(reached, size) << "stopped early";
  EXPECT_EQ(run["swap_in_pages"], 0);
  EXPECT_EQ(test_containers(), 0U) << "the container, and with its cgroup the memory, is gone";
}

TEST(RamTestEngine, ASizeAboveTheContainersLimitIsNotReachedAndTheOomIsSaid) {
  const auto r = memwarden({"test", "ram", "256M", "--container-limit", "128M", "--json"});
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  const auto j = parse_output(r);
  ASSERT_EQ(j["runs"].size(), 1U);
  const auto& run = j["runs"][0];
  EXPECT_EQ(run["reached"], false);
  EXPECT_TRUE(run["error"].is_null()) << "not a crash: " << run.dump();
  const auto stop = run["stop"].get<std::string>();
  EXPECT_TRUE(stop == "oom-killed" || stop == "allocation-failed") << stop;
  EXPECT_EQ(test_containers(), 0U);
}

TEST(RamTestEngine, ASizeLargerThanTheHostIsRefusedBeforeAnything) {
  const auto r = memwarden({"test", "ram", "1T"});
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  EXPECT_NE(r.out.find("is more than this host's"), std::string::npos) << r.out;
  EXPECT_EQ(test_containers(), 0U);
}
