#include "engine/history.hpp"

#include <algorithm>

namespace mw::engine {

Result<SampleWindow> read_samples(adapters::SampleStore& store, const std::string& subject, std::int64_t since_ms,
                                  std::int64_t until_ms) {
  SampleWindow w{subject, since_ms, until_ms, {}, {}};
  const auto raw_since = std::max(since_ms, until_ms - 3'600'000);
  auto raw = store.raw(subject, raw_since, until_ms);
  if (!raw) {
    return unexpected(raw.error());
  }
  auto aggregates = store.aggregates(subject, since_ms, until_ms);
  if (!aggregates) {
    return unexpected(aggregates.error());
  }
  w.raw = std::move(raw).value();
  w.aggregates = std::move(aggregates).value();
  return w;
}

}  // namespace mw::engine
