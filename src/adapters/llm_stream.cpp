#include "adapters/llm_stream.hpp"

#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <utility>

#include "adapters/json_fields.hpp"
#include "core/bytes.hpp"
#include "core/text.hpp"

namespace mw::adapters {

using nlohmann::json;

namespace {

// The start of a text for a message: at most 80 bytes.
std::string preview(std::string_view text) {
  std::size_t cut = 80;
  if (text.size() <= cut) {
    return std::string(text);
  }
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0U) == 0x80U) {
    --cut;  // not inside a UTF-8 sequence
  }
  return std::string(text.substr(0, cut)) + "...";
}

// What an error member says: a string ({"error": "model not found"}, Ollama), or an object with a message
// ({"error": {"message": "...", "type": "...", "code": 400}}, OpenAI), or the object itself when it has one
// (llama.cpp's "error: {"code":500,"message":"...","type":"server_error"}").
std::string error_text(const json& error) {
  if (error.is_string()) {
    return error.get<std::string>();
  }
  if (error.is_object()) {
    const auto it = error.find("message");
    if (it != error.end() && it->is_string()) {
      std::string text = it->get<std::string>();
      const auto code = error.find("code");
      if (code != error.end() && (code->is_number_integer() || code->is_string())) {
        text += fmt::format(" (code {})", code->is_string() ? code->get<std::string>() : code->dump());
      }
      return text;
    }
  }
  return preview(error.dump(-1, ' ', false, json::error_handler_t::replace));
}

// A count of tokens: an integer >= 0 (nullopt when absent; a wrong one is an error in `f`).
std::optional<std::int64_t> read_count(JsonFields& f, std::string_view key) {
  const auto value = f.integer(key);
  if (value && *value < 0) {
    f.wrong_type(key, fmt::format("a non-negative integer, got {}", *value));
    return std::nullopt;
  }
  return value;
}

// Ollama's durations: integer nanoseconds >= 0.
std::optional<std::chrono::nanoseconds> read_ns(JsonFields& f, std::string_view key) {
  const auto value = read_count(f, key);
  if (!value) {
    return std::nullopt;
  }
  return std::chrono::nanoseconds(*value);
}

// llama.cpp's timings: milliseconds as a number >= 0 (fractional).
std::optional<std::chrono::nanoseconds> read_ms(JsonFields& f, std::string_view key) {
  const auto value = f.number(key);
  if (!value) {
    return std::nullopt;
  }
  // 1e12 ms is about 31 years: anything above is not a generation's time.
  if (!std::isfinite(*value) || *value < 0.0 || *value > 1e12) {
    f.wrong_type(key, fmt::format("milliseconds from 0 to 1e12, got {}", *value));
    return std::nullopt;
  }
  return std::chrono::nanoseconds(static_cast<std::int64_t>(std::llround(*value * 1e6)));
}

}  // namespace

LlmStreamParser::LlmStreamParser(LlmStreamFormat format, std::string source, std::size_t max_line_bytes)
    : m_format(format), m_source(std::move(source)), m_max_line_bytes(max_line_bytes) {}

GenerationStats LlmStreamParser::openai_stats() const {
  // usage (asked for with stream_options.include_usage) is the count; llama.cpp's timings fill what it leaves.
  GenerationStats stats;
  stats.done_reason = m_finish_reason;
  stats.prompt_tokens = m_usage.prompt_tokens ? m_usage.prompt_tokens : m_timings.prompt_tokens;
  stats.output_tokens = m_usage.output_tokens ? m_usage.output_tokens : m_timings.output_tokens;
  stats.prompt_eval_duration = m_timings.prompt_eval_duration;
  stats.eval_duration = m_timings.eval_duration;
  return stats;
}

void LlmStreamParser::end_with(StreamEvent event, const StreamEventSink& on_event) {
  m_state = std::holds_alternative<StreamError>(event) ? State::failed : State::done;
  m_partial.clear();
  m_data.clear();
  on_event(event);
}

void LlmStreamParser::fail_with(std::string message, const StreamEventSink& on_event) {
  end_with(StreamError{Error{m_source, std::move(message)}}, on_event);
}

void LlmStreamParser::feed(std::string_view data, const StreamEventSink& on_event) {
  while (!data.empty() && m_state == State::open) {
    if (m_after_cr) {
      m_after_cr = false;
      if (data.front() == '\n') {  // the "\n" of a "\r\n" split between two pieces
        data.remove_prefix(1);
        continue;
      }
    }
    const auto end = data.find_first_of("\r\n");
    const auto piece = data.substr(0, end);
    if (m_partial.size() + piece.size() > m_max_line_bytes) {
      fail_with(fmt::format("line {}: longer than {}", m_line_number + 1, format_cap(m_max_line_bytes)), on_event);
      return;
    }
    m_partial.append(piece);
    if (end == std::string_view::npos) {
      return;
    }
    m_after_cr = data[end] == '\r';
    data.remove_prefix(end + 1);
    ++m_line_number;
    const std::string text = std::exchange(m_partial, std::string());
    line(text, on_event);
  }
}

