#include "cli/history.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <system_error>

#include "core/bytes.hpp"

namespace mw::cli {

using engine::SampleWindow;
using nlohmann::json;

namespace {

// "2026-11-27 06:56:29"
std::string utc(std::int64_t unix_ms) {
  const auto secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &tm);
  return text;
}

std::string opt_bytes(const std::optional<std::uint64_t>& v) {
  return v ? format_bytes(*v) : "-";
}

template <class T>
json opt(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

}  // namespace

std::string render_history(const std::vector<adapters::JournalRecord>& records) {
  if (records.empty()) {
    return "no actions recorded\n";
  }
  std::string out = fmt::format("{:>5}  {:<20} {:<20} {:<8} {:<12} {}\n", "#", "STARTED (UTC)", "SERVER", "ACTION",
                                "OUTCOME", "RESULT");
  for (const auto& r : records) {
    const auto when = utc(r.started_at_ms);
    const std::string outcome = r.incomplete() ? "INCOMPLETE" : to_string(r.outcome);
    out += fmt::format("{:>5}  {:<20} {:<20} {:<8} {:<12} {}\n", r.id, when, r.server.substr(0, 20), r.kind, outcome,
                       r.incomplete() ? "started, never finished (memwarden stopped mid-action?)" : r.message);
  }
  return out;
}

json history_to_json(const std::vector<adapters::JournalRecord>& records) {
  json out = json::array();
  for (const auto& r : records) {
    json steps = json::array();
    for (const auto& s : r.steps) {
      steps.push_back({{"name", s.name},
                       {"detail", s.detail},
                       {"started_ms", s.started_ms},
                       {"duration_ms", s.duration_ms},
                       {"ok", s.ok}});
    }
    json evidence = json::parse(r.evidence_json, nullptr, false);
    out.push_back({{"id", r.id},
                   {"started_at_ms", r.started_at_ms},
                   {"ended_at_ms", r.ended_at_ms ? json(*r.ended_at_ms) : json(nullptr)},
                   {"server", r.server},
                   {"container_id", r.container_id},
                   {"kind", r.kind},
                   {"reason", r.reason},
                   {"evidence", evidence.is_discarded() ? json(nullptr) : evidence},
                   {"steps", steps},
                   {"outcome", to_string(r.outcome)},
                   {"incomplete", r.incomplete()},
                   {"message", r.message},
                   {"before_bytes", r.before_bytes ? json(*r.before_bytes) : json(nullptr)},
                   {"after_bytes", r.after_bytes ? json(*r.after_bytes) : json(nullptr)},
                   {"writer_pid", r.pid_of_writer}});
  }
  return {{"schema", "memwarden.history/1"}, {"records", out}};
}

json samples_to_json(const SampleWindow& window) {
  json raw = json::array();
  for (const auto& r : window.raw) {
    raw.push_back({{"at_ms", r.at_ms},
                   {"usage_bytes", opt(r.usage)},
                   {"working_set_bytes", opt(r.working_set)},
                   {"anon_bytes", opt(r.anon)},
                   {"file_bytes", opt(r.file)},
                   {"swap_bytes", opt(r.swap)},
                   {"limit_bytes", opt(r.limit)},
                   {"mem_available_bytes", opt(r.mem_available)},
                   {"psi_some_avg10", opt(r.psi_some_avg10)},
                   {"psi_full_avg10", opt(r.psi_full_avg10)},
                   {"models_bytes", opt(r.models_bytes)},
                   {"models_vram_bytes", opt(r.models_vram_bytes)},
                   {"models_loaded", opt(r.models_loaded)}});
  }
  json aggregates = json::array();
  for (const auto& a : window.aggregates) {
    aggregates.push_back({{"minute_ms", a.minute_ms},
                          {"count", a.count},
                          {"anon_min_bytes", opt(a.anon_min)},
                          {"anon_avg_bytes", opt(a.anon_avg)},
                          {"anon_max_bytes", opt(a.anon_max)},
                          {"working_set_avg_bytes", opt(a.working_set_avg)},
                          {"working_set_max_bytes", opt(a.working_set_max)},
                          {"mem_available_min_bytes", opt(a.mem_available_min)},
                          {"psi_full_avg10_max", opt(a.psi_full_avg10_max)}});
  }
  return {{"schema", "memwarden.samples/1"},
          {"subject", window.subject},
          {"since_ms", window.since_ms},
          {"until_ms", window.until_ms},
          {"raw", raw},
          {"aggregates", aggregates}};
}

std::string render_samples(const SampleWindow& window, std::size_t raw_rows) {
  if (window.raw.empty() && window.aggregates.empty()) {
    return fmt::format("no samples of {} between {} and {} UTC\n", window.subject, utc(window.since_ms),
                       utc(window.until_ms));
  }
  std::string out;
  if (!window.aggregates.empty()) {
    out += fmt::format("{} per minute (UTC)\n{:<17} {:>5} {:>10} {:>10} {:>10} {:>12} {:>10}\n", window.subject,
                       "MINUTE", "N", "ANON MIN", "ANON AVG", "ANON MAX", "WSET MAX", "AVAIL MIN");
    for (const auto& a : window.aggregates) {
      out += fmt::format("{:<17} {:>5} {:>10} {:>10} {:>10} {:>12} {:>10}\n", utc(a.minute_ms).substr(0, 16), a.count,
                         opt_bytes(a.anon_min), opt_bytes(a.anon_avg), opt_bytes(a.anon_max),
                         opt_bytes(a.working_set_max), opt_bytes(a.mem_available_min));
    }
  }
  if (!window.raw.empty()) {
    const auto first = window.raw.size() > raw_rows ? window.raw.size() - raw_rows : 0;
    out += fmt::format("{}{} raw, newest {} of {} (UTC)\n{:<20} {:>10} {:>10} {:>10} {:>10} {:>10} {:>7}\n",
                       out.empty() ? "" : "\n", window.subject, window.raw.size() - first, window.raw.size(), "TIME",
                       "ANON", "WSET", "CACHE", "LIMIT", "AVAIL", "MODELS");
    for (auto i = first; i < window.raw.size(); ++i) {
      const auto& r = window.raw[i];
      out += fmt::format("{:<20} {:>10} {:>10} {:>10} {:>10} {:>10} {:>7}\n", utc(r.at_ms), opt_bytes(r.anon),
                         opt_bytes(r.working_set), opt_bytes(r.file), opt_bytes(r.limit), opt_bytes(r.mem_available),
                         r.models_loaded ? std::to_string(*r.models_loaded) : "-");
    }
  }
  return out;
}

namespace {

namespace fs = std::filesystem;

HistoryOutput failed(HistoryExit exit, std::string line) {
  return HistoryOutput{exit, "", std::move(line)};
}

// Is the state directory there? nullopt when it is (a directory); else what to say and the exit code.
std::optional<HistoryOutput> check_state_dir(const fs::path& dir) {
  std::error_code ec;
  const auto status = fs::status(dir, ec);
  if (status.type() == fs::file_type::not_found) {
    return failed(HistoryExit::missing,
                  fmt::format("{}: no such state directory (memwarden fix and memwarden serve create it; "
                              "--state-dir names another)",
                              dir.string()));
  }
  if (ec) {
    return failed(HistoryExit::unusable,
                  fmt::format("{}: cannot read the state directory: {}", dir.string(), ec.message()));
  }
  if (status.type() != fs::file_type::directory) {
    return failed(HistoryExit::unusable, fmt::format("{}: is not a directory", dir.string()));
  }
  return std::nullopt;
}

// Is `file` (in a state directory that exists) there? true, false, or an error when it cannot be told.
Result<bool> file_exists(const fs::path& file) {
  std::error_code ec;
  const auto status = fs::status(file, ec);
  if (status.type() == fs::file_type::not_found) {
    return false;
  }
  if (ec) {
    return fail(file.string(), fmt::format("cannot read: {}", ec.message()), ec.value());
  }
  return true;
}

HistoryOutput run_samples(const HistoryOptions& options, const std::string& subject) {
  const auto file = adapters::StateDir(options.state_dir).samples();
  auto exists = file_exists(file);
  if (!exists) {
    return failed(HistoryExit::unusable, exists.error().line());
  }
  if (!*exists) {
    return failed(HistoryExit::missing, fmt::format("{}: no sample history (memwarden serve keeps it)", file.string()));
  }
  auto store = adapters::SampleStore::open(options.state_dir, {});
  if (!store) {
    return failed(HistoryExit::unusable, store.error().line());
  }
  auto window = engine::read_samples(*store, subject, options.now_wall_ms - options.since.count(), options.now_wall_ms);
  if (!window) {
    return failed(HistoryExit::unusable, window.error().line());
  }
  return HistoryOutput{
      HistoryExit::ok,
      options.format == HistoryFormat::json ? samples_to_json(*window).dump(2) + "\n" : render_samples(*window), ""};
}

HistoryOutput run_journal(const HistoryOptions& options) {
  const auto file = adapters::StateDir(options.state_dir).journal();
  auto exists = file_exists(file);
  if (!exists) {
    return failed(HistoryExit::unusable, exists.error().line());
  }
  if (!*exists) {
    // No fix has run with this state directory yet: nothing to show, and nothing wrong.
    return HistoryOutput{HistoryExit::ok,
                         options.format == HistoryFormat::json
                             ? history_to_json({}).dump(2) + "\n"
                             : fmt::format("no actions recorded (no journal in {})\n", options.state_dir.string()),
                         ""};
  }
  auto journal = adapters::Journal::open(options.state_dir);
  if (!journal) {
    return failed(HistoryExit::unusable, journal.error().line());
  }
  auto records = journal->list(options.limit, options.server);
  if (!records) {
    return failed(HistoryExit::unusable, records.error().line());
  }
  return HistoryOutput{
      HistoryExit::ok,
      options.format == HistoryFormat::json ? history_to_json(*records).dump(2) + "\n" : render_history(*records), ""};
}

}  // namespace

HistoryOutput run_history(const HistoryOptions& options) {
  if (auto missing = check_state_dir(options.state_dir)) {
    return std::move(*missing);
  }
  return options.samples_subject ? run_samples(options, *options.samples_subject) : run_journal(options);
}

}  // namespace mw::cli
