// When memwarden may act on a server, and what it would do: the safety rules
// of `memwarden fix` (opt-in, protection, cooldown, restart budget with
// backoff) as pure functions of the server, its past actions and the time.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "core/diagnosis.hpp"

namespace mw {

struct FixPolicy {
  Duration cooldown{600'000};      // after any action on a server
  std::size_t restart_budget = 3;  // restarts per server per budget window
  Duration budget_window{3'600'000};
  Duration drain_timeout{120'000};     // wait this long for clients to finish
  Duration health_timeout{120'000};    // for the API to answer after a restart
  Duration stop_timeout{10'000};       // Docker's t= for the restart
  Duration settle{3'000};              // after unloading, before measuring again
  std::vector<std::string> allowlist;  // server names that opted in without a label
};

// How a run was started: --all acts only on opted-in servers; naming a server is explicit.
enum class Selection { automatic, named };

enum class Eligibility {
  allowed,
  needs_confirmation,
  not_opted_in,
  protected_server,
  self,
  cooldown,
  budget_exhausted
};
[[nodiscard]] const char* to_string(Eligibility e);

// The kind of an action: the first step of the ladder a finding calls for.
enum class FixStep { unload, restart };
[[nodiscard]] const char* to_string(FixStep step);  // "unload", "restart": the kind of an action
[[nodiscard]] std::optional<FixStep> parse_fix_step(std::string_view text);

// One earlier action on a server, from the journal.
struct PastAction {
  std::int64_t at_ms = 0;       // wall clock, unix ms
  std::optional<FixStep> kind;  // nullopt: a kind this version does not know (a newer writer's)
  bool counted = true;          // dry runs and refusals do not count
};

struct Verdict {
  Eligibility eligibility = Eligibility::allowed;
  std::string reason;                       // one sentence
  std::optional<std::int64_t> retry_at_ms;  // when cooldown or budget allow again
};

// The labels and identity the rules look at.
struct ServerIdentity {
  std::string name;
  std::string container_id;  // "" for a host process
  std::map<std::string, std::string> labels;
};

[[nodiscard]] bool opted_in(const ServerIdentity& server, const FixPolicy& policy);

// Whether memwarden may act on `server` now. `own_container_id` is memwarden's own container, if any.
[[nodiscard]] Verdict check_eligibility(const ServerIdentity& server, Selection selection,
                                        const std::vector<PastAction>& past, std::int64_t now_ms,
                                        const FixPolicy& policy, const std::string& own_container_id);

// The cooldown after `restarts_in_window` restarts: doubles with each one (backoff).
[[nodiscard]] Duration cooldown_after(std::size_t restarts_in_window, const FixPolicy& policy);

// The first step of the ladder a finding calls for: unload when models are loaded and unloading
// could help, else restart; nullopt when the finding is not for fix (unlimited, page cache, host).

// The steps of the fix ladder, as a report and the journal name them.
enum class LadderStep { unload, settle, drain, restart, health_wait, verify };
[[nodiscard]] const char* to_string(
    LadderStep step);  // "unload", "settle", "drain", "restart", "health_wait", "verify"

// How an action ended, as the journal records it.
enum class ActionOutcome { in_progress, succeeded, failed, dry_run, refused, interrupted };
[[nodiscard]] const char* to_string(ActionOutcome outcome);
[[nodiscard]] std::optional<ActionOutcome> parse_action_outcome(std::string_view text);
[[nodiscard]] std::optional<FixStep> first_step(const Finding& finding, const std::vector<OllamaModel>& loaded);

}  // namespace mw