void LlmStreamParser::finish(const StreamEventSink& on_event) {
  if (m_state != State::open) {
    return;
  }
  if (!m_partial.empty()) {  // a last line without its newline
    ++m_line_number;
    const std::string text = std::exchange(m_partial, std::string());
    line(text, on_event);
  }
  if (m_format == LlmStreamFormat::openai && m_state == State::open) {
    sse_dispatch(on_event);  // an event without its blank line
  }
  if (m_state != State::open) {
    return;
  }
  if (m_format == LlmStreamFormat::ollama) {
    fail_with("the stream ended before its final line (\"done\": true)", on_event);
  } else if (!m_finish_reason.empty()) {
    end_with(StreamDone{openai_stats()}, on_event);  // a finish_reason, then the connection closed without [DONE]
  } else {
    fail_with("the stream ended before \"data: [DONE]\"", on_event);
  }
}

void LlmStreamParser::line(std::string_view text, const StreamEventSink& on_event) {
  if (m_format == LlmStreamFormat::ollama) {
    ollama_line(text, on_event);
  } else {
    sse_line(text, on_event);
  }
}

// ---- Ollama: one JSON object per line

void LlmStreamParser::ollama_line(std::string_view text, const StreamEventSink& on_event) {
  text = trim(text);
  if (text.empty()) {
    return;
  }
  const auto where = fmt::format("line {}", m_line_number);
  auto doc = parse_json(text, m_source);
  if (!doc) {
    fail_with(fmt::format("{}: {}", where, doc.error().message), on_event);
    return;
  }
  if (!doc->is_object()) {
    fail_with(fmt::format("{}: expected a JSON object, got '{}'", where, preview(text)), on_event);
    return;
  }
  if (const auto it = doc->find("error"); it != doc->end() && !it->is_null()) {
    fail_with(fmt::format("{}: the server reported an error: {}", where, error_text(*it)), on_event);
    return;
  }
  JsonFields f(*doc, m_source);
  std::string thinking = f.string("thinking");
  std::string response = f.string("response");
  if (const auto* message = f.object("message")) {  // /api/chat
    JsonFields mf(*message, m_source, "message.");
    thinking += mf.string("thinking");
    response += mf.string("content");
    if (mf.error()) {
      fail_with(fmt::format("{}: {}", where, mf.error()->message), on_event);
      return;
    }
  }
  const bool done = f.boolean("done");
  GenerationStats stats;
  if (done) {
    stats.done_reason = f.string("done_reason");
    stats.prompt_tokens = read_count(f, "prompt_eval_count");
    stats.output_tokens = read_count(f, "eval_count");
    stats.total_duration = read_ns(f, "total_duration");
    stats.load_duration = read_ns(f, "load_duration");
    stats.prompt_eval_duration = read_ns(f, "prompt_eval_duration");
    stats.eval_duration = read_ns(f, "eval_duration");
  }
  if (f.error()) {
    fail_with(fmt::format("{}: {}", where, f.error()->message), on_event);
    return;
  }
  if (!thinking.empty()) {
    on_event(StreamContent{std::move(thinking), true});
  }
  if (!response.empty()) {
    on_event(StreamContent{std::move(response), false});
  }
  if (done) {
    end_with(StreamDone{std::move(stats)}, on_event);
  }
}

// ---- OpenAI-compatible: server-sent events (the WHATWG event-stream format)

void LlmStreamParser::sse_line(std::string_view text, const StreamEventSink& on_event) {
  if (text.empty()) {
    sse_dispatch(on_event);
    return;
  }
  if (text.front() == ':') {
    return;  // a comment (a keep-alive)
  }
  if (m_event_line == 0) {
    m_event_line = m_line_number;  // the event's first line, for messages
  }
  const auto colon = text.find(':');
  const auto field = text.substr(0, colon);
  std::string_view value;
  if (colon != std::string_view::npos) {
    value = text.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') {
      value.remove_prefix(1);
    }
  }
  if (field == "data" || field == "error") {
    if (m_data.size() + value.size() + 1 > m_max_line_bytes) {
      fail_with(fmt::format("event at line {}: longer than {}", m_event_line, format_cap(m_max_line_bytes)), on_event);
      return;
    }
    if (m_has_data) {
      m_data += '\n';
    }
    m_data.append(value);
    m_has_data = true;
    m_error_field = m_error_field || field == "error";
  } else if (field == "event") {
    m_error_field = m_error_field || value == "error";
  } else if (trim(text).starts_with('{')) {
    // A JSON body where events were expected: a server that ignored "stream": true.
    fail_with(fmt::format("line {}: a JSON object where server-sent events were expected ('{}')", m_line_number,
                          preview(text)),
              on_event);
  }
  // "id", "retry" and unknown fields: nothing a generation needs.
}

