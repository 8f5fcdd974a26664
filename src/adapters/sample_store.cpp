#include "adapters/sample_store.hpp"

#include <fmt/format.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "sqlite_common.hpp"

namespace mw::adapters {

namespace fs = std::filesystem;

namespace {

// Version 1. Subjects are numbered so that each raw row carries a small integer, not
// the name. Raw samples are clustered by time, (at_ms, subject_id), with no second index:
// one append of a sample per subject then writes one or two pages, not one page per
// subject (as a (subject, time) order would: every second, for days), and roll-up,
// retention and the size bound are range scans over a prefix. Reading one subject scans
// the window's samples of every subject: longer looks back go to the minutes. Minutes,
// written once a minute, are clustered by (subject_id, minute_ms) for reading.
constexpr const char* k_schema_v1 = R"sql(
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS subjects (
  id   INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS raw (
  subject_id        INTEGER NOT NULL,
  at_ms             INTEGER NOT NULL,
  usage             INTEGER,
  working_set       INTEGER,
  anon              INTEGER,
  file              INTEGER,
  swap              INTEGER,
  mem_limit         INTEGER,
  mem_available     INTEGER,
  psi_some_avg10    REAL,
  psi_full_avg10    REAL,
  models_bytes      INTEGER,
  models_vram_bytes INTEGER,
  models_loaded     INTEGER,
  PRIMARY KEY (at_ms, subject_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS minutes (
  subject_id         INTEGER NOT NULL,
  minute_ms          INTEGER NOT NULL,
  count              INTEGER NOT NULL,
  anon_min           INTEGER,
  anon_avg           INTEGER,
  anon_max           INTEGER,
  working_set_avg    INTEGER,
  working_set_max    INTEGER,
  mem_available_min  INTEGER,
  psi_full_avg10_max REAL,
  PRIMARY KEY (subject_id, minute_ms)
) WITHOUT ROWID;
)sql";

// The loads `memwarden test model --load` held against the plan: added to schema 1 where missing (an older
// memwarden ignores the table).
constexpr const char* k_estimate_checks = R"sql(
CREATE TABLE IF NOT EXISTS estimate_checks (
  id                INTEGER PRIMARY KEY,
  at_ms             INTEGER NOT NULL,
  model             TEXT NOT NULL,
  server            TEXT NOT NULL,
  quantization      TEXT NOT NULL,
  num_ctx           INTEGER,
  planned_ram       INTEGER NOT NULL,
  planned_vram      INTEGER NOT NULL,
  measured_ram      INTEGER,
  server_size       INTEGER,
  server_vram       INTEGER,
  load_seconds      REAL,
  kept_after_unload INTEGER
);
)sql";

// The runs of `memwarden bench`, each as its JSON (docs/bench.md): added to schema 1 where missing too.
// AUTOINCREMENT: an id once given is never given again, so `bench --compare A B` never meets another run under A.
constexpr const char* k_bench_runs = R"sql(
CREATE TABLE IF NOT EXISTS bench_runs (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  started_at_ms INTEGER NOT NULL,
  server        TEXT NOT NULL,
  models        TEXT NOT NULL,
  interrupted   INTEGER NOT NULL,
  json          TEXT NOT NULL
);
)sql";

constexpr const char* k_raw_columns =
    "r.at_ms, r.usage, r.working_set, r.anon, r.file, r.swap, r.mem_limit, r.mem_available, r.psi_some_avg10, "
    "r.psi_full_avg10, r.models_bytes, r.models_vram_bytes, r.models_loaded";

// The start of the minute holding at_ms, also for times before 1970.
constexpr const char* k_minute_of_at_ms = "(at_ms - ((at_ms % 60000) + 60000) % 60000)";

constexpr std::int64_t k_wal_size_limit = 4LL << 20;

Error db_error(const fs::path& path, sqlite3* db, int rc, std::string_view doing) {
  return sqlite_error(path, db, rc, doing, "sample", SampleStore::k_busy_timeout_ms);
}

// Bytes are unsigned; SQLite integers are signed 64-bit. Stored bit for bit, so every value round-trips.
std::optional<std::int64_t> to_column(std::optional<std::uint64_t> bytes) {
  return bytes ? std::optional<std::int64_t>(static_cast<std::int64_t>(*bytes)) : std::nullopt;
}
std::optional<std::int64_t> to_column(std::optional<std::uint32_t> count) {
  return count ? std::optional<std::int64_t>(std::int64_t{*count}) : std::nullopt;
}

std::int64_t saturating_sub(std::int64_t a, std::int64_t b) {
  if (b > 0 && a < std::numeric_limits<std::int64_t>::min() + b) {
    return std::numeric_limits<std::int64_t>::min();
  }
  if (b < 0 && a > std::numeric_limits<std::int64_t>::max() + b) {
    return std::numeric_limits<std::int64_t>::max();
  }
  return a - b;
}

std::int64_t floor_minute(std::int64_t ms) {
  const auto rem = ((ms % SampleStore::k_minute_ms) + SampleStore::k_minute_ms) % SampleStore::k_minute_ms;
  return ms - rem;
}

struct TimeRange {
  std::int64_t first = 0;
  std::int64_t last = 0;
};

enum class Table { raw, minutes };

}  // namespace

struct SampleStore::Impl {
  Impl(sqlite3* db_in, fs::path path_in, SampleStoreOptions options_in)
      : db(db_in), path(std::move(path_in)), options(options_in) {}
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl() {
    // The statements are finalized after this; close_v2 waits for them.
    sqlite3_close_v2(db);
  }

