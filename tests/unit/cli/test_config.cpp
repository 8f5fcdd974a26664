// parse_config / load_config / example_config: defaults, every section, and
// every kind of mistake with its exact line:column.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>

#include <fstream>
#include <sstream>

#include "cli/config.hpp"
#include "core/profile.hpp"
#include "test_support.hpp"

using namespace mw;
using namespace mw::cli;
using namespace mw::engine;
using namespace std::chrono_literals;
using test::TempDir;

namespace {

// Every field of two profiles.
void expect_same_profile(const Profile& a, const Profile& b) {
  SCOPED_TRACE(a.name);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.description, b.description);
  EXPECT_EQ(a.api, b.api);
  EXPECT_EQ(a.models, b.models);
  EXPECT_EQ(a.context_length, b.context_length);
  EXPECT_EQ(a.parallel, b.parallel);
  EXPECT_EQ(a.max_loaded_models, b.max_loaded_models);
  EXPECT_EQ(a.kv_type, b.kv_type);
  EXPECT_EQ(a.keep_alive, b.keep_alive);
  EXPECT_EQ(a.image, b.image);
  EXPECT_EQ(a.tag, b.tag);
  EXPECT_EQ(a.gpu, b.gpu);
  EXPECT_EQ(a.mode, b.mode);
  EXPECT_EQ(a.port, b.port);
  EXPECT_EQ(a.container_port, b.container_port);
  EXPECT_EQ(a.store_volume, b.store_volume);
  EXPECT_EQ(a.store_path, b.store_path);
  EXPECT_EQ(a.seed_limit_bytes, b.seed_limit_bytes);
}

// Every setting of two configurations, field by field (the source aside).
void expect_same(const ServeConfig& a, const ServeConfig& b) {
  EXPECT_EQ(a.interval, b.interval);
  EXPECT_EQ(a.listen, b.listen);
  EXPECT_EQ(a.allow_remote, b.allow_remote);
  EXPECT_EQ(a.token_file, b.token_file);
  EXPECT_EQ(a.state_dir, b.state_dir);
  EXPECT_EQ(a.docker_host, b.docker_host);
  EXPECT_EQ(a.docker_timeout, b.docker_timeout);
  EXPECT_EQ(a.api_timeout, b.api_timeout);
  EXPECT_EQ(a.nvml_library, b.nvml_library);
  EXPECT_EQ(a.servers, b.servers);

  const auto& t = a.thresholds;
  const auto& u = b.thresholds;
  EXPECT_EQ(t.base_allowance, u.base_allowance);
  EXPECT_EQ(t.bloat_margin, u.bloat_margin);
  EXPECT_DOUBLE_EQ(t.bloat_margin_fraction, u.bloat_margin_fraction);
  EXPECT_EQ(t.bloat_hold, u.bloat_hold);
  EXPECT_EQ(t.growth_min_samples, u.growth_min_samples);
  EXPECT_EQ(t.growth_min_span, u.growth_min_span);
  EXPECT_DOUBLE_EQ(t.growth_min_mib_per_hour, u.growth_min_mib_per_hour);
  EXPECT_EQ(t.growth_min_rise, u.growth_min_rise);
  EXPECT_EQ(t.growth_critical_forecast, u.growth_critical_forecast);
  EXPECT_EQ(t.orphan_min_rss, u.orphan_min_rss);
  EXPECT_EQ(t.orphan_hold, u.orphan_hold);
  EXPECT_EQ(t.reserve, u.reserve);
  EXPECT_EQ(t.swap_warn, u.swap_warn);
  EXPECT_DOUBLE_EQ(t.psi_full_avg10_pct, u.psi_full_avg10_pct);
  EXPECT_DOUBLE_EQ(t.page_cache_fraction, u.page_cache_fraction);
  EXPECT_EQ(t.page_cache_min, u.page_cache_min);

  const auto& p = a.policy;
  const auto& q = b.policy;
  EXPECT_EQ(p.cooldown, q.cooldown);
  EXPECT_EQ(p.restart_budget, q.restart_budget);
  EXPECT_EQ(p.budget_window, q.budget_window);
  EXPECT_EQ(p.drain_timeout, q.drain_timeout);
  EXPECT_EQ(p.health_timeout, q.health_timeout);
  EXPECT_EQ(p.stop_timeout, q.stop_timeout);
  EXPECT_EQ(p.settle, q.settle);
  EXPECT_EQ(p.allowlist, q.allowlist);
  EXPECT_EQ(a.auto_fix, b.auto_fix);
  EXPECT_EQ(a.systemd_unit, b.systemd_unit);
  EXPECT_EQ(a.optimize_auto, b.optimize_auto);
  EXPECT_EQ(a.optimize_interval, b.optimize_interval);

  EXPECT_EQ(a.raw_retention, b.raw_retention);
  EXPECT_EQ(a.aggregate_retention, b.aggregate_retention);
  EXPECT_EQ(a.history_max_bytes, b.history_max_bytes);

  ASSERT_EQ(a.notify_targets.size(), b.notify_targets.size());
  for (std::size_t i = 0; i < a.notify_targets.size(); ++i) {
    EXPECT_EQ(a.notify_targets[i].name, b.notify_targets[i].name);
    EXPECT_EQ(a.notify_targets[i].kind, b.notify_targets[i].kind);
    EXPECT_EQ(a.notify_targets[i].url, b.notify_targets[i].url);
  }
  EXPECT_EQ(a.notify_min_interval, b.notify_min_interval);
  EXPECT_EQ(a.notify_min_severity, b.notify_min_severity);

  ASSERT_EQ(a.profiles.size(), b.profiles.size());
  for (std::size_t i = 0; i < a.profiles.size(); ++i) {
    expect_same_profile(a.profiles[i], b.profiles[i]);
  }
}

ServeConfig parse_ok(const std::string& yaml) {
  auto parsed = parse_config(yaml, "test.yaml");
  if (!parsed) {
    std::string all;
    for (const auto& e : parsed.error()) {
      all += e.text() + "\n";
    }
    ADD_FAILURE() << "unexpected errors:\n" << all;
    return ServeConfig{};
  }
  return *parsed;
}

