// The sample history as `memwarden history --samples` and /api/v1/samples show it.
#include <gtest/gtest.h>

#include "cli/history.hpp"
#include "test_support.hpp"

using namespace mw;
using namespace mw::cli;
using namespace mw::engine;

namespace {

constexpr std::int64_t k_t0 = 1'800'000'000'000;  // a whole minute

adapters::StoredSample row(std::int64_t at_ms, std::optional<std::uint64_t> anon) {
  adapters::StoredSample s;
  s.at_ms = at_ms;
  s.subject = "ollama";
  s.anon = anon;
  s.working_set = anon;
  return s;
}

}  // namespace

TEST(SampleHistory, RawCoversTheLastHourAndAggregatesTheWholeWindow) {
  test::TempDir dir;
  auto store = adapters::SampleStore::open(dir.path(), {});
  ASSERT_TRUE(store) << store.error().line();
  // one sample a minute for three hours
  std::vector<adapters::StoredSample> batch;
  for (int m = 0; m < 180; ++m) {
    batch.push_back(row(k_t0 + m * 60'000LL, (std::uint64_t{1000} + static_cast<std::uint64_t>(m)) << 20));
  }
  ASSERT_TRUE(store->append(batch));
  ASSERT_TRUE(store->maintain(k_t0 + 181 * 60'000LL));
  const auto until = k_t0 + 180 * 60'000LL;
  auto window = read_samples(*store, "ollama", until - 3 * 3'600'000LL, until);
  ASSERT_TRUE(window) << window.error().line();
  EXPECT_EQ(window->raw.size(), 60U);  // the last hour only
  EXPECT_EQ(window->raw.front().at_ms, until - 3'600'000);
  EXPECT_EQ(window->aggregates.size(), 180U);
  const auto doc = samples_to_json(*window);
  EXPECT_EQ(doc["schema"], "memwarden.samples/1");
  EXPECT_EQ(doc["raw"].size(), 60U);
  EXPECT_EQ(doc["raw"][0]["anon_bytes"], (std::uint64_t{1000} + 120) << 20);
  EXPECT_TRUE(doc["raw"][0]["limit_bytes"].is_null());  // unknown, not 0
  EXPECT_EQ(doc["aggregates"][0]["count"], 1);
}

TEST(SampleHistory, TheTableShowsMissingValuesAsDashes) {
  SampleWindow w;
  w.subject = "ollama";
  w.since_ms = k_t0;
  w.until_ms = k_t0 + 120'000;
  w.raw = {row(k_t0, std::nullopt), row(k_t0 + 1000, 26ULL << 20)};
  const auto text = render_samples(w);
  EXPECT_NE(text.find("ollama raw, newest 2 of 2"), std::string::npos) << text;
  EXPECT_NE(text.find("26.0 MiB"), std::string::npos) << text;
  EXPECT_EQ(text.find(" 0 B"), std::string::npos) << text;
  EXPECT_NE(text.find(" -"), std::string::npos) << text;
  w.raw.clear();
  EXPECT_NE(render_samples(w).find("no samples of ollama"), std::string::npos);
}
