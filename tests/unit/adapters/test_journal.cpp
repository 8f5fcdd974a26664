#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>

#include "adapters/journal.hpp"
#include "raw_db.hpp"
#include "test_support.hpp"

using namespace mw;
using namespace mw::adapters;
using mw::test::TempDir;

namespace {

namespace fs = std::filesystem;

JournalRecord sample(std::string server, std::int64_t started_at_ms, std::string kind = "restart") {
  JournalRecord r;
  r.started_at_ms = started_at_ms;
  r.server = std::move(server);
  r.container_id = "c0ffee";
  r.kind = std::move(kind);
  r.reason = "vram_leak: VRAM grew 2.1 GiB in 10 min";
  r.evidence_json = R"({"vram_bytes":[1,2,3]})";
  r.before_bytes = 8'000'000'000ULL;
  return r;
}

Journal open_ok(const fs::path& dir) {
  auto journal = Journal::open(dir);
  if (!journal) {
    ADD_FAILURE() << journal.error().line();
    std::abort();
  }
  return std::move(journal).value();
}

using test::RawDb;

void write_file(const fs::path& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

void overwrite_at(const fs::path& path, std::streamoff offset, const std::string& content) {
  std::fstream out(path, std::ios::binary | std::ios::in | std::ios::out);
  out.seekp(offset);
  out << content;
}

}  // namespace

TEST(JournalOutcome, NamesRoundTrip) {
  for (const auto o : {ActionOutcome::in_progress, ActionOutcome::succeeded, ActionOutcome::failed,
                       ActionOutcome::dry_run, ActionOutcome::refused, ActionOutcome::interrupted}) {
    EXPECT_EQ(parse_action_outcome(to_string(o)), o);
  }
  EXPECT_FALSE(parse_action_outcome("done").has_value());
  EXPECT_FALSE(parse_action_outcome("").has_value());
}

TEST(Journal, OpenCreatesPrivateStateDirAndWalDatabase) {
  TempDir tmp;
  const auto dir = tmp.path() / "var" / "lib" / "memwarden";
  {
    auto journal = open_ok(dir);
    EXPECT_EQ(journal.path(), dir / "memwarden.db");
  }
  struct stat st {};
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  RawDb raw(dir / "memwarden.db");
  EXPECT_EQ(raw.integer("PRAGMA user_version"), Journal::k_schema_version);
  EXPECT_EQ(raw.integer("SELECT count(*) FROM actions"), 0);
  // Opening again keeps what is there.
  auto again = Journal::open(dir);
  ASSERT_TRUE(again) << again.error().line();
}

TEST(Journal, RoundTripsEveryField) {
  TempDir tmp;
  auto journal = open_ok(tmp.path());
  auto record = sample("ollama-gpu0", 1'700'000'000'000);
  record.steps.push_back(JournalStep{"drain", "no requests in flight", 1'700'000'000'010, 5, true});
  record.message = "starting";
  record.outcome = ActionOutcome::succeeded;  // ignored: begin writes in_progress
  record.pid_of_writer = 1;                   // ignored: the writer is this process
  auto id = journal.begin(record);
  ASSERT_TRUE(id) << id.error().line();
  EXPECT_GT(*id, 0);

  {
    auto listed = journal.list(10);
    ASSERT_TRUE(listed) << listed.error().line();
    ASSERT_EQ(listed->size(), 1u);
    const auto& r = listed->front();
    EXPECT_EQ(r.outcome, ActionOutcome::in_progress);
    EXPECT_TRUE(r.incomplete());
    EXPECT_EQ(r.pid_of_writer, ::getpid());
  }

  ASSERT_TRUE(
      journal.add_step(*id, JournalStep{"unload", "keep_alive=0 for llama3 \xff", 1'700'000'000'020, 1200, true}));
  ASSERT_TRUE(
      journal.add_step(*id, JournalStep{"verify", "VRAM 1.2 GiB, expected < 2 GiB", 1'700'000'001'300, 40, false}));
  auto done = journal.finish(*id, ActionOutcome::failed, "verify: VRAM still high",
                             std::uint64_t{18'000'000'000'000'000'000ULL}, 1'700'000'001'400);
  ASSERT_TRUE(done) << done.error().line();

  auto listed = journal.list(10);
  ASSERT_TRUE(listed) << listed.error().line();
  ASSERT_EQ(listed->size(), 1u);
  const auto& r = listed->front();
  EXPECT_EQ(r.id, *id);
  EXPECT_EQ(r.started_at_ms, 1'700'000'000'000);
  EXPECT_EQ(r.ended_at_ms, 1'700'000'001'400);
  EXPECT_EQ(r.server, "ollama-gpu0");
  EXPECT_EQ(r.container_id, "c0ffee");
  EXPECT_EQ(r.kind, "restart");
  EXPECT_EQ(r.reason, record.reason);
  EXPECT_EQ(r.evidence_json, record.evidence_json);
  ASSERT_EQ(r.steps.size(), 3u);
  EXPECT_EQ(r.steps[0].name, "drain");
  EXPECT_EQ(r.steps[0].detail, "no requests in flight");
  EXPECT_EQ(r.steps[0].started_ms, 1'700'000'000'010);
  EXPECT_EQ(r.steps[0].duration_ms, 5);
  EXPECT_TRUE(r.steps[0].ok);
  EXPECT_EQ(r.steps[1].name, "unload");
  EXPECT_EQ(r.steps[1].detail, "keep_alive=0 for llama3 \xef\xbf\xbd");  // invalid UTF-8 replaced, not thrown
  EXPECT_EQ(r.steps[1].duration_ms, 1200);
  EXPECT_EQ(r.steps[2].name, "verify");
  EXPECT_FALSE(r.steps[2].ok);
  EXPECT_EQ(r.outcome, ActionOutcome::failed);
  EXPECT_FALSE(r.incomplete());
  EXPECT_EQ(r.message, "verify: VRAM still high");
  EXPECT_EQ(r.before_bytes, 8'000'000'000ULL);
  EXPECT_EQ(r.after_bytes, 18'000'000'000'000'000'000ULL);  // above INT64_MAX, still exact
  EXPECT_EQ(r.pid_of_writer, ::getpid());
}

TEST(Journal, FinishAndAddStepRefuseWhatCannotBe) {
  TempDir tmp;
  auto journal = open_ok(tmp.path());
  auto id = journal.begin(sample("a", 1));
  ASSERT_TRUE(id);

  auto still = journal.finish(*id, ActionOutcome::in_progress, "", std::nullopt, 2);
  ASSERT_FALSE(still);
  EXPECT_NE(still.error().message.find("final outcome"), std::string::npos) << still.error().line();

  auto missing = journal.finish(*id + 100, ActionOutcome::succeeded, "", std::nullopt, 2);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("no action #"), std::string::npos) << missing.error().line();
  EXPECT_EQ(missing.error().source, (tmp.path() / "memwarden.db").string());

  auto no_step = journal.add_step(*id + 100, JournalStep{"drain", "", 0, 0, true});
  ASSERT_FALSE(no_step);
  EXPECT_NE(no_step.error().message.find("no action #"), std::string::npos) << no_step.error().line();

  ASSERT_TRUE(journal.finish(*id, ActionOutcome::dry_run, "would restart", std::nullopt, 2));
  auto twice = journal.finish(*id, ActionOutcome::succeeded, "", std::nullopt, 3);
  ASSERT_FALSE(twice);
  EXPECT_NE(twice.error().message.find("already ended (dry_run)"), std::string::npos) << twice.error().line();

  auto listed = journal.list(0);
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().outcome, ActionOutcome::dry_run);
  EXPECT_FALSE(listed->front().after_bytes.has_value());
}

