#include "probes/processes.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <limits>
#include <optional>

#include "core/bytes.hpp"

namespace mw::probes {

namespace fs = std::filesystem;

namespace {

// The kernel keeps this many characters of a task's name (TASK_COMM_LEN - 1).
constexpr std::size_t k_comm_length = 15;
// Deeper cgroup trees than this are not walked (a guard, not a real limit).
constexpr int k_max_cgroup_depth = 32;
// What is read of a process's command line (its first arguments are what matters) and environment.
constexpr std::size_t k_max_cmdline_bytes = 4096;
constexpr std::size_t k_max_environ_bytes = 1U << 20;

using SizeField = std::optional<std::uint64_t> ProcessInfo::*;
constexpr std::pair<std::string_view, SizeField> k_status_sizes[] = {
    {"VmRSS", &ProcessInfo::rss_bytes},
    {"RssAnon", &ProcessInfo::rss_anon_bytes},
    {"RssFile", &ProcessInfo::rss_file_bytes},
    {"RssShmem", &ProcessInfo::rss_shmem_bytes},
};

// "1756 kB" -> bytes.
std::optional<std::uint64_t> parse_kb(std::string_view value) {
  if (!value.ends_with("kB")) {
    return std::nullopt;
  }
  const auto number = parse_u64(trim(value.substr(0, value.size() - 2)));
  if (!number || *number > std::numeric_limits<std::uint64_t>::max() / k_kib) {
    return std::nullopt;
  }
  return *number * k_kib;
}

std::optional<std::int64_t> parse_pid(std::string_view text) {
  const auto value = parse_i64(text);
  if (!value || *value < 0) {
    return std::nullopt;
  }
  return value;
}

// ENOENT: the /proc/<pid> directory is gone; ESRCH: the task exited while its file was open.
bool vanished(const Error& error) {
  return error.code == ENOENT || error.code == ESRCH;
}

std::string_view strip_newline(std::string_view text) {
  if (!text.empty() && text.back() == '\n') {
    text.remove_suffix(1);
  }
  return text;
}

Expected<void, Error> collect_cgroup_pids(const fs::path& dir, int depth, std::vector<std::int64_t>& out) {
  const auto procs = dir / "cgroup.procs";
  auto text = read_file(procs);
  if (!text) {
    return unexpected(text.error());
  }
  auto pids = parse_cgroup_procs(*text, procs.string());
  if (!pids) {
    return unexpected(pids.error());
  }
  out.insert(out.end(), pids->begin(), pids->end());
  if (depth >= k_max_cgroup_depth) {
    return {};
  }
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code status_ec;
    if (it->symlink_status(status_ec).type() != fs::file_type::directory || status_ec) {
      continue;
    }
    if (auto child = collect_cgroup_pids(it->path(), depth + 1, out); !child) {
      if (vanished(child.error())) {
        continue;  // the child cgroup was removed while we read it
      }
      return child;
    }
  }
  if (ec && ec.value() != ENOENT) {
    return fail(dir.string(), ec.message(), ec.value());
  }
  return {};
}

}  // namespace

Result<ProcessInfo> parse_proc_status(std::string_view text, std::string_view source) {
  ProcessInfo info;
  bool has_name = false;
  int line_no = 0;
  std::optional<Error> error;
  for_each_line(text, [&](std::string_view line) {
    ++line_no;
    if (error || trim(line).empty()) {
      return;
    }
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      error = Error{std::string(source),
                    fmt::format("line {}: expected 'Key: value', got '{}'", line_no, line.substr(0, 60))};
      return;
    }
    const auto key = line.substr(0, colon);
    const auto value = trim(line.substr(colon + 1));
    const auto bad = [&](std::string_view expected) {
      error = Error{std::string(source),
                    fmt::format("line {}: {}: expected {}, got '{}'", line_no, key, expected, value.substr(0, 60))};
    };
    if (key == "Name") {
      // "Name:\t<comm>": keep the name as is apart from the tab the kernel puts before it.
      auto name = line.substr(colon + 1);
      if (!name.empty() && name.front() == '\t') {
        name.remove_prefix(1);
      }
      info.comm = std::string(strip_newline(name));
      has_name = true;
      return;
    }
    if (key == "Pid" || key == "PPid") {
      const auto pid = parse_pid(value);
      if (!pid) {
        bad("a process id");
        return;
      }
      if (key == "Pid") {
        info.pid = *pid;
      } else {
        info.ppid = pid;
      }
      return;
    }
    for (const auto& [name, member] : k_status_sizes) {
      if (key == name) {
        const auto bytes = parse_kb(value);
        if (!bytes) {
          bad("a size like '123 kB'");
          return;
        }
        info.*member = bytes;
        return;
      }
    }
  });
  if (error) {
    return unexpected(*error);
  }
  if (!has_name) {
    return fail(std::string(source), "no Name line: not a /proc/<pid>/status file");
  }
  return info;
}

std::vector<std::string> parse_cmdline(std::string_view text) {
  std::vector<std::string> argv;
  if (text.empty()) {
    return argv;
  }
  if (text.back() == '\0') {
    text.remove_suffix(1);
  }
  for (;;) {
    const auto nul = text.find('\0');
    argv.emplace_back(text.substr(0, nul));
    if (nul == std::string_view::npos) {
      break;
    }
    text.remove_prefix(nul + 1);
  }
  return argv;
}

