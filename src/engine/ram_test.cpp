#include "engine/ram_test.hpp"

#include <cerrno>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <thread>

#include <fmt/format.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include "actions/test_cgroup.hpp"
#include "adapters/docker.hpp"
#include "core/tar.hpp"
#include "core/test_cgroup.hpp"
#include "core/text.hpp"
#include "probes/host_memory.hpp"
#include "probes/test_cgroup.hpp"

namespace mw::engine {

namespace {

constexpr std::size_t k_max_helper_bytes = 32U << 20;
constexpr std::size_t k_max_report_bytes = 64U << 10;

// FNV-1a: names the image after the helper's bytes, so a new helper gets a new image.
std::uint64_t fnv1a(const std::string& bytes) {
  std::uint64_t h = 1469598103934665603ULL;
  for (const char c : bytes) {
    h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
  }
  return h;
}

Result<std::string> read_helper(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return fail(path,
                "cannot read memwarden's allocation helper (install memwarden-alloc beside memwarden, or "
                "name an image with --image)");
  }
  std::string bytes;
  bytes.resize(k_max_helper_bytes + 1);
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  bytes.resize(static_cast<std::size_t>(in.gcount()));
  if (bytes.size() > k_max_helper_bytes) {
    return fail(path, "larger than 32 MiB: not the allocation helper");
  }
  return bytes;
}

Result<std::string> ensure_image(adapters::DockerClient& docker, const RamTestOptions& o) {
  if (!o.image.empty()) {
    auto present = docker.image_present(o.image);
    if (!present) {
      return unexpected(present.error());
    }
    if (!*present) {
      return fail("--image", fmt::format("{} is not present; pull or build it first", o.image));
    }
    return o.image;
  }
  auto helper = read_helper(o.helper_path);
  if (!helper) {
    return unexpected(helper.error());
  }
  const std::string repo = "memwarden/alloc";
  const std::string tag = fmt::format("{:016x}", fnv1a(*helper));
  const std::string ref = repo + ":" + tag;
  auto present = docker.image_present(ref);
  if (!present) {
    return unexpected(present.error());
  }
  if (*present) {
    return ref;
  }
  const std::vector<TarEntry> entries{{TarEntry::Kind::directory, "tmp", 01777, ""},
                                      {TarEntry::Kind::file, "memwarden-alloc", 0755, std::move(*helper)}};
  auto tarball = ustar_archive(entries);
  if (!tarball) {
    return unexpected(tarball.error());
  }
  if (auto ok = docker.import_image(*tarball, repo, tag); !ok) {
    return unexpected(ok.error());
  }
  return ref;
}

// The helper's command line: argv, never a shell string.
std::vector<std::string> helper_argv(const std::string& helper, std::uint64_t size, const RamTestOptions& o) {
  std::vector<std::string> argv{helper,           std::to_string(size),
                                "--reserve",      std::to_string(o.floor.reserve),
                                "--psi-full-max", fmt::format("{}", o.floor.psi_full_max)};
  if (o.hold.count() > 0) {
    argv.insert(argv.end(), {"--hold-ms", std::to_string(o.hold.count())});
  }
  return argv;
}

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Who made the container and until when it can be in use: a later run removes it only when this memwarden is gone
// or the time is past (memwarden stops a size at its time limit and waits at most 40 s more).
nlohmann::json ownership_labels(const std::optional<TestOwner>& owner, const RamTestOptions& o) {
  nlohmann::json labels = {{k_ram_test_label, k_ram_test_label_value},
                           {k_ram_test_pid_label, std::to_string(getpid())}};
  const auto in_use_for =
      std::chrono::duration_cast<std::chrono::seconds>(o.per_size_limit + o.hold) + std::chrono::minutes(2);
  labels[k_ram_test_expires_label] = std::to_string(unix_now() + in_use_for.count());
  if (owner) {
    labels[k_ram_test_owner_label] = owner_label(*owner);
  }
  return labels;
}

std::string create_body(const std::string& image, std::uint64_t size, std::uint64_t container_limit,
                        const nlohmann::json& labels, const RamTestOptions& o) {
  const auto limit = static_cast<std::int64_t>(container_limit);
  return nlohmann::json{{"Image", image},
                        {"Cmd", helper_argv("/memwarden-alloc", size, o)},
                        {"Labels", labels},
                        {"HostConfig",
                         {{"Memory", limit},
                          {"MemorySwap", limit},
                          {"NetworkMode", "none"},
                          {"OomScoreAdj", 1000},
                          // The report is read back from the logs, whatever the daemon's default log driver.
                          {"LogConfig", {{"Type", "json-file"}, {"Config", nlohmann::json::object()}}}}}}
      .dump();
}

RamVerdict verdict_of(const std::string& stop) {
  if (stop == "reached") {
    return RamVerdict::passed;
  }
  if (stop == "unreadable") {
    return RamVerdict::source_missing;
  }
  if (stop == "interrupted") {
    return RamVerdict::interrupted;
  }
  return RamVerdict::not_possible;  // reserve, swap-in, swap-out, pressure, allocation-failed, oom-killed
}

void read_report(const std::string& text, RamTestRun& run) {
  const auto last = text.find_last_of('{');
  auto doc = nlohmann::json::parse(last == std::string::npos ? text : text.substr(last), nullptr, false);
  if (!doc.is_object() || !doc.contains("stop") || !doc["stop"].is_string() || !doc.contains("reached") ||
      !doc["reached"].is_number_unsigned()) {
    if (run.oom_killed) {
      run.stop = "oom-killed";  // killed inside its limit before it could report: not reached
      run.verdict = RamVerdict::not_possible;
    } else {
      run.error = "the helper printed no report";
    }
    return;
  }
  run.stop = run.oom_killed ? "oom-killed" : doc["stop"].get<std::string>();
  run.verdict = verdict_of(run.stop);
  run.reached = doc["reached"].get<std::uint64_t>();
  if (doc.contains("seconds") && doc["seconds"].is_number()) {
    run.seconds = doc["seconds"].get<double>();
  }
  if (doc.contains("swap_out_pages") && doc["swap_out_pages"].is_number_unsigned()) {
    run.swap_out_pages = doc["swap_out_pages"].get<std::uint64_t>();
  }
  if (doc.contains("min_available") && doc["min_available"].is_number_unsigned()) {
    run.min_available = doc["min_available"].get<std::uint64_t>();
  }
  if (doc.contains("swap_in_pages") && doc["swap_in_pages"].is_number_unsigned()) {
    run.swap_in_pages = doc["swap_in_pages"].get<std::uint64_t>();
  }
  if (doc.contains("psi_full_peak") && doc["psi_full_peak"].is_number()) {
    run.psi_full_peak = doc["psi_full_peak"].get<double>();
  }
  if (doc.contains("held_seconds") && doc["held_seconds"].is_number()) {
    run.held_seconds = doc["held_seconds"].get<double>();
  }
}

// After the helper ended: its report, or what memwarden knows without one. `stopped` when memwarden stopped it
// (Ctrl-C or the time limit: `timed_out`).
void finish_run(const std::string& output, bool stopped, bool timed_out, RamTestRun& run) {
  read_report(output, run);
  if (stopped && run.error && !run.reached) {
    run.error.reset();  // stopped before it could say anything (killed before its handler was set)
    run.stop = "interrupted";
    run.verdict = RamVerdict::interrupted;
  }
  if (timed_out && run.stop == "interrupted") {
    run.stop = "time-limit";
    run.verdict = RamVerdict::interrupted;
  }
}

// Starts the container, waits for it (in one-second steps, so that Ctrl-C and the time limit are seen: the
// container is stopped, the helper frees and reports), and reads its report. The caller removes it.
void run_one(adapters::DockerClient& docker, const std::string& id, const RamTestOptions& options, RamTestRun& run) {
  if (options.stop != nullptr && options.stop->load()) {
    run.verdict = RamVerdict::interrupted;
    run.error = "interrupted before it began";
    return;
  }
  if (auto ok = docker.start(id); !ok) {
    run.error = ok.error().line();
    return;
  }
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + options.per_size_limit + options.hold;
  std::optional<Clock::time_point> stopped_at;
  constexpr auto k_stop_grace = std::chrono::seconds(40);  // the stop's 10 s and the engine's answer
  bool timed_out = false;
  while (true) {
    const auto asked = Clock::now();
    auto code = docker.wait(id, std::chrono::seconds(1));
    if (code) {
      break;
    }
    if (code.error().code != ETIMEDOUT) {
      run.error = code.error().line();
      return;
    }
    const bool interrupted = options.stop != nullptr && options.stop->load();
    if (!stopped_at && (interrupted || Clock::now() >= deadline)) {
      timed_out = !interrupted;
      stopped_at = Clock::now();
      if (auto ok = docker.stop(id, std::chrono::seconds(10)); !ok) {
        run.error = "could not stop it: " + ok.error().line();
        return;
      }
    }
    if (stopped_at && Clock::now() >= *stopped_at + k_stop_grace) {
      run.error = "it did not exit after it was stopped";
      return;
    }
    // A wait that failed at once (a refused connection) must not spin.
    const auto spent = Clock::now() - asked;
    if (spent < std::chrono::seconds(1)) {
      std::this_thread::sleep_for(std::chrono::seconds(1) - spent);
    }
  }
  if (auto meta = docker.inspect(id)) {
    run.oom_killed = meta->state.oom_killed;
  }
  auto log = docker.stdout_log(id, k_max_report_bytes);
  if (!log) {
    run.error = log.error().line();
    return;
  }
  finish_run(*log, stopped_at.has_value(), timed_out, run);
}

// Containers of earlier runs (the ram-test label): one goes when the memwarden that made it is gone (an earlier
// boot, or no such process in this pid namespace now) or when it is past the time any memwarden keeps a size;
// others (a live memwarden's, or one whose memwarden cannot be told: another pid namespace, an older memwarden
// without the owner label) are left alone. Each is named in a note.
void clear_leftover_containers(adapters::DockerClient& docker, const probes::HostRoot& root,
                               const std::optional<TestOwner>& self, RamTestResult& result) {
  auto list = docker.list_containers(adapters::ListScope::all);
  if (!list) {
    result.notes.push_back("could not look for containers of earlier ram tests: " + list.error().line());
    return;
  }
  const auto now = unix_now();
  for (const auto& c : *list) {
    const auto label = c.labels.find(k_ram_test_label);
    if (label == c.labels.end() || label->second != k_ram_test_label_value) {
      continue;
    }
    auto owner_state_now = OwnerState::unknown;
    std::string who = "a memwarden that cannot be told";
    if (const auto o = c.labels.find(k_ram_test_owner_label); o != c.labels.end()) {
      if (const auto owner = parse_owner_label(o->second)) {
        owner_state_now = owner_state(*owner, self, probes::read_start_time(root, owner->pid));
        who = fmt::format("memwarden pid {}", owner->pid);
      }
    }
    bool expired = false;
    std::string until;
    if (const auto e = c.labels.find(k_ram_test_expires_label); e != c.labels.end()) {
      if (const auto at = parse_i64(e->second)) {
        expired = now > *at;
        until = fmt::format(" (in use at most until {} s from now)", *at > now ? *at - now : 0);
      }
    }
    if (leftover_action(owner_state_now, expired) == Leftover::leave) {
      result.notes.push_back(fmt::format("{} is a ram test of {}, {}: left alone{}", c.name,
                                         owner_state_now == OwnerState::alive ? who + ", still running" : who, c.state,
                                         until));
      continue;
    }
    const char* why = expired ? "past its time" : "its memwarden is gone";
    if (auto ok = docker.remove(c.id); !ok) {
      result.notes.push_back(fmt::format("{}, a ram-test container of {} ({}), could not be removed: {}", c.name, who,
                                         why, ok.error().line()));
    } else {
      result.notes.push_back(fmt::format("removed {}, a ram-test container of {} ({})", c.name, who, why));
    }
  }
}

// --no-docker: the helper as a child in the cgroup, waited for in 200 ms steps (Ctrl-C and the time limit send
// it SIGTERM: it frees and reports; SIGKILL 10 s later); the OOM kills are read from the cgroup afterwards.
void run_in_cgroup(const TestCgroupPlan& plan, const actions::TestCgroup& cgroup, const std::string& helper,
                   const RamTestOptions& options, RamTestRun& run) {
  auto child =
      actions::CgroupChild::spawn(cgroup.directory(), helper_argv(helper, run.size, options), k_max_report_bytes);
  if (!child) {
    run.error = child.error().line();
    return;
  }
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + options.per_size_limit + options.hold;
  constexpr auto k_kill_grace = std::chrono::seconds(10);
  std::optional<Clock::time_point> stopped_at;
  bool timed_out = false;
  bool killed = false;
  std::optional<actions::ChildExit> exit;
  while (!(exit = child->wait_for(std::chrono::milliseconds(200)))) {
    const bool interrupted = options.stop != nullptr && options.stop->load();
    if (!stopped_at && (interrupted || Clock::now() >= deadline)) {
      timed_out = !interrupted;
      stopped_at = Clock::now();
      child->signal(SIGTERM);
    }
    if (stopped_at && !killed && Clock::now() >= *stopped_at + k_kill_grace) {
      child->signal(SIGKILL);
      killed = true;
    }
  }
  auto evidence = probes::read_oom_evidence(plan);
  evidence.killed_by_sigkill = exit->signal == SIGKILL && !killed;
  run.oom_killed = cgroup_oom_killed(evidence);
  finish_run(child->output(), stopped_at.has_value(), timed_out, run);
  if (run.error && exit->signal) {
    run.error = fmt::format("the helper was ended by signal {} ({})", *exit->signal, *run.error);
  }
}

// A size not to run: refused before anything was asked, or Ctrl-C came before it began (so marked).
bool skip_run(const RamTestOptions& options, RamTestRun& run) {
  if (run.refused) {
    return true;
  }
  if (options.stop != nullptr && options.stop->load()) {
    run.verdict = RamVerdict::interrupted;
    run.error = "interrupted before it began";
    return true;
  }
  return false;
}

// Test cgroups of earlier runs beside where this one makes its own: only on a cgroup file system, only empty ones
// (the kernel refuses to remove a cgroup that holds a process, so a live test's is safe) and only those made more
// than a minute ago (a live memwarden puts its helper in its cgroup as soon as it has made it).
void clear_leftover_cgroups(const probes::HostRoot& root, const std::string& parent, RamTestResult& result) {
  if (!actions::on_cgroup_file_system(parent)) {
    return;
  }
  const auto now = std::filesystem::file_time_type::clock::now();
  for (const auto& found : probes::find_test_cgroups(root, parent)) {
    std::error_code ec;
    const auto made = std::filesystem::last_write_time(found.directory, ec);
    if (ec || now - made < std::chrono::minutes(1)) {
      continue;
    }
    if (auto ok = actions::remove_cgroup_directory(found.directory); !ok) {
      result.notes.push_back(ok.error().code == EBUSY
                                 ? fmt::format("{} holds processes (a test of memwarden pid {} still running?): "
                                               "left alone",
                                               found.directory, found.pid)
                                 : fmt::format("a test cgroup left by an earlier memwarden (pid {}) could not be "
                                               "removed: {}",
                                               found.pid, ok.error().line()));
    } else {
      result.notes.push_back(
          fmt::format("removed {}, a test cgroup left by an earlier memwarden (pid {})", found.directory, found.pid));
    }
  }
}

Expected<void, Error> run_all_in_cgroups(const RamTestOptions& options, RamTestResult& result) {
  std::error_code ec;
  const auto helper = std::filesystem::absolute(options.helper_path, ec).string();
  if (ec || !std::filesystem::is_regular_file(helper, ec)) {
    return fail(options.helper_path,
                "cannot find memwarden's allocation helper (install memwarden-alloc beside memwarden, or set "
                "$MEMWARDEN_ALLOC)",
                ENOENT);
  }
  auto facts = probes::read_test_cgroup_facts(options.root);
  if (!facts) {
    return unexpected(facts.error());
  }
  const auto pid = static_cast<std::int64_t>(getpid());
  auto where = plan_test_cgroup(*facts, 0, pid, 0);
  if (!where) {
    return unexpected(where.error());
  }
  clear_leftover_cgroups(options.root, where->parent, result);
  // Names carry a random number: a memwarden with the same pid in another pid namespace makes other ones.
  std::mt19937 random(std::random_device{}());
  int index = static_cast<int>(random() % 1000000000U);
  bool made_one = false;
  for (auto& run : result.runs) {
    if (skip_run(options, run)) {
      continue;
    }
    auto plan = plan_test_cgroup(*facts, run.container_limit, pid, index++);
    if (!plan) {
      return unexpected(plan.error());
    }
    auto cgroup = actions::TestCgroup::create(*plan);
    if (!cgroup) {
      if (!made_one) {
        return unexpected(cgroup.error());  // this host cannot make one: one line, exit 3
      }
      run.error = cgroup.error().line();
      continue;
    }
    made_one = true;
    run.cgroup = plan->directory;
    run_in_cgroup(*plan, *cgroup, helper, options, run);
    if (auto ok = cgroup->remove(); !ok) {  // always, after the child is reaped
      run.error = fmt::format("the test cgroup could not be removed: {}", ok.error().line());
    }
  }
  return {};
}

}  // namespace

