// Inside the engine: one journal record kept open while a command changes something (deploy, optimize).
// Nothing is changed unless the record could be begun (problem empty).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "adapters/journal.hpp"

namespace mw::engine {

[[nodiscard]] inline std::int64_t wall_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct JournalHandle {
  std::optional<adapters::Journal> journal;
  std::optional<std::int64_t> id;
  std::string problem;

  void step(const std::string& name, const std::string& detail, bool ok) {
    if (journal && id) {
      (void)journal->add_step(*id, adapters::JournalStep{name, detail, wall_now_ms(), 0, ok});
    }
  }
  void finish(ActionOutcome outcome, const std::string& message,
              std::optional<std::uint64_t> after_bytes = std::nullopt) {
    if (journal && id) {
      (void)journal->finish(*id, outcome, message, after_bytes, wall_now_ms());
    }
  }
};

// Opens the journal in `state_dir` and begins `record` (started now). An empty state_dir journals nothing.
[[nodiscard]] inline JournalHandle open_journal(const std::string& state_dir, adapters::JournalRecord record) {
  JournalHandle h;
  if (state_dir.empty()) {
    return h;
  }
  auto j = adapters::Journal::open(state_dir);
  if (!j) {
    h.problem = j.error().line();
    return h;
  }
  h.journal = std::move(*j);
  record.started_at_ms = wall_now_ms();
  auto id = h.journal->begin(record);
  if (!id) {
    h.problem = id.error().line();
    return h;
  }
  h.id = *id;
  return h;
}

}  // namespace mw::engine
