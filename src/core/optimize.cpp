#include "core/optimize.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "core/bytes.hpp"
#include "core/duration.hpp"

namespace mw {

namespace {

std::uint64_t round_down_to_step(std::uint64_t bytes) {
  return bytes / k_limit_step * k_limit_step;
}

std::uint64_t tolerance_of(std::uint64_t target) {
  return std::max(k_limit_tolerance, target / 10);
}

// The number an OLLAMA_* value holds, when it is a plain non-negative integer.
std::optional<std::uint64_t> plain_number(const std::string& text) {
  std::uint64_t v = 0;
  const auto* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, v);
  if (ec != std::errc() || p != end || text.empty()) {
    return std::nullopt;
  }
  return v;
}

// Whether a keep-alive keeps a model loaded longer than 30 minutes (negative is forever). Ollama reads a
// Go duration or a number of seconds.
bool keeps_long(const std::string& keep_alive) {
  if (keep_alive.empty()) {
    return false;
  }
  if (keep_alive.front() == '-') {
    return true;
  }
  constexpr std::int64_t k_long_ms = 30LL * 60 * 1000;
  if (auto seconds = plain_number(keep_alive)) {
    return *seconds * 1000 > static_cast<std::uint64_t>(k_long_ms);
  }
  if (auto d = parse_duration(keep_alive, "OLLAMA_KEEP_ALIVE")) {
    return d->count() > k_long_ms;
  }
  return false;
}

// "3.0 days", "26 h", "40 min".
std::string span_text(std::int64_t ms) {
  constexpr double k_hour = 3600.0 * 1000.0;
  const double hours = static_cast<double>(ms) / k_hour;
  if (hours >= 48) {
    return fmt::format("{:.1f} days", hours / 24);
  }
  if (hours >= 1) {
    return fmt::format("{:.0f} h", hours);
  }
  return fmt::format("{:.0f} min", hours * 60);
}

std::optional<std::string> env_of(const ServerEnv& env, const std::string& key) {
  if (auto it = env.env.find(key); it != env.env.end()) {
    return it->second;
  }
  return std::nullopt;
}

void add_change(std::vector<SettingChange>& out, const ServerEnv& env, const std::string& key, std::string value,
                std::string why) {
  for (const auto& c : out) {
    if (c.key == key) {
      return;
    }
  }
  auto before = env_of(env, key);
  if (before && *before == value) {
    return;
  }
  out.push_back(SettingChange{key, std::move(before), std::move(value), std::move(why)});
}

// A numeric setting several models ask for: the smallest value wins (the server has one for all of them).
void add_smallest(std::vector<SettingChange>& out, const ServerEnv& env, const std::string& key,
                  const std::string& value, std::string why) {
  for (auto& c : out) {
    if (c.key == key) {
      const auto now = plain_number(c.after);
      const auto asked = plain_number(value);
      if (now && asked && *asked < *now) {
        c.after = value;
        c.why = std::move(why);
      }
      return;
    }
  }
  add_change(out, env, key, value, std::move(why));
}

// The value after a suggestion's flag: "--parallel 1" -> "1".
std::optional<std::string> flag_value(const std::string& change, std::string_view flag) {
  if (change.size() <= flag.size() + 1 || change.compare(0, flag.size(), flag) != 0 || change[flag.size()] != ' ') {
    return std::nullopt;
  }
  return change.substr(flag.size() + 1);
}

}  // namespace

std::uint64_t round_up_to_step(std::uint64_t bytes) {
  if (bytes > UINT64_MAX - k_limit_step) {
    return round_down_to_step(bytes);
  }
  return (bytes + k_limit_step - 1) / k_limit_step * k_limit_step;
}

std::uint64_t server_cap(std::uint64_t mem_total, std::uint64_t reserve, const std::vector<OtherContainer>& others) {
  std::uint64_t left = mem_total > reserve ? mem_total - reserve : 0;
  for (const auto& o : others) {
    const auto takes = o.limit ? std::min(*o.limit, mem_total) : o.use.value_or(0);
    left = left > takes ? left - takes : 0;
  }
  return left;
}