// The errors' texts, in order.
std::vector<std::string> errors_of(const std::string& yaml) {
  auto parsed = parse_config(yaml, "test.yaml");
  EXPECT_FALSE(parsed.has_value()) << "expected errors for:\n" << yaml;
  std::vector<std::string> out;
  if (!parsed) {
    for (const auto& e : parsed.error()) {
      out.push_back(e.text());
    }
  }
  return out;
}

std::string one_error(const std::string& yaml) {
  auto errors = errors_of(yaml);
  EXPECT_EQ(errors.size(), 1U) << ::testing::PrintToString(errors);
  return errors.empty() ? "" : errors.front();
}

}  // namespace

// ---- defaults

TEST(ServeConfig, DefaultsMirrorTheCommandLine) {
  const ServeConfig c;
  EXPECT_EQ(c.interval, 1s);
  EXPECT_EQ(c.listen, "127.0.0.1:9490");
  EXPECT_FALSE(c.allow_remote);
  EXPECT_EQ(c.token_file, "");
  EXPECT_EQ(c.state_dir, "/var/lib/memwarden");
  EXPECT_EQ(c.docker_timeout, 2s);
  EXPECT_EQ(c.api_timeout, 2s);
  EXPECT_EQ(c.thresholds.reserve, 4ULL << 30);
  EXPECT_EQ(c.policy.cooldown, 10min);
  EXPECT_EQ(c.policy.restart_budget, 3U);
  EXPECT_EQ(c.auto_fix, AutoFix::on);
  EXPECT_EQ(c.systemd_unit, "ollama.service");
  EXPECT_EQ(c.raw_retention, 48h);
  EXPECT_EQ(c.aggregate_retention, 30 * 24h);
  EXPECT_EQ(c.history_max_bytes, 256ULL << 20);
  EXPECT_EQ(c.notify_min_interval, 10min);
  EXPECT_EQ(c.notify_min_severity, Severity::warning);
}

TEST(ServeConfig, EmptyDocumentMeansDefaults) {
  for (const std::string text : {"", "\n", "# nothing here\n", "---\n"}) {
    SCOPED_TRACE(text);
    const auto c = parse_ok(text);
    expect_same(c, ServeConfig{});
    EXPECT_EQ(c.source, "test.yaml");
  }
}

TEST(ServeConfig, EmptySectionsKeepTheirDefaults) {
  expect_same(parse_ok("detect:\nfix:\nhistory: {}\nnotify:\n"), ServeConfig{});
}

TEST(ServeConfig, ExampleConfigParsesToTheDefaults) {
  const auto text = example_config();
  EXPECT_NE(text.find("interval: 1s"), std::string::npos);
  EXPECT_NE(text.find("auto: on"), std::string::npos);
  EXPECT_NE(text.find("reserve: 4GiB"), std::string::npos);
  expect_same(parse_ok(text), ServeConfig{});
}

TEST(ServeConfig, PackagedExampleIsExampleConfig) {
  const auto path = std::filesystem::path(MEMWARDEN_FIXTURES_DIR) / ".." / ".." / "packaging" / "memwarden.yaml";
  std::ifstream in(path);
  ASSERT_TRUE(in) << "cannot read " << path;
  std::ostringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), example_config()) << "regenerate packaging/memwarden.yaml from example_config()";
}

// ---- every section

TEST(ServeConfig, TopLevelKeys) {
  const auto c = parse_ok(R"(
interval: 500ms
listen: "[::1]:9000"
token_file: /etc/memwarden/token
state_dir: /srv/memwarden
docker_host: tcp://10.0.0.2:2375
docker_timeout: 5s
api_timeout: 1.5s
nvml_library: /usr/lib/libnvidia-ml.so.1
servers: [ollama-gpu, 3f1c]
)");
  EXPECT_EQ(c.interval, 500ms);
  EXPECT_EQ(c.listen, "[::1]:9000");
  EXPECT_FALSE(c.allow_remote);
  EXPECT_EQ(c.token_file, "/etc/memwarden/token");
  EXPECT_EQ(c.state_dir, "/srv/memwarden");
  EXPECT_EQ(c.docker_host, "tcp://10.0.0.2:2375");
  EXPECT_EQ(c.docker_timeout, 5s);
  EXPECT_EQ(c.api_timeout, 1500ms);
  EXPECT_EQ(c.nvml_library, "/usr/lib/libnvidia-ml.so.1");
  EXPECT_EQ(c.servers, (std::vector<std::string>{"ollama-gpu", "3f1c"}));
}

TEST(ServeConfig, DetectSection) {
  const auto c = parse_ok(R"(
detect:
  base_allowance: 2G
  bloat_margin: 512MiB
  bloat_margin_fraction: 0.25
  bloat_hold: 30s
  growth_min_samples: 12
  growth_min_span: 1m
  growth_min_mib_per_hour: 100.5
  growth_min_rise: 64M
  growth_critical_forecast: 2h
  orphan_min_rss: 128MiB
  orphan_hold: 5s
  reserve: 8GiB
  swap_warn: 2G
  psi_full_avg10_pct: 15
  page_cache_fraction: 0.75
  page_cache_min: 1G
)");
  const auto& t = c.thresholds;
  EXPECT_EQ(t.base_allowance, 2ULL << 30);
  EXPECT_EQ(t.bloat_margin, 512ULL << 20);
  EXPECT_DOUBLE_EQ(t.bloat_margin_fraction, 0.25);
  EXPECT_EQ(t.bloat_hold, 30s);
  EXPECT_EQ(t.growth_min_samples, 12U);
  EXPECT_EQ(t.growth_min_span, 1min);
  EXPECT_DOUBLE_EQ(t.growth_min_mib_per_hour, 100.5);
  EXPECT_EQ(t.growth_min_rise, 64ULL << 20);
  EXPECT_EQ(t.growth_critical_forecast, 2h);
  EXPECT_EQ(t.orphan_min_rss, 128ULL << 20);
  EXPECT_EQ(t.orphan_hold, 5s);
  EXPECT_EQ(t.reserve, 8ULL << 30);
  EXPECT_EQ(t.swap_warn, 2ULL << 30);
  EXPECT_DOUBLE_EQ(t.psi_full_avg10_pct, 15.0);
  EXPECT_DOUBLE_EQ(t.page_cache_fraction, 0.75);
  EXPECT_EQ(t.page_cache_min, 1ULL << 30);
}

