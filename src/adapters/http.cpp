// Plain http:// and unix:// are spoken by hand over POSIX sockets: the daemon asks the Docker engine and
// Ollama every few seconds, and loading libcurl with its TLS, Kerberos, LDAP and SSH dependencies would cost
// it about 9 MiB of resident memory. https:// (webhooks only) goes through libcurl, loaded with dlopen on
// first use, so that processes that never send a webhook never load it.
#include "adapters/http.hpp"

#include <curl/curl.h>  // types and constants only: libcurl is loaded at run time
#include <dlfcn.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "core/bytes.hpp"
#include "core/text.hpp"
#include "http_parse.hpp"

namespace mw::adapters {

namespace {

// What is wrong with "host", "host:port" or "[v6]:port" (the part of a URL after the scheme), if anything: a
// port, when there is one, is a number from 1 to 65535, and an IPv6 address is in brackets.
std::optional<std::string> check_authority(std::string_view authority) {
  std::string_view host = authority;
  std::optional<std::string_view> port;
  if (authority.starts_with('[')) {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) {
      return "missing ']' after the IPv6 address";
    }
    host = authority.substr(1, close - 1);
    const auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        return fmt::format("expected :port after ']', not '{}'", after);
      }
      port = after.substr(1);
    }
  } else if (const auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return "put an IPv6 address in brackets, e.g. [::1]:11434";
    }
  }
  if (host.empty()) {
    return "missing host before the port";
  }
  if (!port) {
    return std::nullopt;
  }
  if (port->empty()) {
    return "no port after ':' (expected a number from 1 to 65535)";
  }
  if (!std::all_of(port->begin(), port->end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return fmt::format("port '{}' is not a number from 1 to 65535", *port);
  }
  std::uint32_t value = 0;
  for (const char c : *port) {
    value = std::min<std::uint32_t>(value * 10 + static_cast<std::uint32_t>(c - '0'), 65536);
  }
  if (value < 1 || value > 65535) {
    return fmt::format("port {} is not from 1 to 65535", *port);
  }
  return std::nullopt;
}

}  // namespace

Result<Endpoint> parse_endpoint(std::string_view text, std::string_view source) {
  const std::string src(source);
  if (std::any_of(text.begin(), text.end(), [](char c) {
        const auto byte = static_cast<unsigned char>(c);
        return byte < 0x20 || byte == 0x7f;
      })) {
    return fail(src, fmt::format("'{}': an address holds no control characters", escape_control(text)));
  }
  Endpoint ep;
  ep.text = std::string(text);
  if (text.starts_with("unix://")) {
    ep.kind = Endpoint::Kind::unix_socket;
    ep.socket_path = std::string(text.substr(7));
    ep.base_url = "http://localhost";
    if (ep.socket_path.empty() || ep.socket_path.front() != '/') {
      return fail(src, fmt::format("'{}': a unix:// address needs an absolute socket path", text));
    }
    return ep;
  }
  std::string_view rest;
  std::string scheme = "http://";
  if (text.starts_with("tcp://")) {
    rest = text.substr(6);
  } else if (text.starts_with("http://")) {
    rest = text.substr(7);
  } else if (text.starts_with("https://")) {
    rest = text.substr(8);
    scheme = "https://";
  } else {
    return fail(src,
                fmt::format("'{}': expected unix:///path, tcp://host:port, http://host:port or https://host", text));
  }
  while (!rest.empty() && rest.back() == '/') {
    rest.remove_suffix(1);
  }
  if (rest.empty() || rest.find_first_of(" /?#@") != std::string_view::npos) {
    return fail(src, fmt::format("'{}': expected host:port after the scheme", text));
  }
  if (const auto why = check_authority(rest)) {
    return fail(src, fmt::format("'{}': {}", text, *why));
  }
  ep.kind = Endpoint::Kind::tcp;
  ep.base_url = scheme + std::string(rest);
  return ep;
}

namespace {

using SteadyClock = std::chrono::steady_clock;

bool iends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && equals_ignoring_case(text.substr(text.size() - suffix.size()), suffix);
}

// Keeps a header line the request asked for (named as it asked), up to k_max_kept_headers of them.
void keep_header(std::string_view name, std::string_view value, std::span<const std::string> keep,
                 std::vector<HttpHeader>& kept) {
  if (kept.size() >= k_max_kept_headers) {
    return;
  }
  const auto wanted =
      std::find_if(keep.begin(), keep.end(), [&](const std::string& k) { return equals_ignoring_case(k, name); });
  if (wanted != keep.end()) {
    kept.push_back(HttpHeader{*wanted, std::string(value)});
  }
}

constexpr std::size_t k_error_body_bytes = 512;
constexpr std::size_t k_max_head_bytes = 64U << 10;
constexpr std::size_t k_max_line_bytes = 4U << 10;  // a chunk size line or a trailer
constexpr std::size_t k_read_bytes = 16U << 10;
constexpr int k_stop_poll_ms = 100;

bool is_https(const Endpoint& ep) {
  return ep.base_url.starts_with("https://");
}

bool is_success(long status) {
  return status >= 200 && status < 300;
}

std::string first_line(std::string_view text) {
  text = text.substr(0, text.find('\n'));
  while (!text.empty() && (text.back() == '\r' || text.back() == ' ')) {
    text.remove_suffix(1);
  }
  return std::string(text);
}

