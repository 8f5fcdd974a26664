// The action journal of `memwarden fix`: every action is written durably
// before it starts and again when it ends, in an embedded SQLite database
// (<state dir>/memwarden.db). A crash mid-action leaves a record that is still
// in_progress (incomplete), never a lost one; the next writer marks it
// interrupted once its writer process is gone.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/state_dir.hpp"
#include "core/error.hpp"
#include "core/remediation.hpp"

struct sqlite3;

namespace mw::adapters {

struct JournalStep {
  std::string name;              // "drain", "unload", "restart", "health_wait", "verify"
  std::string detail;            // what was done, in plain words
  std::int64_t started_ms = 0;   // wall clock, unix ms
  std::int64_t duration_ms = 0;  // how long the step took
  bool ok = false;
};

struct JournalRecord {
  std::int64_t id = 0;             // assigned by Journal::begin
  std::int64_t started_at_ms = 0;  // wall clock, unix ms
  std::optional<std::int64_t> ended_at_ms;
  std::string server;
  std::string container_id;
  std::string kind;           // "restart", "unload", ...
  std::string reason;         // detector + summary
  std::string evidence_json;  // stored verbatim
  std::vector<JournalStep> steps;
  ActionOutcome outcome = ActionOutcome::in_progress;
  std::string message;
  std::optional<std::uint64_t> before_bytes;
  std::optional<std::uint64_t> after_bytes;
  std::int64_t pid_of_writer = 0;  // filled in by Journal::begin

  // Started and never finished: the writer is still at it, or crashed and no writer has noticed yet.
  [[nodiscard]] bool incomplete() const { return outcome == ActionOutcome::in_progress && !ended_at_ms; }
};

// The journal database. Every SQLite failure becomes an Error whose source is
// the database path: locked (after waiting 2 s), corrupt, disk full, or the
// SQLite message itself. Movable, not copyable; closes the database on destruction.
class Journal {
 public:
  static constexpr int k_schema_version = 1;
  static constexpr int k_busy_timeout_ms = 2000;

  // Creates state_dir (0700) and the database if absent; WAL mode, synchronous=FULL,
  // quick integrity check, schema migration. Does not mark stale records (see mark_interrupted_stale).
  [[nodiscard]] static Result<Journal> open(const std::filesystem::path& state_dir);

  Journal(Journal&& other) noexcept;
  Journal& operator=(Journal&& other) noexcept;
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;
  ~Journal();

  [[nodiscard]] const std::filesystem::path& path() const { return m_path; }

  // Writes the record as in_progress (its outcome, ended_at_ms, after_bytes and
  // pid_of_writer are ignored: the writer is this process) and returns its id once
  // the write is on disk.
  [[nodiscard]] Result<std::int64_t> begin(const JournalRecord& record);
  // Appends a step to the record's steps.
  [[nodiscard]] Expected<void, Error> add_step(std::int64_t id, const JournalStep& step);
  // Ends an unfinished record with a final outcome (not in_progress).
  [[nodiscard]] Expected<void, Error> finish(std::int64_t id, ActionOutcome outcome, std::string message,
                                             std::optional<std::uint64_t> after_bytes, std::int64_t ended_at_ms);
  // Newest first; limit 0 means all. Records with unreadable fields are still listed.
  [[nodiscard]] Result<std::vector<JournalRecord>> list(std::size_t limit, std::optional<std::string> server = {});
  // The server's records started at or after since_ms, newest first, whatever their outcome
  // (in_progress included), for budgets and cooldowns.
  [[nodiscard]] Result<std::vector<JournalRecord>> actions_since(const std::string& server, std::int64_t since_ms);
  // Marks records still in_progress whose writer is gone as interrupted. For writers,
  // right after open; readers (history) leave the journal as it is.
  [[nodiscard]] Expected<void, Error> mark_interrupted_stale();

 private:
  Journal(sqlite3* db, std::filesystem::path path) : m_db(db), m_path(std::move(path)) {}
  void close() noexcept;

  sqlite3* m_db = nullptr;
  std::filesystem::path m_path;
};

}  // namespace mw::adapters
