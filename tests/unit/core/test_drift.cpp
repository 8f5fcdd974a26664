// The limit advice of diagnose, status and serve, and serve's drift check (core/drift.hpp).
#include <gtest/gtest.h>

#include <algorithm>

#include "core/drift.hpp"

using namespace mw;

namespace {

constexpr std::uint64_t k_gib = 1ULL << 30;
constexpr std::uint64_t k_mib = 1ULL << 20;

ServerBasis plan_of(std::string largest, std::uint64_t wanted) {
  ServerBasis b;
  b.wanted = wanted;
  b.largest = largest;
  b.why = largest + " needs it (installed models: 2 models)";
  return b;
}

const Evidence* evidence(const Finding& f, const std::string& name) {
  const auto it = std::find_if(f.evidence.begin(), f.evidence.end(), [&](const Evidence& e) { return e.name == name; });
  return it == f.evidence.end() ? nullptr : &*it;
}

ContainerSnapshot container(std::string name, std::string image, std::optional<std::uint64_t> limit,
                            std::optional<std::uint64_t> anon) {
  ContainerSnapshot c;
  c.meta.name = std::move(name);
  c.meta.id = c.meta.name + "-id";
  c.meta.image = std::move(image);
  c.meta.state.running = true;
  c.meta.memory_limit = limit;
  if (anon) {
    CgroupMemory m;
    m.version = CgroupVersion::v2;
    m.usage = *anon;
    m.anon = *anon;
    m.inactive_file = 0;
    c.memory = m;
  }
  return c;
}

}  // namespace

TEST(LimitAdvice, AnIdleServerIsAdvisedItsPlan) {
  // Nothing loaded (it uses 300 MiB); its installed model needs 9 GiB.
  const auto a = advise_server_limit(plan_of("qwen2.5:14b", 9 * k_gib), 768 * k_mib, 28 * k_gib);
  ASSERT_TRUE(a.limit);
  EXPECT_EQ(*a.limit, 9 * k_gib);
  EXPECT_EQ(a.basis, "qwen2.5:14b needs it (installed models: 2 models)");
}

TEST(LimitAdvice, CappedSoTheHostKeepsItsReserve) {
  const auto a = advise_server_limit(plan_of("llama3.1:70b", 45 * k_gib), 768 * k_mib, 20 * k_gib);
  ASSERT_TRUE(a.limit);
  EXPECT_EQ(*a.limit, 20 * k_gib);
  EXPECT_NE(a.basis.find("capped at the 20.0 GiB the host can give it"), std::string::npos) << a.basis;
}

TEST(LimitAdvice, NoNumberWithoutAPlan) {
  ServerBasis none;
  none.why = "no models (installed models)";
  const auto a = advise_server_limit(none, 768 * k_mib, 20 * k_gib);
  EXPECT_FALSE(a.limit);
  EXPECT_EQ(a.basis, "no models (installed models)");
  const auto blind = advise_server_limit(plan_of("m", 9 * k_gib), std::nullopt, 20 * k_gib);
  EXPECT_FALSE(blind.limit) << "its use now is unknown: a limit is never set blind";
  EXPECT_NE(blind.basis.find("never set blind"), std::string::npos) << blind.basis;
}

TEST(LimitAdvice, HostServerCapCountsOnlyTheOtherContainers) {
  const std::vector<ContainerSnapshot> cs{
      container("ollama", "ollama/ollama", std::nullopt, 20 * k_gib),  // a server: not subtracted
      container("db", "postgres", 4 * k_gib, 1 * k_gib),               // its limit
      container("web", "nginx", std::nullopt, 2 * k_gib),              // its working set
  };
  EXPECT_EQ(host_server_cap(32 * k_gib, 4 * k_gib, cs), 22 * k_gib);
}