void LlmStreamParser::sse_dispatch(const StreamEventSink& on_event) {
  const std::string data = std::exchange(m_data, std::string());
  const bool has_data = std::exchange(m_has_data, false);
  const bool error = std::exchange(m_error_field, false);
  if (has_data) {  // an event without data is no event
    if (error) {
      openai_error(data, on_event);
    } else {
      openai_data(data, on_event);
    }
  }
  m_event_line = 0;
}

void LlmStreamParser::openai_error(std::string_view data, const StreamEventSink& on_event) {
  const auto doc = json::parse(data, nullptr, /*allow_exceptions=*/false);
  std::string text;
  if (doc.is_object() && doc.contains("error") && !doc["error"].is_null()) {
    text = error_text(doc["error"]);
  } else if (doc.is_discarded()) {
    text = preview(trim(data));
  } else {
    text = error_text(doc);
  }
  fail_with(fmt::format("event at line {}: the server reported an error: {}", m_event_line, text), on_event);
}

void LlmStreamParser::openai_data(std::string_view data, const StreamEventSink& on_event) {
  data = trim(data);
  const auto where = fmt::format("event at line {}", m_event_line);
  if (data == "[DONE]") {
    end_with(StreamDone{openai_stats()}, on_event);
    return;
  }
  auto doc = parse_json(data, m_source);
  if (!doc) {
    fail_with(fmt::format("{}: {}", where, doc.error().message), on_event);
    return;
  }
  if (!doc->is_object()) {
    fail_with(fmt::format("{}: expected a JSON object, got '{}'", where, preview(data)), on_event);
    return;
  }
  if (const auto it = doc->find("error"); it != doc->end() && !it->is_null()) {
    openai_error(data, on_event);
    return;
  }
  JsonFields f(*doc, m_source);
  std::string reasoning;
  std::string content;
  std::string finish_reason;
  if (const auto* choices = f.array("choices")) {
    // One choice is asked for (n = 1); a server that sends more is timed on the first.
    for (std::size_t i = 0; i < choices->size(); ++i) {
      const auto& choice = (*choices)[i];
      const auto prefix = fmt::format("choices[{}].", i);
      if (!choice.is_object()) {
        fail_with(fmt::format("{}: field choices[{}]: expected an object", where, i), on_event);
        return;
      }
      JsonFields cf(choice, m_source, prefix);
      const auto index = cf.integer("index");
      if (cf.error()) {
        fail_with(fmt::format("{}: {}", where, cf.error()->message), on_event);
        return;
      }
      if (index.value_or(0) != 0) {
        continue;
      }
      finish_reason = cf.string("finish_reason");
      if (const auto* delta = cf.object("delta")) {
        JsonFields df(*delta, m_source, prefix + "delta.");
        content = df.string("content");
        reasoning = df.string("reasoning_content");
        reasoning += df.string("reasoning");
        if (df.error()) {
          fail_with(fmt::format("{}: {}", where, df.error()->message), on_event);
          return;
        }
      }
      if (cf.error()) {
        fail_with(fmt::format("{}: {}", where, cf.error()->message), on_event);
        return;
      }
      break;
    }
  }
  GenerationStats usage_seen;
  bool has_usage = false;
  if (const auto* usage = f.object("usage")) {
    has_usage = true;
    JsonFields uf(*usage, m_source, "usage.");
    usage_seen.prompt_tokens = read_count(uf, "prompt_tokens");
    usage_seen.output_tokens = read_count(uf, "completion_tokens");
    if (uf.error()) {
      fail_with(fmt::format("{}: {}", where, uf.error()->message), on_event);
      return;
    }
  }
  GenerationStats timings_seen;
  bool has_timings = false;
  if (const auto* timings = f.object("timings")) {  // llama.cpp's server
    has_timings = true;
    JsonFields tf(*timings, m_source, "timings.");
    timings_seen.prompt_tokens = read_count(tf, "prompt_n");
    timings_seen.output_tokens = read_count(tf, "predicted_n");
    timings_seen.prompt_eval_duration = read_ms(tf, "prompt_ms");
    timings_seen.eval_duration = read_ms(tf, "predicted_ms");
    if (tf.error()) {
      fail_with(fmt::format("{}: {}", where, tf.error()->message), on_event);
      return;
    }
  }
  if (f.error()) {
    fail_with(fmt::format("{}: {}", where, f.error()->message), on_event);
    return;
  }
  if (!finish_reason.empty()) {
    m_finish_reason = std::move(finish_reason);
  }
  if (has_usage) {  // the last one sent counts
    m_usage = std::move(usage_seen);
  }
  if (has_timings) {
    m_timings = std::move(timings_seen);
  }
  if (!reasoning.empty()) {
    on_event(StreamContent{std::move(reasoning), true});
  }
  if (!content.empty()) {
    on_event(StreamContent{std::move(content), false});
  }
}

}  // namespace mw::adapters
