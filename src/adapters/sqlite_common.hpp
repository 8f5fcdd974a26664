// What the journal and the sample store share about SQLite: its errors in plain
// words, and the private state directory. Internal to mw_adapters.
#pragma once

#include <sqlite3.h>

#include <filesystem>
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

}  // namespace mw::adapters
