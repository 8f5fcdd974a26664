// The streamed answers a benchmark times (adapters/llm_stream): Ollama's NDJSON and the OpenAI-compatible
// server-sent events, fed in every split a socket could make (inside a UTF-8 sequence, a "\r\n", a "data:"),
// with the same events out every time; the server's errors, broken lines and overlong ones as one line
// naming the request.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "adapters/llm_stream.hpp"

using namespace mw;
using namespace mw::adapters;
using namespace std::chrono_literals;

namespace {

constexpr std::string_view k_ollama_source = "http://127.0.0.1:11434 (POST /api/generate)";
constexpr std::string_view k_openai_source = "http://127.0.0.1:8080 (POST /v1/chat/completions)";

std::string opt(const std::optional<std::int64_t>& v) {
  return v ? std::to_string(*v) : "-";
}
std::string opt(const std::optional<std::chrono::nanoseconds>& v) {
  return v ? std::to_string(v->count()) : "-";
}

// One event as text, so that whole sequences compare in one assertion and print readably.
std::string describe(const StreamEvent& event) {
  if (const auto* c = std::get_if<StreamContent>(&event)) {
    return fmt::format("{}[{}]:{}", c->reasoning ? "reasoning" : "content", c->bytes(), c->text);
  }
  if (const auto* d = std::get_if<StreamDone>(&event)) {
    const auto& s = d->stats;
    return fmt::format("done:{} prompt={} out={} total={} load={} prompt_eval={} eval={}", s.done_reason,
                       opt(s.prompt_tokens), opt(s.output_tokens), opt(s.total_duration), opt(s.load_duration),
                       opt(s.prompt_eval_duration), opt(s.eval_duration));
  }
  return "error:" + std::get<StreamError>(event).error.line();
}

using Events = std::vector<std::string>;

// Feeds the pieces one after another, then ends the stream.
Events run(LlmStreamFormat format, const std::vector<std::string_view>& pieces,
           std::size_t cap = k_max_stream_line_bytes) {
  LlmStreamParser parser(format, std::string(format == LlmStreamFormat::ollama ? k_ollama_source : k_openai_source),
                         cap);
  Events out;
  const auto sink = [&](const StreamEvent& e) { out.push_back(describe(e)); };
  for (const auto piece : pieces) {
    parser.feed(piece, sink);
  }
  parser.finish(sink);
  EXPECT_TRUE(parser.over());
  return out;
}

Events run_whole(LlmStreamFormat format, std::string_view body, std::size_t cap = k_max_stream_line_bytes) {
  return run(format, {body}, cap);
}

// A captured /api/generate answer (Ollama 0.11, abridged created_at), with multi-byte tokens.
const std::string k_ollama_stream =
    "{\"model\":\"llama3.2\",\"created_at\":\"2025-08-04T08:52:19.38Z\",\"response\":\"The\",\"done\":false}\n"
    "{\"model\":\"llama3.2\",\"created_at\":\"2025-08-04T08:52:19.40Z\",\"response\":\" caf\xC3\xA9\",\"done\":false}\n"
    "{\"model\":\"llama3.2\",\"created_at\":\"2025-08-04T08:52:19.42Z\",\"response\":\" \xF0\x9F\x8C\x8D\","
    "\"done\":false}\n"
    "{\"model\":\"llama3.2\",\"created_at\":\"2025-08-04T08:52:19.44Z\",\"response\":\" is\\n\\\"open\\\"\","
    "\"done\":false}\n"
    "{\"model\":\"llama3.2\",\"created_at\":\"2025-08-04T08:52:19.46Z\",\"response\":\"\",\"done\":true,"
    "\"done_reason\":\"length\",\"context\":[128006,9125,128007],\"total_duration\":10706818083,"
    "\"load_duration\":6338219291,\"prompt_eval_count\":26,\"prompt_eval_duration\":130079000,\"eval_count\":4,"
    "\"eval_duration\":4232710000}\n";

const Events k_ollama_events{
    "content[3]:The",
    "content[6]: caf\xC3\xA9",
    "content[5]: \xF0\x9F\x8C\x8D",
    "content[10]: is\n\"open\"",
    "done:length prompt=26 out=4 total=10706818083 load=6338219291 prompt_eval=130079000 eval=4232710000",
};

// A captured /v1/chat/completions answer with stream_options.include_usage, CRLF line ends and a keep-alive
// comment: the role chunk has empty content, the finish chunk an empty delta, the usage chunk no choices.
const std::string k_openai_stream =
    ": keep-alive\r\n\r\n"
    "data: {\"id\":\"chatcmpl-7\",\"object\":\"chat.completion.chunk\",\"created\":1754300000,\"model\":\"llama3.2\","
    "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\r\n\r\n"
    "data: {\"id\":\"chatcmpl-7\",\"object\":\"chat.completion.chunk\",\"created\":1754300000,\"model\":\"llama3.2\","
    "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"H\xC3\xA9llo\"},\"finish_reason\":null}]}\r\n\r\n"
    "data: {\"id\":\"chatcmpl-7\",\"object\":\"chat.completion.chunk\",\"created\":1754300000,\"model\":\"llama3.2\","
    "\"choices\":[{\"index\":0,\"delta\":{\"content\":\" \xF0\x9F\x8C\x8D\"},\"finish_reason\":null}]}\r\n\r\n"
    "data: {\"id\":\"chatcmpl-7\",\"object\":\"chat.completion.chunk\",\"created\":1754300000,\"model\":\"llama3.2\","
    "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}\r\n\r\n"
    "data: {\"id\":\"chatcmpl-7\",\"object\":\"chat.completion.chunk\",\"created\":1754300000,\"model\":\"llama3.2\","
    "\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":3,\"total_tokens\":15}}\r\n\r\n"
    "data: [DONE]\r\n\r\n";

const Events k_openai_events{
    "content[6]:H\xC3\xA9llo",
    "content[5]: \xF0\x9F\x8C\x8D",
    "done:length prompt=12 out=3 total=- load=- prompt_eval=- eval=-",
};

std::vector<std::string_view> split_at(std::string_view text, std::vector<std::size_t> cuts) {
  std::vector<std::string_view> pieces;
  std::size_t from = 0;
  for (const auto cut : cuts) {
    pieces.push_back(text.substr(from, cut - from));
    from = cut;
  }
  pieces.push_back(text.substr(from));
  return pieces;
}

std::vector<std::string_view> bytes_of(std::string_view text) {
  std::vector<std::string_view> pieces;
  for (std::size_t i = 0; i < text.size(); ++i) {
    pieces.push_back(text.substr(i, 1));
  }
  return pieces;
}

// Every way of cutting the stream in two, and one byte at a time.
void expect_every_split(LlmStreamFormat format, const std::string& body, const Events& expected) {
  ASSERT_EQ(run_whole(format, body), expected);
  for (std::size_t cut = 0; cut <= body.size(); ++cut) {
    ASSERT_EQ(run(format, split_at(body, {cut})), expected) << "cut at byte " << cut;
  }
  EXPECT_EQ(run(format, bytes_of(body)), expected) << "one byte at a time";
}

// Random splits into up to 40 pieces (empty ones included), from a fixed seed.
void expect_random_splits(LlmStreamFormat format, const std::string& body, const Events& expected) {
  std::mt19937 random(20250804U);
  for (int round = 0; round < 300; ++round) {
    std::uniform_int_distribution<std::size_t> how_many(1, 40);
    std::uniform_int_distribution<std::size_t> where(0, body.size());
    std::vector<std::size_t> cuts(how_many(random));
    for (auto& cut : cuts) {
      cut = where(random);
    }
    std::sort(cuts.begin(), cuts.end());
    ASSERT_EQ(run(format, split_at(body, cuts)), expected) << "round " << round;
  }
}

}  // namespace