std::string no_answer_within(std::chrono::milliseconds timeout) {
  return fmt::format("no answer within {:.1f} s", static_cast<double>(timeout.count()) / 1000.0);
}

// ---- Failures below the request level --------------------------------------------------------------------------

using detail::response::Failure;
using detail::response::read_answer;
using detail::response::read_body;
using detail::response::read_head;
using detail::response::Reader;
using detail::response::Sink;

Failure os_failure(std::string_view what, int err) {
  const Failure::Kind kind = err == EPIPE || err == ECONNRESET ? Failure::Kind::reset : Failure::Kind::other;
  return Failure{kind, fmt::format("{}: {}", what, std::strerror(err)), err};
}

// The server closed the connection after `received` bytes of the answer.
Failure closed_by_server(std::size_t received) {
  return Failure{Failure::Kind::eof,
                 received == 0 ? "empty reply (the server closed the connection without answering)"
                               : "the server closed the connection in the middle of the answer",
                 0};
}

Failure bad_answer(std::string_view why) {
  return Failure{Failure::Kind::other, fmt::format("not an HTTP answer ({})", why), 0};
}

// The start of some bytes, printable: for messages about answers that are not HTTP.
std::string printable(std::string_view text, std::size_t limit = 32) {
  std::string out;
  for (const char c : text.substr(0, limit)) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte < 0x7f && c != '\\') {
      out.push_back(c);
    } else {
      out += fmt::format("\\x{:02x}", byte);
    }
  }
  return out;
}

std::string describe_connect_error(int err, const Endpoint& ep) {
  if (ep.kind == Endpoint::Kind::unix_socket) {
    if (err == ENOENT) {
      return "no such socket";
    }
    if (err == EACCES || err == EPERM) {
      return "permission denied";
    }
    if (err == ECONNREFUSED) {
      return "connection refused (nothing is listening on the socket)";
    }
  } else if (err == ECONNREFUSED) {
    return "connection refused";
  }
  return fmt::format("cannot connect: {}", std::strerror(err));
}

// ---- Waiting -----------------------------------------------------------------------------------------------------

using detail::response::Wait;

Wait wait_until(std::chrono::milliseconds timeout, const std::atomic<bool>* stop = nullptr) {
  return Wait{SteadyClock::now() + timeout, timeout, stop, std::nullopt};
}

// Waits until `fd` reports `events` (or an error or hang-up, which the next call on it tells).
std::optional<Failure> wait_for(int fd, short events, const Wait& w) {
  const auto silent_until =
      w.idle ? std::optional<SteadyClock::time_point>(SteadyClock::now() + *w.idle) : std::nullopt;
  for (;;) {
    if (w.stop != nullptr && w.stop->load()) {
      return Failure{Failure::Kind::stopped, "stopped", ECANCELED};
    }
    int slice = -1;
    const auto now = SteadyClock::now();
    if (w.deadline) {
      if (now >= *w.deadline) {
        return Failure{Failure::Kind::timeout, no_answer_within(w.reported), ETIMEDOUT};
      }
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(*w.deadline - now).count();
      slice = static_cast<int>(std::min<std::int64_t>(left, INT_MAX));
    }
    if (silent_until) {
      if (now >= *silent_until) {
        return Failure{Failure::Kind::timeout,
                       fmt::format("nothing received for {:.1f} s", static_cast<double>(w.idle->count()) / 1000.0),
                       ETIMEDOUT};
      }
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(*silent_until - now).count();
      const int idle_slice = static_cast<int>(std::min<std::int64_t>(left, INT_MAX));
      slice = slice < 0 ? idle_slice : std::min(slice, idle_slice);
    }
    if (w.stop != nullptr) {
      slice = slice < 0 ? k_stop_poll_ms : std::min(slice, k_stop_poll_ms);
    }
    pollfd p{fd, events, 0};
    const int ready = ::poll(&p, 1, slice);
    if (ready > 0) {
      return std::nullopt;
    }
    if (ready < 0 && errno != EINTR) {
      return os_failure("poll failed", errno);
    }
  }
}

// ---- Connecting --------------------------------------------------------------------------------------------------

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : m_fd(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : m_fd(std::exchange(other.m_fd, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      reset(std::exchange(other.m_fd, -1));
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  [[nodiscard]] int get() const { return m_fd; }
  [[nodiscard]] bool valid() const { return m_fd >= 0; }
  void reset(int fd = -1) {
    if (m_fd >= 0) {
      ::close(m_fd);
    }
    m_fd = fd;
  }

 private:
  int m_fd = -1;
};

using Connected = Expected<UniqueFd, Failure>;

Connected connect_unix(const Endpoint& ep, const Wait& w) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (ep.socket_path.size() >= sizeof addr.sun_path) {
    return unexpected(Failure{Failure::Kind::other,
                              fmt::format("socket path longer than {} bytes", sizeof addr.sun_path - 1), ENAMETOOLONG});
  }
  std::memcpy(addr.sun_path, ep.socket_path.data(), ep.socket_path.size());
  // A blocking connect under SO_SNDTIMEO: a non-blocking one on a Unix socket whose backlog is full fails
  // with EAGAIN instead of waiting for room.
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    return unexpected(os_failure("cannot create a socket", errno));
  }
  const auto left = w.deadline
                        ? std::max(std::chrono::ceil<std::chrono::microseconds>(*w.deadline - SteadyClock::now()),
                                   std::chrono::microseconds(1))
                        : std::chrono::microseconds(0);
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(left.count() / 1'000'000);
  tv.tv_usec = static_cast<suseconds_t>(left.count() % 1'000'000);
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int rc = 0;
  do {
    rc = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    if (errno == EAGAIN || errno == EINPROGRESS) {
      return unexpected(Failure{Failure::Kind::timeout, no_answer_within(w.reported), ETIMEDOUT});
    }
    return unexpected(Failure{Failure::Kind::other, describe_connect_error(errno, ep), errno});
  }
  const timeval none{};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &none, sizeof none);
  if (::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) | O_NONBLOCK) != 0) {
    return unexpected(os_failure("cannot configure the socket", errno));
  }
  return fd;
}

