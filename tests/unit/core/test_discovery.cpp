#include <gtest/gtest.h>

#include "core/discovery.hpp"

using namespace mw;

namespace {

ContainerMeta container(std::string image, std::string network_mode = "bridge") {
  ContainerMeta c;
  c.id = std::string(64, 'a');
  c.name = "ollama";
  c.image = std::move(image);
  c.network_mode = std::move(network_mode);
  c.state.running = true;
  c.state.pid = 4242;
  return c;
}

}  // namespace

TEST(Discovery, WhichContainersAreInferenceServers) {
  EXPECT_TRUE(is_inference_server(container("ollama/ollama:0.11.4")));
  EXPECT_TRUE(is_inference_server(container("ghcr.io/someone/Ollama-rocm")));
  EXPECT_FALSE(is_inference_server(container("grafana/grafana")));
  auto labelled = container("localai/localai");
  labelled.labels["memwarden.kind"] = "ollama";
  EXPECT_TRUE(is_inference_server(labelled));
  auto opted_out = container("ollama/ollama");
  opted_out.labels["memwarden.kind"] = "none";
  EXPECT_FALSE(is_inference_server(opted_out)) << "an explicit label wins over the image name";
}

TEST(Discovery, OllamaHostForms) {
  const auto check = [](std::string_view in, std::string host, std::uint16_t port) {
    const auto hp = parse_ollama_host(in);
    ASSERT_TRUE(hp) << in;
    EXPECT_EQ(hp->host, host) << in;
    EXPECT_EQ(hp->port, port) << in;
  };
  check("0.0.0.0", "127.0.0.1", 11434);
  check("0.0.0.0:8080", "127.0.0.1", 8080);
  check(":11500", "127.0.0.1", 11500);
  check("http://10.1.2.3:9000/", "10.1.2.3", 9000);
  check("[::1]:11434", "[::1]", 11434);
  check("localhost", "localhost", 11434);
  for (const char* bad : {"host:0", "host:99999", "host:port", "https://secure:443", "[::1", "a b:1", "x/y:1"}) {
    EXPECT_FALSE(parse_ollama_host(bad)) << bad;
  }
}

TEST(Discovery, ApiAddressInOrderOfPreference) {
  auto c = container("ollama/ollama");
  c.ports = {{"11434/tcp", "0.0.0.0", "21434"}, {"11434/tcp", "::", "21434"}};
  c.ip_addresses = {"172.17.0.5"};
  EXPECT_EQ(ollama_api_address(c)->url, "http://127.0.0.1:21434");
  EXPECT_EQ(ollama_api_address(c)->source, "published port 11434/tcp");

  c.labels["memwarden.ollama.url"] = "http://10.0.0.9:11434";
  EXPECT_EQ(ollama_api_address(c)->url, "http://10.0.0.9:11434");
  c.labels.clear();

  c.ports.clear();
  EXPECT_EQ(ollama_api_address(c)->url, "http://172.17.0.5:11434");
  EXPECT_EQ(ollama_api_address(c)->source, "container address");

  auto host = container("ollama/ollama", "host");
  host.server_env["OLLAMA_HOST"] = "0.0.0.0:11500";
  EXPECT_EQ(ollama_api_address(host)->url, "http://127.0.0.1:11500");
  EXPECT_EQ(ollama_api_address(host)->source, "host network");

  auto custom_port = container("ollama/ollama");
  custom_port.server_env["OLLAMA_HOST"] = ":8080";
  custom_port.ports = {{"11434/tcp", "127.0.0.1", "1"}, {"8080/tcp", "127.0.0.1", "18080"}};
  EXPECT_EQ(ollama_api_address(custom_port)->url, "http://127.0.0.1:18080");

  EXPECT_FALSE(ollama_api_address(container("ollama/ollama", "none"))) << "no network, no label: unreachable";
}

TEST(Discovery, ServerFromContainer) {
  auto c = container("ollama/ollama", "host");
  c.memory_limit = 8ULL << 30;
  const auto s = server_from_container(c);
  EXPECT_EQ(s.name, "ollama");
  EXPECT_EQ(s.kind, ServerKind::container);
  EXPECT_EQ(s.pid, 4242);
  EXPECT_EQ(s.api_url, "http://127.0.0.1:11434");
  EXPECT_TRUE(s.has_memory_limit);
  EXPECT_EQ(s.memory_limit, 8ULL << 30);
}

TEST(Mounts, AContainerPathMapsToTheHostThroughTheDeepestMount) {
  const std::vector<ContainerMount> mounts{
      {"volume", "ollama", "/var/lib/docker/volumes/ollama/_data", "/root/.ollama"},
      {"bind", "", "/srv/fast/", "/root/.ollama/models/blobs"},
      {"tmpfs", "", "", "/tmp"},
  };
  EXPECT_EQ(host_path_through_mounts(mounts, "/root/.ollama/models"), "/var/lib/docker/volumes/ollama/_data/models");
  EXPECT_EQ(host_path_through_mounts(mounts, "/root/.ollama"), "/var/lib/docker/volumes/ollama/_data");
  EXPECT_EQ(host_path_through_mounts(mounts, "/root/.ollama/models/blobs/x"), "/srv/fast/x");
  // Not a prefix on a path boundary, a tmpfs, and nothing mounted.
  EXPECT_FALSE(host_path_through_mounts(mounts, "/root/.ollamax"));
  EXPECT_FALSE(host_path_through_mounts(mounts, "/tmp/models"));
  EXPECT_FALSE(host_path_through_mounts(mounts, "/usr/share/ollama"));
  EXPECT_FALSE(host_path_through_mounts({}, "/root/.ollama/models"));
}
