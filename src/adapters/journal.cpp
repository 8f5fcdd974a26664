#include "adapters/journal.hpp"

#include <fmt/format.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "adapters/json_fields.hpp"
#include "sqlite_common.hpp"

namespace mw::adapters {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Version 1. Steps are a JSON array column, appended to with SQLite's json_insert.
// writer_start identifies the writer process beyond its pid (boot id and start time),
// so a reused pid — memwarden as PID 1 in a container, run after run — is not taken for the writer.
constexpr const char* k_schema_v1 = R"sql(
CREATE TABLE IF NOT EXISTS actions (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  started_at_ms INTEGER NOT NULL,
  ended_at_ms   INTEGER,
  server        TEXT NOT NULL,
  container_id  TEXT NOT NULL,
  kind          TEXT NOT NULL,
  reason        TEXT NOT NULL,
  evidence_json TEXT NOT NULL,
  steps_json    TEXT NOT NULL DEFAULT '[]',
  outcome       TEXT NOT NULL,
  message       TEXT NOT NULL DEFAULT '',
  before_bytes  INTEGER,
  after_bytes   INTEGER,
  pid_of_writer INTEGER NOT NULL,
  writer_start  TEXT
);
CREATE INDEX IF NOT EXISTS actions_by_server ON actions (server, started_at_ms);
CREATE INDEX IF NOT EXISTS actions_by_start ON actions (started_at_ms);
)sql";

constexpr const char* k_columns =
    "id, started_at_ms, ended_at_ms, server, container_id, kind, reason, evidence_json, steps_json, outcome, "
    "message, before_bytes, after_bytes, pid_of_writer";

Error db_error(const fs::path& path, sqlite3* db, int rc, std::string_view doing) {
  return sqlite_error(path, db, rc, doing, "journal", Journal::k_busy_timeout_ms);
}

// Bytes are unsigned; SQLite integers are signed 64-bit. Stored bit for bit, so every value round-trips.
std::optional<std::int64_t> to_column(std::optional<std::uint64_t> bytes) {
  return bytes ? std::optional<std::int64_t>(static_cast<std::int64_t>(*bytes)) : std::nullopt;
}
std::optional<std::uint64_t> from_column(std::optional<std::int64_t> value) {
  return value ? std::optional<std::uint64_t>(static_cast<std::uint64_t>(*value)) : std::nullopt;
}

json step_to_json(const JournalStep& step) {
  return json{{"name", step.name},
              {"detail", step.detail},
              {"started_ms", step.started_ms},
              {"duration_ms", step.duration_ms},
              {"ok", step.ok}};
}

// Text from other programs (container names, error output) may not be valid UTF-8: replace, never throw.
std::string dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

JournalStep unreadable_step(std::string detail) {
  return JournalStep{"unreadable", std::move(detail), 0, 0, false};
}

// Steps as stored; what cannot be read is kept visible as an "unreadable" step rather than dropped silently.
std::vector<JournalStep> parse_steps(const std::string& text, const std::string& source, std::int64_t id) {
  const auto doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_array()) {
    return {unreadable_step(fmt::format("the steps of action #{} are not a JSON array", id))};
  }
  std::vector<JournalStep> steps;
  std::size_t index = 0;
  for (const auto& item : doc) {
    JsonFields f(item, source, fmt::format("steps[{}].", index++));
    if (!item.is_object()) {
      steps.push_back(unreadable_step(fmt::format("step {} of action #{} is not an object", index - 1, id)));
      continue;
    }
    JournalStep step;
    step.name = f.string("name");
    step.detail = f.string("detail");
    step.started_ms = f.integer("started_ms").value_or(0);
    step.duration_ms = f.integer("duration_ms").value_or(0);
    step.ok = f.boolean("ok");
    if (f.error()) {
      steps.push_back(unreadable_step(f.error()->message));
      continue;
    }
    steps.push_back(std::move(step));
  }
  return steps;
}

JournalRecord read_record(const Statement& row, const std::string& source) {
  JournalRecord r;
  r.id = row.int64(0);
  r.started_at_ms = row.int64(1);
  r.ended_at_ms = row.optional_int64(2);
  r.server = row.text(3);
  r.container_id = row.text(4);
  r.kind = row.text(5);
  r.reason = row.text(6);
  r.evidence_json = row.text(7);
  r.steps = parse_steps(row.text(8), source, r.id);
  const auto outcome_text = row.text(9);
  r.message = row.text(10);
  if (const auto outcome = parse_action_outcome(outcome_text)) {
    r.outcome = *outcome;
  } else {
    r.outcome = ActionOutcome::failed;
    r.message = fmt::format("unknown outcome '{}' in the journal; {}", outcome_text, r.message);
  }
  r.before_bytes = from_column(row.optional_int64(11));
  r.after_bytes = from_column(row.optional_int64(12));
  r.pid_of_writer = row.int64(13);
  return r;
}