// "host:port", "[v6]:port" or "host" (port 80) from an http:// base URL.
std::pair<std::string, std::string> host_and_port(std::string_view authority) {
  if (authority.starts_with('[')) {
    const auto close = authority.find(']');
    const std::string host(authority.substr(1, close == std::string_view::npos ? std::string_view::npos : close - 1));
    if (close != std::string_view::npos && close + 1 < authority.size() && authority[close + 1] == ':') {
      return {host, std::string(authority.substr(close + 2))};
    }
    return {host, "80"};
  }
  const auto colon = authority.rfind(':');
  if (colon == std::string_view::npos) {
    return {std::string(authority), "80"};
  }
  return {std::string(authority.substr(0, colon)), std::string(authority.substr(colon + 1))};
}

std::string_view authority_of(const Endpoint& ep) {
  const std::string_view url = ep.base_url;
  const auto scheme_end = url.find("://");
  return scheme_end == std::string_view::npos ? url : url.substr(scheme_end + 3);
}

Connected connect_tcp(const Endpoint& ep, const Wait& w) {
  const auto [host, port] = host_and_port(authority_of(ep));
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return unexpected(Failure{Failure::Kind::other,
                              fmt::format("cannot resolve host '{}': {}", host, ::gai_strerror(rc)),
                              rc == EAI_SYSTEM ? errno : 0});
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> list(found, &::freeaddrinfo);
  int last_error = ECONNREFUSED;
  for (const addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol));
    if (!fd.valid()) {
      last_error = errno;
      continue;
    }
    if (::connect(fd.get(), ai->ai_addr, ai->ai_addrlen) == 0) {
      return fd;
    }
    if (errno != EINPROGRESS && errno != EINTR) {
      last_error = errno;
      continue;
    }
    if (auto failed = wait_for(fd.get(), POLLOUT, w)) {
      return unexpected(std::move(*failed));
    }
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
      err = errno;
    }
    if (err == 0) {
      return fd;
    }
    last_error = err;
  }
  return unexpected(Failure{Failure::Kind::other, describe_connect_error(last_error, ep), last_error});
}

Connected connect_to(const Endpoint& ep, const Wait& w) {
  return ep.kind == Endpoint::Kind::unix_socket ? connect_unix(ep, w) : connect_tcp(ep, w);
}

// An idle kept-alive connection the server has not closed (nor written to, which would be out of turn).
bool still_open(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 0;
}

// ---- Sending -----------------------------------------------------------------------------------------------------

enum class KeepAlive { ask, no };

// A path is sent as it is: it must not break the request line.
bool valid_target(std::string_view path) {
  return path.starts_with('/') && std::none_of(path.begin(), path.end(), [](char c) {
           const auto byte = static_cast<unsigned char>(c);
           return byte <= 0x20 || byte == 0x7f;
         });
}

std::string build_request(const Endpoint& ep, std::string_view method, std::string_view path, std::string_view body,
                          KeepAlive keep_alive) {
  const std::string_view host = ep.kind == Endpoint::Kind::unix_socket ? "localhost" : authority_of(ep);
  std::string out =
      fmt::format("{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: memwarden\r\nAccept: */*\r\n", method, path, host);
  if (keep_alive == KeepAlive::ask) {
    out += "Connection: keep-alive\r\n";
  }
  if (method == "POST") {
    out += fmt::format("Content-Type: application/json\r\nContent-Length: {}\r\n", body.size());
  }
  out += "\r\n";
  out += body;
  return out;
}

std::optional<Failure> send_all(int fd, std::string_view data, const Wait& w) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n >= 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (errno == EINTR) {
      continue;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (auto failed = wait_for(fd, POLLOUT, w)) {
        return failed;
      }
      continue;
    }
    return os_failure("the connection broke", errno);
  }
  return std::nullopt;
}

}  // namespace

// ---- Receiving (declared in http_parse.hpp) ------------------------------------------------------------------------

