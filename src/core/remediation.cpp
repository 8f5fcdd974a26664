#include "core/remediation.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace mw {

const char* to_string(Eligibility e) {
  switch (e) {
    case Eligibility::allowed:
      return "allowed";
    case Eligibility::needs_confirmation:
      return "needs_confirmation";
    case Eligibility::not_opted_in:
      return "not_opted_in";
    case Eligibility::protected_server:
      return "protected";
    case Eligibility::self:
      return "self";
    case Eligibility::cooldown:
      return "cooldown";
    case Eligibility::budget_exhausted:
      return "budget_exhausted";
  }
  return "unknown";
}

bool opted_in(const ServerIdentity& server, const FixPolicy& policy) {
  if (const auto it = server.labels.find("memwarden.enable"); it != server.labels.end() && it->second == "true") {
    return true;
  }
  return std::find(policy.allowlist.begin(), policy.allowlist.end(), server.name) != policy.allowlist.end();
}

Duration cooldown_after(std::size_t restarts_in_window, const FixPolicy& policy) {
  Duration d = policy.cooldown;
  for (std::size_t i = 1; i < restarts_in_window && d < policy.budget_window; ++i) {
    d *= 2;
  }
  return d;
}

Verdict check_eligibility(const ServerIdentity& server, Selection selection, const std::vector<PastAction>& past,
                          std::int64_t now_ms, const FixPolicy& policy, const std::string& own_container_id) {
  if (!own_container_id.empty() && server.container_id == own_container_id) {
    return {Eligibility::self, fmt::format("{} is memwarden's own container", server.name), std::nullopt};
  }
  if (const auto it = server.labels.find("memwarden.protect"); it != server.labels.end() && it->second == "true") {
    return {Eligibility::protected_server, fmt::format("{} is labelled memwarden.protect=true", server.name),
            std::nullopt};
  }
  const bool in = opted_in(server, policy);
  if (!in && selection == Selection::automatic) {
    return {Eligibility::not_opted_in,
            fmt::format("{} has not opted in (label memwarden.enable=true or the allowlist)", server.name),
            std::nullopt};
  }
  std::vector<std::int64_t> restarts;
  std::optional<std::int64_t> last_action;
  for (const auto& a : past) {
    if (!a.counted) {
      continue;
    }
    last_action = std::max(last_action.value_or(a.at_ms), a.at_ms);
    if (a.kind == FixStep::restart && now_ms - a.at_ms < policy.budget_window.count()) {
      restarts.push_back(a.at_ms);
    }
  }
  std::sort(restarts.begin(), restarts.end());
  if (restarts.size() >= policy.restart_budget) {
    // Allowed again when the oldest restart in the window ages out of it.
    const auto retry = restarts[restarts.size() - policy.restart_budget] + policy.budget_window.count();
    return {Eligibility::budget_exhausted,
            fmt::format("{} was restarted {} times in the last {} min (budget {}); not acting again", server.name,
                        restarts.size(), policy.budget_window.count() / 60'000, policy.restart_budget),
            retry};
  }
  if (last_action) {
    const auto wait = cooldown_after(std::max<std::size_t>(restarts.size(), 1), policy);
    if (now_ms - *last_action < wait.count()) {
      return {Eligibility::cooldown,
              fmt::format("{} was acted on {} s ago; cooldown {} s", server.name, (now_ms - *last_action) / 1000,
                          wait.count() / 1000),
              *last_action + wait.count()};
    }
  }
  if (!in) {
    return {Eligibility::needs_confirmation,
            fmt::format("{} has not opted in (label memwarden.enable=true); confirm to act on it", server.name),
            std::nullopt};
  }
  return {Eligibility::allowed, fmt::format("{} opted in", server.name), std::nullopt};
}

std::optional<FixStep> first_step(const Finding& finding, const std::vector<OllamaModel>& loaded) {
  if (finding.detector == Detector::idle_bloat) {
    return loaded.empty() ? FixStep::restart : FixStep::unload;
  }
  if (finding.detector == Detector::growth || finding.detector == Detector::orphan_runner) {
    return FixStep::restart;
  }
  return std::nullopt;
}

const char* to_string(FixStep step) {
  switch (step) {
    case FixStep::unload:
      return "unload";
    case FixStep::restart:
      return "restart";
  }
  return "unknown";
}

std::optional<FixStep> parse_fix_step(std::string_view text) {
  for (const auto step : {FixStep::unload, FixStep::restart}) {
    if (text == to_string(step)) {
      return step;
    }
  }
  return std::nullopt;
}

const char* to_string(LadderStep step) {
  switch (step) {
    case LadderStep::unload:
      return "unload";
    case LadderStep::settle:
      return "settle";
    case LadderStep::drain:
      return "drain";
    case LadderStep::restart:
      return "restart";
    case LadderStep::health_wait:
      return "health_wait";
    case LadderStep::verify:
      return "verify";
  }
  return "unknown";
}

const char* to_string(ActionOutcome outcome) {
  switch (outcome) {
    case ActionOutcome::in_progress:
      return "in_progress";
    case ActionOutcome::succeeded:
      return "succeeded";
    case ActionOutcome::failed:
      return "failed";
    case ActionOutcome::dry_run:
      return "dry_run";
    case ActionOutcome::refused:
      return "refused";
    case ActionOutcome::interrupted:
      return "interrupted";
  }
  return "unknown";
}

std::optional<ActionOutcome> parse_action_outcome(std::string_view text) {
  for (const auto outcome : {ActionOutcome::in_progress, ActionOutcome::succeeded, ActionOutcome::failed,
                             ActionOutcome::dry_run, ActionOutcome::refused, ActionOutcome::interrupted}) {
    if (text == to_string(outcome)) {
      return outcome;
    }
  }
  return std::nullopt;
}

}  // namespace mw
