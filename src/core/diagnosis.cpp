#include "core/diagnosis.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "core/bytes.hpp"
#include "core/footprint.hpp"

namespace mw {

const char* to_string(Severity severity) {
  switch (severity) {
    case Severity::info:
      return "info";
    case Severity::warning:
      return "warning";
    case Severity::critical:
      return "critical";
  }
  return "unknown";
}

const char* to_string(Remedy remedy) {
  switch (remedy) {
    case Remedy::none:
      return "none";
    case Remedy::unload_models:
      return "unload_models";
    case Remedy::restart_server:
      return "restart_server";
    case Remedy::kill_orphans:
      return "kill_orphans";
    case Remedy::set_memory_limit:
      return "set_memory_limit";
    case Remedy::tune_server:
      return "tune_server";
    case Remedy::free_host_memory:
      return "free_host_memory";
  }
  return "unknown";
}

std::uint64_t expected_ram(const std::vector<OllamaModel>& models, std::uint64_t base_allowance) {
  std::uint64_t total = base_allowance;
  for (const auto& m : models) {
    total += saturating_sub(m.size, m.size_vram);
  }
  return total;
}

std::uint64_t bloat_threshold(const std::vector<OllamaModel>& models, const DiagnoseThresholds& t) {
  const std::uint64_t expected = expected_ram(models, t.base_allowance);
  const auto margin = std::max<std::uint64_t>(
      t.bloat_margin, static_cast<std::uint64_t>(t.bloat_margin_fraction * static_cast<double>(expected)));
  return expected + margin;
}

std::optional<double> theil_sen_slope(const std::vector<Point>& points) {
  // With many points, pair each with a bounded set of partners: O(n·k), still robust.
  std::vector<double> slopes;
  const std::size_t n = points.size();
  const std::size_t stride = n > 400 ? n / 200 : 1;
  for (std::size_t i = 0; i < n; i += stride) {
    for (std::size_t j = i + 1; j < n; j += stride) {
      const double dt = points[j].t_ms - points[i].t_ms;
      if (dt != 0.0) {
        slopes.push_back((points[j].y - points[i].y) / dt);
      }
    }
  }
  if (slopes.empty()) {
    return std::nullopt;
  }
  const auto mid = slopes.begin() + static_cast<std::ptrdiff_t>(slopes.size() / 2);
  std::nth_element(slopes.begin(), mid, slopes.end());
  if (slopes.size() % 2 == 1) {
    return *mid;
  }
  const double upper = *mid;
  const double lower = *std::max_element(slopes.begin(), mid);
  return (lower + upper) / 2.0;
}

namespace {

constexpr double k_ms_per_hour = 3'600'000.0;
// Samples are taken on a schedule but stamped when they are read, a few ms late or early;
// a hold or span that is short of its threshold by less than this still counts.
constexpr Duration k_timing_slack{100};
constexpr double k_mib_f = 1024.0 * 1024.0;

Evidence bytes_evidence(std::string name, std::uint64_t bytes) {
  return Evidence{std::move(name), static_cast<double>(bytes), format_bytes(bytes)};
}

Evidence duration_evidence(std::string name, Duration d) {
  return Evidence{std::move(name), static_cast<double>(d.count()) / 1000.0,
                  fmt::format("{:.0f} s", static_cast<double>(d.count()) / 1000.0)};
}

std::string format_duration(Duration d) {
  const double s = static_cast<double>(d.count()) / 1000.0;
  if (s < 120) {
    return fmt::format("{:.0f} s", s);
  }
  if (s < 7200) {
    return fmt::format("{:.0f} min", s / 60);
  }
  if (s < 172800) {
    return fmt::format("{:.1f} h", s / 3600);
  }
  return fmt::format("{:.1f} days", s / 86400);
}

std::string model_list(const std::vector<OllamaModel>& models) {
  if (models.empty()) {
    return "no model loaded";
  }
  std::string out;
  for (const auto& m : models) {
    const auto name = m.folded > 0 ? fmt::format("{} more models", m.folded) : m.name;
    out += (out.empty() ? "" : ", ") +
           fmt::format("{} ({} in RAM)", name, format_bytes(saturating_sub(m.size, m.size_vram)));
  }
  return out;
}

std::set<std::string> model_names(const std::vector<OllamaModel>& models) {
  std::set<std::string> names;
  for (const auto& m : models) {
    // The folded entry stands for models that change unseen: its count and size tell a change at least.
    names.insert(m.folded > 0 ? fmt::format("{} x{} {}", m.name, m.folded, m.size) : m.name);
  }
  return names;
}

bool is_runner(const ProcessInfo& p) {
  const auto has = [](std::string_view s, std::string_view needle) { return s.find(needle) != std::string_view::npos; };
  if (has(p.comm, "llama-server") || has(p.comm, "ollama_llama_se") || has(p.comm, "runner")) {
    return true;
  }
  return p.argv.size() >= 2 && has(p.argv[0], "ollama") && p.argv[1] == "runner";
}

std::uint64_t process_memory(const ProcessInfo& p) {
  if (p.rss_anon_bytes) {
    return *p.rss_anon_bytes;
  }
  return p.rss_bytes.value_or(0);
}

}  // namespace

// ---- idle-bloat --------------------------------------------------------------------------------

std::vector<Finding> detect_idle_bloat(const InferenceServer& server, const ServerHistory& history,
                                       const DiagnoseThresholds& t) {
  if (history.empty()) {
    return {};
  }
  // Walk back from the newest sample while anon stays above what the loaded models explain.
  std::optional<std::size_t> first_over;
  std::uint64_t threshold_now = 0;
  std::uint64_t expected_now = 0;
  for (std::size_t i = history.size(); i-- > 0;) {
    const auto& s = history[i];
    if (!s.models || !s.memory || !s.memory->anon) {
      break;  // without the model list the expectation is unknown: no verdict
    }
    const std::uint64_t expected = expected_ram(*s.models, t.base_allowance);
    const std::uint64_t threshold = bloat_threshold(*s.models, t);
    if (i == history.size() - 1) {
      threshold_now = threshold;
      expected_now = expected;
    }
    if (*s.memory->anon <= threshold) {
      break;
    }
    first_over = i;
  }
  if (!first_over) {
    return {};
  }
  const auto& first = history[*first_over];
  const auto& last = history.back();
  const Duration held = last.at - first.at;
  if (held + k_timing_slack < t.bloat_hold) {
    return {};
  }
  const std::uint64_t anon = *last.memory->anon;
  const std::uint64_t excess = anon - expected_now;
  const bool idle = last.models->empty();
  Finding f;
  f.detector = Detector::idle_bloat;
  f.subject = server.name;
  f.severity = anon > 2 * threshold_now ? Severity::critical : Severity::warning;
  f.summary = fmt::format(
      "{} holds {} of anonymous memory with {}; expected at most {} ({} base + models), "
      "{} more than expected for {}",
      server.name, format_bytes(anon), model_list(*last.models), format_bytes(expected_now),
      format_bytes(t.base_allowance), format_bytes(excess), format_duration(held));
  f.evidence = {bytes_evidence("anon_bytes", anon),
                bytes_evidence("expected_bytes", expected_now),
                bytes_evidence("threshold_bytes", threshold_now),
                bytes_evidence("excess_bytes", excess),
                Evidence{"models_loaded", static_cast<double>(model_count(*last.models)),
                         std::to_string(model_count(*last.models))},
                duration_evidence("held_seconds", held)};
  if (idle) {
    f.remedy = Remedy::restart_server;
    f.action = fmt::format("restart {}: no model is loaded, so a restart loses nothing and returns about {}",
                           server.name, format_bytes(excess));
  } else {
    f.remedy = Remedy::unload_models;
    f.action = fmt::format(
        "unload the idle models of {} (keep_alive 0), measure again, and restart it if anon "
        "memory stays above {}",
        server.name, format_bytes(threshold_now));
  }
  f.window_start = first.at;
  f.window_end = last.at;
  return {f};
}

// ---- growth ------------------------------------------------------------------------------------

std::vector<Finding> detect_growth(const InferenceServer& server, const ServerHistory& history, const HostHistory& host,
                                   const DiagnoseThresholds& t) {
  if (history.empty()) {
    return {};
  }
  // The newest run of samples with the same loaded models (an unknown list continues the run).
  std::optional<std::set<std::string>> models;
  std::size_t begin = history.size();
  for (std::size_t i = history.size(); i-- > 0;) {
    const auto& s = history[i];
    if (s.models) {
      auto names = model_names(*s.models);
      if (models && names != *models) {
        break;
      }
      models = std::move(names);
    }
    begin = i;
  }
  std::vector<Point> points;
  for (std::size_t i = begin; i < history.size(); ++i) {
    const auto& s = history[i];
    if (s.memory && s.memory->anon) {
      points.push_back({static_cast<double>(to_ms(s.at)), static_cast<double>(*s.memory->anon)});
    }
  }
  if (points.size() < t.growth_min_samples) {
    return {};
  }
  const double span_ms = points.back().t_ms - points.front().t_ms;
  if (span_ms + static_cast<double>(k_timing_slack.count()) < static_cast<double>(t.growth_min_span.count())) {
    return {};
  }
  const auto slope = theil_sen_slope(points);
  if (!slope) {
    return {};
  }
  const double mib_per_hour = *slope * k_ms_per_hour / k_mib_f;
  const double rise = *slope * span_ms;
  if (mib_per_hour < t.growth_min_mib_per_hour || rise < static_cast<double>(t.growth_min_rise)) {
    return {};
  }
  const auto& last = history.back();
  const double anon = points.back().y;
  // How long until the growth meets a wall: the container's limit, or the host's available memory.
  std::optional<double> to_limit_ms;
  if (last.memory && last.memory->limit && !last.memory->limit->is_unlimited()) {
    const double headroom = static_cast<double>(*last.memory->limit->bytes) - anon;
    to_limit_ms = std::max(0.0, headroom / *slope);
  }
  std::optional<double> to_host_ms;
  if (!host.empty() && host.back().meminfo && host.back().meminfo->mem_available) {
    to_host_ms = static_cast<double>(*host.back().meminfo->mem_available) / *slope;
  }
  Finding f;
  f.detector = Detector::growth;
  f.subject = server.name;
  f.evidence = {Evidence{"slope_mib_per_hour", mib_per_hour, fmt::format("{:.0f} MiB/h", mib_per_hour)},
                bytes_evidence("anon_bytes", static_cast<std::uint64_t>(anon)),
                Evidence{"samples", static_cast<double>(points.size()), std::to_string(points.size())},
                duration_evidence("window_seconds", Duration(static_cast<std::int64_t>(span_ms)))};
  std::string forecast;
  std::optional<double> soonest;
  if (to_limit_ms) {
    f.evidence.push_back(Evidence{"hours_to_limit", *to_limit_ms / k_ms_per_hour,
                                  format_duration(Duration(static_cast<std::int64_t>(*to_limit_ms)))});
    forecast = fmt::format("it reaches its {} limit in {}", format_bytes(*last.memory->limit->bytes),
                           format_duration(Duration(static_cast<std::int64_t>(*to_limit_ms))));
    soonest = to_limit_ms;
  }
  if (to_host_ms) {
    f.evidence.push_back(Evidence{"hours_to_host_exhaustion", *to_host_ms / k_ms_per_hour,
                                  format_duration(Duration(static_cast<std::int64_t>(*to_host_ms)))});
    if (!soonest || *to_host_ms < *soonest) {
      forecast = fmt::format("the host's {} of available memory runs out in {}",
                             format_bytes(*host.back().meminfo->mem_available),
                             format_duration(Duration(static_cast<std::int64_t>(*to_host_ms))));
      soonest = to_host_ms;
    }
  }
  f.severity = soonest && *soonest < static_cast<double>(t.growth_critical_forecast.count()) ? Severity::critical
                                                                                             : Severity::warning;
  const std::string models_text =
      models ? (models->empty()
                    ? std::string("no model loaded")
                    : fmt::format("{} model(s) loaded", last.models ? model_count(*last.models) : models->size()))
             : std::string("the loaded models unknown");
  f.summary = fmt::format("{}: anonymous memory grows {:.0f} MiB/h with the same models loaded ({}), now {} over {}{}",
                          server.name, mib_per_hour, models_text, format_bytes(static_cast<std::uint64_t>(anon)),
                          format_duration(Duration(static_cast<std::int64_t>(span_ms))),
                          forecast.empty() ? "" : "; at this rate " + forecast);
  f.remedy = Remedy::restart_server;
  f.action = fmt::format(
      "restart {} to release the leaked memory; upgrade Ollama if older than 0.7.1 (engine leaks fixed in "
      "0.6.6, 0.6.8, 0.7.1); with a llama-server runner cap its prompt cache (LLAMA_ARG_CACHE_RAM)",
      server.name);
  f.window_start = timestamp_from_ms(static_cast<std::int64_t>(points.front().t_ms));
  f.window_end = last.at;
  return {f};
}

// ---- orphan-runner -----------------------------------------------------------------------------

std::vector<Finding> detect_orphan_runners(const InferenceServer& server, const ServerHistory& history,
                                           const DiagnoseThresholds& t) {
  if (history.empty()) {
    return {};
  }
  // The newest run of samples in which /api/ps answered "no models" and runners held memory.
  const auto orphans_in = [&](const ServerSample& s) {
    std::vector<const ProcessInfo*> out;
    if (!s.models || !s.models->empty()) {
      return out;
    }
    for (const auto& p : s.processes) {
      if (is_runner(p) && process_memory(p) >= t.orphan_min_rss) {
        out.push_back(&p);
      }
    }
    return out;
  };
  const auto now = orphans_in(history.back());
  if (now.empty()) {
    return {};
  }
  std::size_t first = history.size() - 1;
  while (first > 0 && !orphans_in(history[first - 1]).empty()) {
    --first;
  }
  const Duration held = history.back().at - history[first].at;
  if (held + k_timing_slack < t.orphan_hold) {
    return {};
  }
  std::uint64_t total = 0;
  std::string list;
  for (const auto* p : now) {
    total += process_memory(*p);
    list += (list.empty() ? "" : ", ") + fmt::format("pid {} ({})", p->pid, format_bytes(process_memory(*p)));
  }
  Finding f;
  f.detector = Detector::orphan_runner;
  f.subject = server.name;
  f.severity = Severity::warning;
  f.summary = fmt::format("{}: {} runner process{} hold{} {} while /api/ps lists no model: {}", server.name, now.size(),
                          now.size() == 1 ? "" : "es", now.size() == 1 ? "s" : "", format_bytes(total), list);
  f.evidence = {bytes_evidence("orphan_bytes", total),
                Evidence{"orphan_processes", static_cast<double>(now.size()), std::to_string(now.size())},
                duration_evidence("held_seconds", held)};
  for (const auto* p : now) {
    f.evidence.push_back(bytes_evidence(fmt::format("pid_{}_bytes", p->pid), process_memory(*p)));
  }
  f.remedy = Remedy::restart_server;
  f.action = fmt::format(
      "restart {} (or kill the orphaned runner pids); Ollama 0.7.1 fixed the scheduler race "
      "that leaves runners behind when a client cancels during a load",
      server.name);
  f.window_start = history[first].at;
  f.window_end = history.back().at;
  return {f};
}

// ---- unlimited ---------------------------------------------------------------------------------

std::vector<Finding> detect_unlimited(const InferenceServer& server, const ServerHistory& history,
                                      const HostHistory& host, const DiagnoseThresholds& t) {
  if (server.kind != ServerKind::container || history.empty()) {
    return {};
  }
  const auto& last = history.back();
  bool unlimited = !server.has_memory_limit;
  if (last.memory && last.memory->limit) {
    unlimited = last.memory->limit->is_unlimited();
  }
  if (!unlimited) {
    return {};
  }
  // The limit is the one `memwarden optimize` sets (the plan of its installed models, not of what is
  // loaded now: an idle server would be limited below the first large model it loads), planned by the engine.
  std::string cap;
  if (!host.empty() && host.back().meminfo && host.back().meminfo->mem_total) {
    cap = fmt::format(" (the host has {}; keep {} for the rest)", format_bytes(*host.back().meminfo->mem_total),
                      format_bytes(t.reserve));
  }
  Finding f;
  f.detector = Detector::unlimited;
  f.subject = server.name;
  f.severity = Severity::warning;
  f.summary = fmt::format("{} has no memory limit: a leak in it can take the whole host{}", server.name, cap);
  if (server.planned_limit) {
    f.evidence.push_back(bytes_evidence("recommended_limit_bytes", *server.planned_limit));
  }
  if (last.memory && last.memory->usage) {
    f.evidence.push_back(bytes_evidence("usage_bytes", *last.memory->usage));
  }
  f.remedy = Remedy::set_memory_limit;
  if (server.planned_limit) {
    const auto mib = *server.planned_limit >> 20;
    f.action = fmt::format(
        "memwarden optimize --yes {} sets a limit of {} ({}); by hand: docker update --memory {}m --memory-swap {}m "
        "{}, or mem_limit: {}m in compose",
        server.name, format_bytes(*server.planned_limit), server.planned_basis, mib, mib, server.name, mib);
  } else if (!server.planned_basis.empty()) {
    f.action = fmt::format(
        "memwarden could not plan a limit for it ({}); once it can, memwarden optimize --yes {} sets one from the "
        "models it has installed (memwarden plan MODEL shows what each needs)",
        server.planned_basis, server.name);
  } else {
    f.action = fmt::format(
        "memwarden optimize --yes {} sets a limit from the plan of the models it has installed (memwarden optimize "
        "shows the number first)",
        server.name);
  }
  f.window_start = last.at;
  f.window_end = last.at;
  return {f};
}

// ---- page-cache --------------------------------------------------------------------------------

std::vector<Finding> detect_page_cache(const InferenceServer& server, const ServerHistory& history,
                                       const DiagnoseThresholds& t) {
  if (history.empty() || !history.back().memory) {
    return {};
  }
  const auto& m = *history.back().memory;
  if (!m.usage || !m.file || *m.usage == 0) {
    return {};
  }
  const double share = static_cast<double>(*m.file) / static_cast<double>(*m.usage);
  if (share < t.page_cache_fraction || *m.file < t.page_cache_min) {
    return {};
  }
  Finding f;
  f.detector = Detector::page_cache;
  f.subject = server.name;
  f.severity = Severity::info;
  f.summary = fmt::format(
      "{} of {}'s {} is page cache ({:.0f}%), e.g. mmap'd model weights: the kernel reclaims "
      "it under pressure, so it is not a leak{}",
      format_bytes(*m.file), server.name, format_bytes(*m.usage), share * 100.0,
      m.anon ? fmt::format("; anonymous memory is {}", format_bytes(*m.anon)) : "");
  f.evidence = {bytes_evidence("file_bytes", *m.file), bytes_evidence("usage_bytes", *m.usage),
                Evidence{"file_share_percent", share * 100.0, fmt::format("{:.0f}%", share * 100.0)}};
  if (m.inactive_file) {
    f.evidence.push_back(bytes_evidence("inactive_file_bytes", *m.inactive_file));
  }
  f.remedy = Remedy::none;
  f.action = "nothing to do; judge leaks by anonymous memory, not by usage or free(1)'s 'used'";
  f.window_start = history.back().at;
  f.window_end = history.back().at;
  return {f};
}

// ---- api-unreachable ---------------------------------------------------------------------------

std::vector<Finding> detect_api_unreachable(const InferenceServer& server, const ServerHistory& history) {
  if (history.empty()) {
    return {};
  }
  const auto& last = history.back();
  if (last.models) {
    return {};
  }
  Finding f;
  f.detector = Detector::api_unreachable;
  f.subject = server.name;
  f.severity = Severity::warning;
  if (!server.api_url_problem.empty()) {
    f.summary = fmt::format("{}: its API address from the {} cannot be used: {}; judging from cgroup data alone",
                            server.name, server.api_url_source, server.api_url_problem);
    f.action = fmt::format("correct the {} (e.g. memwarden.ollama.url=http://HOST:PORT)", server.api_url_source);
  } else if (server.api_url.empty()) {
    f.summary = fmt::format(
        "{}: no way to reach its Ollama API was found (no published 11434/tcp, no container "
        "address, no label memwarden.ollama.url); judging from cgroup data alone",
        server.name);
    f.action = fmt::format("publish port 11434 or label the container memwarden.ollama.url=http://HOST:PORT");
  } else {
    f.summary = fmt::format("{}: the Ollama API did not answer: {}; judging from cgroup data alone", server.name,
                            last.api_error ? last.api_error->line() : server.api_url);
    f.action =
        fmt::format("check that {} is up (curl {}/api/version); restart it if it hangs", server.name, server.api_url);
  }
  f.remedy = Remedy::none;
  f.window_start = last.at;
  f.window_end = last.at;
  return {f};
}

// ---- host-pressure -----------------------------------------------------------------------------

std::vector<Finding> detect_host_pressure(const HostHistory& host, const DiagnoseThresholds& t) {
  if (host.empty()) {
    return {};
  }
  const auto& last = host.back();
  std::vector<std::string> reasons;
  Finding f;
  f.detector = Detector::host_pressure;
  f.subject = "host";
  f.severity = Severity::info;
  const auto raise = [&](Severity s) { f.severity = std::max(f.severity, s); };
  if (last.meminfo && last.meminfo->mem_available && *last.meminfo->mem_available < t.reserve) {
    const auto avail = *last.meminfo->mem_available;
    reasons.push_back(
        fmt::format("only {} available, under the {} reserve", format_bytes(avail), format_bytes(t.reserve)));
    f.evidence.push_back(bytes_evidence("available_bytes", avail));
    raise(avail < t.reserve / 2 ? Severity::critical : Severity::warning);
  }
  if (last.meminfo) {
    if (const auto swap = last.meminfo->swap_used(); swap && *swap > t.swap_warn) {
      reasons.push_back(fmt::format("{} of swap in use", format_bytes(*swap)));
      f.evidence.push_back(bytes_evidence("swap_used_bytes", *swap));
      raise(Severity::warning);
    }
  }
  if (last.pressure && last.pressure->full && last.pressure->full->avg10 > t.psi_full_avg10_pct) {
    const double full = last.pressure->full->avg10;
    reasons.push_back(fmt::format("all tasks stalled on memory {:.1f}% of the last 10 s (PSI full)", full));
    f.evidence.push_back(Evidence{"psi_full_avg10", full, fmt::format("{:.1f}%", full)});
    raise(full > 2 * t.psi_full_avg10_pct ? Severity::critical : Severity::warning);
  }
  if (reasons.empty()) {
    return {};
  }
  std::string joined;
  for (const auto& r : reasons) {
    joined += (joined.empty() ? "" : "; ") + r;
  }
  f.summary = "the host is short of memory: " + joined;
  f.remedy = Remedy::free_host_memory;
  f.action =
      "free memory: unload idle models, restart bloated servers (see the other findings), or stop a large "
      "container; run one large model at a time";
  f.window_start = last.at;
  f.window_end = last.at;
  return {f};
}

// ---- all ---------------------------------------------------------------------------------------

const char* to_string(Detector detector) {
  switch (detector) {
    case Detector::idle_bloat:
      return "idle-bloat";
    case Detector::growth:
      return "growth";
    case Detector::orphan_runner:
      return "orphan-runner";
    case Detector::unlimited:
      return "unlimited";
    case Detector::page_cache:
      return "page-cache";
    case Detector::api_unreachable:
      return "api-unreachable";
    case Detector::host_pressure:
      return "host-pressure";
    case Detector::drift:
      return "optimize-drift";
  }
  return "unknown";
}

std::optional<Detector> parse_detector(std::string_view name) {
  for (const auto d : k_detectors) {
    if (name == to_string(d)) {
      return d;
    }
  }
  return std::nullopt;
}

std::vector<Finding> run_detectors(const std::vector<ServerState>& servers, const HostHistory& host,
                                   const DiagnoseThresholds& t) {
  std::vector<Finding> all;
  const auto add = [&](std::vector<Finding> found) {
    for (auto& f : found) {
      all.push_back(std::move(f));
    }
  };
  for (const auto& s : servers) {
    if (s.history == nullptr) {
      continue;
    }
    add(detect_idle_bloat(s.server, *s.history, t));
    add(detect_growth(s.server, *s.history, host, t));
    add(detect_orphan_runners(s.server, *s.history, t));
    add(detect_unlimited(s.server, *s.history, host, t));
    add(detect_page_cache(s.server, *s.history, t));
    add(detect_api_unreachable(s.server, *s.history));
  }
  add(detect_host_pressure(host, t));
  std::stable_sort(all.begin(), all.end(), [](const Finding& a, const Finding& b) {
    if (a.severity != b.severity) {
      return a.severity > b.severity;
    }
    return a.subject < b.subject;
  });
  return all;
}

std::size_t footprint(const ServerSample& s) {
  using owned::heap;
  using owned::heap_block;
  std::size_t n = sizeof s;
  if (s.models) {
    if (s.models->capacity() > 0) {
      n += heap_block(s.models->capacity() * sizeof(OllamaModel));
    }
    for (const auto& m : *s.models) {
      n += heap(m.name) + heap(m.model) + heap(m.digest) + heap(m.expires_at) + heap(m.family) +
           heap(m.parameter_size) + heap(m.quantization_level);
    }
  }
  if (s.api_error) {
    n += heap(s.api_error->source) + heap(s.api_error->message);
  }
  if (s.processes.capacity() > 0) {
    n += heap_block(s.processes.capacity() * sizeof(ProcessInfo));
  }
  for (const auto& p : s.processes) {
    n += heap(p.comm) + heap(p.argv);
  }
  return n;
}

}  // namespace mw
