#include "probes/host_root.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "core/bytes.hpp"

namespace mw::probes {

namespace {

Error too_large(const std::filesystem::path& path, std::size_t max_bytes) {
  return Error{path.string(), fmt::format("larger than {}, the most memwarden reads of it", format_cap(max_bytes)),
               EFBIG};
}

enum class From { here, start };

// Reads from `fd` to EOF or past `max_bytes`: from where it stands (read) or from its start (pread, which leaves it
// where it stands); closes nothing.
Expected<void, Error> read_fd(int fd, const std::filesystem::path& path, std::string& buffer, std::size_t max_bytes,
                              Overflow overflow, From from = From::here) {
  constexpr std::size_t k_chunk = 4096;
  buffer.clear();
  std::size_t used = 0;
  for (;;) {
    // One byte past the cap tells a file of exactly max_bytes from a longer one.
    const std::size_t want = std::min(k_chunk, max_bytes + 1 - used);
    if (buffer.size() < used + want) {
      buffer.resize(used + want);
    }
    const ssize_t n = from == From::here ? ::read(fd, buffer.data() + used, want)
                                         : ::pread(fd, buffer.data() + used, want, static_cast<off_t>(used));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      const int err = errno;
      buffer.clear();
      return fail(path.string(), std::strerror(err), err);
    }
    if (n == 0) {
      break;
    }
    used += static_cast<std::size_t>(n);
    if (used > max_bytes) {
      if (overflow == Overflow::truncate) {
        used = max_bytes;
        break;
      }
      buffer.clear();
      return unexpected(too_large(path, max_bytes));
    }
  }
  buffer.resize(used);
  return {};
}

}  // namespace

Expected<void, Error> read_file_into(const std::filesystem::path& path, std::string& buffer, std::size_t max_bytes,
                                     Overflow overflow) {
  buffer.clear();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return fail(path.string(), std::strerror(err), err);
  }
  auto ok = read_fd(fd, path, buffer, max_bytes, overflow);
  ::close(fd);
  return ok;
}

Expected<void, Error> read_open_file(int fd, const std::filesystem::path& path, std::string& buffer,
                                     std::size_t max_bytes, Overflow overflow) {
  return read_fd(fd, path, buffer, max_bytes, overflow);
}

Expected<void, Error> reread_open_file(int fd, const std::filesystem::path& path, std::string& buffer,
                                       std::size_t max_bytes, Overflow overflow) {
  return read_fd(fd, path, buffer, max_bytes, overflow, From::start);
}

Result<std::string> read_file(const std::filesystem::path& path, std::size_t max_bytes, Overflow overflow) {
  std::string buffer;
  if (auto ok = read_file_into(path, buffer, max_bytes, overflow); !ok) {
    return unexpected(ok.error());
  }
  return buffer;
}

std::string describe_file_type(unsigned mode) {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return "a regular file";
    case S_IFDIR:
      return "a directory";
    case S_IFIFO:
      return "a FIFO";
    case S_IFCHR:
      return "a character device";
    case S_IFBLK:
      return "a block device";
    case S_IFSOCK:
      return "a socket";
    default:
      return "not a regular file";
  }
}

Result<int> open_regular_file(const std::filesystem::path& path) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    const int err = errno;
    return fail(path.string(), std::strerror(err), err);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return fail(path.string(), std::strerror(err), err);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return fail(path.string(), fmt::format("is {}, not a regular file", describe_file_type(st.st_mode)), EINVAL);
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

Result<std::string> read_regular_file(const std::filesystem::path& path, std::size_t max_bytes) {
  auto fd = open_regular_file(path);
  if (!fd) {
    return unexpected(fd.error());
  }
  struct stat st {};
  if (::fstat(*fd, &st) == 0 && static_cast<std::uint64_t>(st.st_size) > max_bytes) {
    ::close(*fd);
    return unexpected(too_large(path, max_bytes));
  }
  std::string buffer;
  auto ok = read_fd(*fd, path, buffer, max_bytes, Overflow::fail);
  ::close(*fd);
  if (!ok) {
    return unexpected(ok.error());
  }
  return buffer;
}

}  // namespace mw::probes
