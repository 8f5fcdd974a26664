// The one injected root every probe reads under: "/" on a live host, a
// fixture tree in tests, "/host" when memwarden runs in a container with the
// host's /proc and /sys mounted there.
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "core/text.hpp"

namespace mw::probes {

class HostRoot {
 public:
  explicit HostRoot(std::filesystem::path root = "/") : m_root(std::move(root)) {}

  [[nodiscard]] const std::filesystem::path& root() const { return m_root; }
  // root/proc/<relative>, root/sys/fs/cgroup/<relative>
  [[nodiscard]] std::filesystem::path proc(std::string_view relative) const { return m_root / "proc" / relative; }
  [[nodiscard]] std::filesystem::path cgroup_fs() const { return m_root / "sys" / "fs" / "cgroup"; }

 private:
  std::filesystem::path m_root;
};

// Lines are trimmed with mw::trim (core/text).
using mw::trim;

// The most any file is read to, unless a reader says otherwise: nothing from outside is unbounded.
inline constexpr std::size_t k_max_file_bytes = 16U << 20;

// What a read does with a file longer than its cap.
enum class Overflow {
  fail,     // an error "larger than N" (code EFBIG)
  truncate  // the first N bytes are the text
};

// Reads a whole file (proc files report size 0, so it reads to EOF), at most `max_bytes`. The error
// names the path and carries errno in Error::code.
[[nodiscard]] Result<std::string> read_file(const std::filesystem::path& path, std::size_t max_bytes = k_max_file_bytes,
                                            Overflow overflow = Overflow::fail);

// Like read_file, into a caller-owned buffer that is reused between reads.
[[nodiscard]] Expected<void, Error> read_file_into(const std::filesystem::path& path, std::string& buffer,
                                                   std::size_t max_bytes = k_max_file_bytes,
                                                   Overflow overflow = Overflow::fail);

// Like read_file_into, from a descriptor the caller opened (and closes): from where it stands to EOF.
[[nodiscard]] Expected<void, Error> read_open_file(int fd, const std::filesystem::path& path, std::string& buffer,
                                                   std::size_t max_bytes = k_max_file_bytes,
                                                   Overflow overflow = Overflow::fail);
// The same from the file's start (pread), however often: a kept descriptor of a /proc or cgroup file reads the
// current content each time. The descriptor's position does not move. `path` names it in errors.
[[nodiscard]] Expected<void, Error> reread_open_file(int fd, const std::filesystem::path& path, std::string& buffer,
                                                     std::size_t max_bytes = k_max_file_bytes,
                                                     Overflow overflow = Overflow::fail);

// A file named by a person or a configuration (a config, a token, a model): it must be a regular file
// (a FIFO, a device or a directory is refused at once, without blocking: the open is non-blocking and
// the type is checked on the open descriptor) no larger than `max_bytes`.
[[nodiscard]] Result<std::string> read_regular_file(const std::filesystem::path& path, std::size_t max_bytes);

// Opens a regular file for reading without blocking on a FIFO or a device: the descriptor (O_CLOEXEC,
// blocking again once the type is checked), or an error naming the path ("is a FIFO, not a regular
// file"). The caller closes it.
[[nodiscard]] Result<int> open_regular_file(const std::filesystem::path& path);

// "a FIFO", "a directory", "a character device", ... for st_mode.
[[nodiscard]] std::string describe_file_type(unsigned mode);

// Reads `path` and hands its text to `parse(text, source)`, with the path as the source.
template <class Parse>
[[nodiscard]] auto read_parsed(const std::filesystem::path& path, Parse&& parse)
    -> decltype(parse(std::string_view{}, std::string_view{})) {
  auto text = read_file(path);
  if (!text) {
    return unexpected(text.error());
  }
  return parse(*text, path.string());
}

// Splits text into lines without copying; the last line may lack '\n'.
template <class F>
void for_each_line(std::string_view text, F&& f) {
  while (!text.empty()) {
    const auto nl = text.find('\n');
    const auto line = text.substr(0, nl);
    f(line);
    if (nl == std::string_view::npos) {
      break;
    }
    text.remove_prefix(nl + 1);
  }
}

// Calls `parse(line)` for each line that is not blank (the line is passed as it is, untrimmed).
// `parse` returns nullopt when the line is fine, or what is wrong with it; the first complaint
// ends the walk and becomes the error "<source>: line N: <complaint>".
template <class F>
[[nodiscard]] Expected<void, Error> parse_lines(std::string_view text, std::string_view source, F&& parse) {
  int line_no = 0;
  std::optional<std::string> complaint;
  for_each_line(text, [&](std::string_view line) {
    ++line_no;
    if (!complaint && !trim(line).empty()) {
      complaint = parse(line);
      if (complaint) {
        complaint = "line " + std::to_string(line_no) + ": " + *complaint;
      }
    }
  });
  if (complaint) {
    return fail(std::string(source), std::move(*complaint));
  }
  return {};
}

}  // namespace mw::probes
