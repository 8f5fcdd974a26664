// What the journal and the sample store share about SQLite: its errors in plain
// words, prepared statements, and the private state directory. Internal to mw_adapters.
#pragma once

#include <sqlite3.h>

#include <climits>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace mw::adapters {

// The database's own message for rc when it is the latest error, else SQLite's text for rc.
[[nodiscard]] std::string sqlite_message(sqlite3* db, int rc);

// An SQLite failure as an Error whose source is the database path: locked (after `busy_timeout_ms`),
// corrupt, disk full, or "<doing>: <SQLite's message>". `name` says which database: "journal", "sample".
[[nodiscard]] Error sqlite_error(const std::filesystem::path& path, sqlite3* db, int rc, std::string_view doing,
                                 std::string_view name, int busy_timeout_ms);

// Creates `dir` (mode 0700, parents as needed) unless it is a directory already. `purpose` names what
// memwarden keeps there ("journal", "history") in the error.
[[nodiscard]] Expected<void, Error> prepare_state_dir(const std::filesystem::path& dir, std::string_view purpose);

// How one database turns an SQLite code into its error (it names the database and its lock time-out).
using DbErrorFn = Error (*)(const std::filesystem::path& path, sqlite3* db, int rc, std::string_view doing);

// A prepared statement, finalized on destruction. Text is bound without copying: the
// bound strings must outlive the last step() before reset().
class Statement {
 public:
  Statement() = default;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement() { sqlite3_finalize(m_stmt); }

  // `path` must outlive the statement; `error` turns an SQLite code into the database's own error.
  [[nodiscard]] Expected<void, Error> prepare(sqlite3* db, const std::filesystem::path& path, DbErrorFn error,
                                              std::string_view sql, std::string_view doing, unsigned flags = 0) {
    m_db = db;
    m_path = &path;
    m_error = error;
    m_doing = doing;
    const int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()), flags, &m_stmt, nullptr);
    if (rc != SQLITE_OK) {
      return unexpected(m_error(path, db, rc, m_doing));
    }
    return {};
  }

  void bind(int index, std::int64_t value) { keep(sqlite3_bind_int64(m_stmt, index, value)); }
  void bind(int index, std::string_view text) {
    if (text.size() > static_cast<std::size_t>(INT_MAX)) {
      keep(SQLITE_TOOBIG);
      return;
    }
    // A null destructor is SQLITE_STATIC (the macro is an old-style cast).
    keep(sqlite3_bind_text(m_stmt, index, text.data(), static_cast<int>(text.size()), nullptr));
  }
  void bind(int index, std::optional<std::int64_t> value) {
    keep(value ? sqlite3_bind_int64(m_stmt, index, *value) : sqlite3_bind_null(m_stmt, index));
  }
  void bind(int index, std::optional<double> value) {
    keep(value && !std::isnan(*value) ? sqlite3_bind_double(m_stmt, index, *value) : sqlite3_bind_null(m_stmt, index));
  }

  // True while there is a row; an error once the statement fails.
  [[nodiscard]] Result<bool> step() {
    if (m_bind_rc != SQLITE_OK) {
      return unexpected(m_error(*m_path, m_db, m_bind_rc, m_doing));
    }
    const int rc = sqlite3_step(m_stmt);
    if (rc == SQLITE_ROW) {
      return true;
    }
    if (rc == SQLITE_DONE) {
      return false;
    }
    return unexpected(m_error(*m_path, m_db, rc, m_doing));
  }

  // Runs a statement that returns no rows (or ignores them), then resets it.
  [[nodiscard]] Expected<void, Error> run() {
    for (;;) {
      auto more = step();
      if (!more || !*more) {
        reset();
        if (!more) {
          return unexpected(more.error());
        }
        return {};
      }
    }
  }

  // Ready to run again, bindings cleared.
  void reset() {
    sqlite3_reset(m_stmt);
    sqlite3_clear_bindings(m_stmt);
    m_bind_rc = SQLITE_OK;
  }

  [[nodiscard]] bool is_null(int column) const { return sqlite3_column_type(m_stmt, column) == SQLITE_NULL; }
  [[nodiscard]] std::int64_t int64(int column) const { return sqlite3_column_int64(m_stmt, column); }
  [[nodiscard]] std::optional<std::int64_t> optional_int64(int column) const {
    return is_null(column) ? std::nullopt : std::optional<std::int64_t>(int64(column));
  }
  [[nodiscard]] std::optional<std::uint64_t> bytes(int column) const {
    return is_null(column) ? std::nullopt : std::optional<std::uint64_t>(static_cast<std::uint64_t>(int64(column)));
  }
  [[nodiscard]] std::optional<double> real(int column) const {
    return is_null(column) ? std::nullopt : std::optional<double>(sqlite3_column_double(m_stmt, column));
  }
  [[nodiscard]] std::optional<std::uint32_t> count(int column) const {
    const auto v = optional_int64(column);
    if (!v || *v < 0 || *v > std::int64_t{UINT32_MAX}) {
      return std::nullopt;  // written by something else than memwarden: unknown
    }
    return static_cast<std::uint32_t>(*v);
  }
  [[nodiscard]] std::string text(int column) const {
    const auto* data = sqlite3_column_text(m_stmt, column);
    if (data == nullptr) {
      return {};
    }
    const int size = sqlite3_column_bytes(m_stmt, column);
    return std::string(reinterpret_cast<const char*>(data), static_cast<std::size_t>(size));
  }

 private:
  void keep(int rc) {
    if (m_bind_rc == SQLITE_OK) {
      m_bind_rc = rc;
    }
  }

  sqlite3* m_db = nullptr;
  const std::filesystem::path* m_path = nullptr;
  DbErrorFn m_error = nullptr;
  sqlite3_stmt* m_stmt = nullptr;
  std::string_view m_doing;
  int m_bind_rc = SQLITE_OK;
};

// Resets a statement that was stepped through only in part.
class ResetOnExit {
 public:
  explicit ResetOnExit(Statement& stmt) : m_stmt(stmt) {}
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;
  ~ResetOnExit() { m_stmt.reset(); }

 private:
  Statement& m_stmt;
};

inline Expected<void, Error> exec(sqlite3* db, const std::filesystem::path& path, DbErrorFn error, const char* sql,
                                  std::string_view doing) {
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) {
    return unexpected(error(path, db, rc, doing));
  }
  return {};
}

// The first column of the first row, or nullopt (no row, or NULL).
inline Result<std::optional<std::int64_t>> query_int(sqlite3* db, const std::filesystem::path& path, DbErrorFn error,
                                                     std::string_view sql, std::string_view doing) {
  Statement stmt;
  if (auto ok = stmt.prepare(db, path, error, sql, doing); !ok) {
    return unexpected(ok.error());
  }
  auto row = stmt.step();
  if (!row) {
    return unexpected(row.error());
  }
  return *row ? stmt.optional_int64(0) : std::nullopt;
}

}  // namespace mw::adapters
