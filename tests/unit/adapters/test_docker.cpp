#include <fmt/format.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "adapters/docker.hpp"
#include "fake_services.hpp"
#include "recording_server.hpp"
#include "test_support.hpp"

using namespace mw;
using namespace mw::adapters;
using namespace std::chrono_literals;
using mw::test::FakeEngine;
using mw::test::FakeHttpServer;
using mw::test::TempDir;

TEST(DockerVersion, CapturedEngine) {
  const auto v = parse_version_response(test::read_fixture("docker/version-20.10.json"), "v");
  ASSERT_TRUE(v) << v.error().line();
  EXPECT_EQ(v->api, (ApiVersion{1, 41}));
  EXPECT_EQ(v->engine_version, "20.10.24+dfsg1");
}

TEST(DockerVersion, NegotiatesTheLowerMaximum) {
  EXPECT_EQ(negotiate_api_version({{1, 41}, "20.10"}, "v").value(), (ApiVersion{1, 41}));
  EXPECT_EQ(negotiate_api_version({{1, 51}, "28.3"}, "v").value(), k_client_max_api);
  EXPECT_EQ(negotiate_api_version({{1, 40}, "19.03"}, "v").value(), (ApiVersion{1, 40}));
  const auto old = negotiate_api_version({{1, 39}, "18.09.1"}, "docker");
  ASSERT_FALSE(old);
  EXPECT_EQ(old.error().line(),
            "docker: Docker Engine API 1.39 (engine 18.09.1) is too old: memwarden needs API 1.40 or newer "
            "(Docker 19.03+)");
  EXPECT_TRUE((ApiVersion{1, 9}) < (ApiVersion{1, 40})) << "compared as numbers, not text";
}

TEST(DockerVersion, TooOldWithoutAnEngineVersion) {
  const auto old = negotiate_api_version({{1, 39}, ""}, "docker");
  ASSERT_FALSE(old);
  EXPECT_EQ(old.error().line(),
            "docker: Docker Engine API 1.39 is too old: memwarden needs API 1.40 or newer (Docker 19.03+)");
}

TEST(DockerPing, HeadersGiveTheVersions) {
  const auto v = parse_ping_headers(200, "1.41", "Docker/20.10.24+dfsg1 (linux)");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->api, (ApiVersion{1, 41}));
  EXPECT_EQ(v->engine_version, "20.10.24+dfsg1");
  const auto bare = parse_ping_headers(200, "1.51", std::nullopt);
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->api, (ApiVersion{1, 51}));
  EXPECT_EQ(bare->engine_version, "");
  EXPECT_EQ(parse_ping_headers(204, "1.43", "Docker/24.0.7 (linux)")->engine_version, "24.0.7");
}

TEST(DockerPing, NoUsableVersionMeansAskVersion) {
  EXPECT_FALSE(parse_ping_headers(200, std::nullopt, "Docker/20.10.24 (linux)")) << "no Api-Version header";
  EXPECT_FALSE(parse_ping_headers(404, "1.41", std::nullopt)) << "not a 2xx";
  EXPECT_FALSE(parse_ping_headers(500, "1.41", std::nullopt));
  EXPECT_FALSE(parse_ping_headers(101, "1.41", std::nullopt));
  for (const char* bad : {"", "1", "1.", ".41", "one.41", "1.41.2", "1.41 ", "1.4x", "1.100000"}) {
    EXPECT_FALSE(parse_ping_headers(200, bad, std::nullopt)) << bad;
  }
}

TEST(DockerPing, EngineVersionFromTheServerHeader) {
  EXPECT_EQ(engine_version_from_server_header("Docker/20.10.24+dfsg1 (linux)"), "20.10.24+dfsg1");
  EXPECT_EQ(engine_version_from_server_header("Docker/28.2.2"), "28.2.2");
  EXPECT_EQ(engine_version_from_server_header("Docker/1.13.1~rc1_x-y (linux)"), "1.13.1~rc1_x-y");
  for (const std::string& bad :
       std::vector<std::string>{"", "Docker/", "Docker/ (linux)", "docker/20.10", "Libpod/4.3.1 (linux)", "nginx/1.25",
                                "Docker/20.10\x1b[31m", "Docker/" + std::string(65, '1')}) {
    EXPECT_EQ(engine_version_from_server_header(bad), "") << bad;
  }
  EXPECT_EQ(engine_version_from_server_header("Docker/" + std::string(64, '1')), std::string(64, '1'));
}

TEST(DockerVersion, BadResponses) {
  for (const char* body :
       {"", "<html>502</html>", "[]", R"({"ApiVersion": 1.41})", R"({"ApiVersion": "one"})", R"({"Version": "x"})"}) {
    const auto v = parse_version_response(body, "unix:///d.sock (GET /version)");
    ASSERT_FALSE(v) << body;
    EXPECT_EQ(v.error().source, "unix:///d.sock (GET /version)");
  }
}

TEST(DockerList, CapturedList) {
  const auto list = parse_container_list(test::read_fixture("docker/containers-list.json"), "l");
  ASSERT_TRUE(list) << list.error().line();
  ASSERT_EQ(list->size(), 2U);
  std::vector<std::string> names{(*list)[0].name, (*list)[1].name};
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"lim", "unl"}));
  EXPECT_EQ((*list)[0].id.size(), 64U);
  EXPECT_EQ((*list)[0].state, "running");
}

TEST(DockerList, WrongTypesNameTheField) {
  const auto list = parse_container_list(R"([{"Id":"abc","Names":"/x"}])", "l");
  ASSERT_FALSE(list);
  EXPECT_EQ(list.error().line(), "l: field [0].Names: expected an array");
  EXPECT_FALSE(parse_container_list(R"({"Id":"abc"})", "l"));
  EXPECT_FALSE(parse_container_list(R"([{"Names":["/x"]}])", "l")) << "no Id";
  EXPECT_FALSE(parse_container_list(R"([17])", "l"));
}

TEST(DockerInspect, CapturedLimitedContainer) {
  const auto m = parse_container_inspect(test::read_fixture("docker/inspect-limited.json"), "i");
  ASSERT_TRUE(m) << m.error().line();
  EXPECT_EQ(m->name, "lim");
  EXPECT_EQ(m->image, "mwtest/bb:1");
  EXPECT_EQ(m->memory_limit, 64ULL << 20);
  EXPECT_EQ(m->memory_swap, 128LL << 20);
  EXPECT_TRUE(m->state.running);
  EXPECT_EQ(m->state.status, "running");
  EXPECT_EQ(m->state.pid, 15798);
  EXPECT_FALSE(m->state.oom_killed);
  EXPECT_EQ(m->restart_policy.name, "no");
  EXPECT_EQ(m->restart_count, 0);
  EXPECT_FALSE(m->state.started_at.empty());
}