Result<ProcessInfo> read_process(const HostRoot& root, std::int64_t pid) {
  const auto dir = root.proc(std::to_string(pid));
  if (pid <= 0) {
    return fail(dir.string(), fmt::format("{} is not a process id", pid), ENOENT);
  }
  const auto gone = [&] { return fail(dir.string(), fmt::format("no process {} (it has exited)", pid), ENOENT); };

  const auto status_path = dir / "status";
  auto status = read_file(status_path);
  if (!status) {
    return vanished(status.error()) ? gone() : unexpected(status.error());
  }
  if (status->empty()) {
    return gone();
  }
  auto info = parse_proc_status(*status, status_path.string());
  if (!info) {
    return unexpected(info.error());
  }
  info->pid = pid;

  auto comm = read_file(dir / "comm");
  if (!comm) {
    return vanished(comm.error()) ? gone() : unexpected(comm.error());
  }
  info->comm = std::string(strip_newline(*comm));

  auto cmdline = read_file(dir / "cmdline", k_max_cmdline_bytes, Overflow::truncate);
  if (!cmdline) {
    return vanished(cmdline.error()) ? gone() : unexpected(cmdline.error());
  }
  info->argv = parse_cmdline(*cmdline);
  bound_argv(info->argv);
  return info;
}

std::optional<std::string> parse_environ_value(std::string_view environ, std::string_view name) {
  if (name.empty()) {
    return std::nullopt;
  }
  while (!environ.empty()) {
    const auto nul = environ.find('\0');
    const auto entry = environ.substr(0, nul);
    if (entry.size() > name.size() && entry.starts_with(name) && entry[name.size()] == '=') {
      return std::string(entry.substr(name.size() + 1));
    }
    if (nul == std::string_view::npos) {
      break;
    }
    environ.remove_prefix(nul + 1);
  }
  return std::nullopt;
}

Result<std::optional<std::string>> read_environ_value(const HostRoot& root, std::int64_t pid, std::string_view name) {
  const auto dir = root.proc(std::to_string(pid));
  if (pid <= 0) {
    return fail(dir.string(), fmt::format("{} is not a process id", pid), ENOENT);
  }
  auto text = read_file(dir / "environ", k_max_environ_bytes, Overflow::truncate);
  if (!text) {
    if (vanished(text.error())) {
      return fail(dir.string(), fmt::format("no process {} (it has exited)", pid), ENOENT);
    }
    return unexpected(text.error());
  }
  return parse_environ_value(*text, name);
}

Result<std::vector<std::int64_t>> parse_cgroup_procs(std::string_view text, std::string_view source) {
  std::vector<std::int64_t> pids;
  int line_no = 0;
  std::optional<Error> error;
  for_each_line(text, [&](std::string_view line) {
    ++line_no;
    line = trim(line);
    if (error || line.empty()) {
      return;
    }
    const auto pid = parse_pid(line);
    if (!pid) {
      error = Error{std::string(source), fmt::format("line {}: expected a pid, got '{}'", line_no, line.substr(0, 60))};
      return;
    }
    if (*pid > 0) {
      pids.push_back(*pid);
    }
  });
  if (error) {
    return unexpected(*error);
  }
  std::sort(pids.begin(), pids.end());
  pids.erase(std::unique(pids.begin(), pids.end()), pids.end());
  return pids;
}

Result<std::vector<std::int64_t>> read_cgroup_pids(const CgroupLayout& layout, const CgroupLocation& where) {
  std::vector<std::int64_t> pids;
  const auto dir = where.memory_path.empty() ? layout.memory_root : layout.memory_root / where.memory_path;
  if (auto ok = collect_cgroup_pids(dir, 0, pids); !ok) {
    return unexpected(ok.error());
  }
  std::sort(pids.begin(), pids.end());
  pids.erase(std::unique(pids.begin(), pids.end()), pids.end());
  return pids;
}

Result<std::vector<std::int64_t>> find_processes_by_comm(const HostRoot& root, std::string_view comm) {
  const auto proc = root.root() / "proc";
  std::vector<std::int64_t> pids;
  const auto wanted = comm.substr(0, k_comm_length);
  std::string buffer;
  std::error_code ec;
  fs::directory_iterator it(proc, ec);
  if (ec) {
    return fail(proc.string(), ec.message(), ec.value());
  }
  for (const fs::directory_iterator end; !ec && it != end; it.increment(ec)) {
    const auto name = it->path().filename().string();
    const bool digits =
        !name.empty() && std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!digits || wanted.empty()) {
      continue;
    }
    if (!read_file_into(it->path() / "comm", buffer)) {
      continue;  // exited while we scanned (or unreadable): not a match we can vouch for
    }
    if (strip_newline(buffer) != wanted) {
      continue;
    }
    if (const auto pid = parse_pid(name); pid && *pid > 0) {
      pids.push_back(*pid);
    }
  }
  if (ec) {
    return fail(proc.string(), ec.message(), ec.value());
  }
  std::sort(pids.begin(), pids.end());
  return pids;
}

}  // namespace mw::probes