// ---- Ollama

TEST(OllamaStream, TokensThenTheServersFigures) {
  EXPECT_EQ(run_whole(LlmStreamFormat::ollama, k_ollama_stream), k_ollama_events);
}

TEST(OllamaStream, EverySplitGivesTheSameEvents) {
  expect_every_split(LlmStreamFormat::ollama, k_ollama_stream, k_ollama_events);
  // The same answer with "\r\n" line ends: a cut between the "\r" and the "\n" is one line end.
  std::string crlf;
  for (const char c : k_ollama_stream) {
    crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
  }
  expect_every_split(LlmStreamFormat::ollama, crlf, k_ollama_events);
}

TEST(OllamaStream, RandomSplitsGiveTheSameEvents) {
  expect_random_splits(LlmStreamFormat::ollama, k_ollama_stream, k_ollama_events);
}

TEST(OllamaStream, EachEventIsReportedDuringTheFeedThatCompletesIt) {
  LlmStreamParser parser(LlmStreamFormat::ollama, "ollama");
  Events got;
  const auto sink = [&](const StreamEvent& e) { got.push_back(describe(e)); };
  parser.feed("{\"response\":\"a\",\"done\":false}\n{\"response\":\"b\"", sink);
  EXPECT_EQ(got, Events{"content[1]:a"});
  parser.feed(",\"done\":false}", sink);
  EXPECT_EQ(got.size(), 1U);  // complete JSON, but not yet its line end
  parser.feed("\n", sink);
  EXPECT_EQ(got.back(), "content[1]:b");
  EXPECT_FALSE(parser.over());
  parser.feed("{\"response\":\"\",\"done\":true}\n", sink);
  EXPECT_TRUE(parser.done());
  EXPECT_EQ(got.back(), "done: prompt=- out=- total=- load=- prompt_eval=- eval=-");  // unknown, not 0
}

