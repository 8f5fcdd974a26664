#include "core/model_test.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace mw {

EstimateCheck check_estimate(std::string what, std::uint64_t planned, std::optional<std::uint64_t> measured,
                             CheckRole role, std::uint64_t fills_later, EstimateTolerance tolerance) {
  EstimateCheck c;
  c.what = std::move(what);
  c.role = role;
  c.planned = planned;
  c.measured = measured;
  const auto slack =
      std::max(static_cast<std::uint64_t>(static_cast<double>(planned) * tolerance.percent / 100.0), tolerance.bytes);
  const auto below = std::min(planned, std::min(fills_later, planned) + slack);
  c.low = planned - below;
  c.high = planned + slack;
  if (!measured) {
    return c;
  }
  if (planned > 0) {
    c.error_percent =
        (static_cast<double>(*measured) - static_cast<double>(planned)) / static_cast<double>(planned) * 100.0;
  }
  c.within = *measured >= c.low && *measured <= c.high;
  return c;
}

const char* to_string(UnloadVerdict verdict) {
  switch (verdict) {
    case UnloadVerdict::unknown:
      return "unknown";
    case UnloadVerdict::returned:
      return "returned";
    case UnloadVerdict::kept:
      return "kept";
  }
  return "unknown";
}

UnloadCheck check_unload(std::optional<std::uint64_t> before, std::optional<std::uint64_t> loaded,
                         std::optional<std::uint64_t> after, UnloadTolerance tolerance) {
  UnloadCheck c;
  if (!before || !after) {
    return c;
  }
  c.kept = *after > *before ? *after - *before : 0;
  const std::uint64_t added = loaded && *loaded > *before ? *loaded - *before : 0;
  const auto share = static_cast<std::uint64_t>(static_cast<double>(added) * tolerance.percent / 100.0);
  c.verdict = *c.kept <= std::max(tolerance.bytes, share) ? UnloadVerdict::returned : UnloadVerdict::kept;
  return c;
}

std::string processor_split(std::uint64_t size, std::uint64_t size_vram) {
  if (size == 0 || size_vram == 0) {
    return "100% CPU";
  }
  if (size_vram >= size) {
    return "100% GPU";
  }
  const auto gpu = static_cast<int>(std::lround(static_cast<double>(size_vram) / static_cast<double>(size) * 100.0));
  return fmt::format("{}%/{}% CPU/GPU", 100 - gpu, gpu);
}

}  // namespace mw
