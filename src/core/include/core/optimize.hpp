// `memwarden optimize` (issue 16), the pure part: how large a container's memory limit should be, the
// lowest limit that is safe to set on a container running now, and which server settings make the
// installed models fit. The same rule gives diagnose's, status's and serve's limit advice, so that they
// never disagree. No I/O: the engine brings the plans, the cgroup readings and the stored history.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/cgroup_memory.hpp"
#include "core/plan.hpp"

namespace mw {

// Limits are set in steps of this size (as the plan's container limits).
inline constexpr std::uint64_t k_limit_step = 256ULL << 20;
// Above the working set, at least this much room (or 10% of it, whichever is more).
inline constexpr std::uint64_t k_limit_margin = 256ULL << 20;
// A limit within this much (or 10%) of the one wanted is left as it is.
inline constexpr std::uint64_t k_limit_tolerance = 512ULL << 20;
// Headroom over the peak in the stored history, for containers that are not inference servers.
inline constexpr std::uint64_t k_history_headroom_percent = 25;
// History shorter than this is no basis for a limit: a daily peak (a backup, a nightly query) may be missing.
inline constexpr std::int64_t k_min_history_ms = 24LL * 3600 * 1000;

[[nodiscard]] std::uint64_t round_up_to_step(std::uint64_t bytes);

// What the host can give an inference server's container and keep its reserve: MemTotal less the reserve,
// less what each other container that is not an inference server may take (its limit, or its working set
// when it has none; one whose use is unknown counts as nothing, and is named by the caller). Inference
// servers are not subtracted from each other: the seed's plan runs one large model at a time.
struct OtherContainer {
  std::optional<std::uint64_t> limit;  // nullopt: none
  std::optional<std::uint64_t> use;    // working set now
};
[[nodiscard]] std::uint64_t server_cap(std::uint64_t mem_total, std::uint64_t reserve,
                                       const std::vector<OtherContainer>& others);

// The lowest limit memwarden sets on a container that uses `memory` now, or nullopt when its use is not known
// (a limit is never set blind).
//   v1: the working set (usage less inactive page cache) plus max(k_limit_margin, 10%). The kernel reclaims the
//       page cache above that, and refuses the write (EBUSY) rather than kill when it cannot.
//   v2: that, and never below memory.current at all: memory.max below it makes the kernel reclaim at once and
//       OOM-kill inside the container when it cannot.
[[nodiscard]] std::optional<std::uint64_t> limit_floor(const CgroupMemory& memory);

// What a container uses now, below which no limit is ever set, not even one it had before (--undo puts back the
// user's own value, which needs no margin): the working set on v1; on v2 also memory.current. nullopt: unknown.
[[nodiscard]] std::optional<std::uint64_t> use_floor(const CgroupMemory& memory);

// Why a container keeps the limit it has.
enum class LimitAction { keep, set, raise, lower, skip };
[[nodiscard]] const char* to_string(LimitAction action);  // "keep", "set", "raise", "lower", "skip"

struct LimitInput {
  std::optional<std::uint64_t> current;  // HostConfig.Memory; nullopt: no limit
  std::optional<std::uint64_t> floor;    // limit_floor of its memory now; nullopt: unknown
  std::optional<std::uint64_t> wanted;   // from the plan or the history; nullopt: no basis (why_no_basis says why)
  std::string why_no_basis;
  std::uint64_t cap = 0;  // the most the host can give it and keep its reserve
  // The basis leaves something out (a model that could not be sized): a limit from the rest could break the one
  // left out, so only a raise is made; a set or a lower is a skip saying why.
  bool only_raise = false;
  std::string incomplete;  // what was left out, for that reason
};

struct LimitDecision {
  LimitAction action = LimitAction::skip;
  std::optional<std::uint64_t> target;  // set for set, raise, lower and keep
  bool capped = false;                  // the wanted limit was over the cap: the target is the cap
  bool floored = false;                 // the wanted limit was under the floor: the target is the floor
  std::string why;                      // for skip: the reason; else what decided the number
};

// target = max(wanted, floor) rounded up to a step, at most the cap (never below the floor: when the floor
// itself is over the cap the container is skipped, since no safe limit keeps the reserve). A limit within
// max(k_limit_tolerance, 10%) of the target is kept.
[[nodiscard]] LimitDecision decide_limit(const LimitInput& input);

// The limit for a container that is not an inference server, from its stored history: the peak working set
// plus k_history_headroom_percent, or no basis when the history spans less than k_min_history_ms.
struct HistoryPeak {
  std::optional<std::uint64_t> peak;  // the highest working set (or anon) seen; nullopt: no sample knew it
  std::int64_t span_ms = 0;           // newest − oldest sample
  std::size_t samples = 0;
};
struct HistoryBasis {
  std::optional<std::uint64_t> wanted;
  std::string why;  // "peak 812 MiB over 3.0 days + 25%", or why there is none
};
[[nodiscard]] HistoryBasis limit_from_history(const HistoryPeak& peak);

// The limit an inference server needs for the models it serves: each model is planned at the server's own
// context, slots and KV type; one at a time, the largest container limit of them. Models that could not be
// sized are named in `why` and left out.
struct ServedModel {
  std::string name;
  std::optional<ModelPlan> plan;  // nullopt: could not be sized (error says why)
  std::string error;
};
struct ServerBasis {
  std::optional<std::uint64_t> wanted;
  std::string largest;   // the model that sets it
  std::string why;       // "qwen2.5:32b needs 21.5 GiB (of 3 installed models)", or why there is none
  bool complete = true;  // every model was sized (none left out): a limit may be set or lowered from it
};
[[nodiscard]] ServerBasis limit_from_models(const std::vector<ServedModel>& models, std::string_view basis);

// A server setting (an environment variable of its container) to change, and why.
struct SettingChange {
  std::string key;                    // "OLLAMA_MAX_LOADED_MODELS"
  std::optional<std::string> before;  // nullopt: unset
  std::string after;
  std::string why;
};

// What the server's environment says now (OLLAMA_*), as the settings rule reads it.
struct ServerEnv {
  std::map<std::string, std::string> env;  // OLLAMA_* entries of Config.Env
};

// The settings that make the models fit in `limit`:
//  - several models that do not fit in the limit together, while the server may load more than one
//    (OLLAMA_MAX_LOADED_MODELS unset or above 1): OLLAMA_MAX_LOADED_MODELS=1, and a keep-alive that is
//    negative (forever) or longer than 30 minutes becomes OLLAMA_KEEP_ALIVE=5m, so that the idle model makes
//    room for the next;
//  - a model whose plan at the server's settings is over the limit, where one of the plan's own suggestions
//    brings it under: OLLAMA_NUM_PARALLEL=1, else OLLAMA_KV_CACHE_TYPE=q8_0 (with OLLAMA_FLASH_ATTENTION=1,
//    which a quantized cache needs), else OLLAMA_CONTEXT_LENGTH from the plan.
// Settings already at the recommended value are not listed.
[[nodiscard]] std::vector<SettingChange> recommend_settings(const std::vector<ServedModel>& models,
                                                            const ServerEnv& env, std::uint64_t limit,
                                                            std::uint64_t headroom_percent);

}  // namespace mw
