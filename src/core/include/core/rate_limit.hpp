// A rate limiter for notifications: at most one per key (e.g. "ollama-gpu/idle-bloat")
// per min_interval, and at most max_per_hour in any rolling hour over all keys.
// Pure: the caller passes the time (a steady clock's milliseconds is best; a wall
// clock that jumps back only forgets the history after the jump point).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <string_view>

namespace mw {

class RateLimiter {
 public:
  static constexpr std::int64_t k_hour_ms = 3'600'000;

  // min_interval_ms <= 0: no per-key limit. max_per_hour == 0: no hourly cap.
  RateLimiter(std::int64_t min_interval_ms, std::size_t max_per_hour)
      : m_min_interval_ms(min_interval_ms), m_max_per_hour(max_per_hour) {}

  // True when a notification for `key` may go out now; it then counts against both limits.
  // False (and suppressed() grows) otherwise; a suppressed call does not restart the key's interval.
  [[nodiscard]] bool allow(std::string_view key, std::int64_t now_ms) {
    forget_before(now_ms);
    const auto last = m_last_by_key.find(key);
    if (last != m_last_by_key.end() && m_min_interval_ms > 0 && now_ms - last->second < m_min_interval_ms) {
      ++m_suppressed;
      return false;
    }
    if (m_max_per_hour > 0 && m_sent.size() >= m_max_per_hour) {
      ++m_suppressed;
      return false;
    }
    m_sent.push_back(now_ms);
    if (last != m_last_by_key.end()) {
      last->second = now_ms;
    } else {
      m_last_by_key.emplace(std::string(key), now_ms);
    }
    return true;
  }

  // How many allow() calls said no since construction.
  [[nodiscard]] std::size_t suppressed() const { return m_suppressed; }
  // Notifications counted in the rolling hour ending at the last allow() call.
  [[nodiscard]] std::size_t sent_last_hour() const { return m_sent.size(); }

 private:
  // Drops what no longer limits anything at now_ms: sends older than an hour, keys whose
  // interval is over, and anything stamped after now_ms (the clock went back).
  void forget_before(std::int64_t now_ms) {
    while (!m_sent.empty() && now_ms - m_sent.front() >= k_hour_ms) {
      m_sent.pop_front();
    }
    while (!m_sent.empty() && m_sent.back() > now_ms) {
      m_sent.pop_back();
    }
    for (auto it = m_last_by_key.begin(); it != m_last_by_key.end();) {
      if (it->second > now_ms || now_ms - it->second >= m_min_interval_ms) {
        it = m_last_by_key.erase(it);
      } else {
        ++it;
      }
    }
  }

  std::int64_t m_min_interval_ms;
  std::size_t m_max_per_hour;
  std::map<std::string, std::int64_t, std::less<>> m_last_by_key;
  std::deque<std::int64_t> m_sent;  // times of allowed notifications, oldest first
  std::size_t m_suppressed = 0;
};

}  // namespace mw
