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
#include "core/estimate.hpp"
#include "core/ollama_name.hpp"
#include "core/profile.hpp"
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
  [[nodiscard]] std::size_t error_count() const { return m_errors.size(); }
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

// ---- profiles: a mapping of profile names to profiles, each with its own key table

constexpr std::size_t k_max_profile_name = 63;
constexpr std::size_t k_max_profile_models = 64;
constexpr std::size_t k_max_model_name = 200;
constexpr std::size_t k_max_description = 200;

bool is_lower_alnum(char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

bool is_alnum(char ch) {
  return is_lower_alnum(ch) || (ch >= 'A' && ch <= 'Z');
}

bool has_control(std::string_view text) {
  return std::any_of(text.begin(), text.end(),
                     [](char ch) { return static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f; });
}

// [a-z0-9][a-z0-9_.-]*: it becomes part of a container's name and a label.
bool is_profile_name(std::string_view name) {
  return !name.empty() && name.size() <= k_max_profile_name && is_lower_alnum(name.front()) &&
         std::all_of(name.begin(), name.end(),
                     [](char ch) { return is_lower_alnum(ch) || ch == '_' || ch == '.' || ch == '-'; });
}

// Ollama's keep_alive: a number of seconds or a Go duration ("5m", "1h30m", "0", "-1": forever).
bool is_keep_alive(std::string_view text) {
  if (text.empty() || text.size() > 32) {
    return false;
  }
  if (text.front() == '-') {
    text.remove_prefix(1);
  }
  if (text.empty()) {
    return false;
  }
  const auto digits = [](std::string_view& t) {
    std::size_t n = 0;
    while (n < t.size() && ((t[n] >= '0' && t[n] <= '9') || t[n] == '.')) {
      ++n;
    }
    t.remove_prefix(n);
    return n > 0;
  };
  auto rest = text;
  if (!digits(rest)) {
    return false;
  }
  if (rest.empty()) {
    return true;  // seconds
  }
  rest = text;
  while (!rest.empty()) {
    if (!digits(rest)) {
      return false;
    }
    bool unit = false;
    for (const std::string_view u : {"ns", "us", "ms", "s", "m", "h"}) {
      if (rest.substr(0, u.size()) == u) {
        rest.remove_prefix(u.size());
        unit = true;
        break;
      }
    }
    if (!unit) {
      return false;
    }
  }
  return true;
}

// An image reference without its tag: "ollama/ollama", "registry.example:5000/team/ollama".
bool is_image(std::string_view text) {
  return !text.empty() && text.size() <= 255 && is_lower_alnum(text.front()) &&
         std::all_of(text.begin(), text.end(), [](char ch) {
           return is_lower_alnum(ch) || ch == '.' || ch == '_' || ch == '-' || ch == '/' || ch == ':';
         });
}

// Docker's tag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}.
bool is_tag(std::string_view text) {
  return !text.empty() && text.size() <= 128 && (is_alnum(text.front()) || text.front() == '_') &&
         std::all_of(text.begin(), text.end(),
                     [](char ch) { return is_alnum(ch) || ch == '_' || ch == '.' || ch == '-'; });
}

// Docker's volume name: [A-Za-z0-9][A-Za-z0-9_.-]+.
bool is_volume_name(std::string_view text) {
  return text.size() >= 2 && text.size() <= 128 && is_alnum(text.front()) &&
         std::all_of(text.begin(), text.end(),
                     [](char ch) { return is_alnum(ch) || ch == '_' || ch == '.' || ch == '-'; });
}

// What the reader remembers of one profile (checks that need two of its keys).
struct ProfileState {
  bool has_models = false;
  std::vector<YAML::Mark> model_marks;
  std::string models_path;
};

struct ProfileKeySpec {
  std::string_view name;
  std::string_view meaning;  // its row in docs/config.md
  void (*read)(Reader&, const Reader::Entry&, Profile&, ProfileState&);
  std::string (*value)(const Profile&);  // what follows "key: "
};

// A string of at most `max` characters, no control characters, that `valid` accepts; else an error
// saying what it must be.
void checked_string(Reader& r, const Reader::Entry& e, std::string& out, std::size_t max,
                    bool (*valid)(std::string_view), std::string_view must) {
  std::string text;
  if (!e.value.IsNull()) {
    auto got = r.scalar(e, "a string");
    if (!got) {
      return;
    }
    text = std::move(*got);
  }
  if (text.size() > max) {
    r.error(Reader::mark_of(e), fmt::format("{}: longer than {} characters", e.path, max));
  } else if (has_control(text) || (valid != nullptr && !valid(text))) {
    r.error(Reader::mark_of(e), fmt::format("{}: '{}' is not {}", e.path, escape_control(text), must));
  } else {
    out = std::move(text);
  }
}

template <class Enum>
void named(Reader& r, const Reader::Entry& e, Enum& out, std::optional<Enum> (*parse)(std::string_view),
           std::string_view choices) {
  const auto text = r.scalar(e, choices);
  if (!text) {
    return;
  }
  if (const auto parsed = parse(*text)) {
    out = *parsed;
  } else {
    r.error(Reader::mark_of(e), fmt::format("{}: '{}' is not {}", e.path, escape_control(*text), choices));
  }
}

// A whole number from min to max; `out` keeps its value on an error.
template <class Int>
void whole(Reader& r, const Reader::Entry& e, Int& out, std::size_t min, std::size_t max) {
  std::size_t value = out;
  r.count(e, value, min, max);
  out = static_cast<Int>(value);
}

void read_models(Reader& r, const Reader::Entry& e, Profile& p, ProfileState& state) {
  state.has_models = true;
  state.models_path = e.path;
  if (e.value.IsNull() || (e.value.IsSequence() && e.value.size() == 0)) {
    r.error(Reader::mark_of(e), fmt::format("{}: must name at least one model", e.path));
    return;
  }
  std::vector<std::string> models = p.models;
  const auto errors = r.error_count();
  r.strings(e, models);
  if (r.error_count() != errors) {
    return;
  }
  if (models.size() > k_max_profile_models) {
    r.error(Reader::mark_of(e), fmt::format("{}: more than {} models", e.path, k_max_profile_models));
    return;
  }
  bool good = true;
  std::vector<YAML::Mark> marks;
  std::size_t index = 0;
  for (const auto& item : e.value) {
    const auto mark = item.Mark().line >= 0 ? item.Mark() : e.value.Mark();
    marks.push_back(mark);
    const auto& name = models[index];
    if (name.size() > k_max_model_name) {
      r.error(mark, fmt::format("{}[{}]: longer than {} characters", e.path, index, k_max_model_name));
      good = false;
    } else if (has_control(name)) {
      r.error(mark, fmt::format("{}[{}]: '{}' is not a model name", e.path, index, escape_control(name)));
      good = false;
    }
    ++index;
  }
  if (good) {
    p.models = std::move(models);
    state.model_marks = std::move(marks);
  }
}

// clang-format off
const std::array k_profile_keys{
    ProfileKeySpec{"description", "What the profile is for, in one line of at most 200 characters.",
                   [](Reader& r, const Reader::Entry& e, Profile& p, ProfileState&) {
                     checked_string(r, e, p.description, k_max_description, nullptr, "one line of text");
                   },
                   [](const Profile& p) { return yaml_quoted(p.description); }},
    ProfileKeySpec{"api", "The API the server speaks: `ollama`, or `openai` (LocalAI's OpenAI-compatible one).",
                   [](Reader& r, const Reader::Entry& e, Profile& p, ProfileState&) {
                     named(r, e, p.api, &parse_server_api, "ollama or openai");
                   },
                   [](const Profile& p) { return std::string(to_string(p.api)); }},
    ProfileKeySpec{"models", "The models it serves, at least one and at most 64, each at most 200 characters (Ollama "
                             "names when `api` is `ollama`); the memory limit is planned for the largest. A new "
                             "profile must have it.",
                   read_models, [](const Profile& p) { return list_text(p.models); }},
    ProfileKeySpec{"context_length", "`OLLAMA_CONTEXT_LENGTH`, in tokens: from 1 to 1048576.",
                   [](Reader& r, const Reader::Entry& e, Profile& p, ProfileState&) {
                     whole(r, e, p.context_length, 1, 1U << 20);
                   },
                   [](const Profile& p) { return fmt::format("{}", p.context_length); }},
    ProfileKeySpec{"parallel", "`OLLAMA_NUM_PARALLEL`, the requests served at once (each with its own context): 1 to "
                               "64.",
                   [](Reader& r, const Reader::Entry& e, Profile& p, ProfileState&) { whole(r, e, p.parallel, 1, 64); },
                   [](const Profile& p) { return fmt::format("{}", p.parallel); }},
    ProfileKeySpec{"max_loaded_models", "`OLLAMA_MAX_LOADED_MODELS`: 1 to 64.",
                   [](Reader& r, const Reader::Entry& e, Profile& p, ProfileState&) {
                     whole(r, e, p.max_loaded_models, 1, 64);
                   },
                   [](const Profile& p) { return fmt::format("{}", p.max_loaded_models); }},
    ProfileKeySpec{"kv_type", "`OLLAMA_KV_CACHE_TYPE`: `f16`, `q8_0` or `q4_0` (a quantized one turns on flash "
                              "attention).",
                   [](Reader& r, const Reader::Entry& e, Profile& p, ProfileState&) {
                     named(r, e, p.kv_type, &parse_kv_type, "f16, q8_0 or q4_0");
                   },
                   [](const Profile& p) { return std::string(to_string(p.kv_type)); }},
    ProfileKeySpec{"keep_alive", "`OLLAMA_KEEP_ALIVE`: seconds or a duration (`10m`, `1h30m`); `0` unloads at once, "
                                 "`-1` never.",
                   [](Reader& r, const Reader::Entry& e, Profile& p, ProfileState&) {
                     checked_string(r, e, p.keep_alive, 32, &is_keep_alive,
                                    "a keep-alive (use e.g. 5m, 1h, 300, 0 or -1)");
                   },
                   [](const Profile& p) { return yaml_quoted(p.keep_alive); }},
    ProfileKeySpec{"image", "The image, without its tag: lower-case letters, digits and `.` `_` `-` `/` `:`.",
                   [](Reader& r, const Reader::Entry& e, Profile& p, ProfileState&) {
                     checked_string(r, e, p.image, 255, &is_image, "an image name without its tag (e.g. ollama/ollama)");
                   },
                   [](const Profile& p) { return yaml_quoted(p.image); }},
    ProfileKeySpec{"tag", "The image's tag: letters, digits, `_`, `.`, `-`, at most 128.",
                   [](Reader& r, const Reader::Entry& e, Profile& p, ProfileState&) {
                     checked_string(r, e, p.tag, 128, &is_tag, "an image tag (letters, digits, _ . -)");
                   },
                   [](const Profile& p) { return yaml_quoted(p.tag); }},
    ProfileKeySpec{"gpu", "`all`: the container gets every GPU; `none`: CPU only (the limit is planned so).",
                   [](Reader& r, const Reader::Entry& e, Profile& p, ProfileState&) {
                     named(r, e, p.gpu, &parse_gpu_use, "all or none");
                   },
                   [](const Profile& p) { return std::string(to_string(p.gpu)); }},
    ProfileKeySpec{"mode", "`standard`: beside other servers; `exclusive`: the host to itself (the other inference "
                           "servers are stopped first).",
                   [](Reader& r, const Reader::Entry& e, Profile& p, ProfileState&) {
                     named(r, e, p.mode, &parse_deploy_mode, "standard or exclusive");
                   },
                   [](const Profile& p) { return std::string(to_string(p.mode)); }},
    ProfileKeySpec{"port", "The port on the host: 1 to 65535.",
                   [](Reader& r, const Reader::Entry& e, Profile& p, ProfileState&) { whole(r, e, p.port, 1, 65535); },
                   [](const Profile& p) { return fmt::format("{}", p.port); }},
    ProfileKeySpec{"container_port", "The server's port in the container: 1 to 65535 (11434 for Ollama, 8080 for "
                                     "LocalAI).",
                   [](Reader& r, const Reader::Entry& e, Profile& p, ProfileState&) {
                     whole(r, e, p.container_port, 1, 65535);
                   },
                   [](const Profile& p) { return fmt::format("{}", p.container_port); }},
    ProfileKeySpec{"store_volume", "The named volume holding the models (Docker's volume names: letters, digits, `_`, "
                                   "`.`, `-`).",
                   [](Reader& r, const Reader::Entry& e, Profile& p, ProfileState&) {
                     checked_string(r, e, p.store_volume, 128, &is_volume_name,
                                    "a volume name (letters, digits, _ . -, at least 2)");
                   },
                   [](const Profile& p) { return yaml_quoted(p.store_volume); }},
    ProfileKeySpec{"store_path", "Where the image keeps its models, the volume's mount point: an absolute path "
                                 "without `:`.",
                   [](Reader& r, const Reader::Entry& e, Profile& p, ProfileState&) {
                     checked_string(r, e, p.store_path, 1024,
                                    [](std::string_view t) {
                                      return !t.empty() && t.front() == '/' && t.find(':') == std::string_view::npos;
                                    },
                                    "an absolute path without ':'");
                   },
                   [](const Profile& p) { return yaml_quoted(p.store_path); }},
};
// clang-format on

// One profile's entry: it starts from the built-in of its name, else from Profile's defaults.
Profile read_profile(Reader& r, const YAML::Node& key, const YAML::Node& value, const std::string& path) {
  const auto& builtin = builtin_profiles();
  const auto same =
      std::find_if(builtin.begin(), builtin.end(), [&](const Profile& p) { return p.name == key.Scalar(); });
  Profile profile = same != builtin.end() ? *same : Profile{};
  profile.name = key.Scalar();
  ProfileState state;
  if (value.IsMap()) {
    std::vector<Reader::Key> keys;
    for (const auto& spec : k_profile_keys) {
      keys.push_back({spec.name, [&r, &profile, &state, read = spec.read](const Reader::Entry& e) {
                        read(r, e, profile, state);
                      }});
    }
    r.mapping(value, path, keys);
  } else if (!value.IsNull()) {
    r.error(value.Mark(), fmt::format("{}: expected a mapping of profile settings, got {}", path, describe(value)));
    return profile;
  }
  if (same == builtin.end() && !state.has_models) {
    r.error(key.Mark(), fmt::format("{}: missing key 'models' (a new profile needs at least one model)", path));
  }
  if (profile.api == ServerApi::ollama) {
    for (std::size_t i = 0; i < state.model_marks.size(); ++i) {
      if (auto parsed = parse_ollama_model_name(profile.models[i]); !parsed) {
        r.error(state.model_marks[i], fmt::format("{}[{}]: '{}' is not an Ollama model name: {}", state.models_path, i,
                                                  escape_control(profile.models[i]), parsed.error().message));
      }
    }
  }
  return profile;
}

void read_profiles(Reader& r, const Reader::Entry& e, std::vector<Profile>& out) {
  if (e.value.IsNull()) {
    out.clear();
    return;
  }
  if (!e.value.IsMap()) {
    r.error(Reader::mark_of(e),
            fmt::format("{}: expected a mapping of profile names to profiles, got {}", e.path, describe(e.value)));
    return;
  }
  std::vector<Profile> profiles;
  std::map<std::string, int> seen;  // name -> 1-based line of its first use
  std::size_t entries = 0;
  for (const auto& kv : e.value) {
    const YAML::Node key = kv.first;
    if (++entries > engine::k_max_profiles) {
      r.error(key.Mark(), fmt::format("{}: more than {} profiles; this one and those after it are not read", e.path,
                                      engine::k_max_profiles));
      break;
    }
    if (!key.IsScalar()) {
      r.error(key.Mark(), fmt::format("a profile's name in {} must be a plain name, not {}", e.path, describe(key)));
      continue;
    }
    const std::string& name = key.Scalar();
    if (!is_profile_name(name)) {
      r.error(key.Mark(),
              fmt::format("{}: '{}' is not a profile name (lower-case letters, digits, _ . -, starting with a letter "
                          "or digit, at most {} characters)",
                          e.path, escape_control(name.substr(0, k_max_profile_name + 1)), k_max_profile_name));
      continue;
    }
    const auto [first, inserted] = seen.emplace(name, key.Mark().line + 1);
    if (!inserted) {
      r.error(key.Mark(), fmt::format("{}.{}: set twice (first at line {})", e.path, name, first->second));
      continue;
    }
    profiles.push_back(read_profile(r, key, kv.second, fmt::format("{}.{}", e.path, name)));
  }
  out = std::move(profiles);
}

// What follows "profiles:": each profile with every key; " {}" for none.
std::string profiles_text(const std::vector<Profile>& profiles) {
  if (profiles.empty()) {
    return " {}\n";
  }
  std::string out = "\n";
  for (const auto& p : profiles) {
    out += fmt::format("  {}:\n", p.name);
    for (const auto& key : k_profile_keys) {
      out += fmt::format("    {}: {}\n", key.name, key.value(p));
    }
  }
  return out;
}

// The example in --print-default, commented out.
Profile example_profile() {
  Profile p;
  p.name = "coder";
  p.description = "two coding models side by side, CPU only";
  p.models = {"qwen2.5-coder:7b", "llama3.1:8b"};
  p.parallel = 2;
  p.kv_type = KvType::q8_0;
  p.keep_alive = "10m";
  p.tag = "0.11.4";
  p.gpu = GpuUse::none;
  p.port = 11440;
  return p;
}

// ---- the key table: every setting once, with how it is read, written and documented

enum class SectionId { top, detect, fix, optimize, history, notify, profiles };

struct SectionSpec {
  SectionId id;
  std::string_view name;     // "" for the top level
  std::string_view comment;  // above the section in --print-default
};

constexpr std::array<SectionSpec, 7> k_sections{{
    {SectionId::top, "", ""},
    {SectionId::detect, "detect", "The detectors' thresholds (docs/diagnose.md)."},
    {SectionId::fix, "fix",
     "What to do about fixable findings (docs/fix.md). Only opted-in servers are ever touched:\n"
     "label memwarden.enable=true, or listed in allow. Protected servers and memwarden itself never are."},
    {SectionId::optimize, "optimize",
     "Drift from the optimized state (docs/serve.md): a container without a memory limit, or a model pulled that\n"
     "no longer fits its server's limit, is reported as a finding (optimize-drift) with the command that fixes it.\n"
     "The daemon never changes a limit itself."},
    {SectionId::history, "history",
     "Sample history in <state_dir>: raw samples, then per-minute aggregates, within a size cap."},
    {SectionId::notify, "notify", "Webhook alerts for new findings."},
    {SectionId::profiles, "profiles",
     "Deployment profiles: right-sized model servers to deploy. The built-in ones are large-33b, large-70b,\n"
     "standard and localai; a profile named like one of them changes only the keys it gives, a new one\n"
     "starts from the defaults in docs/config.md and needs models. Names: [a-z0-9][a-z0-9_.-]*, at most 64\n"
     "profiles. For example:"},
}};

// What the reader remembers across keys (a check that needs two of them).
struct ReadState {
  std::optional<YAML::Mark> listen_mark;
  std::string listen_host;
};

using E = Reader::Entry;

struct KeySpec {
  SectionId section;
  std::string_view name;
  std::string_view comment;  // above the key in --print-default; "" when the one above covers it
  std::string_view meaning;  // its row in docs/config.md
  void (*read)(Reader&, const E&, ServeConfig&, ReadState&);
  std::string (*value)(const ServeConfig&);  // what follows "key:" in --print-default, with its space
};

std::string spaced(std::string text) {
  return " " + text;
}

void read_auto(Reader& r, const E& e, ServeConfig& c, ReadState&) {
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
    r.error(Reader::mark_of(e), fmt::format("{}: '{}' is not off, dry-run or on", e.path, *text));
  }
}