  [[nodiscard]] Expected<void, Error> prepare_kept() {
    using Kept = std::tuple<Statement*, const char*, const char*>;
    const unsigned persistent = SQLITE_PREPARE_PERSISTENT;
    for (auto [stmt, sql, doing] : {
             Kept{&begin, "BEGIN IMMEDIATE", "cannot start writing samples"},
             Kept{&commit, "COMMIT", "cannot write samples"},
             Kept{&rollback, "ROLLBACK", "cannot undo a failed write"},
             Kept{&find_subject, "SELECT id FROM subjects WHERE name = ?1", "cannot look up a subject"},
             Kept{&add_subject, "INSERT INTO subjects (name) VALUES (?1)", "cannot add a subject"},
             Kept{&insert_raw,
                  "INSERT OR REPLACE INTO raw (subject_id, at_ms, usage, working_set, anon, file, swap, "
                  "mem_limit, mem_available, psi_some_avg10, psi_full_avg10, models_bytes, models_vram_bytes, "
                  "models_loaded) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                  "cannot write samples"},
         }) {
      if (auto ok = stmt->prepare(db, path, db_error, sql, doing, persistent); !ok) {
        return ok;
      }
    }
    return {};
  }

  // Undoes what is left of a failed transaction (SQLite may have rolled it back already).
  void abandon_transaction() {
    if (sqlite3_get_autocommit(db) == 0) {
      static_cast<void>(rollback.run());
    }
    subject_ids.clear();  // ids looked up or added in the transaction may be gone
  }

  // Runs body in one write transaction; rolled back when anything fails.
  template <class Body>
  [[nodiscard]] Expected<void, Error> in_transaction(Body&& body) {
    if (auto ok = begin.run(); !ok) {
      abandon_transaction();
      return ok;
    }
    Expected<void, Error> result = body();
    if (result) {
      result = commit.run();
    }
    if (!result) {
      abandon_transaction();
    }
    return result;
  }

  [[nodiscard]] Result<std::int64_t> subject_id(const std::string& name) {
    if (const auto it = subject_ids.find(name); it != subject_ids.end()) {
      return it->second;
    }
    {
      ResetOnExit reset(find_subject);
      find_subject.bind(1, name);
      auto row = find_subject.step();
      if (!row) {
        return unexpected(row.error());
      }
      if (*row) {
        const auto id = find_subject.int64(0);
        subject_ids.emplace(name, id);
        return id;
      }
    }
    add_subject.bind(1, name);
    if (auto ok = add_subject.run(); !ok) {
      return unexpected(ok.error());
    }
    const auto id = sqlite3_last_insert_rowid(db);
    subject_ids.emplace(name, id);
    return id;
  }

  [[nodiscard]] Result<std::vector<std::int64_t>> subject_ids_in_db() {
    Statement stmt;
    if (auto ok = stmt.prepare(db, path, db_error, "SELECT id FROM subjects ORDER BY id", "cannot list subjects");
        !ok) {
      return unexpected(ok.error());
    }
    std::vector<std::int64_t> out;
    for (;;) {
      auto row = stmt.step();
      if (!row) {
        return unexpected(row.error());
      }
      if (!*row) {
        return out;
      }
      out.push_back(stmt.int64(0));
    }
  }

  [[nodiscard]] Result<std::uint64_t> size() {
    auto pages = query_int(db, path, db_error, "PRAGMA page_count", "cannot read the size of the sample database");
    if (!pages) {
      return unexpected(pages.error());
    }
    auto page_size = query_int(db, path, db_error, "PRAGMA page_size", "cannot read the size of the sample database");
    if (!page_size) {
      return unexpected(page_size.error());
    }
    return static_cast<std::uint64_t>(pages->value_or(0)) * static_cast<std::uint64_t>(page_size->value_or(0));
  }

  [[nodiscard]] Expected<void, Error> roll_up(std::int64_t now_ms) {
    const auto until = floor_minute(saturating_sub(now_ms, k_rollup_delay_ms));
    return in_transaction([&]() -> Expected<void, Error> {
      auto mark = query_int(db, path, db_error, "SELECT value FROM meta WHERE key = 'rolled_up_to_ms'",
                            "cannot read how far samples are rolled up");
      if (!mark) {
        return unexpected(mark.error());
      }
      const auto from = mark->value_or(std::numeric_limits<std::int64_t>::min());
      if (from == until) {
        return {};
      }
      if (from < until) {
        const auto sql = fmt::format(
            "INSERT INTO minutes (subject_id, minute_ms, count, anon_min, anon_avg, anon_max, working_set_avg, "
            "working_set_max, mem_available_min, psi_full_avg10_max) "
            "SELECT subject_id, {0} AS m, count(*), min(anon), CAST(round(total(anon) / count(anon)) AS INTEGER), "
            "max(anon), CAST(round(total(working_set) / count(working_set)) AS INTEGER), max(working_set), "
            "min(mem_available), max(psi_full_avg10) "
            "FROM raw WHERE at_ms >= ?1 AND at_ms < ?2 GROUP BY subject_id, m "
            "ON CONFLICT (subject_id, minute_ms) DO NOTHING",
            k_minute_of_at_ms);
        Statement insert;
        if (auto ok = insert.prepare(db, path, db_error, sql, "cannot roll up samples into minutes"); !ok) {
          return ok;
        }
        insert.bind(1, from);
        insert.bind(2, until);
        if (auto ok = insert.run(); !ok) {
          return ok;
        }
      }
      // Also when the clock went back: minutes rolled up already are kept (DO NOTHING above).
      Statement set;
      if (auto ok =
              set.prepare(db, path, db_error, "INSERT OR REPLACE INTO meta (key, value) VALUES ('rolled_up_to_ms', ?1)",
                          "cannot record how far samples are rolled up");
          !ok) {
        return ok;
      }
      set.bind(1, until);
      return set.run();
    });
  }

  // Forgets subjects with no minutes and no raw rows since `recent_ms` (containers removed long ago), so
  // the table, the id cache and the per-subject work of maintain stay as large as what is stored.
  // At most once an hour: each subject costs an index seek and a scan of the recent raw rows.
  [[nodiscard]] Expected<void, Error> forget_empty_subjects(std::int64_t now_ms, std::int64_t recent_ms) {
    if (now_ms - last_forget_ms < 3'600'000) {
      return {};
    }
    last_forget_ms = now_ms;
    const auto sql = fmt::format(
        "DELETE FROM subjects WHERE NOT EXISTS (SELECT 1 FROM minutes WHERE subject_id = subjects.id) "
        "AND NOT EXISTS (SELECT 1 FROM raw WHERE at_ms >= {} AND subject_id = subjects.id)",
        recent_ms);
    auto ok = exec(db, path, db_error, sql.c_str(), "cannot forget subjects without samples");
    if (ok && sqlite3_changes(db) > 0) {
      subject_ids.clear();
    }
    return ok;
  }

  // Drops the rows of the table older than `before` (ms), every subject.
  [[nodiscard]] Expected<void, Error> drop_before(Table table, std::int64_t before) {
    return in_transaction([&]() -> Expected<void, Error> {
      Statement drop;
      if (table == Table::raw) {
        if (auto ok = drop.prepare(db, path, db_error, "DELETE FROM raw WHERE at_ms < ?1", "cannot drop old samples");
            !ok) {
          return ok;
        }
        drop.bind(1, before);
        return drop.run();
      }
      // Minutes are clustered by subject: one range per subject.
      auto ids = subject_ids_in_db();
      if (!ids) {
        return unexpected(ids.error());
      }
      if (auto ok = drop.prepare(db, path, db_error, "DELETE FROM minutes WHERE subject_id = ?1 AND minute_ms < ?2",
                                 "cannot drop old minute aggregates");
          !ok) {
        return ok;
      }
      for (const auto id : *ids) {
        drop.bind(1, id);
        drop.bind(2, before);
        if (auto ok = drop.run(); !ok) {
          return ok;
        }
      }
      return {};
    });
  }

  // The oldest and newest time in the table, or nullopt when it is empty.
  [[nodiscard]] Result<std::optional<TimeRange>> range(Table table) {
    const char* sql = table == Table::raw
                          ? "SELECT (SELECT min(at_ms) FROM raw), (SELECT max(at_ms) FROM raw)"
                          : "SELECT min(f), max(l) FROM (SELECT "
                            "(SELECT min(minute_ms) FROM minutes WHERE subject_id = s.id) AS f, "
                            "(SELECT max(minute_ms) FROM minutes WHERE subject_id = s.id) AS l FROM subjects s)";
    Statement stmt;
    if (auto ok = stmt.prepare(db, path, db_error, sql, "cannot read the time span of the samples"); !ok) {
      return unexpected(ok.error());
    }
    auto row = stmt.step();
    if (!row) {
      return unexpected(row.error());
    }
    if (!*row || stmt.is_null(0) || stmt.is_null(1)) {
      return std::optional<TimeRange>{};
    }
    return std::optional<TimeRange>(TimeRange{stmt.int64(0), stmt.int64(1)});
  }

  [[nodiscard]] Expected<void, Error> give_back_space() {
    return exec(db, path, db_error, "PRAGMA incremental_vacuum", "cannot give freed space back");
  }

  // Drops the oldest rows until the database is under 90 % of max_bytes.
  [[nodiscard]] Expected<void, Error> bound_size() {
    auto size_now = size();
    if (!size_now) {
      return unexpected(size_now.error());
    }
    if (*size_now <= options.max_bytes) {
      return {};
    }
    const auto target = options.max_bytes - options.max_bytes / 10;
    for (int round = 0; round < 64 && *size_now > target; ++round) {
      auto raw_range = range(Table::raw);
      if (!raw_range) {
        return unexpected(raw_range.error());
      }
      auto minute_range = range(Table::minutes);
      if (!minute_range) {
        return unexpected(minute_range.error());
      }
      // Drop a share of the chosen table's time span a bit above the share of bytes over the target.
      const double share =
          std::clamp(1.25 * static_cast<double>(*size_now - target) / static_cast<double>(*size_now), 0.02, 1.0);
      auto cut = [share](const TimeRange& r) {
        const double span = static_cast<double>(r.last) - static_cast<double>(r.first) + 1.0;
        const double step = std::max(1.0, std::ceil(span * share));
        return step >= span ? saturating_sub(r.last, -1) : r.first + static_cast<std::int64_t>(step);
      };
      // Aggregates always cover the raw samples older than the roll-up mark (subjects() counts on it):
      // raw samples older than the last hour go first, then minutes older than any raw sample, then both.
      const auto& raw = *raw_range;
      const auto& minutes = *minute_range;
      Expected<void, Error> dropped;
      if (raw && raw->first < saturating_sub(raw->last, k_raw_kept_last_ms)) {
        dropped = drop_before(Table::raw, std::min(cut(*raw), saturating_sub(raw->last, k_raw_kept_last_ms)));
      } else if (raw && minutes && minutes->first < floor_minute(raw->first)) {
        dropped = drop_before(Table::minutes, std::min(cut(*minutes), floor_minute(raw->first)));
      } else if (raw || minutes) {
        const TimeRange both{std::min(raw ? raw->first : minutes->first, minutes ? minutes->first : raw->first),
                             std::max(raw ? raw->last : minutes->last, minutes ? minutes->last : raw->last)};
        const auto whole_minutes =
            std::max(floor_minute(cut(both)), saturating_sub(floor_minute(both.first), -k_minute_ms));
        dropped = drop_before(Table::raw, whole_minutes);
        if (dropped) {
          dropped = drop_before(Table::minutes, whole_minutes);
        }
      } else {
        break;  // nothing left to drop: the bound is below an empty database
      }
      if (!dropped) {
        return dropped;
      }
      if (auto ok = give_back_space(); !ok) {
        return ok;
      }
      size_now = size();
      if (!size_now) {
        return unexpected(size_now.error());
      }
    }
    // Copy the shrunk database into the file now, which truncates it, rather than at the next checkpoint.
    static_cast<void>(sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr));
    return {};
  }

