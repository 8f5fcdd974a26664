#include "adapters/http.hpp"

#include <curl/curl.h>
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>

namespace mw::adapters {

Result<Endpoint> parse_endpoint(std::string_view text, std::string_view source) {
  const std::string src(source);
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
  ep.kind = Endpoint::Kind::tcp;
  ep.base_url = scheme + std::string(rest);
  return ep;
}

namespace {

// Only the endpoint's own scheme: no redirect or URL trick can switch protocols.
const char* protocol_of(const Endpoint& ep) {
  return ep.base_url.starts_with("https://") ? "https" : "http";
}

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Body {
  std::string data;
  bool overflow = false;
};

std::size_t on_write(char* ptr, std::size_t size, std::size_t count, void* user) {
  auto* body = static_cast<Body*>(user);
  const std::size_t n = size * count;
  if (body->data.size() + n > HttpClient::k_max_body_bytes) {
    body->overflow = true;
    return 0;  // aborts the transfer
  }
  body->data.append(ptr, n);
  return n;
}

std::string describe_failure(CURLcode code, long os_errno, const Endpoint& ep, std::chrono::milliseconds timeout) {
  if (code == CURLE_OPERATION_TIMEDOUT) {
    return fmt::format("no answer within {:.1f} s", static_cast<double>(timeout.count()) / 1000.0);
  }
  if (code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST) {
    const int err = static_cast<int>(os_errno);
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
    if (err != 0) {
      return fmt::format("cannot connect: {}", std::strerror(err));
    }
  }
  return curl_easy_strerror(code);
}

struct StreamState {
  const std::function<bool(std::string_view)>* on_chunk = nullptr;
  const std::function<void(long)>* on_open = nullptr;
  const std::atomic<bool>* stop = nullptr;
  CURL* curl = nullptr;
  long status = 0;
  bool opened = false;
  bool ended_by_caller = false;
  std::string handler_error;  // on_chunk or on_open threw
  std::string error_body;     // the start of a non-2xx answer
};

constexpr std::size_t k_error_body_bytes = 512;

bool is_success(long status) {
  return status >= 200 && status < 300;
}

void stream_opened(StreamState& st) {
  if (st.opened) {
    return;
  }
  long code = 0;
  curl_easy_getinfo(st.curl, CURLINFO_RESPONSE_CODE, &code);
  if (code < 200) {
    return;  // an interim 1xx answer; the real one follows
  }
  st.opened = true;
  st.status = code;
  if (*st.on_open && is_success(code)) {
    (*st.on_open)(code);
  }
}

std::size_t on_stream_header(char* ptr, std::size_t size, std::size_t count, void* user) {
  auto* st = static_cast<StreamState*>(user);
  const std::size_t n = size * count;
  const std::string_view line(ptr, n);
  if (line == "\r\n" || line == "\n") {
    try {
      stream_opened(*st);
    } catch (const std::exception& e) {
      st->handler_error = e.what();
      return 0;
    }
  }
  return n;
}

std::size_t on_stream_write(char* ptr, std::size_t size, std::size_t count, void* user) {
  auto* st = static_cast<StreamState*>(user);
  const std::size_t n = size * count;
  try {
    stream_opened(*st);
    if (!is_success(st->status)) {
      st->error_body.append(ptr, std::min(n, k_error_body_bytes - std::min(k_error_body_bytes, st->error_body.size())));
      return n;
    }
    if (!(*st->on_chunk)(std::string_view(ptr, n))) {
      st->ended_by_caller = true;
      return 0;  // aborts the transfer
    }
  } catch (const std::exception& e) {
    st->handler_error = e.what();
    return 0;
  }
  return n;
}

int on_stream_progress(void* user, curl_off_t /*dltotal*/, curl_off_t /*dlnow*/, curl_off_t /*ultotal*/,
                       curl_off_t /*ulnow*/) {
  const auto* st = static_cast<const StreamState*>(user);
  return st->stop->load() ? 1 : 0;  // non-zero aborts
}

std::string first_line(std::string_view text) {
  text = text.substr(0, text.find('\n'));
  while (!text.empty() && (text.back() == '\r' || text.back() == ' ')) {
    text.remove_suffix(1);
  }
  return std::string(text);
}

}  // namespace

struct HttpClient::Handle {
  CURL* curl = nullptr;
  ~Handle() {
    if (curl != nullptr) {
      curl_easy_cleanup(curl);
    }
  }
};

HttpClient::HttpClient(Endpoint endpoint, std::chrono::milliseconds timeout)
    : m_endpoint(std::move(endpoint)), m_timeout(timeout), m_handle(std::make_unique<Handle>()) {
  global_init();
}

HttpClient::~HttpClient() = default;
HttpClient::HttpClient(HttpClient&&) noexcept = default;
HttpClient& HttpClient::operator=(HttpClient&&) noexcept = default;

Result<HttpResponse> HttpClient::get(std::string_view path) {
  return perform("GET", path, {}, m_timeout);
}

Result<HttpResponse> HttpClient::post(std::string_view path, std::string_view json_body) {
  return perform("POST", path, json_body, m_timeout);
}

Result<HttpResponse> HttpClient::post(std::string_view path, std::string_view json_body,
                                      std::chrono::milliseconds timeout) {
  return perform("POST", path, json_body, timeout);
}

void HttpClient::close() {
  if (m_handle && m_handle->curl != nullptr) {
    curl_easy_cleanup(m_handle->curl);
    m_handle->curl = nullptr;
  }
}

Result<long> HttpClient::stream(std::string_view path, const std::function<bool(std::string_view chunk)>& on_chunk,
                                const std::atomic<bool>& stop, const std::function<void(long status)>& on_open) {
  const std::string source = fmt::format("{} (GET {})", m_endpoint.text, path);
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> easy(curl_easy_init(), &curl_easy_cleanup);
  std::unique_ptr<CURLM, decltype(&curl_multi_cleanup)> multi(curl_multi_init(), &curl_multi_cleanup);
  if (!easy || !multi) {
    return fail(m_endpoint.text, "libcurl could not create a handle");
  }
  CURL* curl = easy.get();
  StreamState st;
  st.on_chunk = &on_chunk;
  st.on_open = &on_open;
  st.stop = &stop;
  st.curl = curl;
  const std::string url = m_endpoint.base_url + std::string(path);
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, protocol_of(m_endpoint));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(m_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_stream_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &st);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_stream_write);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &st);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_stream_progress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &st);
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  if (m_endpoint.kind == Endpoint::Kind::unix_socket) {
    curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, m_endpoint.socket_path.c_str());
  }
  curl_slist* headers = curl_slist_append(nullptr, "User-Agent: memwarden");
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> header_list(headers, &curl_slist_free_all);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  if (curl_multi_add_handle(multi.get(), curl) != CURLM_OK) {
    return fail(source, "libcurl could not start the transfer");
  }
  // The multi interface with a short poll, so that `stop` is seen within ~100 ms even while the
  // server sends nothing (the progress callback alone runs about once a second when idle).
  bool stopped = false;
  for (int running = 1;;) {
    if (const CURLMcode mc = curl_multi_perform(multi.get(), &running); mc != CURLM_OK) {
      curl_multi_remove_handle(multi.get(), curl);
      return fail(source, curl_multi_strerror(mc));
    }
    if (running == 0) {
      break;
    }
    if (stop.load()) {
      stopped = true;
      break;
    }
    if (const CURLMcode mc = curl_multi_poll(multi.get(), nullptr, 0, 100, nullptr); mc != CURLM_OK) {
      curl_multi_remove_handle(multi.get(), curl);
      return fail(source, curl_multi_strerror(mc));
    }
  }
  CURLcode code = CURLE_OK;
  int left = 0;
  while (const CURLMsg* msg = curl_multi_info_read(multi.get(), &left)) {
    if (msg->msg == CURLMSG_DONE) {
      code = msg->data.result;
    }
  }
  long os_errno = 0;
  curl_easy_getinfo(curl, CURLINFO_OS_ERRNO, &os_errno);
  curl_multi_remove_handle(multi.get(), curl);
  if (stopped || (code == CURLE_ABORTED_BY_CALLBACK && stop.load())) {
    return fail(source, "stopped", ECANCELED);
  }
  if (!st.handler_error.empty()) {
    return fail(source, "the stream's handler failed: " + st.handler_error);
  }
  if (st.ended_by_caller) {
    return st.status;
  }
  if (st.opened && !is_success(st.status)) {
    const auto message = first_line(st.error_body);
    return fail(source,
                message.empty() ? fmt::format("HTTP {}", st.status) : fmt::format("HTTP {}: {}", st.status, message));
  }
  if (code == CURLE_PARTIAL_FILE && st.opened) {
    return fail(source, "the stream broke off");
  }
  if (code != CURLE_OK) {
    return fail(source, describe_failure(code, os_errno, m_endpoint, m_timeout), static_cast<int>(os_errno));
  }
  return st.status;
}

