// Webhook notifications about findings and actions of the daemon: memwarden's own
// JSON (generic), ntfy's JSON publishing, Discord and Slack-style incoming webhooks
// (Mattermost and Rocket.Chat accept the Slack form). Building a request is pure;
// sending is one HTTP POST. Rate limiting is the caller's (core/rate_limit.hpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/diagnosis.hpp"
#include "core/error.hpp"

namespace mw::adapters {

enum class NotifyKind { generic, ntfy, discord, slack };

// "generic", "ntfy", "discord", "slack"; anything else is an error naming `source`.
[[nodiscard]] Result<NotifyKind> parse_notify_kind(std::string_view text, std::string_view source);
[[nodiscard]] const char* to_string(NotifyKind kind);

struct Notification {
  std::string event;  // "finding", "resolved", "action", "test"
  Severity severity = Severity::warning;
  std::string subject;                                // a server's name, or "host"
  std::string what;                                   // the detector ("idle-bloat") or the action kind ("restart")
  std::string title;                                  // short: "ollama-gpu: idle bloat (critical)"
  std::string message;                                // one or two sentences with the numbers
  std::int64_t at_ms = 0;                             // wall clock, unix ms
  std::string host;                                   // the hostname of the machine memwarden runs on
  nlohmann::json details = nlohmann::json::object();  // evidence, or the action's outcome
};

struct NotifyTarget {
  std::string name;  // for messages: "ops"
  NotifyKind kind = NotifyKind::generic;
  std::string url;  // http(s)://host[:port][/path][?query]
};

// One POST: `endpoint` is "scheme://host[:port]" (for parse_endpoint), `path` starts with '/'
// and keeps the query.
struct WebhookRequest {
  std::string endpoint;
  std::string path;
  std::string body;
};

// Splits an http:// or https:// URL into endpoint and path (+ query); a fragment is dropped.
// Rejects other schemes, a missing host, user info and spaces. Errors name `source`.
[[nodiscard]] Result<WebhookRequest> split_webhook_url(std::string_view url, std::string_view source);

// The URL without its path and query, for logs and the API: webhook URLs carry secrets
// in the path (Discord, Slack): "https://discord.com/…"; user info is dropped too.
[[nodiscard]] std::string redacted_url(std::string_view url);

// Where and what to POST for this target (pure). Errors name the target: "notify 'ops' (ntfy)".
//   generic: {"source":"memwarden","schema":1,"event","severity","subject","what","title","message",
//             "at" (RFC 3339 UTC, ms),"host","details"} to the URL as given;
//   ntfy:    {"topic" (the URL's last path segment),"title","message","priority" (critical 5,
//             warning 4, info 3),"tags":[severity]} to the server root (the URL without the topic);
//   discord: {"username":"memwarden","content":"**title**\nmessage","allowed_mentions":{"parse":[]}},
//             content cut to 2000 characters;
//   slack:   {"text":"*title*\nmessage"} with &, <, > escaped.
[[nodiscard]] Result<WebhookRequest> build_webhook(const NotifyTarget& target, const Notification& n);

// Builds and POSTs; a transport failure or a status outside 2xx is an error naming the target
// ("notify 'ops' (ntfy): HTTP 403 ..."). Errors never show the URL's path (it may hold a secret).
[[nodiscard]] Expected<void, Error> send_notification(const NotifyTarget& target, const Notification& n,
                                                      std::chrono::milliseconds timeout);

// "2026-11-27T06:58:40.123Z"
[[nodiscard]] std::string format_rfc3339_utc(std::int64_t unix_ms);

inline constexpr std::size_t k_discord_content_limit = 2000;  // characters (code points)

}  // namespace mw::adapters