  sqlite3* db = nullptr;
  fs::path path;
  SampleStoreOptions options;
  std::int64_t last_forget_ms = 0;
  std::mutex mutex;
  Statement begin;
  Statement commit;
  Statement rollback;
  Statement find_subject;
  Statement add_subject;
  Statement insert_raw;
  std::unordered_map<std::string, std::int64_t> subject_ids;  // cleared when a write fails
};

namespace {

Error moved_from() {
  return Error{"sample store", "used after it was moved from (a bug in memwarden)", 0};
}

Expected<void, Error> migrate(sqlite3* db, const fs::path& path) {
  auto has_meta =
      query_int(db, path, db_error, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
                "cannot read the sample database schema");
  if (!has_meta) {
    return unexpected(has_meta.error());
  }
  std::int64_t version = 0;
  if (has_meta->value_or(0) > 0) {
    auto stored = query_int(db, path, db_error, "SELECT value FROM meta WHERE key = 'schema_version'",
                            "cannot read the sample database schema version");
    if (!stored) {
      return unexpected(stored.error());
    }
    version = stored->value_or(0);
  }
  if (version > SampleStore::k_schema_version) {
    return fail(path.string(), fmt::format("the sample history was written by a newer memwarden (schema {}; this "
                                           "one knows up to {}); upgrade memwarden",
                                           version, SampleStore::k_schema_version));
  }
  if (version == SampleStore::k_schema_version) {
    return {};
  }
  // Migrations run in one write transaction; another process may have migrated meanwhile,
  // hence IF NOT EXISTS and OR REPLACE.
  if (auto ok = exec(db, path, db_error, "BEGIN IMMEDIATE", "cannot create the sample database schema"); !ok) {
    return ok;
  }
  auto run = [&]() -> Expected<void, Error> {
    if (auto ok = exec(db, path, db_error, k_schema_v1, "cannot create the sample database schema"); !ok) {
      return ok;
    }
    const auto set = fmt::format("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', {})",
                                 SampleStore::k_schema_version);
    if (auto ok = exec(db, path, db_error, set.c_str(), "cannot record the sample database schema version"); !ok) {
      return ok;
    }
    return exec(db, path, db_error, "COMMIT", "cannot create the sample database schema");
  };
  if (auto ok = run(); !ok) {
    if (sqlite3_get_autocommit(db) == 0) {
      static_cast<void>(sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr));
    }
    return ok;
  }
  return {};
}

}  // namespace

