// Incremental parsers of the streamed answers a benchmark times (memwarden bench, issue 15): Ollama's
// POST /api/generate (and /api/chat) newline-delimited JSON, and the OpenAI-compatible
// POST /v1/chat/completions server-sent events that LocalAI, llama.cpp's server, vLLM and Ollama speak.
// Pure: fed the body in whatever pieces HttpClient::stream hands over, they report events, and the caller
// timestamps each one on its own clock (an event is reported during the feed() of the piece that completed
// it). Nothing here reads a socket or a clock.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "core/error.hpp"

namespace mw::adapters {

// The longest line (NDJSON) or event (SSE, its data lines together) a parser takes. A longer one is an error
// naming the source; no answer of a generation comes near it. The body's total is the caller's to bound.
inline constexpr std::size_t k_max_stream_line_bytes = 1U << 20;

// A non-empty piece of generated text: one token on Ollama, one or more on an OpenAI-compatible server.
struct StreamContent {
  std::string text;
  bool reasoning = false;  // Ollama's "thinking", OpenAI's delta.reasoning_content / delta.reasoning

  [[nodiscard]] std::size_t bytes() const { return text.size(); }
};

// What the server says about the generation when it ends. Unknown values stay nullopt, never 0.
struct GenerationStats {
  // Why it stopped: Ollama's done_reason, OpenAI's finish_reason ("stop", "length", ...); "" when not said.
  std::string done_reason;
  // Ollama: prompt_eval_count / eval_count. OpenAI: usage.prompt_tokens / usage.completion_tokens (sent
  // with stream_options.include_usage), else llama.cpp's timings.prompt_n / timings.predicted_n.
  std::optional<std::int64_t> prompt_tokens;
  std::optional<std::int64_t> output_tokens;
  // Ollama's own timings (ns in the answer). load_duration is part of total_duration. From an OpenAI-compatible
  // server only llama.cpp's timings.prompt_ms / predicted_ms give prompt_eval and eval; the rest stay unknown.
  std::optional<std::chrono::nanoseconds> total_duration;
  std::optional<std::chrono::nanoseconds> load_duration;
  std::optional<std::chrono::nanoseconds> prompt_eval_duration;
  std::optional<std::chrono::nanoseconds> eval_duration;
};

// The generation ended as the server meant it to: Ollama's line with "done": true, OpenAI's "data: [DONE]".
struct StreamDone {
  GenerationStats stats;
};

// The stream failed: the server sent an error ({"error": ...} on a line or in an event), a line could not be
// read (not JSON, a field of the wrong type, over the cap), or the stream ended before its final line.
// `error.source` is the parser's source; the message says which line or event.
struct StreamError {
  Error error;
};

using StreamEvent = std::variant<StreamContent, StreamDone, StreamError>;
using StreamEventSink = std::function<void(const StreamEvent& event)>;

enum class LlmStreamFormat {
  ollama,  // POST /api/generate or /api/chat with "stream": true: one JSON object per line
  openai,  // POST /v1/chat/completions with "stream": true: "data: {...}" events, then "data: [DONE]"
};

// One parser per answer. After it has reported StreamDone or StreamError it is over: what comes next is
// not read, and finish() reports nothing more.
class LlmStreamParser {
 public:
  // `source` names the request in errors: "http://127.0.0.1:11434 (POST /api/generate)".
  LlmStreamParser(LlmStreamFormat format, std::string source, std::size_t max_line_bytes = k_max_stream_line_bytes);

  // Takes the next piece of the body (any size, split anywhere: inside a line, a "\r\n", a UTF-8 sequence)
  // and reports each event it completes, in order.
  void feed(std::string_view data, const StreamEventSink& on_event);
  // The body ended (the server closed the stream). Reads a last line without its newline, then reports
  // StreamError ("the stream ended before ...") unless the generation was done or already failed. An
  // OpenAI stream that said its finish_reason but closed without "[DONE]" counts as done.
  void finish(const StreamEventSink& on_event);

  [[nodiscard]] bool done() const { return m_state == State::done; }
  [[nodiscard]] bool failed() const { return m_state == State::failed; }
  [[nodiscard]] bool over() const { return m_state != State::open; }
  [[nodiscard]] const std::string& source() const { return m_source; }

 private:
  enum class State { open, done, failed };

  void line(std::string_view text, const StreamEventSink& on_event);
  void ollama_line(std::string_view text, const StreamEventSink& on_event);
  void sse_line(std::string_view text, const StreamEventSink& on_event);
  void sse_dispatch(const StreamEventSink& on_event);
  void openai_data(std::string_view data, const StreamEventSink& on_event);
  void openai_error(std::string_view data, const StreamEventSink& on_event);
  [[nodiscard]] GenerationStats openai_stats() const;
  void end_with(StreamEvent event, const StreamEventSink& on_event);
  void fail_with(std::string message, const StreamEventSink& on_event);

  LlmStreamFormat m_format;
  std::string m_source;
  std::size_t m_max_line_bytes;
  State m_state = State::open;
  std::string m_partial;          // the line so far
  bool m_after_cr = false;        // the last byte was a CR ending a line: a LF next belongs to it
  std::size_t m_line_number = 0;  // lines completed, for messages
  // SSE: the data of the event being read, its first line's number (0 between events), and whether it is
  // an error (an "error" field or "event: error").
  std::string m_data;
  bool m_has_data = false;
  std::size_t m_event_line = 0;
  bool m_error_field = false;  // llama.cpp's server sends "error: {...}" as a field of its own
  // OpenAI: what the chunks said so far, for the final StreamDone: the last finish_reason, the last usage
  // object, the last llama.cpp timings object.
  std::string m_finish_reason;
  GenerationStats m_usage;
  GenerationStats m_timings;
};

}  // namespace mw::adapters
