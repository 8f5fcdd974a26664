// One streamed generation, timed (memwarden bench, issue 15): Ollama's POST /api/generate or the
// OpenAI-compatible POST /v1/chat/completions with "stream": true, sent with a fixed output length,
// temperature 0 and a seed, its answer fed to LlmStreamParser as it arrives. Each content chunk is stamped
// on an injected monotonic clock when the piece of the body that completed it arrived; the result's
// StreamTimes go to core::request_figures as they are. A failed request keeps what it measured, marked.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "adapters/http.hpp"
#include "adapters/llm_stream.hpp"
#include "core/bench_stats.hpp"
#include "core/error.hpp"

namespace mw::adapters {

// The most of a generation's answer memwarden reads: a 128-token Ollama answer is about 20 KiB.
inline constexpr std::size_t k_max_generation_bytes = 16U << 20;
// The most of an error answer (a status other than 200) kept for its message.
inline constexpr std::size_t k_max_generation_error_bytes = 64U << 10;

struct GenerationRequest {
  LlmStreamFormat api = LlmStreamFormat::ollama;  // ollama: /api/generate; openai: /v1/chat/completions
  std::string model;
  std::string prompt;
  std::int64_t max_tokens = 128;  // Ollama's options.num_predict, OpenAI's max_tokens
  std::int64_t seed = 42;
  std::optional<std::int64_t> num_ctx;  // Ollama's options.num_ctx; the server's default when empty
  // Ollama only: how long the server keeps the model after the answer ("5m"; seconds as "300" or "-1", sent as a
  // number); the server's default when empty.
  std::string keep_alive;
};

// The request's JSON body.
[[nodiscard]] std::string generation_body(const GenerationRequest& request);
// "/api/generate" or "/v1/chat/completions".
[[nodiscard]] std::string_view generation_path(LlmStreamFormat api);

// The message of an error answer (a status other than 200): the server's own words where its body says them
// (Ollama's {"error": "..."}, OpenAI's {"error": {"message": "..."}}, vLLM's {"message": "..."}), else the
// body's first line (printable, cut at 200 bytes): "HTTP 404: model 'x' not found, try pulling it first".
[[nodiscard]] std::string generation_error_message(long status, std::string_view body);

// A monotonic clock: the time since some fixed point, in nanoseconds.
using MonotonicNow = std::function<std::chrono::nanoseconds()>;
// std::chrono::steady_clock.
[[nodiscard]] MonotonicNow steady_now();

struct GenerationLimits {
  // Connect, send and the answer's head; a cold model loads before Ollama answers, so this is long.
  std::chrono::milliseconds first_byte_timeout = std::chrono::minutes(10);
  // The longest silence between two pieces of the answer once it has begun.
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(60);
  std::size_t max_body_bytes = k_max_generation_bytes;
  std::size_t max_line_bytes = k_max_stream_line_bytes;
};

struct GenerationResult {
  std::string source;  // "http://127.0.0.1:11434 (POST /api/generate, model 'llama3')": how errors name it
  // When the request was sent, on the injected clock; the times below are measured from it.
  std::chrono::nanoseconds sent{0};
  // The chunks' arrival (content and reasoning), the end (the final event, or when it failed) and the server's
  // output token count: core::request_figures(result.times, result.source).
  StreamTimes times;
  std::size_t content_bytes = 0;     // of the chunks' text
  std::size_t reasoning_chunks = 0;  // of times.chunks, those that were reasoning ("thinking")
  std::optional<long> status;        // the HTTP status, once the head was in
  // The server's own figures from the final event; nullopt when it never came.
  std::optional<GenerationStats> stats;
  // Why the request failed, one line naming the source; nullopt when it completed. A failed request keeps
  // what it measured up to then (its times are partial).
  std::optional<Error> error;

  [[nodiscard]] bool complete() const { return !error.has_value(); }
  [[nodiscard]] bool partial() const { return error.has_value(); }
};

class LlmClient {
 public:
  // `endpoint`: the server (http:// or unix://). `now` is read when the request is sent, when each piece of the
  // answer arrives and when it ends.
  explicit LlmClient(Endpoint endpoint, GenerationLimits limits = {}, MonotonicNow now = steady_now());

  [[nodiscard]] const Endpoint& endpoint() const { return m_http.endpoint(); }

  // Sends one generation and times its answer. Never fails as a whole: a refused connection, a status other
  // than 200 (with the server's message; 404 carries ENOENT), an error in the stream, a stream that ends before
  // the final event, a time-out, a cap passed or `stop` (ECANCELED) is result.error, with what was measured.
  [[nodiscard]] GenerationResult generate(const GenerationRequest& request, const std::atomic<bool>& stop);

 private:
  HttpClient m_http;
  GenerationLimits m_limits;
  MonotonicNow m_now;
};

}  // namespace mw::adapters
