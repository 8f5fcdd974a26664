#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "adapters/llm_client.hpp"
#include "core/bench_stats.hpp"
#include "recording_server.hpp"
#include "scripted_server.hpp"
#include "test_support.hpp"

using namespace mw;
using namespace mw::adapters;
using namespace std::chrono_literals;
using mw::test::ScriptedServer;
using mw::test::TempDir;

namespace {

// Fails (showing the text) unless `text` holds `part`.
::testing::AssertionResult holds(const std::string& text, std::string_view part) {
  if (text.find(part) != std::string::npos) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "'" << text << "' does not hold '" << part << "'";
}

// A clock that moves 10 ms on at every reading, from 1 s: the request is sent at the first reading, and each
// piece of the answer is stamped at the next one, so the times follow from the pieces alone.
MonotonicNow stepping_clock() {
  auto reads = std::make_shared<std::int64_t>(0);
  return [reads] { return std::chrono::nanoseconds(1s) + std::chrono::nanoseconds(10ms) * (*reads)++; };
}

std::string chunk(std::string_view data) {
  return fmt::format("{:x}\r\n{}\r\n", data.size(), data);
}

constexpr std::string_view k_chunked_ndjson =
    "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n";
constexpr std::string_view k_chunked_sse =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";

std::string token_line(std::string_view text) {
  return fmt::format(R"({{"model":"m","created_at":"2025-01-01T00:00:00Z","response":"{}","done":false}})", text) +
         "\n";
}

constexpr std::string_view k_done_line =
    R"({"model":"m","created_at":"2025-01-01T00:00:01Z","response":"","done":true,"done_reason":"length",)"
    R"("total_duration":9000000,"load_duration":1000000,"prompt_eval_count":4,"prompt_eval_duration":2000000,)"
    R"("eval_count":2,"eval_duration":5000000})"
    "\n";

std::string sse(std::string_view data) {
  return fmt::format("data: {}\n\n", data);
}

std::string delta(std::string_view text) {
  return sse(fmt::format(
      R"({{"id":"c1","object":"chat.completion.chunk","choices":[{{"index":0,"delta":{{"content":"{}"}},"finish_reason":null}}]}})",
      text));
}

GenerationRequest request_for(LlmStreamFormat api, std::string model = "m") {
  GenerationRequest r;
  r.api = api;
  r.model = std::move(model);
  r.prompt = "Say hello";
  r.max_tokens = 2;
  r.seed = 7;
  return r;
}

nlohmann::json body_of(const std::string& request) {
  return nlohmann::json::parse(request.substr(request.find("\r\n\r\n") + 4));
}

const std::atomic<bool> k_go{false};

}  // namespace

TEST(LlmClient, TimesAStreamedOllamaAnswer) {
  TempDir dir;
  ScriptedServer server(dir.path() / "s.sock", [](int, const std::string&) {
    return ScriptedServer::Answer{{std::string(k_chunked_ndjson), chunk(token_line("Hel")), chunk(token_line("lo")),
                                   chunk(k_done_line) + "0\r\n\r\n"}};
  });
  auto r = request_for(LlmStreamFormat::ollama);
  r.num_ctx = 4096;
  r.keep_alive = "300";
  LlmClient client(server.endpoint(), {}, stepping_clock());
  const auto result = client.generate(r, k_go);
  ASSERT_TRUE(result.complete()) << result.error->line();
  EXPECT_EQ(result.status, 200L);
  EXPECT_EQ(result.sent, 1s);
  EXPECT_EQ(result.times.chunks, (std::vector<std::chrono::nanoseconds>{10ms, 20ms}));
  EXPECT_EQ(result.times.end, std::optional<std::chrono::nanoseconds>(30ms));
  EXPECT_EQ(result.times.output_tokens, std::optional<std::uint64_t>(2));
  EXPECT_EQ(result.content_bytes, 5U);
  ASSERT_TRUE(result.stats);
  EXPECT_EQ(result.stats->done_reason, "length");
  EXPECT_EQ(result.stats->eval_duration, std::optional<std::chrono::nanoseconds>(5ms));
  EXPECT_EQ(result.stats->load_duration, std::optional<std::chrono::nanoseconds>(1ms));
  EXPECT_EQ(result.stats->prompt_tokens, std::optional<std::int64_t>(4));

  const auto figures = request_figures(result.times, result.source);
  ASSERT_TRUE(figures) << figures.error().line();
  EXPECT_DOUBLE_EQ(*figures->ttft_s, 0.010);
  EXPECT_DOUBLE_EQ(*figures->e2e_s, 0.030);
  EXPECT_TRUE(figures->tokens_from_server);

  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1U);
  EXPECT_TRUE(requests[0].starts_with("POST /api/generate HTTP/1.1\r\n")) << requests[0];
  const auto body = body_of(requests[0]);
  EXPECT_EQ(body["model"], "m");
  EXPECT_EQ(body["prompt"], "Say hello");
  EXPECT_EQ(body["stream"], true);
  EXPECT_EQ(body["options"]["num_predict"], 2);
  EXPECT_EQ(body["options"]["temperature"], 0);
  EXPECT_EQ(body["options"]["seed"], 7);
  EXPECT_EQ(body["options"]["num_ctx"], 4096);
  EXPECT_EQ(body["keep_alive"], 300);
}

