#include "core/host_memory.hpp"

#include "core/bytes.hpp"

namespace mw {

std::optional<std::uint64_t> MemInfo::used() const {
  if (!mem_total || !mem_available) {
    return std::nullopt;
  }
  return saturating_sub(*mem_total, *mem_available);
}

std::optional<std::uint64_t> MemInfo::swap_used() const {
  if (!swap_total || !swap_free) {
    return std::nullopt;
  }
  return saturating_sub(*swap_total, *swap_free);
}

}  // namespace mw