TEST(ServeConfig, FixSection) {
  const auto c = parse_ok(R"(
fix:
  auto: dry-run
  allow: [ollama-cpu, ollama-gpu]
  cooldown: 5m
  budget: 1
  budget_window: 2h
  drain_timeout: 30s
  health_timeout: 90s
  stop_timeout: 20s
  settle: 1s
  systemd_unit: ollama-custom.service
)");
  EXPECT_EQ(c.auto_fix, AutoFix::dry_run);
  EXPECT_EQ(c.policy.allowlist, (std::vector<std::string>{"ollama-cpu", "ollama-gpu"}));
  EXPECT_EQ(c.policy.cooldown, 5min);
  EXPECT_EQ(c.policy.restart_budget, 1U);
  EXPECT_EQ(c.policy.budget_window, 2h);
  EXPECT_EQ(c.policy.drain_timeout, 30s);
  EXPECT_EQ(c.policy.health_timeout, 90s);
  EXPECT_EQ(c.policy.stop_timeout, 20s);
  EXPECT_EQ(c.policy.settle, 1s);
  EXPECT_EQ(c.systemd_unit, "ollama-custom.service");
  EXPECT_EQ(parse_ok("fix:\n  auto: off\n").auto_fix, AutoFix::off);
  EXPECT_EQ(parse_ok("fix:\n  auto: on\n").auto_fix, AutoFix::on);
}

TEST(ServeConfig, OptimizeSection) {
  const ServeConfig defaults;
  EXPECT_EQ(defaults.optimize_auto, OptimizeAuto::suggest) << "it only reports";
  EXPECT_EQ(defaults.optimize_interval, 10min);
  const auto c = parse_ok("optimize:\n  auto: off\n  interval: 30m\n");
  EXPECT_EQ(c.optimize_auto, OptimizeAuto::off);
  EXPECT_EQ(c.optimize_interval, 30min);
  EXPECT_EQ(parse_ok("optimize:\n  auto: suggest\n").optimize_auto, OptimizeAuto::suggest);
  EXPECT_EQ(to_string(OptimizeAuto::suggest), std::string("suggest"));
}

TEST(ServeConfigErrors, OptimizeKeysSayWhatIsWrong) {
  EXPECT_EQ(one_error("optimize:\n  auto: on\n"), "test.yaml:2:9: optimize.auto: 'on' is not off or suggest");
  EXPECT_NE(one_error("optimize:\n  interval: 0s\n").find("optimize.interval"), std::string::npos);
  EXPECT_EQ(one_error("optimize:\n  intervall: 5m\n"),
            "test.yaml:2:3: unknown key 'intervall' in optimize; did you mean 'interval'?");
}

TEST(ServeConfig, HistorySectionWithDays) {
  const auto c = parse_ok("history:\n  raw_retention: 12h\n  aggregate_retention: 90d\n  max_size: 1.5GiB\n");
  EXPECT_EQ(c.raw_retention, 12h);
  EXPECT_EQ(c.aggregate_retention, 90 * 24h);
  EXPECT_EQ(c.history_max_bytes, 3ULL << 29);
  EXPECT_EQ(parse_ok("history:\n  raw_retention: 1.5d\n").raw_retention, 36h);
}

TEST(ServeConfig, NotifySection) {
  const auto c = parse_ok(R"(
notify:
  min_severity: critical
  min_interval: 30m
  targets:
    - name: phone
      kind: ntfy
      url: https://ntfy.sh/topic
    - kind: discord
      url: "https://discord.com/api/webhooks/1/x"
    - name: ops
      kind: generic
      url: http://10.0.0.5:8080/hook
)");
  EXPECT_EQ(c.notify_min_severity, Severity::critical);
  EXPECT_EQ(c.notify_min_interval, 30min);
  ASSERT_EQ(c.notify_targets.size(), 3U);
  EXPECT_EQ(c.notify_targets[0].name, "phone");
  EXPECT_EQ(c.notify_targets[0].kind, "ntfy");
  EXPECT_EQ(c.notify_targets[0].url, "https://ntfy.sh/topic");
  EXPECT_EQ(c.notify_targets[1].name, "discord");  // a target without a name is named after its kind
  EXPECT_EQ(c.notify_targets[2].url, "http://10.0.0.5:8080/hook");
  EXPECT_EQ(parse_ok("notify:\n  min_severity: info\n").notify_min_severity, Severity::info);
}

TEST(ServeConfig, RemoteListenWithAllowRemote) {
  for (const std::string listen : {"0.0.0.0:9490", "192.168.1.4:80", "[::]:9490", "monitor.lan:9490"}) {
    SCOPED_TRACE(listen);
    const auto c = parse_ok("listen: \"" + listen + "\"\nallow_remote: true\n");
    EXPECT_EQ(c.listen, listen);
    EXPECT_TRUE(c.allow_remote);
  }
  for (const std::string listen : {"127.0.0.1:1", "127.1.2.3:9490", "localhost:9490", "[::1]:9490"}) {
    SCOPED_TRACE(listen);
    EXPECT_EQ(parse_ok("listen: \"" + listen + "\"\n").listen, listen);
  }
}