Result<std::vector<JournalRecord>> read_records(Statement& stmt, const std::string& source) {
  std::vector<JournalRecord> out;
  for (;;) {
    auto more = stmt.step();
    if (!more) {
      return unexpected(more.error());
    }
    if (!*more) {
      return out;
    }
    out.push_back(read_record(stmt, source));
  }
}

std::optional<std::string> read_first_line(const fs::path& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) {
    return std::nullopt;
  }
  return line;
}

// "<boot id>/<start time in clock ticks since boot>": the same pid later, or after a reboot, gives another token.
std::optional<std::string> process_start_token(pid_t pid) {
  static const auto boot_id = read_first_line("/proc/sys/kernel/random/boot_id");
  const auto stat = read_first_line(fmt::format("/proc/{}/stat", pid));
  if (!boot_id || !stat) {
    return std::nullopt;
  }
  const auto paren = stat->rfind(')');
  if (paren == std::string::npos) {
    return std::nullopt;
  }
  // After "pid (comm)" come the fields from 3 (state) on; starttime is field 22.
  std::istringstream fields(stat->substr(paren + 1));
  std::string field;
  for (int n = 3; n <= 22; ++n) {
    if (!(fields >> field)) {
      return std::nullopt;
    }
  }
  return *boot_id + "/" + field;
}

enum class WriterState { alive, gone };

WriterState writer_state(std::int64_t pid, const std::optional<std::string>& token) {
  if (pid <= 0 || pid > INT_MAX) {
    return WriterState::gone;  // no process could have written it
  }
  const auto p = static_cast<pid_t>(pid);
  if (p == ::getpid()) {
    const auto ours = process_start_token(p);
    return token && ours && *token != *ours ? WriterState::gone : WriterState::alive;
  }
  if (::kill(p, 0) != 0 && errno == ESRCH) {
    return WriterState::gone;
  }
  if (token) {
    const auto now = process_start_token(p);
    if (now && *now != *token) {
      return WriterState::gone;  // the pid was reused by another process
    }
  }
  return WriterState::alive;
}

}  // namespace

Result<Journal> Journal::open(const fs::path& state_dir) {
  if (auto ok = prepare_state_dir(state_dir, "journal"); !ok) {
    return unexpected(ok.error());
  }
  auto path = StateDir(state_dir).journal();
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  Journal journal(raw, path);  // closes the handle on every early return
  if (rc != SQLITE_OK) {
    return unexpected(db_error(path, raw, rc, "cannot open the journal database"));
  }
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, k_busy_timeout_ms);

  // Check before writing anything: a corrupt file is left exactly as it was found.
  {
    Statement check;
    if (auto ok = check.prepare(raw, path, db_error, "PRAGMA quick_check(3)", "cannot check the journal database");
        !ok) {
      return unexpected(ok.error());
    }
    std::string problems;
    for (;;) {
      auto more = check.step();
      if (!more) {
        return unexpected(more.error());
      }
      if (!*more) {
        break;
      }
      const auto line = check.text(0);
      if (line != "ok") {
        problems += problems.empty() ? line : "; " + line;
      }
    }
    if (!problems.empty()) {
      return fail(path.string(),
                  fmt::format("the journal database is corrupt ({}); move it aside to start a new one", problems));
    }
  }

  if (auto ok = exec(raw, path, db_error, "PRAGMA journal_mode=WAL", "cannot switch the journal to WAL mode"); !ok) {
    return unexpected(ok.error());
  }
  if (auto ok = exec(raw, path, db_error, "PRAGMA cache_size=-128", "cannot set up the journal"); !ok) {
    return unexpected(ok.error());  // a few records a day: SQLite's default 2 MiB page cache would be waste
  }
  if (auto ok = exec(raw, path, db_error, "PRAGMA synchronous=FULL", "cannot make journal writes durable"); !ok) {
    return unexpected(ok.error());
  }

  auto read_version = [&]() -> Result<std::int64_t> {
    Statement version;
    if (auto ok = version.prepare(raw, path, db_error, "PRAGMA user_version", "cannot read the journal schema version");
        !ok) {
      return unexpected(ok.error());
    }
    auto row = version.step();
    if (!row) {
      return unexpected(row.error());
    }
    return *row ? version.int64(0) : 0;
  };
  auto version = read_version();
  if (!version) {
    return unexpected(version.error());
  }
  if (*version > k_schema_version) {
    return fail(path.string(), fmt::format("the journal was written by a newer memwarden (schema {}; this one "
                                           "knows up to {}); upgrade memwarden",
                                           *version, k_schema_version));
  }
  if (*version < k_schema_version) {
    // Migrations run in one write transaction; another process may have migrated meanwhile.
    if (auto ok = exec(raw, path, db_error, "BEGIN IMMEDIATE", "cannot create the journal schema"); !ok) {
      return unexpected(ok.error());
    }
    auto migrate = [&]() -> Expected<void, Error> {
      auto current = read_version();
      if (!current) {
        return unexpected(current.error());
      }
      if (*current < 1) {
        if (auto ok = exec(raw, path, db_error, k_schema_v1, "cannot create the journal schema"); !ok) {
          return ok;
        }
      }
      if (*current < k_schema_version) {
        const auto set = fmt::format("PRAGMA user_version={}", k_schema_version);
        if (auto ok = exec(raw, path, db_error, set.c_str(), "cannot record the journal schema version"); !ok) {
          return ok;
        }
      }
      return exec(raw, path, db_error, "COMMIT", "cannot create the journal schema");
    };
    if (auto ok = migrate(); !ok) {
      static_cast<void>(sqlite3_exec(raw, "ROLLBACK", nullptr, nullptr, nullptr));
      return unexpected(ok.error());
    }
  }
  return journal;
}

