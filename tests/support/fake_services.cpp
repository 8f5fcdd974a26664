#include "fake_services.hpp"

namespace mw::test {

using nlohmann::json;

json inspect_like(const std::string& id, const std::string& name, std::int64_t pid, std::int64_t memory,
                  const std::string& api_url, const json& extra_labels) {
  auto doc = json::parse(read_fixture("docker/inspect-unlimited.json"));
  doc["Id"] = id;
  doc["Name"] = "/" + name;
  doc["Config"]["Image"] = "ollama/ollama:0.6.4";
  doc["Config"]["Labels"] = {{"memwarden.ollama.url", api_url}};
  for (const auto& [k, v] : extra_labels.items()) {
    doc["Config"]["Labels"][k] = v;
  }
  doc["State"]["Pid"] = pid;
  doc["HostConfig"]["Memory"] = memory;
  return doc;
}

FakeEngine::FakeEngine(const std::filesystem::path& socket, std::vector<json> containers)
    : m_containers(std::move(containers)),
      m_server(socket, [this](const std::string& method, const std::string& path) { return reply(method, path); }) {}

std::vector<std::string> FakeEngine::posts() const {
  std::lock_guard lock(m_mutex);
  return m_posts;
}

FakeHttpServer::Reply FakeEngine::reply(const std::string& method, const std::string& path) {
  if (method == "POST") {
    std::lock_guard lock(m_mutex);
    m_posts.push_back(path);
    return {restart_status, restart_status == 204 ? "" : R"({"message":"No such container"})"};
  }
  if (path == "/version") {
    return {200, read_fixture("docker/version-20.10.json")};
  }
  if (path.starts_with("/v1.41/containers/json")) {
    json list = json::array();
    for (const auto& c : m_containers) {
      list.push_back({{"Id", c["Id"]}, {"Names", {c["Name"]}}, {"Image", c["Config"]["Image"]}, {"State", "running"}});
    }
    return {200, list.dump()};
  }
  for (const auto& c : m_containers) {
    if (path == "/v1.41/containers/" + c["Id"].get<std::string>() + "/json") {
      return {200, c.dump()};
    }
  }
  return {404, R"({"message":"No such container"})"};
}

FakeOllama::FakeOllama(const std::filesystem::path& socket)
    : m_server(socket, [this](const std::string& method, const std::string& path) -> FakeHttpServer::Reply {
        std::lock_guard lock(m_mutex);
        m_requests.push_back(method + " " + path);
        if (path == "/api/version") {
          return {200, R"({"version":"0.6.4"})"};
        }
        if (path == "/api/ps") {
          return {200, m_ps};
        }
        if (path == "/api/generate" && method == "POST") {
          return {200, R"({"model":"m","response":"","done":true,"done_reason":"unload"})"};
        }
        return {404, R"({"error":"not found"})"};
      }) {}

void FakeOllama::set_ps(std::string body) {
  std::lock_guard lock(m_mutex);
  m_ps = std::move(body);
}

std::vector<std::string> FakeOllama::requests() const {
  std::lock_guard lock(m_mutex);
  return m_requests;
}

}  // namespace mw::test