TEST(ServeConfig, ConfigToYamlRoundTripsEverySetting) {
  ServeConfig c;
  c.interval = 250ms;
  c.listen = "0.0.0.0:9100";
  c.allow_remote = true;
  c.token_file = "/etc/memwarden/token with \"quotes\"";
  c.state_dir = "/srv/mw";
  c.docker_host = "tcp://docker:2375";
  c.docker_timeout = 3s;
  c.api_timeout = 1500ms;
  c.nvml_library = "/opt/nvml.so";
  c.servers = {"a", "b c"};
  c.thresholds.base_allowance = 3ULL << 30;
  c.thresholds.bloat_margin = 1000;
  c.thresholds.bloat_margin_fraction = 0.3;
  c.thresholds.bloat_hold = 61s;
  c.thresholds.growth_min_samples = 4;
  c.thresholds.growth_min_span = 90s;
  c.thresholds.growth_min_mib_per_hour = 12.5;
  c.thresholds.growth_min_rise = 3ULL << 10;
  c.thresholds.growth_critical_forecast = 3h;
  c.thresholds.orphan_min_rss = 1ULL << 40;
  c.thresholds.orphan_hold = 0ms;
  c.thresholds.reserve = 6ULL << 30;
  c.thresholds.swap_warn = 0;
  c.thresholds.psi_full_avg10_pct = 33.3;
  c.thresholds.page_cache_fraction = 0.9;
  c.thresholds.page_cache_min = 1ULL << 20;
  c.policy.cooldown = 1min;
  c.policy.restart_budget = 0;
  c.policy.budget_window = 24h;
  c.policy.drain_timeout = 0ms;
  c.policy.health_timeout = 45s;
  c.policy.stop_timeout = 1s;
  c.policy.settle = 2500ms;
  c.policy.allowlist = {"ollama"};
  c.auto_fix = AutoFix::off;
  c.systemd_unit = "x.service";
  c.optimize_auto = OptimizeAuto::off;
  c.optimize_interval = 90s;
  c.raw_retention = 7 * 24h;
  c.aggregate_retention = 365 * 24h;
  c.history_max_bytes = 1ULL << 30;
  c.notify_targets = {{"a", "slack", "https://hooks.slack.com/x"}, {"b", "generic", "http://h/y"}};
  c.notify_min_interval = 0ms;
  c.notify_min_severity = Severity::critical;
  c.profiles = {builtin_profiles().at(0), Profile{}};
  c.profiles[0].context_length = 16384;
  c.profiles[0].keep_alive = "-1";
  c.profiles[1].name = "tiny.cpu_1";
  c.profiles[1].description = "a \"quoted\" one: with a colon";
  c.profiles[1].api = ServerApi::openai;
  c.profiles[1].models = {"gpt-4o-mini", "phi3"};
  c.profiles[1].kv_type = KvType::q4_0;
  c.profiles[1].gpu = GpuUse::none;
  c.profiles[1].mode = DeployMode::exclusive;
  c.profiles[1].tag = "v2.1";
  c.profiles[1].image = "registry.example:5000/ai/localai";
  c.profiles[1].port = 65535;
  c.profiles[1].container_port = 1;
  c.profiles[1].max_loaded_models = 3;
  c.profiles[1].parallel = 64;
  expect_same(parse_ok(config_to_yaml(c)), c);
}

// ---- errors, each with its position

TEST(ServeConfigErrors, TextFormat) {
  EXPECT_EQ((ConfigError{"a.yaml", 3, 7, "bad"}).text(), "a.yaml:3:7: bad");
  EXPECT_EQ((ConfigError{"a.yaml", 0, 0, "cannot read"}).text(), "a.yaml: cannot read");
}

TEST(ServeConfigErrors, UnknownTopLevelKeySuggestsTheClosest) {
  EXPECT_EQ(one_error("listen: 127.0.0.1:9490\nintervall: 2s\n"),
            "test.yaml:2:1: unknown key 'intervall' in (top level); did you mean 'interval'?");
  EXPECT_EQ(one_error("zzz: 1\n"), "test.yaml:1:1: unknown key 'zzz' in (top level)");
}

TEST(ServeConfigErrors, UnknownNestedKey) {
  EXPECT_EQ(one_error("detect:\n  reserve: 4G\n  reserv: 2G\n"),
            "test.yaml:3:3: unknown key 'reserv' in detect; did you mean 'reserve'?");
  EXPECT_EQ(one_error("notify:\n  targets:\n    - kind: slack\n      url: https://x\n      nme: a\n"),
            "test.yaml:5:7: unknown key 'nme' in notify.targets[0]; did you mean 'name'?");
}

TEST(ServeConfigErrors, BadSizeNamesTheKey) {
  EXPECT_EQ(one_error("detect:\n  reserve: lots\n"),
            "test.yaml:2:12: detect.reserve: 'lots' is not a size (use e.g. 4G, 512MiB, 1.5GiB)");
}

TEST(ServeConfigErrors, BadDuration) {
  EXPECT_EQ(one_error("fix:\n  cooldown: soon\n"),
            "test.yaml:2:13: fix.cooldown: 'soon' is not a duration (use e.g. 500ms, 10s, 5m, 1h, 30d)");
  EXPECT_EQ(one_error("history:\n  raw_retention: xd\n"),
            "test.yaml:2:18: history.raw_retention: 'xd' is not a duration (use e.g. 500ms, 10s, 5m, 1h, 30d)");
}

TEST(ServeConfigErrors, IntervalMustBePositive) {
  EXPECT_EQ(one_error("interval: 0s\n"), "test.yaml:1:11: interval: must be longer than 0");
}

TEST(ServeConfigErrors, WrongTypes) {
  EXPECT_EQ(one_error("interval: [1s]\n"), "test.yaml:1:11: interval: expected a duration, got a list");
  EXPECT_EQ(one_error("servers: ollama\n"), "test.yaml:1:10: servers: expected a list, got a single value");
  EXPECT_EQ(one_error("detect: 4G\n"), "test.yaml:1:9: detect: expected a mapping of settings, got a single value");
  EXPECT_EQ(one_error("allow_remote: maybe\n"), "test.yaml:1:15: allow_remote: 'maybe' is not true or false");
  EXPECT_EQ(one_error("detect:\n  growth_min_samples: 2.5\n"),
            "test.yaml:2:23: detect.growth_min_samples: '2.5' is not a whole number from 2 to 3600");
  EXPECT_EQ(one_error("detect:\n  page_cache_fraction: 1.5\n"),
            "test.yaml:2:24: detect.page_cache_fraction: 1.5 is out of range (0 to 1)");
  EXPECT_EQ(one_error("fix:\n  auto: yes-please\n"), "test.yaml:2:9: fix.auto: 'yes-please' is not off, dry-run or on");
  EXPECT_EQ(one_error("notify:\n  min_severity: loud\n"),
            "test.yaml:2:17: notify.min_severity: 'loud' is not info, warning or critical");
  EXPECT_EQ(one_error("- interval: 1s\n"), "test.yaml:1:1: expected a mapping of settings (key: value), got a list");
}

