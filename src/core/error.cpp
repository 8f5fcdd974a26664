#include "core/error.hpp"

#include "core/text.hpp"

namespace mw {

std::string Error::line() const {
  return escape_control(source.empty() ? message : source + ": " + message);
}

}  // namespace mw