void read_optimize_auto(Reader& r, const E& e, ServeConfig& c, ReadState&) {
  const auto text = r.scalar(e, "off or suggest");
  if (!text) {
    return;
  }
  if (*text == "off") {
    c.optimize_auto = OptimizeAuto::off;
  } else if (*text == "suggest") {
    c.optimize_auto = OptimizeAuto::suggest;
  } else {
    r.error(Reader::mark_of(e), fmt::format("{}: '{}' is not off or suggest", e.path, *text));
  }
}

void read_min_severity(Reader& r, const E& e, ServeConfig& c, ReadState&) {
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
    r.error(Reader::mark_of(e), fmt::format("{}: '{}' is not info, warning or critical", e.path, *text));
  }
}

void read_listen(Reader& r, const E& e, ServeConfig& c, ReadState& state) {
  const auto text = r.scalar(e, "host:port");
  if (!text) {
    return;
  }
  if (auto parsed = adapters::parse_listen_address(*text, e.path); !parsed) {
    r.error(Reader::mark_of(e), parsed.error().line());
  } else {
    c.listen = *text;
    state.listen_mark = Reader::mark_of(e);
    state.listen_host = parsed->first;
  }
}

void read_growth_min(Reader& r, const E& e, ServeConfig& c, ReadState&) {
  double v = c.thresholds.growth_min_mib_per_hour;
  r.number(e, v, 0, std::nullopt);
  if (v <= 0) {
    r.error(Reader::mark_of(e), fmt::format("{}: must be larger than 0", e.path));
  } else {
    c.thresholds.growth_min_mib_per_hour = v;
  }
}

