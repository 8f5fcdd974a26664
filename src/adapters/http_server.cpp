#include "adapters/http_server.hpp"

#include "core/text.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <list>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <variant>

#include "http_parse.hpp"

namespace mw::adapters {

namespace {

using SteadyClock = std::chrono::steady_clock;

// RFC 9110 token characters (method, header names).
bool is_token(std::string_view text) {
  if (text.empty()) {
    return false;
  }
  return std::all_of(text.begin(), text.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return std::isalnum(u) != 0 || std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
  });
}

bool has_line_break(std::string_view text) {
  return text.find_first_of("\r\n") != std::string_view::npos;
}

// strerror in lower case for "listen host:port: address already in use".
std::string describe_errno(int err) {
  std::string text = std::strerror(err);
  if (!text.empty() && std::isupper(static_cast<unsigned char>(text.front())) != 0 &&
      (text.size() < 2 || std::islower(static_cast<unsigned char>(text[1])) != 0)) {
    text.front() = static_cast<char>(std::tolower(static_cast<unsigned char>(text.front())));
  }
  return text;
}

std::string host_port_text(std::string_view host, std::uint16_t port) {
  if (host.find(':') != std::string_view::npos) {
    return fmt::format("[{}]:{}", host, port);
  }
  return fmt::format("{}:{}", host, port);
}

std::string peer_text(const sockaddr_storage& addr) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET) {
    sockaddr_in in{};
    std::memcpy(&in, &addr, sizeof in);
    ::inet_ntop(AF_INET, &in.sin_addr, buf, sizeof buf);
    return fmt::format("{}:{}", buf, ntohs(in.sin_port));
  }
  if (addr.ss_family == AF_INET6) {
    sockaddr_in6 in6{};
    std::memcpy(&in6, &addr, sizeof in6);
    ::inet_ntop(AF_INET6, &in6.sin6_addr, buf, sizeof buf);
    return fmt::format("[{}]:{}", buf, ntohs(in6.sin6_port));
  }
  return "unknown";
}

std::string render_response(const ServerResponse& response, bool head_only) {
  std::string out = fmt::format("HTTP/1.1 {} {}\r\n", response.status, http_reason_phrase(response.status));
  if (!response.content_type.empty() && !has_line_break(response.content_type)) {
    out += fmt::format("Content-Type: {}\r\n", response.content_type);
  }
  for (const auto& [name, value] : response.headers) {
    const auto key = ascii_lower(name);
    if (!is_token(name) || has_line_break(value) || key == "content-length" || key == "connection" ||
        key == "transfer-encoding") {
      continue;
    }
    out += fmt::format("{}: {}\r\n", name, value);
  }
  out += fmt::format("Content-Length: {}\r\nConnection: close\r\n\r\n", response.body.size());
  if (!head_only) {
    out += response.body;
  }
  return out;
}

ServerResponse error_response(int status, std::string_view message) {
  ServerResponse r;
  r.status = status;
  r.body = std::string(message) + "\n";
  return r;
}

}  // namespace

