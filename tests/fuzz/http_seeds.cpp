// Writes the seed corpora of the HTTP fuzz targets: requests as clients send them to memwarden serve (into
// REQUEST_DIR, for fuzz_http_request) and answers as Docker, Ollama and webhook servers send them (into
// RESPONSE_DIR, for fuzz_http_response), each behind the option bytes its target reads first. Built and run
// by scripts/fuzz.sh.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

void save(const std::filesystem::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "http_seeds: cannot write %s\n", path.c_str());
    std::exit(1);
  }
}

using Seed = std::pair<std::string, std::string>;  // name, bytes after the option bytes

std::vector<Seed> requests() {
  const std::string json = R"({"server":"ollama"})";
  return {
      {"get-metrics",
       "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9490\r\nUser-Agent: Prometheus/2.53.0\r\n"
       "Accept: text/plain;version=0.0.4\r\nAccept-Encoding: gzip\r\n\r\n"},
      {"get-healthz-http10", "GET /healthz HTTP/1.0\r\n\r\n"},
      {"get-query", "GET /api/v1/samples?subject=host&since=1h HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nx-a: 2\r\n\r\n"},
      {"head-bare-lf", "HEAD /metrics HTTP/1.1\nHost: y\n\n"},
      {"post-content-length",
       "POST /api/v1/fix HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t0ken\r\n"
       "Content-Type: application/json\r\nContent-Length: " +
           std::to_string(json.size()) + "\r\n\r\n" + json},
      {"post-expect-continue", "POST /api/v1/fix HTTP/1.1\r\nContent-Length: 19\r\nExpect: 100-continue\r\n\r\n"},
      {"post-body-pending", "POST /x HTTP/1.1\r\nContent-Length: 40\r\n\r\n{\"partial\":"},
      {"post-chunked", "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
      {"keep-alive-pipelined", "GET /a HTTP/1.1\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.1\r\n\r\n"},
      {"two-lengths", "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"},
      {"folded", "GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n"},
      {"incomplete", "GET /metrics HTTP/1.1\r\nHost: x\r\n"},
  };
}

std::vector<Seed> responses() {
  return {
      {"content-length",
       "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n"
       "{\"Version\":\"1\"}"},
      {"chunked",
       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;ext=1\r\n, world\r\n"
       "0\r\nX-Trailer: t\r\n\r\n"},
      {"continue-then-200",
       "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n"
       "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"},
      {"keep-alive-http10", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nabc"},
      {"close-without-length", "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end"},
      {"no-content", "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"},
      {"not-modified-bare-lf", "HTTP/1.1 304 Not Modified\nETag: x\n\n"},
      {"error-json", "HTTP/1.1 404 Not Found\r\nContent-Length: 29\r\n\r\n{\"message\":\"no such object\"}\n"},
      {"big-declared", "HTTP/1.1 200 OK\r\nContent-Length: 999999999999\r\n\r\nx"},
      {"gzip-then-chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"},
      {"two-answers", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb"},
      // Past the client's limits (a 4 KiB chunk line or trailer, a 64 KiB head): refused however they arrive.
      {"long-trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\nX-T: " +
                           std::string(5000, 'a') + "\r\n\r\n"},
      {"long-head", "HTTP/1.1 200 OK\r\nX-Big: " + std::string(66000, 'a') + "\r\nContent-Length: 1\r\n\r\nx"},
      {"docker-ping",
       "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nCache-Control: no-cache, no-store, must-revalidate\r\n"
       "Docker-Experimental: false\r\nOstype: linux\r\nPragma: no-cache\r\n"
       "Server: Docker/20.10.24+dfsg1 (linux)\r\nDate: Sat, 05 Dec 2026 00:48:48 GMT\r\nContent-Length: 2\r\n"
       "Content-Type: text/plain; charset=utf-8\r\n\r\nOK"},
      {"repeated-kept-header",
       "HTTP/1.1 200 OK\r\napi-version:1.40\r\nAPI-VERSION: \t1.41 \r\nContent-Length: 0\r\n"
       "Api-Version: 1.42\r\nApi-Version: 1.43\r\nApi-Version:\r\n\r\n"},
      {"events-stream",
       "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
       "1c\r\n{\"status\":\"start\",\"id\":\"a\"}\n\r\n"},
  };
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: http_seeds REQUEST_DIR RESPONSE_DIR\n");
    return 2;
  }
  const std::filesystem::path request_dir = argv[1];
  const std::filesystem::path response_dir = argv[2];
  std::filesystem::create_directories(request_dir);
  std::filesystem::create_directories(response_dir);
  int written = 0;
  // fuzz_http_request: byte 0 (bit 7: default limits, else the piece size), 1 and 2 (small limits).
  for (const auto& [name, bytes] : requests()) {
    save(request_dir / (name + "-defaults"), std::string("\x80\x00\x00", 3) + bytes);
    save(request_dir / (name + "-small"), std::string("\x07\x20\x04", 3) + bytes);
    written += 2;
  }
  // Found by the fuzzer: a head of exactly max_header_bytes (8), read a byte at a time, was a 431 once its
  // first 9 bytes were in.
  save(request_dir / "found-head-at-the-limit-split", std::string("\x00\x00\x0a\x0b\x00h2e\x00+\r\n\r\n", 14));
  ++written;
  // fuzz_http_response: byte 0 (the body cap), byte 1 (the piece size).
  for (const auto& [name, bytes] : responses()) {
    save(response_dir / (name + "-defaults"), std::string("\x80\x0f", 2) + bytes);
    save(response_dir / (name + "-small-cap"), std::string("\x01\x02", 2) + bytes);
    written += 2;
  }
  std::printf("http_seeds: %d seeds in %s and %s\n", written, request_dir.c_str(), response_dir.c_str());
  return 0;
}