Journal::Journal(Journal&& other) noexcept : m_db(other.m_db), m_path(std::move(other.m_path)) {
  other.m_db = nullptr;
}

Journal& Journal::operator=(Journal&& other) noexcept {
  if (this != &other) {
    close();
    m_db = other.m_db;
    m_path = std::move(other.m_path);
    other.m_db = nullptr;
  }
  return *this;
}

Journal::~Journal() {
  close();
}

void Journal::close() noexcept {
  if (m_db != nullptr) {
    sqlite3_close_v2(m_db);
    m_db = nullptr;
  }
}

Result<std::int64_t> Journal::begin(const JournalRecord& record) {
  json steps = json::array();
  for (const auto& step : record.steps) {
    steps.push_back(step_to_json(step));
  }
  const auto steps_text = dump(steps);
  const auto pid = ::getpid();
  const auto token = process_start_token(pid);

  Statement insert;
  if (auto ok = insert.prepare(
          m_db, m_path, db_error,
          "INSERT INTO actions (started_at_ms, server, container_id, kind, reason, evidence_json, steps_json, "
          "outcome, message, before_bytes, pid_of_writer, writer_start) "
          "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
          "cannot record the action");
      !ok) {
    return unexpected(ok.error());
  }
  insert.bind(1, record.started_at_ms);
  insert.bind(2, record.server);
  insert.bind(3, record.container_id);
  insert.bind(4, record.kind);
  insert.bind(5, record.reason);
  insert.bind(6, record.evidence_json);
  insert.bind(7, steps_text);
  insert.bind(8, to_string(ActionOutcome::in_progress));
  insert.bind(9, record.message);
  insert.bind(10, to_column(record.before_bytes));
  insert.bind(11, std::int64_t{pid});
  if (token) {
    insert.bind(12, *token);
  }
  // Autocommit with WAL and synchronous=FULL: the row is on disk when this returns.
  if (auto ok = insert.run(); !ok) {
    return unexpected(ok.error());
  }
  return sqlite3_last_insert_rowid(m_db);
}

Expected<void, Error> Journal::add_step(std::int64_t id, const JournalStep& step) {
  const auto step_text = dump(step_to_json(step));
  Statement update;
  // Unreadable stored steps are replaced rather than blocking the journal of a running action.
  if (auto ok = update.prepare(
          m_db, m_path, db_error,
          "UPDATE actions SET steps_json = json_insert("
          "CASE WHEN json_valid(steps_json) THEN CASE WHEN json_type(steps_json) = 'array' THEN steps_json "
          "ELSE '[]' END ELSE '[]' END, '$[#]', json(?2)) WHERE id = ?1",
          "cannot record the step");
      !ok) {
    return ok;
  }
  update.bind(1, id);
  update.bind(2, step_text);
  if (auto ok = update.run(); !ok) {
    return ok;
  }
  if (sqlite3_changes(m_db) == 0) {
    return fail(m_path.string(), fmt::format("cannot record the step: no action #{} in the journal", id));
  }
  return {};
}

