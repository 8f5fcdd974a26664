// Internal to mw_adapters (not under include/, so nothing above the layer can include it): the HTTP/1.1
// parsers of the embedded server (requests, http_server.cpp) and of the client (answers, http.cpp), named
// here so that the libFuzzer targets in tests/fuzz can drive them from a byte buffer. Not an API.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "adapters/http.hpp"
#include "adapters/http_server.hpp"
#include "core/expected.hpp"

namespace mw::adapters::detail {

// ---- Requests, as the server reads them ---------------------------------------------------------------------------
namespace request {

struct ParseFailure {
  int status;  // 400, 411, 413, 431: what the server answers
  std::string message;
};

struct ParsedHead {
  ServerRequest request;  // without body and peer
  std::size_t content_length = 0;
  bool expect_continue = false;
};

// Parses the request line and headers (`head` excludes the blank line that ends them). A Content-Length over
// options.max_body_bytes is a 413.
[[nodiscard]] std::variant<ParsedHead, ParseFailure> parse_head(std::string_view head,
                                                                const HttpServerOptions& options);

// Where the header section ends: the offset of the first body byte and the length of the head without its
// blank line; nullopt when not yet complete. Accepts CRLF and bare LF line ends. Line ends before `from` are
// not looked at (see NeedMore::searched).
[[nodiscard]] std::optional<std::pair<std::size_t, std::size_t>> find_head_end(std::string_view data,
                                                                               std::size_t from = 0);

// The head is not complete yet: read more.
struct NeedMore {
  std::size_t searched = 0;  // no head ends before this offset: where the next scan_head may start looking
};

struct HeadDone {
  ParsedHead head;
  std::size_t body_offset = 0;  // where the body starts in what was received
};

// Looks at what a connection has received so far (from its first byte): the head, a failure (431 when the
// header section passes options.max_header_bytes, or what parse_head says), or not yet. `from`: the
// NeedMore::searched of the previous look at the same bytes (fewer of them), so that a head sent a byte at a
// time is not searched again from its start after each byte.
[[nodiscard]] std::variant<NeedMore, HeadDone, ParseFailure> scan_head(std::string_view received,
                                                                       const HttpServerOptions& options,
                                                                       std::size_t from = 0);

// The body, once all of it has been received: content_length bytes from body_offset; nullopt before.
[[nodiscard]] std::optional<std::string_view> complete_body(std::string_view received, const HeadDone& head);

}  // namespace request

// ---- Answers, as the client reads them ----------------------------------------------------------------------------
namespace response {

using SteadyClock = std::chrono::steady_clock;

// A failure below the request level.
struct Failure {
  enum class Kind {
    other,
    timeout,
    stopped,   // the stream's stop flag
    eof,       // the peer closed the connection
    reset,     // EPIPE or ECONNRESET
    too_large  // the body passed the request's cap
  };
  Kind kind = Kind::other;
  std::string message;
  int code = 0;
};

// When to give up waiting on a socket: a deadline (requests), a stop flag checked every 100 ms (streams).
struct Wait {
  std::optional<SteadyClock::time_point> deadline;
  std::chrono::milliseconds reported{0};  // the time-out named in "no answer within"
  const std::atomic<bool>* stop = nullptr;
  // The longest one wait for the socket may last (a stream's silence between two pieces); none when empty.
  std::optional<std::chrono::milliseconds> idle;
};

// Reads an answer into a buffer (which keeps what one step has not consumed yet): from a socket, or from bytes
// held in memory, a piece at a time, as if they came from a socket that then closes (fuzzing, tests).
class Reader {
 public:
  Reader(int fd, std::string& buffer, const Wait& wait) : m_fd(fd), m_buffer(buffer), m_wait(&wait) {}
  // `source` must outlive the reader; `piece` bytes (at least 1) come per read.
  Reader(std::string_view source, std::size_t piece, std::string& buffer)
      : m_buffer(buffer), m_source(source), m_piece(piece == 0 ? 1 : piece) {}

  [[nodiscard]] std::string& buffer() { return m_buffer; }
  // Bytes received for this answer (0: the server has said nothing yet).
  [[nodiscard]] std::size_t received() const { return m_received; }

  // Appends what arrives next to the buffer; nullopt when something did.
  [[nodiscard]] std::optional<Failure> more();

 private:
  int m_fd = -1;
  std::string& m_buffer;
  const Wait* m_wait = nullptr;
  std::string_view m_source;
  std::size_t m_piece = 0;
  std::size_t m_received = 0;
};

// The names of the headers to keep (RequestOptions::keep_headers), compared without case.
using KeepHeaders = std::span<const std::string>;

struct Head {
  long status = 0;
  bool chunked = false;
  bool until_close = false;  // no length given: the body ends when the server closes
  bool no_body = false;      // 204, 304: never a body
  bool close = false;        // the server will not keep the connection
  std::uint64_t content_length = 0;
  std::vector<HttpHeader> headers;  // the lines named in `keep`, at most k_max_kept_headers, named as in `keep`
};

// The status line and headers of one answer, `text` without the blank line that ends them.
[[nodiscard]] Expected<Head, Failure> parse_head(std::string_view text, KeepHeaders keep = {});

// Reads the head of the answer off the front of the buffer, skipping interim 1xx answers (whose headers are not
// kept).
[[nodiscard]] Expected<Head, Failure> read_head(Reader& reader, KeepHeaders keep = {});

// Where the body's pieces go: returns false to end the transfer early.
using Sink = std::function<bool(std::string_view)>;

enum class BodyEnd { complete, stopped_by_sink };

// Passes up to `count` bytes of the body to the sink, reading as needed; false when the sink stopped it.
[[nodiscard]] Expected<bool, Failure> pass_exactly(Reader& reader, std::uint64_t count, const Sink& sink);

// One line (up to '\n') off the front of the buffer, without its line end.
[[nodiscard]] Expected<std::string, Failure> take_line(Reader& reader);

// "1a3f", "1a3f;ext=1" -> 0x1a3f; nullopt for anything else (or more than 15 hex digits).
[[nodiscard]] std::optional<std::uint64_t> parse_chunk_size(std::string_view line);

// Passes the body (de-chunked) to the sink.
[[nodiscard]] Expected<BodyEnd, Failure> read_body(Reader& reader, const Head& head, const Sink& sink);

struct Answer {
  long status = 0;
  std::string body;
  bool close = false;               // the connection cannot carry another request
  std::vector<HttpHeader> headers;  // as Head::headers
};

// The head and body of one answer, the body at most `max_body` bytes (else a Failure::Kind::too_large; a body
// declared longer than that is not read at all).
[[nodiscard]] Expected<Answer, Failure> read_answer(Reader& reader, std::size_t max_body, KeepHeaders keep = {});

}  // namespace response

}  // namespace mw::adapters::detail
