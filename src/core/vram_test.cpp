#include "core/vram_test.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "core/bytes.hpp"

namespace mw {

const char* to_string(VramStop stop) {
  switch (stop) {
    case VramStop::reached:
      return "reached";
    case VramStop::reserve:
      return "reserve";
    case VramStop::out_of_memory:
      return "out-of-memory";
    case VramStop::gpu_lost:
      return "gpu-lost";
    case VramStop::interrupted:
      return "interrupted";
    case VramStop::failed:
      return "failed";
  }
  return "?";
}

VramVerdict verdict_of(VramStop stop) {
  switch (stop) {
    case VramStop::reached:
      return VramVerdict::passed;
    case VramStop::reserve:
    case VramStop::out_of_memory:
      return VramVerdict::not_possible;
    case VramStop::interrupted:
      return VramVerdict::interrupted;
    case VramStop::gpu_lost:
    case VramStop::failed:
      return VramVerdict::failed;
  }
  return VramVerdict::failed;
}

int exit_code_of(VramVerdict verdict) {
  switch (verdict) {
    case VramVerdict::passed:
      return 0;
    case VramVerdict::not_possible:
      return 4;
    case VramVerdict::source_missing:
      return 3;
    case VramVerdict::failed:
      return 1;
    case VramVerdict::interrupted:
      return 130;
  }
  return 1;
}

std::uint64_t next_vram_chunk(std::uint64_t size, std::uint64_t reached, std::uint64_t chunk) {
  return reached >= size ? 0 : std::min(chunk, size - reached);
}

std::uint64_t vram_chunk_count(std::uint64_t size, std::uint64_t chunk) {
  if (chunk == 0) {
    return 0;
  }
  return size / chunk + (size % chunk != 0 ? 1 : 0);
}

bool breaks_vram_reserve(std::uint64_t free, std::uint64_t reserve, std::uint64_t next_chunk) {
  return free < reserve || free - reserve < next_chunk;
}

std::optional<std::string> refuse_vram_size(std::uint64_t size, std::uint64_t total, std::uint64_t reserve,
                                            const std::string& gpu, const std::string& source) {
  if (size == 0) {
    return fmt::format("{}: a size of 0 tests nothing", source);
  }
  if (total <= reserve || size > total - reserve) {
    return fmt::format("{}: {} is more than {}'s {} less the {} reserve", source, format_bytes(size), gpu,
                       format_bytes(total), format_bytes(reserve));
  }
  return std::nullopt;
}

}  // namespace mw