TEST(Journal, ListsNewestFirstWithLimitAndServerFilter) {
  TempDir tmp;
  auto journal = open_ok(tmp.path());
  ASSERT_TRUE(journal.begin(sample("a", 300)));
  ASSERT_TRUE(journal.begin(sample("b", 100)));
  ASSERT_TRUE(journal.begin(sample("a", 500)));
  ASSERT_TRUE(journal.begin(sample("b", 400)));
  ASSERT_TRUE(journal.begin(sample("a", 200)));

  auto all = journal.list(0);
  ASSERT_TRUE(all) << all.error().line();
  ASSERT_EQ(all->size(), 5u);
  std::vector<std::int64_t> starts;
  for (const auto& r : *all) {
    starts.push_back(r.started_at_ms);
  }
  EXPECT_EQ(starts, (std::vector<std::int64_t>{500, 400, 300, 200, 100}));

  auto two = journal.list(2);
  ASSERT_TRUE(two);
  ASSERT_EQ(two->size(), 2u);
  EXPECT_EQ((*two)[0].started_at_ms, 500);
  EXPECT_EQ((*two)[1].started_at_ms, 400);

  auto only_a = journal.list(2, "a");
  ASSERT_TRUE(only_a);
  ASSERT_EQ(only_a->size(), 2u);
  EXPECT_EQ((*only_a)[0].started_at_ms, 500);
  EXPECT_EQ((*only_a)[1].started_at_ms, 300);

  auto nobody = journal.list(10, "c");
  ASSERT_TRUE(nobody);
  EXPECT_TRUE(nobody->empty());
}