// clang-format off
const std::array k_keys{
    // top level
    KeySpec{SectionId::top, "interval", "Time between samples.",
            "Time between samples. Must be longer than 0.",
            [](Reader& r, const E& e, ServeConfig& c, ReadState&) { r.duration(e, c.interval, Bound::positive); },
            [](const ServeConfig& c) { return spaced(duration_text(c.interval)); }},
    KeySpec{SectionId::top, "listen", "host:port of the HTTP endpoint (/metrics and the JSON API).",
            "`host:port` of the HTTP endpoint (`/metrics`, the JSON API). An IPv6 address goes in brackets: "
            "`[::1]:9490`.",
            read_listen, [](const ServeConfig& c) { return spaced(yaml_quoted(c.listen)); }},
    KeySpec{SectionId::top, "allow_remote",
            "Must be true to listen on an address other than loopback (127.0.0.0/8, ::1, localhost).",
            "Must be `true` for a `listen` address that is not loopback (127.0.0.0/8, `::1`, `localhost`); "
            "otherwise such an address is an error. Protect `POST /api/v1/fix` with `token_file` when you set it.",
            [](Reader& r, const E& e, ServeConfig& c, ReadState&) { r.flag(e, c.allow_remote); },
            [](const ServeConfig& c) { return spaced(c.allow_remote ? "true" : "false"); }},
    KeySpec{SectionId::top, "token_file",
            "File holding the bearer token of POST /api/v1/fix; \"\" turns that endpoint off.",
            "File holding the bearer token of `POST /api/v1/fix`: a regular file of at most 4 KiB that other "
            "users cannot read (`chmod 600`), one line. `\"\"`: that endpoint does not exist; everything else is "
            "read-only. `check-config` checks the file too.",
            [](Reader& r, const E& e, ServeConfig& c, ReadState&) {
              r.string(e, c.token_file, Reader::Empty::allowed);
            },
            [](const ServeConfig& c) { return spaced(yaml_quoted(c.token_file)); }},
    KeySpec{SectionId::top, "state_dir", "Where the action journal and the sample history live.",
            "Where the action journal (`memwarden.db`) and the sample history (`samples.db`) live. Must not be "
            "empty.",
            [](Reader& r, const E& e, ServeConfig& c, ReadState&) {
              r.string(e, c.state_dir, Reader::Empty::refused);
            },
            [](const ServeConfig& c) { return spaced(yaml_quoted(c.state_dir)); }},
    KeySpec{SectionId::top, "docker_host",
            "Docker address, unix:///path or tcp://host:port; \"\" = $DOCKER_HOST, else "
            "unix:///var/run/docker.sock.",
            "Docker address, `unix:///path` or `tcp://host:port`. `\"\"`: `$DOCKER_HOST`, else "
            "`unix:///var/run/docker.sock`.",
            [](Reader& r, const E& e, ServeConfig& c, ReadState&) {
              r.string(e, c.docker_host, Reader::Empty::allowed);
            },
            [](const ServeConfig& c) { return spaced(yaml_quoted(c.docker_host)); }},
    KeySpec{SectionId::top, "docker_timeout", "Time-out of each Docker request, and of each Ollama API request.",
            "Time-out of each Docker request. Must be longer than 0.",
            [](Reader& r, const E& e, ServeConfig& c, ReadState&) {
              r.duration(e, c.docker_timeout, Bound::positive);
            },
            [](const ServeConfig& c) { return spaced(duration_text(c.docker_timeout)); }},
    KeySpec{SectionId::top, "api_timeout", "", "Time-out of each Ollama API request. Must be longer than 0.",
            [](Reader& r, const E& e, ServeConfig& c, ReadState&) { r.duration(e, c.api_timeout, Bound::positive); },
            [](const ServeConfig& c) { return spaced(duration_text(c.api_timeout)); }},
    KeySpec{SectionId::top, "nvml_library", "NVML library to load; \"\" = libnvidia-ml.so.1.",
            "NVML library to load. `\"\"`: `libnvidia-ml.so.1`.",
            [](Reader& r, const E& e, ServeConfig& c, ReadState&) {
              r.string(e, c.nvml_library, Reader::Empty::allowed);
            },
            [](const ServeConfig& c) { return spaced(yaml_quoted(c.nvml_library)); }},
    KeySpec{SectionId::top, "servers",
            "Watch only these servers (container names or id prefixes); [] = every inference server.",
            "Watch only these servers (container names or id prefixes). `[]`: every inference server "
            "([diagnose.md](diagnose.md#which-servers)).",
            [](Reader& r, const E& e, ServeConfig& c, ReadState&) { r.strings(e, c.servers); },
            [](const ServeConfig& c) { return spaced(list_text(c.servers)); }},
    // detect:
    KeySpec{SectionId::detect, "base_allowance", "RAM an idle server may hold beyond its loaded models.",
            "RAM an idle server may hold beyond its loaded models (part of *expected*).",
            [](Reader& r, const E& e, ServeConfig& c, ReadState&) {
              r.size(e, c.thresholds.base_allowance, Bound::any);
            },
            [](const ServeConfig& c) { return spaced(size_text(c.thresholds.base_allowance)); }},
    KeySpec{SectionId::detect, "bloat_margin",
            "idle-bloat: anon above expected + max(bloat_margin, bloat_margin_fraction x expected) for "
            "bloat_hold.",
            "idle-bloat: anon memory allowed above expected ...",
            [](Reader& r, const E& e, ServeConfig& c, ReadState&) { r.size(e, c.thresholds.bloat_margin, Bound::any); },
            [](const ServeConfig& c) { return spaced(size_text(c.thresholds.bloat_margin)); }},
    KeySpec{SectionId::detect, "bloat_margin_fraction", "",
            "... or this share of expected, whichever is larger. At least 0.",
            [](Reader& r, const E& e, ServeConfig& c, ReadState&) {
              r.number(e, c.thresholds.bloat_margin_fraction, 0, std::nullopt);
            },
            [](const ServeConfig& c) { return spaced(fmt::format("{}", c.thresholds.bloat_margin_fraction)); }},
    KeySpec{SectionId::detect, "bloat_hold", "", "idle-bloat: how long the excess must last.",
            [](Reader& r, const E& e, ServeConfig& c, ReadState&) {
              r.duration(e, c.thresholds.bloat_hold, Bound::any);
            },
            [](const ServeConfig& c) { return spaced(duration_text(c.thresholds.bloat_hold)); }},
    KeySpec{SectionId::detect, "growth_min_samples",
            "growth: a rising anon trend with the same models loaded, over at least these samples and this span,\n"
            "rising at least growth_min_rise, faster than growth_min_mib_per_hour.",
            "growth: fewest samples in the fit. From 2 to 3600.",
            [](Reader& r, const E& e, ServeConfig& c, ReadState&) {
              r.count(e, c.thresholds.growth_min_samples, 2, 3600);
            },
            [](const ServeConfig& c) { return spaced(fmt::format("{}", c.thresholds.growth_min_samples)); }},
    KeySpec{SectionId::detect, "growth_min_span", "", "growth: shortest time the fit covers.",
            [](Reader& r, const E& e, ServeConfig& c, ReadState&) {
              r.duration(e, c.thresholds.growth_min_span, Bound::any);
            },
            [](const ServeConfig& c) { return spaced(duration_text(c.thresholds.growth_min_span)); }},
    KeySpec{SectionId::detect, "growth_min_mib_per_hour", "",
            "growth: slowest rise reported, MiB per hour. Larger than 0.", read_growth_min,
            [](const ServeConfig& c) { return spaced(fmt::format("{}", c.thresholds.growth_min_mib_per_hour)); }},
    KeySpec{SectionId::detect, "growth_min_rise", "", "growth: the fit must rise at least this much over its span.",
            [](Reader& r, const E& e, ServeConfig& c, ReadState&) {
              r.size(e, c.thresholds.growth_min_rise, Bound::any);
            },
            [](const ServeConfig& c) { return spaced(size_text(c.thresholds.growth_min_rise)); }},
    KeySpec{SectionId::detect, "growth_critical_forecast", "growth is critical when memory would run out sooner than this.",
            "growth is critical when memory would run out sooner than this.",
            [](Reader& r, const E& e, ServeConfig& c, ReadState&) {
              r.duration(e, c.thresholds.growth_critical_forecast, Bound::any);
            },
            [](const ServeConfig& c) { return spaced(duration_text(c.thresholds.growth_critical_forecast)); }},
    KeySpec{SectionId::detect, "orphan_min_rss",
            "orphan-runner: runner processes holding at least this much while no model is loaded, for orphan_hold.",
            "orphan-runner: runner processes holding at least this much with no model loaded ...",
            [](Reader& r, const E& e, ServeConfig& c, ReadState&) {
              r.size(e, c.thresholds.orphan_min_rss, Bound::any);
            },
            [](const ServeConfig& c) { return spaced(size_text(c.thresholds.orphan_min_rss)); }},
    KeySpec{SectionId::detect, "orphan_hold", "", "... for at least this long.",
            [](Reader& r, const E& e, ServeConfig& c, ReadState&) {
              r.duration(e, c.thresholds.orphan_hold, Bound::any);
            },
            [](const ServeConfig& c) { return spaced(duration_text(c.thresholds.orphan_hold)); }},
    KeySpec{SectionId::detect, "reserve",
            "host-pressure: RAM the host keeps for itself, swap in use, PSI \"full\" avg10 in percent.",
            "host-pressure: RAM the host keeps for itself; MemAvailable below it warns (below half, critical).",
            [](Reader& r, const E& e, ServeConfig& c, ReadState&) { r.size(e, c.thresholds.reserve, Bound::any); },
            [](const ServeConfig& c) { return spaced(size_text(c.thresholds.reserve)); }},
    KeySpec{SectionId::detect, "swap_warn", "", "host-pressure: swap in use above this warns.",
            [](Reader& r, const E& e, ServeConfig& c, ReadState&) { r.size(e, c.thresholds.swap_warn, Bound::any); },
            [](const ServeConfig& c) { return spaced(size_text(c.thresholds.swap_warn)); }},
    KeySpec{SectionId::detect, "psi_full_avg10_pct", "",
            "host-pressure: PSI memory \"full\" avg10 above this percentage warns. 0 to 100.",
            [](Reader& r, const E& e, ServeConfig& c, ReadState&) {
              r.number(e, c.thresholds.psi_full_avg10_pct, 0, 100);
            },
            [](const ServeConfig& c) { return spaced(fmt::format("{}", c.thresholds.psi_full_avg10_pct)); }},
    KeySpec{SectionId::detect, "page_cache_fraction",
            "page-cache: explains usage when page cache is at least this share of it and this large.",
            "page-cache: explains a server's usage when page cache is at least this share of it ... 0 to 1.",
            [](Reader& r, const E& e, ServeConfig& c, ReadState&) {
              r.number(e, c.thresholds.page_cache_fraction, 0, 1);
            },
            [](const ServeConfig& c) { return spaced(fmt::format("{}", c.thresholds.page_cache_fraction)); }},
    KeySpec{SectionId::detect, "page_cache_min", "", "... and at least this large.",
            [](Reader& r, const E& e, ServeConfig& c, ReadState&) {
              r.size(e, c.thresholds.page_cache_min, Bound::any);
            },
            [](const ServeConfig& c) { return spaced(size_text(c.thresholds.page_cache_min)); }},
    // fix:
    KeySpec{SectionId::fix, "auto", "on: unload or restart; dry-run: log what would be done; off: only report.",
            "`on`: unload or restart opted-in servers that need it. `dry-run`: log what would be done, change "
            "nothing. `off`: only observe and alert.",
            read_auto, [](const ServeConfig& c) { return spaced(to_string(c.auto_fix)); }},
    KeySpec{SectionId::fix, "allow", "Servers that opted in without the label (container names).",
            "Servers (container names) that opted in without the label.",
            [](Reader& r, const E& e, ServeConfig& c, ReadState&) { r.strings(e, c.policy.allowlist); },
            [](const ServeConfig& c) { return spaced(list_text(c.policy.allowlist)); }},
    KeySpec{SectionId::fix, "cooldown", "Pause after an action on a server; doubles with each restart in the budget window.",
            "Pause after an action on a server; doubles with each restart in the budget window.",
            [](Reader& r, const E& e, ServeConfig& c, ReadState&) { r.duration(e, c.policy.cooldown, Bound::any); },
            [](const ServeConfig& c) { return spaced(duration_text(c.policy.cooldown)); }},
    KeySpec{SectionId::fix, "budget", "At most this many restarts per server per budget_window.",
            "Most restarts per server per `budget_window` (a failed one counts too), from 0 to 1000 (as "
            "`fix --budget`). 0: never restart.",
            [](Reader& r, const E& e, ServeConfig& c, ReadState&) { r.count(e, c.policy.restart_budget, 0, 1000); },
            [](const ServeConfig& c) { return spaced(fmt::format("{}", c.policy.restart_budget)); }},
    KeySpec{SectionId::fix, "budget_window", "", "The window of `budget`. Must be longer than 0.",
            [](Reader& r, const E& e, ServeConfig& c, ReadState&) {
              r.duration(e, c.policy.budget_window, Bound::positive);
            },
            [](const ServeConfig& c) { return spaced(duration_text(c.policy.budget_window)); }},
    KeySpec{SectionId::fix, "drain_timeout", "Wait for clients to finish before a restart, and for the API after it.",
            "Wait this long for clients to finish before a restart.",
            [](Reader& r, const E& e, ServeConfig& c, ReadState&) {
              r.duration(e, c.policy.drain_timeout, Bound::any);
            },
            [](const ServeConfig& c) { return spaced(duration_text(c.policy.drain_timeout)); }},
    KeySpec{SectionId::fix, "health_timeout", "",
            "Wait this long for the API to answer after a restart. Must be longer than 0.",
            [](Reader& r, const E& e, ServeConfig& c, ReadState&) {
              r.duration(e, c.policy.health_timeout, Bound::positive);
            },
            [](const ServeConfig& c) { return spaced(duration_text(c.policy.health_timeout)); }},
    KeySpec{SectionId::fix, "stop_timeout", "Docker's stop time-out for the restart.",
            "Docker's stop time-out for the restart.",
            [](Reader& r, const E& e, ServeConfig& c, ReadState&) { r.duration(e, c.policy.stop_timeout, Bound::any); },
            [](const ServeConfig& c) { return spaced(duration_text(c.policy.stop_timeout)); }},
    KeySpec{SectionId::fix, "settle", "After unloading, wait this long before measuring again.",
            "After unloading, wait this long before measuring again.",
            [](Reader& r, const E& e, ServeConfig& c, ReadState&) { r.duration(e, c.policy.settle, Bound::any); },
            [](const ServeConfig& c) { return spaced(duration_text(c.policy.settle)); }},
    KeySpec{SectionId::fix, "systemd_unit", "The systemd unit of an Ollama running on the host.",
            "The unit of an Ollama running on the host (`systemctl restart -- <unit>`). Must not be empty.",
            [](Reader& r, const E& e, ServeConfig& c, ReadState&) {
              r.string(e, c.systemd_unit, Reader::Empty::refused);
            },
            [](const ServeConfig& c) { return spaced(yaml_quoted(c.systemd_unit)); }},
    // optimize:
    KeySpec{SectionId::optimize, "auto", "suggest: report drift with the command that fixes it; off: do not check.",
            "`suggest`: every `interval`, report a running container without a memory limit, and an inference "
            "server whose largest installed model needs more than its limit, as an `optimize-drift` finding naming "
            "`memwarden optimize --yes`; `off`: no check (and serve's `unlimited` findings name no planned limit). "
            "The daemon only reports: it never sets a limit itself.",
            read_optimize_auto, [](const ServeConfig& c) { return spaced(to_string(c.optimize_auto)); }},
    KeySpec{SectionId::optimize, "interval", "How often; each check asks every server's API (/api/tags, /api/show).",
            "How often the drift check runs (it asks each inference server for /api/tags and /api/show, so not every "
            "sample). Must be longer than 0.",
            [](Reader& r, const E& e, ServeConfig& c, ReadState&) {
              r.duration(e, c.optimize_interval, Bound::positive);
            },
            [](const ServeConfig& c) { return spaced(duration_text(c.optimize_interval)); }},
    // history:
    KeySpec{SectionId::history, "raw_retention", "", "Keep every sample this long. Must be longer than 0.",
            [](Reader& r, const E& e, ServeConfig& c, ReadState&) {
              r.duration(e, c.raw_retention, Bound::positive);
            },
            [](const ServeConfig& c) { return spaced(duration_text(c.raw_retention)); }},
    KeySpec{SectionId::history, "aggregate_retention", "",
            "Keep the 1-minute aggregates this long. Must be longer than 0.",
            [](Reader& r, const E& e, ServeConfig& c, ReadState&) {
              r.duration(e, c.aggregate_retention, Bound::positive);
            },
            [](const ServeConfig& c) { return spaced(duration_text(c.aggregate_retention)); }},
    KeySpec{SectionId::history, "max_size", "",
            "Keep the history file under this size; the oldest rows go first. Must be larger than 0.",
            [](Reader& r, const E& e, ServeConfig& c, ReadState&) {
              r.size(e, c.history_max_bytes, Bound::positive);
            },
            [](const ServeConfig& c) { return spaced(size_text(c.history_max_bytes)); }},
    KeySpec{SectionId::history, "min_free",
            "Stop writing samples while the file system of <state_dir> has less than this free, so that the\n"
            "journal of actions can always be written.",
            "Stop writing samples while the file system of `state_dir` has less than this free (said once in the "
            "log, `memwarden_history_ok 0`), and start again when there is room: the journal of actions lives on "
            "the same file system and must always be writable. `0` turns the check off.",
            [](Reader& r, const E& e, ServeConfig& c, ReadState&) { r.size(e, c.history_min_free, Bound::any); },
            [](const ServeConfig& c) { return spaced(size_text(c.history_min_free)); }},
    // notify:
    KeySpec{SectionId::notify, "min_severity", "Findings below this severity are not sent: info, warning or critical.",
            "Findings below this are not sent: `info`, `warning` or `critical`.", read_min_severity,
            [](const ServeConfig& c) { return spaced(to_string(c.notify_min_severity)); }},
    KeySpec{SectionId::notify, "min_interval",
            "At most one alert per server and detector in this time (and 30 an hour in all).",
            "At most one alert per subject and detector in this time (and 30 an hour in all). `0s`: no "
            "per-subject limit.",
            [](Reader& r, const E& e, ServeConfig& c, ReadState&) {
              r.duration(e, c.notify_min_interval, Bound::any);
            },
            [](const ServeConfig& c) { return spaced(duration_text(c.notify_min_interval)); }},
    KeySpec{SectionId::notify, "targets",
            "Where to send them; kind is generic, ntfy, discord or slack. For example:\n"
            "  targets:\n"
            "    - name: phone\n"
            "      kind: ntfy\n"
            "      url: https://ntfy.sh/my-memwarden-topic",
            "Where to send alerts: a list of `{name, kind, url}`.",
            [](Reader& r, const E& e, ServeConfig& c, ReadState&) { read_targets(r, e, c.notify_targets); },
            [](const ServeConfig& c) {
              auto text = targets_text(c.notify_targets);
              text.pop_back();  // the line end comes with the key
              return text;
            }},
};
// clang-format on