TEST(DockerInspect, CapturedUnlimitedContainer) {
  const auto m = parse_container_inspect(test::read_fixture("docker/inspect-unlimited.json"), "i");
  ASSERT_TRUE(m) << m.error().line();
  EXPECT_EQ(m->name, "unl");
  EXPECT_FALSE(m->memory_limit) << "Memory: 0 means no limit";
}

TEST(DockerInspect, GpuRequestsLabelsAndRestartPolicy) {
  auto doc = nlohmann::json::parse(test::read_fixture("docker/inspect-unlimited.json"));
  doc["HostConfig"]["DeviceRequests"] =
      nlohmann::json::parse(R"([{"Driver":"","Count":-1,"DeviceIDs":null,"Capabilities":[["gpu"]],"Options":{}}])");
  doc["HostConfig"]["RestartPolicy"] = {{"Name", "unless-stopped"}, {"MaximumRetryCount", 0}};
  doc["Config"]["Labels"] = {{"memwarden.enable", "true"}};
  doc["RestartCount"] = 4;
  doc["State"]["OOMKilled"] = true;
  doc["UnknownFutureField"] = {{"x", 1}};
  const auto m = parse_container_inspect(doc.dump(), "i");
  ASSERT_TRUE(m) << m.error().line();
  ASSERT_EQ(m->device_requests.size(), 1U);
  EXPECT_EQ(m->device_requests[0].count, -1);
  EXPECT_TRUE(m->device_requests[0].requests_gpu());
  EXPECT_EQ(m->restart_policy.name, "unless-stopped");
  EXPECT_EQ(m->labels.at("memwarden.enable"), "true");
  EXPECT_EQ(m->restart_count, 4);
  EXPECT_TRUE(m->state.oom_killed);
}

TEST(DockerInspect, WrongTypesAreErrorsNotZeros) {
  auto doc = nlohmann::json::parse(test::read_fixture("docker/inspect-limited.json"));
  doc["HostConfig"]["Memory"] = "64m";
  const auto m = parse_container_inspect(doc.dump(), "i");
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().line(), "i: field HostConfig.Memory: expected an integer");
  doc = nlohmann::json::parse(test::read_fixture("docker/inspect-limited.json"));
  doc["State"]["Pid"] = nlohmann::json::array();
  EXPECT_EQ(parse_container_inspect(doc.dump(), "i").error().line(), "i: field State.Pid: expected an integer");
  EXPECT_FALSE(parse_container_inspect("{\"Id\": \"x\"", "i")) << "truncated JSON";
  EXPECT_FALSE(parse_container_inspect("{}", "i")) << "no Id";
}

TEST(DockerHost, FlagThenEnvThenDefault) {
  EXPECT_EQ(docker_host_address("tcp://h:1", "unix:///e.sock"), "tcp://h:1");
  EXPECT_EQ(docker_host_address("", "unix:///e.sock"), "unix:///e.sock");
  EXPECT_EQ(docker_host_address("", ""), "unix:///var/run/docker.sock");
  EXPECT_EQ(docker_host_address("", nullptr), "unix:///var/run/docker.sock");
}

namespace {

// Serves the captured engine's answers under whatever API prefix the client negotiated.
FakeHttpServer::Reply captured_engine(const std::string& method, const std::string& path, std::string version_file) {
  if (method != "GET") {
    return {405, "{\"message\":\"method\"}"};
  }
  if (path == "/version") {
    return {200, test::read_fixture(version_file)};
  }
  if (path == "/v1.41/containers/json") {
    return {200, test::read_fixture("docker/containers-list.json")};
  }
  if (path.starts_with("/v1.41/containers/") && path.ends_with("/json")) {
    const auto id = path.substr(18, path.size() - 18 - 5);
    for (const char* f : {"docker/inspect-limited.json", "docker/inspect-unlimited.json"}) {
      const auto doc = nlohmann::json::parse(test::read_fixture(f));
      if (doc["Id"] == id || doc["Name"] == "/" + id) {
        return {200, doc.dump()};
      }
    }
    return {404, "{\"message\":\"No such container: " + id + "\"}"};
  }
  return {404, "{\"message\":\"page not found\"}"};
}

}  // namespace

TEST(DockerClient, ConnectsListsAndInspects) {
  TempDir dir;
  FakeHttpServer server(dir.path() / "d.sock", [](const std::string& m, const std::string& p) {
    return captured_engine(m, p, "docker/version-20.10.json");
  });
  auto client = DockerClient::connect(*parse_endpoint(server.address(), "t"), 2s);
  ASSERT_TRUE(client) << client.error().line();
  EXPECT_EQ(client->api_version().text(), "1.41");
  const auto list = client->list_containers(ListScope::running);
  ASSERT_TRUE(list) << list.error().line();
  EXPECT_EQ(list->size(), 2U);
  const auto lim = client->inspect("lim");
  ASSERT_TRUE(lim) << lim.error().line();
  EXPECT_EQ(lim->memory_limit, 64ULL << 20);
  const auto missing = client->inspect("nope");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ENOENT);
  EXPECT_NE(missing.error().message.find("HTTP 404: No such container: nope"), std::string::npos);
  const auto hostile = client->inspect("../../version?x=");
  ASSERT_FALSE(hostile);
  EXPECT_NE(hostile.error().message.find("is not a container id or name"), std::string::npos);
}

TEST(DockerClient, NegotiatesWithPingAlone) {
  TempDir dir;
  FakeEngine engine(dir.path() / "d.sock", {});
  auto client = DockerClient::connect(*parse_endpoint(engine.address(), "t"), 2s);
  ASSERT_TRUE(client) << client.error().line();
  EXPECT_EQ(client->api_version().text(), "1.41");
  EXPECT_EQ(client->engine_version(), "20.10.24+dfsg1");
  EXPECT_EQ(engine.requests(), (std::vector<std::string>{"GET /_ping"})) << "no GET /version (20-30 ms on 20.10)";
  ASSERT_TRUE(client->list_containers(ListScope::running));
  EXPECT_EQ(engine.requests().back(), "GET /v1.41/containers/json");
  EXPECT_EQ(engine.connections(), 1);
}

