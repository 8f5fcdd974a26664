#include "engine/ram_test.hpp"

#include <cerrno>
#include <fstream>
#include <iterator>

#include <fmt/format.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include "adapters/docker.hpp"
#include "core/tar.hpp"
#include "probes/host_memory.hpp"

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

std::string create_body(const std::string& image, std::uint64_t size, const SafetyFloor& floor) {
  const auto limit = static_cast<std::int64_t>(size + k_ram_test_margin);
  return nlohmann::json{
      {"Image", image},
      {"Cmd",
       {"/memwarden-alloc", std::to_string(size), "--reserve", std::to_string(floor.reserve), "--psi-full-max",
        fmt::format("{}", floor.psi_full_max)}},
      {"Labels", {{"memwarden.test", "ram"}}},
      {"HostConfig", {{"Memory", limit}, {"MemorySwap", limit}, {"NetworkMode", "none"}, {"OomScoreAdj", 1000}}}}
      .dump();
}

void read_report(const std::string& text, RamTestRun& run) {
  const auto last = text.find_last_of('{');
  auto doc = nlohmann::json::parse(last == std::string::npos ? text : text.substr(last), nullptr, false);
  if (!doc.is_object() || !doc.contains("stop") || !doc["stop"].is_string() || !doc.contains("reached") ||
      !doc["reached"].is_number_unsigned()) {
    run.error = "the helper printed no report" + (run.oom_killed ? std::string(": it was OOM-killed") : "");
    return;
  }
  run.stop = doc["stop"].get<std::string>();
  run.reached = doc["reached"].get<std::uint64_t>();
  run.seconds = doc.value("seconds", 0.0);
  if (doc.contains("min_available") && doc["min_available"].is_number_unsigned()) {
    run.min_available = doc["min_available"].get<std::uint64_t>();
  }
  if (doc.contains("swap_in_pages") && doc["swap_in_pages"].is_number_unsigned()) {
    run.swap_in_pages = doc["swap_in_pages"].get<std::uint64_t>();
  }
  if (doc.contains("psi_full_peak") && doc["psi_full_peak"].is_number()) {
    run.psi_full_peak = doc["psi_full_peak"].get<double>();
  }
}

}  // namespace

std::optional<double> RamTestRun::gb_per_s() const {
  if (seconds <= 0 || reached == 0) {
    return std::nullopt;
  }
  return static_cast<double>(reached) / 1e9 / seconds;
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
    any = any || !run.refused;
    result.runs.push_back(std::move(run));
  }
  if (!any) {
    return result;  // nothing to run: the engine is not even asked
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
  int index = 0;
  for (auto& run : result.runs) {
    if (run.refused) {
      continue;
    }
    if (options.stop != nullptr && options.stop->load()) {
      run.error = "interrupted before it began";
      continue;
    }
    const std::string name = fmt::format("memwarden-test-ram-{}-{}", getpid(), index++);
    auto id = docker->create_container(name, create_body(*image, run.size, options.floor));
    if (!id) {
      run.error = id.error().line();
      continue;
    }
    if (auto ok = docker->start(*id); !ok) {
      run.error = ok.error().line();
    } else {
      // Wait in short steps, so that Ctrl-C is seen: the helper gets SIGTERM, frees and reports.
      const auto deadline = std::chrono::steady_clock::now() + options.per_size_limit;
      bool stopping = false;
      while (true) {
        auto code = docker->wait(*id, std::chrono::seconds(1));
        if (code) {
          break;
        }
        if (code.error().code != ETIMEDOUT) {
          run.error = code.error().line();
          break;
        }
        const bool interrupted = options.stop != nullptr && options.stop->load();
        if ((interrupted || std::chrono::steady_clock::now() >= deadline) && !stopping) {
          stopping = true;
          (void)docker->stop(*id, std::chrono::seconds(10));
        }
      }
      if (auto meta = docker->inspect(*id)) {
        run.oom_killed = meta->state.oom_killed;
      }
      if (!run.error) {
        auto log = docker->stdout_log(*id, k_max_report_bytes);
        if (log) {
          read_report(*log, run);
        } else {
          run.error = log.error().line();
        }
      }
    }
    (void)docker->remove(*id);  // always: a test leaves nothing behind
  }
  return result;
}

}  // namespace mw::engine
