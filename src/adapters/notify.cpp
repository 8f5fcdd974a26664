#include "adapters/notify.hpp"

#include <fmt/format.h>

#include <ctime>

#include "adapters/http.hpp"

namespace mw::adapters {

using nlohmann::json;

namespace {

std::string target_source(const NotifyTarget& target) {
  return fmt::format("notify '{}' ({})", target.name, to_string(target.kind));
}

// Serializes without throwing on invalid UTF-8 (container names and messages come from outside).
std::string dump(const json& doc) {
  return doc.dump(-1, ' ', false, json::error_handler_t::replace);
}

bool is_url_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u > 0x20 && u != 0x7f;
}

// "host", "host:port", "[v6]" or "[v6]:port"; the port 1..65535 when given.
bool valid_authority(std::string_view authority, std::string& why) {
  std::string_view port;
  if (authority.starts_with('[')) {
    const auto close = authority.find(']');
    if (close == std::string_view::npos || close == 1) {
      why = "an IPv6 address needs [brackets]";
      return false;
    }
    const auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        why = "expected :port after the IPv6 address";
        return false;
      }
      port = after.substr(1);
      if (port.empty()) {
        why = "the port is empty";
        return false;
      }
    }
  } else {
    const auto colon = authority.find(':');
    if (colon == 0) {
      why = "the host is missing";
      return false;
    }
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) {
        why = "the port is empty";
        return false;
      }
    }
  }
  if (!port.empty()) {
    unsigned value = 0;
    for (const char c : port) {
      if (c < '0' || c > '9' || port.size() > 5) {
        why = fmt::format("the port '{}' is not a number from 1 to 65535", port);
        return false;
      }
      value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value == 0 || value > 65535) {
      why = fmt::format("the port '{}' is not a number from 1 to 65535", port);
      return false;
    }
  }
  return true;
}

int ntfy_priority(Severity severity) {
  switch (severity) {
    case Severity::critical:
      return 5;
    case Severity::warning:
      return 4;
    case Severity::info:
      return 3;
  }
  return 3;
}

bool valid_ntfy_topic(std::string_view topic) {
  if (topic.empty() || topic.size() > 64) {
    return false;
  }
  for (const char c : topic) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok) {
      return false;
    }
  }
  return true;
}

// Cuts UTF-8 text to at most `limit` code points, ending in "…" when it had to cut.
std::string cut_code_points(const std::string& text, std::size_t limit) {
  if (limit == 0) {
    return "";
  }
  std::size_t points = 0;
  std::size_t keep_bytes = 0;  // bytes of the first (limit - 1) code points
  for (std::size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0U) != 0x80U) {
      if (points == limit - 1) {
        keep_bytes = i;
      }
      ++points;
    }
  }
  if (points <= limit) {
    return text;
  }
  return text.substr(0, keep_bytes) + "\u2026";
}

std::string slack_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// The start of a response body on one line, for error messages.
std::string body_excerpt(std::string_view body) {
  constexpr std::size_t k_max = 200;
  std::string out;
  bool space = false;
  for (const char c : body) {
    if (c == '\n' || c == '\r' || c == '\t' || c == ' ') {
      space = !out.empty();
      continue;
    }
    if (static_cast<unsigned char>(c) < 0x20) {
      continue;
    }
    if (space) {
      out += ' ';
      space = false;
    }
    out += c;
    if (out.size() >= k_max) {
      out += "...";
      break;
    }
  }
  return out;
}

}  // namespace

Result<NotifyKind> parse_notify_kind(std::string_view text, std::string_view source) {
  for (const auto kind : {NotifyKind::generic, NotifyKind::ntfy, NotifyKind::discord, NotifyKind::slack}) {
    if (text == to_string(kind)) {
      return kind;
    }
  }
  return fail(std::string(source),
              fmt::format("unknown notification kind '{}': expected generic, ntfy, discord or slack", text));
}

const char* to_string(NotifyKind kind) {
  switch (kind) {
    case NotifyKind::generic:
      return "generic";
    case NotifyKind::ntfy:
      return "ntfy";
    case NotifyKind::discord:
      return "discord";
    case NotifyKind::slack:
      return "slack";
  }
  return "unknown";
}

Result<WebhookRequest> split_webhook_url(std::string_view url, std::string_view source) {
  const std::string src(source);
  std::string_view scheme;
  if (url.starts_with("http://")) {
    scheme = "http://";
  } else if (url.starts_with("https://")) {
    scheme = "https://";
  } else {
    return fail(src, fmt::format("'{}': expected an http:// or https:// URL", redacted_url(url)));
  }
  for (const char c : url) {
    if (!is_url_char(c)) {
      return fail(src, fmt::format("'{}': a URL cannot contain spaces or control characters", redacted_url(url)));
    }
  }
  std::string_view rest = url.substr(scheme.size());
  const auto end_of_authority = rest.find_first_of("/?#");
  const std::string_view authority = rest.substr(0, end_of_authority);
  if (authority.empty()) {
    return fail(src, fmt::format("'{}': the host is missing", redacted_url(url)));
  }
  if (authority.find('@') != std::string_view::npos) {
    return fail(src, fmt::format("'{}': user:password@ in the URL is not supported", redacted_url(url)));
  }
  std::string why;
  if (!valid_authority(authority, why)) {
    return fail(src, fmt::format("'{}': {}", redacted_url(url), why));
  }
  std::string_view path =
      end_of_authority == std::string_view::npos ? std::string_view{} : rest.substr(end_of_authority);
  if (const auto hash = path.find('#'); hash != std::string_view::npos) {
    path = path.substr(0, hash);
  }
  WebhookRequest req;
  req.endpoint = std::string(scheme) + std::string(authority);
  req.path = path.starts_with('/') ? std::string(path) : "/" + std::string(path);
  if (auto ep = parse_endpoint(req.endpoint, source); !ep) {
    return unexpected(ep.error());
  }
  return req;
}