SampleStore::SampleStore(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
SampleStore::SampleStore(SampleStore&& other) noexcept = default;
SampleStore& SampleStore::operator=(SampleStore&& other) noexcept = default;
SampleStore::~SampleStore() = default;

Result<SampleStore> SampleStore::open(const fs::path& state_dir, SampleStoreOptions options) {
  auto path = StateDir(state_dir).samples();
  if (options.raw_retention.count() <= 0 || options.aggregate_retention.count() <= 0) {
    return fail(path.string(), "the sample history needs retention times above zero");
  }
  if (auto ok = prepare_state_dir(state_dir, "history"); !ok) {
    return unexpected(ok.error());
  }
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  auto impl = std::make_unique<Impl>(raw, path, options);  // closes the handle on every early return
  if (rc != SQLITE_OK) {
    return unexpected(db_error(path, raw, rc, "cannot open the sample database"));
  }
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, k_busy_timeout_ms);

  // auto_vacuum takes effect only before the first table is created; on an existing file it changes nothing.
  using Pragma = std::pair<const char*, const char*>;
  for (auto [sql, doing] : {
           Pragma{"PRAGMA auto_vacuum=INCREMENTAL", "cannot set up the sample database"},
           Pragma{"PRAGMA journal_mode=WAL", "cannot switch the sample database to WAL mode"},
           Pragma{"PRAGMA synchronous=NORMAL", "cannot set up the sample database"},
           // 256 KiB of page cache, not SQLite's 2 MiB: appends touch the newest pages only, and the daemon
           // keeps its resident memory small.
           Pragma{"PRAGMA cache_size=-256", "cannot set up the sample database"},
       }) {
    if (auto ok = exec(raw, path, db_error, sql, doing); !ok) {
      return unexpected(ok.error());
    }
  }
  const auto limit_wal = fmt::format("PRAGMA journal_size_limit={}", k_wal_size_limit);
  if (auto ok = exec(raw, path, db_error, limit_wal.c_str(), "cannot set up the sample database"); !ok) {
    return unexpected(ok.error());
  }
  if (auto ok = migrate(raw, path); !ok) {
    return unexpected(ok.error());
  }
  if (auto ok = exec(raw, path, db_error, k_estimate_checks, "cannot create the table of model loads"); !ok) {
    return unexpected(ok.error());
  }
  if (auto ok = exec(raw, path, db_error, k_bench_runs, "cannot create the table of benchmark runs"); !ok) {
    return unexpected(ok.error());
  }
  if (auto ok = impl->prepare_kept(); !ok) {
    return unexpected(ok.error());
  }
  return SampleStore(std::move(impl));
}

