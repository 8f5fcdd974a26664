#include <gtest/gtest.h>

#include <algorithm>

#include "core/status.hpp"

using namespace mw;

namespace {

ContainerSnapshot container(std::string name, std::optional<std::uint64_t> usage, std::optional<std::uint64_t> limit,
                            std::uint64_t inactive_file = 0) {
  ContainerSnapshot c;
  c.meta.name = std::move(name);
  c.meta.state.running = true;
  c.meta.memory_limit = limit;
  if (usage) {
    CgroupMemory m;
    m.usage = usage;
    m.inactive_file = inactive_file;
    m.limit = limit ? MemoryLimit::of(*limit) : MemoryLimit::unlimited();
    m.oom_kills = 0;
    c.memory = m;
  }
  return c;
}

std::vector<WarningKind> kinds(const std::vector<Warning>& warnings) {
  std::vector<WarningKind> out;
  for (const auto& w : warnings) {
    out.push_back(w.kind);
  }
  return out;
}

StatusReport healthy_host() {
  StatusReport r;
  MemInfo mi;
  mi.mem_total = 32ULL << 30;
  mi.mem_available = 20ULL << 30;
  mi.swap_total = 8ULL << 30;
  mi.swap_free = 8ULL << 30;
  r.host.meminfo = mi;
  r.host.pressure = Pressure{PressureLine{}, PressureLine{}};
  return r;
}

}  // namespace

TEST(CgroupMemory, WorkingSetIsUsageMinusInactiveFile) {
  CgroupMemory m;
  EXPECT_FALSE(m.working_set());
  m.usage = 1000;
  EXPECT_FALSE(m.working_set()) << "inactive_file unknown: working set unknown, not usage";
  m.inactive_file = 300;
  EXPECT_EQ(m.working_set(), 700U);
  m.inactive_file = 5000;  // sampled non-atomically: floor at 0
  EXPECT_EQ(m.working_set(), 0U);
}

TEST(CgroupMemory, PercentOfLimitOnlyWithALimit) {
  CgroupMemory m;
  m.usage = 512;
  m.inactive_file = 0;
  EXPECT_FALSE(m.percent_of_limit()) << "unknown limit";
  m.limit = MemoryLimit::unlimited();
  EXPECT_FALSE(m.percent_of_limit());
  m.limit = MemoryLimit::of(1024);
  EXPECT_DOUBLE_EQ(*m.percent_of_limit(), 50.0);
}

TEST(EvaluateStatus, HealthyHostHasNoWarnings) {
  auto r = healthy_host();
  r.containers.push_back(container("grafana", 300ULL << 20, 1ULL << 30));
  EXPECT_TRUE(evaluate_status(r, {}).empty());
}

TEST(EvaluateStatus, TheSeedIncident) {
  auto r = healthy_host();
  r.host.meminfo->mem_available = 1900ULL << 20;
  r.host.meminfo->swap_free = r.host.meminfo->swap_total.value() - (5632ULL << 20);
  r.host.pressure->full->avg10 = 12.5;
  r.containers.push_back(container("ollama-gpu", 27004866560ULL, std::nullopt));
  const auto w = evaluate_status(r, {});
  const auto k = kinds(w);
  EXPECT_EQ(k, (std::vector<WarningKind>{WarningKind::swap_in_use, WarningKind::low_available,
                                         WarningKind::memory_pressure, WarningKind::unlimited_container}));
  EXPECT_EQ(w[0].text.substr(0, 26), "5.50 GiB of swap in use (a");
  EXPECT_NE(w[1].text.find("only 1.86 GiB of RAM available, under the 4.00 GiB reserve"), std::string::npos)
      << w[1].text;
  EXPECT_NE(w[2].text.find("12.5%"), std::string::npos);
  EXPECT_EQ(w[3].subject, "ollama-gpu");
  EXPECT_NE(w[3].text.find("no memory limit and can take all 32.0 GiB of the host's RAM (it uses 25.2 GiB now)"),
            std::string::npos)
      << w[3].text;
}

TEST(EvaluateStatus, AnUnlimitedServerIsAdvisedItsPlannedLimit) {
  auto r = healthy_host();
  auto c = container("ollama", 300ULL << 20, std::nullopt);
  c.meta.image = "ollama/ollama:latest";
  c.advised_limit = 9ULL << 30;
  c.advised_basis = "qwen2.5:14b needs 9.00 GiB (installed models: 1 model)";
  r.containers.push_back(c);
  const auto w = evaluate_status(r, {});
  ASSERT_EQ(kinds(w), std::vector<WarningKind>{WarningKind::unlimited_container});
  EXPECT_NE(
      w[0].text.find("; memwarden optimize --yes ollama sets 9.00 GiB (qwen2.5:14b needs 9.00 GiB (installed models: "
                     "1 model))"),
      std::string::npos)
      << w[0].text;
}

