#include "core/tar.hpp"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

namespace mw {

namespace {

constexpr std::size_t k_block = 512;

// An octal field of `width` bytes: digits, then a NUL.
void put_octal(char* field, std::size_t width, std::uint64_t value) {
  const auto text = fmt::format("{:0{}o}", value, width - 1);
  std::memcpy(field, text.data(), std::min(text.size(), width - 1));
  field[width - 1] = '\0';
}

bool bad_path(const std::string& path) {
  if (path.empty() || path.size() > 100 || path.front() == '/') {
    return true;
  }
  std::size_t start = 0;
  while (start <= path.size()) {
    const auto end = std::min(path.find('/', start), path.size());
    const auto part = std::string_view(path).substr(start, end - start);
    if (part == ".." || (part.empty() && end != path.size())) {
      return true;
    }
    start = end + 1;
  }
  return false;
}

}  // namespace

Result<std::string> ustar_archive(std::span<const TarEntry> entries) {
  std::string out;
  for (const auto& e : entries) {
    if (bad_path(e.path)) {
      return fail("tar", fmt::format("'{}' is not a relative path of at most 100 bytes without '..'", e.path));
    }
    char header[k_block] = {};
    const std::string name = e.kind == TarEntry::Kind::directory && e.path.back() != '/' ? e.path + "/" : e.path;
    if (name.size() > 100) {
      return fail("tar", fmt::format("'{}' is longer than 100 bytes", name));
    }
    std::memcpy(header, name.data(), name.size());
    put_octal(header + 100, 8, e.mode & 07777U);
    put_octal(header + 108, 8, 0);  // uid
    put_octal(header + 116, 8, 0);  // gid
    const std::uint64_t size = e.kind == TarEntry::Kind::file ? e.content.size() : 0;
    put_octal(header + 124, 12, size);
    put_octal(header + 136, 12, 0);  // mtime
    header[156] = e.kind == TarEntry::Kind::file ? '0' : '5';
    std::memcpy(header + 257, "ustar", 6);  // magic with its NUL
    std::memcpy(header + 263, "00", 2);     // version
    // The checksum counts its own field as eight spaces.
    std::memset(header + 148, ' ', 8);
    std::uint64_t sum = 0;
    for (const char c : header) {
      sum += static_cast<unsigned char>(c);
    }
    put_octal(header + 148, 7, sum);
    header[155] = ' ';
    out.append(header, k_block);
    if (size > 0) {
      out += e.content;
      out.append((k_block - size % k_block) % k_block, '\0');
    }
  }
  out.append(2 * k_block, '\0');
  return out;
}

}  // namespace mw
