#include "cli/config.hpp"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <sstream>

#include "adapters/http_server.hpp"
#include "core/bytes.hpp"
#include "core/duration.hpp"
#include "core/text.hpp"
#include "probes/host_root.hpp"

namespace mw::cli {

namespace {

constexpr std::int64_t k_day_ms = 86'400'000;
constexpr std::array<std::string_view, 4> k_notify_kinds{"generic", "ntfy", "discord", "slack"};

// ---- small helpers

// The known key closest to `key`, when it is close enough to be a typo.
std::optional<std::string_view> closest(std::string_view key, const std::vector<std::string_view>& known) {
  std::optional<std::string_view> best;
  std::size_t best_distance = std::min<std::size_t>(3, (key.size() + 1) / 2);
  for (auto candidate : known) {
    const auto distance = edit_distance_ignoring_case(key, candidate);
    if (distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

const char* describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return "a single value";
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      break;
  }
  return "no value";
}

// ---- the reader: walks the document, collects every error

enum class Bound { any, positive };

class Reader {
 public:
  explicit Reader(std::string file) : m_file(std::move(file)) {}

  void error(const YAML::Mark& mark, std::string message) {
    ConfigError e{m_file, 0, 0, std::move(message)};
    if (mark.line >= 0 && mark.column >= 0) {
      e.line = mark.line + 1;
      e.column = mark.column + 1;
    }
    m_errors.push_back(std::move(e));
  }
  [[nodiscard]] bool ok() const { return m_errors.empty(); }
  [[nodiscard]] std::vector<ConfigError> take() {
    std::stable_sort(m_errors.begin(), m_errors.end(), [](const ConfigError& a, const ConfigError& b) {
      return a.line != b.line ? a.line < b.line : a.column < b.column;
    });
    return std::move(m_errors);
  }

  struct Entry {
    YAML::Node key;
    YAML::Node value;
    std::string path;  // "detect.reserve"
  };
  using Handler = std::function<void(const Entry&)>;
  struct Key {
    std::string_view name;
    Handler handle;
  };

  // A mapping of known keys: unknown and repeated keys are errors; the rest go to their handler.
  // `context` is the mapping's path ("" at the top level).
  void mapping(const YAML::Node& node, const std::string& context, const std::vector<Key>& keys) {
    std::map<std::string, YAML::Mark> seen;
    std::vector<std::string_view> names;
    names.reserve(keys.size());
    for (const auto& key : keys) {
      names.push_back(key.name);
    }
    for (const auto& kv : node) {
      const YAML::Node key = kv.first;
      if (!key.IsScalar()) {
        error(key.Mark(), fmt::format("a key in {} must be a plain name, not {}", where(context), describe(key)));
        continue;
      }
      const std::string& name = key.Scalar();
      const auto known = std::find_if(keys.begin(), keys.end(), [&](const Key& k) { return k.name == name; });
      if (known == keys.end()) {
        const auto suggestion = closest(name, names);
        error(key.Mark(), fmt::format("unknown key '{}' in {}{}", name, where(context),
                                      suggestion ? fmt::format("; did you mean '{}'?", *suggestion) : ""));
        continue;
      }
      const auto [previous, inserted] = seen.emplace(name, key.Mark());
      if (!inserted) {
        error(key.Mark(),
              fmt::format("{}: set twice (first at line {})", join(context, name), previous->second.line + 1));
        continue;
      }
      known->handle(Entry{key, kv.second, join(context, name)});
    }
  }

  // A section: absent or empty is fine; anything but a mapping is an error.
  void section(const Entry& e, const std::vector<Key>& keys) {
    if (e.value.IsNull()) {
      return;
    }
    if (!e.value.IsMap()) {
      error(mark_of(e), fmt::format("{}: expected a mapping of settings, got {}", e.path, describe(e.value)));
      return;
    }
    mapping(e.value, e.path, keys);
  }

  // The scalar's text, or nullopt (and an error) for a list, a mapping or nothing.
  std::optional<std::string> scalar(const Entry& e, std::string_view expected) {
    if (e.value.IsScalar()) {
      return e.value.Scalar();
    }
    error(mark_of(e), fmt::format("{}: expected {}, got {}", e.path, expected, describe(e.value)));
    return std::nullopt;
  }

  void duration(const Entry& e, Duration& out, Bound bound) {
    const auto text = scalar(e, "a duration");
    if (!text) {
      return;
    }
    const auto parsed = parse_duration(*text, "");
    if (!parsed) {
      error(mark_of(e), fmt::format("{}: '{}' is not a duration (use e.g. 500ms, 10s, 5m, 1h, 30d)", e.path, *text));
    } else if (bound == Bound::positive && parsed->count() <= 0) {
      error(mark_of(e), fmt::format("{}: must be longer than 0", e.path));
    } else {
      out = *parsed;
    }
  }

  void size(const Entry& e, std::uint64_t& out, Bound bound) {
    const auto text = scalar(e, "a size");
    if (!text) {
      return;
    }
    const auto parsed = parse_size(*text, e.path);
    if (!parsed) {
      error(mark_of(e), fmt::format("{}: '{}' is not a size (use e.g. 4G, 512MiB, 1.5GiB)", e.path, *text));
    } else if (bound == Bound::positive && *parsed == 0) {
      error(mark_of(e), fmt::format("{}: must be larger than 0", e.path));
    } else {
      out = *parsed;
    }
  }

  void number(const Entry& e, double& out, double min, std::optional<double> max) {
    const auto text = scalar(e, "a number");
    if (!text) {
      return;
    }
    const auto parsed = parse_double(*text);
    if (!parsed) {
      error(mark_of(e), fmt::format("{}: '{}' is not a number", e.path, *text));
    } else if (*parsed < min || (max && *parsed > *max)) {
      error(mark_of(e), max ? fmt::format("{}: {} is out of range ({} to {})", e.path, *text, min, *max)
                            : fmt::format("{}: {} is out of range (at least {})", e.path, *text, min));
    } else {
      out = *parsed;
    }
  }

  void count(const Entry& e, std::size_t& out, std::size_t min, std::size_t max) {
    const auto text = scalar(e, "a whole number");
    if (!text) {
      return;
    }
    // As the command line reads numbers: decimal digits only, within the range.
    const auto parsed = parse_unsigned(*text, min, max, e.path);
    if (!parsed) {
      error(mark_of(e), parsed.error().line());
    } else {
      out = static_cast<std::size_t>(*parsed);
    }
  }

  void flag(const Entry& e, bool& out) {
    const auto text = scalar(e, "true or false");
    if (!text) {
      return;
    }
    if (*text == "true") {
      out = true;
    } else if (*text == "false") {
      out = false;
    } else {
      error(mark_of(e), fmt::format("{}: '{}' is not true or false", e.path, *text));
    }
  }

  // A string; an empty value (`key:`) is "". `must_not_be_empty` for paths and names that need one.
  enum class Empty { allowed, refused };
  void string(const Entry& e, std::string& out, Empty empty) {
    std::string text;
    if (!e.value.IsNull()) {
      auto got = scalar(e, "a string");
      if (!got) {
        return;
      }
      text = std::move(*got);
    }
    if (empty == Empty::refused && text.empty()) {
      error(mark_of(e), fmt::format("{}: must not be empty", e.path));
      return;
    }
    out = std::move(text);
  }

  // A list of non-empty strings; an empty value (`key:`) is the empty list.
  void strings(const Entry& e, std::vector<std::string>& out) {
    if (e.value.IsNull()) {
      out.clear();
      return;
    }
    if (!e.value.IsSequence()) {
      error(mark_of(e), fmt::format("{}: expected a list, got {}", e.path, describe(e.value)));
      return;
    }
    std::vector<std::string> items;
    bool good = true;
    std::size_t index = 0;
    for (const auto& item : e.value) {
      if (!item.IsScalar() || item.Scalar().empty()) {
        error(item.Mark().line >= 0 ? item.Mark() : e.value.Mark(),
              fmt::format("{}[{}]: expected a name, got {}", e.path, index,
                          item.IsScalar() ? "an empty string" : describe(item)));
        good = false;
      } else {
        items.push_back(item.Scalar());
      }
      ++index;
    }
    if (good) {
      out = std::move(items);
    }
  }

  // The value's position; an empty value has none of its own, so its key's.
  static YAML::Mark mark_of(const Entry& e) { return e.value.IsNull() ? e.key.Mark() : e.value.Mark(); }

  static std::string join(const std::string& context, std::string_view name) {
    return context.empty() ? std::string(name) : fmt::format("{}.{}", context, name);
  }
  static std::string where(const std::string& context) { return context.empty() ? "(top level)" : context; }

 private:
  std::string m_file;
  std::vector<ConfigError> m_errors;
};

void read_detect(Reader& r, const Reader::Entry& section, DiagnoseThresholds& t) {
  using E = Reader::Entry;
  r.section(
      section,
      {
          {"base_allowance", [&](const E& e) { r.size(e, t.base_allowance, Bound::any); }},
          {"bloat_margin", [&](const E& e) { r.size(e, t.bloat_margin, Bound::any); }},
          {"bloat_margin_fraction", [&](const E& e) { r.number(e, t.bloat_margin_fraction, 0, std::nullopt); }},
          {"bloat_hold", [&](const E& e) { r.duration(e, t.bloat_hold, Bound::any); }},
          {"growth_min_samples", [&](const E& e) { r.count(e, t.growth_min_samples, 2, 3600); }},
          {"growth_min_span", [&](const E& e) { r.duration(e, t.growth_min_span, Bound::any); }},
          {"growth_min_mib_per_hour",
           [&](const E& e) {
             double v = t.growth_min_mib_per_hour;
             r.number(e, v, 0, std::nullopt);
             if (v <= 0) {
               r.error(Reader::mark_of(e), fmt::format("{}: must be larger than 0", e.path));
             } else {
               t.growth_min_mib_per_hour = v;
             }
           }},
          {"growth_min_rise", [&](const E& e) { r.size(e, t.growth_min_rise, Bound::any); }},
          {"growth_critical_forecast", [&](const E& e) { r.duration(e, t.growth_critical_forecast, Bound::any); }},
          {"orphan_min_rss", [&](const E& e) { r.size(e, t.orphan_min_rss, Bound::any); }},
          {"orphan_hold", [&](const E& e) { r.duration(e, t.orphan_hold, Bound::any); }},
          {"reserve", [&](const E& e) { r.size(e, t.reserve, Bound::any); }},
          {"swap_warn", [&](const E& e) { r.size(e, t.swap_warn, Bound::any); }},
          {"psi_full_avg10_pct", [&](const E& e) { r.number(e, t.psi_full_avg10_pct, 0, 100); }},
          {"page_cache_fraction", [&](const E& e) { r.number(e, t.page_cache_fraction, 0, 1); }},
          {"page_cache_min", [&](const E& e) { r.size(e, t.page_cache_min, Bound::any); }},
      });
}

void read_fix(Reader& r, const Reader::Entry& section, ServeConfig& c) {
  using E = Reader::Entry;
  auto& p = c.policy;
  r.section(section, {
                         {"auto",
                          [&](const E& e) {
                            const auto text = r.scalar(e, "off, dry-run or on");
                            if (!text) {
                              return;
                            }
                            if (*text == "off") {
                              c.auto_fix = AutoFix::off;
                            } else if (*text == "dry-run") {
                              c.auto_fix = AutoFix::dry_run;
                            } else if (*text == "on") {
                              c.auto_fix = AutoFix::on;
                            } else {
                              r.error(Reader::mark_of(e),
                                      fmt::format("{}: '{}' is not off, dry-run or on", e.path, *text));
                            }
                          }},
                         {"allow", [&](const E& e) { r.strings(e, p.allowlist); }},
                         {"cooldown", [&](const E& e) { r.duration(e, p.cooldown, Bound::any); }},
                         {"budget", [&](const E& e) { r.count(e, p.restart_budget, 0, 1000); }},
                         {"budget_window", [&](const E& e) { r.duration(e, p.budget_window, Bound::positive); }},
                         {"drain_timeout", [&](const E& e) { r.duration(e, p.drain_timeout, Bound::any); }},
                         {"health_timeout", [&](const E& e) { r.duration(e, p.health_timeout, Bound::positive); }},
                         {"stop_timeout", [&](const E& e) { r.duration(e, p.stop_timeout, Bound::any); }},
                         {"settle", [&](const E& e) { r.duration(e, p.settle, Bound::any); }},
                         {"systemd_unit", [&](const E& e) { r.string(e, c.systemd_unit, Reader::Empty::refused); }},
                     });
}

void read_history(Reader& r, const Reader::Entry& section, ServeConfig& c) {
  using E = Reader::Entry;
  r.section(section,
            {
                {"raw_retention", [&](const E& e) { r.duration(e, c.raw_retention, Bound::positive); }},
                {"aggregate_retention", [&](const E& e) { r.duration(e, c.aggregate_retention, Bound::positive); }},
                {"max_size", [&](const E& e) { r.size(e, c.history_max_bytes, Bound::positive); }},
                {"min_free", [&](const E& e) { r.size(e, c.history_min_free, Bound::any); }},
            });
}

void read_targets(Reader& r, const Reader::Entry& list, std::vector<NotifyTargetConfig>& out) {
  using E = Reader::Entry;
  if (list.value.IsNull()) {
    out.clear();
    return;
  }
  if (!list.value.IsSequence()) {
    r.error(Reader::mark_of(list),
            fmt::format("{}: expected a list of targets, got {}", list.path, describe(list.value)));
    return;
  }
  std::vector<NotifyTargetConfig> targets;
  std::map<std::string, int> names;  // name -> 1-based line of its first use
  std::size_t index = 0;
  for (const auto& item : list.value) {
    const std::string path = fmt::format("{}[{}]", list.path, index++);
    if (!item.IsMap()) {
      r.error(item.Mark().line >= 0 ? item.Mark() : list.value.Mark(),
              fmt::format("{}: expected a mapping with name, kind and url, got {}", path, describe(item)));
      continue;
    }
    NotifyTargetConfig target;
    std::optional<YAML::Mark> name_mark;
    bool has_kind = false;
    bool has_url = false;
    r.mapping(item, path,
              {
                  {"name",
                   [&](const E& e) {
                     r.string(e, target.name, Reader::Empty::refused);
                     name_mark = Reader::mark_of(e);
                   }},
                  {"kind",
                   [&](const E& e) {
                     has_kind = true;
                     const auto text = r.scalar(e, "a kind");
                     if (!text) {
                       return;
                     }
                     if (std::find(k_notify_kinds.begin(), k_notify_kinds.end(), *text) == k_notify_kinds.end()) {
                       r.error(Reader::mark_of(e),
                               fmt::format("{}: '{}' is not one of generic, ntfy, discord, slack", e.path, *text));
                       return;
                     }
                     target.kind = *text;
                   }},
                  {"url",
                   [&](const E& e) {
                     has_url = true;
                     const auto text = r.scalar(e, "a URL");
                     if (!text) {
                       return;
                     }
                     if (text->rfind("http://", 0) != 0 && text->rfind("https://", 0) != 0) {
                       r.error(Reader::mark_of(e),
                               fmt::format("{}: '{}' must start with http:// or https://", e.path, *text));
                       return;
                     }
                     target.url = *text;
                   }},
              });
    if (!has_kind) {
      r.error(item.Mark(), fmt::format("{}: missing key 'kind' (generic, ntfy, discord or slack)", path));
    }
    if (!has_url) {
      r.error(item.Mark(), fmt::format("{}: missing key 'url'", path));
    }
    if (target.name.empty() && !name_mark) {
      target.name = target.kind;  // one target per kind needs no name
    }
    if (!target.name.empty()) {
      const auto mark = name_mark.value_or(item.Mark());
      const auto [first, inserted] = names.emplace(target.name, mark.line + 1);
      if (!inserted) {
        r.error(mark, fmt::format("{}: duplicate target name '{}' (first at line {}); give each target its own name",
                                  path, target.name, first->second));
      }
    }
    targets.push_back(std::move(target));
  }
  out = std::move(targets);
}

void read_notify(Reader& r, const Reader::Entry& section, ServeConfig& c) {
  using E = Reader::Entry;
  r.section(section, {
                         {"min_interval", [&](const E& e) { r.duration(e, c.notify_min_interval, Bound::any); }},
                         {"min_severity",
                          [&](const E& e) {
                            const auto text = r.scalar(e, "info, warning or critical");
                            if (!text) {
                              return;
                            }
                            if (*text == "info") {
                              c.notify_min_severity = Severity::info;
                            } else if (*text == "warning") {
                              c.notify_min_severity = Severity::warning;
                            } else if (*text == "critical") {
                              c.notify_min_severity = Severity::critical;
                            } else {
                              r.error(Reader::mark_of(e),
                                      fmt::format("{}: '{}' is not info, warning or critical", e.path, *text));
                            }
                          }},
                         {"targets", [&](const E& e) { read_targets(r, e, c.notify_targets); }},
                     });
}

void read_top(Reader& r, const YAML::Node& root, ServeConfig& c) {
  using E = Reader::Entry;
  std::optional<E> listen_entry;
  std::string listen_host;
  r.mapping(root, "",
            {
                {"interval", [&](const E& e) { r.duration(e, c.interval, Bound::positive); }},
                {"listen",
                 [&](const E& e) {
                   const auto text = r.scalar(e, "host:port");
                   if (!text) {
                     return;
                   }
                   if (auto parsed = adapters::parse_listen_address(*text, e.path); !parsed) {
                     r.error(Reader::mark_of(e), parsed.error().line());
                   } else {
                     c.listen = *text;
                     listen_entry = e;
                     listen_host = parsed->first;
                   }
                 }},
                {"allow_remote", [&](const E& e) { r.flag(e, c.allow_remote); }},
                {"token_file", [&](const E& e) { r.string(e, c.token_file, Reader::Empty::allowed); }},
                {"state_dir", [&](const E& e) { r.string(e, c.state_dir, Reader::Empty::refused); }},
                {"docker_host", [&](const E& e) { r.string(e, c.docker_host, Reader::Empty::allowed); }},
                {"docker_timeout", [&](const E& e) { r.duration(e, c.docker_timeout, Bound::positive); }},
                {"api_timeout", [&](const E& e) { r.duration(e, c.api_timeout, Bound::positive); }},
                {"nvml_library", [&](const E& e) { r.string(e, c.nvml_library, Reader::Empty::allowed); }},
                {"servers", [&](const E& e) { r.strings(e, c.servers); }},
                {"detect", [&](const E& e) { read_detect(r, e, c.thresholds); }},
                {"fix", [&](const E& e) { read_fix(r, e, c); }},
                {"history", [&](const E& e) { read_history(r, e, c); }},
                {"notify", [&](const E& e) { read_notify(r, e, c); }},
            });
  if (listen_entry && !c.allow_remote && !adapters::is_loopback_host(listen_host)) {
    r.error(Reader::mark_of(*listen_entry),
            fmt::format("listen: '{}' is not a loopback address; set allow_remote: true to serve other hosts "
                        "(and protect POST /api/v1/fix with token_file)",
                        c.listen));
  }
}

// ---- rendering

std::string yaml_quoted(std::string_view text) {
  std::string out = "\"";
  for (char ch : text) {
    switch (ch) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(ch) < 0x20) {
          out += fmt::format("\\x{:02x}", static_cast<unsigned>(static_cast<unsigned char>(ch)));
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

std::string size_text(std::uint64_t bytes) {
  static constexpr std::array<std::pair<std::uint64_t, std::string_view>, 4> k_units{
      {{k_tib, "TiB"}, {k_gib, "GiB"}, {k_mib, "MiB"}, {k_kib, "KiB"}}};
  for (const auto& [factor, unit] : k_units) {
    if (bytes != 0 && bytes % factor == 0) {
      return fmt::format("{}{}", bytes / factor, unit);
    }
  }
  return fmt::format("{}", bytes);
}

std::string duration_text(Duration d) {
  static constexpr std::array<std::pair<std::int64_t, std::string_view>, 4> k_units{
      {{k_day_ms, "d"}, {3'600'000, "h"}, {60'000, "m"}, {1000, "s"}}};
  const auto ms = d.count();
  for (const auto& [factor, unit] : k_units) {
    if (ms != 0 && ms % factor == 0) {
      return fmt::format("{}{}", ms / factor, unit);
    }
  }
  return ms == 0 ? "0s" : fmt::format("{}ms", ms);
}

std::string list_text(const std::vector<std::string>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) {
    out += (i == 0 ? "" : ", ") + yaml_quoted(items[i]);
  }
  return out + "]";
}

std::string targets_text(const std::vector<NotifyTargetConfig>& targets) {
  if (targets.empty()) {
    return " []\n";
  }
  std::string out = "\n";
  for (const auto& t : targets) {
    out +=
        fmt::format("    - name: {}\n      kind: {}\n      url: {}\n", yaml_quoted(t.name), t.kind, yaml_quoted(t.url));
  }
  return out;
}

}  // namespace

std::string config_to_yaml(const ServeConfig& c) {
  const auto& t = c.thresholds;
  const auto& p = c.policy;
  std::string out;
  out += R"(# memwarden serve configuration. Every key is optional; the values below are
# the defaults. Reference: docs/config.md.
#   sizes:     4G, 512MiB, 1.5GiB (binary units; a bare number is bytes)
#   durations: 500ms, 10s, 5m, 1h, 30d (a bare number is seconds)

)";
  out += fmt::format(R"(# Time between samples.
interval: {}
# host:port of the HTTP endpoint (/metrics and the JSON API).
listen: {}
# Must be true to listen on an address other than loopback (127.0.0.0/8, ::1, localhost).
allow_remote: {}
# File holding the bearer token of POST /api/v1/fix; "" turns that endpoint off.
token_file: {}
# Where the action journal and the sample history live.
state_dir: {}
# Docker address, unix:///path or tcp://host:port; "" = $DOCKER_HOST, else unix:///var/run/docker.sock.
docker_host: {}
# Time-out of each Docker request, and of each Ollama API request.
docker_timeout: {}
api_timeout: {}
# NVML library to load; "" = libnvidia-ml.so.1.
nvml_library: {}
# Watch only these servers (container names or id prefixes); [] = every inference server.
servers: {}
)",
                     duration_text(c.interval), yaml_quoted(c.listen), c.allow_remote ? "true" : "false",
                     yaml_quoted(c.token_file), yaml_quoted(c.state_dir), yaml_quoted(c.docker_host),
                     duration_text(c.docker_timeout), duration_text(c.api_timeout), yaml_quoted(c.nvml_library),
                     list_text(c.servers));
  out += fmt::format(R"(
# The detectors' thresholds (docs/diagnose.md).
detect:
  # RAM an idle server may hold beyond its loaded models.
  base_allowance: {}
  # idle-bloat: anon above expected + max(bloat_margin, bloat_margin_fraction x expected) for bloat_hold.
  bloat_margin: {}
  bloat_margin_fraction: {}
  bloat_hold: {}
  # growth: a rising anon trend with the same models loaded, over at least these samples and this span,
  # rising at least growth_min_rise, faster than growth_min_mib_per_hour.
  growth_min_samples: {}
  growth_min_span: {}
  growth_min_mib_per_hour: {}
  growth_min_rise: {}
  # growth is critical when memory would run out sooner than this.
  growth_critical_forecast: {}
  # orphan-runner: runner processes holding at least this much while no model is loaded, for orphan_hold.
  orphan_min_rss: {}
  orphan_hold: {}
  # host-pressure: RAM the host keeps for itself, swap in use, PSI "full" avg10 in percent.
  reserve: {}
  swap_warn: {}
  psi_full_avg10_pct: {}
  # page-cache: explains usage when page cache is at least this share of it and this large.
  page_cache_fraction: {}
  page_cache_min: {}
)",
                     size_text(t.base_allowance), size_text(t.bloat_margin), t.bloat_margin_fraction,
                     duration_text(t.bloat_hold), t.growth_min_samples, duration_text(t.growth_min_span),
                     t.growth_min_mib_per_hour, size_text(t.growth_min_rise), duration_text(t.growth_critical_forecast),
                     size_text(t.orphan_min_rss), duration_text(t.orphan_hold), size_text(t.reserve),
                     size_text(t.swap_warn), t.psi_full_avg10_pct, t.page_cache_fraction, size_text(t.page_cache_min));
  out += fmt::format(R"(
# What to do about fixable findings (docs/fix.md). Only opted-in servers are ever touched:
# label memwarden.enable=true, or listed in allow. Protected servers and memwarden itself never are.
fix:
  # on: unload or restart; dry-run: log what would be done; off: only report.
  auto: {}
  # Servers that opted in without the label (container names).
  allow: {}
  # Pause after an action on a server; doubles with each restart in the budget window.
  cooldown: {}
  # At most this many restarts per server per budget_window.
  budget: {}
  budget_window: {}
  # Wait for clients to finish before a restart, and for the API after it.
  drain_timeout: {}
  health_timeout: {}
  # Docker's stop time-out for the restart.
  stop_timeout: {}
  # After unloading, wait this long before measuring again.
  settle: {}
  # The systemd unit of an Ollama running on the host.
  systemd_unit: {}
)",
                     to_string(c.auto_fix), list_text(p.allowlist), duration_text(p.cooldown), p.restart_budget,
                     duration_text(p.budget_window), duration_text(p.drain_timeout), duration_text(p.health_timeout),
                     duration_text(p.stop_timeout), duration_text(p.settle), yaml_quoted(c.systemd_unit));
  out += fmt::format(R"(
# Sample history in <state_dir>: raw samples, then per-minute aggregates, within a size cap.
history:
  raw_retention: {}
  aggregate_retention: {}
  max_size: {}
  # Stop writing samples while the file system of <state_dir> has less than this free, so that the
  # journal of actions can always be written.
  min_free: {}
)",
                     duration_text(c.raw_retention), duration_text(c.aggregate_retention),
                     size_text(c.history_max_bytes), size_text(c.history_min_free));
  out += fmt::format(R"(
# Webhook alerts for new findings.
notify:
  # Findings below this severity are not sent: info, warning or critical.
  min_severity: {}
  # At most one alert per server and detector in this time (and 30 an hour in all).
  min_interval: {}
  # Where to send them; kind is generic, ntfy, discord or slack. For example:
  #   targets:
  #     - name: phone
  #       kind: ntfy
  #       url: https://ntfy.sh/my-memwarden-topic
  targets:{})",
                     to_string(c.notify_min_severity), duration_text(c.notify_min_interval),
                     targets_text(c.notify_targets));
  return out;
}

