// `memwarden history`: the action journal, and the sample history that `memwarden serve` keeps.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "adapters/journal.hpp"
#include "adapters/sample_store.hpp"

namespace mw::cli {

[[nodiscard]] std::string render_history(const std::vector<adapters::JournalRecord>& records);
[[nodiscard]] nlohmann::json history_to_json(const std::vector<adapters::JournalRecord>& records);

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
// The schema memwarden.samples/1 (docs/serve.md); unknown values are null.
[[nodiscard]] nlohmann::json samples_to_json(const SampleWindow& window);
// A table: per-minute rows, then the raw rows of the last minutes; missing values print as "-".
[[nodiscard]] std::string render_samples(const SampleWindow& window, std::size_t raw_rows = 20);

}  // namespace mw::cli
