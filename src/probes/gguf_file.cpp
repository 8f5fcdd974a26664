#include "probes/gguf_file.hpp"

#include "probes/host_root.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

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

// The bytes read from the start of the file: one block, not zeroed, allocated once for a header of up
// to 16 MiB (larger ones double it, copying). Shared: the parsed file's string arrays point into it.
class ReadBuffer {
 public:
  explicit ReadBuffer(std::uint64_t capacity)
      : m_data(std::make_shared_for_overwrite<char[]>(static_cast<std::size_t>(capacity))),
        m_capacity(static_cast<std::size_t>(capacity)) {}

  [[nodiscard]] std::shared_ptr<const char[]> shared() const { return m_data; }
  [[nodiscard]] std::string_view view() const { return {m_data.get(), m_size}; }
  [[nodiscard]] std::size_t size() const { return m_size; }

  // Grows the buffer to `size` bytes with the file's bytes from size() on.
  Expected<void, Error> read_up_to(int fd, std::uint64_t size, const std::filesystem::path& path) {
    const auto want = static_cast<std::size_t>(size);
    if (want > m_capacity) {
      const auto capacity = std::max(want, m_capacity * 2);
      auto grown = std::make_shared_for_overwrite<char[]>(capacity);
      std::memcpy(grown.get(), m_data.get(), m_size);
      m_data = std::move(grown);
      m_capacity = capacity;
    }
    while (m_size < want) {
      const ssize_t n = ::pread(fd, m_data.get() + m_size, want - m_size, static_cast<off_t>(m_size));
      if (n < 0) {
        if (errno == EINTR) {
          continue;
        }
        const int err = errno;
        return fail(path.string(), std::string("read failed: ") + std::strerror(err), err);
      }
      if (n == 0) {
        return fail(path.string(), "the file ended at byte " + std::to_string(m_size) + " while it was being read (" +
                                       std::to_string(want) + " bytes were expected)");
      }
      m_size += static_cast<std::size_t>(n);
    }
    return {};
  }

 private:
  std::shared_ptr<char[]> m_data;
  std::size_t m_capacity;
  std::size_t m_size = 0;
};

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
  // Non-blocking open and the type checked on the descriptor: a FIFO named x.gguf is refused at once.
  auto opened = open_regular_file(path);
  if (!opened) {
    return unexpected(opened.error());
  }
  const Fd fd(*opened);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    const int err = errno;
    return fail(path.string(), std::strerror(err), err);
  }
  const auto file_size = static_cast<std::uint64_t>(st.st_size);
  if (file_size == 0) {
    return fail(path.string(), "the file is empty, not a GGUF model");
  }

  const auto too_large = [&](std::uint64_t needed) {
    return fail(path.string(), "the GGUF header is larger than the limit of " + std::to_string(max_header_bytes) +
                                   " bytes (it needs at least " + std::to_string(needed) + ")");
  };
  // 16 MiB holds the largest vocabularies (Gemma's 262k tokens) and stays under glibc's mmap threshold
  // cap (32 MiB): reading many files reuses one heap block instead of mapping and faulting in a new one.
  constexpr std::uint64_t k_gguf_buffer = 16 * k_mib;
  ReadBuffer buffer(std::min({file_size, max_header_bytes, k_gguf_buffer}));
  std::uint64_t want = std::min({k_gguf_first_read, max_header_bytes, file_size});

  // Find the header's end with the scan, which goes on where it stopped, and parse once.
  GgufHeaderScan scan(file_size);
  for (;;) {
    if (auto ok = buffer.read_up_to(fd.get(), want, path); !ok) {
      return unexpected(ok.error());
    }
    const auto needed = scan.scan(buffer.view());
    if (!needed) {
      break;
    }
    if (*needed > max_header_bytes) {
      // What was read may hold an error that the scan does not look for: it comes first.
      auto parsed = parse_gguf(buffer.view(), path.string(), file_size);
      if (!parsed && parsed.error().code != ENODATA) {
        return parsed;
      }
      return too_large(*needed);
    }
    // A vocabulary asks for a few bytes at a time: read at least another k_gguf_read_step.
    want = std::min({std::max(*needed, want + k_gguf_read_step), max_header_bytes, file_size});
  }

  for (;;) {
    std::uint64_t needed = 0;
    auto parsed = parse_gguf(buffer.shared(), buffer.size(), path.string(), file_size, &needed);
    if (parsed || parsed.error().code != ENODATA) {
      return parsed ? check_data(std::move(parsed).value(), buffer.size(), path) : parsed;
    }
    // Not after a scan that stopped (it stops where parse_gguf decides), but should they ever disagree.
    if (needed > max_header_bytes) {
      return too_large(needed);
    }
    const auto next = std::min({std::max(needed, want + want / 2), max_header_bytes, file_size});
    if (next <= buffer.size()) {  // the parser asked for bytes the file does not have: cannot happen
      return parsed;
    }
    want = next;
    if (auto ok = buffer.read_up_to(fd.get(), want, path); !ok) {
      return unexpected(ok.error());
    }
  }
}

}  // namespace mw::probes
