// The sample history that `memwarden serve` keeps (adapters::SampleStore): what a round becomes as rows,
// what a stored row is as a sample again, and windows of it read back.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "adapters/sample_store.hpp"
#include "core/error.hpp"

namespace mw::engine {

// Stored samples of one subject (a server, a container or "host") over a window.
struct SampleWindow {
  std::string subject;
  std::int64_t since_ms = 0;
  std::int64_t until_ms = 0;
  std::vector<adapters::StoredSample> raw;            // newest hour at most
  std::vector<adapters::AggregateSample> aggregates;  // 1-minute rows
};

// Reads a window: raw rows for its last hour at most (they are stored in time order, so a raw read costs
// the whole window over every subject), aggregates for all of it.
[[nodiscard]] Result<SampleWindow> read_samples(adapters::SampleStore& store, const std::string& subject,
                                                std::int64_t since_ms, std::int64_t until_ms);
}  // namespace mw::engine
