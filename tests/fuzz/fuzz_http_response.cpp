// libFuzzer target for the HTTP client's answer parser (detail::response in src/adapters/http.cpp: read_answer,
// read_head with interim 1xx answers, parse_head, read_body with chunks and trailers, take_line,
// parse_chunk_size); scripts/fuzz.sh builds and runs it under ASan and UBSan. The answer is read from memory
// through the same Reader the client uses on a socket, as if the server then closed the connection. The first
// 2 bytes of an input choose the body cap and the size of the pieces the bytes arrive in; the rest is what
// the server sent. Besides "no crash, no leak, no hang" it checks:
//   - a body never passes its cap, and a cap that is passed is a too_large failure;
//   - an answer is a final status (200 to 999); 204, 304 have no body; a Content-Length body is exactly
//     that long; a body that ends with the connection means the connection cannot be kept;
//   - errors are one line;
//   - the headers kept (a few names asked for) are at most k_max_kept_headers, each named as asked, its value
//     without a line end and without spaces or tabs around it;
//   - read a byte at a time, or in pieces, the outcome is the one of reading everything at once: same
//     status, body, keep-alive and kept headers, or a failure of the same kind.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/http.hpp"
#include "http_parse.hpp"

namespace {

using namespace mw::adapters::detail::response;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_http_response: invariant broken: %s\n", what);
    std::abort();
  }
}

bool one_line(const std::string& text) {
  return !text.empty() && text.find_first_of("\r\n") == std::string::npos;
}

// The headers the fuzzer's answers are asked to keep: what the Docker client asks of /_ping, and two that the
// parser reads itself.
const std::string k_keep[] = {"Api-Version", "server", "CONTENT-LENGTH", "transfer-encoding"};

bool kept_well(const std::vector<mw::adapters::HttpHeader>& headers) {
  if (headers.size() > mw::adapters::k_max_kept_headers) {
    return false;
  }
  for (const auto& h : headers) {
    bool asked = false;
    for (const auto& k : k_keep) {
      asked = asked || h.name == k;
    }
    const auto& v = h.value;
    if (!asked || v.find_first_of("\n") != std::string::npos ||
        (!v.empty() &&
         (v.front() == ' ' || v.front() == '\t' || v.back() == ' ' || v.back() == '\t' || v.back() == '\r'))) {
      return false;
    }
  }
  return true;
}

mw::Expected<Answer, Failure> read(std::string_view bytes, std::size_t piece, std::size_t max_body) {
  std::string buffer;
  Reader reader(bytes, piece, buffer);
  return read_answer(reader, max_body, k_keep);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) {
    return 0;
  }
  // Byte 0: the body cap, 0 to 2032 bytes in steps of 16 (bit 7 clear) or the client's default, 64 MiB.
  // Byte 1: the pieces the answer arrives in, 1 to 256 bytes.
  const std::size_t max_body =
      (data[0] & 0x80U) != 0 ? mw::adapters::k_default_max_body_bytes : std::size_t{data[0]} * 16;
  const std::size_t piece = 1 + std::size_t{data[1]};
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 2, size - 2);  // NOLINT

  const auto whole = read(bytes, bytes.size(), max_body);
  if (whole) {
    check(whole->status >= 200 && whole->status <= 999, "a final status");
    check(whole->body.size() <= max_body, "the body within its cap");
    check(kept_well(whole->headers), "kept headers are bounded, asked for and trimmed");
  } else {
    check(one_line(whole.error().message), "an error is one line");
  }

  // The head alone, to check the body against what it declared.
  {
    std::string buffer;
    Reader reader(bytes, bytes.size(), buffer);
    const auto head = read_head(reader, k_keep);
    if (head) {
      check(kept_well(head->headers), "the head's kept headers are bounded, asked for and trimmed");
      check(head->status >= 200, "read_head skips interim answers");
      check(!head->until_close || head->close, "a body up to the close closes the connection");
      if (whole) {
        check(whole->close == head->close, "read_answer keeps the head's keep-alive");
        if (head->no_body) {
          check(whole->body.empty(), "no body for 1xx, 204 and 304");
        } else if (!head->chunked && !head->until_close) {
          check(whole->body.size() == head->content_length, "a Content-Length body is that long");
        }
      } else if (whole.error().kind == Failure::Kind::too_large) {
        check(!head->no_body, "only a body can be too large");
        check(head->chunked || head->until_close || head->content_length > max_body,
              "a declared length is too large only over the cap");
      }
    } else if (whole) {
      check(false, "an answer has a head");
    }
  }

  // However the bytes arrive, the same outcome.
  for (const std::size_t step : {std::size_t{1}, piece}) {
    const auto split = read(bytes, step, max_body);
    check(split.has_value() == whole.has_value(), "the same outcome however the bytes are split");
    if (whole) {
      check(split->status == whole->status && split->body == whole->body && split->close == whole->close,
            "the same answer however the bytes are split");
      check(split->headers.size() == whole->headers.size(), "the same headers however the bytes are split");
      for (std::size_t i = 0; i < split->headers.size() && i < whole->headers.size(); ++i) {
        check(split->headers[i].name == whole->headers[i].name && split->headers[i].value == whole->headers[i].value,
              "the same headers however the bytes are split");
      }
    } else {
      check(split.error().kind == whole.error().kind, "the same kind of failure however the bytes are split");
    }
  }
  return 0;
}
