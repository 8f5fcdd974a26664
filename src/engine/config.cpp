#include "engine/config.hpp"

namespace mw::engine {

const char* to_string(AutoFix mode) {
  switch (mode) {
    case AutoFix::off:
      return "off";
    case AutoFix::dry_run:
      return "dry-run";
    case AutoFix::on:
      return "on";
  }
  return "on";
}

const char* to_string(OptimizeAuto mode) {
  switch (mode) {
    case OptimizeAuto::off:
      return "off";
    case OptimizeAuto::suggest:
      return "suggest";
  }
  return "suggest";
}

std::vector<Profile> configured_profiles(const ServeConfig& config) {
  return merge_profiles(builtin_profiles(), config.profiles);
}

}  // namespace mw::engine
