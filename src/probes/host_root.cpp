#include "probes/host_root.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace mw::probes {

Expected<void, Error> read_file_into(const std::filesystem::path& path, std::string& buffer) {
  buffer.clear();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return fail(path.string(), std::strerror(err), err);
  }
  constexpr std::size_t k_chunk = 4096;
  std::size_t used = 0;
  for (;;) {
    if (buffer.size() < used + k_chunk) {
      buffer.resize(used + k_chunk);
    }
    const ssize_t n = ::read(fd, buffer.data() + used, k_chunk);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      const int err = errno;
      ::close(fd);
      buffer.clear();
      return fail(path.string(), std::strerror(err), err);
    }
    if (n == 0) {
      break;
    }
    used += static_cast<std::size_t>(n);
  }
  ::close(fd);
  buffer.resize(used);
  return {};
}

Result<std::string> read_file(const std::filesystem::path& path) {
  std::string buffer;
  if (auto ok = read_file_into(path, buffer); !ok) {
    return unexpected(ok.error());
  }
  return buffer;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
    text.remove_prefix(1);
  }
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) {
    text.remove_suffix(1);
  }
  return text;
}

}  // namespace mw::probes
