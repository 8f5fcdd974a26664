#include "cli/test_vram.hpp"

#include <fmt/format.h>

#include "core/bytes.hpp"

namespace mw::cli {

namespace {

std::string bytes_or_dash(const std::optional<std::uint64_t>& bytes) {
  return bytes ? format_bytes(*bytes) : std::string("-");
}

template <class T>
nlohmann::json opt(const std::optional<T>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

}  // namespace

int vram_test_exit_code(const engine::VramTestResult& result) {
  return exit_code_of(result.verdict);
}

std::string render_vram_test(const engine::VramTestResult& r) {
  std::string out = fmt::format("GPU {}: {}{}, {}; reserve {}, chunks of {}\n", r.gpu, r.name.value_or("(no name)"),
                                r.pci_bus_id ? fmt::format(" ({})", *r.pci_bus_id) : std::string(),
                                format_bytes(r.total), format_bytes(r.reserve), format_bytes(r.chunk));
  if (r.refused) {
    return out + *r.refused + "\n";
  }
  const auto gbps = r.gb_per_s();
  out += fmt::format("{:>10} {:>10} {:>7} {:>8} {:>8} {:>12} {:>10} {:>11}  {}\n", "SIZE", "REACHED", "CHUNKS", "TIME",
                     "GB/S", "FREE BEFORE", "FREE HELD", "FREE AFTER", "STOP");
  out += fmt::format("{:>10} {:>10} {:>7} {:>7.2f}s {:>8} {:>12} {:>10} {:>11}  {}\n", format_bytes(r.size),
                     format_bytes(r.reached), r.chunks, r.seconds, gbps ? fmt::format("{:.1f}", *gbps) : "-",
                     bytes_or_dash(r.free_before), bytes_or_dash(r.free_held), bytes_or_dash(r.free_after),
                     r.stop ? to_string(*r.stop) : "-");
  if (r.error) {
    out += fmt::format("  {}\n", *r.error);
  }
  if (r.frees_failed > 0) {
    out += fmt::format("  {} chunk{} not freed ({}); the driver gives them back when memwarden exits\n", r.frees_failed,
                       r.frees_failed == 1 ? "" : "s", r.cleanup_error.value_or("cuMemFree failed"));
  } else if (r.cleanup_error) {
    out += fmt::format("  {}\n", *r.cleanup_error);
  }
  return out;
}

nlohmann::json vram_test_to_json(const engine::VramTestResult& r) {
  const auto stop = r.stop ? nlohmann::json(to_string(*r.stop)) : nlohmann::json(nullptr);
  return nlohmann::json{
      {"gpu", {{"ordinal", r.gpu}, {"name", opt(r.name)}, {"pci_bus_id", opt(r.pci_bus_id)}, {"total_bytes", r.total}}},
      {"size_bytes", r.size},
      {"chunk_bytes", r.chunk},
      {"gpu_reserve_bytes", r.reserve},
      {"reached", r.verdict == VramVerdict::passed},
      {"refused", opt(r.refused)},
      {"stop", stop},
      {"error", opt(r.error)},
      {"reached_bytes", r.reached},
      {"chunks", r.chunks},
      {"seconds", r.seconds},
      {"write_seconds", r.write_seconds},
      {"gb_per_s", opt(r.gb_per_s())},
      {"free_before_bytes", opt(r.free_before)},
      {"free_held_bytes", opt(r.free_held)},
      {"free_after_bytes", opt(r.free_after)},
      {"frees_failed", r.frees_failed},
      {"cleanup_error", opt(r.cleanup_error)},
      {"context_released", r.context_released},
      {"exit_code", vram_test_exit_code(r)}};
}

}  // namespace mw::cli
