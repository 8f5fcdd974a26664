#include <gtest/gtest.h>

#include "core/remediation.hpp"

using namespace mw;

namespace {

constexpr std::int64_t k_min = 60'000;
constexpr std::int64_t k_now = 1'800'000'000'000;  // wall clock ms

ServerIdentity server(std::map<std::string, std::string> labels = {{"memwarden.enable", "true"}}) {
  return {"ollama-gpu", std::string(64, 'a'), std::move(labels)};
}

PastAction restart(std::int64_t minutes_ago) {
  return {k_now - minutes_ago * k_min, FixStep::restart, true};
}

}  // namespace

TEST(Eligibility, OptInIsNeededForAutomaticRuns) {
  const FixPolicy policy;
  EXPECT_EQ(check_eligibility(server(), Selection::automatic, {}, k_now, policy, "").eligibility, Eligibility::allowed);
  const auto refused = check_eligibility(server({}), Selection::automatic, {}, k_now, policy, "");
  EXPECT_EQ(refused.eligibility, Eligibility::not_opted_in);
  EXPECT_NE(refused.reason.find("memwarden.enable=true"), std::string::npos);
  EXPECT_EQ(
      check_eligibility(server({{"memwarden.enable", "yes"}}), Selection::automatic, {}, k_now, policy, "").eligibility,
      Eligibility::not_opted_in)
      << "only the exact value true opts in";
  EXPECT_EQ(check_eligibility(server({}), Selection::named, {}, k_now, policy, "").eligibility,
            Eligibility::needs_confirmation);
  FixPolicy listed;
  listed.allowlist = {"ollama-gpu"};
  EXPECT_EQ(check_eligibility(server({}), Selection::automatic, {}, k_now, listed, "").eligibility,
            Eligibility::allowed);
}

TEST(Eligibility, NeverSelfOrProtected) {
  const FixPolicy policy;
  auto s = server({{"memwarden.enable", "true"}, {"memwarden.protect", "true"}});
  EXPECT_EQ(check_eligibility(s, Selection::named, {}, k_now, policy, "").eligibility, Eligibility::protected_server);
  EXPECT_EQ(check_eligibility(server(), Selection::named, {}, k_now, policy, std::string(64, 'a')).eligibility,
            Eligibility::self);
}

TEST(Eligibility, CooldownAfterAnyAction) {
  const FixPolicy policy;  // 10 min
  const auto v = check_eligibility(server(), Selection::automatic, {{k_now - 4 * k_min, FixStep::unload, true}}, k_now,
                                   policy, "");
  EXPECT_EQ(v.eligibility, Eligibility::cooldown);
  EXPECT_EQ(v.retry_at_ms, k_now + 6 * k_min);
  EXPECT_EQ(check_eligibility(server(), Selection::automatic, {{k_now - 11 * k_min, FixStep::unload, true}}, k_now,
                              policy, "")
                .eligibility,
            Eligibility::allowed);
  EXPECT_EQ(check_eligibility(server(), Selection::automatic, {{k_now - 1 * k_min, FixStep::restart, false}}, k_now,
                              policy, "")
                .eligibility,
            Eligibility::allowed)
      << "dry runs and refusals do not count";
}

TEST(Eligibility, BackoffDoublesTheCooldown) {
  const FixPolicy policy;
  EXPECT_EQ(cooldown_after(1, policy).count(), 10 * k_min);
  EXPECT_EQ(cooldown_after(2, policy).count(), 20 * k_min);
  EXPECT_EQ(cooldown_after(3, policy).count(), 40 * k_min);
  EXPECT_EQ(cooldown_after(9, policy).count(), 80 * k_min) << "stops doubling past the budget window";
  // two restarts, the last 15 min ago: the cooldown is now 20 min
  const auto v = check_eligibility(server(), Selection::automatic, {restart(45), restart(15)}, k_now, policy, "");
  EXPECT_EQ(v.eligibility, Eligibility::cooldown);
  EXPECT_EQ(v.retry_at_ms, k_now + 5 * k_min);
}

TEST(Eligibility, RestartBudgetPerHour) {
  FixPolicy policy;
  policy.cooldown = Duration(0);
  const std::vector<PastAction> three{restart(50), restart(30), restart(10)};
  const auto v = check_eligibility(server(), Selection::named, three, k_now, policy, "");
  EXPECT_EQ(v.eligibility, Eligibility::budget_exhausted);
  EXPECT_EQ(v.retry_at_ms, k_now + 10 * k_min) << "when the oldest of the three leaves the hour";
  EXPECT_NE(v.reason.find("restarted 3 times in the last 60 min (budget 3)"), std::string::npos) << v.reason;
  const std::vector<PastAction> old{restart(70), restart(30), restart(10)};
  EXPECT_EQ(check_eligibility(server(), Selection::named, old, k_now, policy, "").eligibility, Eligibility::allowed);
}

TEST(Eligibility, UnloadsAndUnknownKindsCountForTheCooldownNotTheRestartBudget) {
  FixPolicy policy;
  policy.cooldown = Duration(0);
  auto unload = restart(40);
  unload.kind = FixStep::unload;
  auto unknown = restart(20);
  unknown.kind = std::nullopt;  // a kind a newer memwarden wrote
  const std::vector<PastAction> past{restart(50), unload, unknown, restart(10)};
  EXPECT_EQ(check_eligibility(server(), Selection::named, past, k_now, policy, "").eligibility, Eligibility::allowed)
      << "2 restarts of a budget of 3";
  policy.cooldown = Duration(15 * k_min);
  auto recent = restart(1);
  recent.kind = std::nullopt;
  EXPECT_EQ(check_eligibility(server(), Selection::named, {recent}, k_now, policy, "").eligibility,
            Eligibility::cooldown)
      << "any action starts the cooldown";
}

TEST(FixSteps, NamesReadBack) {
  for (const auto step : {FixStep::unload, FixStep::restart}) {
    EXPECT_EQ(parse_fix_step(to_string(step)), step);
  }
  EXPECT_FALSE(parse_fix_step("Restart").has_value());
  EXPECT_FALSE(parse_fix_step("").has_value());
}

TEST(FirstStep, LadderStartsWithTheLeastDisruptiveStep) {
  Finding bloat;
  bloat.detector = Detector::idle_bloat;
  OllamaModel m;
  m.name = "llama3.1:8b";
  EXPECT_EQ(first_step(bloat, {}), FixStep::restart) << "nothing loaded: nothing to unload";
  EXPECT_EQ(first_step(bloat, {m}), FixStep::unload);
  Finding growth;
  growth.detector = Detector::growth;
  EXPECT_EQ(first_step(growth, {m}), FixStep::restart);
  Finding unlimited;
  unlimited.detector = Detector::unlimited;
  EXPECT_FALSE(first_step(unlimited, {}));
}
