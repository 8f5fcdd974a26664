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

}  // namespace mw::engine
