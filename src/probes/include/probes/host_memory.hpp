// Host-wide memory: /proc/meminfo, /proc/pressure/memory, /proc/vmstat.
// parse_* are pure; read_* read one file under the host root.
#pragma once

#include <optional>
#include <string_view>

#include "core/error.hpp"
#include "core/host_memory.hpp"
#include "probes/host_root.hpp"

namespace mw::probes {

// Fails on a malformed line or when MemTotal is missing; `source` names the file in errors.
[[nodiscard]] Result<MemInfo> parse_meminfo(std::string_view text, std::string_view source);
[[nodiscard]] Result<MemInfo> read_meminfo(const HostRoot& root);

// "some avg10=0.12 avg60=0.05 avg300=0.01 total=12345\nfull ..."
[[nodiscard]] Result<Pressure> parse_pressure(std::string_view text, std::string_view source);
// nullopt when the kernel has no PSI (file absent, or psi=0 on the kernel command line).
[[nodiscard]] Result<std::optional<Pressure>> read_host_pressure(const HostRoot& root);

[[nodiscard]] Result<VmStat> parse_vmstat(std::string_view text, std::string_view source);
[[nodiscard]] Result<VmStat> read_vmstat(const HostRoot& root);

}  // namespace mw::probes