TEST(ServeConfigErrors, EmptyValueIsReportedAtItsKey) {
  EXPECT_EQ(one_error("detect:\n  reserve:\n"), "test.yaml:2:3: detect.reserve: expected a size, got no value");
  EXPECT_EQ(one_error("state_dir: \"\"\n"), "test.yaml:1:12: state_dir: must not be empty");
}

TEST(ServeConfigErrors, KeySetTwice) {
  EXPECT_EQ(one_error("interval: 1s\napi_timeout: 1s\ninterval: 2s\n"),
            "test.yaml:3:1: interval: set twice (first at line 1)");
}

TEST(ServeConfigErrors, NonLoopbackListenNeedsAllowRemote) {
  EXPECT_EQ(one_error("listen: 0.0.0.0:9490\n"),
            "test.yaml:1:9: listen: '0.0.0.0:9490' is not a loopback address; set allow_remote: true to serve "
            "other hosts (and protect POST /api/v1/fix with token_file)");
  EXPECT_EQ(one_error("allow_remote: false\nlisten: \"[::]:9490\"\n").substr(0, 19), "test.yaml:2:9: list");
}

TEST(ServeConfigErrors, MalformedListen) {
  // The wording after "listen: 'TEXT': " is the HTTP server's (adapters::parse_listen_address).
  for (const std::string listen : {"127.0.0.1", "127.0.0.1:99999", "::1:9490", ":9490", "[::1:9490"}) {
    SCOPED_TRACE(listen);
    EXPECT_EQ(one_error("listen: \"" + listen + "\"\n").rfind("test.yaml:1:9: listen: '" + listen + "': ", 0), 0U);
  }
}

TEST(ServeConfigErrors, NotifyTargets) {
  const auto errors = errors_of(R"(notify:
  targets:
    - name: a
      kind: teams
      url: https://x
    - name: b
      kind: slack
      url: ftp://x
    - name: a
      kind: ntfy
      url: https://ntfy.sh/t
    - kind: generic
    - just-a-string
)");
  EXPECT_EQ(errors, (std::vector<std::string>{
                        "test.yaml:4:13: notify.targets[0].kind: 'teams' is not one of generic, ntfy, discord, slack",
                        "test.yaml:8:12: notify.targets[1].url: 'ftp://x' must start with http:// or https://",
                        "test.yaml:9:13: notify.targets[2]: duplicate target name 'a' (first at line 3); give each "
                        "target its own name",
                        "test.yaml:12:7: notify.targets[3]: missing key 'url'",
                        "test.yaml:13:7: notify.targets[4]: expected a mapping with name, kind and url, got a single "
                        "value",
                    }));
}

TEST(ServeConfigErrors, EveryErrorIsReportedInDocumentOrder) {
  const auto errors = errors_of(R"(# several mistakes
interval: -1s
listen: 0.0.0.0:9490
detect:
  reserve: lots
  bloat_hold: forever
fix:
  budget: many
  cooldwn: 5m
history:
  max_size: 0
)");
  EXPECT_EQ(errors,
            (std::vector<std::string>{
                "test.yaml:2:11: interval: '-1s' is not a duration (use e.g. 500ms, 10s, 5m, 1h, 30d)",
                "test.yaml:3:9: listen: '0.0.0.0:9490' is not a loopback address; set allow_remote: true to serve "
                "other hosts (and protect POST /api/v1/fix with token_file)",
                "test.yaml:5:12: detect.reserve: 'lots' is not a size (use e.g. 4G, 512MiB, 1.5GiB)",
                "test.yaml:6:15: detect.bloat_hold: 'forever' is not a duration (use e.g. 500ms, 10s, 5m, 1h, 30d)",
                "test.yaml:8:11: fix.budget: 'many' is not a whole number from 0 to 1000",
                "test.yaml:9:3: unknown key 'cooldwn' in fix; did you mean 'cooldown'?",
                "test.yaml:11:13: history.max_size: must be larger than 0",
            }));
}

TEST(ServeConfigErrors, SyntaxErrorIsOneErrorWithItsPosition) {
  EXPECT_EQ(one_error("interval: 1s\nservers: [a, b\nlisten: x\n"),
            "test.yaml:3:7: YAML syntax error: end of sequence flow not found");
  EXPECT_EQ(one_error("detect:\n  reserve: 4G\n    swap_warn: 1G\n"),
            "test.yaml:3:14: YAML syntax error: illegal map value");
}

TEST(ServeConfigErrors, OnlyOneDocument) {
  EXPECT_EQ(one_error("interval: 1s\n---\ninterval: 2s\n"), "test.yaml:3:1: only one YAML document is allowed");
}

// ---- files

TEST(ServeConfigFile, LoadsAFile) {
  TempDir dir;
  dir.write("memwarden.yaml", "interval: 5s\n");
  const auto path = dir.path() / "memwarden.yaml";
  const auto c = load_config(path);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->interval, 5s);
  EXPECT_EQ(c->source, path.string());
}

TEST(ServeConfigFile, ErrorsNameTheFile) {
  TempDir dir;
  dir.write("bad.yaml", "\ninterval: never\n");
  const auto path = dir.path() / "bad.yaml";
  const auto c = load_config(path);
  ASSERT_FALSE(c.has_value());
  ASSERT_EQ(c.error().size(), 1U);
  EXPECT_EQ(c.error()[0].text(),
            path.string() + ":2:11: interval: 'never' is not a duration (use e.g. 500ms, 10s, 5m, 1h, 30d)");
}

