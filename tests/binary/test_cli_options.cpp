// The real memwarden binary, no Docker: malformed numeric options are refused with exit 2 and one line
// naming the option, durations take days everywhere, and `history` exits 3 for a missing state directory
// and 6 for a journal it cannot use (issue 11, "refuse what is malformed").
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "adapters/journal.hpp"
#include "adapters/sample_store.hpp"
#include "test_support.hpp"

using mw::test::ProcessResult;
using mw::test::TempDir;
namespace fs = std::filesystem;

namespace {

// The binary built with these tests, or another build of it: scripts/test.sh runs these tests again on the
// static release binary (MEMWARDEN_TEST_BINARY=build/release/src/cli/memwarden).
std::string binary() {
  const char* other = std::getenv("MEMWARDEN_TEST_BINARY");
  return other != nullptr && *other != '\0' ? std::string(other) : std::string(MEMWARDEN_BIN);
}

ProcessResult memwarden(std::vector<std::string> args) {
  args.insert(args.begin(), binary());
  return mw::test::run_process(args, {"DOCKER_HOST=unix:///nonexistent/docker.sock"});
}

std::string command_line(const std::vector<std::string>& args) {
  std::string out = "memwarden";
  for (const auto& a : args) {
    out += " " + a;
  }
  return out;
}

// Exit 2, nothing on stdout, exactly `line` on stderr.
void expect_refused(const std::vector<std::string>& args, const std::string& line) {
  const auto r = memwarden(args);
  EXPECT_EQ(r.exit_code, 2) << command_line(args) << "\n" << r.out << r.err;
  EXPECT_EQ(r.out, "") << command_line(args);
  EXPECT_EQ(r.err, "memwarden: " + line + "\n") << command_line(args);
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void write_journal(const fs::path& dir, int records) {
  auto journal = mw::adapters::Journal::open(dir);
  ASSERT_TRUE(journal) << journal.error().line();
  for (int i = 0; i < records; ++i) {
    mw::adapters::JournalRecord r;
    r.started_at_ms = now_ms() - 60'000 + i;
    r.server = "ollama";
    r.container_id = "c0ffee";
    r.kind = "unload";
    r.reason = "idle-bloat";
    r.evidence_json = "{}";
    ASSERT_TRUE(journal->begin(r));
  }
}

void write_garbage(const fs::path& file) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << std::string(8192, '\x5a');
}

// Should a value be taken after all, one sample and no action: a regression fails fast and changes nothing.
const std::vector<std::string> k_fix = {"fix", "--all", "--dry-run", "--window", "0"};
const std::vector<std::string> k_diagnose = {"diagnose", "--window", "0"};

// memwarden run as a user who may read `dir` but not write it: root reads and writes whatever the mode bits
// say, so as root the command runs as nobody (setpriv) with `dir` given to nobody and made read-only.
// nullopt when neither is possible.
std::optional<ProcessResult> memwarden_read_only(const fs::path& dir, std::vector<std::string> args) {
  constexpr unsigned k_nobody = 65534;
  if (::geteuid() == 0) {
    if (::access("/usr/bin/setpriv", X_OK) != 0) {
      return std::nullopt;
    }
    for (const auto& entry : fs::recursive_directory_iterator(dir)) {
      if (::chown(entry.path().c_str(), k_nobody, k_nobody) != 0) {
        return std::nullopt;
      }
    }
    if (::chown(dir.c_str(), k_nobody, k_nobody) != 0 || ::chmod(dir.parent_path().c_str(), 0755) != 0) {
      return std::nullopt;
    }
  }
  for (const auto& entry : fs::directory_iterator(dir)) {
    ::chmod(entry.path().c_str(), 0444);
  }
  ::chmod(dir.c_str(), 0555);
  if (::geteuid() == 0) {
    args.insert(args.begin(), {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", binary()});
  } else {
    args.insert(args.begin(), binary());
  }
  auto r = mw::test::run_process(args);
  ::chmod(dir.c_str(), 0755);  // so that the TempDir can be removed
  return r;
}

std::vector<std::string> with(std::vector<std::string> base, const std::vector<std::string>& more) {
  base.insert(base.end(), more.begin(), more.end());
  return base;
}

}  // namespace

TEST(NumericOptions, BudgetIsAWholeNumberFrom0To1000) {
  TempDir tmp;
  const auto state = tmp.path().string();
  for (const std::string& bad : std::vector<std::string>{"-1", "99999999999999999999", "18446744073709551615", "1001",
                                                         "0x10", "1e3", "1.5", "+3", "three", ""}) {
    expect_refused(with(k_fix, {"--state-dir", state, "--budget", bad}),
                   "--budget: '" + bad + "' is not a whole number from 0 to 1000");
  }
}

TEST(NumericOptions, BudgetWithLeadingZerosIsDecimal) {
  TempDir tmp;
  for (const std::string& good : std::vector<std::string>{"010", "0", "1000"}) {
    // No Docker here: the run ends with a missing source (3), but the budget was taken.
    auto args = with(k_fix, {"--state-dir", tmp.path().string(), "--budget", good});
    args.insert(args.begin(), {"--root", mw::test::fixture_path("hosts/v2-cgroupfs-5.15").string()});
    const auto r = memwarden(args);
    EXPECT_NE(r.exit_code, 2) << good << "\n" << r.out << r.err;
    EXPECT_EQ(r.err.find("--budget"), std::string::npos) << r.err;
  }
}

TEST(NumericOptions, GrowthMinIsAFiniteNumberFrom0Point1) {
  TempDir tmp;
  for (const std::string& bad :
       std::vector<std::string>{"nan", "NaN", "inf", "-inf", "-1", "0", "0.05", "1e3", "0x10", "2000000", "fast"}) {
    for (const auto& command : {k_diagnose, k_fix}) {
      expect_refused(with(command, {"--state-dir", tmp.path().string(), "--growth-min=" + bad}),
                     "--growth-min: '" + bad + "' is not a number from 0.1 to 1048576");
    }
  }
}

TEST(NumericOptions, HistoryLimitIsAWholeNumber) {
  TempDir tmp;
  for (const std::string& bad :
       std::vector<std::string>{"-5", "-1", "99999999999999999999", "1000001", "0x10", "5.0", "ten"}) {
    expect_refused({"history", "--state-dir", tmp.path().string(), "--limit", bad},
                   "--limit: '" + bad + "' is not a whole number from 0 to 1000000");
  }
}

TEST(NumericOptions, HistoryLimitWithLeadingZerosIsDecimal) {
  TempDir tmp;
  write_journal(tmp.path(), 12);
  const auto r = memwarden({"history", "--json", "--state-dir", tmp.path().string(), "--limit", "010"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["records"].size(), 10U);  // 10, not 8
}

TEST(NumericOptions, PlanCtxParallelHeadroom) {
  expect_refused({"plan", "llama3.1:8b", "--ctx", "-1"}, "--ctx: '-1' is not a whole number from 1 to 16777216");
  expect_refused({"plan", "llama3.1:8b", "--ctx", "0"}, "--ctx: '0' is not a whole number from 1 to 16777216");
  expect_refused({"plan", "llama3.1:8b", "--ctx", "0x1000"},
                 "--ctx: '0x1000' is not a whole number from 1 to 16777216");
  expect_refused({"plan", "llama3.1:8b", "--parallel", "-1"}, "--parallel: '-1' is not a whole number from 1 to 256");
  expect_refused({"plan", "llama3.1:8b", "--parallel", "99999999999999999999"},
                 "--parallel: '99999999999999999999' is not a whole number from 1 to 256");
  expect_refused({"plan", "llama3.1:8b", "--headroom", "-20"},
                 "--headroom: '-20' is not a whole number from 0 to 1000");
  expect_refused({"plan", "llama3.1:8b", "--headroom", "nan"},
                 "--headroom: 'nan' is not a whole number from 0 to 1000");
}

TEST(SizeOptions, NegativeNanAndOverflowAreRefused) {
  expect_refused({"status", "--reserve", "-1G"},
                 "--reserve: invalid size '-1G': no number (use e.g. 4G, 512M, 1.5GiB)");
  expect_refused({"status", "--reserve", "nan"},
                 "--reserve: invalid size 'nan': no number (use e.g. 4G, 512M, 1.5GiB)");
  expect_refused({"plan", "llama3.1:8b", "--ram", "16000000T"},
                 "--ram: invalid size '16000000T': too large (use e.g. 4G, 512M, 1.5GiB)");
  expect_refused({"plan", "llama3.1:8b", "--vram", "99999999999999999999"},
                 "--vram: invalid size '99999999999999999999': too large (use e.g. 4G, 512M, 1.5GiB)");
}

TEST(DurationOptions, DaysAreAcceptedEverywhere) {
  TempDir tmp;
  {
    auto store = mw::adapters::SampleStore::open(tmp.path(), {});
    ASSERT_TRUE(store) << store.error().line();
    mw::adapters::StoredSample s;
    s.subject = "host";
    s.at_ms = now_ms() - 3'600'000 * 5;  // five hours ago: outside the default 1h, inside 1d
    s.mem_available = 1ULL << 30;
    ASSERT_TRUE(store->append({s}));
  }
  const auto r =
      memwarden({"history", "--samples", "host", "--since", "1d", "--json", "--state-dir", tmp.path().string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto doc = nlohmann::json::parse(r.out);
  EXPECT_NEAR(static_cast<double>(doc["until_ms"].get<std::int64_t>() - doc["since_ms"].get<std::int64_t>()),
              86'400'000.0, 1.0);
  EXPECT_EQ(doc["raw"].size(), 0U);  // raw rows cover the newest hour only
  EXPECT_EQ(r.err, "");
}

TEST(DurationOptions, MalformedDurationsAreRefused) {
  TempDir tmp;
  for (const std::string& bad : std::vector<std::string>{"-1d", "nan", "inf", "1x", "", "99999999999999999999d"}) {
    const auto r = memwarden({"history", "--samples", "host", "--since", bad, "--state-dir", tmp.path().string()});
    EXPECT_EQ(r.exit_code, 2) << bad << ": " << r.err;
    EXPECT_EQ(r.err.find("memwarden: --since: "), 0U) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  expect_refused(with(k_diagnose, {"--state-dir", tmp.path().string(), "--lookback", "-30m"}),
                 "--lookback: invalid duration '-30m' (use e.g. 2s, 500ms, 5m, 1h, 1d)");
}

TEST(HistoryExitCodes, MissingStateDirectoryIs3) {
  TempDir tmp;
  const auto dir = (tmp.path() / "missing").string();
  for (const auto& args : std::vector<std::vector<std::string>>{{"history", "--state-dir", dir},
                                                                {"history", "--samples", "host", "--state-dir", dir}}) {
    const auto r = memwarden(args);
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, "memwarden: " + dir +
                         ": no such state directory (memwarden fix and memwarden serve create it; --state-dir names "
                         "another)\n");
    EXPECT_FALSE(fs::exists(dir));
  }
}

TEST(HistoryExitCodes, EmptyStateDirectoryHasNoActions) {
  TempDir tmp;
  const auto r = memwarden({"history", "--state-dir", tmp.path().string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "no actions recorded (no journal in " + tmp.path().string() + ")\n");
}

TEST(HistoryExitCodes, CorruptJournalIs6) {
  TempDir tmp;
  write_garbage(tmp.path() / "memwarden.db");
  const auto r = memwarden({"history", "--state-dir", tmp.path().string()});
  EXPECT_EQ(r.exit_code, 6) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err.find("memwarden: " + (tmp.path() / "memwarden.db").string() + ": the journal database is corrupt"),
            0U)
      << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(HistoryExitCodes, CorruptSampleHistoryIs6AndMissingIs3) {
  TempDir tmp;
  auto r = memwarden({"history", "--samples", "host", "--state-dir", tmp.path().string()});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_EQ(r.err,
            "memwarden: " + (tmp.path() / "samples.db").string() + ": no sample history (memwarden serve keeps it)\n");
  write_garbage(tmp.path() / "samples.db");
  r = memwarden({"history", "--samples", "host", "--state-dir", tmp.path().string()});
  EXPECT_EQ(r.exit_code, 6) << r.err;
  EXPECT_EQ(r.err.find("memwarden: " + (tmp.path() / "samples.db").string() + ": "), 0U) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(HistoryExitCodes, ReadOnlyJournalIs6NotAnInternalError) {
  TempDir tmp;
  const auto state = tmp.path() / "state";
  write_journal(state, 2);
  const auto r = memwarden_read_only(state, {"history", "--state-dir", state.string()});
  if (!r) {
    GTEST_SKIP() << "cannot run memwarden as a user without write access here";
  }
  // Journal::open writes (WAL mode, schema) before it reads, so a journal it may only read is unusable.
  EXPECT_EQ(r->exit_code, 6) << r->out << r->err;
  EXPECT_EQ(r->out, "");
  EXPECT_EQ(r->err.find("memwarden: " + (state / "memwarden.db").string() + ": "), 0U) << r->err;
  EXPECT_EQ(std::count(r->err.begin(), r->err.end(), '\n'), 1) << r->err;
}

// ---- files named on the command line or in a configuration

TEST(ConfigFiles, FifoDevZeroAndHugeConfigsAreRefusedWithinASecond) {
  TempDir dir;
  const auto fifo = dir.path() / "fifo.yaml";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  dir.write("huge.yaml", "# " + std::string(50U << 20, 'x') + "\n");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {fifo.string(), fifo.string() + ": cannot read: is a FIFO, not a regular file"},
      {"/dev/zero", "/dev/zero: cannot read: is a character device, not a regular file"},
      {(dir.path() / "huge.yaml").string(),
       (dir.path() / "huge.yaml").string() + ": cannot read: larger than 1 MiB, the most memwarden reads of it"}};
  for (const auto& [path, line] : cases) {
    const auto started = std::chrono::steady_clock::now();
    const auto r = memwarden({"check-config", path});
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(1)) << path;
    EXPECT_EQ(r.exit_code, 2) << path << r.err;
    EXPECT_EQ(r.err, line + "\n") << path;
  }
}

TEST(ConfigFiles, CheckConfigValidatesTheTokenFile) {
  TempDir dir;
  const auto token = dir.path() / "token";
  const auto config = dir.path() / "c.yaml";
  dir.write("c.yaml", "token_file: " + token.string() + "\n");
  auto r = memwarden({"check-config", config.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, config.string() + ": token_file: " + token.string() + ": No such file or directory\n");
  dir.write("token", "s3cret\n");
  fs::permissions(token, fs::perms::owner_read | fs::perms::owner_write | fs::perms::others_read);
  r = memwarden({"check-config", config.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, config.string() + ": token_file: " + token.string() +
                       ": the token file can be read by every user; make it private (chmod 600)\n");
  fs::permissions(token, fs::perms::owner_read | fs::perms::owner_write);
  dir.write("token", "\n");
  r = memwarden({"check-config", config.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, config.string() + ": token_file: " + token.string() + ": the token file is empty\n");
  dir.write("token", "s3cret\n");
  r = memwarden({"check-config", config.string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, config.string() + ": ok\n");
}

TEST(ConfigFiles, PlanRefusesAFifoNamedLikeAModelAtOnce) {
  TempDir dir;
  const auto fifo = dir.path() / "x.gguf";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const auto started = std::chrono::steady_clock::now();
  const auto r = memwarden({"plan", fifo.string(), "--ram", "32G", "--vram", "16G"});
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(1));
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_NE((r.out + r.err).find("is a FIFO, not a regular file"), std::string::npos) << r.out << r.err;
}

TEST(UrlOptions, PortsOutsideTheRangeAreRefused) {
  const auto r =
      memwarden({"plan", "llama3.1:8b", "--ram", "32G", "--vram", "16G", "--ollama", "http://127.0.0.1:99999"});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;  // plan: a source could not be used
  EXPECT_NE((r.out + r.err).find("--ollama: 'http://127.0.0.1:99999': port 99999 is not from 1 to 65535"),
            std::string::npos)
      << r.out << r.err;
  const auto status = memwarden({"status", "--docker-host", "tcp://127.0.0.1:99999"});
  EXPECT_NE(status.out.find("port 99999 is not from 1 to 65535"), std::string::npos) << status.out << status.err;
}

TEST(DeployOptions, BadValuesAreRefusedBeforeAnythingIsRead) {
  expect_refused({"deploy"}, "deploy: name a profile (memwarden profiles) or one or more models");
  expect_refused({"deploy", "standard", "--port", "0"}, "--port: '0' is not a whole number from 1 to 65535");
  expect_refused({"deploy", "standard", "--port", "65536"}, "--port: '65536' is not a whole number from 1 to 65535");
  expect_refused({"deploy", "standard", "--gpus", "0;rm"},
                 "--gpus: '0;rm' is not all, none or a list of GPU indexes or UUIDs");
  expect_refused({"deploy", "standard", "--network", "overlay"}, "--network: 'overlay' is not bridge or host");
  expect_refused({"deploy", "standard", "--restore"}, "deploy --restore: takes no profile or model");
  expect_refused({"deploy", "standard", "--bind", "0.0.0.0;x"}, "--bind: '0.0.0.0;x' is not an IPv4 or IPv6 address");
  expect_refused({"export", "compose", "standard", "large-33b", "--name", "x"},
                 "--name: names one container; give one profile with it");
}

TEST(DeployOptions, AnUnknownProfileOrModelSuggestsTheClosestProfile) {
  const auto r = memwarden({"deploy", "larg-33b", "--ram", "64G", "--vram", "0"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("did you mean large-33b?"), std::string::npos) << r.err;
}

TEST(ExportCompose, TwoServicesOnOnePortAreRefused) {
  const auto r = memwarden({"export", "compose", "large-33b", "large-70b", "--ram", "256G", "--vram", "0"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("large-33b and large-70b share port 11434"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST(Profiles, ThePlannedLimitStandsBesideTheSeedsOnAHypotheticalHost) {
  // The seed's 33B template: 28 GB. With a 16 GiB GPU the plan puts most of the model there.
  const auto r = memwarden({"profiles", "--ram", "32G", "--vram", "16G", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["profiles"].size(), 4U);
  for (const auto& p : j["profiles"]) {
    if (p["name"] == "large-33b") {
      EXPECT_EQ(p["seed_limit_bytes"].get<std::uint64_t>(), 28'000'000'000U);
      EXPECT_LT(p["planned_limit_bytes"].get<std::uint64_t>(), p["seed_limit_bytes"].get<std::uint64_t>()) << r.out;
    }
  }
}

TEST(TestRamOptions, BadSizesAndThresholdsAreRefused) {
  expect_refused({"test", "ram", "0"}, "SIZE: '0' is 0: nothing to test");
  expect_refused({"test", "ram", "-1G"}, "SIZE: invalid size '-1G': no number (use e.g. 4G, 512M, 1.5GiB)");
  expect_refused({"test", "ram", "1G", "--psi-full-max", "101"}, "--psi-full-max: '101' is not a number from 0 to 100");
  expect_refused({"test", "ram", "1G", "--image", "../x"}, "--image: '../x' is not an image reference");
}

TEST(TestRamOptions, HoldAndNoDockerAreChecked) {
  expect_refused({"test", "ram", "1G", "--hold", "25h"}, "--hold: at most 24h");
  expect_refused({"test", "ram", "1G", "--no-docker", "--image", "busybox"},
                 "--image: not with --no-docker (no container is made)");
  expect_refused({"test", "ram", "1G", "--no-docker", "--docker-host", "unix:///x.sock"},
                 "--docker-host: not with --no-docker (no container is made)");
}

// A host where memwarden cannot make a cgroup: one line, exit 3, and nothing made.
TEST(TestRamOptions, NoDockerWhereNoCgroupCanBeMadeIsOneLineAndExit3) {
  TempDir root;  // a tree that looks like a v1 host but is no cgroup file system
  root.write("proc/meminfo", "MemTotal:       32000000 kB\nMemAvailable:   30000000 kB\n");
  root.write("proc/self/cgroup", "4:memory:/process_api/abc\n0::/\n");
  root.write("sys/fs/cgroup/memory/memory.usage_in_bytes", "1\n");
  root.write("sys/fs/cgroup/memory/process_api/abc/memory.usage_in_bytes", "1\n");
  // What looks like a killed memwarden's test cgroup, an hour old: off a cgroup file system nothing is swept.
  const auto planted = root.path() / "sys/fs/cgroup/memory/process_api/memwarden-test-4000001-1";
  fs::create_directories(planted);
  fs::last_write_time(planted, fs::file_time_type::clock::now() - std::chrono::hours(1));
  const std::vector<std::string> env{std::string("MEMWARDEN_ALLOC=") + MEMWARDEN_ALLOC_BIN};
  auto r = mw::test::run_process({binary(), "--root", root.path().string(), "test", "ram", "64M", "--no-docker"}, env);
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "memwarden: test ram: " + (root.path() / "sys/fs/cgroup/memory/process_api").string() +
                       ": not on a cgroup file system: no test cgroup can be made there\n");
  EXPECT_TRUE(fs::exists(planted)) << "not swept";
  std::vector<std::string> made;
  for (const auto& entry : fs::directory_iterator(root.path() / "sys/fs/cgroup/memory/process_api")) {
    if (entry.path().filename().string().rfind("memwarden-test-", 0) == 0 && entry.path() != planted) {
      made.push_back(entry.path().filename().string());
    }
  }
  EXPECT_TRUE(made.empty()) << "nothing made: " << made.size() << (made.empty() ? "" : " " + made.front());

  if (::geteuid() != 0 || !fs::exists("/usr/bin/setpriv") || !fs::exists("/sys/fs/cgroup")) {
    GTEST_SKIP() << "not root, or no setpriv: the unprivileged case is not tried";
  }
  // Not root on the real host: the kernel says no.
  r = mw::test::run_process({"/usr/bin/setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", binary(),
                             "test", "ram", "64M", "--no-docker"},
                            env);
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("run it as root"), std::string::npos) << r.err;
}

TEST(TestRamOptions, AContainerLimitUnderTheEnginesSmallestIsRefused) {
  expect_refused({"test", "ram", "1G", "--container-limit", "1M"},
                 "--container-limit: must be at least 6M (the engine's smallest limit)");
}
