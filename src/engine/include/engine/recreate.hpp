// Recreating a container with a change (its environment, its memory limit): the rollback-safe re-deploy of
// deploy.cpp made general. The old container steps aside (stopped, renamed NAME-old-<8 hex of its id>) until
// the new one, made from the old one's inspect answer (adapters::recreate_body), is ready; then it is removed.
// Any failure after the rename undoes what was done: the new container removed, the old one back under its
// name, started again if it ran.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "adapters/docker.hpp"
#include "core/error.hpp"

namespace mw::engine {

using adapters::RecreateChange;

// One step: "stop", "rename", "create", "start", "wait", "remove_old", "rollback".
struct RecreateStep {
  std::string name;
  std::string detail;
  bool ok = false;
};

struct RecreateOptions {
  std::chrono::seconds stop_timeout{30};
  std::chrono::milliseconds ready_wait{std::chrono::seconds(120)};
  // "": ready once running (checked after a short settle: still running, not restarted); else ready when
  // GET api_url + api_path answers 200 within ready_wait.
  std::string api_url;
  std::string api_path = "/api/version";
  // Called as each step ends (the caller journals).
  std::function<void(const RecreateStep&)> on_step;
};

struct RecreateReport {
  std::string name;
  std::string old_id;
  std::string new_id;
  std::vector<RecreateStep> steps;  // remove_old may have failed: the old one is then left as NAME-old-...
};

struct RecreateFailure {
  std::string message;
  std::vector<std::string> lines;  // exactly what state is left
  std::vector<RecreateStep> steps;
  // The old container is as it was: nothing was changed, or the roll-back brought it back.
  bool restored = false;
};

// How long the settle check of a recreate without api_url waits: the lesser of this and ready_wait.
inline constexpr std::chrono::milliseconds k_recreate_settle{2000};

// inspect, build the body (nothing is changed if either fails), stop the old one if it runs, rename it
// NAME-old-<8 hex>, create NAME, start it if the old one ran, wait until it is ready, remove the old one.
// A container removed when it stops (AutoRemove, docker run --rm) is refused: its roll-back would be lost.
[[nodiscard]] Expected<RecreateReport, RecreateFailure> recreate_container(adapters::DockerClient& docker,
                                                                           const std::string& id_or_name,
                                                                           const RecreateChange& change,
                                                                           const RecreateOptions& options);

}  // namespace mw::engine