// "# text" for each line of `text`, indented; "" for no text.
std::string comment_lines(std::string_view text, std::string_view indent) {
  std::string out;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    out += fmt::format("{}# {}\n", indent, text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
  }
  return out;
}

// The keys of one section, as the reader's mapping wants them.
std::vector<Reader::Key> keys_of(SectionId section, Reader& r, ServeConfig& c, ReadState& state) {
  std::vector<Reader::Key> out;
  for (const auto& key : k_keys) {
    if (key.section == section) {
      out.push_back({key.name, [&r, &c, &state, read = key.read](const E& e) { read(r, e, c, state); }});
    }
  }
  return out;
}

void read_document(Reader& r, const YAML::Node& root, ServeConfig& c) {
  ReadState state;
  auto top = keys_of(SectionId::top, r, c, state);
  for (const auto& section : k_sections) {
    if (!section.name.empty()) {
      if (section.id == SectionId::profiles) {
        top.push_back({section.name, [&r, &c](const E& e) { read_profiles(r, e, c.profiles); }});
        continue;
      }
      top.push_back(
          {section.name, [&r, &c, &state, id = section.id](const E& e) { r.section(e, keys_of(id, r, c, state)); }});
    }
  }
  r.mapping(root, "", top);
  if (state.listen_mark && !c.allow_remote && !adapters::is_loopback_host(state.listen_host)) {
    r.error(*state.listen_mark,
            fmt::format("listen: '{}' is not a loopback address; set allow_remote: true to serve other hosts "
                        "(and protect POST /api/v1/fix with token_file)",
                        c.listen));
  }
}

}  // namespace

