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
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http");
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
