#include "adapters/llm_client.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <nlohmann/json.hpp>
#include <type_traits>
#include <utility>
#include <variant>

#include "core/text.hpp"

namespace mw::adapters {

using nlohmann::json;

namespace {

constexpr std::size_t k_error_message_bytes = 200;

// The first non-empty line of a body, without its line end, cut at k_error_message_bytes.
std::string first_line_of(std::string_view text) {
  while (!text.empty() && (text.front() == '\n' || text.front() == '\r' || text.front() == ' ')) {
    text.remove_prefix(1);
  }
  text = text.substr(0, text.find('\n'));
  while (!text.empty() && (text.back() == '\r' || text.back() == ' ')) {
    text.remove_suffix(1);
  }
  if (text.size() > k_error_message_bytes) {
    return std::string(text.substr(0, k_error_message_bytes)) + "...";
  }
  return std::string(text);
}

// The server's own words in an error object, if it says them.
std::optional<std::string> error_words(const json& doc) {
  if (!doc.is_object()) {
    return std::nullopt;
  }
  if (const auto it = doc.find("error"); it != doc.end()) {
    if (it->is_string()) {
      return it->get<std::string>();
    }
    if (it->is_object()) {
      if (const auto message = it->find("message"); message != it->end() && message->is_string()) {
        return message->get<std::string>();
      }
    }
  }
  if (const auto message = doc.find("message"); message != doc.end() && message->is_string()) {
    return message->get<std::string>();
  }
  return std::nullopt;
}

}  // namespace

std::string_view generation_path(LlmStreamFormat api) {
  return api == LlmStreamFormat::ollama ? "/api/generate" : "/v1/chat/completions";
}

std::string generation_body(const GenerationRequest& request) {
  json body;
  body["model"] = request.model;
  body["stream"] = true;
  if (request.api == LlmStreamFormat::ollama) {
    body["prompt"] = request.prompt;
    json options = {{"num_predict", request.max_tokens}, {"temperature", 0}, {"seed", request.seed}};
    if (request.num_ctx) {
      options["num_ctx"] = *request.num_ctx;
    }
    body["options"] = std::move(options);
    // Ollama reads a string keep_alive as a Go duration ("5m"), where "300" is an error: a number goes as one.
    if (const auto seconds = parse_i64(request.keep_alive)) {
      body["keep_alive"] = *seconds;
    } else if (!request.keep_alive.empty()) {
      body["keep_alive"] = request.keep_alive;
    }
  } else {
    body["messages"] = json::array({{{"role", "user"}, {"content", request.prompt}}});
    body["max_tokens"] = request.max_tokens;
    body["temperature"] = 0;
    body["seed"] = request.seed;
    body["stream_options"] = {{"include_usage", true}};
  }
  // Text that is not UTF-8 is replaced rather than thrown on.
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string generation_error_message(long status, std::string_view body) {
  const auto doc = json::parse(body, nullptr, /*allow_exceptions=*/false);
  auto words = error_words(doc);
  if (!words) {
    words = first_line_of(body);
  } else if (words->size() > k_error_message_bytes) {
    words = words->substr(0, k_error_message_bytes) + "...";
  }
  return words->empty() ? fmt::format("HTTP {}", status) : fmt::format("HTTP {}: {}", status, *words);
}

MonotonicNow steady_now() {
  return [] {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch());
  };
}

LlmClient::LlmClient(Endpoint endpoint, GenerationLimits limits, MonotonicNow now)
    : m_http(std::move(endpoint), limits.first_byte_timeout), m_limits(limits), m_now(std::move(now)) {}

GenerationResult LlmClient::generate(const GenerationRequest& request, const std::atomic<bool>& stop) {
  GenerationResult out;
  const std::string_view path = generation_path(request.api);
  out.source = fmt::format("{} (POST {}, model '{}')", m_http.endpoint().text, path, request.model);
  if (request.model.empty()) {
    out.error = Error{out.source, "no model name given"};
    return out;
  }
  if (request.max_tokens < 1) {
    out.error = Error{out.source, fmt::format("max_tokens {} is not 1 or more", request.max_tokens)};
    return out;
  }
  const std::string body = generation_body(request);
  LlmStreamParser parser(request.api, out.source, m_limits.max_line_bytes);
  std::chrono::nanoseconds arrived{0};  // when the piece being fed arrived, from `sent`
  const StreamEventSink on_event = [&](const StreamEvent& event) {
    std::visit(
        [&](const auto& e) {
          using E = std::decay_t<decltype(e)>;
          if constexpr (std::is_same_v<E, StreamContent>) {
            out.times.chunks.push_back(arrived);
            out.content_bytes += e.bytes();
            out.reasoning_chunks += e.reasoning ? 1U : 0U;
          } else if constexpr (std::is_same_v<E, StreamDone>) {
            out.stats = e.stats;
            out.times.end = arrived;
          } else {
            out.error = e.error;
            out.times.end = arrived;
          }
        },
        event);
  };
  std::string error_body;
  const auto on_chunk = [&](std::string_view piece) {
    if (out.status != 200) {
      error_body.append(piece.substr(0, k_max_generation_error_bytes - error_body.size()));
      return error_body.size() < k_max_generation_error_bytes;
    }
    arrived = m_now() - out.sent;
    parser.feed(piece, on_event);
    return !parser.over();  // after the final event (or an error) nothing more is read
  };
  StreamOptions options;
  options.first_byte_timeout = m_limits.first_byte_timeout;
  options.idle_timeout = m_limits.idle_timeout;
  options.max_body_bytes = m_limits.max_body_bytes;
  options.pass_error_answers = true;
  out.sent = m_now();
  const auto streamed =
      m_http.stream_post(path, body, on_chunk, stop, options, [&](long status) { out.status = status; });
  arrived = m_now() - out.sent;
  if (!streamed) {
    if (!out.error) {
      const auto& e = streamed.error();
      const std::string after =
          out.times.chunks.empty() ? std::string() : fmt::format(" (after {} chunks)", out.times.chunks.size());
      out.error = Error{out.source, e.message + after, e.code};
    }
  } else if (*streamed != 200) {
    out.error = Error{out.source, generation_error_message(*streamed, error_body), *streamed == 404 ? ENOENT : 0};
  } else if (!parser.over()) {
    parser.finish(on_event);  // the server closed the stream: done (OpenAI's finish_reason) or cut short
  }
  if (out.error && !out.times.end) {
    out.times.end = arrived;
  }
  if (out.stats && out.stats->output_tokens && *out.stats->output_tokens >= 0) {
    out.times.output_tokens = static_cast<std::uint64_t>(*out.stats->output_tokens);
  }
  return out;
}

}  // namespace mw::adapters