TEST(DockerClient, NewerEngineGetsTheClientsMaximum) {
  TempDir dir;
  FakeEngine engine(dir.path() / "d.sock", {});
  engine.set_api_version_header("1.51");
  auto client = DockerClient::connect(*parse_endpoint(engine.address(), "t"), 2s);
  ASSERT_TRUE(client) << client.error().line();
  EXPECT_EQ(client->api_version(), k_client_max_api);
  ASSERT_TRUE(client->list_containers(ListScope::all));
  EXPECT_EQ(engine.requests().back(), "GET /v" + k_client_max_api.text() + "/containers/json?all=1");
}

TEST(DockerClient, PingWithoutApiVersionFallsBackToVersion) {
  TempDir dir;
  FakeEngine engine(dir.path() / "d.sock", {});
  engine.set_api_version_header("");
  auto client = DockerClient::connect(*parse_endpoint(engine.address(), "t"), 2s);
  ASSERT_TRUE(client) << client.error().line();
  EXPECT_EQ(client->api_version().text(), "1.41");
  EXPECT_EQ(client->engine_version(), "20.10.24+dfsg1");
  EXPECT_EQ(engine.requests(), (std::vector<std::string>{"GET /_ping", "GET /version"}));
  EXPECT_EQ(engine.connections(), 1) << "on the same connection";
}

TEST(DockerClient, OldEngineSaysSoInItsPing) {
  TempDir dir;
  FakeEngine engine(dir.path() / "d.sock", {});
  engine.set_api_version_header("1.39");
  const auto ep = *parse_endpoint(engine.address(), "t");
  auto client = DockerClient::connect(ep, 2s);
  ASSERT_FALSE(client);
  EXPECT_EQ(client.error().line(),
            engine.address() +
                " (GET /_ping): Docker Engine API 1.39 (engine 20.10.24+dfsg1) is too old: memwarden needs API 1.40 "
                "or newer (Docker 19.03+)");
  EXPECT_EQ(docker_error_hint(client.error(), ep), "upgrade the Docker engine");
  EXPECT_EQ(engine.requests(), (std::vector<std::string>{"GET /_ping"}));
}

TEST(DockerClient, OldEngineWithoutPingHeaderGetsTheSameMessage) {
  TempDir dir;
  FakeEngine engine(dir.path() / "d.sock", {});
  engine.set_api_version_header("");
  engine.set_version_body(R"({"Version":"18.09.1","ApiVersion":"1.39","MinAPIVersion":"1.12"})");
  auto client = DockerClient::connect(*parse_endpoint(engine.address(), "t"), 2s);
  ASSERT_FALSE(client);
  EXPECT_NE(client.error().line().find("(GET /version): Docker Engine API 1.39 (engine 18.09.1) is too old"),
            std::string::npos)
      << client.error().line();
}

TEST(DockerClient, ConnectionErrorsOfThePingAreNotRetriedWithVersion) {
  TempDir dir;
  const auto ep = *parse_endpoint("unix://" + (dir.path() / "none.sock").string(), "t");
  auto client = DockerClient::connect(ep, 2s);
  ASSERT_FALSE(client);
  EXPECT_EQ(client.error().code, ENOENT);
  EXPECT_NE(client.error().line().find("(GET /_ping): no such socket"), std::string::npos) << client.error().line();
}

TEST(DockerClient, OldEngineGetsAClearMessage) {
  TempDir dir;
  FakeHttpServer server(dir.path() / "d.sock", [](const std::string&, const std::string&) {
    return FakeHttpServer::Reply{200, R"({"Version":"18.09.1","ApiVersion":"1.39","MinAPIVersion":"1.12"})"};
  });
  const auto ep = *parse_endpoint(server.address(), "t");
  auto client = DockerClient::connect(ep, 2s);
  ASSERT_FALSE(client);
  EXPECT_NE(client.error().message.find("API 1.39 (engine 18.09.1) is too old"), std::string::npos);
  EXPECT_EQ(docker_error_hint(client.error(), ep), "upgrade the Docker engine");
}

TEST(DockerClient, ErrorStatusAndGarbage) {
  TempDir dir;
  FakeHttpServer server(dir.path() / "d.sock", [](const std::string&, const std::string& path) {
    if (path == "/version") {
      return FakeHttpServer::Reply{500, R"({"message":"daemon is shutting down"})"};
    }
    return FakeHttpServer::Reply{200, "not json"};
  });
  auto client = DockerClient::connect(*parse_endpoint(server.address(), "t"), 2s);
  ASSERT_FALSE(client);
  EXPECT_NE(client.error().line().find("(GET /version): HTTP 500: daemon is shutting down"), std::string::npos)
      << client.error().line();
}

TEST(DockerClient, HintsForConnectionErrors) {
  const auto ep = *parse_endpoint("unix:///run/docker.sock", "t");
  EXPECT_NE(docker_error_hint(Error{"s", "no such socket", ENOENT}, ep).find("No socket at /run/docker.sock"),
            std::string::npos);
  EXPECT_NE(docker_error_hint(Error{"s", "permission denied", EACCES}, ep).find("docker group"), std::string::npos);
  EXPECT_NE(docker_error_hint(Error{"s", "refused", ECONNREFUSED}, ep).find("start the Docker engine"),
            std::string::npos);
}

TEST(DockerInspect, NetworkAndServerEnvironment) {
  auto doc = nlohmann::json::parse(test::read_fixture("docker/inspect-unlimited.json"));
  doc["HostConfig"]["NetworkMode"] = "bridge";
  doc["NetworkSettings"]["Ports"] = nlohmann::json::parse(
      R"({"11434/tcp":[{"HostIp":"0.0.0.0","HostPort":"11434"},{"HostIp":"::","HostPort":"11434"}],"9000/tcp":null})");
  doc["NetworkSettings"]["Networks"] = nlohmann::json::parse(R"({"bridge":{"IPAddress":"172.17.0.2"},"none":{}})");
  doc["Config"]["Env"] = {"PATH=/usr/bin", "OLLAMA_HOST=0.0.0.0", "OLLAMA_NUM_PARALLEL=4", "HF_TOKEN=secret",
                          "LLAMA_ARG_CACHE_RAM=0"};
  const auto m = parse_container_inspect(doc.dump(), "i");
  ASSERT_TRUE(m) << m.error().line();
  EXPECT_EQ(m->network_mode, "bridge");
  ASSERT_EQ(m->ports.size(), 2U);
  EXPECT_EQ(m->ports[0].container_port, "11434/tcp");
  EXPECT_EQ(m->ports[1].host_ip, "::");
  EXPECT_EQ(m->ip_addresses, (std::vector<std::string>{"172.17.0.2"}));
  EXPECT_EQ(m->server_env.size(), 3U);
  EXPECT_EQ(m->server_env.at("OLLAMA_NUM_PARALLEL"), "4");
  EXPECT_FALSE(m->server_env.contains("HF_TOKEN")) << "other variables may hold secrets and are not kept";
  doc["NetworkSettings"]["Ports"]["11434/tcp"][0]["HostPort"] = 11434;
  EXPECT_EQ(parse_container_inspect(doc.dump(), "i").error().line(),
            "i: field NetworkSettings.Ports.11434/tcp[].HostPort: expected a string");
}