namespace detail::response {

std::optional<Failure> Reader::more() {
  if (m_wait == nullptr) {  // from memory
    if (m_source.empty()) {
      return closed_by_server(m_received);
    }
    const std::size_t n = std::min(m_piece, m_source.size());
    m_buffer.append(m_source.substr(0, n));
    m_source.remove_prefix(n);
    m_received += n;
    return std::nullopt;
  }
  char chunk[k_read_bytes];
  for (;;) {
    const ssize_t n = ::recv(m_fd, chunk, sizeof chunk, 0);
    if (n > 0) {
      m_buffer.append(chunk, static_cast<std::size_t>(n));
      m_received += static_cast<std::size_t>(n);
      return std::nullopt;
    }
    if (n == 0) {
      return closed_by_server(m_received);
    }
    if (errno == EINTR) {
      continue;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      return os_failure("the connection broke", errno);
    }
    if (auto failed = wait_for(m_fd, POLLIN, *m_wait)) {
      return failed;
    }
  }
}

namespace {

bool has_token(std::string_view list, std::string_view token) {
  std::string_view rest = list;
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    if (equals_ignoring_case(trim(rest.substr(0, comma)), token)) {
      return true;
    }
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
  }
  return false;
}

}  // namespace

// The status line and headers of one answer, `text` without the blank line that ends them.
Expected<Head, Failure> parse_head(std::string_view text, KeepHeaders keep) {
  const auto eol = text.find('\n');
  const std::string_view status_line = trim(text.substr(0, eol));
  // "HTTP/1.1 200 OK"
  if (status_line.size() < 12 || !status_line.starts_with("HTTP/1.") || status_line[8] != ' ' ||
      (status_line.size() > 12 && status_line[12] != ' ')) {
    return unexpected(bad_answer(fmt::format("status line '{}'", printable(status_line, 64))));
  }
  const auto status = parse_u64(status_line.substr(9, 3));
  if (!status || *status < 100) {
    return unexpected(bad_answer(fmt::format("status line '{}'", printable(status_line, 64))));
  }
  Head head;
  head.status = static_cast<long>(*status);
  const bool http10 = status_line[7] == '0';
  bool keep_alive_asked = false;
  bool has_length = false;
  std::string_view rest = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
  while (!rest.empty()) {
    const auto line_end = rest.find('\n');
    const std::string_view line = rest.substr(0, line_end);
    rest = line_end == std::string_view::npos ? std::string_view{} : rest.substr(line_end + 1);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      return unexpected(bad_answer(fmt::format("header line '{}'", printable(trim(line), 64))));
    }
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = trim(line.substr(colon + 1));
    keep_header(name, value, keep, head.headers);
    if (equals_ignoring_case(name, "content-length")) {
      const auto length = parse_u64(value);
      if (!length || (has_length && *length != head.content_length)) {
        return unexpected(bad_answer(fmt::format("Content-Length '{}'", printable(value))));
      }
      has_length = true;
      head.content_length = *length;
    } else if (equals_ignoring_case(name, "transfer-encoding")) {
      head.chunked = iends_with(value, "chunked");
      head.until_close = !head.chunked;
    } else if (equals_ignoring_case(name, "connection")) {
      head.close = head.close || has_token(value, "close");
      keep_alive_asked = keep_alive_asked || has_token(value, "keep-alive");
    }
  }
  if (http10 && !keep_alive_asked) {
    head.close = true;
  }
  head.no_body = head.status == 204 || head.status == 304 || head.status < 200;
  if (!head.chunked && !head.until_close && !has_length && !head.no_body) {
    head.until_close = true;
  }
  if (head.until_close) {
    head.close = true;
  }
  return head;
}

// Reads the head of the answer off the front of the buffer, skipping interim 1xx answers.
Expected<Head, Failure> read_head(Reader& reader, KeepHeaders keep) {
  std::string& buf = reader.buffer();
  // A head of k_max_head_bytes ends within the first k_max_head_bytes + 3 bytes: only those are searched, so
  // that whether a head is too long does not depend on how much of the answer one read brought.
  constexpr std::size_t k_window = k_max_head_bytes + 3;
  std::size_t searched = 0;  // no head ends before this offset of the buffer
  for (;;) {
    constexpr std::string_view k_magic = "HTTP/";
    if (buf.compare(0, std::min(buf.size(), k_magic.size()), k_magic.substr(0, std::min(buf.size(), k_magic.size()))) !=
        0) {
      return unexpected(bad_answer(fmt::format("it starts with '{}'", printable(buf))));
    }
    const std::string_view window = std::string_view(buf).substr(0, k_window);
    std::size_t end = std::string::npos;
    std::size_t skip = 0;
    for (std::size_t at = window.find('\n', searched); at != std::string::npos; at = window.find('\n', at + 1)) {
      if (at + 1 < window.size() && window[at + 1] == '\n') {
        end = at;
        skip = 2;
        break;
      }
      if (at + 2 < window.size() && window[at + 1] == '\r' && window[at + 2] == '\n') {
        end = at;
        skip = 3;
        break;
      }
    }
    if (end == std::string::npos) {
      if (window.size() >= k_window) {
        return unexpected(bad_answer(fmt::format("headers longer than {} KiB", k_max_head_bytes >> 10)));
      }
      searched = window.size() < 2 ? 0 : window.size() - 2;  // a line end at the last 2 bytes may go on
      if (auto failed = reader.more()) {
        return unexpected(std::move(*failed));
      }
      continue;
    }
    // An interim 1xx answer's head is dropped, its headers with it.
    auto head = parse_head(std::string_view(buf).substr(0, end), keep);
    buf.erase(0, end + skip);
    searched = 0;
    if (!head) {
      return head;
    }
    if (head->status >= 200) {
      return head;
    }
  }
}