TEST(LlmClient, TimesAStreamedOpenAiAnswer) {
  TempDir dir;
  ScriptedServer server(dir.path() / "s.sock", [](int, const std::string&) {
    return ScriptedServer::Answer{
        {std::string(k_chunked_sse), chunk(delta("Hel")), chunk(delta("lo")),
         chunk(sse(R"({"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"length"}]})")),
         chunk(sse(R"({"id":"c1","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}})")),
         chunk(sse("[DONE]")) + "0\r\n\r\n"}};
  });
  LlmClient client(server.endpoint(), {}, stepping_clock());
  const auto result = client.generate(request_for(LlmStreamFormat::openai), k_go);
  ASSERT_TRUE(result.complete()) << result.error->line();
  EXPECT_EQ(result.times.chunks, (std::vector<std::chrono::nanoseconds>{10ms, 20ms}));
  EXPECT_EQ(result.times.end, std::optional<std::chrono::nanoseconds>(50ms));
  EXPECT_EQ(result.times.output_tokens, std::optional<std::uint64_t>(2));
  ASSERT_TRUE(result.stats);
  EXPECT_EQ(result.stats->done_reason, "length");
  EXPECT_EQ(result.stats->prompt_tokens, std::optional<std::int64_t>(5));
  EXPECT_FALSE(result.stats->eval_duration) << "unknown, not 0";

  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1U);
  EXPECT_TRUE(requests[0].starts_with("POST /v1/chat/completions HTTP/1.1\r\n")) << requests[0];
  const auto body = body_of(requests[0]);
  EXPECT_EQ(body["model"], "m");
  EXPECT_EQ(body["messages"], nlohmann::json::parse(R"([{"role":"user","content":"Say hello"}])"));
  EXPECT_EQ(body["stream"], true);
  EXPECT_EQ(body["max_tokens"], 2);
  EXPECT_EQ(body["temperature"], 0);
  EXPECT_EQ(body["seed"], 7);
  EXPECT_EQ(body["stream_options"]["include_usage"], true);
}

TEST(LlmClient, AStreamDroppedMidwayKeepsWhatCameMarked) {
  TempDir dir;
  ScriptedServer server(dir.path() / "s.sock", [](int, const std::string&) {
    return ScriptedServer::Answer{{std::string(k_chunked_ndjson), chunk(token_line("Hel"))}, true};
  });
  LlmClient client(server.endpoint(), {}, stepping_clock());
  const auto result = client.generate(request_for(LlmStreamFormat::ollama), k_go);
  ASSERT_TRUE(result.partial());
  EXPECT_EQ(
      result.error->line(),
      fmt::format("{} (POST /api/generate, model 'm'): the stream broke off (after 1 chunks)", server.endpoint().text));
  EXPECT_EQ(result.times.chunks, (std::vector<std::chrono::nanoseconds>{10ms}));
  EXPECT_EQ(result.times.end, std::optional<std::chrono::nanoseconds>(20ms));
  EXPECT_FALSE(result.stats);
  EXPECT_FALSE(result.times.output_tokens);
}

