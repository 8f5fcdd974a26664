#include "core/container.hpp"

#include <algorithm>

namespace mw {

bool DeviceRequest::requests_gpu() const {
  if (driver == "nvidia") {
    return true;
  }
  return std::any_of(capabilities.begin(), capabilities.end(),
                     [](const auto& set) { return std::find(set.begin(), set.end(), "gpu") != set.end(); });
}

}  // namespace mw