TEST(OllamaStream, AFinalLineWithoutItsNewlineIsReadAtTheEnd) {
  const auto body = std::string_view(k_ollama_stream).substr(0, k_ollama_stream.size() - 1);
  EXPECT_EQ(run_whole(LlmStreamFormat::ollama, body), k_ollama_events);
}

TEST(OllamaStream, ChatMessagesAndThinking) {
  const std::string body =
      "{\"message\":{\"role\":\"assistant\",\"content\":\"\",\"thinking\":\"Hmm\"},\"done\":false}\n"
      "{\"message\":{\"role\":\"assistant\",\"content\":\"Yes\"},\"done\":false}\n"
      "{\"thinking\":\"so\",\"response\":\"\",\"done\":false}\n"
      "{\"message\":{\"role\":\"assistant\",\"content\":\".\"},\"done\":true,\"done_reason\":\"stop\","
      "\"eval_count\":3}\n";
  EXPECT_EQ(run_whole(LlmStreamFormat::ollama, body),
            (Events{"reasoning[3]:Hmm", "content[3]:Yes", "reasoning[2]:so", "content[1]:.",
                    "done:stop prompt=- out=3 total=- load=- prompt_eval=- eval=-"}));
}

TEST(OllamaStream, AnErrorMidStreamEndsIt) {
  const std::string body =
      "{\"response\":\"Once\",\"done\":false}\n"
      "{\"response\":\" upon\",\"done\":false}\n"
      "{\"error\":\"an error was encountered while running the model: CUDA error: out of memory\"}\n"
      "{\"response\":\" a\",\"done\":false}\n";
  const Events expected{"content[4]:Once", "content[5]: upon",
                        "error:http://127.0.0.1:11434 (POST /api/generate): line 3: the server reported an error: an "
                        "error was encountered while running the model: CUDA error: out of memory"};
  EXPECT_EQ(run_whole(LlmStreamFormat::ollama, body), expected);  // nothing after it, and finish() adds nothing
  expect_random_splits(LlmStreamFormat::ollama, body, expected);
}