TEST(LlmClient, AnAnswerClosedBeforeItsFinalLineIsAnError) {
  TempDir dir;
  ScriptedServer server(dir.path() / "s.sock", [](int, const std::string&) {
    return ScriptedServer::Answer{{"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n\r\n", token_line("Hel")},
                                  true};
  });
  LlmClient client(server.endpoint(), {}, stepping_clock());
  const auto result = client.generate(request_for(LlmStreamFormat::ollama), k_go);
  ASSERT_TRUE(result.partial());
  EXPECT_TRUE(holds(result.error->line(), "(POST /api/generate, model 'm'): the stream ended before its final line"));
  EXPECT_EQ(result.times.chunks.size(), 1U);
}

TEST(LlmClient, AModelThatIsNotInstalledSaysSo) {
  TempDir dir;
  const std::string error = R"({"error":"model 'x' not found, try pulling it first"})";
  ScriptedServer server(dir.path() / "s.sock", [&](int, const std::string&) {
    return ScriptedServer::Answer{
        {fmt::format("HTTP/1.1 404 Not Found\r\nContent-Type: application/json; "
                     "charset=utf-8\r\nContent-Length: {}\r\n\r\n{}",
                     error.size(), error)}};
  });
  LlmClient client(server.endpoint(), {}, stepping_clock());
  const auto result = client.generate(request_for(LlmStreamFormat::ollama, "x"), k_go);
  ASSERT_TRUE(result.partial());
  EXPECT_EQ(result.status, 404L);
  EXPECT_EQ(result.error->code, ENOENT);
  EXPECT_EQ(result.error->line(), fmt::format("{} (POST /api/generate, model 'x'): HTTP 404: model 'x' not found, try "
                                              "pulling it first",
                                              server.endpoint().text));
  EXPECT_TRUE(result.times.chunks.empty());
}

TEST(LlmClient, ErrorAnswersAreReadInEachServersShape) {
  EXPECT_EQ(
      generation_error_message(400, R"({"error":{"message":"max_tokens is too large","type":"invalid_request"}})"),
      "HTTP 400: max_tokens is too large");
  EXPECT_EQ(generation_error_message(400, R"({"object":"error","message":"bad seed","code":400})"),
            "HTTP 400: bad seed");
  EXPECT_EQ(generation_error_message(502, "\n<html>bad gateway</html>\nmore"), "HTTP 502: <html>bad gateway</html>");
  EXPECT_EQ(generation_error_message(500, ""), "HTTP 500");
  EXPECT_EQ(generation_error_message(500, std::string(300, 'x')), "HTTP 500: " + std::string(200, 'x') + "...");
}

TEST(LlmClient, AnOpenAiErrorObjectMidStreamEndsIt) {
  TempDir dir;
  ScriptedServer server(dir.path() / "s.sock", [](int, const std::string&) {
    return ScriptedServer::Answer{
        {std::string(k_chunked_sse), chunk(delta("Hel")),
         chunk(sse(R"({"error":{"message":"the model crashed","type":"server_error"}})")) + "0\r\n\r\n"}};
  });
  LlmClient client(server.endpoint(), {}, stepping_clock());
  const auto result = client.generate(request_for(LlmStreamFormat::openai), k_go);
  ASSERT_TRUE(result.partial());
  EXPECT_TRUE(holds(result.error->line(), "(POST /v1/chat/completions, model 'm'): event at line"));
  EXPECT_TRUE(holds(result.error->line(), "the model crashed"));
  EXPECT_EQ(result.times.chunks, (std::vector<std::chrono::nanoseconds>{10ms}));
  EXPECT_EQ(result.times.end, std::optional<std::chrono::nanoseconds>(20ms));
}

