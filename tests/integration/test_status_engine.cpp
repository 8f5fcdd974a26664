// `memwarden status` (the real binary) against a private Docker engine started
// by the ctest fixture (scripts/integration-fixture.sh), with containers that
// hold real memory (tests/support/memhog.c).
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "engine_support.hpp"

using mw::test::run_process;
using nlohmann::json;
using namespace std::chrono_literals;

using namespace mw::it;

namespace {

json status_json(const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args{"status", "--json"};
  args.insert(args.end(), extra.begin(), extra.end());
  const auto r = memwarden(args);
  EXPECT_TRUE(r.exit_code == 0 || r.exit_code == 3) << r.exit_code << r.err;
  auto doc = json::parse(r.out, nullptr, false);
  EXPECT_FALSE(doc.is_discarded()) << r.out;
  return doc;
}

const json* find_container(const json& doc, const std::string& name) {
  for (const auto& c : doc["containers"]) {
    if (c["name"] == name) {
      return &c;
    }
  }
  return nullptr;
}

bool has_warning(const json& doc, const std::string& kind, const std::string& subject) {
  for (const auto& w : doc["warnings"]) {
    if (w["kind"] == kind && w["subject"] == subject) {
      return true;
    }
  }
  return false;
}

}  // namespace

TEST(StatusOnEngine, HogIsReportedWithinFivePercentAndItsLimitIsExact) {
  ASSERT_FALSE(docker_host().empty()) << "the engine fixture did not run";
  Container hog("mwit-hog200", {"-m", "512m"}, {"/bin/memhog", "--mib", "200"});
  ASSERT_TRUE(hog.wait_for_log("memhog: ready anon_mib=200"));
  const auto doc = status_json();
  EXPECT_EQ(doc["docker"]["reachable"], true);
  const auto* c = find_container(doc, hog.name());
  ASSERT_NE(c, nullptr) << doc.dump(2);
  const auto& m = (*c)["memory"];
  ASSERT_FALSE(m.is_null()) << (*c)["memory_error"];
  expect_within(m["anon_bytes"].get<double>(), 200.0 * k_mib, 0.05, "anon");
  expect_within(m["working_set_bytes"].get<double>(), 200.0 * k_mib, 0.05, "working set");
  EXPECT_EQ(m["limit_bytes"], 512 * k_mib);
  EXPECT_EQ((*c)["memory_limit_bytes"], 512 * k_mib);
  EXPECT_EQ(m["unlimited"], false);
  EXPECT_FALSE(has_warning(doc, "unlimited_container", hog.name()));
}

TEST(StatusOnEngine, UnlimitedContainerIsFlaggedInTableAndJson) {
  Container hog("mwit-unlimited", {}, {"/bin/memhog", "--mib", "64"});
  ASSERT_TRUE(hog.wait_for_log("memhog: ready anon_mib=64"));
  const auto doc = status_json();
  const auto* c = find_container(doc, hog.name());
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE((*c)["memory"]["limit_bytes"].is_null());
  EXPECT_EQ((*c)["memory"]["unlimited"], true);
  EXPECT_TRUE(has_warning(doc, "unlimited_container", hog.name())) << doc["warnings"].dump(2);
  // Not an inference server: optimize sets its limit from its stored peak, so no number yet.
  EXPECT_TRUE((*c)["advised_limit_bytes"].is_null());
  EXPECT_NE((*c)["advised_limit_basis"].get<std::string>().find("24 h of its history"), std::string::npos)
      << (*c)["advised_limit_basis"];
  expect_within((*c)["memory"]["anon_bytes"].get<double>(), 64.0 * k_mib, 0.05, "anon");

  const auto table = memwarden({"status"});
  EXPECT_TRUE(table.exit_code == 0 || table.exit_code == 3);
  std::istringstream lines(table.out);
  bool row_seen = false;
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with(hog.name())) {
      row_seen = true;
      EXPECT_NE(line.find("UNLIMITED"), std::string::npos) << line;
    }
    if (!line.starts_with("  ")) {
      EXPECT_LE(line.size(), 100U) << line;
    }
  }
  EXPECT_TRUE(row_seen) << table.out;
  EXPECT_NE(table.out.find(hog.name() + " has no memory limit"), std::string::npos) << table.out;
}