TEST(DockerInspect, Mounts) {
  auto doc = nlohmann::json::parse(test::read_fixture("docker/inspect-unlimited.json"));
  doc["Mounts"] = nlohmann::json::parse(R"([
    {"Type":"volume","Name":"ollama","Source":"/var/lib/docker/volumes/ollama/_data","Destination":"/root/.ollama",
     "Driver":"local","Mode":"z","RW":true,"Propagation":""},
    {"Type":"bind","Source":"/srv/models","Destination":"/models","Mode":"","RW":false,"Propagation":"rprivate"}])");
  const auto m = parse_container_inspect(doc.dump(), "i");
  ASSERT_TRUE(m) << m.error().line();
  ASSERT_EQ(m->mounts.size(), 2U);
  EXPECT_EQ(m->mounts[0].type, "volume");
  EXPECT_EQ(m->mounts[0].name, "ollama");
  EXPECT_EQ(m->mounts[0].source, "/var/lib/docker/volumes/ollama/_data");
  EXPECT_EQ(m->mounts[0].destination, "/root/.ollama");
  EXPECT_EQ(m->mounts[1].type, "bind");
  EXPECT_EQ(m->mounts[1].name, "");
  doc["Mounts"][1]["Destination"] = 7;
  EXPECT_EQ(parse_container_inspect(doc.dump(), "i").error().line(),
            "i: field Mounts[].Destination: expected a string");
}

TEST(DockerInspect, WhatIsKeptOfAContainerIsBounded) {
  auto doc = nlohmann::json::parse(test::read_fixture("docker/inspect-limited.json"));
  auto& labels = doc["Config"]["Labels"];
  labels = nlohmann::json::object();
  for (int i = 0; i < 500; ++i) {
    labels["com.example.label" + std::to_string(i)] = "v";
  }
  labels["memwarden.enable"] = "true";
  labels["memwarden.ollama.url"] = "http://127.0.0.1:11434";
  labels["zzz.long"] = std::string(5000, 'x');
  labels[std::string(300, 'k')] = "v";
  auto& env = doc["Config"]["Env"];
  for (int i = 0; i < 100; ++i) {
    env.push_back("OLLAMA_X" + std::to_string(i) + "=" + std::string(3000, 'e'));
  }
  doc["Mounts"] = nlohmann::json::array();
  for (int i = 0; i < 100; ++i) {
    doc["Mounts"].push_back({{"Type", "bind"}, {"Source", std::string(5000, 's')}, {"Destination", "/d"}});
  }
  const auto m = parse_container_inspect(doc.dump(), "i");
  ASSERT_TRUE(m) << m.error().line();
  EXPECT_EQ(m->labels.size(), ContainerBounds::labels);
  EXPECT_EQ(m->labels.at("memwarden.enable"), "true");  // the ones memwarden reads come first
  EXPECT_EQ(m->labels.at("memwarden.ollama.url"), "http://127.0.0.1:11434");
  EXPECT_EQ(m->labels.count("zzz.long"), 0U);
  EXPECT_EQ(m->server_env.size(), ContainerBounds::server_env);
  for (const auto& [key, value] : m->server_env) {
    EXPECT_LE(value.size(), ContainerBounds::text_bytes) << key;
  }
  ASSERT_EQ(m->mounts.size(), ContainerBounds::list_entries);
  EXPECT_EQ(m->mounts.front().source.size(), ContainerBounds::text_bytes);
  // An ordinary container is kept whole.
  const auto plain = parse_container_inspect(test::read_fixture("docker/inspect-limited.json"), "i");
  ASSERT_TRUE(plain);
  auto copy = *plain;
  EXPECT_EQ(bound_container(copy), 0U);
}

TEST(DockerClient, AnswersOverTheirCapsAreRefused) {
  TempDir dir;
  const std::string huge_list = "[" + std::string(k_max_container_list_bytes, ' ') + "]";
  FakeHttpServer server(dir.path() / "d.sock", [&](const std::string& m, const std::string& p) {
    if (p.find("/containers/json") != std::string::npos) {
      return FakeHttpServer::Reply{200, huge_list};
    }
    return captured_engine(m, p, "docker/version-20.10.json");
  });
  auto client = DockerClient::connect(*parse_endpoint(server.address(), "t"), 5s);
  ASSERT_TRUE(client) << client.error().line();
  const auto list = client->list_containers(ListScope::running);
  ASSERT_FALSE(list);
  EXPECT_EQ(list.error().message, "response larger than 4 MiB");
  EXPECT_TRUE(client->inspect("lim")) << "inspect has its own cap and works";
}

TEST(DockerInspect, TheWorstBoundedContainerStaysUnderItsDocumentedSize) {
  auto doc = nlohmann::json::parse(test::read_fixture("docker/inspect-limited.json"));
  doc["Name"] = "/" + std::string(5000, 'n');
  doc["Config"]["Image"] = std::string(5000, 'i');
  auto& labels = doc["Config"]["Labels"];
  for (int i = 0; i < 200; ++i) {
    labels[fmt::format("memwarden.{}{}", std::string(100, 'k'), i)] = std::string(1000, 'v');
  }
  for (int i = 0; i < 100; ++i) {
    doc["Config"]["Env"].push_back(fmt::format("OLLAMA_{}{}={}", std::string(100, 'K'), i, std::string(5000, 'e')));
  }
  doc["Mounts"] = nlohmann::json::array();
  for (int i = 0; i < 100; ++i) {
    doc["Mounts"].push_back({{"Type", std::string(600, 't')},
                             {"Name", std::string(600, 'n')},
                             {"Source", std::string(5000, 's')},
                             {"Destination", std::string(5000, 'd')}});
  }
  const auto m = parse_container_inspect(doc.dump(), "i");
  ASSERT_TRUE(m) << m.error().line();
  EXPECT_LE(footprint(*m), k_max_container_footprint) << footprint(*m);
  const auto plain = parse_container_inspect(test::read_fixture("docker/inspect-limited.json"), "i");
  ASSERT_TRUE(plain);
  RecordProperty("worst_container_bytes", static_cast<int>(footprint(*m)));
  RecordProperty("typical_container_bytes", static_cast<int>(footprint(*plain)));
  EXPECT_LT(footprint(*plain), 8192U) << footprint(*plain);
}