TEST(EvaluateStatus, NoNumberWhenTheServerCouldNotBePlanned) {
  auto r = healthy_host();
  auto c = container("ollama", 300ULL << 20, std::nullopt);
  c.meta.image = "ollama/ollama:latest";
  c.advised_basis = "no models (installed models)";
  r.containers.push_back(c);
  const auto w = evaluate_status(r, {});
  ASSERT_EQ(w.size(), 1U);
  EXPECT_NE(w[0].text.find("memwarden optimize plans one from its installed models, but could not now: no models "
                           "(installed models)"),
            std::string::npos)
      << w[0].text;
  EXPECT_EQ(w[0].text.find("GiB ("), std::string::npos) << "no number: " << w[0].text;
}

TEST(EvaluateStatus, AnUnlimitedContainerWaitsForItsHistory) {
  auto r = healthy_host();
  r.containers.push_back(container("web", 2ULL << 30, std::nullopt));
  const auto w = evaluate_status(r, {});
  ASSERT_EQ(w.size(), 1U);
  EXPECT_NE(
      w[0].text.find("memwarden optimize --yes web sets one from its peak once memwarden serve has stored 24 h of "
                     "its history"),
      std::string::npos)
      << w[0].text;
}

TEST(EvaluateStatus, ThresholdsAreBoundaries) {
  auto r = healthy_host();
  StatusThresholds t;
  t.reserve_bytes = 20ULL << 30;  // available == reserve: not under it
  r.host.meminfo->swap_free = r.host.meminfo->swap_total.value() - t.swap_warn_bytes;  // == threshold
  r.host.pressure->full->avg10 = t.psi_full_avg10_pct;                                 // == threshold
  EXPECT_TRUE(evaluate_status(r, t).empty());
  t.reserve_bytes += 1;
  EXPECT_EQ(kinds(evaluate_status(r, t)), std::vector<WarningKind>{WarningKind::low_available});
}

TEST(EvaluateStatus, UnknownValuesRaiseNoWarning) {
  StatusReport r;  // nothing known about the host
  ContainerSnapshot c;
  c.meta.name = "x";
  c.meta.state.running = true;
  c.meta.memory_limit = 1ULL << 30;  // limited per the engine, cgroup unreadable
  r.containers.push_back(c);
  EXPECT_TRUE(evaluate_status(r, {}).empty());
}

TEST(EvaluateStatus, StoppedContainersAreNotFlaggedUnlimited) {
  auto r = healthy_host();
  auto c = container("old", std::nullopt, std::nullopt);
  c.meta.state.running = false;
  r.containers.push_back(c);
  EXPECT_TRUE(evaluate_status(r, {}).empty());
}

TEST(EvaluateStatus, NearLimitAndOomKills) {
  auto r = healthy_host();
  auto c = container("llm", 950ULL << 20, 1000ULL << 20);
  c.memory->oom_kills = 2;
  r.containers.push_back(c);
  auto stopped = container("crashed", std::nullopt, 1ULL << 30);
  stopped.meta.state.running = false;
  stopped.meta.state.oom_killed = true;
  r.containers.push_back(stopped);
  const auto w = evaluate_status(r, {});
  EXPECT_EQ(kinds(w),
            (std::vector<WarningKind>{WarningKind::near_limit, WarningKind::oom_killed, WarningKind::oom_killed}));
  EXPECT_NE(w[0].text.find("95%"), std::string::npos) << w[0].text;
  EXPECT_NE(w[1].text.find("2 OOM kills"), std::string::npos) << w[1].text;
  EXPECT_NE(w[2].text.find("crashed was OOM-killed"), std::string::npos) << w[2].text;
}

TEST(SortByWorkingSet, LargestFirstUnknownLast) {
  std::vector<ContainerSnapshot> cs{container("b-unknown", std::nullopt, std::nullopt),
                                    container("small", 10, std::nullopt), container("big", 1000, std::nullopt, 100),
                                    container("a-unknown", std::nullopt, std::nullopt),
                                    container("mid", 500, std::nullopt)};
  sort_by_working_set(cs);
  std::vector<std::string> names;
  for (const auto& c : cs) {
    names.push_back(c.meta.name);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"big", "mid", "small", "a-unknown", "b-unknown"}));
}