TEST(StatusOnEngine, OomKillInsideARunningContainerIsCounted) {
  // The first hog is OOM-killed by the 64 MiB limit; the shell then execs a small one,
  // so the container (and its cgroup with the kill count) lives on.
  Container c("mwit-oom", {"-m", "64m", "--memory-swap", "64m"},
              {"/bin/sh", "-c", "/bin/memhog --mib 200; exec /bin/memhog --mib 1"});
  ASSERT_TRUE(c.wait_for_log("memhog: ready anon_mib=1"));
  const auto doc = status_json();
  const auto* found = find_container(doc, c.name());
  ASSERT_NE(found, nullptr);
  EXPECT_GE((*found)["memory"]["oom_kills"].get<std::uint64_t>(), 1U) << found->dump(2);
  EXPECT_TRUE(has_warning(doc, "oom_killed", c.name()));
}

TEST(StatusOnEngine, OomKilledMainProcessShowsInAll) {
  Container c("mwit-oom-exit", {"-m", "64m", "--memory-swap", "64m"}, {"/bin/memhog", "--mib", "200"});
  ASSERT_TRUE(c.wait_for_exit());
  const auto running_only = status_json();
  EXPECT_EQ(find_container(running_only, c.name()), nullptr) << "stopped containers only with --all";
  const auto doc = status_json({"--all"});
  const auto* found = find_container(doc, c.name());
  ASSERT_NE(found, nullptr);
  EXPECT_EQ((*found)["oom_killed"], true);
  EXPECT_EQ((*found)["running"], false);
  EXPECT_TRUE((*found)["memory"].is_null());
  EXPECT_TRUE(has_warning(doc, "oom_killed", c.name()));
}

TEST(StatusOnEngine, PageCacheIsCacheNotAnonOrWorkingSet) {
  Container c("mwit-cache", {"-m", "1g"}, {"/bin/memhog", "--mib", "8", "--cache-mib", "100"});
  ASSERT_TRUE(c.wait_for_log("memhog: ready anon_mib=8"));
  const auto doc = status_json();
  const auto* found = find_container(doc, c.name());
  ASSERT_NE(found, nullptr);
  const auto& m = (*found)["memory"];
  expect_within(m["file_bytes"].get<double>(), 100.0 * k_mib, 0.05, "page cache");
  expect_within(m["anon_bytes"].get<double>(), 8.0 * k_mib, 0.25, "anon");
  EXPECT_EQ(m["working_set_bytes"].get<std::uint64_t>(),
            m["usage_bytes"].get<std::uint64_t>() - m["inactive_file_bytes"].get<std::uint64_t>());
}

TEST(StatusOnEngine, ContainersAreSortedByWorkingSet) {
  Container small("mwit-sort-small", {"-m", "256m"}, {"/bin/memhog", "--mib", "16"});
  Container big("mwit-sort-big", {"-m", "256m"}, {"/bin/memhog", "--mib", "96"});
  ASSERT_TRUE(small.wait_for_log("ready"));
  ASSERT_TRUE(big.wait_for_log("ready"));
  const auto doc = status_json();
  std::uint64_t previous = UINT64_MAX;
  for (const auto& c : doc["containers"]) {
    if (c["memory"].is_null() || c["memory"]["working_set_bytes"].is_null()) {
      continue;
    }
    const auto ws = c["memory"]["working_set_bytes"].get<std::uint64_t>();
    EXPECT_LE(ws, previous) << c["name"];
    previous = ws;
  }
}

TEST(StatusOnEngine, WithTheEngineStoppedStatusDegrades) {
  mw::test::TempDir state;
  const auto script = std::string(MEMWARDEN_SCRIPTS_DIR) + "/test-engine.sh";
  const auto start = run_process({script, "start", state.path().string()});
  ASSERT_EQ(start.exit_code, 0) << start.err;
  const auto host = engine_docker_host(state.path().string());
  ASSERT_FALSE(host.empty());
  const auto up = memwarden({"status", "--json"}, host);
  EXPECT_EQ(json::parse(up.out)["docker"]["reachable"], true);
  const auto stop = run_process({script, "stop", state.path().string()});
  ASSERT_EQ(stop.exit_code, 0) << stop.err;

  const auto table = memwarden({"status"}, host);
  EXPECT_EQ(table.exit_code, 3) << "documented: partial report";
  EXPECT_NE(table.out.find("HOST MEMORY"), std::string::npos);
  EXPECT_NE(table.out.find("CONTAINERS  unavailable: " + host), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("is the Docker engine running?"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("GPUS"), std::string::npos);
  const auto js = memwarden({"status", "--json"}, host);
  EXPECT_EQ(js.exit_code, 3);
  const auto doc = json::parse(js.out);
  EXPECT_EQ(doc["docker"]["reachable"], false);
  EXPECT_FALSE(doc["host"]["memory"].is_null());
  EXPECT_GT(doc["host"]["memory"]["total_bytes"].get<std::uint64_t>(), 0U);
}
