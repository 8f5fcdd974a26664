#include "sqlite_common.hpp"

#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <cerrno>
#include <cstring>

namespace mw::adapters {

namespace fs = std::filesystem;

std::string sqlite_message(sqlite3* db, int rc) {
  if (db != nullptr && sqlite3_errcode(db) == rc) {
    return sqlite3_errmsg(db);
  }
  return sqlite3_errstr(rc);
}

Error sqlite_error(const fs::path& path, sqlite3* db, int rc, std::string_view doing, std::string_view name,
                   int busy_timeout_ms) {
  const auto detail = sqlite_message(db, rc);
  const int code = db != nullptr ? sqlite3_system_errno(db) : 0;
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Error{path.string(),
                   fmt::format("the {} database is locked by another process (waited {} s): {}", name,
                               busy_timeout_ms / 1000, detail),
                   code};
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Error{path.string(),
                   fmt::format("the {} database is corrupt ({}); move it aside to start a new one", name, detail),
                   code};
    case SQLITE_FULL:
      return Error{path.string(), fmt::format("disk full: no space left for the {} database ({})", name, detail),
                   code != 0 ? code : ENOSPC};
    default:
      return Error{path.string(), fmt::format("{}: {}", doing, detail), code};
  }
}

Expected<void, Error> prepare_state_dir(const fs::path& dir, std::string_view purpose) {
  const auto not_a_dir = [&] {
    return fail(dir.string(),
                fmt::format("is not a directory; memwarden needs a state directory here for its {}", purpose), ENOTDIR);
  };
  std::error_code ec;
  const auto status = fs::status(dir, ec);
  if (fs::exists(status)) {
    return fs::is_directory(status) ? Expected<void, Error>{} : not_a_dir();
  }
  if (dir.has_parent_path()) {
    fs::create_directories(dir.parent_path(), ec);
    if (ec) {
      return fail(dir.string(), fmt::format("cannot create the state directory: {}", ec.message()), ec.value());
    }
  }
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    const int err = errno;
    return fail(dir.string(), fmt::format("cannot create the state directory: {}", std::strerror(err)), err);
  }
  return fs::is_directory(dir, ec) ? Expected<void, Error>{} : not_a_dir();
}

}  // namespace mw::adapters