const fs::path& SampleStore::path() const {
  static const fs::path none;
  return m_impl ? m_impl->path : none;
}

Expected<void, Error> SampleStore::append(const std::vector<StoredSample>& batch) {
  if (!m_impl) {
    return unexpected(moved_from());
  }
  if (batch.empty()) {
    return {};
  }
  auto& s = *m_impl;
  for (const auto& sample : batch) {
    if (sample.subject.empty()) {
      return fail(s.path.string(), fmt::format("cannot store a sample without a subject (at {} ms)", sample.at_ms));
    }
  }
  const std::lock_guard lock(s.mutex);
  return s.in_transaction([&]() -> Expected<void, Error> {
    for (const auto& sample : batch) {
      auto id = s.subject_id(sample.subject);
      if (!id) {
        return unexpected(id.error());
      }
      auto& insert = s.insert_raw;
      insert.bind(1, *id);
      insert.bind(2, sample.at_ms);
      insert.bind(3, to_column(sample.usage));
      insert.bind(4, to_column(sample.working_set));
      insert.bind(5, to_column(sample.anon));
      insert.bind(6, to_column(sample.file));
      insert.bind(7, to_column(sample.swap));
      insert.bind(8, to_column(sample.limit));
      insert.bind(9, to_column(sample.mem_available));
      insert.bind(10, sample.psi_some_avg10);
      insert.bind(11, sample.psi_full_avg10);
      insert.bind(12, to_column(sample.models_bytes));
      insert.bind(13, to_column(sample.models_vram_bytes));
      insert.bind(14, to_column(sample.models_loaded));
      if (auto ok = insert.run(); !ok) {
        return ok;
      }
    }
    return {};
  });
}

Expected<void, Error> SampleStore::maintain(std::int64_t now_ms) {
  if (!m_impl) {
    return unexpected(moved_from());
  }
  auto& s = *m_impl;
  const std::lock_guard lock(s.mutex);
  std::optional<Error> first;
  auto note = [&first](Expected<void, Error> result) {
    if (!result && !first) {
      first = result.error();
    }
  };
  note(s.roll_up(now_ms));
  note(s.drop_before(Table::raw, saturating_sub(now_ms, s.options.raw_retention.count())));
  note(s.drop_before(Table::minutes, saturating_sub(now_ms, s.options.aggregate_retention.count())));
  note(s.give_back_space());
  note(s.bound_size());
  // Raw rows older than the roll-up horizon are in minutes already, or were dropped.
  note(s.forget_empty_subjects(now_ms, saturating_sub(now_ms, 2 * k_minute_ms + k_rollup_delay_ms)));
  if (first) {
    return unexpected(std::move(*first));
  }
  return {};
}