std::string redacted_url(std::string_view url) {
  const auto scheme_end = url.find("://");
  const std::size_t authority_start = scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
  const auto rest = url.substr(authority_start);
  const auto end_of_authority = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end_of_authority);
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    authority = authority.substr(at + 1);
  }
  std::string out = std::string(url.substr(0, authority_start)) + std::string(authority);
  if (end_of_authority != std::string_view::npos && rest.size() > end_of_authority + 1) {
    out += "/\u2026";
  }
  return out;
}

std::string format_rfc3339_utc(std::int64_t unix_ms) {
  std::int64_t secs = unix_ms / 1000;
  std::int64_t ms = unix_ms % 1000;
  if (ms < 0) {
    ms += 1000;
    --secs;
  }
  const auto t = static_cast<std::time_t>(secs);
  std::tm tmv{};
  if (gmtime_r(&t, &tmv) == nullptr) {
    return "";
  }
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tmv.tm_year + 1900, tmv.tm_mon + 1, tmv.tm_mday,
                     tmv.tm_hour, tmv.tm_min, tmv.tm_sec, ms);
}

Result<WebhookRequest> build_webhook(const NotifyTarget& target, const Notification& n) {
  const std::string source = target_source(target);
  auto split = split_webhook_url(target.url, source);
  if (!split) {
    return unexpected(std::move(split).error());
  }
  WebhookRequest req = std::move(*split);
  switch (target.kind) {
    case NotifyKind::generic: {
      json doc = {{"source", "memwarden"},
                  {"schema", 1},
                  {"event", n.event},
                  {"severity", to_string(n.severity)},
                  {"subject", n.subject},
                  {"what", n.what},
                  {"title", n.title},
                  {"message", n.message},
                  {"at", n.at_ms > 0 ? json(format_rfc3339_utc(n.at_ms)) : json(nullptr)},
                  {"host", n.host},
                  {"details", n.details.is_null() ? json::object() : n.details}};
      req.body = dump(doc);
      break;
    }
    case NotifyKind::ntfy: {
      // JSON publishing goes to the server root; the topic is the URL's last path segment.
      std::string_view path = req.path;
      std::string_view query;
      if (const auto q = path.find('?'); q != std::string_view::npos) {
        query = path.substr(q);
        path = path.substr(0, q);
      }
      while (path.size() > 1 && path.back() == '/') {
        path.remove_suffix(1);
      }
      const auto slash = path.rfind('/');
      const std::string_view topic = path.substr(slash + 1);
      if (topic.empty()) {
        return fail(source, fmt::format("'{}': the URL needs the topic as its last path segment, e.g. "
                                        "https://ntfy.sh/my-alerts",
                                        redacted_url(target.url)));
      }
      if (!valid_ntfy_topic(topic)) {
        return fail(source,
                    "the topic (the URL's last path segment) may hold only letters, digits, - and _ "
                    "(at most 64)");
      }
      json doc = {{"topic", std::string(topic)},
                  {"title", n.title},
                  {"message", n.message},
                  {"priority", ntfy_priority(n.severity)},
                  {"tags", json::array({to_string(n.severity)})}};
      req.path = std::string(path.substr(0, slash + 1)) + std::string(query);
      req.body = dump(doc);
      break;
    }
    case NotifyKind::discord: {
      const std::string content =
          cut_code_points(fmt::format("**{}**\n{}", n.title, n.message), k_discord_content_limit);
      json doc = {{"username", "memwarden"}, {"content", content}, {"allowed_mentions", {{"parse", json::array()}}}};
      req.body = dump(doc);
      break;
    }
    case NotifyKind::slack: {
      json doc = {{"text", fmt::format("*{}*\n{}", slack_escape(n.title), slack_escape(n.message))}};
      req.body = dump(doc);
      break;
    }
  }
  return req;
}

Expected<void, Error> send_notification(const NotifyTarget& target, const Notification& n,
                                        std::chrono::milliseconds timeout) {
  const std::string source = target_source(target);
  const auto req = build_webhook(target, n);
  if (!req) {
    return unexpected(req.error());
  }
  auto endpoint = parse_endpoint(req->endpoint, source);
  if (!endpoint) {
    return unexpected(endpoint.error());
  }
  HttpClient client(std::move(*endpoint), timeout);
  const auto response = client.post(req->path, req->body);
  if (!response) {
    // The client's source holds the path, which may be a secret: name the server only.
    return fail(source, fmt::format("{}: {}", req->endpoint, response.error().message), response.error().code);
  }
  if (response->status < 200 || response->status > 299) {
    const std::string excerpt = body_excerpt(response->body);
    return fail(source, excerpt.empty() ? fmt::format("HTTP {}", response->status)
                                        : fmt::format("HTTP {}: {}", response->status, excerpt));
  }
  return {};
}

}  // namespace mw::adapters
