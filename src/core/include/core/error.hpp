// The error carried through every layer: which source failed and why.
// Printed as one line: "<source>: <message>".
#pragma once

#include <string>

#include "core/expected.hpp"

namespace mw {

struct Error {
  std::string source;   // a file path, a URL, "docker", "nvml", ...
  std::string message;  // what went wrong, in plain words
  int code = 0;         // errno where a system call failed (ENOENT tells "absent" from "broken")

  // One line, always: control characters from outside (a label, a server's answer) are escaped.
  [[nodiscard]] std::string line() const;
};

template <class T>
using Result = Expected<T, Error>;

[[nodiscard]] inline Unexpected<Error> fail(std::string source, std::string message, int code = 0) {
  return Unexpected<Error>{Error{std::move(source), std::move(message), code}};
}

}  // namespace mw
