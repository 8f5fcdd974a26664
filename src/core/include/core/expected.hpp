// A small expected<T, E> for C++20 (std::expected is C++23 and g++ 12 lacks it).
// Holds either a value or an error; accessing the wrong one is a programming
// error and aborts rather than invoking undefined behaviour.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <type_traits>
#include <utility>
#include <variant>

namespace mw {

template <class E>
struct Unexpected {
  E error;
};

template <class E>
[[nodiscard]] Unexpected<std::decay_t<E>> unexpected(E&& error) {
  return Unexpected<std::decay_t<E>>{std::forward<E>(error)};
}

template <class T, class E>
class [[nodiscard]] Expected {
 public:
  using value_type = T;
  using error_type = E;

  Expected(T value) : m_state(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  template <class G>
  Expected(Unexpected<G> error)  // NOLINT: implicit by design
      : m_state(std::in_place_index<1>, E(std::move(error.error))) {}

  [[nodiscard]] bool has_value() const noexcept { return m_state.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  [[nodiscard]] T& value() & { return std::get<0>(checked(0)); }
  [[nodiscard]] const T& value() const& { return std::get<0>(checked(0)); }
  [[nodiscard]] T&& value() && { return std::get<0>(std::move(checked(0))); }
  [[nodiscard]] const E& error() const& { return std::get<1>(checked(1)); }
  [[nodiscard]] E&& error() && { return std::get<1>(std::move(checked(1))); }

  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  template <class U>
  [[nodiscard]] T value_or(U&& fallback) const& {
    return has_value() ? std::get<0>(m_state) : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  std::variant<T, E>& checked(std::size_t index) {
    if (m_state.index() != index) {
      std::fputs("memwarden: Expected accessed in the wrong state\n", stderr);
      std::abort();
    }
    return m_state;
  }
  const std::variant<T, E>& checked(std::size_t index) const {
    return const_cast<Expected*>(this)->checked(index);  // NOLINT
  }

  std::variant<T, E> m_state;
};

// Expected<void, E>: success or an error.
template <class E>
class [[nodiscard]] Expected<void, E> {
 public:
  Expected() = default;
  template <class G>
  Expected(Unexpected<G> error) : m_error(E(std::move(error.error))), m_failed(true) {}  // NOLINT

  [[nodiscard]] bool has_value() const noexcept { return !m_failed; }
  explicit operator bool() const noexcept { return has_value(); }
  [[nodiscard]] const E& error() const& {
    if (!m_failed) {
      std::fputs("memwarden: Expected<void> has no error\n", stderr);
      std::abort();
    }
    return m_error;
  }

 private:
  E m_error{};
  bool m_failed = false;
};

}  // namespace mw