std::optional<std::uint64_t> limit_floor(const CgroupMemory& memory) {
  const auto ws = memory.working_set();
  if (!ws) {
    return std::nullopt;
  }
  auto floor = *ws + std::max(k_limit_margin, *ws / 10);
  if (memory.version == CgroupVersion::v2) {
    if (!memory.usage) {
      return std::nullopt;
    }
    floor = std::max(floor, *memory.usage);
  }
  return round_up_to_step(floor);
}

std::optional<std::uint64_t> use_floor(const CgroupMemory& memory) {
  const auto ws = memory.working_set();
  if (!ws) {
    return std::nullopt;
  }
  if (memory.version == CgroupVersion::v2) {
    return memory.usage ? std::optional<std::uint64_t>(std::max(*ws, *memory.usage)) : std::nullopt;
  }
  return ws;
}

const char* to_string(LimitAction action) {
  switch (action) {
    case LimitAction::keep:
      return "keep";
    case LimitAction::set:
      return "set";
    case LimitAction::raise:
      return "raise";
    case LimitAction::lower:
      return "lower";
    case LimitAction::skip:
      return "skip";
  }
  return "skip";
}

LimitDecision decide_limit(const LimitInput& in) {
  LimitDecision d;
  if (!in.wanted) {
    d.why = in.why_no_basis.empty() ? std::string("no basis for a limit") : in.why_no_basis;
    return d;
  }
  if (!in.floor) {
    d.why = "its memory use now could not be read, and a limit is never set blind";
    return d;
  }
  const auto cap = round_down_to_step(in.cap);
  if (*in.floor > cap) {
    d.why = fmt::format(
        "it needs at least {} now (what it uses, with a margin), more than the {} the host can give "
        "it and keep its reserve",
        format_bytes(*in.floor), format_bytes(cap));
    return d;
  }
  auto target = round_up_to_step(*in.wanted);
  if (target < *in.floor) {
    target = *in.floor;
    d.floored = true;
  }
  if (target > cap) {
    target = cap;
    d.capped = true;
  }
  d.target = target;
  if (!in.current) {
    d.action = LimitAction::set;
  } else if (*in.current + tolerance_of(target) < target || (*in.current < target && *in.current < *in.floor)) {
    d.action = LimitAction::raise;
  } else if (*in.current > target + tolerance_of(target)) {
    d.action = LimitAction::lower;
  } else {
    d.action = LimitAction::keep;
  }
  if (in.only_raise && (d.action == LimitAction::set || d.action == LimitAction::lower)) {
    d.action = LimitAction::skip;
    d.why = fmt::format("not {} from an incomplete basis ({}): a limit from the rest could break what was left out",
                        in.current ? "lowered" : "set", in.incomplete.empty() ? "a model was left out" : in.incomplete);
    d.target.reset();
    return d;
  }
  if (d.action != LimitAction::keep) {
    d.why = d.capped    ? fmt::format("{} wanted, capped at what the host can give beside its reserve",
                                      format_bytes(round_up_to_step(*in.wanted)))
            : d.floored ? "what it uses now, with a margin, is more than its basis"
                        : "";
  }
  return d;
}

HistoryBasis limit_from_history(const HistoryPeak& peak) {
  HistoryBasis b;
  if (peak.samples == 0 || !peak.peak) {
    b.why = "no stored history (memwarden serve keeps it)";
    return b;
  }
  if (peak.span_ms < k_min_history_ms) {
    b.why = fmt::format(
        "only {} of stored history; a limit from its peak needs at least 24 h (memwarden serve keeps "
        "it)",
        span_text(peak.span_ms));
    return b;
  }
  const auto with = *peak.peak + *peak.peak / 100 * k_history_headroom_percent;
  b.wanted = round_up_to_step(std::max(with, k_limit_step));
  b.why = fmt::format("peak {} over {} of history, + {}%", format_bytes(*peak.peak), span_text(peak.span_ms),
                      k_history_headroom_percent);
  return b;
}