namespace detail::request {

std::variant<ParsedHead, ParseFailure> parse_head(std::string_view head, const HttpServerOptions& options) {
  ParsedHead out;
  auto next_line = [&head]() {
    const auto nl = head.find('\n');
    std::string_view line = head.substr(0, nl);
    head = nl == std::string_view::npos ? std::string_view{} : head.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    return line;
  };
  const std::string_view request_line = next_line();
  const auto sp1 = request_line.find(' ');
  const auto sp2 = sp1 == std::string_view::npos ? sp1 : request_line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || request_line.find(' ', sp2 + 1) != std::string_view::npos) {
    return ParseFailure{400, "malformed request line"};
  }
  const auto method = request_line.substr(0, sp1);
  const auto target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
  const auto version = request_line.substr(sp2 + 1);
  if (!is_token(method)) {
    return ParseFailure{400, "malformed request method"};
  }
  if (target.empty() || target.front() != '/' ||
      std::any_of(target.begin(), target.end(), [](char c) { return static_cast<unsigned char>(c) <= 0x20; })) {
    return ParseFailure{400, "malformed request target (expected a path starting with /)"};
  }
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    return ParseFailure{400, "unsupported protocol version (expected HTTP/1.1 or HTTP/1.0)"};
  }
  auto& req = out.request;
  req.method = std::string(method);
  req.target = std::string(target);
  const auto q = target.find('?');
  req.path = std::string(target.substr(0, q));
  req.query = q == std::string_view::npos ? std::string{} : std::string(target.substr(q + 1));
  while (!head.empty()) {
    const std::string_view line = next_line();
    if (line.empty()) {
      continue;
    }
    if (line.front() == ' ' || line.front() == '\t') {
      return ParseFailure{400, "folded header lines are not accepted"};
    }
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || !is_token(line.substr(0, colon))) {
      return ParseFailure{400, "malformed header line"};
    }
    const auto value = trim(line.substr(colon + 1));
    if (std::any_of(value.begin(), value.end(), [](char c) { return c == '\0' || c == '\r'; })) {
      return ParseFailure{400, "malformed header value"};
    }
    const auto name = ascii_lower(line.substr(0, colon));
    auto [it, inserted] = req.headers.emplace(name, std::string(value));
    if (!inserted) {
      if (name == "content-length" && it->second != value) {
        return ParseFailure{400, "conflicting Content-Length headers"};
      }
      if (name != "content-length") {
        it->second += ", ";
        it->second += value;
      }
    }
  }
  if (req.headers.contains("transfer-encoding")) {
    return ParseFailure{411, "Transfer-Encoding on a request is not supported; send Content-Length"};
  }
  if (const auto it = req.headers.find("content-length"); it != req.headers.end()) {
    const auto length = parse_u64(it->second);
    if (!length) {
      return ParseFailure{400, "malformed Content-Length"};
    }
    if (*length > options.max_body_bytes) {
      return ParseFailure{413, fmt::format("request body larger than {} bytes", options.max_body_bytes)};
    }
    out.content_length = static_cast<std::size_t>(*length);
  }
  if (const auto it = req.headers.find("expect"); it != req.headers.end()) {
    out.expect_continue = ascii_lower(it->second) == "100-continue";
  }
  return out;
}

std::optional<std::pair<std::size_t, std::size_t>> find_head_end(std::string_view data, std::size_t from) {
  for (std::size_t nl = data.find('\n', from); nl != std::string_view::npos; nl = data.find('\n', nl + 1)) {
    const std::size_t after = nl + 1;
    if (after < data.size() && data[after] == '\n') {
      return std::pair{after + 1, nl};
    }
    if (after + 1 < data.size() && data[after] == '\r' && data[after + 1] == '\n') {
      return std::pair{after + 2, nl};
    }
  }
  return std::nullopt;
}

std::variant<NeedMore, HeadDone, ParseFailure> scan_head(std::string_view received, const HttpServerOptions& options,
                                                         std::size_t from) {
  // A head of max_header_bytes ends (with CR LF CR LF, or LF CR LF) within the first max_header_bytes + 3 bytes:
  // with that many and no end, it cannot fit; with fewer, its end may still come, however the bytes were split.
  const std::size_t window_size = options.max_header_bytes > SIZE_MAX - 3 ? SIZE_MAX : options.max_header_bytes + 3;
  const std::string_view window = received.substr(0, std::min(received.size(), window_size));
  const auto end = find_head_end(window, from);
  if (!end) {
    if (received.size() >= window_size) {
      return ParseFailure{431, "request header section too large"};
    }
    return NeedMore{window.size() < 2 ? 0 : window.size() - 2};  // a line end in the last 2 bytes may go on
  }
  if (end->second > options.max_header_bytes) {
    return ParseFailure{431, "request header section too large"};
  }
  auto parsed = parse_head(received.substr(0, end->second), options);
  if (auto* failure = std::get_if<ParseFailure>(&parsed)) {
    return std::move(*failure);
  }
  return HeadDone{std::move(std::get<ParsedHead>(parsed)), end->first};
}

std::optional<std::string_view> complete_body(std::string_view received, const HeadDone& head) {
  if (received.size() - head.body_offset < head.head.content_length) {
    return std::nullopt;
  }
  return received.substr(head.body_offset, head.head.content_length);
}

}  // namespace detail::request