TEST(Journal, ActionsSinceCountsEveryOutcomeOfOneServer) {
  TempDir tmp;
  auto journal = open_ok(tmp.path());
  auto old_one = journal.begin(sample("a", 1000));
  auto done = journal.begin(sample("a", 2000));
  auto running = journal.begin(sample("a", 3000, "unload"));
  auto other = journal.begin(sample("b", 2500));
  ASSERT_TRUE(old_one && done && running && other);
  ASSERT_TRUE(journal.finish(*done, ActionOutcome::succeeded, "ok", std::uint64_t{1}, 2100));

  auto since = journal.actions_since("a", 2000);
  ASSERT_TRUE(since) << since.error().line();
  ASSERT_EQ(since->size(), 2u);
  EXPECT_EQ((*since)[0].id, *running);
  EXPECT_EQ((*since)[0].outcome, ActionOutcome::in_progress);
  EXPECT_EQ((*since)[1].id, *done);
  EXPECT_EQ((*since)[1].outcome, ActionOutcome::succeeded);

  auto none = journal.actions_since("a", 3001);
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

TEST(Journal, ActionOfAKilledWriterIsIncompleteThenInterrupted) {
  TempDir tmp;
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The writer: opens the journal, starts an action, and dies without finishing it.
    auto journal = Journal::open(tmp.path());
    if (!journal) {
      ::_exit(2);
    }
    auto id = journal->begin(sample("a", 42));
    if (!id || !journal->add_step(*id, JournalStep{"drain", "draining", 43, 1, true})) {
      ::_exit(3);
    }
    ::raise(SIGKILL);
    ::_exit(4);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "child status " << status;

  auto journal = open_ok(tmp.path());
  auto listed = journal.list(0);
  ASSERT_TRUE(listed) << listed.error().line();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_TRUE(listed->front().incomplete());  // opening does not change it: readers see what is there
  EXPECT_EQ(listed->front().pid_of_writer, child);
  ASSERT_EQ(listed->front().steps.size(), 1u);

  // Our own action in flight is left alone.
  auto mine = journal.begin(sample("a", 50));
  ASSERT_TRUE(mine);

  ASSERT_TRUE(journal.mark_interrupted_stale());
  listed = journal.list(0);
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->size(), 2u);
  const auto& killed = (*listed)[1];
  EXPECT_EQ(killed.outcome, ActionOutcome::interrupted);
  EXPECT_FALSE(killed.incomplete());
  EXPECT_FALSE(killed.ended_at_ms.has_value());  // when it stopped is not known
  EXPECT_EQ(killed.message, "memwarden stopped before this action finished (pid " + std::to_string(child) + ")");
  EXPECT_EQ(killed.steps.size(), 1u);
  EXPECT_EQ((*listed)[0].id, *mine);
  EXPECT_TRUE((*listed)[0].incomplete());

  // Marking again changes nothing.
  ASSERT_TRUE(journal.mark_interrupted_stale());
  auto again = journal.list(0);
  ASSERT_TRUE(again);
  EXPECT_EQ((*again)[1].message, killed.message);
}

