#include "engine/ready.hpp"

#include <thread>

#include <fmt/format.h>

#include "adapters/http.hpp"

namespace mw::engine {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t k_max_ready_answer_bytes = 64U << 10;

std::string exit_code_text(const ContainerMeta& meta) {
  return meta.state.exit_code ? std::to_string(*meta.state.exit_code) : "?";
}

}  // namespace

Expected<void, Error> wait_for_http(adapters::DockerClient& docker, const std::string& container_id,
                                    const std::string& url, const std::string& path, std::chrono::milliseconds limit) {
  auto endpoint = adapters::parse_endpoint(url, "ready check");
  if (!endpoint) {
    return unexpected(endpoint.error());
  }
  adapters::HttpClient http(*endpoint, std::chrono::seconds(2));
  const auto deadline = Clock::now() + limit;
  std::string last = "no answer yet";
  while (true) {
    auto r = http.get(path, adapters::RequestOptions::capped(k_max_ready_answer_bytes));
    if (r && r->status == 200) {
      return {};
    }
    last = r ? fmt::format("HTTP {}", r->status) : r.error().line();
    http.close();
    auto meta = docker.inspect(container_id);
    if (meta && !meta->state.running && meta->state.status != "restarting" && meta->state.status != "created") {
      return fail(url, fmt::format("the container stopped ({}, exit code {}) before its API answered",
                                   meta->state.status, exit_code_text(*meta)));
    }
    if (Clock::now() >= deadline) {
      return fail(url, fmt::format("no answer on {} within {} ms: {}", path, limit.count(), last));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

Expected<void, Error> wait_still_running(adapters::DockerClient& docker, const std::string& container_id,
                                         std::chrono::milliseconds settle) {
  auto before = docker.inspect(container_id);
  if (!before) {
    return unexpected(before.error());
  }
  std::this_thread::sleep_for(settle);
  auto after = docker.inspect(container_id);
  if (!after) {
    return unexpected(after.error());
  }
  if (!after->state.running || after->state.status != "running") {
    return fail(container_id.substr(0, 12), fmt::format("the container stopped ({}, exit code {}) within {} ms",
                                                        after->state.status, exit_code_text(*after), settle.count()));
  }
  if (after->restart_count != before->restart_count || after->state.started_at != before->state.started_at) {
    return fail(container_id.substr(0, 12),
                fmt::format("the container was restarted {} times within {} ms (last exit code {})",
                            after->restart_count - before->restart_count, settle.count(), exit_code_text(*after)));
  }
  return {};
}

}  // namespace mw::engine