TEST(DockerInspect, NoNumberOfOtherLabelsPushesOutTheOnesMemwardenReads) {
  auto doc = nlohmann::json::parse(test::read_fixture("docker/inspect-limited.json"));
  auto& labels = doc["Config"]["Labels"];
  labels = nlohmann::json::object();
  for (int i = 0; i < 100; ++i) {
    labels[fmt::format("memwarden.a{:03}", i)] = "x";  // sort before memwarden.protect
  }
  labels["memwarden.protect"] = "true";
  labels["memwarden.enable"] = "true";
  for (int i = 0; i < 100; ++i) {
    doc["Config"]["Env"].push_back(fmt::format("OLLAMA_A{:03}=x", i));  // sort before OLLAMA_HOST
  }
  doc["Config"]["Env"].push_back("OLLAMA_HOST=0.0.0.0:11435");
  doc["Config"]["Env"].push_back("OLLAMA_NUM_PARALLEL=4");
  const auto m = parse_container_inspect(doc.dump(), "i");
  ASSERT_TRUE(m) << m.error().line();
  EXPECT_EQ(m->labels.size(), ContainerBounds::labels);
  EXPECT_EQ(m->labels.count("memwarden.protect"), 1U);
  EXPECT_EQ(m->labels.count("memwarden.enable"), 1U);
  EXPECT_EQ(m->server_env.size(), ContainerBounds::server_env);
  EXPECT_EQ(m->server_env.at("OLLAMA_HOST"), "0.0.0.0:11435");
  EXPECT_EQ(m->server_env.at("OLLAMA_NUM_PARALLEL"), "4");
}