TEST(OllamaStream, BrokenLinesAreErrorsNamingTheLine) {
  auto got = run_whole(LlmStreamFormat::ollama, "{\"response\":\"a\",\"done\":false}\nnot json\n");
  ASSERT_EQ(got.size(), 2U);
  EXPECT_EQ(got[1],
            "error:http://127.0.0.1:11434 (POST /api/generate): line 2: invalid JSON in the response (starts with "
            "'not json')");

  got = run_whole(LlmStreamFormat::ollama, "[1,2]\n");
  EXPECT_EQ(got, Events{"error:http://127.0.0.1:11434 (POST /api/generate): line 1: expected a JSON object, got "
                        "'[1,2]'"});

  got = run_whole(LlmStreamFormat::ollama, "{\"response\":7,\"done\":false}\n");
  EXPECT_EQ(got, Events{"error:http://127.0.0.1:11434 (POST /api/generate): line 1: field response: expected a "
                        "string"});

  got = run_whole(LlmStreamFormat::ollama, "\n\n{\"done\":true,\"eval_count\":\"12\"}\n");
  EXPECT_EQ(got, Events{"error:http://127.0.0.1:11434 (POST /api/generate): line 3: field eval_count: expected an "
                        "integer"});

  got = run_whole(LlmStreamFormat::ollama, "{\"done\":true,\"eval_duration\":-5}\n");
  EXPECT_EQ(got, Events{"error:http://127.0.0.1:11434 (POST /api/generate): line 1: field eval_duration: expected "
                        "a non-negative integer, got -5"});

  // Invalid UTF-8 in a token is not JSON; the message escapes what it quotes.
  got = run_whole(LlmStreamFormat::ollama, "{\"response\":\"\xFF\x01\",\"done\":false}\n");
  ASSERT_EQ(got.size(), 1U);
  EXPECT_TRUE(got[0].starts_with("error:http://127.0.0.1:11434 (POST /api/generate): line 1: invalid JSON")) << got[0];
  EXPECT_EQ(got[0].find('\x01'), std::string::npos);
}

TEST(OllamaStream, AStreamThatEndsEarlyIsAnError) {
  const Events expected{
      "content[1]:a",
      "error:http://127.0.0.1:11434 (POST /api/generate): the stream ended before its final line (\"done\": true)"};
  EXPECT_EQ(run_whole(LlmStreamFormat::ollama, "{\"response\":\"a\",\"done\":false}\n"), expected);
  // Cut inside a line: the partial line is read at the end, and is not JSON.
  const auto cut = run_whole(LlmStreamFormat::ollama, "{\"response\":\"a\",\"done\":false}\n{\"respo");
  ASSERT_EQ(cut.size(), 2U);
  EXPECT_EQ(cut[1],
            "error:http://127.0.0.1:11434 (POST /api/generate): line 2: invalid JSON in the response (starts with "
            "'{\"respo')");
  EXPECT_EQ(run_whole(LlmStreamFormat::ollama, ""),
            Events{"error:http://127.0.0.1:11434 (POST /api/generate): the stream ended before its final line "
                   "(\"done\": true)"});
}

TEST(OllamaStream, NothingIsReadAfterTheEnd) {
  LlmStreamParser parser(LlmStreamFormat::ollama, "ollama");
  Events got;
  const auto sink = [&](const StreamEvent& e) { got.push_back(describe(e)); };
  parser.feed("{\"done\":true,\"eval_count\":0}\n{\"response\":\"late\",\"done\":false}\n", sink);
  parser.feed("garbage\n", sink);
  parser.finish(sink);
  EXPECT_EQ(got, Events{"done: prompt=- out=0 total=- load=- prompt_eval=- eval=-"});  // a real 0
  EXPECT_TRUE(parser.done());
}

TEST(OllamaStream, ALineOverTheCapIsAnErrorNamingTheSource) {
  // The default cap, 1 MiB: a token line of 1 MiB + 1 byte, fed in 64 KiB pieces without a newline.
  const std::string huge = "{\"response\":\"" + std::string(k_max_stream_line_bytes, 'x') + "\",\"done\":false}\n";
  std::vector<std::string_view> pieces;
  for (std::size_t at = 0; at < huge.size(); at += 64U << 10) {
    pieces.push_back(std::string_view(huge).substr(at, 64U << 10));
  }
  EXPECT_EQ(run(LlmStreamFormat::ollama, pieces),
            Events{"error:http://127.0.0.1:11434 (POST /api/generate): line 1: longer than 1 MiB"});

  // Exactly at a small cap is fine; one byte more is not, and nothing after it is read.
  const std::string line = "{\"response\":\"ab\",\"done\":true}";  // 29 bytes
  EXPECT_EQ(run_whole(LlmStreamFormat::ollama, line + "\n", line.size()),
            (Events{"content[2]:ab", "done: prompt=- out=- total=- load=- prompt_eval=- eval=-"}));
  EXPECT_EQ(
      run_whole(LlmStreamFormat::ollama, "{\"response\":\"a\",\"done\":false}\n" + line + "x\n", line.size()),
      (Events{"content[1]:a", "error:http://127.0.0.1:11434 (POST /api/generate): line 2: longer than 29 bytes"}));
}

// ---- OpenAI-compatible

