#include "probes/cgroup.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/magic.h>
#include <sys/resource.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <system_error>

#include "core/bytes.hpp"
#include "probes/host_memory.hpp"

namespace mw::probes {

namespace fs = std::filesystem;

const char* to_string(CgroupMode mode) {
  switch (mode) {
    case CgroupMode::v1:
      return "v1";
    case CgroupMode::hybrid:
      return "hybrid";
    case CgroupMode::v2:
      return "v2";
  }
  return "unknown";
}

namespace {

// How many cgroup file descriptors the process may keep open: half the soft RLIMIT_NOFILE, at most 8192.
std::size_t kept_fd_budget() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) {
    return 0;
  }
  return static_cast<std::size_t>(std::min<rlim_t>(limit.rlim_cur / 2, 8192));
}

std::atomic<std::size_t> g_kept_fds{0};

// Takes one of the process's kept descriptors; false when none is left.
bool take_kept_fd() {
  static const std::size_t budget = kept_fd_budget();
  if (g_kept_fds.fetch_add(1) < budget) {
    return true;
  }
  g_kept_fds.fetch_sub(1);
  return false;
}

void give_back_kept_fd(int fd) {
  ::close(fd);
  g_kept_fds.fetch_sub(1);
}

bool on_cgroup_fs(int fd) {
  struct statfs st {};
  return ::fstatfs(fd, &st) == 0 && (st.f_type == CGROUP_SUPER_MAGIC || st.f_type == CGROUP2_SUPER_MAGIC);
}

}  // namespace

CgroupFiles::~CgroupFiles() {
  for (const auto& f : m_files) {
    if (f.fd >= 0) {
      give_back_kept_fd(f.fd);
    }
  }
}

std::size_t CgroupFiles::kept() const {
  std::lock_guard lock(m_mutex);
  return static_cast<std::size_t>(
      std::count_if(m_files.begin(), m_files.end(), [](const File& f) { return f.fd >= 0; }));
}

CgroupFiles::File* CgroupFiles::find(const fs::path& dir, std::string_view name) {
  const auto found = std::find_if(m_files.begin(), m_files.end(),
                                  [&](const File& f) { return f.name == name && f.dir == dir.native(); });
  return found == m_files.end() ? nullptr : &*found;
}

std::optional<Expected<void, Error>> CgroupFiles::reread(const fs::path& dir, std::string_view name,
                                                         std::string& buffer) {
  std::lock_guard lock(m_mutex);
  File* file = find(dir, name);
  if (file == nullptr || file->fd < 0) {
    return std::nullopt;
  }
  auto ok = reread_open_file(file->fd, dir / name, buffer);
  if (ok) {
    return ok;
  }
  // ENODEV: the cgroup was removed. Whatever it was, the caller opens the file afresh, as without a kept one.
  give_back_kept_fd(file->fd);
  file->fd = -1;
  return std::nullopt;
}

void CgroupFiles::offer(const fs::path& dir, std::string_view name, int fd) {
  std::lock_guard lock(m_mutex);
  File* file = find(dir, name);
  if (file == nullptr) {
    m_files.push_back({dir.native(), std::string(name), -1});  // read once: a one-off read keeps nothing
    ::close(fd);
    return;
  }
  if (file->fd >= 0 || m_not_cgroup_fs || (m_keep == Keep::on_cgroup_fs && !on_cgroup_fs(fd))) {
    m_not_cgroup_fs = m_not_cgroup_fs || file->fd < 0;
    ::close(fd);
    return;
  }
  if (!take_kept_fd()) {
    ::close(fd);
    return;
  }
  file->fd = fd;
}

namespace {

bool path_exists(const fs::path& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}

}  // namespace

Result<CgroupLayout> detect_cgroup_layout(const HostRoot& root) {
  const auto base = root.cgroup_fs();
  if (path_exists(base / "cgroup.controllers")) {
    return CgroupLayout{CgroupMode::v2, base, base};
  }
  if (path_exists(base / "memory" / "memory.usage_in_bytes") || path_exists(base / "memory" / "memory.stat")) {
    CgroupLayout layout{CgroupMode::v1, base / "memory", std::nullopt};
    if (path_exists(base / "unified" / "cgroup.controllers")) {
      layout.mode = CgroupMode::hybrid;
      layout.unified_root = base / "unified";
    }
    return layout;
  }
  return fail(base.string(), "no cgroup memory hierarchy (neither cgroup2 nor a v1 memory controller is mounted)");
}