TEST(ServeConfigFile, MissingFileIsOneErrorNamingIt) {
  TempDir dir;
  const auto path = dir.path() / "absent.yaml";
  const auto c = load_config(path);
  ASSERT_FALSE(c.has_value());
  ASSERT_EQ(c.error().size(), 1U);
  EXPECT_EQ(c.error()[0].file, path.string());
  EXPECT_EQ(c.error()[0].line, 0);
  EXPECT_EQ(c.error()[0].text(), path.string() + ": cannot read: No such file or directory");
}

TEST(ServeConfigFile, DirectoryIsNotAConfig) {
  TempDir dir;
  const auto c = load_config(dir.path());
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error()[0].text(), dir.path().string() + ": cannot read: is a directory, not a regular file");
}

TEST(ServeConfigFile, FifosDevicesAndHugeFilesAreRefusedAtOnce) {
  TempDir dir;
  const auto fifo = dir.path() / "config.yaml";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const auto started = std::chrono::steady_clock::now();
  const auto from_fifo = load_config(fifo);
  ASSERT_FALSE(from_fifo);
  EXPECT_EQ(from_fifo.error()[0].text(), fifo.string() + ": cannot read: is a FIFO, not a regular file");
  const auto from_zero = load_config("/dev/zero");
  ASSERT_FALSE(from_zero);
  EXPECT_EQ(from_zero.error()[0].text(), "/dev/zero: cannot read: is a character device, not a regular file");
  std::string big = "interval: 1s\n";
  big += "# " + std::string(k_max_config_bytes, 'x') + "\n";
  dir.write("big.yaml", big);
  const auto from_big = load_config(dir.path() / "big.yaml");
  ASSERT_FALSE(from_big);
  EXPECT_EQ(from_big.error()[0].text(),
            (dir.path() / "big.yaml").string() + ": cannot read: larger than 1 MiB, the most memwarden reads of it");
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(1));
}

TEST(ServeConfig, HistoryMinFree) {
  const auto c = parse_config("history:\n  min_free: 128MiB\n", "c.yaml");
  ASSERT_TRUE(c) << c.error()[0].text();
  EXPECT_EQ(c->history_min_free, 128ULL << 20);
  EXPECT_EQ(ServeConfig{}.history_min_free, 64ULL << 20);
  const auto off = parse_config("history:\n  min_free: 0\n", "c.yaml");
  ASSERT_TRUE(off);
  EXPECT_EQ(off->history_min_free, 0U);
  EXPECT_FALSE(parse_config("history:\n  min_free: -1G\n", "c.yaml"));
}

TEST(ServeConfigDocs, EveryKeyIsDocumentedAsTheTableSays) {
  std::ifstream in(std::string(MEMWARDEN_DOCS_DIR) + "/config.md");
  std::stringstream text;
  text << in.rdbuf();
  const auto docs = text.str();
  ASSERT_FALSE(docs.empty());
  for (const auto* section : {"", "detect", "fix", "optimize", "history", "notify", "profiles"}) {
    const auto table = config_reference_table(section);
    ASSERT_FALSE(table.empty()) << section;
    EXPECT_NE(docs.find(table), std::string::npos)
        << "docs/config.md lacks the generated table of section '" << section << "':\n"
        << table;
  }
  EXPECT_EQ(config_reference_table("nope"), "");
}

TEST(ServeConfigDocs, EveryKeyIsReadAndWritten) {
  // Each key the table knows is in --print-default and is read back.
  const auto yaml = example_config();
  for (const auto& key : config_keys()) {
    const auto name = key.substr(key.rfind('.') == std::string::npos ? 0 : key.rfind('.') + 1);
    EXPECT_NE(yaml.find(name + ":"), std::string::npos) << key;
  }
  EXPECT_EQ(config_keys().size(), 45U + 16U);  // 16 keys of each profile
}

// ---- profiles:

TEST(ServeConfigProfiles, NoneByDefault) {
  EXPECT_TRUE(ServeConfig{}.profiles.empty());
  EXPECT_TRUE(parse_ok("profiles:\n").profiles.empty());
  EXPECT_TRUE(parse_ok("profiles: {}\n").profiles.empty());
  const auto all = configured_profiles(ServeConfig{});
  ASSERT_EQ(all.size(), builtin_profiles().size());
  for (std::size_t i = 0; i < all.size(); ++i) {
    expect_same_profile(all[i], builtin_profiles()[i]);
  }
}

TEST(ServeConfigProfiles, OverridingABuiltInKeepsWhatItDoesNotSay) {
  const auto c = parse_ok("profiles:\n  large-33b:\n    context_length: 8192\n    port: 11500\n");
  ASSERT_EQ(c.profiles.size(), 1U);
  auto expected = builtin_profiles().at(0);
  ASSERT_EQ(expected.name, "large-33b");
  expected.context_length = 8192;
  expected.port = 11500;
  expect_same_profile(c.profiles[0], expected);
  EXPECT_EQ(c.profiles[0].models, (std::vector<std::string>{"deepseek-coder:33b"}));
  EXPECT_EQ(c.profiles[0].mode, DeployMode::exclusive);
  EXPECT_TRUE(c.profiles[0].seed_limit_bytes.has_value());

  // Every command sees the built-ins, this one changed, in their order.
  const auto all = configured_profiles(c);
  ASSERT_EQ(all.size(), builtin_profiles().size());
  expect_same_profile(all[0], expected);
  for (std::size_t i = 1; i < all.size(); ++i) {
    expect_same_profile(all[i], builtin_profiles()[i]);
  }

  // An empty entry is the built-in itself.
  const auto same = parse_ok("profiles:\n  localai:\n");
  ASSERT_EQ(same.profiles.size(), 1U);
  expect_same_profile(same.profiles[0], builtin_profiles().at(3));
}