TEST(OpenAiStream, ContentThenUsageThenDone) {
  EXPECT_EQ(run_whole(LlmStreamFormat::openai, k_openai_stream), k_openai_events);
}

TEST(OpenAiStream, EverySplitGivesTheSameEvents) {
  expect_every_split(LlmStreamFormat::openai, k_openai_stream, k_openai_events);
  // LF-only line ends, as llama.cpp's server and vLLM send them.
  std::string lf;
  for (const char c : k_openai_stream) {
    if (c != '\r') {
      lf += c;
    }
  }
  expect_every_split(LlmStreamFormat::openai, lf, k_openai_events);
}

TEST(OpenAiStream, RandomSplitsGiveTheSameEvents) {
  expect_random_splits(LlmStreamFormat::openai, k_openai_stream, k_openai_events);
}

TEST(OpenAiStream, EventSyntaxAsTheStandardReadsIt) {
  // "data:" without the space, CR-only line ends, a data field over two lines (joined by "\n", which JSON
  // reads as a blank), an id and a retry field, and an event with no data.
  const std::string body =
      "id: 1\rretry: 3000\r\r"
      "data:{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"one\"}}]}\r\r"
      "data: {\"choices\":[{\"index\":0,\r"
      "data: \"delta\":{\"content\":\"two\"},\"finish_reason\":\"stop\"}]}\r\r"
      "event: ping\r\r"
      "data: [DONE]\r\r";
  const Events expected{"content[3]:one", "content[3]:two",
                        "done:stop prompt=- out=- total=- load=- prompt_eval=- "
                        "eval=-"};
  expect_every_split(LlmStreamFormat::openai, body, expected);
}

TEST(OpenAiStream, ReasoningAndOtherChoicesAndLlamaCppTimings) {
  const std::string body =
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"think\"}}]}\n\n"
      "data: {\"choices\":[{\"index\":1,\"delta\":{\"content\":\"other\"}},"
      "{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":null},\"finish_reason\":\"stop\"}],"
      "\"timings\":{\"prompt_n\":5,\"prompt_ms\":12.5,\"predicted_n\":2,\"predicted_ms\":30.25,"
      "\"predicted_per_second\":66.1}}\n\n"
      "data: [DONE]\n\n";
  EXPECT_EQ(run_whole(LlmStreamFormat::openai, body),
            (Events{"reasoning[5]:think", "content[2]:Hi",
                    "done:stop prompt=5 out=2 total=- load=- prompt_eval=12500000 eval=30250000"}));
  // usage, when sent, is the count; the timings still give the durations.
  const std::string both =
      "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}],"
      "\"timings\":{\"prompt_n\":5,\"prompt_ms\":1,\"predicted_n\":2,\"predicted_ms\":2}}\n\n"
      "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":6,\"completion_tokens\":3}}\n\n"
      "data: [DONE]\n\n";
  EXPECT_EQ(run_whole(LlmStreamFormat::openai, both),
            Events{"done:length prompt=6 out=3 total=- load=- prompt_eval=1000000 eval=2000000"});
}

TEST(OpenAiStream, AnErrorObjectEndsTheStream) {
  const std::string body =
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n"
      "data: {\"error\":{\"message\":\"the model runner crashed\",\"type\":\"server_error\",\"code\":500}}\n\n"
      "data: [DONE]\n\n";
  const Events expected{"content[2]:Hi",
                        "error:http://127.0.0.1:8080 (POST /v1/chat/completions): event at line 3: the server "
                        "reported an error: the model runner crashed (code 500)"};
  EXPECT_EQ(run_whole(LlmStreamFormat::openai, body), expected);
  expect_random_splits(LlmStreamFormat::openai, body, expected);

  // llama.cpp's server names the field "error"; others say "event: error"; Ollama's error is a string.
  EXPECT_EQ(run_whole(LlmStreamFormat::openai,
                      "error: {\"code\":400,\"message\":\"context size exceeded\",\"type\":\"invalid_request_error\"}"
                      "\n\n"),
            Events{"error:http://127.0.0.1:8080 (POST /v1/chat/completions): event at line 1: the server reported "
                   "an error: context size exceeded (code 400)"});
  EXPECT_EQ(run_whole(LlmStreamFormat::openai, "event: error\ndata: upstream timed out\n\n"),
            Events{"error:http://127.0.0.1:8080 (POST /v1/chat/completions): event at line 1: the server reported "
                   "an error: upstream timed out"});
  EXPECT_EQ(run_whole(LlmStreamFormat::openai, "data: {\"error\":\"model 'x' not found\"}\n\n"),
            Events{"error:http://127.0.0.1:8080 (POST /v1/chat/completions): event at line 1: the server reported "
                   "an error: model 'x' not found"});
}