Result<std::vector<ProcCgroupEntry>> parse_proc_cgroup(std::string_view text, std::string_view source) {
  std::vector<ProcCgroupEntry> entries;
  auto parsed = parse_lines(text, source, [&](std::string_view line) -> std::optional<std::string> {
    const auto first = line.find(':');
    const auto second = first == std::string_view::npos ? first : line.find(':', first + 1);
    if (second == std::string_view::npos || line.size() == second + 1 || line[second + 1] != '/') {
      return fmt::format("expected 'id:controllers:/path', got '{}'", line.substr(0, 80));
    }
    ProcCgroupEntry entry;
    entry.hierarchy_id = std::string(line.substr(0, first));
    auto controllers = line.substr(first + 1, second - first - 1);
    while (!controllers.empty()) {
      const auto comma = controllers.find(',');
      entry.controllers.emplace_back(controllers.substr(0, comma));
      if (comma == std::string_view::npos) {
        break;
      }
      controllers.remove_prefix(comma + 1);
    }
    entry.path = std::string(line.substr(second + 1));
    entries.push_back(std::move(entry));
    return std::nullopt;
  });
  if (!parsed) {
    return unexpected(parsed.error());
  }
  return entries;
}

namespace {

std::string strip_slash(std::string_view path) {
  while (!path.empty() && path.front() == '/') {
    path.remove_prefix(1);
  }
  return std::string(path);
}

}  // namespace

std::optional<CgroupLocation> location_from_entries(const std::vector<ProcCgroupEntry>& entries, CgroupMode mode) {
  std::optional<std::string> unified;
  std::optional<std::string> memory;
  for (const auto& e : entries) {
    if (e.hierarchy_id == "0" && e.controllers.empty()) {
      unified = strip_slash(e.path);
    }
    for (const auto& c : e.controllers) {
      if (c == "memory") {
        memory = strip_slash(e.path);
      }
    }
  }
  if (mode == CgroupMode::v2) {
    if (!unified) {
      return std::nullopt;
    }
    return CgroupLocation{*unified, unified};
  }
  if (!memory) {
    return std::nullopt;
  }
  return CgroupLocation{*memory, mode == CgroupMode::hybrid ? unified : std::nullopt};
}

std::optional<std::string> container_id_from_cgroup_path(std::string_view path) {
  const auto is_hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); };
  std::optional<std::string> found;
  std::size_t run = 0;
  for (std::size_t i = 0; i <= path.size(); ++i) {
    if (i < path.size() && is_hex(path[i])) {
      ++run;
      continue;
    }
    if (run == 64) {
      found = std::string(path.substr(i - 64, 64));  // the innermost id wins
    }
    run = 0;
  }
  return found;
}

Result<CgroupLocation> locate_container_cgroup(const HostRoot& root, const CgroupLayout& layout, std::int64_t pid,
                                               std::string_view container_id) {
  // The Docker drivers' paths by id first: a stat or two, where /proc/<pid>/cgroup costs a read that the kernel
  // builds by walking every hierarchy (the dearest file of a status run). They name the container's own cgroup,
  // also when its process sits in a cgroup below it (systemd in a container). /proc/<pid>/cgroup finds the rest
  // (--cgroup-parent, rootless Docker, other runtimes).
  const std::string id(container_id);
  const std::string candidates[] = {"docker/" + id, "system.slice/docker-" + id + ".scope"};
  for (const auto& candidate : candidates) {
    if (path_exists(layout.memory_root / candidate)) {
      CgroupLocation where{candidate, std::nullopt, std::make_shared<CgroupFiles>()};
      if (layout.unified_root && path_exists(*layout.unified_root / candidate)) {
        where.unified_path = candidate;
      }
      return where;
    }
  }
  if (pid > 0) {
    const auto path = root.proc(std::to_string(pid) + "/cgroup");
    if (auto text = read_file(path)) {
      if (auto entries = parse_proc_cgroup(*text, path.string())) {
        if (auto where = location_from_entries(*entries, layout.mode);
            where && !where->memory_path.empty() && path_exists(layout.memory_root / where->memory_path)) {
          where->files = std::make_shared<CgroupFiles>();
          return *where;
        }
      }
    }
  }
  return fail(layout.memory_root.string(),
              fmt::format("no memory cgroup for container {} (tried /proc/{}/cgroup, docker/<id> and "
                          "system.slice/docker-<id>.scope)",
                          container_id.substr(0, 12), pid),
              ENOENT);
}