TEST(Drift, AContainerWithoutALimit) {
  DriftSubject s;
  s.name = "web";
  s.use = 2 * k_gib;
  const auto found = detect_drift({s}, Timestamp{});
  ASSERT_EQ(found.size(), 1U);
  const auto& f = found[0];
  EXPECT_EQ(f.detector, Detector::drift);
  EXPECT_EQ(std::string(to_string(f.detector)), "optimize-drift");
  EXPECT_EQ(f.severity, Severity::warning);
  EXPECT_EQ(f.subject, "web");
  EXPECT_EQ(f.remedy, Remedy::set_memory_limit);
  EXPECT_EQ(f.action.rfind("memwarden optimize --yes web: it sets a limit from its peak", 0), 0U) << f.action;
  EXPECT_NE(f.action.find("24 h of its history"), std::string::npos) << f.action;
  EXPECT_EQ(evidence(f, "recommended_limit_bytes"), nullptr) << "no number invented";
}

TEST(Drift, OwnProtectedAndUnlimitedServersAreLeftOut) {
  DriftSubject own;
  own.name = "memwarden";
  own.excluded = true;
  DriftSubject server;
  server.name = "ollama";
  server.inference_server = true;  // the unlimited detector says it
  EXPECT_TRUE(detect_drift({own, server}, Timestamp{}).empty());
}

TEST(Drift, AModelPulledThatNoLongerFitsTheLimit) {
  DriftSubject s;
  s.name = "ollama";
  s.inference_server = true;
  s.limit = 8 * k_gib;
  s.plan = plan_of("qwen2.5:32b", 21 * k_gib + 512 * k_mib);
  s.floor = 1 * k_gib;
  s.cap = 28 * k_gib;
  const auto found = detect_drift({s}, Timestamp{});
  ASSERT_EQ(found.size(), 1U);
  const auto& f = found[0];
  EXPECT_EQ(f.detector, Detector::drift);
  EXPECT_NE(f.summary.find("ollama needs a 21.5 GiB limit for qwen2.5:32b, more than its 8.00 GiB limit"),
            std::string::npos)
      << f.summary;
  ASSERT_NE(evidence(f, "needed_limit_bytes"), nullptr);
  EXPECT_EQ(evidence(f, "limit_bytes")->value, static_cast<double>(8 * k_gib));
  EXPECT_EQ(evidence(f, "recommended_limit_bytes")->value, static_cast<double>(21 * k_gib + 512 * k_mib));
  EXPECT_EQ(f.action, "memwarden optimize --yes ollama raises its limit to 21.5 GiB");
}

TEST(Drift, ALimitThatFitsIsNoDrift) {
  DriftSubject s;
  s.name = "ollama";
  s.inference_server = true;
  s.limit = 10 * k_gib;
  s.plan = plan_of("qwen2.5:14b", 9 * k_gib);
  s.floor = 1 * k_gib;
  s.cap = 28 * k_gib;
  EXPECT_TRUE(detect_drift({s}, Timestamp{}).empty());
  s.limit = 9 * k_gib - 256 * k_mib;  // under, but within the tolerance optimize keeps
  EXPECT_TRUE(detect_drift({s}, Timestamp{}).empty());
  s.plan.reset();  // could not plan
  s.limit = 1 * k_gib;
  EXPECT_TRUE(detect_drift({s}, Timestamp{}).empty());
}

TEST(Drift, WhenTheHostCannotGiveMoreTheSettingsMustChange) {
  DriftSubject s;
  s.name = "ollama";
  s.inference_server = true;
  s.limit = 20 * k_gib;
  s.plan = plan_of("llama3.1:70b", 45 * k_gib);
  s.floor = 1 * k_gib;
  s.cap = 20 * k_gib;
  const auto found = detect_drift({s}, Timestamp{});
  ASSERT_EQ(found.size(), 1U);
  EXPECT_EQ(found[0].remedy, Remedy::tune_server);
  EXPECT_NE(found[0].action.find("the host cannot give ollama more than 20.0 GiB"), std::string::npos)
      << found[0].action;
  EXPECT_NE(found[0].action.find("memwarden optimize --yes"), std::string::npos);
}
