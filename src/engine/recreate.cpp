#include "engine/recreate.hpp"

#include <algorithm>
#include <cerrno>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "engine/ready.hpp"

namespace mw::engine {

namespace {

std::string short_id(const std::string& id) {
  return id.substr(0, 12);
}

// Whether the engine removes the container when it stops (docker run --rm).
bool auto_remove(const std::string& body) {
  const auto doc = nlohmann::json::parse(body, nullptr, false);
  if (!doc.is_object() || !doc.contains("HostConfig") || !doc["HostConfig"].is_object()) {
    return false;
  }
  const auto& host = doc["HostConfig"];
  return host.contains("AutoRemove") && host["AutoRemove"].is_boolean() && host["AutoRemove"].get<bool>();
}

}  // namespace

Expected<RecreateReport, RecreateFailure> recreate_container(adapters::DockerClient& docker,
                                                             const std::string& id_or_name,
                                                             const RecreateChange& change,
                                                             const RecreateOptions& options) {
  std::vector<RecreateStep> steps;
  auto step = [&](std::string name, std::string detail, bool ok) {
    steps.push_back(RecreateStep{std::move(name), std::move(detail), ok});
    if (options.on_step) {
      options.on_step(steps.back());
    }
  };
  // Before the first change: the container is as it was.
  auto untouched = [&](std::string message) {
    return RecreateFailure{std::move(message), {"  nothing was changed"}, steps, true};
  };

  auto raw = docker.inspect_raw(id_or_name);
  if (!raw) {
    return unexpected(untouched(fmt::format("recreate {}: {}", id_or_name, raw.error().line())));
  }
  const std::string source = fmt::format("{} (GET /containers/{}/json)", docker.endpoint().text, id_or_name);
  auto old = adapters::parse_container_inspect(*raw, source);
  if (!old) {
    return unexpected(untouched(fmt::format("recreate {}: {}", id_or_name, old.error().line())));
  }
  auto body = adapters::recreate_body(*raw, change, source);
  if (!body) {
    return unexpected(untouched(fmt::format("recreate {}: {}", id_or_name, body.error().line())));
  }
  const std::string name = old->name;
  const std::string old_id = old->id;
  const bool was_running = old->state.running;
  const std::string aside = fmt::format("{}-old-{}", name, old_id.substr(0, 8));
  if (auto_remove(*body)) {
    return unexpected(untouched(fmt::format(
        "recreate {}: the engine removes this container when it stops (docker run --rm): it could not be brought "
        "back if the new one failed",
        name)));
  }
  if (!adapters::valid_container_name(name) || !adapters::valid_container_name(aside)) {
    return unexpected(untouched(fmt::format(
        "recreate {}: the name is too long (or not a name) to set the old container aside as {}", name, aside)));
  }

  bool stopped = false;  // the old one was stopped by us
  bool renamed = false;  // the old one is (or may be) under `aside`
  bool create_answer_lost = false;
  std::string new_id;

  // Undoes what was done: the new container removed, the old one back under its name and started if it ran.
  auto roll_back = [&](const std::string& why) {
    RecreateFailure f{fmt::format("recreate {}: {}", name, why), {}, {}, false};
    if (new_id.empty() && create_answer_lost) {
      // The engine may have made the container before its answer was lost: one under the name that is not the
      // old one and has its labels is ours.
      if (auto made = docker.inspect(name); made && made->id != old_id && made->labels == old->labels) {
        new_id = made->id;
      }
    }
    if (!new_id.empty()) {
      auto ok = docker.remove(new_id);
      step("rollback",
           ok ? "removed the new container " + short_id(new_id)
              : "could not remove the new container " + short_id(new_id) + ": " + ok.error().line(),
           static_cast<bool>(ok));
      f.lines.push_back(
          ok ? fmt::format("  the new container {} is removed", short_id(new_id))
             : fmt::format("  the new container {} is left: docker rm -f {}", short_id(new_id), short_id(new_id)));
    }
    Expected<void, Error> back;
    if (renamed) {
      back = docker.rename(old_id, name);
      if (!back) {
        // A rename whose answer was lost may not have happened: the old one may still be under its name.
        if (auto now = docker.inspect(old_id); now && now->name == name) {
          back = {};
        }
      }
    }
    if (back && stopped) {
      back = docker.start(old_id);
    }
    if (renamed || stopped) {
      step("rollback",
           back ? fmt::format("the old {} is back", name) : "could not bring the old one back: " + back.error().line(),
           static_cast<bool>(back));
    }
    if (back) {
      f.restored = true;
      f.lines.push_back(fmt::format("  the old {} ({}) is back under its name, {}", name, short_id(old_id),
                                    was_running ? "running" : "stopped, as it was"));
    } else {
      f.lines.push_back(fmt::format("  the old container {} is left as {} (stopped): {}", short_id(old_id),
                                    renamed ? aside : name, back.error().line()));
      f.lines.push_back(
          renamed ? fmt::format("  to bring it back: docker rename {} {} && docker start {}", aside, name, name)
                  : fmt::format("  to bring it back: docker start {}", name));
    }
    f.steps = steps;
    return f;
  };

  if (was_running) {
    auto ok = docker.stop(old_id, options.stop_timeout);
    step("stop", ok ? fmt::format("{} ({})", name, short_id(old_id)) : ok.error().line(), static_cast<bool>(ok));
    stopped = true;  // a failed stop may have stopped it all the same: start it again (304 if it runs)
    if (!ok) {
      return unexpected(roll_back("could not stop the old container: " + ok.error().line()));
    }
  }
  {
    auto ok = docker.rename(old_id, aside);
    renamed = true;  // a rename whose answer was lost may have happened
    step("rename", ok ? fmt::format("{} -> {}", name, aside) : ok.error().line(), static_cast<bool>(ok));
    if (!ok) {
      return unexpected(roll_back("could not set the old container aside: " + ok.error().line()));
    }
  }

  auto made = docker.create_container(name, *body);
  step("create", made ? short_id(*made) : made.error().line(), static_cast<bool>(made));
  if (!made) {
    // An HTTP error is the engine's answer (nothing made); anything else may have lost it.
    create_answer_lost =
        made.error().code != EEXIST && made.error().code != ENOENT && made.error().message.rfind("HTTP ", 0) != 0;
    return unexpected(roll_back("create failed: " + made.error().line()));
  }
  new_id = *made;

  if (was_running) {
    if (auto ok = docker.start(new_id); !ok) {
      step("start", ok.error().line(), false);
      return unexpected(roll_back("start failed: " + ok.error().line()));
    }
    step("start", short_id(new_id), true);
    const auto settle = std::min(k_recreate_settle, options.ready_wait);
    auto ready = options.api_url.empty()
                     ? wait_still_running(docker, new_id, settle)
                     : wait_for_http(docker, new_id, options.api_url, options.api_path, options.ready_wait);
    step("wait",
         !ready                    ? ready.error().line()
         : options.api_url.empty() ? fmt::format("still running after {} ms", settle.count())
                                   : options.api_url + options.api_path + " answers",
         static_cast<bool>(ready));
    if (!ready) {
      return unexpected(roll_back("the new container did not become ready: " + ready.error().line()));
    }
  }

  auto removed = docker.remove(old_id);
  step("remove_old",
       removed
           ? fmt::format("{} ({})", aside, short_id(old_id))
           : fmt::format("{}; the old container is left as {}: docker rm -f {}", removed.error().line(), aside, aside),
       static_cast<bool>(removed));
  return RecreateReport{name, old_id, new_id, std::move(steps)};
}

}  // namespace mw::engine
