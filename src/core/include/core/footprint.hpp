// How much memory a kept value takes, approximately and from above: its own size plus what it owns on the
// heap (a string past its inline buffer, a vector's capacity, a map's nodes), each heap block rounded up to
// 16 bytes with 16 bytes of allocator overhead. docs/serve.md's memory bound is written in these terms,
// and unit tests hold the bounded values to it.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

namespace mw::owned {

inline constexpr std::size_t k_block_overhead = 16;

[[nodiscard]] constexpr std::size_t heap_block(std::size_t bytes) {
  return (bytes + 15) / 16 * 16 + k_block_overhead;
}

// The heap a string owns (none while it fits its inline buffer).
[[nodiscard]] inline std::size_t heap(const std::string& text) {
  return text.capacity() > std::string().capacity() ? heap_block(text.capacity() + 1) : 0;
}

[[nodiscard]] inline std::size_t heap(const std::vector<std::string>& list) {
  std::size_t n = list.capacity() > 0 ? heap_block(list.capacity() * sizeof(std::string)) : 0;
  for (const auto& s : list) {
    n += heap(s);
  }
  return n;
}

[[nodiscard]] inline std::size_t heap(const std::map<std::string, std::string>& map) {
  constexpr std::size_t k_node = 32 + sizeof(std::pair<const std::string, std::string>);  // links and colour
  std::size_t n = 0;
  for (const auto& [key, value] : map) {
    n += heap_block(k_node) + heap(key) + heap(value);
  }
  return n;
}

}  // namespace mw::owned
