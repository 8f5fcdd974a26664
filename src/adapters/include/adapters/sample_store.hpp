// The sample history of `memwarden serve`: every sample kept in an embedded SQLite
// database (<state dir>/samples.db, apart from the action journal so that a full or
// broken history never stops the journal), raw for raw_retention (48 h) and as
// 1-minute aggregates for aggregate_retention (30 days), under max_bytes in all,
// so that `diagnose` and `history` can look back across restarts.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "adapters/state_dir.hpp"
#include "core/error.hpp"

namespace mw::adapters {

// One subject at one time. Unknown values stay nullopt (NULL in the database), never 0.
struct StoredSample {
  std::int64_t at_ms = 0;  // wall clock, unix ms
  std::string subject;     // a server's name, a container name, or "host"
  std::optional<std::uint64_t> usage, working_set, anon, file, swap, limit;
  std::optional<std::uint64_t> mem_available;                    // host only
  std::optional<double> psi_some_avg10, psi_full_avg10;          // host only, percent
  std::optional<std::uint64_t> models_bytes, models_vram_bytes;  // servers: sum over /api/ps
  std::optional<std::uint32_t> models_loaded;

  friend bool operator==(const StoredSample&, const StoredSample&) = default;
};

// One subject over one minute [minute_ms, minute_ms + 60000). Each value is over the
// samples that knew it (nullopt when none did); averages are rounded to the nearest byte.
struct AggregateSample {
  std::int64_t minute_ms = 0;
  std::string subject;
  std::uint32_t count = 0;  // raw samples in the minute
  std::optional<std::uint64_t> anon_min, anon_avg, anon_max, working_set_avg, working_set_max;
  std::optional<std::uint64_t> mem_available_min;
  std::optional<double> psi_full_avg10_max;

  friend bool operator==(const AggregateSample&, const AggregateSample&) = default;
};

// One model load held against the plan (`memwarden test model --load`). Unknown values stay nullopt.
struct EstimateRecord {
  std::int64_t at_ms = 0;  // wall clock, unix ms
  std::string model;
  std::string server;
  std::string quantization;
  std::optional<std::uint64_t> num_ctx;
  std::uint64_t planned_ram = 0;  // the model's RAM side in the plan (without the runner's own)
  std::uint64_t planned_vram = 0;
  std::optional<std::uint64_t> measured_ram;  // what the load added to the container (anon + mapped files)
  std::optional<std::uint64_t> server_size;   // /api/ps size
  std::optional<std::uint64_t> server_vram;   // /api/ps size_vram
  std::optional<double> load_seconds;
  std::optional<std::uint64_t> kept_after_unload;  // anon above the level before the load, after the unload
  friend bool operator==(const EstimateRecord&, const EstimateRecord&) = default;
};

// One benchmark run (`memwarden bench`): a few columns to list runs by, and the run itself as the JSON of
// docs/bench.md (engine/bench_json.hpp), which this layer stores as given.
struct BenchRunRecord {
  std::int64_t id = 0;             // set by the store (never reused: AUTOINCREMENT); ignored by append_bench_run
  std::int64_t started_at_ms = 0;  // wall clock, unix ms
  std::string server;
  std::vector<std::string> models;  // in the run's order; stored as a comma list (a name with a comma is refused)
  bool interrupted = false;
  std::string json;  // "" when listed without it
  friend bool operator==(const BenchRunRecord&, const BenchRunRecord&) = default;
};

// Whether bench_runs() reads each run's JSON too (it may be megabytes) or only the columns to list them by.
enum class BenchRunFields { summary, with_json };

struct SampleStoreOptions {
  std::chrono::milliseconds raw_retention = std::chrono::hours(48);
  std::chrono::milliseconds aggregate_retention = std::chrono::hours(24 * 30);
  // Bound on the database (page_count * page_size). The write-ahead log beside it adds
  // up to a few MiB between checkpoints.
  std::uint64_t max_bytes = 256ULL << 20;
};

// The sample database. Every SQLite failure becomes an Error whose source is the
// database path: locked (after waiting 2 s), corrupt, disk full, or the SQLite message.
// Safe to share between threads (one connection, calls serialized); several processes may
// open the same file (WAL), but only one should append and maintain.
// Movable, not copyable; a moved-from store answers every call with an error.
class SampleStore {
 public:
  // estimate_checks (test model's loads) came later without a new version: it is created where missing, and an
  // older memwarden that knows only schema 1 keeps using the file.
  static constexpr int k_schema_version = 1;
  static constexpr std::int64_t k_max_estimates = 10000;
  // bench_runs (memwarden bench) came later too, the same way. The newest k_max_bench_runs_kept are kept, and
  // of those only as many of the newest as hold k_max_bench_json_total bytes of JSON in all (the newest always),
  // so that benchmarks never crowd the sample history out of max_bytes.
  static constexpr std::int64_t k_max_bench_runs_kept = 200;
  static constexpr std::size_t k_max_bench_run_json = 32ULL << 20;
  static constexpr std::size_t k_max_bench_json_total = 64ULL << 20;
  static constexpr int k_busy_timeout_ms = 2000;
  static constexpr std::int64_t k_minute_ms = 60'000;
  // A minute is rolled up once it ended this long before `now`: a sample taken just before
  // the minute ended may be appended a little later.
  static constexpr std::int64_t k_rollup_delay_ms = 10'000;
  // When over max_bytes, the last hour of raw samples is the last to go.
  static constexpr std::int64_t k_raw_kept_last_ms = 3'600'000;

