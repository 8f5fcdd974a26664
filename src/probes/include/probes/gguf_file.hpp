// Reads the header of a GGUF model file: only as many bytes as the header takes, never the tensor data.
#pragma once

#include <cstdint>
#include <filesystem>

#include "core/bytes.hpp"
#include "core/error.hpp"
#include "core/gguf.hpp"

namespace mw::probes {

inline constexpr std::uint64_t k_gguf_first_read = k_mib;       // the first read
inline constexpr std::uint64_t k_gguf_max_header = 64 * k_mib;  // the default cap on header bytes

// Reads the first MiB of `path` and parses it (mw::parse_gguf with the file's size); while the header
// goes on past what was read, reads more (at least what the parser asked for, at least half as much again) up to
// `max_header_bytes`. Sets GgufFile::file_size and bytes_read. Errors name the path: one that cannot
// be opened (errno in Error::code), not a regular file, a header over the cap, a corrupt header, and
// tensor data that ends past the end of the file (a truncated download).
[[nodiscard]] Result<GgufFile> read_gguf(const std::filesystem::path& path,
                                         std::uint64_t max_header_bytes = k_gguf_max_header);

}  // namespace mw::probes
