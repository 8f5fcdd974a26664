#include "core/cgroup_memory.hpp"

#include "core/bytes.hpp"

namespace mw {

std::optional<std::uint64_t> CgroupMemory::working_set() const {
  if (!usage || !inactive_file) {
    return std::nullopt;
  }
  return saturating_sub(*usage, *inactive_file);
}

std::optional<double> CgroupMemory::percent_of_limit() const {
  const auto ws = working_set();
  if (!ws || !limit || limit->is_unlimited() || *limit->bytes == 0) {
    return std::nullopt;
  }
  return 100.0 * static_cast<double>(*ws) / static_cast<double>(*limit->bytes);
}

const char* to_string(CgroupVersion version) {
  return version == CgroupVersion::v1 ? "v1" : "v2";
}

}  // namespace mw