TEST(ServeConfigProfiles, ANewProfileStartsFromTheDefaults) {
  const auto minimal = parse_ok("profiles:\n  small:\n    models: [llama3.2:3b]\n");
  ASSERT_EQ(minimal.profiles.size(), 1U);
  Profile expected;
  expected.name = "small";
  expected.models = {"llama3.2:3b"};
  expect_same_profile(minimal.profiles[0], expected);

  const auto c = parse_ok(R"(
profiles:
  large-33b:
    models: [deepseek-coder:33b]
    context_length: 8192
  coder:
    models: [qwen2.5-coder:7b, llama3.1:8b]
    parallel: 2
    kv_type: q8_0
    keep_alive: 10m
    image: ollama/ollama
    tag: 0.11.4
    gpu: none
    mode: standard
    port: 11440
    container_port: 11434
    api: ollama
    store_volume: ollama
    store_path: /root/.ollama
    max_loaded_models: 1
    description: "two coding models"
)");
  ASSERT_EQ(c.profiles.size(), 2U);
  EXPECT_EQ(c.profiles[0].name, "large-33b");
  EXPECT_EQ(c.profiles[0].context_length, 8192U);
  const auto& coder = c.profiles[1];
  EXPECT_EQ(coder.name, "coder");
  EXPECT_EQ(coder.models, (std::vector<std::string>{"qwen2.5-coder:7b", "llama3.1:8b"}));
  EXPECT_EQ(coder.parallel, 2U);
  EXPECT_EQ(coder.kv_type, KvType::q8_0);
  EXPECT_EQ(coder.keep_alive, "10m");
  EXPECT_EQ(coder.image, "ollama/ollama");
  EXPECT_EQ(coder.tag, "0.11.4");
  EXPECT_EQ(coder.gpu, GpuUse::none);
  EXPECT_EQ(coder.mode, DeployMode::standard);
  EXPECT_EQ(coder.port, 11440);
  EXPECT_EQ(coder.container_port, 11434);
  EXPECT_EQ(coder.api, ServerApi::ollama);
  EXPECT_EQ(coder.store_volume, "ollama");
  EXPECT_EQ(coder.store_path, "/root/.ollama");
  EXPECT_EQ(coder.max_loaded_models, 1U);
  EXPECT_EQ(coder.description, "two coding models");
  EXPECT_EQ(coder.context_length, Profile{}.context_length);
  EXPECT_FALSE(coder.seed_limit_bytes.has_value());

  const auto all = configured_profiles(c);
  ASSERT_EQ(all.size(), builtin_profiles().size() + 1);
  EXPECT_EQ(all[0].context_length, 8192U);
  EXPECT_EQ(all.back().name, "coder");
  ASSERT_TRUE(find_profile(all, "coder", "test"));
}

TEST(ServeConfigProfiles, KeepAliveAndOpenAiModelNames) {
  for (const std::string keep : {"0", "-1", "300", "5m", "1h30m", "1.5h", "-1m"}) {
    SCOPED_TRACE(keep);
    EXPECT_EQ(parse_ok("profiles:\n  standard:\n    keep_alive: \"" + keep + "\"\n").profiles.at(0).keep_alive, keep);
  }
  // An OpenAI-compatible server's model names are its own, not Ollama's.
  const auto c = parse_ok("profiles:\n  localai:\n    models: [gpt-4o-mini, \"my model\"]\n");
  EXPECT_EQ(c.profiles.at(0).models, (std::vector<std::string>{"gpt-4o-mini", "my model"}));
}

TEST(ServeConfigProfiles, TheExampleInPrintDefaultIsAValidProfile) {
  const auto text = example_config();
  EXPECT_NE(text.find("\nprofiles: {}\n"), std::string::npos);
  const auto start = text.find("# profiles:\n");
  ASSERT_NE(start, std::string::npos);
  std::string yaml;
  std::istringstream lines(text.substr(start));
  for (std::string line; std::getline(lines, line) && line.rfind("# ", 0) == 0;) {
    yaml += line.substr(2) + "\n";
  }
  const auto c = parse_ok(yaml);
  ASSERT_EQ(c.profiles.size(), 1U);
  EXPECT_EQ(c.profiles[0].name, "coder");
  EXPECT_EQ(c.profiles[0].gpu, GpuUse::none);
}

TEST(ServeConfigProfilesErrors, UnknownKeySuggestsTheClosest) {
  EXPECT_EQ(one_error("profiles:\n  coder:\n    models: [llama3.1:8b]\n    paralel: 2\n"),
            "test.yaml:4:5: unknown key 'paralel' in profiles.coder; did you mean 'parallel'?");
}