Result<FlatKeyed> parse_flat_keyed(std::string_view text, std::string_view source) {
  FlatKeyed fields;
  fields.reserve(64);
  auto parsed = parse_lines(text, source, [&](std::string_view line) -> std::optional<std::string> {
    const auto space = line.find(' ');
    const auto value = space == std::string_view::npos ? std::nullopt : parse_u64(trim(line.substr(space + 1)));
    if (!value || space == 0) {
      return fmt::format("expected 'name number', got '{}'", line.substr(0, 60));
    }
    fields.emplace_back(line.substr(0, space), *value);
    return std::nullopt;
  });
  if (!parsed) {
    return unexpected(parsed.error());
  }
  return fields;
}

std::optional<std::uint64_t> find_key(const FlatKeyed& fields, std::string_view key) {
  for (const auto& [k, v] : fields) {
    if (k == key) {
      return v;
    }
  }
  return std::nullopt;
}

Result<std::uint64_t> parse_single_u64(std::string_view text, std::string_view source) {
  const auto value = parse_u64(trim(text.substr(0, text.find('\n'))));
  if (!value) {
    return fail(std::string(source), fmt::format("expected a number, got '{}'", trim(text.substr(0, 40))));
  }
  return *value;
}

Result<MemoryLimit> parse_v2_limit(std::string_view text, std::string_view source) {
  const auto value = trim(text.substr(0, text.find('\n')));
  if (value == "max") {
    return MemoryLimit::unlimited();
  }
  auto bytes = parse_single_u64(value, source);
  if (!bytes) {
    return fail(std::string(source), fmt::format("expected 'max' or a number, got '{}'", value.substr(0, 40)));
  }
  return MemoryLimit::of(*bytes);
}

Result<MemoryLimit> parse_v1_limit(std::string_view text, std::string_view source) {
  auto bytes = parse_single_u64(text, source);
  if (!bytes) {
    return unexpected(bytes.error());
  }
  // PAGE_COUNTER_MAX is LONG_MAX / PAGE_SIZE pages; any value that large means "no limit".
  if (*bytes >= (1ULL << 62)) {
    return MemoryLimit::unlimited();
  }
  return MemoryLimit::of(*bytes);
}

namespace {

// Reads the cgroup's files through one reused buffer. Missing optional files
// stay unknown; malformed ones are recorded in `problems`.
class CgroupReader {
 public:
  CgroupReader(fs::path dir, CgroupFiles* files, std::vector<Error>& problems)
      : m_dir(std::move(dir)), m_files(files), m_problems(problems) {}
  ~CgroupReader() {
    for (const auto& [dir, fd] : m_dirs) {
      ::close(fd);
    }
  }
  CgroupReader(const CgroupReader&) = delete;
  CgroupReader& operator=(const CgroupReader&) = delete;

  // The whole file `name` in `dir`: through its kept descriptor when there is one, else opened relative to the
  // directory (one path walk for all the files of a cgroup instead of one each), and offered to be kept.
  Expected<void, Error> read(const fs::path& dir, const char* name, std::string& buffer) {
    if (m_files != nullptr) {
      if (auto kept = m_files->reread(dir, name, buffer)) {
        return *kept;
      }
    }
    const int dir_fd = directory(dir);
    const int fd =
        dir_fd >= 0 ? ::openat(dir_fd, name, O_RDONLY | O_CLOEXEC) : ::open((dir / name).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      const int err = errno;
      buffer.clear();
      return fail((dir / name).string(), std::strerror(err), err);
    }
    auto ok = read_open_file(fd, dir / name, buffer);
    if (ok && m_files != nullptr) {
      m_files->offer(dir, name, fd);
    } else {
      ::close(fd);
    }
    return ok;
  }

  // nullopt when the file is absent (this kernel does not have it); problems get anything else.
  const std::string* optional_file(const char* name) {
    auto ok = read(m_dir, name, m_buffer);
    if (!ok) {
      if (ok.error().code != ENOENT) {
        m_problems.push_back(ok.error());
      }
      return nullptr;
    }
    return &m_buffer;
  }

  [[nodiscard]] std::string path(const char* name) const { return (m_dir / name).string(); }

  template <class T>
  std::optional<T> keep(Result<T> parsed) {
    if (!parsed) {
      m_problems.push_back(parsed.error());
      return std::nullopt;
    }
    return std::move(parsed).value();
  }

  std::optional<std::uint64_t> number(const char* name) {
    const auto* text = optional_file(name);
    return text ? keep(parse_single_u64(*text, path(name))) : std::nullopt;
  }