namespace {

enum class Phase { reading, offloaded, writing, lingering };  // offloaded: the second thread answers it

// What a connection counts against.
enum class Slot {
  none,     // closed
  regular,  // one of max_connections, and of its client's max_connections_per_client
  reserve,  // one of reserved_connections: served only for reserve_paths
  closing   // outside the slots: answered (or being told 503), waiting for the client to close
};

struct Connection {
  std::uint64_t id = 0;  // matches an offloaded answer to its connection
  int fd = -1;
  std::string peer;    // "127.0.0.1:54321", for the handler
  std::string client;  // the per-client key (client_key)
  Slot slot = Slot::none;
  Phase phase = Phase::reading;
  SteadyClock::time_point accepted;
  SteadyClock::time_point deadline;
  std::string in;
  std::size_t searched = 0;  // no head ends before this offset of `in`
  std::optional<detail::request::HeadDone> head;
  std::string out;
  std::size_t out_pos = 0;
  bool head_only = false;  // an offloaded HEAD request: answered without the body
};

class Fd {
 public:
  explicit Fd(int fd = -1) : m_fd(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& other) noexcept : m_fd(std::exchange(other.m_fd, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      m_fd = std::exchange(other.m_fd, -1);
    }
    return *this;
  }
  [[nodiscard]] int get() const { return m_fd; }
  void reset() {
    if (m_fd >= 0) {
      ::close(m_fd);
      m_fd = -1;
    }
  }

 private:
  int m_fd;
};

constexpr std::chrono::milliseconds k_max_linger{2000};
constexpr std::chrono::milliseconds k_accept_pause{100};

// The per-client key: an IPv4 address (also written ::ffff:a.b.c.d), or the /64 of an IPv6 address (a host
// usually has a whole /64 to pick addresses from), as bytes.
std::string client_key(const sockaddr_storage& addr) {
  if (addr.ss_family == AF_INET) {
    sockaddr_in in{};
    std::memcpy(&in, &addr, sizeof in);
    return std::string(reinterpret_cast<const char*>(&in.sin_addr), sizeof in.sin_addr);
  }
  if (addr.ss_family == AF_INET6) {
    sockaddr_in6 in6{};
    std::memcpy(&in6, &addr, sizeof in6);
    const auto* bytes = reinterpret_cast<const char*>(in6.sin6_addr.s6_addr);
    return IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr) ? std::string(bytes + 12, 4) : std::string(bytes, 8);
  }
  return {};
}

}  // namespace

struct HttpServer::Impl {
  HttpServerOptions options;
  RequestHandler handler;
  Fd listen_fd;
  Fd wake_fd;
  std::uint16_t port = 0;
  std::atomic<bool> stopping{false};
  std::atomic<std::thread::id> worker_id{};
  std::mutex stop_mutex;
  std::thread worker;
  std::list<Connection> connections;  // oldest first
  std::size_t regular = 0;            // connections in each slot
  std::size_t reserved = 0;
  std::size_t closing = 0;
  std::unordered_map<std::string, std::size_t> per_client;  // regular slots by client key
  std::size_t unsent = 0;                                   // bytes of answers not yet sent
  std::uint64_t accepted_total = 0;
  std::uint64_t evicted_total = 0;
  std::uint64_t refused_total = 0;
  SteadyClock::time_point accept_paused_until{};
  std::uint64_t next_id = 0;
  // The offload thread (options.offload_paths): requests in, answers out, done_fd says an answer is there.
  struct Work {
    std::uint64_t id;
    ServerRequest request;
  };
  Fd done_fd;
  std::thread offload;
  std::atomic<std::thread::id> offload_id{};
  std::mutex work_mutex;
  std::condition_variable work_cv;
  std::deque<Work> work;
  std::deque<std::pair<std::uint64_t, ServerResponse>> answered;
  bool work_stop = false;
  std::size_t offloaded = 0;  // poll thread: requests handed over and not yet answered
  // What stats() reads, published by the worker each time before it waits.
  std::atomic<std::size_t> stat_regular{0};
  std::atomic<std::size_t> stat_reserved{0};
  std::atomic<std::size_t> stat_closing{0};
  std::atomic<std::uint64_t> stat_accepted{0};
  std::atomic<std::uint64_t> stat_evicted{0};
  std::atomic<std::uint64_t> stat_refused{0};

  void run();
  void run_offload();
  void take_answers();
  [[nodiscard]] bool is_offloaded(const std::string& path) const;
  void accept_all();
  void admit(Connection connection);
  void make_room(SteadyClock::time_point now);
  void evict_from_reserve(const std::string& client);
  [[nodiscard]] std::size_t eviction_threshold() const;
  [[nodiscard]] bool is_reserve_request(const detail::request::ParsedHead& head) const;
  void on_readable(Connection& c);
  void on_writable(Connection& c);
  void process_input(Connection& c);
  void respond(Connection& c, const ServerResponse& response, bool head_only);
  void refuse(Connection& c);
  [[nodiscard]] bool room_to_close();
  void on_deadline(Connection& c);
  void set_slot(Connection& c, Slot slot);
  void close_connection(Connection& c);
  void publish();
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}

