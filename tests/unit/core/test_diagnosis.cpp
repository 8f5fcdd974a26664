// The detectors on synthetic series. Timestamps are explicit: no clock is read.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>

#include "core/bytes.hpp"
#include "core/diagnosis.hpp"
#include "core/text.hpp"

using namespace mw;
using namespace std::chrono_literals;

namespace {

constexpr std::uint64_t k_mib_u = 1ULL << 20;
constexpr std::uint64_t k_gib_u = 1ULL << 30;

OllamaModel model(std::string name, std::uint64_t size, std::uint64_t size_vram) {
  OllamaModel m;
  m.name = std::move(name);
  m.size = size;
  m.size_vram = size_vram;
  return m;
}

InferenceServer server(std::string name = "ollama") {
  InferenceServer s;
  s.name = std::move(name);
  s.api_url = "http://127.0.0.1:11434";
  return s;
}

ServerSample sample(std::int64_t at_ms, std::optional<std::uint64_t> anon,
                    std::optional<std::vector<OllamaModel>> models, std::uint64_t file = 10 * k_mib_u,
                    std::optional<MemoryLimit> limit = MemoryLimit::unlimited()) {
  ServerSample s;
  s.at = timestamp_from_ms(at_ms);
  s.models = std::move(models);
  if (anon) {
    CgroupMemory m;
    m.anon = anon;
    m.file = file;
    m.usage = *anon + file;
    m.inactive_file = file / 2;
    m.limit = limit;
    s.memory = m;
  }
  return s;
}

// n samples, one per interval, anon = f(i).
template <class F>
ServerHistory series(std::size_t n, Duration interval, F anon_at, std::vector<OllamaModel> models = {}) {
  ServerHistory h(n + 8);
  for (std::size_t i = 0; i < n; ++i) {
    h.push(sample(static_cast<std::int64_t>(i) * interval.count(), anon_at(i), models));
  }
  return h;
}

HostHistory host_with(std::uint64_t total, std::uint64_t available, std::uint64_t swap_used = 0, double psi_full = 0) {
  HostHistory h(4);
  HostSample s;
  MemInfo mi;
  mi.mem_total = total;
  mi.mem_available = available;
  mi.swap_total = 8 * k_gib_u;
  mi.swap_free = 8 * k_gib_u - swap_used;
  s.meminfo = mi;
  s.pressure = Pressure{PressureLine{}, PressureLine{psi_full, 0, 0, 0}};
  h.push(s);
  return h;
}

const Evidence& evidence(const Finding& f, const std::string& name) {
  for (const auto& e : f.evidence) {
    if (e.name == name) {
      return e;
    }
  }
  throw std::runtime_error("no evidence " + name);
}

}  // namespace

TEST(ExpectedRam, ModelsInRamPlusBase) {
  EXPECT_EQ(expected_ram({}, k_gib_u), k_gib_u);
  EXPECT_EQ(expected_ram({model("a", 6 * k_gib_u, 4 * k_gib_u), model("b", 3 * k_gib_u, 0)}, k_gib_u), 6 * k_gib_u);
  EXPECT_EQ(expected_ram({model("odd", 1, 5)}, 0), 0U) << "size_vram above size never underflows";
}

TEST(TheilSen, ExactLineAndOutliers) {
  std::vector<Point> line;
  for (int i = 0; i < 50; ++i) {
    line.push_back({i * 1000.0, 100.0 + 3.0 * i * 1000.0});
  }
  EXPECT_NEAR(*theil_sen_slope(line), 3.0, 1e-12);
  for (int i = 0; i < 50; i += 4) {  // a quarter of the points wildly off
    line[static_cast<std::size_t>(i)].y = (i % 8 == 0) ? 1e12 : -1e12;
  }
  EXPECT_NEAR(*theil_sen_slope(line), 3.0, 0.3) << "the median of slopes ignores outliers";
  EXPECT_FALSE(theil_sen_slope({}));
  EXPECT_FALSE(theil_sen_slope({{5, 1}, {5, 2}})) << "no two distinct times";
}