// Passes up to `count` bytes of the body to the sink, reading as needed.
Expected<bool, Failure> pass_exactly(Reader& reader, std::uint64_t count, const Sink& sink) {
  std::string& buf = reader.buffer();
  while (count > 0) {
    if (buf.empty()) {
      if (auto failed = reader.more()) {
        return unexpected(std::move(*failed));
      }
    }
    const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(count, buf.size()));
    const bool go_on = sink(std::string_view(buf).substr(0, take));
    buf.erase(0, take);
    count -= take;
    if (!go_on) {
      return false;
    }
  }
  return true;
}

// One line (up to '\n') off the front of the buffer, without its line end.
Expected<std::string, Failure> take_line(Reader& reader) {
  std::string& buf = reader.buffer();
  // Only the first k_max_line_bytes + 1 bytes are searched, so that whether a line is too long does not depend
  // on how much of the answer one read brought.
  std::size_t searched = 0;
  for (;;) {
    const std::string_view window = std::string_view(buf).substr(0, k_max_line_bytes + 1);
    if (const auto eol = window.find('\n', searched); eol != std::string::npos) {
      std::string line = buf.substr(0, eol);
      buf.erase(0, eol + 1);
      if (!line.empty() && line.back() == '\r') {
        line.pop_back();
      }
      return line;
    }
    if (window.size() > k_max_line_bytes) {
      return unexpected(bad_answer("a chunk line longer than 4 KiB"));
    }
    searched = window.size();
    if (auto failed = reader.more()) {
      return unexpected(std::move(*failed));
    }
  }
}

std::optional<std::uint64_t> parse_chunk_size(std::string_view line) {
  line = trim(line.substr(0, line.find(';')));
  if (line.empty() || line.size() > 15) {
    return std::nullopt;
  }
  std::uint64_t value = 0;
  for (const char c : line) {
    int digit = 0;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      digit = c - 'A' + 10;
    } else {
      return std::nullopt;
    }
    value = value * 16 + static_cast<std::uint64_t>(digit);
  }
  return value;
}

Expected<BodyEnd, Failure> read_body(Reader& reader, const Head& head, const Sink& sink) {
  if (head.no_body) {
    return BodyEnd::complete;
  }
  if (head.chunked) {
    for (;;) {
      auto line = take_line(reader);
      if (!line) {
        return unexpected(std::move(line).error());
      }
      const auto size = parse_chunk_size(*line);
      if (!size) {
        return unexpected(bad_answer(fmt::format("chunk size '{}'", printable(*line))));
      }
      if (*size == 0) {
        for (;;) {  // trailers, up to the blank line
          auto trailer = take_line(reader);
          if (!trailer) {
            return unexpected(std::move(trailer).error());
          }
          if (trailer->empty()) {
            return BodyEnd::complete;
          }
        }
      }
      auto passed = pass_exactly(reader, *size, sink);
      if (!passed) {
        return unexpected(std::move(passed).error());
      }
      if (!*passed) {
        return BodyEnd::stopped_by_sink;
      }
      auto end = take_line(reader);
      if (!end) {
        return unexpected(std::move(end).error());
      }
      if (!end->empty()) {
        return unexpected(bad_answer("no line end after a chunk"));
      }
    }
  }
  if (!head.until_close) {
    auto passed = pass_exactly(reader, head.content_length, sink);
    if (!passed) {
      return unexpected(std::move(passed).error());
    }
    return *passed ? BodyEnd::complete : BodyEnd::stopped_by_sink;
  }
  std::string& buf = reader.buffer();
  for (;;) {
    if (!buf.empty()) {
      const bool go_on = sink(buf);
      buf.clear();
      if (!go_on) {
        return BodyEnd::stopped_by_sink;
      }
    }
    if (auto failed = reader.more()) {
      if (failed->kind == Failure::Kind::eof) {
        return BodyEnd::complete;
      }
      return unexpected(std::move(*failed));
    }
  }
}

Expected<Answer, Failure> read_answer(Reader& reader, std::size_t max_body, KeepHeaders keep) {
  auto head = read_head(reader, keep);
  if (!head) {
    return unexpected(std::move(head).error());
  }
  const auto too_large = [max_body] {
    return Failure{Failure::Kind::too_large, "response larger than " + format_cap(max_body), 0};
  };
  Answer out;
  out.status = head->status;
  if (!head->chunked && !head->until_close && !head->no_body && head->content_length > max_body) {
    return unexpected(too_large());  // not read at all: the connection is closed instead
  }
  const Sink sink = [&](std::string_view piece) {
    if (piece.size() > max_body - out.body.size()) {
      return false;
    }
    out.body.append(piece);
    return true;
  };
  auto ended = read_body(reader, *head, sink);
  if (!ended) {
    return unexpected(std::move(ended).error());
  }
  if (*ended == BodyEnd::stopped_by_sink) {
    return unexpected(too_large());
  }
  out.close = head->close;
  out.headers = std::move(head->headers);
  return out;
}

}  // namespace detail::response