TEST(Journal, StaleMarkingTellsLiveWritersFromReusedPids) {
  TempDir tmp;
  auto journal = open_ok(tmp.path());
  auto live_other = journal.begin(sample("a", 1));
  auto reused_own = journal.begin(sample("a", 2));
  auto bogus = journal.begin(sample("a", 3));
  ASSERT_TRUE(live_other && reused_own && bogus);
  {
    RawDb raw(journal.path());
    // A live process that is not us (our parent), identity unknown: alive.
    raw.exec("UPDATE actions SET pid_of_writer = " + std::to_string(::getppid()) +
             ", writer_start = NULL WHERE id = " + std::to_string(*live_other));
    // Our pid but another process start (memwarden as PID 1 in a container, a later run): gone.
    raw.exec("UPDATE actions SET writer_start = 'another-boot/123' WHERE id = " + std::to_string(*reused_own));
    raw.exec("UPDATE actions SET pid_of_writer = 0 WHERE id = " + std::to_string(*bogus));
  }
  ASSERT_TRUE(journal.mark_interrupted_stale());
  auto listed = journal.list(0);
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->size(), 3u);
  EXPECT_EQ((*listed)[2].outcome, ActionOutcome::in_progress);
  EXPECT_EQ((*listed)[1].outcome, ActionOutcome::interrupted);
  EXPECT_EQ((*listed)[1].message,
            "memwarden stopped before this action finished (pid " + std::to_string(::getpid()) + ")");
  EXPECT_EQ((*listed)[0].outcome, ActionOutcome::interrupted);
  EXPECT_EQ((*listed)[0].message, "memwarden stopped before this action finished (pid 0)");
}

TEST(Journal, LockedDatabaseFailsWithinTheBusyTimeoutAndRecovers) {
  TempDir tmp;
  auto journal = open_ok(tmp.path());
  ASSERT_TRUE(journal.begin(sample("a", 1)));
  RawDb other(journal.path());
  other.exec("BEGIN EXCLUSIVE");

  const auto t0 = std::chrono::steady_clock::now();
  auto id = journal.begin(sample("a", 2));
  const auto waited = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(id);
  EXPECT_EQ(id.error().source, journal.path().string());
  EXPECT_NE(id.error().message.find("the journal database is locked by another process (waited 2 s)"),
            std::string::npos)
      << id.error().line();
  EXPECT_GE(waited, std::chrono::milliseconds(1500));
  EXPECT_LT(waited, std::chrono::seconds(6));

  // Readers are not blocked (WAL), and nothing was half-written.
  auto listed = journal.list(0);
  ASSERT_TRUE(listed) << listed.error().line();
  EXPECT_EQ(listed->size(), 1u);

  other.exec("ROLLBACK");
  auto after = journal.begin(sample("a", 3));
  ASSERT_TRUE(after) << after.error().line();
}

TEST(Journal, GarbageFileIsReportedCorruptAndLeftAlone) {
  TempDir tmp;
  const std::string garbage(8192, '\x5a');
  write_file(tmp.path() / "memwarden.db", garbage);
  auto journal = Journal::open(tmp.path());
  ASSERT_FALSE(journal);
  const auto path = (tmp.path() / "memwarden.db").string();
  EXPECT_EQ(journal.error().source, path);
  EXPECT_NE(journal.error().message.find("the journal database is corrupt ("), std::string::npos)
      << journal.error().line();
  EXPECT_NE(journal.error().message.find("); move it aside to start a new one"), std::string::npos)
      << journal.error().line();
  std::ifstream in(path, std::ios::binary);
  std::ostringstream after;
  after << in.rdbuf();
  EXPECT_EQ(after.str(), garbage);
}

TEST(Journal, DamagedPagesAreReportedCorrupt) {
  TempDir tmp;
  {
    auto journal = open_ok(tmp.path());
    for (int i = 0; i < 200; ++i) {
      auto r = sample("a", i);
      r.reason = std::string(500, 'r');
      ASSERT_TRUE(journal.begin(r));
    }
  }  // the last connection checkpoints the WAL into the file
  const auto path = tmp.path() / "memwarden.db";
  ASSERT_GT(fs::file_size(path), 4096u * 8);
  overwrite_at(path, 4096, std::string(4096 * 4, '\x01'));  // pages 2-5: b-tree pages
  auto journal = Journal::open(tmp.path());
  ASSERT_FALSE(journal);
  EXPECT_NE(journal.error().message.find("the journal database is corrupt ("), std::string::npos)
      << journal.error().line();
}