Result<std::vector<StoredSample>> SampleStore::raw(const std::string& subject, std::int64_t since_ms,
                                                   std::int64_t until_ms) {
  if (!m_impl) {
    return unexpected(moved_from());
  }
  auto& s = *m_impl;
  const std::lock_guard lock(s.mutex);
  const auto sql = fmt::format(
      "SELECT {} FROM raw r WHERE r.at_ms >= ?2 AND r.at_ms < ?3 "
      "AND r.subject_id = (SELECT id FROM subjects WHERE name = ?1) ORDER BY r.at_ms",
      k_raw_columns);
  Statement query;
  if (auto ok = query.prepare(s.db, s.path, db_error, sql, "cannot read samples"); !ok) {
    return unexpected(ok.error());
  }
  query.bind(1, subject);
  query.bind(2, since_ms);
  query.bind(3, until_ms);
  std::vector<StoredSample> out;
  for (;;) {
    auto row = query.step();
    if (!row) {
      return unexpected(row.error());
    }
    if (!*row) {
      return out;
    }
    StoredSample sample;
    sample.at_ms = query.int64(0);
    sample.subject = subject;
    sample.usage = query.bytes(1);
    sample.working_set = query.bytes(2);
    sample.anon = query.bytes(3);
    sample.file = query.bytes(4);
    sample.swap = query.bytes(5);
    sample.limit = query.bytes(6);
    sample.mem_available = query.bytes(7);
    sample.psi_some_avg10 = query.real(8);
    sample.psi_full_avg10 = query.real(9);
    sample.models_bytes = query.bytes(10);
    sample.models_vram_bytes = query.bytes(11);
    sample.models_loaded = query.count(12);
    out.push_back(std::move(sample));
  }
}

Result<std::vector<AggregateSample>> SampleStore::aggregates(const std::string& subject, std::int64_t since_ms,
                                                             std::int64_t until_ms) {
  if (!m_impl) {
    return unexpected(moved_from());
  }
  auto& s = *m_impl;
  const std::lock_guard lock(s.mutex);
  Statement query;
  if (auto ok = query.prepare(s.db, s.path, db_error,
                              "SELECT m.minute_ms, m.count, m.anon_min, m.anon_avg, m.anon_max, m.working_set_avg, "
                              "m.working_set_max, m.mem_available_min, m.psi_full_avg10_max "
                              "FROM minutes m JOIN subjects s ON s.id = m.subject_id "
                              "WHERE s.name = ?1 AND m.minute_ms > ?2 AND m.minute_ms < ?3 ORDER BY m.minute_ms",
                              "cannot read minute aggregates");
      !ok) {
    return unexpected(ok.error());
  }
  query.bind(1, subject);
  query.bind(2, saturating_sub(since_ms, k_minute_ms));
  query.bind(3, until_ms);
  std::vector<AggregateSample> out;
  for (;;) {
    auto row = query.step();
    if (!row) {
      return unexpected(row.error());
    }
    if (!*row) {
      return out;
    }
    AggregateSample a;
    a.minute_ms = query.int64(0);
    a.subject = subject;
    a.count = query.count(1).value_or(0);
    a.anon_min = query.bytes(2);
    a.anon_avg = query.bytes(3);
    a.anon_max = query.bytes(4);
    a.working_set_avg = query.bytes(5);
    a.working_set_max = query.bytes(6);
    a.mem_available_min = query.bytes(7);
    a.psi_full_avg10_max = query.real(8);
    out.push_back(std::move(a));
  }
}

