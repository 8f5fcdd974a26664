// A POSIX ustar archive in memory: what `docker import` reads. memwarden builds the image for its own
// static helpers from one (issue 14), without a registry and without running tar.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "core/error.hpp"

namespace mw {

struct TarEntry {
  enum class Kind { directory, file };
  Kind kind = Kind::file;
  std::string path;  // relative, "bin/memwarden-alloc"; at most 100 bytes
  std::uint32_t mode = 0644;
  std::string content;  // files only
};

// The archive: each entry's 512-byte header (owner 0:0, mtime 0, so the same input gives the same bytes),
// its content padded to 512 bytes, and two zero blocks. Errors name the entry (a path that is empty,
// absolute, over 100 bytes or holds "..").
[[nodiscard]] Result<std::string> ustar_archive(std::span<const TarEntry> entries);

}  // namespace mw
