// A fixed-capacity ring of samples, oldest first; pushing onto a full ring drops the oldest.
#pragma once

#include <cstddef>
#include <vector>

namespace mw {

template <class T>
class Ring {
 public:
  explicit Ring(std::size_t capacity) : m_items(capacity == 0 ? 1 : capacity) {}

  void push(T item) {
    m_items[(m_start + m_size) % m_items.size()] = std::move(item);
    if (m_size < m_items.size()) {
      ++m_size;
    } else {
      m_start = (m_start + 1) % m_items.size();
    }
  }

  void clear() {
    m_start = 0;
    m_size = 0;
  }

  [[nodiscard]] std::size_t size() const { return m_size; }
  [[nodiscard]] std::size_t capacity() const { return m_items.size(); }
  [[nodiscard]] bool empty() const { return m_size == 0; }
  // 0 is the oldest sample, size() - 1 the newest.
  [[nodiscard]] const T& operator[](std::size_t i) const { return m_items[(m_start + i) % m_items.size()]; }
  [[nodiscard]] const T& back() const { return (*this)[m_size - 1]; }
  [[nodiscard]] const T& front() const { return (*this)[0]; }

 private:
  std::vector<T> m_items;
  std::size_t m_start = 0;
  std::size_t m_size = 0;
};

}  // namespace mw