HttpServer::~HttpServer() {
  stop();
}

std::uint16_t HttpServer::port() const {
  return m_impl->port;
}

HttpServerStats HttpServer::stats() const {
  HttpServerStats out;
  out.connections = m_impl->stat_regular.load();
  out.reserved = m_impl->stat_reserved.load();
  out.closing = m_impl->stat_closing.load();
  out.accepted = m_impl->stat_accepted.load();
  out.evicted = m_impl->stat_evicted.load();
  out.refused = m_impl->stat_refused.load();
  return out;
}

void HttpServer::stop() {
  m_impl->stopping.store(true);
  const std::uint64_t one = 1;
  (void)!::write(m_impl->wake_fd.get(), &one, sizeof one);
  if (m_impl->worker_id.load() == std::this_thread::get_id() ||
      m_impl->offload_id.load() == std::this_thread::get_id()) {
    return;  // from the handler: the worker leaves its loop after this request
  }
  std::lock_guard lock(m_impl->stop_mutex);
  if (m_impl->worker.joinable()) {
    m_impl->worker.join();
  }
  {
    std::lock_guard work_lock(m_impl->work_mutex);
    m_impl->work_stop = true;
  }
  m_impl->work_cv.notify_all();
  if (m_impl->offload.joinable()) {
    m_impl->offload.join();
  }
}