namespace {

// ---- libcurl, for https:// only ----------------------------------------------------------------------------------

constexpr const char* k_curl_library = "libcurl.so.4";

struct CurlApi {
  decltype(&::curl_global_init) global_init = nullptr;
  decltype(&::curl_easy_init) easy_init = nullptr;
  decltype(&::curl_easy_cleanup) easy_cleanup = nullptr;
  decltype(&::curl_easy_reset) easy_reset = nullptr;
  decltype(&::curl_easy_setopt) easy_setopt = nullptr;
  decltype(&::curl_easy_perform) easy_perform = nullptr;
  decltype(&::curl_easy_getinfo) easy_getinfo = nullptr;
  decltype(&::curl_easy_strerror) easy_strerror = nullptr;
  decltype(&::curl_slist_append) slist_append = nullptr;
  decltype(&::curl_slist_free_all) slist_free_all = nullptr;
};

struct LoadedCurl {
  CurlApi api;
  std::string error;  // why it could not be loaded; empty when it was
};

std::string one_line(const char* text) {
  std::string out = text != nullptr ? text : "unknown error";
  std::replace_if(
      out.begin(), out.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
  return out;
}

template <class F>
bool bind_symbol(void* library, const char* name, F& out, std::string& error) {
  dlerror();
  void* address = dlsym(library, name);
  if (address == nullptr) {
    error = one_line(dlerror());
    return false;
  }
  out = reinterpret_cast<F>(address);
  return true;
}

LoadedCurl load_curl() {
  LoadedCurl out;
  dlerror();
  void* library = dlopen(k_curl_library, RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    out.error = one_line(dlerror());
    return out;
  }
  // Never closed: libcurl and its TLS library stay for the life of the process once loaded.
  CurlApi& api = out.api;
  if (!bind_symbol(library, "curl_global_init", api.global_init, out.error) ||
      !bind_symbol(library, "curl_easy_init", api.easy_init, out.error) ||
      !bind_symbol(library, "curl_easy_cleanup", api.easy_cleanup, out.error) ||
      !bind_symbol(library, "curl_easy_reset", api.easy_reset, out.error) ||
      !bind_symbol(library, "curl_easy_setopt", api.easy_setopt, out.error) ||
      !bind_symbol(library, "curl_easy_perform", api.easy_perform, out.error) ||
      !bind_symbol(library, "curl_easy_getinfo", api.easy_getinfo, out.error) ||
      !bind_symbol(library, "curl_easy_strerror", api.easy_strerror, out.error) ||
      !bind_symbol(library, "curl_slist_append", api.slist_append, out.error) ||
      !bind_symbol(library, "curl_slist_free_all", api.slist_free_all, out.error)) {
    return out;
  }
  if (const CURLcode code = api.global_init(CURL_GLOBAL_DEFAULT); code != CURLE_OK) {
    out.error = fmt::format("curl_global_init failed: {}", api.easy_strerror(code));
  }
  return out;
}

// Loaded on first use, once per process.
const LoadedCurl& curl_library() {
  static const LoadedCurl loaded = load_curl();
  return loaded;
}

struct CurlBody {
  std::string data;
  std::size_t max = k_default_max_body_bytes;
  bool overflow = false;
  std::span<const std::string> keep_headers;
  std::vector<HttpHeader> headers;
};

// libcurl hands over each header line of each answer (interim 1xx ones too), with its line end.
std::size_t on_curl_header(char* ptr, std::size_t size, std::size_t count, void* user) {
  auto* body = static_cast<CurlBody*>(user);
  const std::size_t n = size * count;
  std::string_view line(ptr, n);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) {
    line.remove_suffix(1);
  }
  if (line.starts_with("HTTP/")) {
    body->headers.clear();  // the status line of the next answer: only the final one's headers are kept
  } else if (const auto colon = line.find(':'); colon != std::string_view::npos && colon > 0) {
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
      value.remove_prefix(1);
    }
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
      value.remove_suffix(1);
    }
    keep_header(line.substr(0, colon), value, body->keep_headers, body->headers);
  }
  return n;
}

std::size_t on_curl_write(char* ptr, std::size_t size, std::size_t count, void* user) {
  auto* body = static_cast<CurlBody*>(user);
  const std::size_t n = size * count;
  if (n > body->max - body->data.size()) {
    body->overflow = true;
    return 0;  // aborts the transfer
  }
  body->data.append(ptr, n);
  return n;
}

std::string describe_curl_failure(const CurlApi& api, CURLcode code, long os_errno, const Endpoint& ep,
                                  std::chrono::milliseconds timeout) {
  if (code == CURLE_OPERATION_TIMEDOUT) {
    return no_answer_within(timeout);
  }
  if ((code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST) && os_errno != 0) {
    return describe_connect_error(static_cast<int>(os_errno), ep);
  }
  return api.easy_strerror(code);
}

}  // namespace

struct HttpClient::Handle {
  UniqueFd socket;     // the kept-alive connection, if any
  std::string buffer;  // bytes read past the last answer (none, with a well-behaved server)
  CURL* curl = nullptr;

  void close_socket() {
    socket.reset();
    buffer.clear();
  }
  Handle() = default;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() {
    if (curl != nullptr) {
      curl_library().api.easy_cleanup(curl);
    }
  }
};

HttpClient::HttpClient(Endpoint endpoint, std::chrono::milliseconds timeout)
    : m_endpoint(std::move(endpoint)), m_timeout(timeout), m_handle(std::make_unique<Handle>()) {}

HttpClient::~HttpClient() = default;
HttpClient::HttpClient(HttpClient&&) noexcept = default;
HttpClient& HttpClient::operator=(HttpClient&&) noexcept = default;