namespace mw::adapters {
namespace {

DeploySpec spec_for(NetworkKind network, GpuRequest gpu) {
  Profile p;
  p.name = "standard";
  p.port = 11435;
  DeployChoices c;
  c.memory_limit = 9ULL << 30;
  c.network = network;
  c.gpu = gpu;
  return make_deploy_spec(p, c);
}

TEST(ContainerCreateBody, MemoryEqualsSwapAndBridgePublishesOnTheBindAddress) {
  const auto body = nlohmann::json::parse(container_create_body(spec_for(NetworkKind::bridge, {})));
  const auto& host = body["HostConfig"];
  EXPECT_EQ(host["Memory"].get<std::int64_t>(), 9LL << 30);
  EXPECT_EQ(host["MemorySwap"], host["Memory"]) << "no swap";
  EXPECT_EQ(host["RestartPolicy"]["Name"], "unless-stopped");
  EXPECT_EQ(host["PortBindings"]["11434/tcp"][0]["HostIp"], "127.0.0.1");
  EXPECT_EQ(host["PortBindings"]["11434/tcp"][0]["HostPort"], "11435");
  EXPECT_TRUE(body["ExposedPorts"].contains("11434/tcp"));
  EXPECT_FALSE(host.contains("NetworkMode"));
  EXPECT_FALSE(host.contains("DeviceRequests")) << "no GPU asked for";
  EXPECT_EQ(host["Mounts"][0]["Type"], "volume");
  EXPECT_EQ(host["Mounts"][0]["Source"], "ollama");
  EXPECT_EQ(host["Mounts"][0]["Target"], "/root/.ollama");
  EXPECT_EQ(body["Healthcheck"]["Interval"].get<std::int64_t>(), 30'000'000'000LL) << "nanoseconds";
  EXPECT_EQ(body["Labels"]["memwarden.enable"], "true");
}

TEST(ContainerCreateBody, HostNetworkAndGpuRequests) {
  auto body =
      nlohmann::json::parse(container_create_body(spec_for(NetworkKind::host, GpuRequest{GpuRequest::Kind::all, {}})));
  EXPECT_EQ(body["HostConfig"]["NetworkMode"], "host");
  EXPECT_FALSE(body["HostConfig"].contains("PortBindings"));
  EXPECT_FALSE(body.contains("ExposedPorts"));
  const auto& all = body["HostConfig"]["DeviceRequests"][0];
  EXPECT_EQ(all["Driver"], "nvidia");
  EXPECT_EQ(all["Count"], -1);
  EXPECT_EQ(all["Capabilities"], nlohmann::json::parse(R"([["gpu"]])"));

  body = nlohmann::json::parse(
      container_create_body(spec_for(NetworkKind::bridge, GpuRequest{GpuRequest::Kind::ids, {"0", "GPU-1a"}})));
  const auto& ids = body["HostConfig"]["DeviceRequests"][0];
  EXPECT_EQ(ids["DeviceIDs"], nlohmann::json::parse(R"(["0","GPU-1a"])"));
  EXPECT_FALSE(ids.contains("Count")) << "the engine refuses Count beside DeviceIDs";
}

TEST(ContainerRefs, NamesAndImagesThatCannotChangeTheRequestPath) {
  EXPECT_TRUE(valid_container_name("ollama-large_33b.1"));
  EXPECT_FALSE(valid_container_name(""));
  EXPECT_FALSE(valid_container_name("-x"));
  EXPECT_FALSE(valid_container_name("a/b"));
  EXPECT_FALSE(valid_container_name("a?b"));
  EXPECT_FALSE(valid_container_name(std::string(129, 'a')));
  EXPECT_TRUE(valid_image_ref("ollama/ollama:0.11.4"));
  EXPECT_TRUE(valid_image_ref("registry.example:5000/team/ollama@sha256:abc"));
  for (const char* bad : {"", "/x", "a//b", "a/../../containers/x", "./x", "a/./b", "x/", "a b", "a?b", "a#b"}) {
    EXPECT_FALSE(valid_image_ref(bad)) << bad;
  }
}

}  // namespace
}  // namespace mw::adapters

namespace mw::adapters {
namespace {

TEST(ImportImage, SendsTheTarballAndReadsAnErrorAfterThe200) {
  test::RecordingServer engine;
  std::string answer = R"({"status":"sha256:abc"})"
                       "\n";
  engine.set_handler([&](const test::RecordedRequest& r) -> test::RecordingServer::Reply {
    if (r.path == "/_ping") {
      return {200, "OK", "text/plain"};
    }
    if (r.path == "/version") {
      return {200, R"({"ApiVersion":"1.41","Version":"20.10.24"})"};
    }
    return {200, answer};
  });
  auto endpoint = parse_endpoint("tcp://127.0.0.1:" + std::to_string(engine.port()), "test");
  ASSERT_TRUE(endpoint.has_value());
  auto docker = DockerClient::connect(*endpoint, std::chrono::seconds(5));
  ASSERT_TRUE(docker.has_value()) << docker.error().line();
  const std::string tarball(2048, '\0');
  ASSERT_TRUE(docker->import_image(tarball, "memwarden/alloc", "0.1.0").has_value());
  const auto requests = engine.requests();
  ASSERT_FALSE(requests.empty());
  EXPECT_EQ(requests.back().method, "POST");
  EXPECT_EQ(requests.back().path, "/v1.41/images/create?fromSrc=-&repo=memwarden/alloc&tag=0.1.0");
  EXPECT_EQ(requests.back().body, tarball);

  answer = R"({"status":"Importing"})"
           "\n"
           R"({"error":"archive/tar: invalid tar header"})"
           "\n";
  const auto failed = docker->import_image(tarball, "memwarden/alloc", "0.1.0");
  ASSERT_FALSE(failed.has_value());
  EXPECT_NE(failed.error().line().find("invalid tar header"), std::string::npos);

  EXPECT_FALSE(docker->import_image(tarball, "memwarden/alloc", "a/b").has_value()) << "a tag with a slash";
  EXPECT_FALSE(docker->import_image(tarball, "../x", "1").has_value());
}

}  // namespace
}  // namespace mw::adapters

namespace mw::adapters {
namespace {

std::string frame(char stream, const std::string& text) {
  std::string out{stream, 0, 0, 0};
  const auto n = static_cast<std::uint32_t>(text.size());
  for (int shift = 24; shift >= 0; shift -= 8) {
    out += static_cast<char>((n >> static_cast<unsigned>(shift)) & 0xFFU);
  }
  return out + text;
}

TEST(LogFrames, StdoutIsKeptStderrDroppedAndTheCapHolds) {
  const auto frames = frame(1, "{\"stop\":") + frame(2, "warning\n") + frame(1, "\"reached\"}\n");
  EXPECT_EQ(stdout_of_log_frames(frames, 1024, "logs").value(), "{\"stop\":\"reached\"}\n");
  EXPECT_EQ(stdout_of_log_frames(frames, 5, "logs").value(), "{\"sto");
  EXPECT_EQ(stdout_of_log_frames("", 10, "logs").value(), "");
  const std::string big(300, 'x');
  EXPECT_EQ(stdout_of_log_frames(frame(1, big), 1024, "logs").value(), big) << "a length above 255";
}

TEST(LogFrames, TruncatedOrUnknownFramesAreErrorsNamingTheSource) {
  const auto whole = frame(1, "hello");
  const auto cut = stdout_of_log_frames(whole.substr(0, whole.size() - 1), 100, "engine (GET logs)");
  ASSERT_FALSE(cut.has_value());
  EXPECT_NE(cut.error().line().find("engine (GET logs)"), std::string::npos);
  EXPECT_FALSE(stdout_of_log_frames(whole.substr(0, 5), 100, "x").has_value());
  EXPECT_FALSE(stdout_of_log_frames(frame(7, "x"), 100, "x").has_value());
}

}  // namespace
}  // namespace mw::adapters

namespace mw::adapters {
namespace {

// The engine's own refusals of POST /containers/{id}/update, captured from Docker 20.10.24 on cgroup v1.
const std::string k_swap_rule =
    "Cannot update container 1d13981594293f8715e0804b01d9f55813dfdbc1702599d3e4cdb89b4bfeca2c: Memory limit should "
    "be smaller than already set memoryswap limit, update the memoryswap at the same time";
const std::string k_swap_under_memory = "Minimum memoryswap limit should be larger than memory limit, see usage";
const std::string k_minimum = "Minimum memory limit allowed is 6MB";
const std::string k_in_use =
    "Cannot update container 1d13981594293f8715e0804b01d9f55813dfdbc1702599d3e4cdb89b4bfeca2c: runc did not "
    "terminate successfully: exit status 1: unable to set memory limit to 20971520 (current usage: 42336256, peak "
    "usage: 42696704)\n: unknown";
const std::string k_ebusy =
    "failed to write 20971520 to memory.limit_in_bytes: write /sys/fs/cgroup/memory/docker/1d13/memory.limit_in_bytes: "
    "device or resource busy";

nlohmann::json recreate_doc(const RecreateChange& change = {}, const std::string& inspect = "") {
  const auto text = inspect.empty() ? test::read_fixture("docker/inspect-recreate.json") : inspect;
  auto body = recreate_body(text, change, "inspect");
  EXPECT_TRUE(body) << body.error().line();
  return body ? nlohmann::json::parse(*body) : nlohmann::json::object();
}

TEST(RecreateBody, TheCapturedContainerIsMadeAgain) {
  const auto captured = nlohmann::json::parse(test::read_fixture("docker/inspect-recreate.json"));
  const auto b = recreate_doc();
  EXPECT_EQ(b["Image"], "memwarden-test/hog:latest") << "Config.Image, the name it was made from";
  EXPECT_EQ(b["Cmd"], nlohmann::json({"/bin/memhog", "--mib", "8"}));
  EXPECT_EQ(b["Env"], nlohmann::json({"OLLAMA_KEEP_ALIVE=5m", "FOO=bar"}));
  EXPECT_EQ(b["Labels"], captured["Config"]["Labels"]);
  EXPECT_EQ(b["WorkingDir"], "/tmp");
  EXPECT_EQ(b["StopSignal"], "SIGINT");
  EXPECT_EQ(b["StopTimeout"], 20);
  EXPECT_EQ(b["Healthcheck"], captured["Config"]["Healthcheck"]);
  EXPECT_EQ(b["Tty"], false);
  EXPECT_FALSE(b.contains("Hostname")) << "the engine made it from the old id";
  EXPECT_FALSE(b.contains("Entrypoint")) << "null: the image's";
  EXPECT_EQ(b["HostConfig"], captured["HostConfig"]) << "copied whole";
  EXPECT_EQ(b["HostConfig"]["Memory"], 256LL << 20);
  EXPECT_EQ(b["HostConfig"]["MemorySwap"], 512LL << 20);
  const auto& endpoint = b["NetworkingConfig"]["EndpointsConfig"]["mw-rc-net"];
  EXPECT_EQ(endpoint["Aliases"], nlohmann::json({"llm"})) << "without the old short id";
  EXPECT_EQ(endpoint["IPAMConfig"]["IPv4Address"], "172.31.250.50");
  EXPECT_FALSE(endpoint.contains("EndpointID")) << "nothing of the old endpoint's state";
  EXPECT_FALSE(b.contains("Id"));
  EXPECT_FALSE(b.contains("State"));
}

TEST(RecreateBody, EnvIsReplacedInPlaceAppendedAndRemoved) {
  RecreateChange change;
  change.env["FOO"] = "baz";
  change.env["NEW_ONE"] = "1";
  change.env["OLLAMA_KEEP_ALIVE"] = std::nullopt;
  change.env["ABSENT"] = std::nullopt;
  EXPECT_EQ(recreate_doc(change)["Env"], nlohmann::json({"FOO=baz", "NEW_ONE=1"}));
  RecreateChange first;
  first.env["OLLAMA_KEEP_ALIVE"] = "-1";
  first.env["EMPTY"] = "";
  EXPECT_EQ(recreate_doc(first)["Env"], nlohmann::json({"OLLAMA_KEEP_ALIVE=-1", "FOO=bar", "EMPTY="}))
      << "in place, new ones after";
}

TEST(RecreateBody, BadEnvKeysAreRefused) {
  const auto text = test::read_fixture("docker/inspect-recreate.json");
  for (const std::string key : {"foo", "A-B", "", "A=B", "A B"}) {
    RecreateChange change;
    change.env[key] = "x";
    const auto body = recreate_body(text, change, "inspect of x");
    ASSERT_FALSE(body) << key;
    EXPECT_NE(body.error().line().find("inspect of x: '" + key + "' is not an environment variable name"),
              std::string::npos)
        << body.error().line();
  }
}

TEST(RecreateBody, MemoryIsReplacedWhenTheChangeSaysSo) {
  RecreateChange none;
  none.memory = 0;
  auto b = recreate_doc(none);
  EXPECT_EQ(b["HostConfig"]["Memory"], 0);
  EXPECT_EQ(b["HostConfig"]["MemorySwap"], 0) << "no limit: no memory+swap limit either";
  RecreateChange gib;
  gib.memory = 1LL << 30;
  b = recreate_doc(gib);
  EXPECT_EQ(b["HostConfig"]["Memory"], 1LL << 30);
  EXPECT_EQ(b["HostConfig"]["MemorySwap"], 1LL << 30) << "no swap unless asked";
  gib.memory_swap = -1;
  EXPECT_EQ(recreate_doc(gib)["HostConfig"]["MemorySwap"], -1);
  RecreateChange swap_only;
  swap_only.memory_swap = 1LL << 30;
  b = recreate_doc(swap_only);
  EXPECT_EQ(b["HostConfig"]["Memory"], 256LL << 20) << "kept";
  EXPECT_EQ(b["HostConfig"]["MemorySwap"], 1LL << 30);
}

TEST(RecreateBody, LimitsTheEngineWouldRefuseAreRefusedFirst) {
  const auto text = test::read_fixture("docker/inspect-recreate.json");
  const auto refused = [&](std::optional<std::int64_t> memory, std::optional<std::int64_t> swap, std::string_view why) {
    RecreateChange change;
    change.memory = memory;
    change.memory_swap = swap;
    const auto body = recreate_body(text, change, "inspect");
    ASSERT_FALSE(body) << why;
    EXPECT_NE(body.error().line().find(why), std::string::npos) << body.error().line();
  };
  refused(1LL << 20, std::nullopt, "at least 6 MiB");
  refused(-5, std::nullopt, "at least 6 MiB");
  refused(1LL << 30, 512LL << 20, "under the memory limit");
  refused(std::nullopt, 128LL << 20, "under the memory limit");
  refused(0, 1LL << 30, "without a memory limit");
  refused(std::nullopt, -2, "-1 (unlimited swap)");
  auto doc = nlohmann::json::parse(text);
  doc["HostConfig"]["MemoryReservation"] = 128LL << 20;
  RecreateChange low;
  low.memory = 64LL << 20;
  const auto body = recreate_body(doc.dump(), low, "inspect");
  ASSERT_FALSE(body);
  EXPECT_NE(body.error().line().find("memory reservation"), std::string::npos) << body.error().line();
}

TEST(RecreateBody, AnonymousVolumesAreMountedAgainByName) {
  // An image's VOLUME (or `-v /path`) is only in Mounts: without this the new container would start with an
  // empty model store, and the old one's data would be left in an orphaned volume.
  auto doc = nlohmann::json::parse(test::read_fixture("docker/inspect-recreate.json"));
  const std::string store(64, 'e');
  const std::string cache(64, 'f');
  doc["Mounts"].push_back({{"Type", "volume"}, {"Name", store}, {"Destination", "/root/.ollama"}, {"RW", true}});
  doc["Mounts"].push_back({{"Type", "volume"}, {"Name", cache}, {"Destination", "/cache"}, {"RW", false}});
  doc["Mounts"].push_back({{"Type", "bind"}, {"Source", "/srv"}, {"Destination", "/srv"}, {"RW", true}});
  const auto b = recreate_doc({}, doc.dump());
  EXPECT_EQ(b["HostConfig"]["Binds"],
            nlohmann::json({"mw-rc-vol:/data", store + ":/root/.ollama", cache + ":/cache:ro"}))
      << "the named volume once, the anonymous ones by name, a bind mount not from Mounts";
  // `--mount type=volume,target=/models` without a source: HostConfig.Mounts names no volume; the engine's is named.
  doc["HostConfig"]["Mounts"] = nlohmann::json::array({{{"Type", "volume"}, {"Target", "/models"}}});
  const std::string made(64, 'd');
  doc["Mounts"].push_back({{"Type", "volume"}, {"Name", made}, {"Destination", "/models"}, {"RW", true}});
  const auto m = recreate_doc({}, doc.dump());
  EXPECT_EQ(m["HostConfig"]["Mounts"][0]["Source"], made);
  EXPECT_EQ(m["HostConfig"]["Binds"].size(), 3U) << "not mounted twice";
  // A container without anonymous volumes keeps its Binds as they were.
  EXPECT_EQ(recreate_doc()["HostConfig"]["Binds"], nlohmann::json({"mw-rc-vol:/data"}));
}

TEST(RecreateBody, AHostnameTheUserSetIsKept) {
  auto doc = nlohmann::json::parse(test::read_fixture("docker/inspect-recreate.json"));
  doc["Config"]["Hostname"] = "llm-box";
  EXPECT_EQ(recreate_doc({}, doc.dump())["Hostname"], "llm-box");
  doc["Config"]["Hostname"] = doc["Id"].get<std::string>().substr(0, 12);
  EXPECT_FALSE(recreate_doc({}, doc.dump()).contains("Hostname"));
}

TEST(RecreateBody, DefaultNetworksHaveNoEndpointsAndTwoNetworksAreRefused) {
  const auto limited = recreate_doc({}, test::read_fixture("docker/inspect-limited.json"));
  EXPECT_EQ(limited["HostConfig"]["NetworkMode"], "none");
  EXPECT_FALSE(limited.contains("NetworkingConfig"));
  EXPECT_EQ(limited["Cmd"], nlohmann::json({"/bin/busybox", "sh", "-c", "sleep 1000"}));
  auto doc = nlohmann::json::parse(test::read_fixture("docker/inspect-recreate.json"));
  doc["NetworkSettings"]["Networks"]["other"] = doc["NetworkSettings"]["Networks"]["mw-rc-net"];
  const auto two = recreate_body(doc.dump(), {}, "inspect");
  ASSERT_FALSE(two);
  EXPECT_NE(two.error().line().find("on 2 networks (mw-rc-net, other)"), std::string::npos) << two.error().line();
  doc = nlohmann::json::parse(test::read_fixture("docker/inspect-recreate.json"));
  doc["HostConfig"]["Links"] = {"/db:/mw-rc-capture/database"};
  EXPECT_EQ(recreate_doc({}, doc.dump())["HostConfig"]["Links"], nlohmann::json({"db:database"}));
}

TEST(RecreateBody, WhatIsNotAnInspectAnswerIsAnErrorNamingTheSource) {
  for (const std::string bad : {"", "not json", "[]", R"({"Id":"x"})", R"({"Id":"x","Config":{},"HostConfig":{}})",
                                R"({"Id":"x","Config":{"Image":"i","Env":"A=1"},"HostConfig":{}})"}) {
    const auto body = recreate_body(bad, {}, "unix:///d.sock (GET /containers/x/json)");
    ASSERT_FALSE(body) << bad;
    EXPECT_EQ(body.error().source, "unix:///d.sock (GET /containers/x/json)") << bad;
  }
}

TEST(MemoryUpdateBody, AlwaysBoth) {
  EXPECT_EQ(memory_update_body(1LL << 30, 1LL << 30), R"({"Memory":1073741824,"MemorySwap":1073741824})");
  EXPECT_EQ(memory_update_body(64LL << 20, -1), R"({"Memory":67108864,"MemorySwap":-1})");
}

TEST(ExplainUpdateRefusal, TheEnginesRefusalsInPlainWords) {
  EXPECT_NE(explain_update_refusal(k_swap_rule)
                .find("the engine keeps memory+swap at least as large as memory, and the new limit is above the "
                      "container's memory+swap limit"),
            std::string::npos);
  EXPECT_NE(explain_update_refusal(k_swap_under_memory).find("below the memory limit"), std::string::npos);
  EXPECT_NE(explain_update_refusal(k_minimum).find("smallest the engine allows (6 MB)"), std::string::npos);
  for (const auto& in_use : {k_in_use, k_ebusy}) {
    EXPECT_NE(explain_update_refusal(in_use).find("uses more memory than the new limit and the kernel could not "
                                                  "reclaim"),
              std::string::npos)
        << in_use;
  }
  EXPECT_NE(explain_update_refusal("No such container: x").find("does not exist"), std::string::npos);
  EXPECT_EQ(explain_update_refusal("something new"), "something new");
}

// An engine answering updates with what the test sets; records the requests.
struct UpdateEngine {
  test::RecordingServer server;
  int status = 200;
  std::string message;
  UpdateEngine() {
    server.set_handler([this](const test::RecordedRequest& r) -> test::RecordingServer::Reply {
      if (r.path == "/_ping") {
        return {200, "OK", "text/plain"};
      }
      if (r.path == "/version") {
        return {200, R"({"ApiVersion":"1.41","Version":"20.10.24"})"};
      }
      if (r.path.ends_with("/json")) {
        return {200, test::read_fixture("docker/inspect-recreate.json")};
      }
      if (status == 200) {
        return {200, R"({"Warnings":[]})"};
      }
      return {status, nlohmann::json{{"message", message}}.dump()};
    });
  }
  DockerClient connect() {
    auto docker = DockerClient::connect(*parse_endpoint(server.url(), "t"), 5s);
    EXPECT_TRUE(docker) << docker.error().line();
    return std::move(*docker);
  }
};

TEST(DockerClient, UpdateMemorySendsBothAndExplainsRefusals) {
  UpdateEngine engine;
  auto docker = engine.connect();
  ASSERT_TRUE(docker.update_memory("c1", 128LL << 20, 128LL << 20));
  const auto sent = engine.server.requests().back();
  EXPECT_EQ(sent.method, "POST");
  EXPECT_EQ(sent.path, "/v1.41/containers/c1/update");
  EXPECT_EQ(sent.body, R"({"Memory":134217728,"MemorySwap":134217728})");

  engine.status = 409;  // what 20.10 answers for the swap rule
  engine.message = k_swap_rule;
  auto refused = docker.update_memory("c1", 128LL << 20, 64LL << 20);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().source, engine.server.url() + " (POST /v1.41/containers/c1/update)");
  EXPECT_TRUE(refused.error().message.starts_with("the engine keeps memory+swap at least as large as memory"))
      << refused.error().message;
  EXPECT_NE(refused.error().message.find("HTTP 409: " + k_swap_rule), std::string::npos) << "the engine's own words";