  // Creates state_dir (0700) and the database if absent: incremental auto-vacuum, WAL,
  // synchronous=NORMAL, schema version check and migration. No integrity scan (the file
  // may be large): damage shows as a "corrupt" error from the call that meets it.
  [[nodiscard]] static Result<SampleStore> open(const std::filesystem::path& state_dir,
                                                SampleStoreOptions options = {});

  SampleStore(SampleStore&& other) noexcept;
  SampleStore& operator=(SampleStore&& other) noexcept;
  SampleStore(const SampleStore&) = delete;
  SampleStore& operator=(const SampleStore&) = delete;
  ~SampleStore();

  // Stores the batch in one transaction: all of it or, on error, none of it. A sample of a
  // subject at a time already stored replaces the stored one. A sample without a subject
  // fails the batch.
  [[nodiscard]] Expected<void, Error> append(const std::vector<StoredSample>& batch);

  // Rolls up whole minutes (ended k_rollup_delay_ms before now_ms) of raw samples not yet
  // rolled up into aggregates; drops raw samples older than raw_retention and aggregates
  // older than aggregate_retention; then, when the database is over max_bytes, drops the
  // oldest rows (raw older than the last hour first, then aggregates older than every raw
  // sample, then both, oldest minutes first) until it is under 90 % of max_bytes, and gives
  // the space back to the file system.
  // Idempotent: a minute is rolled up once (a sample appended into a minute already rolled
  // up stays raw only). Call it about once a minute; now_ms is wall clock, unix ms.
  // Every step runs even when one fails (a delete frees space); the first error is returned.
  [[nodiscard]] Expected<void, Error> maintain(std::int64_t now_ms);

  // The subject's raw samples with since_ms <= at_ms < until_ms, oldest first. Raw samples
  // are stored in time order: this reads the window's samples of every subject, so look back
  // over hours through aggregates().
  [[nodiscard]] Result<std::vector<StoredSample>> raw(const std::string& subject, std::int64_t since_ms,
                                                      std::int64_t until_ms);
  // The subject's aggregates of the minutes that overlap [since_ms, until_ms), oldest first.
  [[nodiscard]] Result<std::vector<AggregateSample>> aggregates(const std::string& subject, std::int64_t since_ms,
                                                                std::int64_t until_ms);
  // Stores one load's figures; the newest k_max_estimates are kept.
  [[nodiscard]] Expected<void, Error> append_estimate(const EstimateRecord& record);
  // The newest `limit` stored, newest first.
  [[nodiscard]] Result<std::vector<EstimateRecord>> estimates(std::size_t limit);
  // Stores one benchmark run and returns its id; then drops the oldest runs beyond the bounds above. Errors: a
  // JSON over k_max_bench_run_json bytes or empty, a model name with a comma, and SQLite's.
  [[nodiscard]] Result<std::int64_t> append_bench_run(const BenchRunRecord& record);
  // The newest `limit` runs (at most k_max_bench_runs_kept), newest first; their JSON only when asked.
  [[nodiscard]] Result<std::vector<BenchRunRecord>> bench_runs(std::size_t limit,
                                                               BenchRunFields fields = BenchRunFields::summary);
  // One run with its JSON; nullopt when no run has this id (never stored, or dropped as too old).
  [[nodiscard]] Result<std::optional<BenchRunRecord>> bench_run(std::int64_t id);
  // The subjects with any raw sample or aggregate, sorted by name (but for a subject whose
  // only samples were appended late, into minutes already rolled up).
  [[nodiscard]] Result<std::vector<std::string>> subjects();
  // page_count * page_size.
  [[nodiscard]] Result<std::uint64_t> size_bytes();

  [[nodiscard]] const std::filesystem::path& path() const;

  // For tests: caps the database of this connection at `pages` pages (PRAGMA
  // max_page_count, never below its current size), so that writes beyond fail as on a
  // full disk. Returns the cap in force.
  [[nodiscard]] Result<std::uint64_t> set_page_limit_for_testing(std::uint64_t pages);

 private:
  struct Impl;
  explicit SampleStore(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> m_impl;
};

}  // namespace mw::adapters