  std::optional<FlatKeyed> flat(const char* name) {
    const auto* text = optional_file(name);
    return text ? keep(parse_flat_keyed(*text, path(name))) : std::nullopt;
  }

  std::optional<Pressure> pressure(const fs::path& dir) {
    auto ok = read(dir, "memory.pressure", m_buffer);
    if (!ok) {
      if (ok.error().code != ENOENT && ok.error().code != EOPNOTSUPP) {
        m_problems.push_back(ok.error());
      }
      return std::nullopt;
    }
    return keep(parse_pressure(m_buffer, (dir / "memory.pressure").string()));
  }

 private:
  // The cgroup directory's descriptor (O_PATH), opened on its first use and closed with the reader; -1 when it
  // cannot be opened (the files are then opened by their paths, which tells why).
  int directory(const fs::path& dir) {
    for (const auto& [path, fd] : m_dirs) {
      if (path == dir.native()) {
        return fd;
      }
    }
    const int fd = ::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
      m_dirs.emplace_back(dir.native(), fd);
    }
    return fd;
  }

  fs::path m_dir;
  CgroupFiles* m_files;
  std::vector<Error>& m_problems;
  std::string m_buffer;
  std::vector<std::pair<std::string, int>> m_dirs;
};

}  // namespace

Result<CgroupMemory> read_cgroup_memory(const CgroupLayout& layout, const CgroupLocation& where,
                                        std::vector<Error>& problems) {
  const auto dir = layout.memory_root / where.memory_path;
  CgroupReader reader(dir, where.files.get(), problems);
  CgroupMemory m;
  m.path = where.memory_path;
  const bool v2 = layout.mode == CgroupMode::v2;
  m.version = v2 ? CgroupVersion::v2 : CgroupVersion::v1;

  const char* usage_file = v2 ? "memory.current" : "memory.usage_in_bytes";
  {
    std::string text;
    auto ok = reader.read(dir, usage_file, text);
    if (!ok) {
      return unexpected(ok.error());  // ENOENT here means the cgroup is gone
    }
    auto usage = parse_single_u64(text, (dir / usage_file).string());
    if (!usage) {
      return unexpected(usage.error());
    }
    m.usage = *usage;
  }

  if (v2) {
    if (const auto* text = reader.optional_file("memory.max")) {
      m.limit = reader.keep(parse_v2_limit(*text, reader.path("memory.max")));
    }
    if (const auto stat = reader.flat("memory.stat")) {
      m.anon = find_key(*stat, "anon");
      m.file = find_key(*stat, "file");
      m.file_mapped = find_key(*stat, "file_mapped");
      m.shmem = find_key(*stat, "shmem");
      m.active_file = find_key(*stat, "active_file");
      m.inactive_file = find_key(*stat, "inactive_file");
    }
    m.swap = reader.number("memory.swap.current");
    m.peak = reader.number("memory.peak");
    if (const auto events = reader.flat("memory.events")) {
      m.limit_hits = find_key(*events, "max");
      m.oom_events = find_key(*events, "oom");
      m.oom_kills = find_key(*events, "oom_kill");
    }
    m.pressure = reader.pressure(dir);
  } else {
    if (const auto* text = reader.optional_file("memory.limit_in_bytes")) {
      m.limit = reader.keep(parse_v1_limit(*text, reader.path("memory.limit_in_bytes")));
    }
    if (const auto stat = reader.flat("memory.stat")) {
      // total_* are hierarchical (include child cgroups); fall back to the local keys.
      const auto pick = [&](std::string_view total, std::string_view local) {
        auto v = find_key(*stat, total);
        return v ? v : find_key(*stat, local);
      };
      m.anon = pick("total_rss", "rss");
      m.file = pick("total_cache", "cache");
      m.file_mapped = pick("total_mapped_file", "mapped_file");
      m.shmem = pick("total_shmem", "shmem");
      m.active_file = pick("total_active_file", "active_file");
      m.inactive_file = pick("total_inactive_file", "inactive_file");
      m.swap = pick("total_swap", "swap");  // present only with swap accounting
    }
    m.peak = reader.number("memory.max_usage_in_bytes");
    m.limit_hits = reader.number("memory.failcnt");
    if (const auto oom = reader.flat("memory.oom_control")) {
      m.oom_kills = find_key(*oom, "oom_kill");  // since Linux 4.13
    }
    if (layout.unified_root && where.unified_path) {
      m.pressure = reader.pressure(*layout.unified_root / *where.unified_path);
    }
  }
  return m;
}

}  // namespace mw::probes