Expected<void, Error> SampleStore::append_estimate(const EstimateRecord& r) {
  if (!m_impl) {
    return unexpected(moved_from());
  }
  auto& s = *m_impl;
  const std::lock_guard lock(s.mutex);
  return s.in_transaction([&]() -> Expected<void, Error> {
    Statement insert;
    if (auto ok = insert.prepare(s.db, s.path, db_error,
                                 "INSERT INTO estimate_checks (at_ms, model, server, quantization, num_ctx, "
                                 "planned_ram, planned_vram, measured_ram, server_size, server_vram, load_seconds, "
                                 "kept_after_unload) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                                 "cannot store a model load");
        !ok) {
      return ok;
    }
    insert.bind(1, r.at_ms);
    insert.bind(2, r.model);
    insert.bind(3, r.server);
    insert.bind(4, r.quantization);
    insert.bind(5, to_column(r.num_ctx));
    insert.bind(6, to_column(std::optional<std::uint64_t>(r.planned_ram)));
    insert.bind(7, to_column(std::optional<std::uint64_t>(r.planned_vram)));
    insert.bind(8, to_column(r.measured_ram));
    insert.bind(9, to_column(r.server_size));
    insert.bind(10, to_column(r.server_vram));
    insert.bind(11, r.load_seconds);
    insert.bind(12, to_column(r.kept_after_unload));
    if (auto ok = insert.run(); !ok) {
      return ok;
    }
    Statement trim;
    const auto sql = fmt::format(
        "DELETE FROM estimate_checks WHERE id <= (SELECT id FROM estimate_checks ORDER BY id DESC LIMIT 1 OFFSET {})",
        k_max_estimates);
    if (auto ok = trim.prepare(s.db, s.path, db_error, sql, "cannot trim the stored model loads"); !ok) {
      return ok;
    }
    return trim.run();
  });
}

Result<std::vector<EstimateRecord>> SampleStore::estimates(std::size_t limit) {
  if (!m_impl) {
    return unexpected(moved_from());
  }
  auto& s = *m_impl;
  const std::lock_guard lock(s.mutex);
  Statement query;
  if (auto ok = query.prepare(s.db, s.path, db_error,
                              "SELECT at_ms, model, server, quantization, num_ctx, planned_ram, planned_vram, "
                              "measured_ram, server_size, server_vram, load_seconds, kept_after_unload "
                              "FROM estimate_checks ORDER BY id DESC LIMIT ?1",
                              "cannot read the stored model loads");
      !ok) {
    return unexpected(ok.error());
  }
  query.bind(1, static_cast<std::int64_t>(std::min<std::size_t>(limit, k_max_estimates)));
  std::vector<EstimateRecord> out;
  for (;;) {
    auto row = query.step();
    if (!row) {
      return unexpected(row.error());
    }
    if (!*row) {
      return out;
    }
    EstimateRecord r;
    r.at_ms = query.int64(0);
    r.model = query.text(1);
    r.server = query.text(2);
    r.quantization = query.text(3);
    r.num_ctx = query.bytes(4);
    r.planned_ram = query.bytes(5).value_or(0);
    r.planned_vram = query.bytes(6).value_or(0);
    r.measured_ram = query.bytes(7);
    r.server_size = query.bytes(8);
    r.server_vram = query.bytes(9);
    r.load_seconds = query.real(10);
    r.kept_after_unload = query.bytes(11);
    out.push_back(std::move(r));
  }
}

namespace {

std::string join_models(const std::vector<std::string>& models) {
  std::string out;
  for (const auto& m : models) {
    out += out.empty() ? "" : ",";
    out += m;
  }
  return out;
}

std::vector<std::string> split_models(std::string_view text) {
  std::vector<std::string> out;
  while (!text.empty()) {
    const auto comma = text.find(',');
    out.emplace_back(text.substr(0, comma));
    if (comma == std::string_view::npos) {
      break;
    }
    text.remove_prefix(comma + 1);
  }
  return out;
}

}  // namespace

Result<std::int64_t> SampleStore::append_bench_run(const BenchRunRecord& r) {
  if (!m_impl) {
    return unexpected(moved_from());
  }
  auto& s = *m_impl;
  if (r.json.empty()) {
    return fail(s.path.string(), "cannot store a benchmark run without its JSON");
  }
  if (r.json.size() > k_max_bench_run_json) {
    return fail(s.path.string(), fmt::format("cannot store a benchmark run of {} bytes of JSON: {} MiB at most",
                                             r.json.size(), k_max_bench_run_json >> 20));
  }
  for (const auto& m : r.models) {
    if (m.find(',') != std::string::npos || m.empty()) {
      return fail(s.path.string(), fmt::format("cannot store a benchmark run of a model named '{}'", m));
    }
  }
  const auto models = join_models(r.models);
  const std::lock_guard lock(s.mutex);
  std::int64_t id = 0;
  auto stored = s.in_transaction([&]() -> Expected<void, Error> {
    Statement insert;
    if (auto ok = insert.prepare(s.db, s.path, db_error,
                                 "INSERT INTO bench_runs (started_at_ms, server, models, interrupted, json) "
                                 "VALUES (?1, ?2, ?3, ?4, ?5)",
                                 "cannot store a benchmark run");
        !ok) {
      return ok;
    }
    insert.bind(1, r.started_at_ms);
    insert.bind(2, r.server);
    insert.bind(3, models);
    insert.bind(4, std::int64_t{r.interrupted ? 1 : 0});
    insert.bind(5, std::string_view(r.json));
    if (auto ok = insert.run(); !ok) {
      return ok;
    }
    id = sqlite3_last_insert_rowid(s.db);
    // The newest k_max_bench_runs_kept, and of them as many as hold k_max_bench_json_total bytes (the newest always).
    Statement sizes;
    if (auto ok = sizes.prepare(s.db, s.path, db_error,
                                "SELECT id, length(CAST(json AS BLOB)) FROM bench_runs ORDER BY id DESC",
                                "cannot trim the stored benchmark runs");
        !ok) {
      return ok;
    }
    std::optional<std::int64_t> drop_from;  // this id and older ones go
    std::uint64_t total = 0;
    std::int64_t kept = 0;
    for (;;) {
      auto row = sizes.step();
      if (!row) {
        return unexpected(row.error());
      }
      if (!*row) {
        break;
      }
      total += static_cast<std::uint64_t>(std::max<std::int64_t>(0, sizes.int64(1)));
      if (kept > 0 && (kept >= k_max_bench_runs_kept || total > k_max_bench_json_total)) {
        drop_from = sizes.int64(0);
        break;
      }
      ++kept;
    }
    sizes.reset();
    if (!drop_from) {
      return {};
    }
    Statement trim;
    if (auto ok = trim.prepare(s.db, s.path, db_error, "DELETE FROM bench_runs WHERE id <= ?1",
                               "cannot trim the stored benchmark runs");
        !ok) {
      return ok;
    }
    trim.bind(1, *drop_from);
    return trim.run();
  });
  if (!stored) {
    return unexpected(stored.error());
  }
  return id;
}

Result<std::vector<BenchRunRecord>> SampleStore::bench_runs(std::size_t limit, BenchRunFields fields) {
  if (!m_impl) {
    return unexpected(moved_from());
  }
  auto& s = *m_impl;
  const std::lock_guard lock(s.mutex);
  Statement query;
  const bool with_json = fields == BenchRunFields::with_json;
  if (auto ok = query.prepare(s.db, s.path, db_error,
                              with_json ? "SELECT id, started_at_ms, server, models, interrupted, json FROM bench_runs "
                                          "ORDER BY id DESC LIMIT ?1"
                                        : "SELECT id, started_at_ms, server, models, interrupted FROM bench_runs "
                                          "ORDER BY id DESC LIMIT ?1",
                              "cannot read the stored benchmark runs");
      !ok) {
    return unexpected(ok.error());
  }
  query.bind(1, static_cast<std::int64_t>(std::min<std::size_t>(limit, k_max_bench_runs_kept)));
  std::vector<BenchRunRecord> out;
  for (;;) {
    auto row = query.step();
    if (!row) {
      return unexpected(row.error());
    }
    if (!*row) {
      return out;
    }
    BenchRunRecord r;
    r.id = query.int64(0);
    r.started_at_ms = query.int64(1);
    r.server = query.text(2);
    r.models = split_models(query.text(3));
    r.interrupted = query.int64(4) != 0;
    if (with_json) {
      r.json = query.text(5);
    }
    out.push_back(std::move(r));
  }
}

Result<std::optional<BenchRunRecord>> SampleStore::bench_run(std::int64_t id) {
  if (!m_impl) {
    return unexpected(moved_from());
  }
  auto& s = *m_impl;
  const std::lock_guard lock(s.mutex);
  Statement query;
  if (auto ok = query.prepare(s.db, s.path, db_error,
                              "SELECT id, started_at_ms, server, models, interrupted, json FROM bench_runs "
                              "WHERE id = ?1",
                              "cannot read a stored benchmark run");
      !ok) {
    return unexpected(ok.error());
  }
  query.bind(1, id);
  auto row = query.step();
  if (!row) {
    return unexpected(row.error());
  }
  if (!*row) {
    return std::optional<BenchRunRecord>{};
  }
  BenchRunRecord r;
  r.id = query.int64(0);
  r.started_at_ms = query.int64(1);
  r.server = query.text(2);
  r.models = split_models(query.text(3));
  r.interrupted = query.int64(4) != 0;
  r.json = query.text(5);
  return std::optional<BenchRunRecord>(std::move(r));
}

Result<std::vector<std::string>> SampleStore::subjects() {
  if (!m_impl) {
    return unexpected(moved_from());
  }
  auto& s = *m_impl;
  const std::lock_guard lock(s.mutex);
  Statement query;
  if (auto ok =
          query.prepare(s.db, s.path, db_error,
                        // Minutes cover the raw samples before the roll-up mark; after it, few are left to scan.
                        "SELECT name FROM subjects s WHERE EXISTS (SELECT 1 FROM minutes WHERE subject_id = s.id) "
                        "OR s.id IN (SELECT subject_id FROM raw WHERE at_ms >= (SELECT coalesce(max(value), "
                        "-9223372036854775807 - 1) FROM meta WHERE key = 'rolled_up_to_ms')) ORDER BY name",
                        "cannot list the subjects of the sample history");
      !ok) {
    return unexpected(ok.error());
  }
  std::vector<std::string> out;
  for (;;) {
    auto row = query.step();
    if (!row) {
      return unexpected(row.error());
    }
    if (!*row) {
      return out;
    }
    out.push_back(query.text(0));
  }
}

Result<std::uint64_t> SampleStore::size_bytes() {
  if (!m_impl) {
    return unexpected(moved_from());
  }
  const std::lock_guard lock(m_impl->mutex);
  return m_impl->size();
}

Result<std::uint64_t> SampleStore::set_page_limit_for_testing(std::uint64_t pages) {
  if (!m_impl) {
    return unexpected(moved_from());
  }
  auto& s = *m_impl;
  const std::lock_guard lock(s.mutex);
  const auto sql = fmt::format("PRAGMA max_page_count={}", pages);
  auto cap = query_int(s.db, s.path, db_error, sql, "cannot cap the sample database");
  if (!cap) {
    return unexpected(cap.error());
  }
  return static_cast<std::uint64_t>(cap->value_or(0));
}

}  // namespace mw::adapters