TEST(IdleBloat, TheSeedIncidentIsCritical) {
  // 25.15 GiB of anon, nothing loaded, for 20 s at 1 s intervals.
  const auto h = series(21, 1s, [](std::size_t) { return static_cast<std::uint64_t>(25.15 * k_gib_u); });
  const auto found = detect_idle_bloat(server("ollama-gpu"), h, {});
  ASSERT_EQ(found.size(), 1U);
  const auto& f = found[0];
  EXPECT_EQ(f.detector, Detector::idle_bloat);
  EXPECT_EQ(f.severity, Severity::critical);
  EXPECT_EQ(f.remedy, Remedy::restart_server);
  EXPECT_EQ(evidence(f, "expected_bytes").value, static_cast<double>(k_gib_u));
  EXPECT_EQ(evidence(f, "threshold_bytes").value, static_cast<double>(3 * k_gib_u)) << "1 GiB base + 2 GiB margin";
  EXPECT_NEAR(evidence(f, "excess_bytes").value, 24.15 * static_cast<double>(k_gib_u), 1.0 * k_mib_u);
  EXPECT_EQ(evidence(f, "held_seconds").value, 20.0);
  EXPECT_NE(f.summary.find("no model loaded"), std::string::npos) << f.summary;
  EXPECT_NE(f.action.find("restart ollama-gpu"), std::string::npos) << f.action;
}

