#include "probes/host_memory.hpp"

#include <fmt/format.h>

#include <cerrno>

#include "core/bytes.hpp"

namespace mw::probes {

namespace {

// Splits "Key:   123 kB" into key and value in bytes; "HugePages_Total: 4" has no unit.
struct MeminfoField {
  std::string_view key;
  std::uint64_t value = 0;
};

std::optional<MeminfoField> split_meminfo_line(std::string_view line) {
  const auto colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    return std::nullopt;
  }
  auto rest = trim(line.substr(colon + 1));
  std::uint64_t factor = 1;
  if (rest.size() > 3 && rest.substr(rest.size() - 3) == " kB") {
    factor = 1024;
    rest = trim(rest.substr(0, rest.size() - 3));
  }
  const auto value = parse_u64(rest);
  if (!value) {
    return std::nullopt;
  }
  return MeminfoField{line.substr(0, colon), *value * factor};
}

using MemInfoField = std::optional<std::uint64_t> MemInfo::*;
constexpr std::pair<std::string_view, MemInfoField> k_meminfo_keys[] = {
    {"MemTotal", &MemInfo::mem_total},
    {"MemFree", &MemInfo::mem_free},
    {"MemAvailable", &MemInfo::mem_available},
    {"Buffers", &MemInfo::buffers},
    {"Cached", &MemInfo::cached},
    {"SwapCached", &MemInfo::swap_cached},
    {"Active(file)", &MemInfo::active_file},
    {"Inactive(file)", &MemInfo::inactive_file},
    {"AnonPages", &MemInfo::anon_pages},
    {"Mapped", &MemInfo::mapped},
    {"Shmem", &MemInfo::shmem},
    {"SwapTotal", &MemInfo::swap_total},
    {"SwapFree", &MemInfo::swap_free},
};

using VmStatField = std::optional<std::uint64_t> VmStat::*;
constexpr std::pair<std::string_view, VmStatField> k_vmstat_keys[] = {
    {"pswpin", &VmStat::pswpin},
    {"pswpout", &VmStat::pswpout},
    {"pgmajfault", &VmStat::pgmajfault},
    {"oom_kill", &VmStat::oom_kill},
};

}  // namespace

Result<MemInfo> parse_meminfo(std::string_view text, std::string_view source) {
  MemInfo info;
  auto parsed = parse_lines(text, source, [&](std::string_view line) -> std::optional<std::string> {
    const auto field = split_meminfo_line(line);
    if (!field) {
      return fmt::format("expected 'Key: number kB', got '{}'", line.substr(0, 60));
    }
    for (const auto& [key, member] : k_meminfo_keys) {
      if (field->key == key) {
        info.*member = field->value;
        break;
      }
    }
    return std::nullopt;
  });
  if (!parsed) {
    return unexpected(parsed.error());
  }
  if (!info.mem_total) {
    return fail(std::string(source), "no MemTotal line: not a meminfo file");
  }
  return info;
}

Result<MemInfo> read_meminfo(const HostRoot& root) {
  return read_parsed(root.proc("meminfo"), parse_meminfo);
}

Result<Pressure> parse_pressure(std::string_view text, std::string_view source) {
  Pressure pressure;
  auto parsed = parse_lines(text, source, [&](std::string_view raw) -> std::optional<std::string> {
    const auto line = trim(raw);
    const auto bad = [&](std::string_view why) { return fmt::format("{} in '{}'", why, line.substr(0, 80)); };
    const auto space = line.find(' ');
    const auto kind = line.substr(0, space);
    if (kind != "some" && kind != "full") {
      return bad("expected 'some' or 'full'");
    }
    PressureLine out;
    int seen = 0;
    auto rest = space == std::string_view::npos ? std::string_view{} : line.substr(space + 1);
    while (!rest.empty()) {
      const auto sp = rest.find(' ');
      const auto token = rest.substr(0, sp);
      rest = sp == std::string_view::npos ? std::string_view{} : trim(rest.substr(sp + 1));
      const auto eq = token.find('=');
      if (eq == std::string_view::npos) {
        return bad("expected key=value");
      }
      const auto key = token.substr(0, eq);
      const auto value = token.substr(eq + 1);
      if (key == "total") {
        const auto total = parse_u64(value);
        if (!total) {
          return bad("bad total");
        }
        out.total_us = *total;
        seen |= 8;
        continue;
      }
      const auto pct = parse_double(value);
      if (!pct) {
        return bad(fmt::format("bad {}", key));
      }
      if (key == "avg10") {
        out.avg10 = *pct;
        seen |= 1;
      } else if (key == "avg60") {
        out.avg60 = *pct;
        seen |= 2;
      } else if (key == "avg300") {
        out.avg300 = *pct;
        seen |= 4;
      }
    }
    if (seen != 15) {
      return bad("missing avg10, avg60, avg300 or total");
    }
    (kind == "some" ? pressure.some : pressure.full) = out;
    return std::nullopt;
  });
  if (!parsed) {
    return unexpected(parsed.error());
  }
  if (!pressure.some && !pressure.full) {
    return fail(std::string(source), "empty pressure file");
  }
  return pressure;
}

Result<std::optional<Pressure>> read_host_pressure(const HostRoot& root) {
  const auto path = root.proc("pressure/memory");
  auto text = read_file(path);
  if (!text) {
    // Absent before Linux 4.20 or without CONFIG_PSI; psi=0 makes reads fail with EOPNOTSUPP.
    if (text.error().code == ENOENT || text.error().code == EOPNOTSUPP) {
      return std::optional<Pressure>{};
    }
    return unexpected(text.error());
  }
  auto parsed = parse_pressure(*text, path.string());
  if (!parsed) {
    return unexpected(parsed.error());
  }
  return std::optional<Pressure>{*parsed};
}

Result<VmStat> parse_vmstat(std::string_view text, std::string_view source) {
  VmStat stat;
  auto parsed = parse_lines(text, source, [&](std::string_view raw) -> std::optional<std::string> {
    const auto line = trim(raw);
    const auto space = line.find(' ');
    const auto value = space == std::string_view::npos ? std::nullopt : parse_u64(trim(line.substr(space + 1)));
    if (!value) {
      return fmt::format("expected 'name number', got '{}'", line.substr(0, 60));
    }
    const auto key = line.substr(0, space);
    for (const auto& [name, member] : k_vmstat_keys) {
      if (key == name) {
        stat.*member = value;
        break;
      }
    }
    return std::nullopt;
  });
  if (!parsed) {
    return unexpected(parsed.error());
  }
  return stat;
}

Result<VmStat> read_vmstat(const HostRoot& root) {
  return read_parsed(root.proc("vmstat"), parse_vmstat);
}

}  // namespace mw::probes