std::string ConfigError::text() const {
  if (line <= 0) {
    return file.empty() ? message : fmt::format("{}: {}", file, message);
  }
  return fmt::format("{}:{}:{}: {}", file, line, column, message);
}

ConfigResult parse_config(std::string_view yaml, const std::string& file_name) {
  ServeConfig config;
  config.source = file_name;
  Reader reader(file_name);
  try {
    const auto documents = YAML::LoadAll(std::string(yaml));
    if (documents.size() > 1) {
      reader.error(documents[1].Mark(), "only one YAML document is allowed");
    }
    if (!documents.empty()) {
      const auto& root = documents.front();
      if (root.IsMap()) {
        read_top(reader, root, config);
      } else if (!root.IsNull()) {
        reader.error(root.Mark(), fmt::format("expected a mapping of settings (key: value), got {}", describe(root)));
      }
    }
  } catch (const YAML::Exception& e) {
    reader.error(e.mark, fmt::format("YAML syntax error: {}", e.msg));
  }
  if (!reader.ok()) {
    return unexpected(reader.take());
  }
  return config;
}

ConfigResult load_config(const std::filesystem::path& file) {
  auto text = probes::read_regular_file(file, k_max_config_bytes);
  if (!text) {
    return unexpected(
        std::vector<ConfigError>{ConfigError{file.string(), 0, 0, "cannot read: " + text.error().message}});
  }
  return parse_config(*text, file.string());
}

std::string example_config() {
  return config_to_yaml(ServeConfig{});
}

}  // namespace mw::cli