TEST(IdleBloat, NeedsTheHoldTime) {
  DiagnoseThresholds t;
  t.bloat_hold = 10s;
  // over the threshold for the last 9 s only
  auto h = series(20, 1s, [](std::size_t i) { return i >= 10 ? 8 * k_gib_u : 512 * k_mib_u; });
  EXPECT_TRUE(detect_idle_bloat(server(), h, t).empty());
  h.push(sample(20'000, 8 * k_gib_u, std::vector<OllamaModel>{}));  // now 10 s
  EXPECT_EQ(detect_idle_bloat(server(), h, t).size(), 1U);
}

TEST(IdleBloat, LoadedModelsAreExpected) {
  // 12 GiB model, 4 GiB of it in VRAM: 8 GiB in RAM + 1 GiB base = 9 GiB expected; margin 4.5 GiB (50%).
  const std::vector<OllamaModel> models{model("llama3.1:70b", 12 * k_gib_u, 4 * k_gib_u)};
  auto healthy = series(
      30, 1s, [](std::size_t) { return 13 * k_gib_u; }, models);
  EXPECT_TRUE(detect_idle_bloat(server(), healthy, {}).empty()) << "13 GiB < 9 + 4.5 GiB";
  auto bloated = series(
      30, 1s, [](std::size_t) { return 14 * k_gib_u; }, models);
  const auto found = detect_idle_bloat(server(), bloated, {});
  ASSERT_EQ(found.size(), 1U);
  EXPECT_EQ(found[0].severity, Severity::warning);
  EXPECT_EQ(found[0].remedy, Remedy::unload_models);
  EXPECT_EQ(evidence(found[0], "threshold_bytes").value, 13.5 * static_cast<double>(k_gib_u));
}

TEST(IdleBloat, NoVerdictWithoutTheModelList) {
  auto h = series(30, 1s, [](std::size_t) { return 25 * k_gib_u; });
  h.push(sample(30'000, 25 * k_gib_u, std::nullopt));
  EXPECT_TRUE(detect_idle_bloat(server(), h, {}).empty());
}

TEST(IdleBloat, PageCacheNeverCounts) {
  // 20 GiB of page cache (mmap'd weights), little anon: not bloat.
  ServerHistory h(40);
  for (int i = 0; i < 30; ++i) {
    h.push(sample(i * 1000, 300 * k_mib_u, std::vector<OllamaModel>{}, 20 * k_gib_u));
  }
  EXPECT_TRUE(detect_idle_bloat(server(), h, {}).empty());
  EXPECT_TRUE(detect_growth(server(), h, HostHistory(1), {}).empty());
  const auto cache = detect_page_cache(server(), h, {});
  ASSERT_EQ(cache.size(), 1U);
  EXPECT_EQ(cache[0].severity, Severity::info);
  EXPECT_NE(cache[0].summary.find("not a leak"), std::string::npos);
  EXPECT_NEAR(evidence(cache[0], "file_share_percent").value, 98.6, 0.1);
}

TEST(Growth, FastLeakSlopeAndForecast) {
  // 20 MiB/s for 30 s under a 4 GiB limit, starting at 1 GiB.
  ServerHistory h(64);
  for (int i = 0; i <= 30; ++i) {
    h.push(sample(i * 1000, k_gib_u + static_cast<std::uint64_t>(i) * 20 * k_mib_u, std::vector<OllamaModel>{},
                  10 * k_mib_u, MemoryLimit::of(4 * k_gib_u)));
  }
  const auto found = detect_growth(server(), h, host_with(32 * k_gib_u, 20 * k_gib_u), {});
  ASSERT_EQ(found.size(), 1U);
  const auto& f = found[0];
  EXPECT_NEAR(evidence(f, "slope_mib_per_hour").value, 20.0 * 3600, 1.0);
  // headroom 4 GiB - 1.586 GiB = 2.414 GiB at 20 MiB/s = 123.6 s
  EXPECT_NEAR(evidence(f, "hours_to_limit").value * 3600, (4.0 * 1024 - 1024 - 600) / 20.0, 0.5);
  EXPECT_EQ(f.severity, Severity::critical);
  EXPECT_NE(f.summary.find("reaches its 4.00 GiB limit in"), std::string::npos) << f.summary;
}

TEST(Growth, SlowLeakIsAWarningWithAHostForecast) {
  // 2 MiB/s with noise of ±3 MiB and two spikes; unlimited container; 20 GiB available on the host.
  ServerHistory h(128);
  for (int i = 0; i < 60; ++i) {
    auto anon =
        2 * k_gib_u + static_cast<std::uint64_t>(i) * 2 * k_mib_u + (static_cast<std::uint64_t>(i % 3) * 3 * k_mib_u);
    if (i == 17 || i == 41) {
      anon += 900 * k_mib_u;
    }
    h.push(sample(i * 1000, anon, std::vector<OllamaModel>{model("m", 4 * k_gib_u, 4 * k_gib_u)}));
  }
  const auto found = detect_growth(server(), h, host_with(32 * k_gib_u, 20 * k_gib_u), {});
  ASSERT_EQ(found.size(), 1U);
  EXPECT_NEAR(evidence(found[0], "slope_mib_per_hour").value, 7200.0, 7200.0 * 0.1);
  EXPECT_EQ(found[0].severity, Severity::warning) << "20 GiB at 7 GiB/h lasts about 2.8 h: not under 1 h";
  EXPECT_NEAR(evidence(found[0], "hours_to_host_exhaustion").value, 20.0 * 1024 / 7200, 0.3);
}

TEST(Growth, FlatOrNoisyIsHealthy) {
  const auto flat = series(60, 1s, [](std::size_t i) { return 2 * k_gib_u + (i % 5) * 4 * k_mib_u; });
  EXPECT_TRUE(detect_growth(server(), flat, HostHistory(1), {}).empty());
}

TEST(Growth, LoadingAModelIsNotALeak) {
  // anon jumps by 8 GiB when a model loads; before and after, flat.
  ServerHistory h(64);
  for (int i = 0; i < 40; ++i) {
    const bool loaded = i >= 20;
    h.push(sample(i * 1000, loaded ? 9 * k_gib_u : k_gib_u,
                  loaded ? std::vector<OllamaModel>{model("m", 8 * k_gib_u, 0)} : std::vector<OllamaModel>{}));
  }
  EXPECT_TRUE(detect_growth(server(), h, HostHistory(1), {}).empty());
}

TEST(Growth, TooFewSamplesOrTooShort) {
  DiagnoseThresholds t;
  const auto few = series(t.growth_min_samples - 1, 5s, [](std::size_t i) { return k_gib_u + i * 100 * k_mib_u; });
  EXPECT_TRUE(detect_growth(server(), few, HostHistory(1), t).empty());
  const auto brief = series(20, 500ms, [](std::size_t i) { return k_gib_u + i * 100 * k_mib_u; });
  EXPECT_TRUE(detect_growth(server(), brief, HostHistory(1), t).empty()) << "10 s < 15 s minimum span";
}

TEST(OrphanRunner, RunnerHoldingMemoryWithNoModel) {
  ServerHistory h(16);
  for (int i = 0; i < 5; ++i) {
    auto s = sample(i * 1000, 700 * k_mib_u, std::vector<OllamaModel>{});
    ProcessInfo serve;
    serve.pid = 10;
    serve.comm = "ollama";
    serve.argv = {"/bin/ollama", "serve"};
    serve.rss_anon_bytes = 80 * k_mib_u;
    ProcessInfo runner;
    runner.pid = 42;
    runner.comm = "ollama";
    runner.argv = {"/usr/bin/ollama", "runner", "--model", "/root/.ollama/models/blobs/sha256-ab"};
    runner.rss_anon_bytes = 600 * k_mib_u;
    s.processes = {serve, runner};
    h.push(s);
  }
  const auto found = detect_orphan_runners(server(), h, {});
  ASSERT_EQ(found.size(), 1U);
  EXPECT_EQ(evidence(found[0], "orphan_bytes").value, static_cast<double>(600 * k_mib_u));
  EXPECT_EQ(evidence(found[0], "pid_42_bytes").value, static_cast<double>(600 * k_mib_u));
  EXPECT_NE(found[0].summary.find("pid 42 (600 MiB)"), std::string::npos) << found[0].summary;
  EXPECT_EQ(found[0].remedy, Remedy::restart_server);
}

TEST(OrphanRunner, NotWhileAModelIsLoadedOrTheApiIsDown) {
  ProcessInfo runner;
  runner.pid = 42;
  runner.comm = "llama-server";
  runner.rss_bytes = 600 * k_mib_u;
  ServerHistory loaded(8);
  ServerHistory unknown(8);
  for (int i = 0; i < 5; ++i) {
    auto a = sample(i * 1000, 700 * k_mib_u, std::vector<OllamaModel>{model("m", 600 * k_mib_u, 0)});
    a.processes = {runner};
    loaded.push(a);
    auto b = sample(i * 1000, 700 * k_mib_u, std::nullopt);
    b.processes = {runner};
    unknown.push(b);
  }
  EXPECT_TRUE(detect_orphan_runners(server(), loaded, {}).empty());
  EXPECT_TRUE(detect_orphan_runners(server(), unknown, {}).empty());
}

TEST(OrphanRunner, NeedsTheHold) {
  ServerHistory h(8);
  ProcessInfo runner;
  runner.pid = 7;
  runner.comm = "ollama";
  runner.argv = {"ollama", "runner"};
  runner.rss_anon_bytes = 300 * k_mib_u;
  auto s = sample(0, 400 * k_mib_u, std::vector<OllamaModel>{});
  s.processes = {runner};
  h.push(s);
  EXPECT_TRUE(detect_orphan_runners(server(), h, {}).empty()) << "one sample: held 0 s";
  s.at = timestamp_from_ms(2000);
  h.push(s);
  EXPECT_EQ(detect_orphan_runners(server(), h, {}).size(), 1U);
}

TEST(Unlimited, RecommendsThePlannedLimitNotTheLoadedModels) {
  // Idle, nothing loaded; its installed model needs 9 GiB by the plan (engine/drift.hpp fills it in).
  auto srv = server("ollama-gpu");
  srv.planned_limit = 9 * k_gib_u;
  srv.planned_basis = "qwen2.5:14b needs 9.00 GiB (installed models: 1 model)";
  const auto h = series(3, 1s, [](std::size_t) { return 300 * k_mib_u; }, {});
  const auto found = detect_unlimited(srv, h, host_with(32 * k_gib_u, 12 * k_gib_u), {});
  ASSERT_EQ(found.size(), 1U);
  EXPECT_EQ(evidence(found[0], "recommended_limit_bytes").value, static_cast<double>(9 * k_gib_u))
      << "the plan of its installed model, not 4 GiB for what is loaded now";
  EXPECT_EQ(found[0].action.rfind("memwarden optimize --yes ollama-gpu sets a limit of 9.00 GiB (qwen2.5:14b needs", 0),
            0U)
      << found[0].action;
  EXPECT_NE(found[0].action.find("docker update --memory 9216m --memory-swap 9216m ollama-gpu"), std::string::npos)
      << found[0].action;
  EXPECT_NE(found[0].action.find("mem_limit: 9216m"), std::string::npos) << found[0].action;
  EXPECT_EQ(found[0].remedy, Remedy::set_memory_limit);
  EXPECT_EQ(found[0].severity, Severity::warning);
}

TEST(Unlimited, LoadedModelsDoNotChangeThePlannedLimit) {
  auto srv = server();
  srv.planned_limit = 28 * k_gib_u;
  srv.planned_basis = "big needs 40.0 GiB; capped at the 28.0 GiB the host can give it and keep its reserve";
  const auto h = series(3, 1s, [](std::size_t) { return 9 * k_gib_u; }, {model("small", 2 * k_gib_u, 0)});
  const auto found = detect_unlimited(srv, h, host_with(32 * k_gib_u, 12 * k_gib_u), {});
  ASSERT_EQ(found.size(), 1U);
  EXPECT_EQ(evidence(found[0], "recommended_limit_bytes").value, static_cast<double>(28 * k_gib_u));
  EXPECT_NE(found[0].action.find("capped at the 28.0 GiB"), std::string::npos) << found[0].action;
}

TEST(Unlimited, NoNumberWithoutAPlan) {
  auto srv = server();
  srv.planned_basis = "no models (installed models); http://127.0.0.1:11434 (GET /api/tags): connection refused";
  const auto h = series(3, 1s, [](std::size_t) { return 9 * k_gib_u; }, {model("qwen", 10 * k_gib_u, 2 * k_gib_u)});
  const auto found = detect_unlimited(srv, h, host_with(32 * k_gib_u, 12 * k_gib_u), {});
  ASSERT_EQ(found.size(), 1U) << "no limit is still worth saying";
  EXPECT_FALSE(std::any_of(found[0].evidence.begin(), found[0].evidence.end(), [](const Evidence& e) {
    return e.name == "recommended_limit_bytes";
  })) << "no number from the loaded models";
  EXPECT_NE(found[0].action.find("could not plan a limit for it (no models (installed models); "
                                 "http://127.0.0.1:11434 (GET /api/tags): connection refused)"),
            std::string::npos)
      << found[0].action;
  EXPECT_EQ(found[0].action.find("docker update"), std::string::npos) << found[0].action;
  EXPECT_NE(found[0].action.find("memwarden optimize --yes"), std::string::npos) << found[0].action;

  const auto unplanned = detect_unlimited(server(), h, host_with(32 * k_gib_u, 12 * k_gib_u), {});
  ASSERT_EQ(unplanned.size(), 1U);
  EXPECT_EQ(unplanned[0].action.rfind("memwarden optimize --yes ollama sets a limit from the plan", 0), 0U)
      << unplanned[0].action;
}

TEST(Unlimited, LimitedAndHostServersAreFine) {
  ServerHistory h(4);
  h.push(sample(0, k_gib_u, std::vector<OllamaModel>{}, 0, MemoryLimit::of(8 * k_gib_u)));
  EXPECT_TRUE(detect_unlimited(server(), h, HostHistory(1), {}).empty());
  auto host_server = server();
  host_server.kind = ServerKind::host_process;
  const auto unl = series(2, 1s, [](std::size_t) { return k_gib_u; });
  EXPECT_TRUE(detect_unlimited(host_server, unl, HostHistory(1), {}).empty());
}

TEST(ApiUnreachable, NamesTheUrlAndReason) {
  ServerHistory h(4);
  auto s = sample(0, k_gib_u, std::nullopt);
  s.api_error = Error{"http://127.0.0.1:11434 (GET /api/ps)", "no answer within 2.0 s"};
  h.push(s);
  const auto found = detect_api_unreachable(server(), h);
  ASSERT_EQ(found.size(), 1U);
  EXPECT_NE(found[0].summary.find("http://127.0.0.1:11434 (GET /api/ps): no answer within 2.0 s"), std::string::npos);
  h.push(sample(1000, k_gib_u, std::vector<OllamaModel>{}));
  EXPECT_TRUE(detect_api_unreachable(server(), h).empty());
}

TEST(HostPressure, SeveritiesAndThresholds) {
  EXPECT_TRUE(detect_host_pressure(host_with(32 * k_gib_u, 20 * k_gib_u), {}).empty());
  const auto incident = detect_host_pressure(host_with(32 * k_gib_u, 1900 * k_mib_u, 5632 * k_mib_u, 12.5), {});
  ASSERT_EQ(incident.size(), 1U);
  EXPECT_EQ(incident[0].severity, Severity::critical) << "1.9 GiB is under half the 4 GiB reserve";
  EXPECT_NE(incident[0].summary.find("only 1.86 GiB available"), std::string::npos) << incident[0].summary;
  EXPECT_NE(incident[0].summary.find("5.50 GiB of swap"), std::string::npos);
  EXPECT_NE(incident[0].summary.find("12.5%"), std::string::npos);
  const auto swap_only = detect_host_pressure(host_with(32 * k_gib_u, 20 * k_gib_u, 2 * k_gib_u), {});
  ASSERT_EQ(swap_only.size(), 1U);
  EXPECT_EQ(swap_only[0].severity, Severity::warning);
  EXPECT_TRUE(detect_host_pressure(HostHistory(1), {}).empty());
}

TEST(RunDetectors, OrderedBySeverity) {
  const auto bloated = series(30, 1s, [](std::size_t) { return 25 * k_gib_u; });
  const auto quiet = series(30, 1s, [](std::size_t) { return 200 * k_mib_u; });
  auto limited_server = server("b-small");
  limited_server.has_memory_limit = true;
  const auto host = host_with(32 * k_gib_u, 20 * k_gib_u);
  const auto found =
      run_detectors({{server("z-big"), &bloated}, {server("a-quiet"), &quiet}}, host, DiagnoseThresholds{});
  ASSERT_GE(found.size(), 3U);
  EXPECT_EQ(found[0].detector, Detector::idle_bloat);
  EXPECT_EQ(found[0].severity, Severity::critical);
  for (std::size_t i = 1; i < found.size(); ++i) {
    EXPECT_LE(found[i].severity, found[i - 1].severity);
  }
}

TEST(Ring, KeepsTheNewest) {
  Ring<int> r(3);
  for (int i = 1; i <= 5; ++i) {
    r.push(i);
  }
  EXPECT_EQ(r.size(), 3U);
  EXPECT_EQ(r.front(), 3);
  EXPECT_EQ(r.back(), 5);
  EXPECT_EQ(r[1], 4);
}

// ---- what a sample keeps ------------------------------------------------------------------------

TEST(FoldModels, KeepsTheLargestAndAddsUpTheRest) {
  std::vector<OllamaModel> models;
  for (int i = 0; i < 100; ++i) {
    models.push_back(model("m" + std::to_string(i), static_cast<std::uint64_t>(i + 1) * k_mib_u,
                           static_cast<std::uint64_t>(i) * k_mib_u / 2));
  }
  const auto before_ram = expected_ram(models, k_gib_u);
  EXPECT_EQ(fold_models(models, 16), 85U);
  ASSERT_EQ(models.size(), 16U);
  EXPECT_EQ(models.front().name, "m99");  // the largest first
  EXPECT_EQ(models[14].name, "m85");
  EXPECT_EQ(models.back().name, k_folded_models_name);
  EXPECT_EQ(models.back().folded, 85U);
  EXPECT_EQ(models.back().size, 85U * 86U / 2U * k_mib_u);  // m0..m84: 1..85 MiB
  // What the server said it holds is still what the detectors expect.
  EXPECT_EQ(expected_ram(models, k_gib_u), before_ram);
}

TEST(FoldModels, LeavesShortListsAloneAndIsStableForTheSameAnswer) {
  std::vector<OllamaModel> few{model("a", 1, 0), model("b", 2, 0)};
  EXPECT_EQ(fold_models(few, 16), 0U);
  EXPECT_EQ(few.size(), 2U);
  EXPECT_EQ(few.front().name, "a");  // order untouched

  std::vector<OllamaModel> same_size;
  for (int i = 0; i < 20; ++i) {
    same_size.push_back(model("x" + std::to_string(19 - i), 5, 0));
  }
  auto again = same_size;
  fold_models(same_size, 4);
  fold_models(again, 4);
  ASSERT_EQ(same_size.size(), 4U);
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(same_size[i].name, again[i].name);
  }
  EXPECT_EQ(same_size.front().name, "x0");  // ties by name
}

TEST(FoldModels, AnOverlongNameIsFoldedAndLongTextsAreCut) {
  std::vector<OllamaModel> models{model("small:1", 10, 0), model(std::string(k_max_model_name_bytes + 1, 'n'), 5, 0),
                                  model(std::string(k_max_model_name_bytes, 'k'), 7, 0)};
  models[0].family = std::string(1000, 'f');
  EXPECT_EQ(fold_models(models), 1U);
  ASSERT_EQ(models.size(), 3U);
  EXPECT_EQ(models[0].name, "small:1");
  EXPECT_EQ(models[0].family.size(), k_max_model_detail_bytes);
  EXPECT_EQ(models[1].name.size(), k_max_model_name_bytes);  // as long as Ollama allows: kept
  EXPECT_EQ(models[2].name, k_folded_models_name);
  EXPECT_EQ(models[2].size, 5U);
  EXPECT_EQ(expected_ram(models, 0), 22U);
}

TEST(FoldModels, AnIdleBloatFindingCountsTheFoldedModels) {
  std::vector<OllamaModel> models;
  for (int i = 0; i < 40; ++i) {
    models.push_back(model("m" + std::to_string(i), k_gib_u, 0));
  }
  fold_models(models);
  // 40 GiB of models explain 40 GiB of anon: no bloat.
  const auto h = series(
      20, 1s, [](std::size_t) { return 40 * k_gib_u; }, models);
  EXPECT_TRUE(detect_idle_bloat(server(), h, DiagnoseThresholds{}).empty());
  // 80 GiB is bloat (threshold 41 GiB + 50%), and the evidence counts 40 models, not 16 entries.
  const auto bloated = series(
      20, 1s, [](std::size_t) { return 80 * k_gib_u; }, models);
  const auto found = detect_idle_bloat(server(), bloated, DiagnoseThresholds{});
  ASSERT_EQ(found.size(), 1U);
  const auto it = std::find_if(found.front().evidence.begin(), found.front().evidence.end(),
                               [](const Evidence& e) { return e.name == "models_loaded"; });
  ASSERT_NE(it, found.front().evidence.end());
  EXPECT_EQ(it->value, 40.0);
  EXPECT_NE(found.front().summary.find(fmt::format("{} more models", 40 - (k_max_models_kept - 1))), std::string::npos)
      << found.front().summary;
}

TEST(KeepLargestProcesses, KeepsTheHungriestInTheirOrder) {
  std::vector<ProcessInfo> procs;
  for (int i = 0; i < 40; ++i) {
    ProcessInfo p;
    p.pid = i + 1;
    p.rss_bytes = static_cast<std::uint64_t>((i * 7) % 40) * k_mib_u;
    procs.push_back(p);
  }
  EXPECT_EQ(keep_largest_processes(procs, 16), 24U);
  ASSERT_EQ(procs.size(), 16U);
  for (std::size_t i = 1; i < procs.size(); ++i) {
    EXPECT_LT(procs[i - 1].pid, procs[i].pid);  // original order kept
  }
  for (const auto& p : procs) {
    EXPECT_GE(*p.rss_bytes, 24 * k_mib_u);  // the 16 largest of 0..39 MiB
  }
}

TEST(BoundArgv, CutsCountAndLength) {
  std::vector<std::string> argv(20, std::string(1000, 'a'));
  bound_argv(argv);
  ASSERT_EQ(argv.size(), k_max_argv_kept);
  for (const auto& a : argv) {
    EXPECT_EQ(a.size(), k_max_arg_bytes);
  }
  std::vector<std::string> small{"/usr/bin/ollama", "runner"};
  bound_argv(small);
  EXPECT_EQ(small, (std::vector<std::string>{"/usr/bin/ollama", "runner"}));
}

TEST(EscapeControl, OneLineWhateverComesIn) {
  EXPECT_EQ(escape_control("plain text"), "plain text");
  EXPECT_EQ(escape_control("a\nb\rc\td\x1b[31m\x7f"), "a\\nb\\rc\\td\\x1b[31m\\x7f");
  EXPECT_EQ(escape_control("utf-8 \xc3\xa9 stays"), "utf-8 \xc3\xa9 stays");
  const Error e{"label", "bad\nforged: line"};
  EXPECT_EQ(e.line(), "label: bad\\nforged: line");
}

TEST(Footprint, TheWorstBoundedSampleStaysUnderItsDocumentedSize) {
  // Every field at its cap, every list at its count, then bounded as the sampler bounds a sample.
  ServerSample s;
  std::vector<OllamaModel> models;
  for (int i = 0; i < 1000; ++i) {
    OllamaModel m;
    m.name = std::string(k_max_model_name_bytes - 4, 'n') + std::to_string(1000 + i);
    m.model = m.name;
    m.digest = std::string(k_max_model_detail_bytes, 'd');
    m.expires_at = std::string(k_max_model_detail_bytes, 'e');
    m.family = std::string(k_max_model_detail_bytes, 'f');
    m.parameter_size = std::string(k_max_model_detail_bytes, 'p');
    m.quantization_level = std::string(k_max_model_detail_bytes, 'q');
    m.size = static_cast<std::uint64_t>(i);
    models.push_back(std::move(m));
  }
  fold_models(models);
  s.models = std::move(models);
  for (int i = 0; i < 64; ++i) {
    ProcessInfo p;
    p.pid = i + 1;
    p.comm = "ollama_llama_se";
    p.argv = std::vector<std::string>(100, std::string(1000, 'a'));
    bound_argv(p.argv);
    p.rss_bytes = static_cast<std::uint64_t>(i);
    s.processes.push_back(std::move(p));
  }
  keep_largest_processes(s.processes);
  s.api_error = Error{std::string(515, 's'), std::string(515, 'm')};
  const auto bytes = footprint(s);
  EXPECT_LE(bytes, k_max_sample_footprint) << bytes;
  RecordProperty("worst_sample_bytes", static_cast<int>(bytes));
  EXPECT_GT(bytes, k_max_sample_footprint / 2) << "the worst case is near the bound, or the bound is loose";
  // A typical sample: one model, two processes.
  ServerSample typical;
  typical.models = std::vector<OllamaModel>{model("llama3.1:8b", 6 * k_gib_u, 5 * k_gib_u)};
  ProcessInfo server_process;
  server_process.argv = {"/bin/ollama", "serve"};
  typical.processes = {server_process, server_process};
  EXPECT_LT(footprint(typical), 2048U) << footprint(typical);
  RecordProperty("typical_sample_bytes", static_cast<int>(footprint(typical)));
}

TEST(Detectors, NamesAreDistinctAndReadBack) {
  std::set<std::string> names;
  for (const auto d : k_detectors) {
    const std::string name = to_string(d);
    EXPECT_TRUE(names.insert(name).second) << name << " twice";
    EXPECT_EQ(parse_detector(name), d) << name;
  }
  EXPECT_EQ(names.size(), k_detectors.size());
  EXPECT_FALSE(parse_detector("idle_bloat").has_value()) << "the names use dashes";
  EXPECT_FALSE(parse_detector("").has_value());
}