std::optional<std::string_view> HttpResponse::header(std::string_view name) const {
  for (const auto& h : headers) {
    if (equals_ignoring_case(h.name, name)) {
      return h.value;
    }
  }
  return std::nullopt;
}

Result<HttpResponse> HttpClient::get(std::string_view path, const RequestOptions& options) {
  return perform("GET", path, {}, options);
}

Result<HttpResponse> HttpClient::post(std::string_view path, std::string_view json_body,
                                      const RequestOptions& options) {
  return perform("POST", path, json_body, options);
}

Result<HttpResponse> HttpClient::del(std::string_view path, const RequestOptions& options) {
  if (m_endpoint.base_url.rfind("https://", 0) == 0) {
    return fail(fmt::format("{} (DELETE {})", m_endpoint.text, path), "DELETE over https is not supported");
  }
  return perform("DELETE", path, {}, options);
}

void HttpClient::close() {
  if (m_handle) {
    m_handle->close_socket();
    if (m_handle->curl != nullptr) {
      curl_library().api.easy_cleanup(m_handle->curl);
      m_handle->curl = nullptr;
    }
  }
}

Result<long> HttpClient::stream(std::string_view path, const std::function<bool(std::string_view chunk)>& on_chunk,
                                const std::atomic<bool>& stop, const std::function<void(long status)>& on_open) {
  return stream_request("GET", path, {}, on_chunk, stop, StreamOptions{}, on_open);
}

Result<long> HttpClient::stream_post(std::string_view path, std::string_view json_body,
                                     const std::function<bool(std::string_view chunk)>& on_chunk,
                                     const std::atomic<bool>& stop, const StreamOptions& options,
                                     const std::function<void(long status)>& on_open) {
  return stream_request("POST", path, json_body, on_chunk, stop, options, on_open);
}

Result<long> HttpClient::stream_request(std::string_view method, std::string_view path, std::string_view body,
                                        const std::function<bool(std::string_view chunk)>& on_chunk,
                                        const std::atomic<bool>& stop, const StreamOptions& options,
                                        const std::function<void(long status)>& on_open) {
  const std::string source = fmt::format("{} ({} {})", m_endpoint.text, method, path);
  if (is_https(m_endpoint)) {
    return fail(source, "event streams over https are not supported");
  }
  if (!valid_target(path)) {
    return fail(source, "the request path must start with '/' and hold no spaces or control characters");
  }
  const auto failed = [&](const Failure& f) -> Result<long> {
    if (f.kind == Failure::Kind::stopped || stop.load()) {
      return fail(source, "stopped", ECANCELED);
    }
    return fail(source, f.message, f.code);
  };
  // Until the head is in: the first-byte time-out from now when there is one (else none, and the client's
  // time-out for the connect); then the idle time-out between pieces.
  Wait wait = options.first_byte_timeout ? wait_until(*options.first_byte_timeout, &stop)
                                         : Wait{std::nullopt, m_timeout, &stop, std::nullopt};
  auto connected = connect_to(m_endpoint, options.first_byte_timeout ? wait : wait_until(m_timeout, &stop));
  if (!connected) {
    return failed(connected.error());
  }
  const int fd = connected->get();
  const int on = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  if (auto sent = send_all(fd, build_request(m_endpoint, method, path, body, KeepAlive::no), wait)) {
    return failed(*sent);
  }
  std::string buffer;
  Reader reader(fd, buffer, wait);  // reads through `wait`, which changes once the head is in
  auto head = read_head(reader);
  if (!head) {
    return failed(head.error());
  }
  wait.deadline.reset();
  wait.idle = options.idle_timeout;
  const long status = head->status;
  const bool passed = is_success(status) || options.pass_error_answers;
  std::string handler_error;
  std::string error_body;
  bool ended_by_caller = false;
  bool too_large = false;
  std::size_t body_bytes = 0;
  if (passed && on_open) {
    try {
      on_open(status);
    } catch (const std::exception& e) {
      handler_error = e.what();
    }
  }
  std::optional<Failure> broke;
  if (handler_error.empty()) {
    const Sink sink = [&](std::string_view piece) {
      if (!passed) {
        error_body.append(piece.substr(0, k_error_body_bytes - std::min(k_error_body_bytes, error_body.size())));
        return error_body.size() < k_error_body_bytes;
      }
      if (options.max_body_bytes && piece.size() > *options.max_body_bytes - body_bytes) {
        too_large = true;
        return false;
      }
      body_bytes += piece.size();
      try {
        if (!on_chunk(piece)) {
          ended_by_caller = true;
          return false;
        }
      } catch (const std::exception& e) {
        handler_error = e.what();
        return false;
      }
      return true;
    };
    if (auto ended = read_body(reader, *head, sink); !ended) {
      broke = std::move(ended).error();
    }
  }
  if ((broke && broke->kind == Failure::Kind::stopped) || (ended_by_caller && stop.load())) {
    return fail(source, "stopped", ECANCELED);
  }
  if (!handler_error.empty()) {
    return fail(source, "the stream's handler failed: " + handler_error);
  }
  if (ended_by_caller) {
    return status;
  }
  if (too_large) {
    return fail(source, "response larger than " + format_cap(*options.max_body_bytes));
  }
  if (!passed) {
    const auto message = first_line(error_body);
    return fail(source, message.empty() ? fmt::format("HTTP {}", status) : fmt::format("HTTP {}: {}", status, message));
  }
  if (broke) {
    if (broke->kind == Failure::Kind::eof) {
      return fail(source, "the stream broke off");
    }
    return fail(source, broke->message, broke->code);
  }
  return status;
}

