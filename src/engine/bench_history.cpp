#include "engine/bench_history.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <utility>

#include "adapters/sample_store.hpp"
#include "adapters/state_dir.hpp"
#include "engine/bench_json.hpp"

namespace mw::engine {

namespace {

// The store if the database exists; nullopt where nothing was stored yet (read, do not create).
Result<std::optional<adapters::SampleStore>> open_existing(const std::string& state_dir) {
  std::error_code ec;
  if (!std::filesystem::exists(adapters::StateDir(state_dir).samples(), ec)) {
    return std::optional<adapters::SampleStore>{};
  }
  auto db = adapters::SampleStore::open(state_dir);
  if (!db) {
    return unexpected(db.error());
  }
  return std::optional<adapters::SampleStore>(std::move(db).value());
}

std::string run_source(const adapters::SampleStore& store, std::int64_t id) {
  return fmt::format("{} (benchmark run {})", store.path().string(), id);
}

Result<BenchRun> load_from(adapters::SampleStore& store, std::int64_t id, BenchParse parse = BenchParse::whole) {
  auto record = store.bench_run(id);
  if (!record) {
    return unexpected(record.error());
  }
  if (!record->has_value()) {
    return fail(store.path().string(), fmt::format("no benchmark run {} (memwarden bench --list shows them)", id));
  }
  auto run = parse_bench_run((*record)->json, run_source(store, id), parse);
  if (!run) {
    return unexpected(run.error());
  }
  run->id = id;
  return run;
}

}  // namespace

Result<std::int64_t> store_bench_run(const std::string& state_dir, const BenchRun& run) {
  auto db = adapters::SampleStore::open(state_dir);
  if (!db) {
    return unexpected(db.error());
  }
  adapters::BenchRunRecord r;
  r.started_at_ms = run.started_at_ms;
  r.server = run.server;
  for (const auto& m : run.models) {
    r.models.push_back(m.model);
  }
  r.interrupted = run.interrupted;
  r.json = bench_run_json(run).dump();
  return db->append_bench_run(r);
}

Result<std::vector<BenchRunSummary>> list_bench_runs(const std::string& state_dir, std::size_t limit) {
  auto db = open_existing(state_dir);
  if (!db) {
    return unexpected(db.error());
  }
  std::vector<BenchRunSummary> out;
  if (!db->has_value()) {
    return out;
  }
  auto rows = (*db)->bench_runs(limit);
  if (!rows) {
    return unexpected(rows.error());
  }
  for (auto& r : *rows) {
    out.push_back({r.id, r.started_at_ms, std::move(r.server), std::move(r.models), r.interrupted});
  }
  return out;
}

Result<BenchRun> load_bench_run(const std::string& state_dir, std::int64_t id) {
  auto db = open_existing(state_dir);
  if (!db) {
    return unexpected(db.error());
  }
  if (!db->has_value()) {
    return fail(adapters::StateDir(state_dir).samples().string(),
                fmt::format("no benchmark run {}: no run was stored yet", id));
  }
  return load_from(**db, id);
}

Result<std::vector<BenchChange>> compare_bench_runs(const std::string& state_dir, std::int64_t id_a,
                                                    std::int64_t id_b) {
  auto db = open_existing(state_dir);
  if (!db) {
    return unexpected(db.error());
  }
  if (!db->has_value()) {
    return fail(adapters::StateDir(state_dir).samples().string(),
                fmt::format("no benchmark run {}: no run was stored yet", id_a));
  }
  auto a = load_from(**db, id_a);
  if (!a) {
    return unexpected(a.error());
  }
  auto b = load_from(**db, id_b);
  if (!b) {
    return unexpected(b.error());
  }
  return compare_runs(*a, *b);
}

// ---------------------------------------------------------------- the daemon's figures

namespace {

BenchModelFigures figures_of(const BenchRun& run, const BenchModel& m) {
  BenchModelFigures f;
  f.model = m.model;
  f.run_id = run.id;
  f.started_at_ms = run.started_at_ms;
  f.load_s = m.load_s;
  for (const auto& l : m.levels) {
    BenchLevelFigures lf;
    lf.concurrency = l.concurrency;
    lf.output_tokens_per_s = l.throughput.output_tokens_per_s;
    lf.ttft_p50_s = l.ttft_s.median;
    lf.ttft_p90_s = l.ttft_s.p90;
    lf.ttft_p99_s = l.ttft_s.p99;
    lf.e2e_p50_s = l.e2e_s.median;
    lf.e2e_p90_s = l.e2e_s.p90;
    lf.e2e_p99_s = l.e2e_s.p99;
    f.levels.push_back(lf);
  }
  f.verdicts = m.verdicts;
  return f;
}

// Adds the figures of the run's models not in `into` yet; false once k_max_bench_models_shown are there.
bool take_new_models(const BenchRun& run, std::map<std::string, BenchModelFigures>& into) {
  for (const auto& m : run.models) {
    if (m.status == BenchModelStatus::skipped || m.model.empty() || into.contains(m.model)) {
      continue;
    }
    if (into.size() >= k_max_bench_models_shown) {
      return false;
    }
    into.emplace(m.model, figures_of(run, m));
  }
  return true;
}

std::vector<BenchModelFigures> sorted(std::map<std::string, BenchModelFigures> by_model) {
  std::vector<BenchModelFigures> out;
  out.reserve(by_model.size());
  for (auto& [name, f] : by_model) {
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace

std::vector<BenchModelFigures> latest_bench_figures(std::span<const BenchRun> newest_first) {
  std::map<std::string, BenchModelFigures> by_model;
  for (const auto& run : newest_first) {
    if (!take_new_models(run, by_model)) {
      break;
    }
  }
  return sorted(std::move(by_model));
}

Result<std::optional<BenchFiguresRead>> read_bench_figures(adapters::SampleStore& store, std::int64_t known_newest_id) {
  auto rows = store.bench_runs(adapters::SampleStore::k_max_bench_runs_kept);
  if (!rows) {
    return unexpected(rows.error());
  }
  BenchFiguresRead read;
  read.newest_id = rows->empty() ? 0 : rows->front().id;
  if (read.newest_id == known_newest_id) {
    return std::optional<BenchFiguresRead>{};
  }
  std::map<std::string, BenchModelFigures> by_model;
  for (const auto& r : *rows) {
    const bool news =
        std::any_of(r.models.begin(), r.models.end(), [&](const std::string& m) { return !by_model.contains(m); });
    if (!news) {
      continue;  // every model it lists has newer figures
    }
    auto run = load_from(store, r.id, BenchParse::figures_only);
    if (!run) {
      read.problems.push_back(run.error());
      continue;
    }
    if (!take_new_models(*run, by_model)) {
      break;
    }
  }
  read.figures = sorted(std::move(by_model));
  return std::optional<BenchFiguresRead>(std::move(read));
}

}  // namespace mw::engine