std::optional<double> RamTestRun::gb_per_s() const {
  if (seconds <= 0 || !reached || *reached == 0) {
    return std::nullopt;
  }
  return static_cast<double>(*reached) / 1e9 / seconds;
}

Expected<RamTestResult, Error> run_ram_test(const RamTestOptions& options) {
  RamTestResult result;
  const auto meminfo = probes::read_meminfo(options.root);
  const std::optional<std::uint64_t> total = meminfo ? meminfo->mem_total : std::nullopt;
  bool any = false;
  for (const auto size : options.sizes) {
    RamTestRun run;
    run.size = size;
    run.refused = refuse_size(size, total, options.floor.reserve, "test ram");
    run.verdict = !total ? RamVerdict::source_missing : RamVerdict::not_possible;
    run.container_limit = options.container_limit.value_or(ram_test_limit(size));
    any = any || !run.refused;
    result.runs.push_back(std::move(run));
  }
  result.isolation = options.isolation;
  if (!any) {
    return result;  // nothing to run: the engine is not even asked
  }
  if (options.isolation == RamIsolation::cgroup) {
    if (auto ok = run_all_in_cgroups(options, result); !ok) {
      return unexpected(ok.error());
    }
    return result;
  }
  auto endpoint = adapters::parse_endpoint(options.docker_host, "--docker-host");
  if (!endpoint) {
    return unexpected(endpoint.error());
  }
  auto docker = adapters::DockerClient::connect(*endpoint, options.docker_timeout);
  if (!docker) {
    return unexpected(docker.error());
  }
  auto image = ensure_image(*docker, options);
  if (!image) {
    return unexpected(image.error());
  }
  result.image = *image;
  const auto self = probes::read_own_identity(options.root);
  clear_leftover_containers(*docker, options.root, self, result);
  int index = 0;
  for (auto& run : result.runs) {
    if (skip_run(options, run)) {
      continue;
    }
    const auto salt = static_cast<std::uint32_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    const std::string name = fmt::format("memwarden-test-ram-{}-{}-{:08x}", getpid(), index++, salt);
    auto id = docker->create_container(
        name, create_body(*image, run.size, run.container_limit, ownership_labels(self, options), options));
    if (!id) {
      run.error = id.error().line();
      continue;
    }
    run_one(*docker, *id, options, run);
    if (auto ok = docker->remove(*id); !ok) {  // always: a test leaves nothing behind
      run.error = fmt::format("the container {} could not be removed: {}", name, ok.error().line());
    }
  }
  return result;
}

}  // namespace mw::engine