Result<HttpResponse> HttpClient::perform(std::string_view method, std::string_view path, std::string_view body,
                                         const RequestOptions& options) {
  const std::chrono::milliseconds timeout = options.timeout.value_or(m_timeout);
  const std::size_t max_body = options.max_body_bytes;
  const std::string source = fmt::format("{} ({} {})", m_endpoint.text, method, path);
  if (!m_handle) {
    m_handle = std::make_unique<Handle>();  // a moved-from client is usable again
  }
  if (!valid_target(path)) {
    return fail(source, "the request path must start with '/' and hold no spaces or control characters");
  }
  if (is_https(m_endpoint)) {
    return perform_tls(method, path, body, timeout, options);
  }
  const Wait wait = wait_until(timeout);
  const Wait connect_wait = wait_until(std::min(timeout, m_timeout));
  const std::string request = build_request(m_endpoint, method, path, body, KeepAlive::ask);
  Handle& handle = *m_handle;
  for (bool may_retry = true;;) {
    const bool reused = handle.socket.valid() && still_open(handle.socket.get());
    if (!reused) {
      handle.close_socket();
      auto connected = connect_to(m_endpoint, connect_wait);
      if (!connected) {
        return fail(source, connected.error().message, connected.error().code);
      }
      handle.socket = std::move(*connected);
    }
    const int fd = handle.socket.get();
    Reader reader(fd, handle.buffer, wait);
    auto exchange = [&]() -> Expected<HttpResponse, Failure> {
      if (auto sent = send_all(fd, request, wait)) {
        return unexpected(std::move(*sent));
      }
      auto answer = read_answer(reader, max_body, options.keep_headers);
      if (!answer) {
        return unexpected(std::move(answer).error());
      }
      if (answer->close || !reader.buffer().empty()) {
        handle.close_socket();
      }
      return HttpResponse{answer->status, std::move(answer->body), std::move(answer->headers)};
    };
    auto result = exchange();
    if (result) {
      return std::move(*result);
    }
    handle.close_socket();
    const Failure& f = result.error();
    // A kept-alive connection the server closed while it was idle: once more on a fresh one.
    if (reused && may_retry && reader.received() == 0 &&
        (f.kind == Failure::Kind::eof || f.kind == Failure::Kind::reset)) {
      may_retry = false;
      continue;
    }
    return fail(source, f.message, f.code);
  }
}

Result<HttpResponse> HttpClient::perform_tls(std::string_view method, std::string_view path, std::string_view body,
                                             std::chrono::milliseconds timeout, const RequestOptions& options) {
  const std::size_t max_body = options.max_body_bytes;
  const std::string source = fmt::format("{} ({} {})", m_endpoint.text, method, path);
  const LoadedCurl& loaded = curl_library();
  if (!loaded.error.empty()) {
    return fail(source, fmt::format("https needs libcurl ({}): {}", k_curl_library, loaded.error));
  }
  const CurlApi& api = loaded.api;
  if (m_handle->curl == nullptr) {
    m_handle->curl = api.easy_init();
    if (m_handle->curl == nullptr) {
      return fail(m_endpoint.text, "libcurl could not create a handle");
    }
  }
  CURL* curl = m_handle->curl;
  api.easy_reset(curl);
  const std::string url = m_endpoint.base_url + std::string(path);
  CurlBody response;
  response.max = max_body;
  response.keep_headers = options.keep_headers;
  api.easy_setopt(curl, CURLOPT_URL, url.c_str());
  // Only the endpoint's own scheme: no redirect or URL trick can switch protocols.
  api.easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
  api.easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  api.easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  api.easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(std::min(timeout, m_timeout).count()));
  api.easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_curl_write);
  api.easy_setopt(curl, CURLOPT_WRITEDATA, &response);
  if (!options.keep_headers.empty()) {
    api.easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_curl_header);
    api.easy_setopt(curl, CURLOPT_HEADERDATA, &response);
  }
  api.easy_setopt(curl, CURLOPT_NOPROXY, "*");
  curl_slist* headers = nullptr;
  const std::string body_copy(body);
  if (method == "POST") {
    headers = api.slist_append(headers, "Content-Type: application/json");
    api.easy_setopt(curl, CURLOPT_POST, 1L);
    api.easy_setopt(curl, CURLOPT_POSTFIELDS, body_copy.c_str());
    api.easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body_copy.size()));
  }
  headers = api.slist_append(headers, "User-Agent: memwarden");
  api.easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  const CURLcode code = api.easy_perform(curl);
  api.slist_free_all(headers);
  if (response.overflow) {
    return fail(source, "response larger than " + format_cap(max_body));
  }
  if (code != CURLE_OK) {
    long os_errno = 0;
    api.easy_getinfo(curl, CURLINFO_OS_ERRNO, &os_errno);
    return fail(source, describe_curl_failure(api, code, os_errno, m_endpoint, timeout), static_cast<int>(os_errno));
  }
  HttpResponse out;
  api.easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out.status);
  out.body = std::move(response.data);
  out.headers = std::move(response.headers);
  return out;
}

}  // namespace mw::adapters