TEST(ServeConfigProfilesErrors, BadValuesNameTheirKey) {
  const auto bad = [](const std::string& line) { return one_error("profiles:\n  standard:\n    " + line + "\n"); };
  EXPECT_EQ(bad("port: 0"), "test.yaml:3:11: profiles.standard.port: '0' is not a whole number from 1 to 65535");
  EXPECT_EQ(bad("port: 65536"),
            "test.yaml:3:11: profiles.standard.port: '65536' is not a whole number from 1 to 65535");
  EXPECT_EQ(bad("container_port: -1"),
            "test.yaml:3:21: profiles.standard.container_port: '-1' is not a whole number from 1 to 65535");
  EXPECT_EQ(bad("parallel: 0"), "test.yaml:3:15: profiles.standard.parallel: '0' is not a whole number from 1 to 64");
  EXPECT_EQ(bad("max_loaded_models: 0"),
            "test.yaml:3:24: profiles.standard.max_loaded_models: '0' is not a whole number from 1 to 64");
  EXPECT_EQ(bad("context_length: 4k"),
            "test.yaml:3:21: profiles.standard.context_length: '4k' is not a whole number from 1 to 1048576");
  EXPECT_EQ(bad("models: []"), "test.yaml:3:13: profiles.standard.models: must name at least one model");
  EXPECT_EQ(bad("models:"), "test.yaml:3:5: profiles.standard.models: must name at least one model");
  EXPECT_EQ(bad("models: llama3.1:8b"),
            "test.yaml:3:13: profiles.standard.models: expected a list, got a single value");
  EXPECT_EQ(bad("models: [\"" + std::string(201, 'a') + "\"]"),
            "test.yaml:3:14: profiles.standard.models[0]: longer than 200 characters");
  EXPECT_EQ(bad("models: [llama3.1:8b, ../etc/passwd]"),
            "test.yaml:3:27: profiles.standard.models[1]: '../etc/passwd' is not an Ollama model name: the host "
            "\"..\" must start with a letter, a digit or '_'");
  EXPECT_EQ(bad("kv_type: q5_1"), "test.yaml:3:14: profiles.standard.kv_type: 'q5_1' is not f16, q8_0 or q4_0");
  EXPECT_EQ(bad("gpu: some"), "test.yaml:3:10: profiles.standard.gpu: 'some' is not all or none");
  EXPECT_EQ(bad("mode: shared"), "test.yaml:3:11: profiles.standard.mode: 'shared' is not standard or exclusive");
  EXPECT_EQ(bad("api: grpc"), "test.yaml:3:10: profiles.standard.api: 'grpc' is not ollama or openai");
  EXPECT_EQ(bad("keep_alive: forever"),
            "test.yaml:3:17: profiles.standard.keep_alive: 'forever' is not a keep-alive (use e.g. 5m, 1h, 300, 0 "
            "or -1)");
  EXPECT_EQ(bad("image: Ollama/Ollama"),
            "test.yaml:3:12: profiles.standard.image: 'Ollama/Ollama' is not an image name without its tag (e.g. "
            "ollama/ollama)");
  EXPECT_EQ(bad("tag: \"-rc\""),
            "test.yaml:3:10: profiles.standard.tag: '-rc' is not an image tag (letters, digits, _ . -)");
  EXPECT_EQ(bad("store_volume: x"),
            "test.yaml:3:19: profiles.standard.store_volume: 'x' is not a volume name (letters, digits, _ . -, at "
            "least 2)");
  EXPECT_EQ(bad("store_path: models"),
            "test.yaml:3:17: profiles.standard.store_path: 'models' is not an absolute path without ':'");
  EXPECT_EQ(bad("description: [a]"), "test.yaml:3:18: profiles.standard.description: expected a string, got a list");
  EXPECT_EQ(bad("description: " + std::string(201, 'd')),
            "test.yaml:3:18: profiles.standard.description: longer than 200 characters");
}

TEST(ServeConfigProfilesErrors, BadNamesAndShapes) {
  for (const std::string name : {"Coder", "-coder", "_x", "a b", "coder/x", "c\xc3\xa9"}) {
    SCOPED_TRACE(name);
    EXPECT_EQ(one_error("profiles:\n  \"" + name + "\":\n    models: [llama3.1:8b]\n"),
              "test.yaml:2:3: profiles: '" + name +
                  "' is not a profile name (lower-case letters, digits, _ . -, starting with a letter or digit, at "
                  "most 63 characters)");
  }
  EXPECT_EQ(one_error("profiles:\n  " + std::string(64, 'a') + ":\n    models: [llama3.1:8b]\n").substr(0, 26),
            "test.yaml:2:3: profiles: '");
  EXPECT_TRUE(parse_config("profiles:\n  " + std::string(63, 'a') + ":\n    models: [llama3.1:8b]\n", "t"));
  EXPECT_EQ(one_error("profiles:\n  coder:\n    port: 11440\n"),
            "test.yaml:2:3: profiles.coder: missing key 'models' (a new profile needs at least one model)");
  EXPECT_EQ(one_error("profiles:\n  coder:\n"),
            "test.yaml:2:3: profiles.coder: missing key 'models' (a new profile needs at least one model)");
  EXPECT_EQ(one_error("profiles:\n  coder: fast\n"),
            "test.yaml:2:10: profiles.coder: expected a mapping of profile settings, got a single value");
  EXPECT_EQ(one_error("profiles:\n  - coder\n"),
            "test.yaml:2:3: profiles: expected a mapping of profile names to profiles, got a list");
  EXPECT_EQ(one_error("profiles:\n  standard: {}\n  standard: {port: 1}\n"),
            "test.yaml:3:3: profiles.standard: set twice (first at line 2)");
}

TEST(ServeConfigProfilesErrors, AtMost64Profiles) {
  std::string yaml = "profiles:\n";
  for (int i = 0; i < 64; ++i) {
    yaml += fmt::format("  p{}: {{models: [llama3.1:8b]}}\n", i);
  }
  EXPECT_EQ(parse_ok(yaml).profiles.size(), 64U);
  yaml += "  p64: {models: [llama3.1:8b]}\n  p65: {models: [llama3.1:8b]}\n";
  EXPECT_EQ(one_error(yaml),
            "test.yaml:66:3: profiles: more than 64 profiles; this one and those after it are not read");
  // The cap does not stop the rest of the file.
  EXPECT_EQ(errors_of(yaml + "interval: 0s\n"),
            (std::vector<std::string>{
                "test.yaml:66:3: profiles: more than 64 profiles; this one and those after it are not read",
                "test.yaml:68:11: interval: must be longer than 0",
            }));
}

TEST(ServeConfigProfilesErrors, EveryMistakeIsReportedAndTheRestRead) {
  const auto errors = errors_of(R"(interval: 2s
profiles:
  Big:
    models: [llama3.1:70b]
  large-33b:
    parallel: 0
    context_length: 8192
    kv_typ: q8_0
  coder:
    models: []
    gpu: some
  ok:
    models: [llama3.1:8b]
    mode: shared
fix:
  budget: many
)");
  EXPECT_EQ(errors, (std::vector<std::string>{
                        "test.yaml:3:3: profiles: 'Big' is not a profile name (lower-case letters, digits, _ . -, "
                        "starting with a letter or digit, at most 63 characters)",
                        "test.yaml:6:15: profiles.large-33b.parallel: '0' is not a whole number from 1 to 64",
                        "test.yaml:8:5: unknown key 'kv_typ' in profiles.large-33b; did you mean 'kv_type'?",
                        "test.yaml:10:13: profiles.coder.models: must name at least one model",
                        "test.yaml:11:10: profiles.coder.gpu: 'some' is not all or none",
                        "test.yaml:14:11: profiles.ok.mode: 'shared' is not standard or exclusive",
                        "test.yaml:16:11: fix.budget: 'many' is not a whole number from 0 to 1000",
                    }));
}
