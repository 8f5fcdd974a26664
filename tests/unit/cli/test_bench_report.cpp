// `memwarden bench` reports: the CSV (a row per request, RFC 4180 quoting, the formula guard, empty fields for
// missing figures) and the HTML page (escaped text, the charts and their series, no network, gaps in lines).
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "cli/bench_report.hpp"
#include "core/bytes.hpp"

using namespace mw;
using namespace mw::cli;

namespace {

BenchSample sample(std::size_t concurrency, std::size_t repetition) {
  BenchSample s;
  s.concurrency = concurrency;
  s.repetition = repetition;
  s.start_s = 1.5 + static_cast<double>(repetition);
  s.ok = true;
  s.ttft_s = 0.1 * static_cast<double>(concurrency);
  s.itl_mean_s = 0.02;
  s.itl_p90_s = 0.03;
  s.tpot_s = 0.02;
  s.e2e_s = 2.64;
  s.output_tokens = 128;
  s.output_tokens_per_s = 128 / 2.64;
  s.decode_tokens_per_s = 50;
  s.prompt_tokens = 256;
  s.eval_count = 128;
  s.eval_s = 2.5;
  s.prompt_eval_s = 0.05;
  s.load_s = 0.001;
  return s;
}

BenchLevel level(std::size_t concurrency) {
  BenchLevel l;
  l.concurrency = concurrency;
  l.ttft_s.count = 3;
  l.ttft_s.median = 0.1 * static_cast<double>(concurrency);
  l.ttft_s.p90 = 0.15 * static_cast<double>(concurrency);
  l.ttft_s.p99 = 0.2 * static_cast<double>(concurrency);
  l.throughput.completed = 3 * concurrency;
  l.throughput.output_tokens_per_s = 40.0 * static_cast<double>(concurrency);
  l.throughput.requests_per_s = 0.5;
  return l;
}

BenchModel model(const std::string& name) {
  BenchModel m;
  m.model = name;
  m.planned_ram = 2 * k_gib;
  m.loaded_ram = 2 * k_gib + 100 * k_mib;
  for (const std::size_t c : {std::size_t{1}, std::size_t{2}}) {
    for (std::size_t r = 0; r < 2 * c; ++r) {
      m.samples.push_back(sample(c, r));
    }
    m.levels.push_back(level(c));
  }
  m.verdicts = {{"temperature", VerdictOutcome::pass, "sustained 60 °C"},
                {"RAM", VerdictOutcome::fail, "too much"},
                {"gpu utilisation", VerdictOutcome::unknown, "no GPU"}};
  return m;
}

// 2 models, levels 1 and 2, a 20-point timeline with `gpus` GPUs (0: none).
BenchRun run_with(unsigned gpus) {
  BenchRun run;
  run.started_at_ms = 1764930000000;  // 2025-12-05T10:20:00Z
  run.server = "ollama";
  run.settings.concurrency = {1, 2};
  run.models = {model("llama3.2:3b"), model("qwen2.5:7b")};
  for (int i = 0; i < 20; ++i) {
    BenchPoint p;
    p.t_s = i;
    p.anon = static_cast<std::uint64_t>(i) * 100 * k_mib;
    p.working_set = static_cast<std::uint64_t>(i) * 120 * k_mib;
    p.mem_available = 30 * k_gib;
    for (unsigned g = 0; g < gpus; ++g) {
      BenchGpuPoint gp;
      gp.index = g;
      gp.vram_used = static_cast<std::uint64_t>(i) * k_gib / 4;
      gp.temperature_c = 40U + static_cast<unsigned>(i) * 2;
      p.gpus.push_back(gp);
    }
    run.timeline.push_back(p);
  }
  run.marks = {{"llama3.2:3b", BenchPhase::load, 0, 1, 3},
               {"llama3.2:3b", BenchPhase::level, 1, 3, 6},
               {"llama3.2:3b", BenchPhase::level, 2, 6, 9},
               {"llama3.2:3b", BenchPhase::unload, 0, 9, 10},
               {"qwen2.5:7b", BenchPhase::cooldown, 0, 10, 12}};
  return run;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::size_t begin = 0;
  while (begin < text.size()) {
    const auto end = text.find('\n', begin);
    out.push_back(text.substr(begin, end - begin));
    begin = end == std::string::npos ? text.size() : end + 1;
  }
  return out;
}

// The charts of a page: data-chart → {data-series, the series elements inside}.
std::map<std::string, std::pair<int, int>> charts(const std::string& html) {
  std::map<std::string, std::pair<int, int>> out;
  const std::regex open(R"re(<svg class="chart" data-chart="([a-z]+)" data-series="([0-9]+)")re");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), open); it != std::sregex_iterator(); ++it) {
    const auto from = static_cast<std::size_t>(it->position());
    const auto to = html.find("</svg>", from);
    const std::string body = html.substr(from, to - from);
    int count = 0;
    for (auto at = body.find("class=\"series\""); at != std::string::npos; at = body.find("class=\"series\"", at + 1)) {
      ++count;
    }
    out[(*it)[1]] = {std::stoi((*it)[2]), count};
  }
  return out;
}

