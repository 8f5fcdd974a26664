// Reads the header of a GGUF model file: only as many bytes as the header takes, never the tensor data.
#pragma once

#include <cstdint>
#include <filesystem>

#include "core/bytes.hpp"
#include "core/error.hpp"
#include "core/gguf.hpp"

namespace mw::probes {

inline constexpr std::uint64_t k_gguf_first_read = k_mib;       // the first read
inline constexpr std::uint64_t k_gguf_read_step = k_mib;        // each further read, at least
inline constexpr std::uint64_t k_gguf_max_header = 64 * k_mib;  // the default cap on header bytes

// Reads the first MiB of `path`; while the header goes on past what was read (mw::GgufHeaderScan, which
// goes on where it stopped), reads more: what the scan asks for, at least another k_gguf_read_step, up to
// `max_header_bytes`. Then parses the header once (mw::parse_gguf with the file's size). Sets
// GgufFile::file_size and bytes_read (the header, plus less than k_gguf_read_step, or the first read).
// Errors name the path: one that cannot be opened (errno in Error::code), not a regular file, a header
// over the cap, a corrupt header, and tensor data that ends past the end of the file (a truncated download).
[[nodiscard]] Result<GgufFile> read_gguf(const std::filesystem::path& path,
                                         std::uint64_t max_header_bytes = k_gguf_max_header);

}  // namespace mw::probes