Result<std::unique_ptr<HttpServer>> HttpServer::start(HttpServerOptions options, RequestHandler handler) {
  const std::string bind_host = ascii_lower(options.host) == "localhost" ? std::string("127.0.0.1") : options.host;
  const std::string source = "listen " + host_port_text(options.host, options.port);
  if (!handler) {
    return fail(source, "no request handler");
  }
  if (options.max_connections == 0) {
    return fail(source, "max_connections must be at least 1");
  }
  if (options.max_connections_per_client == 0) {
    return fail(source, "max_connections_per_client must be at least 1");
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(options.port);
  if (const int rc = ::getaddrinfo(bind_host.c_str(), service.c_str(), &hints, &found); rc != 0) {
    return fail(source, fmt::format("cannot resolve '{}': {}", options.host, ::gai_strerror(rc)));
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> list(found, &::freeaddrinfo);
  Fd listen_fd;
  int last_errno = 0;
  for (const addrinfo* ai = list.get(); ai != nullptr; ai = ai->ai_next) {
    Fd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol));
    if (fd.get() < 0) {
      last_errno = errno;
      continue;
    }
    const int on = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (::bind(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd.get(), 128) != 0) {
      last_errno = errno;
      continue;
    }
    listen_fd = std::move(fd);
    break;
  }
  if (listen_fd.get() < 0) {
    return fail(source, describe_errno(last_errno), last_errno);
  }
  sockaddr_storage bound{};
  socklen_t bound_len = sizeof bound;
  if (::getsockname(listen_fd.get(), reinterpret_cast<sockaddr*>(&bound), &bound_len) != 0) {
    const int err = errno;
    return fail(source, describe_errno(err), err);
  }
  std::uint16_t port = 0;
  if (bound.ss_family == AF_INET) {
    sockaddr_in in{};
    std::memcpy(&in, &bound, sizeof in);
    port = ntohs(in.sin_port);
  } else if (bound.ss_family == AF_INET6) {
    sockaddr_in6 in6{};
    std::memcpy(&in6, &bound, sizeof in6);
    port = ntohs(in6.sin6_port);
  }
  Fd wake_fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (wake_fd.get() < 0) {
    const int err = errno;
    return fail(source, "eventfd: " + describe_errno(err), err);
  }
  Fd done_fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (done_fd.get() < 0) {
    const int err = errno;
    return fail(source, "eventfd: " + describe_errno(err), err);
  }
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->handler = std::move(handler);
  impl->listen_fd = std::move(listen_fd);
  impl->wake_fd = std::move(wake_fd);
  impl->done_fd = std::move(done_fd);
  impl->port = port;
  Impl* raw = impl.get();
  impl->worker = std::thread([raw] { raw->run(); });
  if (!raw->options.offload_paths.empty()) {
    raw->offload = std::thread([raw] { raw->run_offload(); });
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

void HttpServer::Impl::run() {
  worker_id.store(std::this_thread::get_id());
  std::vector<pollfd> fds;
  std::vector<Connection*> polled;
  while (!stopping.load()) {
    const auto now = SteadyClock::now();
    make_room(now);
    fds.clear();
    polled.clear();
    fds.push_back({wake_fd.get(), POLLIN, 0});
    const bool accepting = now >= accept_paused_until;
    fds.push_back({accepting ? listen_fd.get() : -1, POLLIN, 0});
    fds.push_back({done_fd.get(), POLLIN, 0});
    auto next_wake = accepting ? SteadyClock::time_point::max() : accept_paused_until;
    const bool evicting = regular > eviction_threshold();
    for (auto& c : connections) {
      if (c.fd < 0) {
        continue;  // evicted by make_room
      }
      const short events = c.phase == Phase::writing ? POLLOUT : POLLIN;
      fds.push_back({c.fd, events, 0});
      polled.push_back(&c);
      next_wake = std::min(next_wake, c.deadline);
      if (evicting && c.slot == Slot::regular && c.phase == Phase::reading) {
        next_wake = std::min(next_wake, c.accepted + options.evict_idle_after);  // when it may be evicted
      }
    }
    int timeout_ms = -1;
    if (next_wake != SteadyClock::time_point::max()) {
      const auto wait = std::chrono::ceil<std::chrono::milliseconds>(next_wake - now);
      timeout_ms = static_cast<int>(std::clamp<std::chrono::milliseconds::rep>(wait.count(), 0, 60'000));
    }
    publish();
    const int ready = ::poll(fds.data(), fds.size(), timeout_ms);
    if (ready < 0 && errno != EINTR) {
      break;  // cannot happen with valid descriptors; leave rather than spin
    }
    if (stopping.load() || (fds[0].revents & POLLIN) != 0) {
      break;
    }
    if ((fds[1].revents & POLLIN) != 0) {
      accept_all();
    }
    if ((fds[2].revents & POLLIN) != 0) {
      take_answers();
    }
    for (std::size_t i = 0; i < polled.size(); ++i) {
      Connection& c = *polled[i];
      const short revents = fds[i + 3].revents;
      if (c.fd < 0 || revents == 0) {
        continue;
      }
      if ((revents & POLLNVAL) != 0) {
        close_connection(c);
      } else if (c.phase == Phase::writing) {
        on_writable(c);
      } else {
        on_readable(c);
      }
    }
    const auto after = SteadyClock::now();
    for (auto& c : connections) {
      if (c.fd >= 0 && after >= c.deadline) {
        on_deadline(c);
      }
    }
    std::erase_if(connections, [](const Connection& c) { return c.fd < 0; });
  }
  for (auto& c : connections) {
    close_connection(c);
  }
  connections.clear();
  publish();
  listen_fd.reset();
}

// The offload thread: answers offload_paths' requests one after another.
void HttpServer::Impl::run_offload() {
  offload_id.store(std::this_thread::get_id());
  for (;;) {
    Work next;
    {
      std::unique_lock lock(work_mutex);
      work_cv.wait(lock, [&] { return work_stop || !work.empty(); });
      if (work_stop) {
        return;
      }
      next = std::move(work.front());
      work.pop_front();
    }
    ServerResponse response;
    try {
      response = handler(next.request);
    } catch (...) {
      response = error_response(500, "internal error");
    }
    {
      std::lock_guard lock(work_mutex);
      answered.emplace_back(next.id, std::move(response));
    }
    const std::uint64_t one = 1;
    (void)!::write(done_fd.get(), &one, sizeof one);
  }
}

// Poll thread: sends the offload thread's answers to connections still waiting for them.
void HttpServer::Impl::take_answers() {
  std::uint64_t count = 0;
  (void)!::read(done_fd.get(), &count, sizeof count);
  std::deque<std::pair<std::uint64_t, ServerResponse>> ready;
  {
    std::lock_guard lock(work_mutex);
    ready.swap(answered);
  }
  for (auto& [id, response] : ready) {
    --offloaded;
    const auto it = std::find_if(connections.begin(), connections.end(), [id = id](const Connection& c) {
      return c.id == id && c.fd >= 0 && c.phase == Phase::offloaded;
    });
    if (it != connections.end()) {
      respond(*it, response, it->head_only);
    }  // else: closed by its client or answered 503 meanwhile
  }
}

bool HttpServer::Impl::is_offloaded(const std::string& path) const {
  return std::find(options.offload_paths.begin(), options.offload_paths.end(), path) != options.offload_paths.end();
}

void HttpServer::Impl::accept_all() {
  for (int i = 0; i < 64; ++i) {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    const int fd = ::accept4(listen_fd.get(), reinterpret_cast<sockaddr*>(&addr), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        accept_paused_until = SteadyClock::now() + k_accept_pause;  // no descriptors: try again shortly
      }
      return;  // EAGAIN, or an aborted connection
    }
    ++accepted_total;
    Connection c;
    c.id = ++next_id;
    c.fd = fd;
    c.peer = peer_text(addr);
    c.client = client_key(addr);
    c.accepted = SteadyClock::now();
    c.deadline = c.accepted + options.io_timeout;
    admit(std::move(c));
  }
}

// A regular slot if there is one (after evicting idle connections) and the client has not used up its own;
// else the reserve; else a 503.
void HttpServer::Impl::admit(Connection connection) {
  const auto now = connection.accepted;
  make_room(now);
  const auto mine = per_client.find(connection.client);
  const bool client_full = mine != per_client.end() && mine->second >= options.max_connections_per_client;
  connections.push_back(std::move(connection));
  Connection& c = connections.back();
  if (regular < options.max_connections && !client_full) {
    set_slot(c, Slot::regular);
  } else if (options.reserved_connections > 0) {
    if (reserved >= options.reserved_connections) {
      evict_from_reserve(c.client);
    }
    set_slot(c, Slot::reserve);
    c.deadline = now + std::min(options.io_timeout, options.evict_idle_after);
  } else {
    refuse(c);
    return;
  }
  // A client that sent its request with the connection (a scraper, a probe) is answered now, before a burst of
  // later connections could turn it out of the reserve.
  on_readable(c);
}

// Past 3/4 of max_connections (rounded down), idle connections may be evicted.
std::size_t HttpServer::Impl::eviction_threshold() const {
  const std::size_t max = options.max_connections;
  return max - (max / 4 + (max % 4 != 0 ? 1 : 0));
}

// Above the threshold, closes regular connections that have not sent their whole request within
// evict_idle_after of being accepted, oldest first, until it is reached.
void HttpServer::Impl::make_room(SteadyClock::time_point now) {
  const std::size_t threshold = eviction_threshold();
  for (auto& c : connections) {
    if (regular <= threshold) {
      return;
    }
    if (c.fd >= 0 && c.slot == Slot::regular && c.phase == Phase::reading &&
        now - c.accepted >= options.evict_idle_after) {
      close_connection(c);
      ++evicted_total;
    }
  }
}

// Makes room in the full reserve: closes the oldest connection there that is still reading its request, of
// `client` if it has one (a client that floods turns over its own), else anyone's; failing that, the oldest
// being answered.
void HttpServer::Impl::evict_from_reserve(const std::string& client) {
  Connection* victim = nullptr;
  int best = 4;
  for (auto& c : connections) {
    if (c.fd < 0 || c.slot != Slot::reserve) {
      continue;
    }
    const int rank = (c.phase == Phase::reading ? 0 : 2) + (c.client == client ? 0 : 1);
    if (rank < best) {
      best = rank;
      victim = &c;
    }
  }
  if (victim != nullptr) {
    close_connection(*victim);
    ++evicted_total;
  }
}

bool HttpServer::Impl::is_reserve_request(const detail::request::ParsedHead& head) const {
  const auto& req = head.request;
  return (req.method == "GET" || req.method == "HEAD") && head.content_length == 0 &&
         std::find(options.reserve_paths.begin(), options.reserve_paths.end(), req.path) != options.reserve_paths.end();
}

// 503 "too many connections", outside the slots (or a close, when max_connections are being answered).
void HttpServer::Impl::refuse(Connection& c) {
  ++refused_total;
  if (c.slot != Slot::closing && !room_to_close()) {
    close_connection(c);
    return;
  }
  set_slot(c, Slot::closing);
  respond(c, error_response(503, "too many connections"), false);
}

// Room for one more connection in `closing`: past max_connections, the oldest lingering one is closed (its
// answer is out; lingering only spares a client that is still sending a reset). False when all are still
// being written to.
bool HttpServer::Impl::room_to_close() {
  if (closing < options.max_connections) {
    return true;
  }
  for (auto& c : connections) {
    if (c.fd >= 0 && c.slot == Slot::closing && c.phase == Phase::lingering) {
      close_connection(c);
      return true;
    }
  }
  return false;
}

void HttpServer::Impl::set_slot(Connection& c, Slot slot) {
  switch (c.slot) {
    case Slot::regular:
      --regular;
      if (const auto it = per_client.find(c.client); it != per_client.end() && --it->second == 0) {
        per_client.erase(it);
      }
      break;
    case Slot::reserve:
      --reserved;
      break;
    case Slot::closing:
      --closing;
      break;
    case Slot::none:
      break;
  }
  c.slot = slot;
  switch (slot) {
    case Slot::regular:
      ++regular;
      ++per_client[c.client];
      break;
    case Slot::reserve:
      ++reserved;
      break;
    case Slot::closing:
      ++closing;
      break;
    case Slot::none:
      break;
  }
}

void HttpServer::Impl::close_connection(Connection& c) {
  if (c.fd >= 0) {
    ::close(c.fd);
    c.fd = -1;
  }
  unsent -= c.out.size();  // an answer never sent whole
  c.out.clear();
  c.out.shrink_to_fit();
  set_slot(c, Slot::none);
}

void HttpServer::Impl::publish() {
  stat_regular.store(regular);
  stat_reserved.store(reserved);
  stat_closing.store(closing);
  stat_accepted.store(accepted_total);
  stat_evicted.store(evicted_total);
  stat_refused.store(refused_total);
}

void HttpServer::Impl::on_readable(Connection& c) {
  char buf[16384];
  const ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      close_connection(c);
    }
    return;
  }
  if (n == 0) {
    close_connection(c);  // the client went away (or finished reading our answer)
    return;
  }
  if (c.phase == Phase::lingering || c.phase == Phase::offloaded) {
    return;  // discard what a client sends after its request (an unread body)
  }
  c.in.append(buf, static_cast<std::size_t>(n));
  process_input(c);
}

void HttpServer::Impl::process_input(Connection& c) {
  using detail::request::HeadDone;
  using detail::request::ParseFailure;
  if (!c.head) {
    auto scanned = detail::request::scan_head(c.in, options, c.searched);
    if (auto* failure = std::get_if<ParseFailure>(&scanned)) {
      respond(c, error_response(failure->status, failure->message), false);
      return;
    }
    if (const auto* more = std::get_if<detail::request::NeedMore>(&scanned)) {
      c.searched = more->searched;
      return;
    }
    c.head = std::move(std::get<HeadDone>(scanned));
    c.head->head.request.peer = c.peer;
    if (c.slot == Slot::reserve && !is_reserve_request(c.head->head)) {
      refuse(c);
      return;
    }
    if (c.head->head.expect_continue && c.in.size() - c.head->body_offset < c.head->head.content_length) {
      static constexpr std::string_view k_continue = "HTTP/1.1 100 Continue\r\n\r\n";
      (void)::send(c.fd, k_continue.data(), k_continue.size(), MSG_NOSIGNAL);  // best effort
    }
  }
  const auto body = detail::request::complete_body(c.in, *c.head);
  if (!body) {
    return;
  }
  ServerRequest& req = c.head->head.request;
  req.body = std::string(*body);
  if (is_offloaded(req.path)) {
    if (offloaded >= options.max_offloaded) {
      respond(c, error_response(503, "busy: too many slow requests are waiting"), req.method == "HEAD");
      return;
    }
    ++offloaded;
    c.phase = Phase::offloaded;
    c.head_only = req.method == "HEAD";
    c.deadline = SteadyClock::now() + options.io_timeout;
    {
      std::lock_guard lock(work_mutex);
      work.push_back({c.id, std::move(req)});
    }
    work_cv.notify_one();
    return;
  }
  ServerResponse response;
  try {
    response = handler(req);
  } catch (...) {
    response = error_response(500, "internal error");
  }
  respond(c, response, req.method == "HEAD");
}

void HttpServer::Impl::respond(Connection& c, const ServerResponse& response, bool head_only) {
  unsent -= c.out.size();
  c.out = render_response(response, head_only);
  // Answers wait in memory until their clients read them: clients that never read cannot make them pile up.
  constexpr std::size_t k_small_answer = 4096;
  if (c.out.size() > k_small_answer && unsent + c.out.size() > options.max_unsent_bytes) {
    c.out = render_response(error_response(503, "busy: too many answers are waiting for their clients to read them"),
                            head_only);
  }
  unsent += c.out.size();
  c.out_pos = 0;
  c.phase = Phase::writing;
  c.in.clear();
  c.in.shrink_to_fit();
  c.deadline = SteadyClock::now() + options.io_timeout;
  on_writable(c);
}

void HttpServer::Impl::on_writable(Connection& c) {
  while (c.out_pos < c.out.size()) {
    const ssize_t n = ::send(c.fd, c.out.data() + c.out_pos, c.out.size() - c.out_pos, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        close_connection(c);
      }
      return;
    }
    c.out_pos += static_cast<std::size_t>(n);
  }
  // All sent: half-close and read until the client closes, so that a body we did not read
  // does not turn our close into a reset that could discard the answer on the client's side.
  unsent -= c.out.size();
  c.out.clear();
  c.out.shrink_to_fit();
  ::shutdown(c.fd, SHUT_WR);
  c.phase = Phase::lingering;
  c.deadline = SteadyClock::now() + std::min(options.io_timeout, k_max_linger);
  // Answered: the slot is free for the next request.
  if (c.slot != Slot::closing) {
    if (!room_to_close()) {
      close_connection(c);
      return;
    }
    set_slot(c, Slot::closing);
  }
}