// The d attribute of the series path named `name` in chart `chart`.
std::string path_of(const std::string& html, const std::string& chart, const std::string& name) {
  const auto from = html.find("data-chart=\"" + chart + "\"");
  const auto to = html.find("</svg>", from);
  const auto at = html.find("<path class=\"series\" data-name=\"" + name + "\"", from);
  if (from == std::string::npos || at == std::string::npos || at > to) {
    return "";
  }
  const auto d = html.find(" d=\"", at) + 4;
  return html.substr(d, html.find('"', d) - d);
}

int count_of(const std::string& text, char c) {
  return static_cast<int>(std::count(text.begin(), text.end(), c));
}

}  // namespace

TEST(BenchReportCsv, HeaderAndARowPerSample) {
  auto run = run_with(0);
  BenchModel skipped;
  skipped.model = "too-big:70b";
  skipped.status = BenchModelStatus::skipped;
  skipped.reason = "does not fit";
  run.models.push_back(skipped);
  const auto rows = lines(bench_csv(run));
  ASSERT_EQ(rows.size(), 1 + 6 + 6U);  // the skipped model has no row
  EXPECT_EQ(rows[0],
            "run_started_at,server,api,model,concurrency,repetition,ok,error,start_s,ttft_s,itl_mean_s,itl_p90_s,"
            "tpot_s,e2e_s,output_tokens,output_tokens_per_s,decode_tokens_per_s,prompt_tokens,server_eval_count,"
            "server_eval_s,server_tokens_per_s,server_prompt_eval_s,server_load_s");
  EXPECT_EQ(rows[1],
            "2025-12-05T10:20:00Z,ollama,ollama,llama3.2:3b,1,0,true,,1.5,0.1,0.02,0.03,0.02,2.64,128,48.484848,50,256,"
            "128,2.5,51.2,0.05,0.001");
  EXPECT_EQ(rows[4].substr(0, 52), "2025-12-05T10:20:00Z,ollama,ollama,llama3.2:3b,2,1,t");
  for (const auto& r : rows) {
    EXPECT_EQ(std::count(r.begin(), r.end(), ','), 22) << r;
  }
}

TEST(BenchReportCsv, MissingFiguresAreEmptyNotZero) {
  auto run = run_with(0);
  run.models.resize(1);
  run.models[0].samples.resize(1);
  BenchSample& s = run.models[0].samples[0];
  s = BenchSample{};
  s.concurrency = 2;
  s.repetition = 3;
  s.start_s = 4.25;
  s.error = "connection refused";
  const auto rows = lines(bench_csv(run));
  ASSERT_EQ(rows.size(), 2U);
  EXPECT_EQ(rows[1], "2025-12-05T10:20:00Z,ollama,ollama,llama3.2:3b,2,3,false,connection refused,4.25,,,,,,0,,,,,,,,");
}