TEST(LlmClient, AServerThatFallsSilentTimesOut) {
  TempDir dir;
  ScriptedServer server(dir.path() / "s.sock", [](int, const std::string&) {
    return ScriptedServer::Answer{{std::string(k_chunked_ndjson), chunk(token_line("Hel"))}};  // then nothing
  });
  GenerationLimits limits;
  limits.idle_timeout = 200ms;
  LlmClient client(server.endpoint(), limits, stepping_clock());
  const auto started = std::chrono::steady_clock::now();
  const auto result = client.generate(request_for(LlmStreamFormat::ollama), k_go);
  ASSERT_TRUE(result.partial());
  EXPECT_EQ(result.error->code, ETIMEDOUT);
  EXPECT_TRUE(holds(result.error->line(),
                    "(POST /api/generate, model 'm'): nothing received for 0.2 s (after 1 "
                    "chunks)"));
  EXPECT_EQ(result.times.chunks.size(), 1U);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
}

TEST(LlmClient, AServerThatNeverAnswersTimesOut) {
  TempDir dir;
  mw::test::FakeHttpServer server(dir.path() / "s.sock", [](const std::string&, const std::string&) {
    mw::test::FakeHttpServer::Reply reply;
    reply.hang = true;
    return reply;
  });
  GenerationLimits limits;
  limits.first_byte_timeout = 200ms;
  LlmClient client(*parse_endpoint(server.address(), "t"), limits, stepping_clock());
  const auto result = client.generate(request_for(LlmStreamFormat::ollama), k_go);
  ASSERT_TRUE(result.partial());
  EXPECT_EQ(result.error->code, ETIMEDOUT);
  EXPECT_TRUE(holds(result.error->line(), "no answer within 0.2 s"));
  EXPECT_FALSE(result.status);
}

TEST(LlmClient, ARefusedConnectionNamesTheRequest) {
  mw::test::ClosedPort port;
  LlmClient client(*parse_endpoint(port.url(), "t"), {}, stepping_clock());
  const auto result = client.generate(request_for(LlmStreamFormat::openai), k_go);
  ASSERT_TRUE(result.partial());
  EXPECT_EQ(result.error->line(), port.url() + " (POST /v1/chat/completions, model 'm'): connection refused");
  EXPECT_FALSE(result.times.end == std::nullopt) << "the failure's time is kept";
}

TEST(LlmClient, TheBodyAndLineCapsHold) {
  TempDir dir;
  ScriptedServer server(dir.path() / "s.sock", [](int, const std::string&) {
    return ScriptedServer::Answer{{std::string(k_chunked_ndjson), chunk(token_line("Hel")), chunk(token_line("lo")),
                                   chunk(k_done_line) + "0\r\n\r\n"}};
  });
  GenerationLimits limits;
  limits.max_body_bytes = 150;  // more than one token line, less than two
  LlmClient capped_body(server.endpoint(), limits, stepping_clock());
  const auto body = capped_body.generate(request_for(LlmStreamFormat::ollama), k_go);
  ASSERT_TRUE(body.partial());
  EXPECT_TRUE(holds(body.error->line(), "(POST /api/generate, model 'm'): response larger than 150 bytes"));
  EXPECT_EQ(body.times.chunks.size(), 1U);

  limits = GenerationLimits{};
  limits.max_line_bytes = 16;
  LlmClient capped_line(server.endpoint(), limits, stepping_clock());
  const auto line = capped_line.generate(request_for(LlmStreamFormat::ollama), k_go);
  ASSERT_TRUE(line.partial());
  EXPECT_TRUE(holds(line.error->line(), "(POST /api/generate, model 'm'): line 1: longer than 16 bytes"));
  EXPECT_TRUE(line.times.chunks.empty());
}

TEST(LlmClient, ABadRequestIsNotSent) {
  LlmClient client(*parse_endpoint("http://127.0.0.1:9", "t"), {}, stepping_clock());
  EXPECT_EQ(client.generate(request_for(LlmStreamFormat::ollama, ""), k_go).error->line(),
            "http://127.0.0.1:9 (POST /api/generate, model ''): no model name given");
  auto r = request_for(LlmStreamFormat::ollama);
  r.max_tokens = 0;
  EXPECT_EQ(client.generate(r, k_go).error->message, "max_tokens 0 is not 1 or more");
}