std::string config_to_yaml(const ServeConfig& c) {
  std::string out = R"(# memwarden serve configuration. Every key is optional; the values below are
# the defaults. Reference: docs/config.md.
#   sizes:     4G, 512MiB, 1.5GiB (binary units; a bare number is bytes)
#   durations: 500ms, 10s, 5m, 1h, 30d (a bare number is seconds)
)";
  for (const auto& section : k_sections) {
    out += '\n';
    std::string indent;
    if (!section.name.empty()) {
      out += comment_lines(section.comment, "");
      if (section.id == SectionId::profiles) {
        out += comment_lines(fmt::format("{}:{}", section.name, profiles_text({example_profile()})), "");
        out += fmt::format("{}:{}", section.name, profiles_text(c.profiles));
        continue;
      }
      out += fmt::format("{}:\n", section.name);
      indent = "  ";
    }
    for (const auto& key : k_keys) {
      if (key.section != section.id) {
        continue;
      }
      out += comment_lines(key.comment, indent);
      out += fmt::format("{}{}:{}\n", indent, key.name, key.value(c));
    }
  }
  return out;
}

std::string config_reference_table(std::string_view section_name) {
  const auto section =
      std::find_if(k_sections.begin(), k_sections.end(), [&](const SectionSpec& s) { return s.name == section_name; });
  if (section == k_sections.end()) {
    return "";
  }
  std::string out = "| key | default | meaning |\n|---|---|---|\n";
  if (section->id == SectionId::profiles) {
    const Profile defaults;
    for (const auto& key : k_profile_keys) {
      out += fmt::format("| `{}` | `{}` | {} |\n", key.name, key.value(defaults), key.meaning);
    }
    return out;
  }
  const ServeConfig defaults;
  for (const auto& key : k_keys) {
    if (key.section == section->id) {
      auto value = key.value(defaults);
      value.erase(0, value.find_first_not_of(' '));
      out += fmt::format("| `{}` | `{}` | {} |\n", key.name, value, key.meaning);
    }
  }
  return out;
}

std::vector<std::string> config_keys() {
  std::vector<std::string> out;
  for (const auto& key : k_keys) {
    const auto section =
        std::find_if(k_sections.begin(), k_sections.end(), [&](const SectionSpec& s) { return s.id == key.section; });
    out.push_back(section->name.empty() ? std::string(key.name) : fmt::format("{}.{}", section->name, key.name));
  }
  for (const auto& key : k_profile_keys) {
    out.push_back(fmt::format("profiles.NAME.{}", key.name));
  }
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
        read_document(reader, root, config);
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