void HttpServer::Impl::on_deadline(Connection& c) {
  if (c.phase == Phase::reading && c.slot == Slot::reserve) {
    close_connection(c);  // the reserve waits for no one
  } else if (c.phase == Phase::reading) {
    respond(c, error_response(408, "request not received in time"), false);
  } else if (c.phase == Phase::offloaded) {
    respond(c, error_response(503, "busy: the answer was not ready in time"), c.head_only);
  } else {
    close_connection(c);  // a client that does not read its answer, or lingers
  }
}

Result<std::pair<std::string, std::uint16_t>> parse_listen_address(std::string_view text, std::string_view source) {
  const std::string src(source);
  const auto usage = [&](std::string_view why) {
    return fail(src, fmt::format("'{}': {} (expected host:port, e.g. 127.0.0.1:9490 or [::1]:9490)", text, why));
  };
  std::string_view host;
  std::string_view port_text;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos) {
      return usage("missing ']' after the IPv6 address");
    }
    host = text.substr(1, close - 1);
    const auto rest = text.substr(close + 1);
    if (!rest.starts_with(':')) {
      return usage("missing :port");
    }
    port_text = rest.substr(1);
    in6_addr addr6{};
    const std::string host_copy(host);
    if (::inet_pton(AF_INET6, host_copy.c_str(), &addr6) != 1) {
      return usage("not an IPv6 address between the brackets");
    }
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return usage("missing :port");
    }
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return usage("put an IPv6 address in brackets");
    }
    if (host.empty()) {
      return usage("missing host (use 0.0.0.0 to listen on every interface)");
    }
    const bool valid_name = std::all_of(host.begin(), host.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '-' || c == '_';
    });
    if (!valid_name || host.front() == '-' || host.front() == '.') {
      return usage("not a host name or address");
    }
  }
  const auto port = parse_u64(port_text);
  if (!port || *port > 65535) {
    return usage(fmt::format("port '{}' is not a number from 0 to 65535", port_text));
  }
  return std::pair{std::string(host), static_cast<std::uint16_t>(*port)};
}

bool is_loopback_host(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (ascii_lower(host) == "localhost") {
    return true;
  }
  const std::string text(host);
  in_addr addr4{};
  if (::inet_pton(AF_INET, text.c_str(), &addr4) == 1) {
    return (ntohl(addr4.s_addr) >> 24) == 127;
  }
  in6_addr addr6{};
  if (::inet_pton(AF_INET6, text.c_str(), &addr6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&addr6)) {
      return true;
    }
    return IN6_IS_ADDR_V4MAPPED(&addr6) && addr6.s6_addr[12] == 127;
  }
  return false;
}

std::string_view http_reason_phrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Content";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Unknown";
  }
}

}  // namespace mw::adapters