Expected<void, Error> Journal::finish(std::int64_t id, ActionOutcome outcome, std::string message,
                                      std::optional<std::uint64_t> after_bytes, std::int64_t ended_at_ms) {
  if (outcome == ActionOutcome::in_progress) {
    return fail(m_path.string(), fmt::format("cannot finish action #{} as in_progress: give its final outcome", id));
  }
  Statement update;
  if (auto ok = update.prepare(m_db, m_path, db_error,
                               "UPDATE actions SET outcome = ?2, message = ?3, after_bytes = ?4, ended_at_ms = ?5 "
                               "WHERE id = ?1 AND outcome = 'in_progress' AND ended_at_ms IS NULL",
                               "cannot record the end of the action");
      !ok) {
    return ok;
  }
  update.bind(1, id);
  update.bind(2, to_string(outcome));
  update.bind(3, message);
  update.bind(4, to_column(after_bytes));
  update.bind(5, ended_at_ms);
  if (auto ok = update.run(); !ok) {
    return ok;
  }
  if (sqlite3_changes(m_db) != 0) {
    return {};
  }
  Statement query;
  if (auto ok = query.prepare(m_db, m_path, db_error, "SELECT outcome FROM actions WHERE id = ?1",
                              "cannot record the end of the action");
      !ok) {
    return ok;
  }
  query.bind(1, id);
  auto row = query.step();
  if (!row) {
    return unexpected(row.error());
  }
  if (!*row) {
    return fail(m_path.string(), fmt::format("cannot record the end of the action: no action #{} in the journal", id));
  }
  return fail(m_path.string(),
              fmt::format("cannot record the end of action #{}: it already ended ({})", id, query.text(0)));
}

Result<std::vector<JournalRecord>> Journal::list(std::size_t limit, std::optional<std::string> server) {
  const auto sql = fmt::format("SELECT {} FROM actions {} ORDER BY started_at_ms DESC, id DESC LIMIT ?1", k_columns,
                               server ? "WHERE server = ?2" : "");
  Statement query;
  if (auto ok = query.prepare(m_db, m_path, db_error, sql, "cannot read the journal"); !ok) {
    return unexpected(ok.error());
  }
  query.bind(1, limit == 0 || limit > static_cast<std::size_t>(INT64_MAX) ? std::int64_t{-1}
                                                                          : static_cast<std::int64_t>(limit));
  if (server) {
    query.bind(2, *server);
  }
  return read_records(query, m_path.string());
}

Result<std::vector<JournalRecord>> Journal::actions_since(const std::string& server, std::int64_t since_ms) {
  const auto sql = fmt::format(
      "SELECT {} FROM actions WHERE server = ?1 AND started_at_ms >= ?2 ORDER BY started_at_ms DESC, id DESC",
      k_columns);
  Statement query;
  if (auto ok = query.prepare(m_db, m_path, db_error, sql, "cannot read the journal"); !ok) {
    return unexpected(ok.error());
  }
  query.bind(1, server);
  query.bind(2, since_ms);
  return read_records(query, m_path.string());
}

Expected<void, Error> Journal::mark_interrupted_stale() {
  struct Pending {
    std::int64_t id;
    std::int64_t pid;
    std::optional<std::string> token;
  };
  std::vector<Pending> pending;
  {
    Statement query;
    if (auto ok = query.prepare(
            m_db, m_path, db_error,
            "SELECT id, pid_of_writer, writer_start FROM actions WHERE outcome = 'in_progress' AND ended_at_ms IS NULL",
            "cannot look for interrupted actions");
        !ok) {
      return ok;
    }
    for (;;) {
      auto more = query.step();
      if (!more) {
        return unexpected(more.error());
      }
      if (!*more) {
        break;
      }
      pending.push_back(Pending{query.int64(0), query.int64(1),
                                query.is_null(2) ? std::nullopt : std::optional<std::string>(query.text(2))});
    }
  }
  for (const auto& p : pending) {
    if (writer_state(p.pid, p.token) == WriterState::alive) {
      continue;
    }
    const auto message = fmt::format("memwarden stopped before this action finished (pid {})", p.pid);
    Statement update;
    if (auto ok = update.prepare(
            m_db, m_path, db_error,
            "UPDATE actions SET outcome = 'interrupted', message = ?2 WHERE id = ?1 AND outcome = 'in_progress'",
            "cannot mark an interrupted action");
        !ok) {
      return ok;
    }
    update.bind(1, p.id);
    update.bind(2, message);
    if (auto ok = update.run(); !ok) {
      return ok;
    }
  }
  return {};
}

}  // namespace mw::adapters
