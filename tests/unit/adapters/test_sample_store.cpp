#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>

#include <fmt/format.h>

#include "adapters/sample_store.hpp"
#include "raw_db.hpp"
#include "test_support.hpp"

using namespace mw;
using namespace mw::adapters;
using mw::test::TempDir;

namespace {

namespace fs = std::filesystem;

constexpr std::int64_t k_t0 = 1'700'000'040'000;  // a whole minute, unix ms
constexpr std::int64_t k_minute = 60'000;
constexpr std::int64_t k_hour = 3'600'000;
constexpr std::int64_t k_day = 24 * k_hour;

StoredSample server_sample(std::string subject, std::int64_t at_ms, std::uint64_t anon) {
  StoredSample s;
  s.at_ms = at_ms;
  s.subject = std::move(subject);
  s.usage = anon + 1000;
  s.working_set = anon + 500;
  s.anon = anon;
  s.file = 500;
  s.limit = 64ULL << 30;
  s.models_bytes = 4ULL << 30;
  s.models_vram_bytes = 3ULL << 30;
  s.models_loaded = 1;
  return s;
}

SampleStore open_ok(const fs::path& dir, SampleStoreOptions options = {}) {
  auto store = SampleStore::open(dir, options);
  if (!store) {
    ADD_FAILURE() << store.error().line();
    std::abort();
  }
  return std::move(store).value();
}

std::vector<StoredSample> raw_ok(SampleStore& store, const std::string& subject, std::int64_t since = INT64_MIN,
                                 std::int64_t until = INT64_MAX) {
  auto rows = store.raw(subject, since, until);
  if (!rows) {
    ADD_FAILURE() << rows.error().line();
    return {};
  }
  return std::move(rows).value();
}

std::vector<AggregateSample> minutes_ok(SampleStore& store, const std::string& subject, std::int64_t since = INT64_MIN,
                                        std::int64_t until = INT64_MAX) {
  auto rows = store.aggregates(subject, since, until);
  if (!rows) {
    ADD_FAILURE() << rows.error().line();
    return {};
  }
  return std::move(rows).value();
}

using test::RawDb;

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace

TEST(SampleStore, OpenCreatesPrivateDirAndWalDatabaseWithIncrementalVacuum) {
  TempDir tmp;
  const auto dir = tmp.path() / "state" / "memwarden";
  {
    auto store = open_ok(dir);
    EXPECT_EQ(store.path(), dir / "samples.db");
  }
  struct stat st {};
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  RawDb raw(dir / "samples.db");
  EXPECT_EQ(raw.text("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(raw.text("PRAGMA auto_vacuum"), "2");  // incremental
  EXPECT_EQ(raw.text("SELECT value FROM meta WHERE key = 'schema_version'"),
            std::to_string(SampleStore::k_schema_version));
  EXPECT_EQ(raw.text("SELECT count(*) FROM raw"), "0");
}

TEST(SampleStore, RoundTripKeepsUnknownValuesUnknown) {
  TempDir tmp;
  auto store = open_ok(tmp.path());

  StoredSample host;
  host.at_ms = k_t0;
  host.subject = "host";
  host.usage = 30ULL << 30;
  host.mem_available = 0;  // a real zero stays zero
  host.psi_some_avg10 = 1.25;
  host.psi_full_avg10 = 0.0;
  host.swap = 18'000'000'000'000'000'000ULL;  // above INT64_MAX, still exact

  auto server = server_sample("ollama-gpu0", k_t0, 7'000'000'000);
  server.models_loaded = 4'000'000'000U;

  StoredSample nothing_known;
  nothing_known.at_ms = k_t0 + 1000;
  nothing_known.subject = "ollama-gpu0";

  ASSERT_TRUE(store.append({host, server, nothing_known}));

  const auto hosts = raw_ok(store, "host");
  ASSERT_EQ(hosts.size(), 1u);
  EXPECT_EQ(hosts[0], host);
  EXPECT_FALSE(hosts[0].anon.has_value());
  EXPECT_FALSE(hosts[0].models_loaded.has_value());
  EXPECT_EQ(hosts[0].mem_available, 0u);

  const auto servers = raw_ok(store, "ollama-gpu0");
  ASSERT_EQ(servers.size(), 2u);
  EXPECT_EQ(servers[0], server);
  EXPECT_EQ(servers[1], nothing_known);
  EXPECT_FALSE(servers[1].usage.has_value());
  EXPECT_FALSE(servers[1].psi_full_avg10.has_value());

  // [since, until)
  EXPECT_EQ(raw_ok(store, "ollama-gpu0", k_t0, k_t0 + 1000).size(), 1u);
  EXPECT_EQ(raw_ok(store, "ollama-gpu0", k_t0 + 1, k_t0 + 1001).size(), 1u);
  EXPECT_TRUE(raw_ok(store, "ollama-gpu0", k_t0 + 1001, k_t0 + 5000).empty());
  EXPECT_TRUE(raw_ok(store, "nobody").empty());

  auto subjects = store.subjects();
  ASSERT_TRUE(subjects) << subjects.error().line();
  EXPECT_EQ(*subjects, (std::vector<std::string>{"host", "ollama-gpu0"}));

  // The same subject at the same time again replaces the stored sample.
  auto again = server;
  again.anon = 1;
  ASSERT_TRUE(store.append({again}));
  const auto replaced = raw_ok(store, "ollama-gpu0", k_t0, k_t0 + 1);
  ASSERT_EQ(replaced.size(), 1u);
  EXPECT_EQ(replaced[0].anon, 1u);

  EXPECT_TRUE(store.append({}));
}

TEST(SampleStore, SampleWithoutSubjectFailsTheWholeBatch) {
  TempDir tmp;
  auto store = open_ok(tmp.path());
  auto nameless = server_sample("", k_t0, 1);
  auto ok = store.append({server_sample("a", k_t0, 1), nameless});
  ASSERT_FALSE(ok);
  EXPECT_EQ(ok.error().source, store.path().string());
  EXPECT_NE(ok.error().message.find("without a subject"), std::string::npos) << ok.error().line();
  EXPECT_TRUE(raw_ok(store, "a").empty());
}

TEST(SampleStore, RawSamplesOlderThanRetentionAreDropped) {
  TempDir tmp;
  SampleStoreOptions options;
  options.raw_retention = std::chrono::hours(48);
  auto store = open_ok(tmp.path(), options);
  const std::int64_t now = k_t0 + 50 * k_hour;
  ASSERT_TRUE(store.append({server_sample("a", now - 49 * k_hour, 1), server_sample("a", now - 48 * k_hour - 1, 2),
                            server_sample("a", now - 48 * k_hour, 3), server_sample("a", now - k_hour, 4),
                            server_sample("b", now - 48 * k_hour - 1, 5)}));
  ASSERT_TRUE(store.maintain(now));
  const auto kept = raw_ok(store, "a");
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_EQ(kept[0].at_ms, now - 48 * k_hour);
  EXPECT_EQ(kept[1].at_ms, now - k_hour);
  EXPECT_TRUE(raw_ok(store, "b").empty());
  // Its minute was rolled up before the raw sample went, so b is still a subject.
  auto subjects = store.subjects();
  ASSERT_TRUE(subjects);
  EXPECT_EQ(*subjects, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(minutes_ok(store, "b").size(), 1u);
}

TEST(SampleStore, MinutesAreRolledUpExactlyAndOnce) {
  TempDir tmp;
  auto store = open_ok(tmp.path());
  std::vector<StoredSample> batch;
  // Minute 0: anon 10, 20, 40 (one sample without anon); working set 100, 101 (avg 100.5 -> 101).
  auto a = server_sample("srv", k_t0 + 0, 10);
  a.working_set = 100;
  auto b = server_sample("srv", k_t0 + 20'000, 20);
  b.working_set = 101;
  auto c = server_sample("srv", k_t0 + 40'000, 40);
  c.working_set.reset();
  auto d = server_sample("srv", k_t0 + 59'999, 0);
  d.anon.reset();
  d.working_set.reset();
  // Minute 1: one sample, no values at all.
  StoredSample e;
  e.at_ms = k_t0 + k_minute + 5;
  e.subject = "srv";
  // Host over minute 0: mem_available min, psi full max.
  StoredSample h1;
  h1.at_ms = k_t0 + 1000;
  h1.subject = "host";
  h1.mem_available = 5'000'000'000;
  h1.psi_full_avg10 = 0.5;
  auto h2 = h1;
  h2.at_ms = k_t0 + 2000;
  h2.mem_available = 4'000'000'123;
  h2.psi_full_avg10 = 2.75;
  // Minute 2 is not over yet when maintain runs.
  auto f = server_sample("srv", k_t0 + 2 * k_minute + 1, 99);
  ASSERT_TRUE(store.append({a, b, c, d, e, h1, h2, f}));

  const std::int64_t now = k_t0 + 2 * k_minute + SampleStore::k_rollup_delay_ms;
  ASSERT_TRUE(store.maintain(now));
  ASSERT_TRUE(store.maintain(now));  // twice: nothing doubles
  ASSERT_TRUE(store.maintain(now + 1000));

  const auto srv = minutes_ok(store, "srv");
  ASSERT_EQ(srv.size(), 2u);
  EXPECT_EQ(srv[0].minute_ms, k_t0);
  EXPECT_EQ(srv[0].subject, "srv");
  EXPECT_EQ(srv[0].count, 4u);
  EXPECT_EQ(srv[0].anon_min, 10u);
  EXPECT_EQ(srv[0].anon_avg, 23u);  // (10 + 20 + 40) / 3 = 23.33
  EXPECT_EQ(srv[0].anon_max, 40u);
  EXPECT_EQ(srv[0].working_set_avg, 101u);
  EXPECT_EQ(srv[0].working_set_max, 101u);
  EXPECT_FALSE(srv[0].mem_available_min.has_value());
  EXPECT_FALSE(srv[0].psi_full_avg10_max.has_value());
  EXPECT_EQ(srv[1].minute_ms, k_t0 + k_minute);
  EXPECT_EQ(srv[1].count, 1u);
  EXPECT_FALSE(srv[1].anon_min.has_value());
  EXPECT_FALSE(srv[1].anon_avg.has_value());
  EXPECT_FALSE(srv[1].anon_max.has_value());
  EXPECT_FALSE(srv[1].working_set_avg.has_value());

  const auto host = minutes_ok(store, "host");
  ASSERT_EQ(host.size(), 1u);
  EXPECT_EQ(host[0].count, 2u);
  EXPECT_EQ(host[0].mem_available_min, 4'000'000'123u);
  EXPECT_EQ(host[0].psi_full_avg10_max, 2.75);
  EXPECT_FALSE(host[0].anon_avg.has_value());

  // Reading: the minutes that overlap [since, until).
  EXPECT_EQ(minutes_ok(store, "srv", k_t0 + 59'999, k_t0 + k_minute).size(), 1u);
  EXPECT_EQ(minutes_ok(store, "srv", k_t0 + 30'000, k_t0 + k_minute + 1).size(), 2u);
  EXPECT_TRUE(minutes_ok(store, "srv", k_t0 + 2 * k_minute, INT64_MAX).empty());

  // Minute 2 once it is over; the earlier ones are left as they were.
  ASSERT_TRUE(store.maintain(k_t0 + 3 * k_minute + SampleStore::k_rollup_delay_ms));
  const auto later = minutes_ok(store, "srv");
  ASSERT_EQ(later.size(), 3u);
  EXPECT_EQ(later[0], srv[0]);
  EXPECT_EQ(later[1], srv[1]);
  EXPECT_EQ(later[2].minute_ms, k_t0 + 2 * k_minute);
  EXPECT_EQ(later[2].anon_avg, 99u);
  EXPECT_EQ(later[2].count, 1u);
  // Raw samples are still there (within retention).
  EXPECT_EQ(raw_ok(store, "srv").size(), 6u);

  // A subject with samples not yet rolled up is listed too.
  ASSERT_TRUE(store.append({server_sample("newcomer", k_t0 + 3 * k_minute + 1, 1)}));
  auto subjects = store.subjects();
  ASSERT_TRUE(subjects) << subjects.error().line();
  EXPECT_EQ(*subjects, (std::vector<std::string>{"host", "newcomer", "srv"}));
}

TEST(SampleStore, AggregatesOutliveRawAndGoAfterTheirRetention) {
  TempDir tmp;
  SampleStoreOptions options;
  options.raw_retention = std::chrono::hours(48);
  options.aggregate_retention = std::chrono::hours(24 * 30);
  auto store = open_ok(tmp.path(), options);
  ASSERT_TRUE(store.append(
      {server_sample("a", k_t0, 1), server_sample("a", k_t0 + k_day, 2), server_sample("a", k_t0 + 10 * k_day, 3)}));
  ASSERT_TRUE(store.maintain(k_t0 + 10 * k_day + k_minute + SampleStore::k_rollup_delay_ms));
  EXPECT_EQ(raw_ok(store, "a").size(), 1u);
  EXPECT_EQ(minutes_ok(store, "a").size(), 3u);

  // 30 days after the second minute: the first is older than the retention, the second is not.
  ASSERT_TRUE(store.maintain(k_t0 + k_day + 30 * k_day));
  const auto kept = minutes_ok(store, "a");
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_EQ(kept[0].minute_ms, k_t0 + k_day);
  EXPECT_EQ(kept[0].anon_max, 2u);
  EXPECT_EQ(kept[1].minute_ms, k_t0 + 10 * k_day);
  EXPECT_TRUE(raw_ok(store, "a").empty());

  ASSERT_TRUE(store.maintain(k_t0 + 41 * k_day));
  EXPECT_TRUE(minutes_ok(store, "a").empty());
  auto subjects = store.subjects();
  ASSERT_TRUE(subjects);
  EXPECT_TRUE(subjects->empty());
}

TEST(SampleStore, SizeIsBoundedByDroppingTheOldestRows) {
  TempDir tmp;
  SampleStoreOptions options;
  options.max_bytes = 1ULL << 20;
  auto store = open_ok(tmp.path(), options);
  // Two subjects, one sample a second each for 4 hours: well over 1 MiB.
  const std::int64_t seconds = 4 * 3600;
  std::vector<StoredSample> batch;
  for (std::int64_t i = 0; i < seconds; ++i) {
    batch.push_back(server_sample("a", k_t0 + i * 1000, 1'000'000'000ULL + static_cast<std::uint64_t>(i)));
    batch.push_back(server_sample("b", k_t0 + i * 1000, 2'000'000'000ULL + static_cast<std::uint64_t>(i)));
    if (batch.size() >= 1000) {
      ASSERT_TRUE(store.append(batch));
      batch.clear();
    }
  }
  ASSERT_TRUE(store.append(batch));
  auto before = store.size_bytes();
  ASSERT_TRUE(before) << before.error().line();
  ASSERT_GT(*before, options.max_bytes);

  const std::int64_t last = k_t0 + (seconds - 1) * 1000;
  auto ok = store.maintain(last + 1);
  ASSERT_TRUE(ok) << ok.error().line();

  auto after = store.size_bytes();
  ASSERT_TRUE(after) << after.error().line();
  EXPECT_LE(*after, options.max_bytes);
  EXPECT_LE(fs::file_size(store.path()), options.max_bytes);
  for (const std::string subject : {"a", "b"}) {
    const auto rows = raw_ok(store, subject);
    ASSERT_FALSE(rows.empty());
    EXPECT_EQ(rows.back().at_ms, last) << subject;   // the newest kept
    EXPECT_GT(rows.front().at_ms, k_t0) << subject;  // the oldest gone
    // The last hour is whole.
    EXPECT_EQ(raw_ok(store, subject, last - k_hour + 1, INT64_MAX).size(), 3600u) << subject;
    // Every whole minute was rolled up before its raw samples went.
    EXPECT_EQ(minutes_ok(store, subject).size(), static_cast<std::size_t>(4 * 60 - 1)) << subject;
  }

  auto subjects = store.subjects();
  ASSERT_TRUE(subjects);
  EXPECT_EQ(*subjects, (std::vector<std::string>{"a", "b"}));

  // Under the bound, maintain leaves everything as it is.
  const auto kept = raw_ok(store, "a").size();
  ASSERT_TRUE(store.maintain(last + 2));
  EXPECT_EQ(raw_ok(store, "a").size(), kept);
}

TEST(SampleStore, BoundBelowTheLastHourDropsAggregatesThenRaw) {
  TempDir tmp;
  SampleStoreOptions options;
  options.max_bytes = 64ULL << 10;
  auto store = open_ok(tmp.path(), options);
  std::vector<StoredSample> batch;
  for (std::int64_t i = 0; i < 3000; ++i) {
    batch.push_back(server_sample("a", k_t0 + i * 1000, 1'000'000'000ULL));
  }
  ASSERT_TRUE(store.append(batch));
  const std::int64_t last = k_t0 + 2999 * 1000;
  ASSERT_TRUE(store.maintain(last + 1));
  auto after = store.size_bytes();
  ASSERT_TRUE(after);
  EXPECT_LE(*after, options.max_bytes);
  const auto rows = raw_ok(store, "a");
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows.back().at_ms, last);
  EXPECT_GT(rows.front().at_ms, k_t0);
  // Raw and minutes went together, oldest first: the minutes left start where the raw samples do.
  const auto minutes = minutes_ok(store, "a");
  ASSERT_FALSE(minutes.empty());
  EXPECT_EQ(minutes.front().minute_ms, rows.front().at_ms);
  EXPECT_EQ(minutes.back().minute_ms, k_t0 + 48 * k_minute);
}

TEST(SampleStore, DiskFullIsSaidPlainlyAndTheStoreRecovers) {
  TempDir tmp;
  auto store = open_ok(tmp.path());
  ASSERT_TRUE(store.append({server_sample("a", k_t0, 1)}));
  auto size = store.size_bytes();
  ASSERT_TRUE(size);
  auto cap = store.set_page_limit_for_testing(*size / 4096);
  ASSERT_TRUE(cap) << cap.error().line();

  std::optional<Error> error;
  std::int64_t at = k_t0 + 1000;
  std::size_t stored = 1;
  for (int round = 0; round < 100 && !error; ++round) {
    std::vector<StoredSample> batch;
    for (int i = 0; i < 100; ++i, at += 1000) {
      batch.push_back(server_sample("a", at, 2));
    }
    if (auto ok = store.append(batch); !ok) {
      error = ok.error();
    } else {
      stored += batch.size();
    }
  }
  ASSERT_TRUE(error.has_value()) << "the capped database never filled up";
  EXPECT_EQ(error->source, store.path().string());
  EXPECT_NE(error->message.find("disk full"), std::string::npos) << error->line();
  EXPECT_EQ(error->code, ENOSPC);
  // The failed batch left nothing behind.
  EXPECT_EQ(raw_ok(store, "a").size(), stored);

  // Space is back: the same connection writes again.
  ASSERT_TRUE(store.set_page_limit_for_testing(1'000'000));
  auto ok = store.append({server_sample("a", at, 3), server_sample("new", at, 4)});
  ASSERT_TRUE(ok) << ok.error().line();
  EXPECT_EQ(raw_ok(store, "a").size(), stored + 1);
  EXPECT_EQ(raw_ok(store, "new").size(), 1u);
  auto maintained = store.maintain(at + k_minute + SampleStore::k_rollup_delay_ms);
  ASSERT_TRUE(maintained) << maintained.error().line();
}

TEST(SampleStore, LockedDatabaseFailsWithinTheBusyTimeoutAndRecovers) {
  TempDir tmp;
  auto store = open_ok(tmp.path());
  ASSERT_TRUE(store.append({server_sample("a", k_t0, 1)}));
  RawDb other(store.path());
  other.exec("BEGIN EXCLUSIVE");

  const auto t0 = std::chrono::steady_clock::now();
  auto ok = store.append({server_sample("a", k_t0 + 1000, 2)});
  const auto waited = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(ok);
  EXPECT_EQ(ok.error().source, store.path().string());
  EXPECT_NE(ok.error().message.find("the sample database is locked by another process (waited 2 s)"), std::string::npos)
      << ok.error().line();
  EXPECT_GE(waited, std::chrono::milliseconds(1500));
  EXPECT_LT(waited, std::chrono::seconds(6));
  EXPECT_EQ(raw_ok(store, "a").size(), 1u);  // readers go on (WAL)

  other.exec("ROLLBACK");
  auto after = store.append({server_sample("a", k_t0 + 2000, 3)});
  ASSERT_TRUE(after) << after.error().line();
  EXPECT_EQ(raw_ok(store, "a").size(), 2u);
}

TEST(SampleStore, GarbageFileIsReportedCorruptAndLeftAlone) {
  TempDir tmp;
  const std::string garbage(8192, '\x5a');
  tmp.write("samples.db", garbage);
  auto store = SampleStore::open(tmp.path());
  ASSERT_FALSE(store);
  const auto path = (tmp.path() / "samples.db").string();
  EXPECT_EQ(store.error().source, path);
  EXPECT_NE(store.error().message.find("the sample database is corrupt ("), std::string::npos) << store.error().line();
  EXPECT_NE(store.error().message.find("move it aside"), std::string::npos) << store.error().line();
  EXPECT_EQ(read_all(path), garbage);
}

TEST(SampleStore, DamagedPagesAreReportedCorrupt) {
  TempDir tmp;
  {
    auto store = open_ok(tmp.path());
    std::vector<StoredSample> batch;
    for (std::int64_t i = 0; i < 2000; ++i) {
      batch.push_back(server_sample("a", k_t0 + i * 1000, 1));
    }
    ASSERT_TRUE(store.append(batch));
  }  // the last connection checkpoints the WAL into the file
  const auto path = tmp.path() / "samples.db";
  ASSERT_GT(fs::file_size(path), 4096u * 16);
  {
    std::fstream out(path, std::ios::binary | std::ios::in | std::ios::out);
    out.seekp(4096 * 4);
    out << std::string(4096 * 8, '\x01');
  }
  auto store = SampleStore::open(tmp.path());
  std::optional<Error> error;
  if (!store) {
    error = store.error();
  } else if (auto rows = store->raw("a", INT64_MIN, INT64_MAX); !rows) {
    error = rows.error();
  }
  ASSERT_TRUE(error.has_value()) << "damage went unnoticed";
  EXPECT_EQ(error->source, path.string());
  EXPECT_NE(error->message.find("the sample database is corrupt ("), std::string::npos) << error->line();
}

TEST(SampleStore, ReopenKeepsSamplesAggregatesAndWhatWasRolledUp) {
  TempDir tmp;
  const std::int64_t now = k_t0 + k_minute + SampleStore::k_rollup_delay_ms;
  {
    auto store = open_ok(tmp.path());
    ASSERT_TRUE(store.append({server_sample("a", k_t0, 10), server_sample("a", k_t0 + 1000, 20)}));
    ASSERT_TRUE(store.maintain(now));
  }
  auto store = open_ok(tmp.path());
  EXPECT_EQ(raw_ok(store, "a").size(), 2u);
  auto minutes = minutes_ok(store, "a");
  ASSERT_EQ(minutes.size(), 1u);
  EXPECT_EQ(minutes[0].anon_avg, 15u);
  // A late sample in a minute already rolled up stays raw only; the minute is not rolled up again.
  ASSERT_TRUE(store.append({server_sample("a", k_t0 + 2000, 90)}));
  ASSERT_TRUE(store.maintain(now + 1000));
  minutes = minutes_ok(store, "a");
  ASSERT_EQ(minutes.size(), 1u);
  EXPECT_EQ(minutes[0].count, 2u);
  EXPECT_EQ(minutes[0].anon_max, 20u);
}

TEST(SampleStore, NewerSchemaIsRefused) {
  TempDir tmp;
  { auto store = open_ok(tmp.path()); }
  {
    RawDb raw(tmp.path() / "samples.db");
    raw.exec("UPDATE meta SET value = 99 WHERE key = 'schema_version'");
  }
  auto store = SampleStore::open(tmp.path());
  ASSERT_FALSE(store);
  EXPECT_NE(store.error().message.find("newer memwarden (schema 99"), std::string::npos) << store.error().line();
}

TEST(SampleStore, BadStateDirAndOptionsAreClearErrors) {
  TempDir tmp;
  tmp.write("state", "not a directory");
  auto store = SampleStore::open(tmp.path() / "state");
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().source, (tmp.path() / "state").string());
  EXPECT_NE(store.error().message.find("is not a directory"), std::string::npos) << store.error().line();

  SampleStoreOptions options;
  options.raw_retention = std::chrono::milliseconds(0);
  auto zero = SampleStore::open(tmp.path() / "ok", options);
  ASSERT_FALSE(zero);
  EXPECT_NE(zero.error().message.find("retention"), std::string::npos) << zero.error().line();
}

TEST(SampleStore, MovedFromStoreAnswersWithAnError) {
  TempDir tmp;
  auto store = open_ok(tmp.path());
  auto moved = std::move(store);
  ASSERT_TRUE(moved.append({server_sample("a", k_t0, 1)}));
  EXPECT_FALSE(store.append({server_sample("a", k_t0, 1)}));  // NOLINT(bugprone-use-after-move): on purpose
  EXPECT_FALSE(store.maintain(k_t0));
  EXPECT_FALSE(store.raw("a", 0, 1));
  EXPECT_TRUE(store.path().empty());
  EXPECT_EQ(raw_ok(moved, "a").size(), 1u);
}

TEST(SampleStore, SubjectsWithoutSamplesAreForgotten) {
  TempDir tmp;
  auto store = open_ok(tmp.path());
  // A container seen once and then removed, and one still reporting.
  ASSERT_TRUE(store.append({server_sample("gone", k_t0, 1), server_sample("here", k_t0, 1)}));
  const auto much_later = k_t0 + 41 * k_day;
  ASSERT_TRUE(store.append({server_sample("here", much_later, 2)}));
  ASSERT_TRUE(store.maintain(much_later + k_minute));
  RawDb db(StateDir(tmp.path()).samples());
  EXPECT_EQ(db.text("SELECT group_concat(name) FROM subjects"), "here");
  // A name that comes back gets a fresh id and its samples are read back under it.
  ASSERT_TRUE(store.append({server_sample("gone", much_later + 2 * k_minute, 5)}));
  const auto rows = raw_ok(store, "gone");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].anon, 5u);
}

namespace {

EstimateRecord load_record(std::int64_t at_ms, std::string model) {
  EstimateRecord r;
  r.at_ms = at_ms;
  r.model = std::move(model);
  r.server = "ollama";
  r.quantization = "Q4_K_M";
  r.num_ctx = 4096;
  r.planned_ram = 5ULL << 30;
  r.planned_vram = 0;
  r.measured_ram = (5ULL << 30) + (200ULL << 20);
  r.server_size = 5ULL << 30;
  r.server_vram = 0;
  r.load_seconds = 2.5;
  r.kept_after_unload = 10ULL << 20;
  return r;
}

}  // namespace

TEST(SampleStore, ModelLoadsRoundTripNewestFirstWithUnknownsKept) {
  TempDir tmp;
  auto store = open_ok(tmp.path());
  auto first = load_record(k_t0, "llama3.1:8b");
  auto second = load_record(k_t0 + k_minute, "qwen2.5:7b");
  second.measured_ram.reset();
  second.num_ctx.reset();
  second.load_seconds.reset();
  second.kept_after_unload.reset();
  ASSERT_TRUE(store.append_estimate(first));
  ASSERT_TRUE(store.append_estimate(second));
  auto rows = store.estimates(10);
  ASSERT_TRUE(rows) << rows.error().line();
  ASSERT_EQ(rows->size(), 2U);
  EXPECT_EQ((*rows)[0], second);
  EXPECT_EQ((*rows)[1], first);
  auto one = store.estimates(1);
  ASSERT_TRUE(one);
  ASSERT_EQ(one->size(), 1U);
  EXPECT_EQ((*one)[0].model, "qwen2.5:7b");
}

TEST(SampleStore, OnlyTheNewestModelLoadsAreKept) {
  TempDir tmp;
  auto store = open_ok(tmp.path());
  {
    RawDb raw(tmp.path() / "samples.db");
    // Fill to the cap directly, then one more through the store drops the oldest.
    raw.exec(
        fmt::format("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {}) "
                    "INSERT INTO estimate_checks (at_ms, model, server, quantization, planned_ram, planned_vram) "
                    "SELECT i, 'm' || i, 's', 'q', 1, 0 FROM n",
                    SampleStore::k_max_estimates));
  }
  ASSERT_TRUE(store.append_estimate(load_record(k_t0, "newest")));
  RawDb raw(tmp.path() / "samples.db");
  EXPECT_EQ(raw.integer("SELECT count(*) FROM estimate_checks"), SampleStore::k_max_estimates);
  EXPECT_EQ(raw.integer("SELECT count(*) FROM estimate_checks WHERE model = 'm1'"), 0);
  EXPECT_EQ(raw.integer("SELECT count(*) FROM estimate_checks WHERE model = 'newest'"), 1);
}

TEST(SampleStore, AHistoryWithoutTheModelLoadsGainsThemAndKeepsItsSamplesAndSchema) {
  TempDir tmp;
  {
    auto store = open_ok(tmp.path());
    ASSERT_TRUE(store.append({server_sample("ollama", k_t0, 42)}));
  }
  {
    // As a memwarden without test model left it.
    RawDb raw(tmp.path() / "samples.db");
    raw.exec("DROP TABLE estimate_checks");
  }
  auto store = open_ok(tmp.path());
  EXPECT_EQ(raw_ok(store, "ollama").size(), 1U);
  ASSERT_TRUE(store.append_estimate(load_record(k_t0, "llama3.1:8b")));
  auto rows = store.estimates(5);
  ASSERT_TRUE(rows);
  EXPECT_EQ(rows->size(), 1U);
  RawDb raw(tmp.path() / "samples.db");
  EXPECT_EQ(raw.text("SELECT value FROM meta WHERE key = 'schema_version'"), "1") << "older memwardens still open it";
}

namespace {

BenchRunRecord bench_record(std::int64_t at_ms, std::vector<std::string> models, std::string json = "{}") {
  BenchRunRecord r;
  r.started_at_ms = at_ms;
  r.server = "ollama";
  r.models = std::move(models);
  r.json = std::move(json);
  return r;
}

}  // namespace

TEST(SampleStore, BenchRunsRoundTripNewestFirstJsonOnlyWhenAsked) {
  TempDir tmp;
  auto store = open_ok(tmp.path());
  auto first = bench_record(k_t0, {"llama3.1:8b", "qwen2.5:7b"}, R"({"schema":"memwarden.bench/1","n":1})");
  auto second = bench_record(k_t0 + k_minute, {"llama3.1:8b"}, R"({"schema":"memwarden.bench/1","n":2})");
  second.interrupted = true;
  second.server = "http://127.0.0.1:11434";
  const auto id1 = store.append_bench_run(first);
  ASSERT_TRUE(id1) << id1.error().line();
  const auto id2 = store.append_bench_run(second);
  ASSERT_TRUE(id2) << id2.error().line();
  EXPECT_GT(*id2, *id1);
  first.id = *id1;
  second.id = *id2;

  auto listed = store.bench_runs(10);
  ASSERT_TRUE(listed) << listed.error().line();
  ASSERT_EQ(listed->size(), 2U);
  auto second_listed = second;
  second_listed.json.clear();
  auto first_listed = first;
  first_listed.json.clear();
  EXPECT_EQ((*listed)[0], second_listed);
  EXPECT_EQ((*listed)[1], first_listed);
  auto full = store.bench_runs(1, BenchRunFields::with_json);
  ASSERT_TRUE(full);
  ASSERT_EQ(full->size(), 1U);
  EXPECT_EQ((*full)[0], second);

  auto one = store.bench_run(*id1);
  ASSERT_TRUE(one) << one.error().line();
  ASSERT_TRUE(one->has_value());
  EXPECT_EQ(**one, first);
  auto none = store.bench_run(*id2 + 100);
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->has_value());
}

TEST(SampleStore, BenchRunsRefuseOversizedOrEmptyJsonAndCommasInNames) {
  TempDir tmp;
  auto store = open_ok(tmp.path());
  const auto big =
      store.append_bench_run(bench_record(k_t0, {"m"}, std::string(SampleStore::k_max_bench_run_json + 1, ' ')));
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().source, (tmp.path() / "samples.db").string());
  EXPECT_NE(big.error().message.find("32 MiB at most"), std::string::npos) << big.error().line();
  EXPECT_FALSE(store.append_bench_run(bench_record(k_t0, {"m"}, "")));
  const auto comma = store.append_bench_run(bench_record(k_t0, {"a,b"}));
  ASSERT_FALSE(comma);
  EXPECT_NE(comma.error().message.find("'a,b'"), std::string::npos) << comma.error().line();
  auto listed = store.bench_runs(10);
  ASSERT_TRUE(listed);
  EXPECT_TRUE(listed->empty());
}

TEST(SampleStore, OnlyTheNewestBenchRunsAreKeptAndIdsAreNotReused) {
  TempDir tmp;
  auto store = open_ok(tmp.path());
  std::int64_t last = 0;
  for (std::int64_t i = 0; i < SampleStore::k_max_bench_runs_kept + 5; ++i) {
    auto id = store.append_bench_run(bench_record(k_t0 + i, {fmt::format("m{}", i)}));
    ASSERT_TRUE(id) << id.error().line();
    ASSERT_GT(*id, last);
    last = *id;
  }
  RawDb raw(tmp.path() / "samples.db");
  EXPECT_EQ(raw.integer("SELECT count(*) FROM bench_runs"), SampleStore::k_max_bench_runs_kept);
  EXPECT_EQ(raw.integer("SELECT min(id) FROM bench_runs"), last - SampleStore::k_max_bench_runs_kept + 1);
  auto listed = store.bench_runs(1000);
  ASSERT_TRUE(listed);
  EXPECT_EQ(listed->size(), static_cast<std::size_t>(SampleStore::k_max_bench_runs_kept));
  EXPECT_EQ(listed->front().id, last);
  auto oldest = store.bench_run(1);
  ASSERT_TRUE(oldest);
  EXPECT_FALSE(oldest->has_value());
  // The oldest gone, a new run still gets a new id.
  raw.exec("DELETE FROM bench_runs");
  auto again = store.append_bench_run(bench_record(k_t0, {"m"}));
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, last + 1);
}

TEST(SampleStore, BenchRunsAreKeptUnderTheirTotalSizeTheNewestAlways) {
  TempDir tmp;
  auto store = open_ok(tmp.path());
  const std::string big(SampleStore::k_max_bench_run_json, 'x');  // 32 MiB: two fill the total
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(store.append_bench_run(bench_record(k_t0 + i, {"m"}, big)));
  }
  auto listed = store.bench_runs(10);
  ASSERT_TRUE(listed);
  EXPECT_EQ(listed->size(), 2U);
  ASSERT_TRUE(store.append_bench_run(bench_record(k_t0 + 3, {"m"}, "{}")));
  listed = store.bench_runs(10);
  ASSERT_TRUE(listed);
  EXPECT_EQ(listed->size(), 2U);  // 32 MiB + 2 bytes: the older big one no longer fits beside them
  EXPECT_EQ(listed->front().started_at_ms, k_t0 + 3);
}

TEST(SampleStore, AHistoryWithoutBenchRunsGainsTheTable) {
  TempDir tmp;
  {
    auto store = open_ok(tmp.path());
    ASSERT_TRUE(store.append({server_sample("ollama", k_t0, 42)}));
  }
  {
    RawDb raw(tmp.path() / "samples.db");
    raw.exec("DROP TABLE bench_runs");
  }
  auto store = open_ok(tmp.path());
  EXPECT_EQ(raw_ok(store, "ollama").size(), 1U);
  ASSERT_TRUE(store.append_bench_run(bench_record(k_t0, {"m"})));
  RawDb raw(tmp.path() / "samples.db");
  EXPECT_EQ(raw.text("SELECT value FROM meta WHERE key = 'schema_version'"), "1");
}