TEST(OpenAiStream, BrokenEventsAreErrorsNamingTheEvent) {
  EXPECT_EQ(run_whole(LlmStreamFormat::openai, "\n\ndata: {\"choices\":[{\"index\":0,\"delta\":\"x\"}]}\n\n"),
            Events{"error:http://127.0.0.1:8080 (POST /v1/chat/completions): event at line 3: field "
                   "choices[0].delta: expected an object"});
  EXPECT_EQ(run_whole(LlmStreamFormat::openai, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":1}}]}\n\n"),
            Events{"error:http://127.0.0.1:8080 (POST /v1/chat/completions): event at line 1: field "
                   "choices[0].delta.content: expected a string"});
  EXPECT_EQ(run_whole(LlmStreamFormat::openai, "data: {\"choices\":[],\"usage\":{\"completion_tokens\":-1}}\n\n"),
            Events{"error:http://127.0.0.1:8080 (POST /v1/chat/completions): event at line 1: field "
                   "usage.completion_tokens: expected a non-negative integer, got -1"});
  EXPECT_EQ(run_whole(LlmStreamFormat::openai, "data: {\"choices\":[7]}\n\n"),
            Events{"error:http://127.0.0.1:8080 (POST /v1/chat/completions): event at line 1: field choices[0]: "
                   "expected an object"});
  EXPECT_EQ(run_whole(LlmStreamFormat::openai, "data: {\"choices\":[{\"index\"\n\n"),
            Events{"error:http://127.0.0.1:8080 (POST /v1/chat/completions): event at line 1: invalid JSON in the "
                   "response (starts with '{\"choices\":[{\"index\"')"});
  // A server that ignored "stream": true answers one JSON body.
  EXPECT_EQ(run_whole(LlmStreamFormat::openai, "{\"choices\":[{\"message\":{\"content\":\"Hi\"}}]}"),
            Events{"error:http://127.0.0.1:8080 (POST /v1/chat/completions): line 1: a JSON object where "
                   "server-sent events were expected ('{\"choices\":[{\"message\":{\"content\":\"Hi\"}}]}')"});
}

TEST(OpenAiStream, TheEndOfTheStream) {
  // A finish_reason, then the connection closed without [DONE]: done, with what was said.
  EXPECT_EQ(run_whole(LlmStreamFormat::openai,
                      "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"},\"finish_reason\":\"stop\"}]}"),
            (Events{"content[1]:a", "done:stop prompt=- out=- total=- load=- prompt_eval=- eval=-"}));
  // Neither: the stream broke.
  EXPECT_EQ(run_whole(LlmStreamFormat::openai, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n"),
            (Events{"content[1]:a",
                    "error:http://127.0.0.1:8080 (POST /v1/chat/completions): the stream ended before \"data: "
                    "[DONE]\""}));
  EXPECT_EQ(run_whole(LlmStreamFormat::openai, ""),
            Events{"error:http://127.0.0.1:8080 (POST /v1/chat/completions): the stream ended before \"data: "
                   "[DONE]\""});
}

TEST(OpenAiStream, AnEventOverTheCapIsAnError) {
  // Two data lines of 40 bytes each are one event of 81 bytes: over a 64-byte cap though each line is under.
  const std::string line = "data: " + std::string(40, 'x') + "\n";
  EXPECT_EQ(run_whole(LlmStreamFormat::openai, line + line + "\n", 64),
            Events{"error:http://127.0.0.1:8080 (POST /v1/chat/completions): event at line 1: longer than 64 bytes"});
  EXPECT_EQ(run_whole(LlmStreamFormat::openai, ": " + std::string(100, 'c') + "\n", 64),
            Events{"error:http://127.0.0.1:8080 (POST /v1/chat/completions): line 1: longer than 64 bytes"});
}
