// `memwarden history` as a command (run_history): what it prints and its exit code for a missing state
// directory (3), a directory without a journal (0), a corrupt journal or sample history (6).
#include <gtest/gtest.h>

#include <fstream>

#include "cli/history.hpp"
#include "test_support.hpp"

using namespace mw;
using namespace mw::cli;
using namespace mw::engine;
using test::TempDir;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t k_now_ms = 1'800'000'000'000;

HistoryOptions journal_options(const fs::path& dir) {
  HistoryOptions o;
  o.state_dir = dir;
  o.now_wall_ms = k_now_ms;
  return o;
}

HistoryOptions samples_options(const fs::path& dir) {
  auto o = journal_options(dir);
  o.samples_subject = "host";
  return o;
}

void write_records(const fs::path& dir, int count) {
  auto journal = adapters::Journal::open(dir);
  ASSERT_TRUE(journal) << journal.error().line();
  for (int i = 0; i < count; ++i) {
    adapters::JournalRecord r;
    r.started_at_ms = k_now_ms - 60'000 + i;
    r.server = "ollama";
    r.container_id = "c0ffee";
    r.kind = "restart";
    r.reason = "growth";
    r.evidence_json = "{}";
    ASSERT_TRUE(journal->begin(r));
  }
}

void write_garbage(const fs::path& file) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << std::string(8192, '\x5a');
}

}  // namespace

TEST(HistoryCommand, MissingStateDirectoryIsExit3NamingIt) {
  TempDir tmp;
  const auto dir = tmp.path() / "nowhere";
  for (const auto& options : {journal_options(dir), samples_options(dir)}) {
    const auto out = run_history(options);
    EXPECT_EQ(out.exit, HistoryExit::missing);
    EXPECT_EQ(out.out, "");
    EXPECT_EQ(out.err, dir.string() +
                           ": no such state directory (memwarden fix and memwarden serve create it; --state-dir "
                           "names another)");
    EXPECT_FALSE(fs::exists(dir)) << "a reader must not create the state directory";
  }
}

TEST(HistoryCommand, StateDirectoryWithoutAJournalHasNoActions) {
  TempDir tmp;
  auto out = run_history(journal_options(tmp.path()));
  EXPECT_EQ(out.exit, HistoryExit::ok);
  EXPECT_EQ(out.out, "no actions recorded (no journal in " + tmp.path().string() + ")\n");
  EXPECT_EQ(out.err, "");
  auto json_options = journal_options(tmp.path());
  json_options.format = HistoryFormat::json;
  out = run_history(json_options);
  EXPECT_EQ(out.exit, HistoryExit::ok);
  EXPECT_NE(out.out.find("\"records\": []"), std::string::npos) << out.out;
  EXPECT_FALSE(fs::exists(tmp.path() / "memwarden.db"));
}

TEST(HistoryCommand, CorruptJournalIsExit6) {
  TempDir tmp;
  write_garbage(tmp.path() / "memwarden.db");
  const auto out = run_history(journal_options(tmp.path()));
  EXPECT_EQ(out.exit, HistoryExit::unusable);
  EXPECT_EQ(out.out, "");
  EXPECT_EQ(out.err.find((tmp.path() / "memwarden.db").string() + ": the journal database is corrupt"), 0U) << out.err;
  EXPECT_EQ(out.err.find('\n'), std::string::npos);
}

TEST(HistoryCommand, StateDirectoryThatIsAFileIsExit6) {
  TempDir tmp;
  tmp.write("state", "a file");
  const auto out = run_history(journal_options(tmp.path() / "state"));
  EXPECT_EQ(out.exit, HistoryExit::unusable);
  EXPECT_EQ(out.err, (tmp.path() / "state").string() + ": is not a directory");
}

TEST(HistoryCommand, LimitAndServer) {
  TempDir tmp;
  write_records(tmp.path(), 12);
  auto options = journal_options(tmp.path());
  options.format = HistoryFormat::json;
  options.limit = 10;
  auto out = run_history(options);
  ASSERT_EQ(out.exit, HistoryExit::ok) << out.err;
  EXPECT_EQ(nlohmann::json::parse(out.out)["records"].size(), 10U);
  options.limit = 0;  // all
  out = run_history(options);
  EXPECT_EQ(nlohmann::json::parse(out.out)["records"].size(), 12U);
  options.server = "another";
  out = run_history(options);
  EXPECT_EQ(nlohmann::json::parse(out.out)["records"].size(), 0U);
}

TEST(HistoryCommand, SamplesWithoutASampleHistoryIsExit3) {
  TempDir tmp;
  const auto out = run_history(samples_options(tmp.path()));
  EXPECT_EQ(out.exit, HistoryExit::missing);
  EXPECT_EQ(out.err, (tmp.path() / "samples.db").string() + ": no sample history (memwarden serve keeps it)");
  EXPECT_FALSE(fs::exists(tmp.path() / "samples.db"));
}

TEST(HistoryCommand, CorruptSampleHistoryIsExit6) {
  TempDir tmp;
  write_garbage(tmp.path() / "samples.db");
  const auto out = run_history(samples_options(tmp.path()));
  EXPECT_EQ(out.exit, HistoryExit::unusable);
  EXPECT_EQ(out.err.find((tmp.path() / "samples.db").string() + ": "), 0U) << out.err;
  EXPECT_NE(out.err.find("corrupt"), std::string::npos) << out.err;
}

TEST(HistoryCommand, SamplesOfAStoreThatExists) {
  TempDir tmp;
  {
    auto store = adapters::SampleStore::open(tmp.path(), {});
    ASSERT_TRUE(store) << store.error().line();
    adapters::StoredSample s;
    s.subject = "host";
    s.at_ms = k_now_ms - 1000;
    s.mem_available = 1ULL << 30;
    ASSERT_TRUE(store->append({s}));
  }
  auto options = samples_options(tmp.path());
  options.format = HistoryFormat::json;
  options.since = std::chrono::hours(24);
  const auto out = run_history(options);
  ASSERT_EQ(out.exit, HistoryExit::ok) << out.err;
  const auto doc = nlohmann::json::parse(out.out);
  EXPECT_EQ(doc["since_ms"], k_now_ms - 86'400'000);
  EXPECT_EQ(doc["raw"].size(), 1U);
}
