// `memwarden test ram` on the private engine: memwarden imports its own helper as an image, runs each size
// in a container limited to it, and leaves nothing behind.
#include <gtest/gtest.h>

#include <fmt/format.h>

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

// The test cgroup memwarden `pid` made (its names carry a random number), or "" while there is none.
std::string made_test_cgroup(int pid) {
  const auto sibling = std::filesystem::path(test_cgroup_of(pid, 0)).parent_path();
  const auto prefix = "memwarden-test-" + std::to_string(pid) + "-";
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(sibling, ec)) {
    if (entry.path().filename().string().rfind(prefix, 0) == 0) {
      return entry.path().string();
    }
  }
  return "";
}

// This test process as the owner of a ram-test container (core::TestOwner), read as memwarden reads its own.
TestOwner this_process() {
  auto owner = probes::read_own_identity(probes::HostRoot("/"));
  EXPECT_TRUE(owner) << "cannot read /proc/self";
  return owner ? *owner : TestOwner{};
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

TEST(RamTestEngine, LeftoversGoWhenTheirMemwardenIsGoneOrTheirTimeIsPast) {
  // As memwardens label them: one whose memwarden is gone (a pid with no process in this namespace), one past its
  // time whose memwarden cannot be told (another pid namespace), one of a memwarden still running (this test, by
  // its pid and start time), and one of a memwarden in another pid namespace still within its time.
  const auto self = this_process();
  int gone = 4000000;
  while (std::filesystem::exists("/proc/" + std::to_string(gone))) {
    ++gone;
  }
  auto dead = self;
  dead.pid = gone;
  auto foreign = self;
  foreign.pid_namespace = "pid:[1]";
  const auto now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  const auto labels = [](const TestOwner& owner, std::int64_t expires) {
    return std::vector<std::string>{"--label", "memwarden.test=ram",
                                    "--label", "memwarden.owner=" + owner_label(owner),
                                    "--label", "memwarden.expires=" + std::to_string(expires)};
  };
  const auto stopped = [&](const std::string& name, const std::vector<std::string>& l) {
    (void)docker({"rm", "-f", name});
    std::vector<std::string> args{"run", "--name", name, "--network", "none"};
    args.insert(args.end(), l.begin(), l.end());
    args.insert(args.end(), {k_hog_image, "/bin/memhog", "--help"});
    EXPECT_EQ(docker(args).exit_code, 0) << name;
  };
  stopped("mwit-ram-gone", labels(dead, now + 3600));
  stopped("mwit-ram-expired", labels(foreign, now - 10));
  stopped("mwit-ram-foreign", labels(foreign, now + 3600));
  Container busy("mwit-ram-busy", labels(self, now + 3600), {"/bin/memhog", "--mib", "8"});
  ASSERT_TRUE(busy.wait_for_log("memhog: ready"));
  const auto r = memwarden({"test", "ram", "64M", "--reserve", "1G", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto notes = parse_output(r)["notes"].dump();
  EXPECT_NE(notes.find(fmt::format("removed mwit-ram-gone, a ram-test container of memwarden pid {} (its memwarden "
                                   "is gone)",
                                   gone)),
            std::string::npos)
      << notes;
  EXPECT_NE(notes.find("removed mwit-ram-expired"), std::string::npos) << notes;
  EXPECT_NE(notes.find("past its time"), std::string::npos) << notes;
  EXPECT_NE(notes.find(fmt::format("mwit-ram-busy is a ram test of memwarden pid {}, still running, running: left "
                                   "alone",
                                   self.pid)),
            std::string::npos)
      << notes;
  EXPECT_NE(notes.find("mwit-ram-foreign is a ram test of memwarden pid"), std::string::npos) << notes;
  EXPECT_NE(docker({"inspect", "mwit-ram-gone"}).exit_code, 0) << "removed";
  EXPECT_NE(docker({"inspect", "mwit-ram-expired"}).exit_code, 0) << "removed";
  EXPECT_EQ(docker({"inspect", "mwit-ram-foreign"}).exit_code, 0) << "left alone";
  (void)docker({"rm", "-f", "mwit-ram-foreign"});
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
  std::filesystem::path dir;
  std::string procs;
  ASSERT_TRUE(eventually(
      [&] {
        dir = made_test_cgroup(run.pid());
        procs = dir.empty() ? "" : read_text(dir / "cgroup.procs");
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

TEST_F(RamTestNoDocker, EmptyOldLeftoverCgroupsGoAndFreshOrBusyOnesStay) {
  // Beside where the next memwarden makes its own: an empty one made two minutes ago (a killed memwarden's), an
  // empty one made just now (a live memwarden may be about to put its helper in), and an old one that holds a
  // process (a test still running).
  const auto sibling = std::filesystem::path(test_cgroup_of(::getpid(), 0)).parent_path();
  const auto stale = sibling / mw::test_cgroup_name(4000001, 1);
  const auto fresh = sibling / mw::test_cgroup_name(4000001, 2);
  const auto busy = sibling / mw::test_cgroup_name(4000001, 3);
  for (const auto& dir : {stale, fresh, busy}) {
    ASSERT_TRUE(std::filesystem::create_directory(dir)) << dir;
  }
  const auto old = std::filesystem::file_time_type::clock::now() - std::chrono::minutes(2);
  std::error_code ec;
  std::filesystem::last_write_time(stale, old, ec);
  ASSERT_FALSE(ec) << "cannot age " << stale << ": " << ec.message();
  std::filesystem::last_write_time(busy, old, ec);
  test::BackgroundProcess sleeper({"/bin/sleep", "120"});
  {
    std::ofstream procs(busy / "cgroup.procs");
    procs << sleeper.pid();
  }
  const auto r = test::run_process({MEMWARDEN_BIN, "test", "ram", "64M", "--reserve", "1G", "--no-docker", "--json"});
  sleeper.signal(SIGKILL);
  (void)sleeper.wait();
  const bool stale_was_there = std::filesystem::remove(stale, ec);
  const bool fresh_was_there = std::filesystem::remove(fresh, ec);
  const bool busy_was_there = std::filesystem::remove(busy, ec);
  EXPECT_FALSE(stale_was_there) << "removed by memwarden";
  EXPECT_TRUE(fresh_was_there) << "too new to be a leftover";
  EXPECT_TRUE(busy_was_there) << "holds a process";
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto notes = parse_output(r)["notes"].dump();
  EXPECT_NE(notes.find("removed " + stale.string()), std::string::npos) << notes;
  EXPECT_NE(notes.find(busy.string() + " holds processes"), std::string::npos) << notes;
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
