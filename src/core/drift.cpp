#include "core/drift.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "core/bytes.hpp"
#include "core/discovery.hpp"

namespace mw {

namespace {

Evidence bytes_evidence(std::string name, std::uint64_t bytes) {
  return Evidence{std::move(name), static_cast<double>(bytes), format_bytes(bytes)};
}

Finding drift_finding(const DriftSubject& s, Timestamp at) {
  Finding f;
  f.detector = Detector::drift;
  f.severity = Severity::warning;
  f.subject = s.name;
  f.window_start = at;
  f.window_end = at;
  return f;
}

}  // namespace

std::string peak_basis(const std::string& container) {
  return fmt::format(
      "memwarden optimize --yes {} sets one from its peak once memwarden serve has stored 24 h of its history",
      container);
}

std::uint64_t host_server_cap(std::uint64_t mem_total, std::uint64_t reserve,
                              const std::vector<ContainerSnapshot>& containers) {
  std::vector<OtherContainer> others;
  for (const auto& c : containers) {
    if (!c.meta.state.running || is_inference_server(c.meta)) {
      continue;
    }
    OtherContainer o;
    o.limit = c.meta.memory_limit;
    if (c.memory) {
      o.use = c.memory->working_set();
    }
    others.push_back(o);
  }
  return server_cap(mem_total, reserve, others);
}

LimitAdvice advise_server_limit(const ServerBasis& plan, std::optional<std::uint64_t> floor, std::uint64_t cap) {
  LimitAdvice out;
  if (!plan.wanted) {
    out.basis = plan.why.empty() ? std::string("its models are unknown") : plan.why;
    return out;
  }
  LimitInput in;
  in.floor = floor;
  in.wanted = plan.wanted;
  in.cap = cap;
  in.only_raise = !plan.complete;
  in.incomplete = plan.why;
  const auto d = decide_limit(in);
  if (!d.target) {
    out.basis = d.why;
    return out;
  }
  out.limit = d.target;
  out.basis = plan.why;
  if (d.capped) {
    out.basis += fmt::format("; capped at the {} the host can give it and keep its reserve", format_bytes(*d.target));
  } else if (d.floored) {
    out.basis += "; it uses more than that now, with a margin";
  }
  return out;
}

std::vector<Finding> detect_drift(const std::vector<DriftSubject>& subjects, Timestamp at) {
  std::vector<Finding> out;
  for (const auto& s : subjects) {
    if (s.excluded) {
      continue;
    }
    if (!s.limit) {
      if (s.inference_server) {
        continue;  // the unlimited detector says it, with the planned limit
      }
      auto f = drift_finding(s, at);
      f.summary = fmt::format(
          "{} runs without a memory limit: it is not in the optimized state, and can take all of "
          "the host's RAM{}",
          s.name, s.use ? fmt::format(" (it uses {} now)", format_bytes(*s.use)) : "");
      if (s.use) {
        f.evidence.push_back(bytes_evidence("working_set_bytes", *s.use));
      }
      f.remedy = Remedy::set_memory_limit;
      f.action = fmt::format(
          "memwarden optimize --yes {}: it sets a limit from its peak once memwarden serve has stored 24 h of "
          "its history; until then set one by hand (docker update --memory SIZE --memory-swap SIZE {}, or mem_limit "
          "in compose)",
          s.name, s.name);
      out.push_back(std::move(f));
      continue;
    }
    if (!s.inference_server || !s.plan || !s.plan->wanted || round_up_to_step(*s.plan->wanted) <= *s.limit) {
      continue;
    }
    LimitInput in;
    in.current = s.limit;
    in.floor = s.floor;
    in.wanted = s.plan->wanted;
    in.cap = s.cap;
    const auto d = decide_limit(in);
    const bool raise = d.action == LimitAction::raise;
    const bool host_short = d.capped && d.target && !raise;
    if (!raise && !host_short) {
      continue;  // within the tolerance, or no safe limit (optimize leaves it too)
    }
    auto f = drift_finding(s, at);
    const auto needed = round_up_to_step(*s.plan->wanted);
    f.summary = fmt::format(
        "{} needs a {} limit for {}, more than its {} limit: a model pulled since the limit was "
        "set no longer fits ({})",
        s.name, format_bytes(needed), s.plan->largest, format_bytes(*s.limit), s.plan->why);
    f.evidence = {bytes_evidence("needed_limit_bytes", needed), bytes_evidence("limit_bytes", *s.limit)};
    if (raise) {
      f.evidence.push_back(bytes_evidence("recommended_limit_bytes", *d.target));
      f.remedy = Remedy::set_memory_limit;
      f.action = fmt::format("memwarden optimize --yes {} raises its limit to {}{}", s.name, format_bytes(*d.target),
                             d.capped ? " (all the host can give it and keep its reserve)" : "");
    } else {
      f.remedy = Remedy::tune_server;
      f.action = fmt::format(
          "the host cannot give {} more than {} and keep its reserve: memwarden optimize --yes --recreate {} changes "
          "its settings (slots, KV cache type, context) where one makes {} fit; else remove the model (ollama rm {})",
          s.name, format_bytes(*d.target), s.name, s.plan->largest, s.plan->largest);
    }
    out.push_back(std::move(f));
  }
  std::stable_sort(out.begin(), out.end(), [](const Finding& a, const Finding& b) { return a.subject < b.subject; });
  return out;
}

}  // namespace mw
