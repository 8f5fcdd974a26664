// libFuzzer target for the embedded server's request parser (detail::request in src/adapters/http_server.cpp:
// scan_head, parse_head, find_head_end, complete_body); scripts/fuzz.sh builds and runs it under ASan and UBSan.
// The first 3 bytes of an input choose the limits and how the bytes arrive (see Setup); the rest is what a
// client sent. Besides "no crash, no leak, no hang" it checks what the server relies on:
//   - a failure is a status the server answers (400, 411, 413, 431) with a one-line message;
//   - a parsed head fits max_header_bytes, declares no body over max_body_bytes, starts its body within the
//     bytes, and holds a method, a target starting with '/', its path and query, and header names in lower
//     case with values free of CR, LF and NUL;
//   - the body, once complete, is exactly Content-Length bytes;
//   - fed as the server's connection receives it (a piece at a time, looking again after each), the first
//     answer that is not "read more" is the one the whole input gives: how the bytes are split never
//     changes the outcome.
#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "http_parse.hpp"

namespace {

using mw::adapters::HttpServerOptions;
using namespace mw::adapters::detail::request;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_http_request: invariant broken: %s\n", what);
    std::abort();
  }
}

struct Setup {
  HttpServerOptions options;
  std::size_t piece = 1;  // bytes per receive
};

// Byte 0: bit 7 set, the server's default limits (16 KiB of head, 64 KiB of body) read 256+ bytes at a time;
// clear, small limits (bytes 1 and 2) and pieces of 1 to 128 bytes. Small limits let the fuzzer reach them.
Setup setup(std::uint8_t b0, std::uint8_t b1, std::uint8_t b2) {
  Setup s;
  if ((b0 & 0x80U) != 0) {
    s.piece = 256 + (b0 & 0x7fU) * 64U;
  } else {
    s.options.max_header_bytes = 8 + std::size_t{b1} * 4;
    s.options.max_body_bytes = std::size_t{b2} * 8;
    s.piece = 1 + (b0 & 0x7fU);
  }
  return s;
}

bool one_line(const std::string& text) {
  return !text.empty() && text.find_first_of("\r\n") == std::string::npos;
}

void check_head(const HeadDone& done, std::string_view bytes, const HttpServerOptions& options) {
  const auto& req = done.head.request;
  check(done.body_offset <= bytes.size(), "the body starts within the bytes");
  check(done.body_offset >= 2, "a head ends with a blank line");
  check(done.body_offset <= options.max_header_bytes + 3, "the head fits max_header_bytes (and a CR LF LF)");
  check(done.head.content_length <= options.max_body_bytes, "no body over max_body_bytes");
  check(!req.method.empty(), "a method");
  check(req.target.starts_with('/'), "a target starting with '/'");
  check(req.target.starts_with(req.path), "the path starts the target");
  check(req.query.empty() || req.target == req.path + "?" + req.query, "path ? query is the target");
  check(req.body.empty() && req.peer.empty(), "body and peer are the server's to fill");
  for (const auto& [name, value] : req.headers) {
    check(!name.empty(), "a header name");
    check(std::none_of(name.begin(), name.end(), [](char c) { return c >= 'A' && c <= 'Z'; }),
          "header names in lower case");
    check(value.find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos,
          "header values without CR, LF or NUL");
  }
  if (const auto it = req.headers.find("content-length"); it != req.headers.end()) {
    std::uint64_t declared = 0;
    const auto [end, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), declared);
    check(ec == std::errc() && end == it->second.data() + it->second.size() && declared == done.head.content_length,
          "Content-Length is the declared length");
  } else {
    check(done.head.content_length == 0, "no Content-Length, no body");
  }
  check(!req.headers.contains("transfer-encoding"), "Transfer-Encoding is refused");
  const auto body = complete_body(bytes, done);
  if (bytes.size() - done.body_offset >= done.head.content_length) {
    check(body.has_value() && body->size() == done.head.content_length, "the body is Content-Length bytes");
    check(body->data() == bytes.data() + done.body_offset, "the body follows the head");
  } else {
    check(!body.has_value(), "an incomplete body is not complete");
  }
}

bool same(const HeadDone& a, const HeadDone& b) {
  return a.body_offset == b.body_offset && a.head.content_length == b.head.content_length &&
         a.head.expect_continue == b.head.expect_continue && a.head.request.method == b.head.request.method &&
         a.head.request.target == b.head.request.target && a.head.request.headers == b.head.request.headers;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 3) {
    return 0;
  }
  const Setup s = setup(data[0], data[1], data[2]);
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 3, size - 3);  // NOLINT

  const auto whole = scan_head(bytes, s.options);
  if (const auto* failure = std::get_if<ParseFailure>(&whole)) {
    check(failure->status == 400 || failure->status == 411 || failure->status == 413 || failure->status == 431,
          "a failure is 400, 411, 413 or 431");
    check(one_line(failure->message), "a failure's message is one line");
  } else if (const auto* done = std::get_if<HeadDone>(&whole)) {
    check_head(*done, bytes, s.options);
  } else {
    check(bytes.size() <= s.options.max_header_bytes + 3, "read more only while the head may still fit");
  }

  // As the server receives it: look again after each piece (from where the last look left off), stop at the
  // first answer.
  std::size_t searched = 0;
  for (std::size_t have = std::min(s.piece, bytes.size());; have = std::min(have + s.piece, bytes.size())) {
    const auto partial = scan_head(bytes.substr(0, have), s.options, searched);
    if (const auto* more = std::get_if<NeedMore>(&partial)) {
      check(have < bytes.size() || std::holds_alternative<NeedMore>(whole), "the whole input needs more too");
      check(more->searched >= searched && more->searched <= have, "the search goes on from within the bytes");
      searched = more->searched;
      if (have == bytes.size()) {
        break;
      }
      continue;
    }
    if (const auto* failure = std::get_if<ParseFailure>(&partial)) {
      const auto* expected = std::get_if<ParseFailure>(&whole);
      check(expected != nullptr, "a failure on a prefix is a failure on the whole input");
      check(expected->status == failure->status && expected->message == failure->message,
            "the same failure however the bytes are split");
    } else {
      const auto* expected = std::get_if<HeadDone>(&whole);
      check(expected != nullptr, "a head in a prefix is a head in the whole input");
      check(same(*expected, std::get<HeadDone>(partial)), "the same head however the bytes are split");
    }
    break;
  }

  // The head parser alone, on whatever the input holds (the server only gives it complete heads).
  const auto direct = parse_head(bytes, s.options);
  if (const auto* failure = std::get_if<ParseFailure>(&direct)) {
    check(one_line(failure->message), "parse_head: a failure's message is one line");
  }
  return 0;
}
