// `memwarden history`: the action journal, and the sample history that `memwarden serve` keeps.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "adapters/journal.hpp"
#include "adapters/sample_store.hpp"
#include "core/clock.hpp"
#include "engine/history.hpp"

namespace mw::cli {

// Documented exit codes of `memwarden history` (docs/cli.md), the same numbers as `fix` where they mean
// the same thing.
enum class HistoryExit : int {
  ok = 0,
  internal = 1,
  usage = 2,
  missing = 3,   // the state directory, or with --samples the sample history, is not there
  unusable = 6,  // the journal (or samples.db) is there and cannot be read: corrupt, locked, unreadable
};

enum class HistoryFormat { table, json };

struct HistoryOptions {
  std::filesystem::path state_dir;
  HistoryFormat format = HistoryFormat::table;
  // The journal:
  std::size_t limit = 50;  // 0: all
  std::optional<std::string> server;
  // Or, when set, the sample history of this subject:
  std::optional<std::string> samples_subject;
  Duration since{3'600'000};
  std::int64_t now_wall_ms = 0;
};

// What the command prints: `out` on stdout, `err` (one line, or empty) on stderr, and its exit code.
struct HistoryOutput {
  HistoryExit exit = HistoryExit::ok;
  std::string out;
  std::string err;
};

// Reads the journal or the sample history and never creates anything: a state directory that is not there
// is `missing`; an existing directory without a journal has no actions recorded (exit 0).
[[nodiscard]] HistoryOutput run_history(const HistoryOptions& options);

[[nodiscard]] std::string render_history(const std::vector<adapters::JournalRecord>& records);
[[nodiscard]] nlohmann::json history_to_json(const std::vector<adapters::JournalRecord>& records);

// The schema memwarden.samples/1 (docs/serve.md); unknown values are null.
[[nodiscard]] nlohmann::json samples_to_json(const engine::SampleWindow& window);
// A table: per-minute rows, then the raw rows of the last minutes; missing values print as "-".
[[nodiscard]] std::string render_samples(const engine::SampleWindow& window, std::size_t raw_rows = 20);

}  // namespace mw::cli