  engine.status = 500;
  engine.message = k_in_use;
  refused = docker.update_memory("c1", 20LL << 20, 20LL << 20);
  ASSERT_FALSE(refused);
  EXPECT_TRUE(refused.error().message.starts_with("the container uses more memory than the new limit"));

  engine.status = 404;
  engine.message = "No such container: c1";
  refused = docker.update_memory("c1", 128LL << 20, 128LL << 20);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ENOENT);
  EXPECT_EQ(refused.error().message, "HTTP 404: No such container: c1");

  engine.status = 400;
  engine.message = "a refusal nobody has seen";
  refused = docker.update_memory("c1", 128LL << 20, 128LL << 20);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().message, "HTTP 400: a refusal nobody has seen");

  const auto before = engine.server.request_count();
  EXPECT_FALSE(docker.update_memory("../x", 1, 1));
  EXPECT_EQ(engine.server.request_count(), before) << "a hostile reference is never sent";
}

TEST(DockerClient, InspectRawIsTheEnginesAnswer) {
  UpdateEngine engine;
  auto docker = engine.connect();
  const auto raw = docker.inspect_raw("mw-rc-capture");
  ASSERT_TRUE(raw) << raw.error().line();
  EXPECT_EQ(*raw, test::read_fixture("docker/inspect-recreate.json"));
  EXPECT_EQ(engine.server.requests().back().path, "/v1.41/containers/mw-rc-capture/json");
  EXPECT_FALSE(docker.inspect_raw("a/b"));
}

}  // namespace
}  // namespace mw::adapters