ServerBasis limit_from_models(const std::vector<ServedModel>& models, std::string_view basis) {
  ServerBasis b;
  std::vector<std::string> unsized;
  std::size_t sized = 0;
  for (const auto& m : models) {
    if (!m.plan) {
      unsized.push_back(m.name);
      continue;
    }
    ++sized;
    if (!b.wanted || m.plan->container_limit > *b.wanted) {
      b.wanted = m.plan->container_limit;
      b.largest = m.name;
    }
  }
  std::string left;
  if (!unsized.empty()) {
    left = fmt::format("; could not size {}", fmt::join(unsized, ", "));
    b.complete = false;
  }
  if (!b.wanted) {
    b.why = models.empty() ? fmt::format("no models ({})", basis) : fmt::format("no model could be sized{}", left);
    return b;
  }
  b.why = fmt::format("{} needs {} ({}: {} model{}){}", b.largest, format_bytes(*b.wanted), basis, sized,
                      sized == 1 ? "" : "s", left);
  return b;
}

std::vector<SettingChange> recommend_settings(const std::vector<ServedModel>& models, const ServerEnv& env,
                                              std::uint64_t limit, std::uint64_t headroom_percent) {
  std::vector<SettingChange> out;
  // Several models that do not fit together, on a server that may keep more than one loaded.
  std::uint64_t together = 0;
  std::size_t sized = 0;
  for (const auto& m : models) {
    if (m.plan) {
      together += m.plan->ram_needed;
      ++sized;
    }
  }
  const auto max_loaded = env_of(env, "OLLAMA_MAX_LOADED_MODELS");
  const auto max_loaded_n = max_loaded ? plain_number(*max_loaded) : std::nullopt;
  if (sized >= 2 && container_limit_for(together, headroom_percent) > limit && (!max_loaded_n || *max_loaded_n != 1)) {
    add_change(out, env, "OLLAMA_MAX_LOADED_MODELS", "1",
               fmt::format("the {} models need {} together, more than the {} limit: one at a time", sized,
                           format_bytes(container_limit_for(together, headroom_percent)), format_bytes(limit)));
    if (const auto keep = env_of(env, "OLLAMA_KEEP_ALIVE"); keep && keeps_long(*keep)) {
      add_change(out, env, "OLLAMA_KEEP_ALIVE", "5m",
                 fmt::format("a model kept loaded for {} blocks the next one; 5m is Ollama's default", *keep));
    }
  }
  // A model over the limit at the server's settings, where the plan's own suggestion brings it under.
  for (const auto& m : models) {
    if (!m.plan || m.plan->container_limit <= limit) {
      continue;
    }
    const Suggestion* chosen = nullptr;
    for (const std::string_view flag : {"--parallel", "--kv-type", "--ctx"}) {
      for (const auto& s : m.plan->suggestions) {
        if (flag_value(s.change, flag) && s.verdict != FitVerdict::no_fit &&
            container_limit_for(s.ram_needed, headroom_percent) <= limit) {
          chosen = &s;
          break;
        }
      }
      if (chosen) {
        break;
      }
    }
    if (!chosen) {
      continue;
    }
    const auto why = fmt::format("{} needs {} at the server's settings; {}", m.name,
                                 format_bytes(m.plan->container_limit), chosen->why);
    if (auto v = flag_value(chosen->change, "--parallel")) {
      add_smallest(out, env, "OLLAMA_NUM_PARALLEL", *v, why);
    } else if (auto kv = flag_value(chosen->change, "--kv-type")) {
      add_change(out, env, "OLLAMA_KV_CACHE_TYPE", *kv, why);
      add_change(out, env, "OLLAMA_FLASH_ATTENTION", "1", "a quantized KV cache needs flash attention");
    } else if (auto ctx = flag_value(chosen->change, "--ctx")) {
      add_smallest(out, env, "OLLAMA_CONTEXT_LENGTH", *ctx, why);
    }
  }
  return out;
}

}  // namespace mw
