// A second, raw SQLite connection to a database memwarden writes: to lock it, to look at what
// memwarden wrote, or to write what memwarden never would. For the journal and sample store tests.
#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <string>

namespace mw::test {

class RawDb {
 public:
  explicit RawDb(const std::filesystem::path& path) {
    if (sqlite3_open(path.c_str(), &m_db) != SQLITE_OK) {
      ADD_FAILURE() << "cannot open " << path;
    }
  }
  ~RawDb() { sqlite3_close(m_db); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  void exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(m_db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      ADD_FAILURE() << sql << ": " << (err != nullptr ? err : "?");
    }
    sqlite3_free(err);
  }
  // The first column of the first row; -1 when there is none.
  std::int64_t integer(const std::string& sql) {
    std::int64_t out = -1;
    first_row(sql, [&](sqlite3_stmt* stmt) { out = sqlite3_column_int64(stmt, 0); });
    return out;
  }
  // The first column of the first row as text; "<none>" without a row, "<null>" for NULL.
  std::string text(const std::string& sql) {
    std::string out = "<none>";
    first_row(sql, [&](sqlite3_stmt* stmt) {
      const auto* t = sqlite3_column_text(stmt, 0);
      out = t != nullptr ? reinterpret_cast<const char*>(t) : "<null>";
    });
    return out;
  }

 private:
  template <class F>
  void first_row(const std::string& sql, F&& read) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(m_db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW) {
      read(stmt);
    }
    sqlite3_finalize(stmt);
  }

  sqlite3* m_db = nullptr;
};

}  // namespace mw::test
