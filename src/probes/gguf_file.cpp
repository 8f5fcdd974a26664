#include "probes/gguf_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

namespace mw::probes {

namespace {

class Fd {
 public:
  explicit Fd(int fd) : m_fd(fd) {}
  ~Fd() {
    if (m_fd >= 0) {
      ::close(m_fd);
    }
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  [[nodiscard]] int get() const { return m_fd; }

 private:
  int m_fd;
};

// Grows `buffer` to `size` bytes with the file's bytes from buffer.size() on.
Expected<void, Error> read_up_to(int fd, std::string& buffer, std::uint64_t size, const std::filesystem::path& path) {
  auto used = buffer.size();
  buffer.resize(static_cast<std::size_t>(size));
  while (used < buffer.size()) {
    const ssize_t n = ::pread(fd, buffer.data() + used, buffer.size() - used, static_cast<off_t>(used));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      const int err = errno;
      return fail(path.string(), std::string("read failed: ") + std::strerror(err), err);
    }
    if (n == 0) {
      return fail(path.string(), "the file ended at byte " + std::to_string(used) + " while it was being read (" +
                                     std::to_string(size) + " bytes were expected)");
    }
    used += static_cast<std::size_t>(n);
  }
  return {};
}

Result<GgufFile> check_data(GgufFile file, std::uint64_t bytes_read, const std::filesystem::path& path) {
  file.bytes_read = bytes_read;
  const auto file_size = file.file_size.value_or(0);
  if (!file.tensors.empty() && file.data_offset + file.data_bytes > file_size) {
    return fail(path.string(), "the tensor data is cut off: the tensors end at byte " +
                                   std::to_string(file.data_offset + file.data_bytes) + ", but the file has only " +
                                   std::to_string(file_size) + " bytes (an incomplete download?)");
  }
  return file;
}

}  // namespace

Result<GgufFile> read_gguf(const std::filesystem::path& path, std::uint64_t max_header_bytes) {
  const Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    const int err = errno;
    return fail(path.string(), std::strerror(err), err);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    const int err = errno;
    return fail(path.string(), std::strerror(err), err);
  }
  if (!S_ISREG(st.st_mode)) {
    return fail(path.string(), "not a regular file");
  }
  const auto file_size = static_cast<std::uint64_t>(st.st_size);
  if (file_size == 0) {
    return fail(path.string(), "the file is empty, not a GGUF model");
  }

  std::string buffer;
  std::uint64_t want = std::min({k_gguf_first_read, max_header_bytes, file_size});
  for (;;) {
    if (auto ok = read_up_to(fd.get(), buffer, want, path); !ok) {
      return unexpected(ok.error());
    }
    std::uint64_t needed = 0;
    auto parsed = parse_gguf(buffer, path.string(), file_size, &needed);
    if (parsed || parsed.error().code != ENODATA) {
      return parsed ? check_data(std::move(parsed).value(), buffer.size(), path) : parsed;
    }
    if (needed > max_header_bytes) {
      return fail(path.string(), "the GGUF header is larger than the limit of " + std::to_string(max_header_bytes) +
                                     " bytes (it needs at least " + std::to_string(needed) + ")");
    }
    // Half as much again (not double: a header just over 8 MiB, like Llama 3's, would cost 16 MiB).
    const auto next = std::min({std::max(needed, want + want / 2), max_header_bytes, file_size});
    if (next <= buffer.size()) {  // the parser asked for bytes the file does not have: cannot happen
      return parsed;
    }
    want = next;
  }
}

}  // namespace mw::probes