TEST(BenchReportCsv, QuotesAsRfc4180) {
  EXPECT_EQ(csv_field("plain"), "plain");
  EXPECT_EQ(csv_field("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(csv_field("line\nbreak"), "\"line\nbreak\"");
  EXPECT_EQ(csv_field("cr\rhere"), "\"cr\rhere\"");
  EXPECT_EQ(csv_field(""), "");

  auto run = run_with(0);
  run.server = "my,server";
  run.models[0].samples[0].ok = false;
  run.models[0].samples[0].error = "HTTP 500: \"boom\",\nthen more";
  const auto csv = bench_csv(run);
  EXPECT_NE(csv.find(",\"my,server\",ollama,llama3.2:3b,1,0,false,\"HTTP 500: \"\"boom\"\",\nthen more\",1.5,"),
            std::string::npos)
      << csv;
}

TEST(BenchReportCsv, GuardsAgainstFormulas) {
  EXPECT_EQ(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
  EXPECT_EQ(csv_field("+1"), "'+1");
  EXPECT_EQ(csv_field("-2+3"), "'-2+3");
  EXPECT_EQ(csv_field("@SUM(A1)"), "'@SUM(A1)");
  EXPECT_EQ(csv_field("\tx"), "'\tx");
  EXPECT_EQ(csv_field("a=b"), "a=b");
  EXPECT_EQ(csv_field("-1", false), "-1");

  auto run = run_with(0);
  run.models[0].model = "@evil";
  run.models[0].samples[0].error = "=cmd|' /C calc'!A0";
  const auto rows = lines(bench_csv(run));
  EXPECT_EQ(rows[1].substr(0, 66), "2025-12-05T10:20:00Z,ollama,ollama,'@evil,1,0,true,'=cmd|' /C calc");
}

TEST(BenchReportHtml, EscapesTextFromOutside) {
  EXPECT_EQ(html_escape("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  auto run = run_with(1);
  const std::string evil = "<img src=x onerror=alert(1)>";
  run.server = evil;
  run.url = evil;
  run.models[0].model = evil;
  run.models[0].reason = evil;
  run.models[0].processor = evil;
  run.models[0].samples[0].ok = false;
  run.models[0].samples[0].error = evil;
  run.models[0].verdicts[0].detail = evil;
  run.marks[1].model = evil;
  run.notes = {evil};
  const auto html = bench_html(run);
  EXPECT_EQ(html.find("<img"), std::string::npos);  // only as text: &lt;img …&gt;
  EXPECT_NE(html.find("&lt;img src=x onerror=alert(1)&gt;"), std::string::npos);
}

TEST(BenchReportHtml, ChartsHaveTheirSeries) {
  const auto html = bench_html(run_with(3));
  const auto found = charts(html);
  const std::map<std::string, std::pair<int, int>> expected{
      {"throughput", {2, 2}}, {"latency", {3, 3}}, {"memory", {3, 3}}, {"vram", {3, 3}}, {"temperature", {3, 3}}};
  EXPECT_EQ(found, expected);
  // The limit is a dashed line, not a series; the phases are shaded bands.
  EXPECT_NE(html.find("<line class=\"limit\""), std::string::npos);
  EXPECT_NE(html.find("<rect class=\"mark\" data-phase=\"load\""), std::string::npos);
  EXPECT_NE(html.find("<rect class=\"mark\" data-phase=\"level\""), std::string::npos);
  EXPECT_NE(html.find("<rect class=\"mark\" data-phase=\"cooldown\""), std::string::npos);
  EXPECT_NE(html.find("llama3.2:3b, c=2"), std::string::npos);
  EXPECT_NE(html.find("TTFT p99"), std::string::npos);
  EXPECT_NE(html.find("<span class=\"badge fail\">fail</span>"), std::string::npos);
}

TEST(BenchReportHtml, WithoutGpusNoGpuCharts) {
  auto run = run_with(0);
  run.timeline[5].working_set.reset();
  for (auto& p : run.timeline) {
    p.mem_available.reset();  // a series without any value is left out
  }
  const auto html = bench_html(run);
  const std::map<std::string, std::pair<int, int>> expected{
      {"throughput", {2, 2}}, {"latency", {3, 3}}, {"memory", {2, 2}}};
  EXPECT_EQ(charts(html), expected);
  EXPECT_NE(html.find("No GPU data (NVML)"), std::string::npos);
  EXPECT_EQ(html.find("data-chart=\"vram\""), std::string::npos);
  EXPECT_EQ(html.find("data-chart=\"temperature\""), std::string::npos);
}

TEST(BenchReportHtml, NoNetwork) {
  auto run = run_with(2);
  const auto html = bench_html(run);
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("href="), std::string::npos);
  EXPECT_EQ(html.find("url("), std::string::npos);
  EXPECT_NE(html.find("Content-Security-Policy\" content=\"default-src 'none'"), std::string::npos);
  // The server's URL is shown as text, never as a link.
  run.url = "http://127.0.0.1:11434";
  const auto with_url = bench_html(run);
  const auto at = with_url.find("http://");
  ASSERT_NE(at, std::string::npos);
  EXPECT_EQ(with_url.find("http://", at + 1), std::string::npos);
  EXPECT_NE(with_url.find("<td class=\"text\">http://127.0.0.1:11434</td>"), std::string::npos);
  EXPECT_EQ(with_url.find("href="), std::string::npos);
}

TEST(BenchReportHtml, AGapSplitsALine) {
  auto run = run_with(1);
  const auto whole = path_of(bench_html(run), "memory", "container anon");
  EXPECT_EQ(count_of(whole, 'M'), 1) << whole;
  run.timeline[7].anon.reset();
  run.timeline[8].anon.reset();
  run.timeline[12].gpus[0].temperature_c.reset();
  const auto html = bench_html(run);
  const auto split = path_of(html, "memory", "container anon");
  EXPECT_EQ(count_of(split, 'M'), 2) << split;
  EXPECT_EQ(count_of(split, 'L'), 20 - 2 - 2) << split;  // 7 points then 11: 6 + 10 lines
  EXPECT_EQ(count_of(path_of(html, "temperature", "GPU 0"), 'M'), 2);
  // The other series keep every point, none drops to 0.
  EXPECT_EQ(count_of(path_of(html, "memory", "container working set"), 'M'), 1);
}

TEST(BenchReportHtml, ALonePointIsADot) {
  auto run = run_with(0);
  for (std::size_t i = 0; i < run.timeline.size(); ++i) {
    if (i != 10) {
      run.timeline[i].anon.reset();
    }
  }
  const auto d = path_of(bench_html(run), "memory", "container anon");
  EXPECT_EQ(count_of(d, 'M'), 1) << d;
  EXPECT_EQ(count_of(d, 'L'), 1) << d;
}

TEST(BenchReportHtml, InterruptedAndMissingFigures) {
  auto run = run_with(0);
  run.interrupted = true;
  run.models[1].levels[1].interrupted = true;
  run.models[1].levels[1].ttft_s = SampleSummary{};
  run.models[1].load_s.reset();
  const auto html = bench_html(run);
  EXPECT_NE(html.find("partial results"), std::string::npos);
  EXPECT_NE(html.find("data-interrupted=\"yes\""), std::string::npos);
  EXPECT_NE(html.find("<th>load time</th><td class=\"text wrap\">\u2013</td>"), std::string::npos);
  EXPECT_NE(html.find("<td>\u2013</td><td>\u2013</td><td>\u2013</td>"), std::string::npos);  // TTFT p50/p90/p99
  EXPECT_EQ(html.find("NaN"), std::string::npos);
  EXPECT_EQ(html.find("nan "), std::string::npos);
}

TEST(BenchReportHtml, EmptyRun) {
  BenchRun run;
  const auto html = bench_html(run);
  EXPECT_TRUE(charts(html).empty());
  EXPECT_NE(html.find("No timeline was recorded"), std::string::npos);
  EXPECT_EQ(lines(bench_csv(run)).size(), 1U);
}

TEST(BenchReportHtml, AWideLegendWraps) {
  auto run = run_with(0);
  run.settings.concurrency.clear();
  for (auto& m : run.models) {
    m.levels.clear();
  }
  for (std::size_t c = 1; c <= k_max_bench_levels; ++c) {
    run.settings.concurrency.push_back(c * 16);
    for (auto& m : run.models) {
      m.levels.push_back(level(c * 16));
    }
  }
  const auto html = bench_html(run);
  EXPECT_EQ(charts(html).at("throughput"), std::make_pair(16, 16));
  const std::regex view(R"re(data-chart="throughput" data-series="16" viewBox="0 0 960 ([0-9.]+)")re");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(html, m, view));
  EXPECT_GT(std::stod(m[1]), 330);  // a second row of legend
}

TEST(BenchReport, NotANumberIsMissing) {
  auto run = run_with(0);
  run.models[0].samples[0].ttft_s = std::numeric_limits<double>::quiet_NaN();
  run.models[0].levels[0].ttft_s.median = std::numeric_limits<double>::infinity();
  run.models[0].levels[0].throughput.output_tokens_per_s = std::numeric_limits<double>::quiet_NaN();
  const std::string prefix = "2025-12-05T10:20:00Z,ollama,ollama,llama3.2:3b,1,0,true,,1.5,,0.02,";
  EXPECT_EQ(lines(bench_csv(run))[1].substr(0, prefix.size()), prefix);
  const auto html = bench_html(run);
  EXPECT_EQ(html.find("nan"), std::string::npos);
  EXPECT_EQ(html.find("inf "), std::string::npos);
}