TEST(Journal, StateDirThatIsAFileIsAClearError) {
  TempDir tmp;
  tmp.write("state", "not a directory");
  auto journal = Journal::open(tmp.path() / "state");
  ASSERT_FALSE(journal);
  EXPECT_EQ(journal.error().source, (tmp.path() / "state").string());
  EXPECT_NE(journal.error().message.find("is not a directory"), std::string::npos) << journal.error().line();

  auto below = Journal::open(tmp.path() / "state" / "memwarden");
  ASSERT_FALSE(below);
  EXPECT_NE(below.error().message.find("cannot create the state directory"), std::string::npos) << below.error().line();
}

TEST(Journal, NewerSchemaIsRefused) {
  TempDir tmp;
  { auto journal = open_ok(tmp.path()); }
  {
    RawDb raw(tmp.path() / "memwarden.db");
    raw.exec("PRAGMA user_version = 99");
  }
  auto journal = Journal::open(tmp.path());
  ASSERT_FALSE(journal);
  EXPECT_NE(journal.error().message.find("newer memwarden (schema 99"), std::string::npos) << journal.error().line();
}

TEST(Journal, UnreadableRowsAreStillListed) {
  TempDir tmp;
  auto journal = open_ok(tmp.path());
  auto bad_steps = journal.begin(sample("a", 1));
  auto bad_step = journal.begin(sample("a", 2));
  auto bad_outcome = journal.begin(sample("a", 3));
  ASSERT_TRUE(bad_steps && bad_step && bad_outcome);
  {
    RawDb raw(journal.path());
    raw.exec("UPDATE actions SET steps_json = '{not json', evidence_json = 'nor this' WHERE id = " +
             std::to_string(*bad_steps));
    raw.exec(R"(UPDATE actions SET steps_json = '[{"name":"drain","ok":"yes"}, 7]' WHERE id = )" +
             std::to_string(*bad_step));
    raw.exec("UPDATE actions SET outcome = 'exploded', started_at_ms = 'soon', before_bytes = NULL WHERE id = " +
             std::to_string(*bad_outcome));
  }
  auto listed = journal.list(0);
  ASSERT_TRUE(listed) << listed.error().line();
  ASSERT_EQ(listed->size(), 3u);
  const JournalRecord* by_id[4] = {};
  for (const auto& r : *listed) {
    if (r.id >= 1 && r.id <= 3) {
      by_id[r.id] = &r;
    }
  }
  ASSERT_TRUE(by_id[1] && by_id[2] && by_id[3]);
  ASSERT_EQ(by_id[1]->steps.size(), 1u);
  EXPECT_EQ(by_id[1]->steps[0].name, "unreadable");
  EXPECT_EQ(by_id[1]->evidence_json, "nor this");
  ASSERT_EQ(by_id[2]->steps.size(), 2u);
  EXPECT_EQ(by_id[2]->steps[0].name, "unreadable");
  EXPECT_NE(by_id[2]->steps[0].detail.find("steps[0].ok"), std::string::npos) << by_id[2]->steps[0].detail;
  EXPECT_EQ(by_id[2]->steps[1].name, "unreadable");
  EXPECT_EQ(by_id[3]->outcome, ActionOutcome::failed);
  EXPECT_NE(by_id[3]->message.find("unknown outcome 'exploded'"), std::string::npos);
  EXPECT_FALSE(by_id[3]->before_bytes.has_value());

  // A step added to unreadable steps starts a fresh list instead of failing the action.
  ASSERT_TRUE(journal.add_step(*bad_steps, JournalStep{"verify", "ok", 5, 1, true}));
  auto again = journal.list(0, "a");
  ASSERT_TRUE(again);
  for (const auto& r : *again) {
    if (r.id == *bad_steps) {
      ASSERT_EQ(r.steps.size(), 1u);
      EXPECT_EQ(r.steps[0].name, "verify");
    }
  }
}