Result<HttpResponse> HttpClient::perform(std::string_view method, std::string_view path, std::string_view body,
                                         std::chrono::milliseconds timeout) {
  if (m_handle->curl == nullptr) {
    m_handle->curl = curl_easy_init();
    if (m_handle->curl == nullptr) {
      return fail(m_endpoint.text, "libcurl could not create a handle");
    }
  }
  CURL* curl = m_handle->curl;
  curl_easy_reset(curl);
  const std::string url = m_endpoint.base_url + std::string(path);
  Body response;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, protocol_of(m_endpoint));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(std::min(timeout, m_timeout).count()));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response);
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  if (m_endpoint.kind == Endpoint::Kind::unix_socket) {
    curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, m_endpoint.socket_path.c_str());
  }
  curl_slist* headers = nullptr;
  const std::string body_copy(body);
  if (method == "POST") {
    headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body_copy.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body_copy.size()));
  }
  headers = curl_slist_append(headers, "User-Agent: memwarden");
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  const CURLcode code = curl_easy_perform(curl);
  curl_slist_free_all(headers);
  const std::string source = fmt::format("{} ({} {})", m_endpoint.text, method, path);
  if (response.overflow) {
    return fail(source, fmt::format("response larger than {} MiB", k_max_body_bytes >> 20));
  }
  if (code != CURLE_OK) {
    long os_errno = 0;
    curl_easy_getinfo(curl, CURLINFO_OS_ERRNO, &os_errno);
    return fail(source, describe_failure(code, os_errno, m_endpoint, timeout), static_cast<int>(os_errno));
  }
  HttpResponse out;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out.status);
  out.body = std::move(response.data);
  return out;
}

}  // namespace mw::adapters
